//! Framing shared by the real and the simulated network: pure functions of bytes, no I/O.
//!
//! Every datagram and every stream message is one *frame*:
//!
//! ```text
//! datagram: magic "RU" | version 1 | flags | [label len | label] | crc32 BE | body
//! stream:   magic "RU" | version 1 | flags | [label len | label] | length u32 BE | crc32 BE | message
//! ```
//!
//! A datagram's body is one message, or (flag `COMPOUND`) any number of messages each preceded by
//! its length as an LEB128 varint, up to the end of the datagram. The CRC-32 covers every byte of
//! the frame except the four bytes of the CRC itself, so a flipped bit anywhere is caught.
//! `docs/protocol-frame.md` describes every byte.
//!
//! With a [`Keyring`] the codec *seals* frames with XChaCha20-Poly1305 (flag `SEALED`): the header
//! stays in the clear and is authenticated, a random 24-byte nonce follows, then the encrypted
//! body and a 16-byte tag in place of the CRC. The primary key seals, every installed key is tried
//! to open, and a frame that no key opens is dropped and counted before any of its bytes is
//! parsed as a message. Keys can be installed, made primary and removed while the codec is in use
//! ([`FrameCodec::install_key`], [`FrameCodec::use_key`], [`FrameCodec::remove_key`]), and the
//! switches [`FrameConfig::verify_incoming`] / [`FrameConfig::verify_outgoing`] move a running
//! cluster from plaintext to sealed frames (and back) without a split.
//!
//! A [`FrameCodec`] holds the [`FrameConfig`] (cluster label, packet budget, message limit) and
//! counts frames in, out, and dropped by reason ([`FrameStats`]). Callers pack datagrams
//! themselves using [`FrameCodec::header_len`] and [`FrameCodec::packed_len`]: messages
//! `m1..mk` fit in one datagram when `header_len() + Σ packed_len(len(mi)) <= packet_budget()`.
//!
//! ```
//! use rumour_transport::frame::{FrameCodec, FrameConfig};
//! let codec = FrameCodec::new(FrameConfig::default());
//! let packet = codec.encode_packet(&[b"ping", b"alive:n1"]);
//! let packet = codec.decode_packet(&packet)?;
//! let messages: Vec<&[u8]> = packet.iter().collect();
//! assert_eq!(messages, [&b"ping"[..], &b"alive:n1"[..]]);
//! # Ok::<(), rumour_transport::FrameError>(())
//! ```

mod keyring;
mod seal;
mod stats;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_seal;

pub use keyring::{Fingerprint, Key, Keyring};
pub use seal::{NONCE_LEN, SEAL_OVERHEAD, TAG_LEN};
pub use stats::FrameStats;

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError, RwLock};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rumour_wire::{VarintError, varint};

use crate::TransportError;
use crate::error::{FrameError, FrameErrorKind};
use crate::label::Label;
use stats::{FrameCounters, bump};

/// The two bytes every frame starts with: `"RU"`.
pub const MAGIC: [u8; 2] = *b"RU";
/// The protocol version this build writes and accepts.
pub const VERSION: u8 = 1;
/// Flag: a cluster label follows the flags byte.
pub const FLAG_LABEL: u8 = 0x01;
/// Flag: the datagram body is a sequence of length-prefixed messages.
pub const FLAG_COMPOUND: u8 = 0x02;
/// Flag: the frame is a stream frame (length field, one message), not a datagram.
pub const FLAG_STREAM: u8 = 0x04;
/// Flag: the frame is sealed with XChaCha20-Poly1305 (nonce after the header, tag at the end).
pub const FLAG_SEALED: u8 = 0x08;
const KNOWN_FLAGS: u8 = FLAG_LABEL | FLAG_COMPOUND | FLAG_STREAM | FLAG_SEALED;

/// Default packet budget: the most bytes a caller should put in one datagram.
pub const DEFAULT_PACKET_BUDGET: usize = 1400;
/// Default limit on one stream message: 32 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 32 << 20;
/// Default limit on the messages of one compound datagram (memberlist's is 255).
pub const DEFAULT_MAX_PACKET_MESSAGES: usize = 255;

const CRC_LEN: usize = 4;
const LENGTH_LEN: usize = 4;
const FLAGS_AT: usize = 3;
const LABEL_AT: usize = 4;

/// What a [`FrameCodec`] writes and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameConfig {
    /// The cluster label written into every frame, if any.
    pub label: Option<Label>,
    /// Reject frames whose label is not ours (including frames without one when we have one,
    /// and frames with one when we have none). Turn off during a rollout of a new label: every
    /// frame is then accepted whatever label it carries. Default `true`.
    pub verify_label: bool,
    /// The most bytes callers should put in one datagram. Advisory: [`FrameCodec::encode_packet`]
    /// does not enforce it. Default 1400.
    pub packet_budget: usize,
    /// The longest message a stream frame may carry, checked when encoding and before anything
    /// is read past the length field when decoding. Capped at `u32::MAX` less the sealing
    /// overhead. Default 32 MiB.
    pub max_message: usize,
    /// The keys frames are sealed and opened with (at construction; they can change later
    /// through the codec). Empty (the default): frames are neither sealed nor opened, and a
    /// sealed frame is dropped as [`Sealed`](FrameErrorKind::Sealed).
    pub keyring: Keyring,
    /// With keys: accept only sealed frames (drop plaintext ones as
    /// [`Unsealed`](FrameErrorKind::Unsealed)). Off, plaintext frames are accepted too; sealed
    /// frames must open either way. memberlist's `GossipVerifyIncoming`. Default `true`.
    pub verify_incoming: bool,
    /// With keys: seal every frame written. Off, frames are written in plaintext (while the
    /// cluster is still learning the key). memberlist's `GossipVerifyOutgoing`. Default `true`.
    pub verify_outgoing: bool,
    /// The most messages one compound datagram may carry; a datagram with more is dropped
    /// whole (and counted as over the limit) while its lengths are walked, before any message
    /// is handed out. Default [`DEFAULT_MAX_PACKET_MESSAGES`].
    pub max_packet_messages: usize,
}

impl Default for FrameConfig {
    fn default() -> Self {
        Self {
            label: None,
            verify_label: true,
            packet_budget: DEFAULT_PACKET_BUDGET,
            max_message: DEFAULT_MAX_MESSAGE,
            keyring: Keyring::default(),
            verify_incoming: true,
            verify_outgoing: true,
            max_packet_messages: DEFAULT_MAX_PACKET_MESSAGES,
        }
    }
}

impl FrameConfig {
    /// Sets the cluster label.
    #[must_use]
    pub fn with_label(mut self, label: Label) -> Self {
        self.label = Some(label);
        self
    }

    /// Turns label verification on or off.
    #[must_use]
    pub fn with_verify_label(mut self, verify: bool) -> Self {
        self.verify_label = verify;
        self
    }

    /// Sets the packet budget.
    #[must_use]
    pub fn with_packet_budget(mut self, budget: usize) -> Self {
        self.packet_budget = budget;
        self
    }

    /// Sets the stream message limit.
    #[must_use]
    pub fn with_max_message(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    /// Sets the keyring (empty: no encryption).
    #[must_use]
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = keyring;
        self
    }

    /// Turns the check that every incoming frame is sealed on or off.
    #[must_use]
    pub fn with_verify_incoming(mut self, verify: bool) -> Self {
        self.verify_incoming = verify;
        self
    }

    /// Turns sealing of outgoing frames on or off.
    #[must_use]
    pub fn with_verify_outgoing(mut self, verify: bool) -> Self {
        self.verify_outgoing = verify;
        self
    }

    /// Sets the limit on messages per compound datagram.
    #[must_use]
    pub fn with_max_packet_messages(mut self, max: usize) -> Self {
        self.max_packet_messages = max;
        self
    }
}

/// What a codec seals and opens with right now.
#[derive(Clone)]
struct Sealing {
    keyring: Keyring,
    verify_incoming: bool,
    verify_outgoing: bool,
}

impl Sealing {
    /// The key that seals what we write, if we seal.
    fn sealing_key(&self) -> Option<&keyring::Key> {
        self.keyring.primary().filter(|_| self.verify_outgoing)
    }

    /// Whether a plaintext frame is refused.
    fn requires_sealed(&self) -> bool {
        !self.keyring.is_empty() && self.verify_incoming
    }
}

/// The current keyring and switches of a codec, without key material: what status pages,
/// logs and metrics may show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyringStatus {
    /// Fingerprints of the installed keys, primary first. Empty without encryption.
    pub fingerprints: Vec<Fingerprint>,
    /// Whether only sealed frames are accepted.
    pub verify_incoming: bool,
    /// Whether frames written are sealed.
    pub verify_outgoing: bool,
}

impl KeyringStatus {
    /// The primary key's fingerprint, if any.
    pub fn primary(&self) -> Option<Fingerprint> {
        self.fingerprints.first().copied()
    }

    /// Whether the codec seals what it writes.
    pub fn seals(&self) -> bool {
        self.verify_outgoing && !self.fingerprints.is_empty()
    }
}

/// Encodes and decodes frames for one node and counts what it sees. Methods take `&self`
/// (counters are atomic, the keyring and the nonce generator sit behind locks), so one codec
/// can be shared. A clone is a codec in the same state (counters, keys, nonce generator) that
/// goes on apart: the simulator forks a cluster with it.
pub struct FrameCodec {
    config: FrameConfig,
    /// Magic, version, flags (label bit only) and the label: the start of every frame we write.
    prefix: Vec<u8>,
    counters: FrameCounters,
    sealing: RwLock<Sealing>,
    /// Draws the nonces of sealed frames.
    nonces: Mutex<Box<dyn NonceRng>>,
}

/// A generator of nonces: any cloneable random generator.
pub trait NonceRng: RngCore + Send + Sync {
    /// The generator in its current state, boxed.
    fn boxed_clone(&self) -> Box<dyn NonceRng>;
}

impl<R: RngCore + Clone + Send + Sync + 'static> NonceRng for R {
    fn boxed_clone(&self) -> Box<dyn NonceRng> {
        Box::new(self.clone())
    }
}

impl Clone for FrameCodec {
    fn clone(&self) -> Self {
        let nonces = self
            .nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .boxed_clone();
        FrameCodec {
            config: self.config.clone(),
            prefix: self.prefix.clone(),
            counters: self.counters.clone(),
            sealing: RwLock::new(self.sealing().clone()),
            nonces: Mutex::new(nonces),
        }
    }
}

impl std::fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sealing = self.sealing();
        f.debug_struct("FrameCodec")
            .field("label", &self.config.label)
            .field("keys", &sealing.keyring.len())
            .field("verify_incoming", &sealing.verify_incoming)
            .field("verify_outgoing", &sealing.verify_outgoing)
            .finish_non_exhaustive()
    }
}

/// The fields in front of a frame's checksum or length.
struct Header<'a> {
    flags: u8,
    label: Option<&'a [u8]>,
    /// Offset just past the header (the label, or the flags byte without a label).
    end: usize,
}

impl FrameCodec {
    /// A codec for `config`. Nonces of sealed frames come from a ChaCha20 generator seeded from
    /// the operating system; [`with_nonce_rng`](Self::with_nonce_rng) replaces it.
    pub fn new(config: FrameConfig) -> Self {
        let mut prefix = Vec::with_capacity(LABEL_AT + 1 + Label::MAX_LEN);
        prefix.extend_from_slice(&MAGIC);
        prefix.push(VERSION);
        match &config.label {
            Some(label) => {
                prefix.push(FLAG_LABEL);
                prefix.push(label.as_bytes().len() as u8);
                prefix.extend_from_slice(label.as_bytes());
            }
            None => prefix.push(0),
        }
        let sealing = Sealing {
            keyring: config.keyring.clone(),
            verify_incoming: config.verify_incoming,
            verify_outgoing: config.verify_outgoing,
        };
        Self {
            config,
            prefix,
            counters: FrameCounters::default(),
            sealing: RwLock::new(sealing),
            nonces: Mutex::new(Box::new(ChaCha20Rng::from_entropy())),
        }
    }

    /// Draws nonces from `rng` from now on. Nonces must never repeat under one key: give a
    /// cryptographic generator seeded with enough entropy, never the same seed to two codecs
    /// that share a key. (The simulator gives each node a child of its seeded generator, for
    /// runs that replay; the tokio driver seeds from the operating system.)
    #[must_use]
    pub fn with_nonce_rng(self, rng: impl NonceRng + 'static) -> Self {
        self.set_nonce_rng(rng);
        self
    }

    /// Replaces the nonce generator with a ChaCha20 generator seeded with 256 bits from the
    /// operating system.
    pub fn seed_nonces_from_os(&self) {
        self.set_nonce_rng(ChaCha20Rng::from_entropy());
    }

    /// Replaces the nonce generator (see [`with_nonce_rng`](Self::with_nonce_rng)).
    pub fn set_nonce_rng(&self, rng: impl NonceRng + 'static) {
        *self.nonces.lock().unwrap_or_else(PoisonError::into_inner) = Box::new(rng);
    }

    /// The configuration this codec was built with. Its keyring and switches are the initial
    /// ones; [`keyring_status`](Self::keyring_status) tells the current ones.
    pub fn config(&self) -> &FrameConfig {
        &self.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FrameStats {
        self.counters.snapshot()
    }

    // ---- keys ---------------------------------------------------------------------------------

    fn sealing(&self) -> std::sync::RwLockReadGuard<'_, Sealing> {
        self.sealing.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn sealing_mut(&self) -> std::sync::RwLockWriteGuard<'_, Sealing> {
        self.sealing.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The installed keys' fingerprints and the switches; never key material.
    pub fn keyring_status(&self) -> KeyringStatus {
        let sealing = self.sealing();
        KeyringStatus {
            fingerprints: sealing.keyring.fingerprints(),
            verify_incoming: sealing.verify_incoming,
            verify_outgoing: sealing.verify_outgoing,
        }
    }

    /// Whether frames written now are sealed (keys installed and `verify_outgoing` on).
    pub fn seals(&self) -> bool {
        self.sealing().sealing_key().is_some()
    }

    /// Installs `key` for opening frames (it seals only once made primary with
    /// [`use_key`](Self::use_key), or if it is the first key). Returns whether it was new.
    pub fn install_key(&self, key: Key) -> bool {
        self.sealing_mut().keyring.install(key)
    }

    /// Makes an installed key the one that seals.
    ///
    /// # Errors
    /// [`TransportError::UnknownKey`] if it is not installed.
    pub fn use_key(&self, key: &Key) -> Result<(), TransportError> {
        self.sealing_mut().keyring.use_key(key)
    }

    /// Removes an installed key that is not the primary.
    ///
    /// # Errors
    /// [`TransportError::RemovePrimaryKey`] for the primary key, [`TransportError::UnknownKey`]
    /// if it is not installed.
    pub fn remove_key(&self, key: &Key) -> Result<(), TransportError> {
        self.sealing_mut().keyring.remove(key)
    }

    /// Replaces the whole keyring (for example from a re-read key file). An empty keyring turns
    /// encryption off.
    pub fn set_keyring(&self, keyring: Keyring) {
        self.sealing_mut().keyring = keyring;
    }

    /// Turns the check that incoming frames are sealed on or off.
    pub fn set_verify_incoming(&self, verify: bool) {
        self.sealing_mut().verify_incoming = verify;
    }

    /// Turns sealing of outgoing frames on or off.
    pub fn set_verify_outgoing(&self, verify: bool) {
        self.sealing_mut().verify_outgoing = verify;
    }

    /// The configured packet budget.
    pub fn packet_budget(&self) -> usize {
        self.config.packet_budget
    }

    /// Bytes every datagram frame written now spends beside its messages: magic, version,
    /// flags, the label if any, and the checksum. 8 bytes without a label, `10 + label length`
    /// with one. A sealed datagram has no checksum but a nonce and a tag: `4 + 40` without a
    /// label, `6 + label length + 40` with one.
    pub fn header_len(&self) -> usize {
        if self.seals() {
            self.prefix.len() + SEAL_OVERHEAD
        } else {
            self.prefix.len() + CRC_LEN
        }
    }

    /// Bytes a message of `msg_len` bytes costs inside a compound datagram: its varint length
    /// (1 byte below 128, 2 below 16 KiB, ...) plus the message. A datagram of one message costs
    /// less (no length), so `header_len() + Σ packed_len` is an upper bound that is exact for two
    /// or more messages.
    pub const fn packed_len(msg_len: usize) -> usize {
        varint::packed_len(msg_len, 0)
    }

    /// The exact length of the datagram [`encode_packet`](Self::encode_packet) makes of `msgs`.
    pub fn packet_len(&self, msgs: &[&[u8]]) -> usize {
        self.len_of(msgs)
    }

    fn len_of<M: Pieces>(&self, msgs: &[M]) -> usize {
        match msgs {
            [one] if !self.seals() => self.header_len() + one.len(),
            _ => self.header_len() + body_len(msgs),
        }
    }

    /// Frames `msgs` as one datagram: a plain frame for one message, a compound frame for zero or
    /// several. The packet budget is not enforced here; check
    /// [`packet_len`](Self::packet_len) first.
    ///
    /// With a primary key and `verify_outgoing` on, the frame is sealed; its body is then
    /// always a compound (inside the ciphertext), so a lone message costs its length too.
    pub fn encode_packet(&self, msgs: &[&[u8]]) -> Vec<u8> {
        self.encode(msgs)
    }

    /// [`encode_packet`](Self::encode_packet) for messages that come as a head and a body
    /// (a layer's tag and its bytes, say): each message is the two written one after the
    /// other, and nothing is copied together first.
    pub fn encode_packet_pieces(&self, msgs: &[[&[u8]; 2]]) -> Vec<u8> {
        self.encode(msgs)
    }

    fn encode<M: Pieces>(&self, msgs: &[M]) -> Vec<u8> {
        let sealing = self.sealing();
        if let Some(key) = sealing.sealing_key() {
            let mut out = Vec::with_capacity(self.prefix.len() + SEAL_OVERHEAD + body_len(msgs));
            out.extend_from_slice(&self.prefix);
            out[FLAGS_AT] |= FLAG_SEALED;
            let aad_end = seal::start(&mut out, &mut **self.nonce_rng());
            for msg in msgs {
                varint::put(&mut out, msg.len() as u64);
                msg.write_to(&mut out);
            }
            seal::finish(&mut out, aad_end, key);
            bump(&self.counters.packets_encoded, 1);
            bump(&self.counters.packets_sealed, 1);
            return out;
        }
        drop(sealing);
        let mut out = Vec::with_capacity(self.len_of(msgs));
        out.extend_from_slice(&self.prefix);
        let crc_at = out.len();
        out.extend_from_slice(&[0; CRC_LEN]);
        if let [one] = msgs {
            one.write_to(&mut out);
        } else {
            out[FLAGS_AT] |= FLAG_COMPOUND;
            for msg in msgs {
                varint::put(&mut out, msg.len() as u64);
                msg.write_to(&mut out);
            }
        }
        seal_checksum(&mut out, crc_at);
        bump(&self.counters.packets_encoded, 1);
        out
    }

    /// Checks a datagram frame and returns its messages. A frame with a wrong checksum, a wrong
    /// or missing label, or any structural fault is rejected whole and counted; nothing in it is
    /// returned. A sealed frame is opened first: if no installed key opens it, it is dropped
    /// and counted before any byte of its body is parsed.
    pub fn decode_packet<'a>(&self, bytes: &'a [u8]) -> Result<Packet<'a>, FrameError> {
        let packet = self.count(self.check_packet(bytes))?;
        bump(&self.counters.packets_decoded, 1);
        bump(&self.counters.messages_decoded, packet.len() as u64);
        Ok(packet)
    }

    /// Bytes a stream frame written now spends around its message: header, length and
    /// checksum (or, sealed, header, length, nonce and tag).
    pub fn stream_overhead(&self) -> usize {
        if self.seals() {
            self.prefix.len() + LENGTH_LEN + SEAL_OVERHEAD
        } else {
            self.prefix.len() + LENGTH_LEN + CRC_LEN
        }
    }

    /// Frames one message for a stream. Fails with
    /// [`OverLimit`](FrameErrorKind::OverLimit) if it is longer than the configured maximum.
    pub fn encode_stream(&self, msg: &[u8]) -> Result<Vec<u8>, FrameError> {
        let limit = self.max_message();
        if msg.len() as u64 > limit {
            let kind = FrameErrorKind::OverLimit {
                len: msg.len() as u64,
                limit,
            };
            return Err(FrameError::new("message", 0, kind));
        }
        let sealing = self.sealing();
        if let Some(key) = sealing.sealing_key() {
            let mut out = Vec::with_capacity(self.prefix.len() + 4 + SEAL_OVERHEAD + msg.len());
            out.extend_from_slice(&self.prefix);
            out[FLAGS_AT] |= FLAG_STREAM | FLAG_SEALED;
            out.extend_from_slice(&((msg.len() + SEAL_OVERHEAD) as u32).to_be_bytes());
            let aad_end = seal::start(&mut out, &mut **self.nonce_rng());
            out.extend_from_slice(msg);
            seal::finish(&mut out, aad_end, key);
            bump(&self.counters.streams_encoded, 1);
            bump(&self.counters.streams_sealed, 1);
            return Ok(out);
        }
        drop(sealing);
        let mut out = Vec::with_capacity(self.stream_overhead() + msg.len());
        out.extend_from_slice(&self.prefix);
        out[FLAGS_AT] |= FLAG_STREAM;
        out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        let crc_at = out.len();
        out.extend_from_slice(&[0; CRC_LEN]);
        out.extend_from_slice(msg);
        seal_checksum(&mut out, crc_at);
        bump(&self.counters.streams_encoded, 1);
        Ok(out)
    }

    /// Checks a complete stream frame and returns its message. The length field is checked
    /// against the limit before anything after it is looked at. A sealed frame is opened
    /// (borrowed input, owned output); if no installed key opens it, it is dropped and counted.
    pub fn decode_stream<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, FrameError> {
        let msg = self.count(self.check_stream(bytes))?;
        bump(&self.counters.streams_decoded, 1);
        bump(&self.counters.messages_decoded, 1);
        Ok(msg)
    }

    /// For readers of a byte stream: given the first bytes of a stream frame, returns its total
    /// length once the header and length field are in (`None` until then), after checking the
    /// label and the length against the limit. A reader can thus read the header, learn the
    /// length, and only then reserve memory for the message.
    pub fn stream_frame_len(&self, prefix: &[u8]) -> Result<Option<usize>, FrameError> {
        let head = self
            .check_stream_head(prefix)
            .and_then(|(header, crc_at, len)| {
                self.verify_label(&header)?;
                Ok((header.flags & FLAG_SEALED != 0, crc_at, len))
            });
        match head {
            Ok((true, crc_at, len)) => Ok(Some(crc_at + len)),
            Ok((false, crc_at, len)) => Ok(Some(crc_at + CRC_LEN + len)),
            Err(e) if e.kind == FrameErrorKind::Truncated => Ok(None),
            Err(e) => {
                self.counters.count_drop(e.kind);
                Err(e)
            }
        }
    }

    fn max_message(&self) -> u64 {
        (self.config.max_message as u64).min(u64::from(u32::MAX) - SEAL_OVERHEAD as u64)
    }

    fn nonce_rng(&self) -> std::sync::MutexGuard<'_, Box<dyn NonceRng>> {
        self.nonces.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops plaintext frames when only sealed ones are accepted, and sealed frames when we
    /// have no key.
    fn check_sealing(&self, header: &Header<'_>) -> Result<(), FrameError> {
        let sealed = header.flags & FLAG_SEALED != 0;
        let sealing = self.sealing();
        if sealed && sealing.keyring.is_empty() {
            return Err(FrameError::new("flags", FLAGS_AT, FrameErrorKind::Sealed));
        }
        if !sealed && sealing.requires_sealed() {
            return Err(FrameError::new("flags", FLAGS_AT, FrameErrorKind::Unsealed));
        }
        Ok(())
    }

    /// Opens the sealed part of a frame that starts at `aad_end`.
    fn open(&self, bytes: &[u8], aad_end: usize) -> Result<Vec<u8>, FrameError> {
        let plain = seal::open(bytes, aad_end, &self.sealing().keyring)?;
        bump(&self.counters.frames_opened, 1);
        Ok(plain)
    }

    fn count<T>(&self, result: Result<T, FrameError>) -> Result<T, FrameError> {
        if let Err(e) = &result {
            self.counters.count_drop(e.kind);
        }
        result
    }

    fn check_packet<'a>(&self, bytes: &'a [u8]) -> Result<Packet<'a>, FrameError> {
        let header = parse_header(bytes)?;
        let sealed = header.flags & FLAG_SEALED != 0;
        // A sealed datagram's body is always a compound, and its COMPOUND bit stays clear.
        if header.flags & FLAG_STREAM != 0 || (sealed && header.flags & FLAG_COMPOUND != 0) {
            return Err(FrameError::new(
                "flags",
                FLAGS_AT,
                FrameErrorKind::Malformed,
            ));
        }
        self.check_sealing(&header)?;
        if sealed {
            let plain = self.open(bytes, header.end)?;
            self.verify_label(&header)?;
            let base = header.end + NONCE_LEN;
            let count =
                Messages::check(&plain, base, true, self.config.max_packet_messages)?.remaining;
            return Ok(Packet {
                body: Cow::Owned(plain),
                compound: true,
                count,
            });
        }
        let crc_at = header.end;
        verify_checksum(bytes, crc_at)?;
        self.verify_label(&header)?;
        let body_at = crc_at + CRC_LEN;
        let compound = header.flags & FLAG_COMPOUND != 0;
        let count = Messages::check(
            &bytes[body_at..],
            body_at,
            compound,
            self.config.max_packet_messages,
        )?
        .remaining;
        Ok(Packet {
            body: Cow::Borrowed(&bytes[body_at..]),
            compound,
            count,
        })
    }

    /// Parses a stream frame up to its length field; returns the header, the checksum's offset
    /// and the message length.
    fn check_stream_head<'a>(
        &self,
        bytes: &'a [u8],
    ) -> Result<(Header<'a>, usize, usize), FrameError> {
        let header = parse_header(bytes)?;
        if header.flags & FLAG_STREAM == 0 || header.flags & FLAG_COMPOUND != 0 {
            return Err(FrameError::new(
                "flags",
                FLAGS_AT,
                FrameErrorKind::Malformed,
            ));
        }
        let len_at = header.end;
        let len = read_u32(bytes, len_at, "message length")?;
        let limit = self.max_message();
        if header.flags & FLAG_SEALED != 0 {
            // The length counts nonce, ciphertext and tag.
            if (len as usize) < SEAL_OVERHEAD {
                return Err(FrameError::new(
                    "message length",
                    len_at,
                    FrameErrorKind::Malformed,
                ));
            }
            let plain = u64::from(len) - SEAL_OVERHEAD as u64;
            if plain > limit {
                let kind = FrameErrorKind::OverLimit { len: plain, limit };
                return Err(FrameError::new("message length", len_at, kind));
            }
            return Ok((header, len_at + LENGTH_LEN, len as usize));
        }
        if u64::from(len) > limit {
            let kind = FrameErrorKind::OverLimit {
                len: u64::from(len),
                limit,
            };
            return Err(FrameError::new("message length", len_at, kind));
        }
        Ok((header, len_at + LENGTH_LEN, len as usize))
    }

    fn check_stream<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, FrameError> {
        let (header, crc_at, len) = self.check_stream_head(bytes)?;
        self.check_sealing(&header)?;
        if header.flags & FLAG_SEALED != 0 {
            // `crc_at` is where the nonce starts; `len` counts nonce, ciphertext and tag.
            let sealed_at = crc_at;
            let available = bytes.len() - sealed_at;
            if available < len {
                let what = if available < NONCE_LEN {
                    "nonce"
                } else {
                    "message"
                };
                return Err(FrameError::new(what, sealed_at, FrameErrorKind::Truncated));
            }
            if available > len {
                return Err(FrameError::new(
                    "end of frame",
                    sealed_at + len,
                    FrameErrorKind::Malformed,
                ));
            }
            let plain = self.open(bytes, sealed_at)?;
            self.verify_label(&header)?;
            return Ok(Cow::Owned(plain));
        }
        let msg_at = crc_at + CRC_LEN;
        if bytes.len() < msg_at {
            return Err(FrameError::new(
                "checksum",
                crc_at,
                FrameErrorKind::Truncated,
            ));
        }
        let available = bytes.len() - msg_at;
        if available < len {
            return Err(FrameError::new(
                "message",
                msg_at,
                FrameErrorKind::Truncated,
            ));
        }
        if available > len {
            return Err(FrameError::new(
                "end of frame",
                msg_at + len,
                FrameErrorKind::Malformed,
            ));
        }
        verify_checksum(bytes, crc_at)?;
        self.verify_label(&header)?;
        Ok(Cow::Borrowed(&bytes[msg_at..]))
    }

    fn verify_label(&self, header: &Header<'_>) -> Result<(), FrameError> {
        if !self.config.verify_label {
            return Ok(());
        }
        let ours = self.config.label.as_ref().map(Label::as_bytes);
        match (ours, header.label) {
            (None, None) => Ok(()),
            (Some(ours), Some(theirs)) if ours == theirs => Ok(()),
            (Some(_), None) => Err(FrameError::new(
                "label",
                FLAGS_AT,
                FrameErrorKind::MissingLabel,
            )),
            _ => Err(FrameError::new(
                "label",
                LABEL_AT,
                FrameErrorKind::LabelMismatch,
            )),
        }
    }
}

/// Reads magic, version, flags and the label.
fn parse_header(bytes: &[u8]) -> Result<Header<'_>, FrameError> {
    let magic_seen = &bytes[..bytes.len().min(MAGIC.len())];
    if magic_seen != &MAGIC[..magic_seen.len()] {
        return Err(FrameError::new("magic", 0, FrameErrorKind::BadMagic));
    }
    if magic_seen.len() < MAGIC.len() {
        return Err(FrameError::new("magic", 0, FrameErrorKind::Truncated));
    }
    let version = byte_at(bytes, 2, "version")?;
    if version != VERSION {
        let kind = FrameErrorKind::UnsupportedVersion { found: version };
        return Err(FrameError::new("version", 2, kind));
    }
    let flags = byte_at(bytes, FLAGS_AT, "flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(FrameError::new(
            "flags",
            FLAGS_AT,
            FrameErrorKind::Malformed,
        ));
    }
    if flags & FLAG_LABEL == 0 {
        return Ok(Header {
            flags,
            label: None,
            end: LABEL_AT,
        });
    }
    let label_len = usize::from(byte_at(bytes, LABEL_AT, "label length")?);
    if label_len == 0 {
        return Err(FrameError::new(
            "label length",
            LABEL_AT,
            FrameErrorKind::Malformed,
        ));
    }
    let end = LABEL_AT + 1 + label_len;
    let label = bytes.get(LABEL_AT + 1..end).ok_or(FrameError::new(
        "label",
        LABEL_AT + 1,
        FrameErrorKind::Truncated,
    ))?;
    Ok(Header {
        flags,
        label: Some(label),
        end,
    })
}

fn byte_at(bytes: &[u8], at: usize, what: &'static str) -> Result<u8, FrameError> {
    bytes
        .get(at)
        .copied()
        .ok_or(FrameError::new(what, at, FrameErrorKind::Truncated))
}

fn read_u32(bytes: &[u8], at: usize, what: &'static str) -> Result<u32, FrameError> {
    let field =
        bytes
            .get(at..at + 4)
            .ok_or(FrameError::new(what, at, FrameErrorKind::Truncated))?;
    Ok(u32::from_be_bytes([field[0], field[1], field[2], field[3]]))
}

/// CRC-32 of the frame without the four checksum bytes at `crc_at`.
fn checksum(frame: &[u8], crc_at: usize) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&frame[..crc_at]);
    hasher.update(&frame[crc_at + CRC_LEN..]);
    hasher.finalize()
}

fn seal_checksum(frame: &mut [u8], crc_at: usize) {
    let crc = checksum(frame, crc_at);
    frame[crc_at..crc_at + CRC_LEN].copy_from_slice(&crc.to_be_bytes());
}

fn verify_checksum(frame: &[u8], crc_at: usize) -> Result<(), FrameError> {
    let expected = read_u32(frame, crc_at, "checksum")?;
    let computed = checksum(frame, crc_at);
    if expected != computed {
        let kind = FrameErrorKind::ChecksumMismatch { expected, computed };
        return Err(FrameError::new("checksum", crc_at, kind));
    }
    Ok(())
}

/// Bytes of the body of a datagram of `msgs` when packed as a compound.
fn body_len<M: Pieces>(msgs: &[M]) -> usize {
    msgs.iter().map(|m| FrameCodec::packed_len(m.len())).sum()
}

/// A message to frame: one slice, or slices written one after the other.
trait Pieces {
    fn len(&self) -> usize;
    fn write_to(&self, out: &mut Vec<u8>);
}

impl Pieces for &[u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> Pieces for [&[u8]; N] {
    fn len(&self) -> usize {
        self.iter().map(|piece| piece.len()).sum()
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        for piece in self {
            out.extend_from_slice(piece);
        }
    }
}

/// An accepted datagram: its body, borrowed from the input, or opened from a sealed frame.
/// Checked in full before it is handed out; [`iter`](Packet::iter) yields its messages.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    body: Cow<'a, [u8]>,
    compound: bool,
    count: usize,
}

impl Packet<'_> {
    /// The messages, in order.
    pub fn iter(&self) -> Messages<'_> {
        Messages {
            body: &self.body,
            compound: self.compound,
            remaining: self.count,
        }
    }

    /// How many messages the datagram holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the datagram holds no message (an empty compound).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the datagram was sealed.
    pub fn was_sealed(&self) -> bool {
        matches!(self.body, Cow::Owned(_))
    }
}

impl<'p> IntoIterator for &'p Packet<'_> {
    type Item = &'p [u8];
    type IntoIter = Messages<'p>;

    fn into_iter(self) -> Messages<'p> {
        self.iter()
    }
}

/// The messages of an accepted datagram, in order.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    body: &'a [u8],
    compound: bool,
    remaining: usize,
}

impl<'a> Messages<'a> {
    /// Walks the body once to check every length and that there are at most `max` messages;
    /// `base` is the body's offset in the frame.
    fn check(body: &'a [u8], base: usize, compound: bool, max: usize) -> Result<Self, FrameError> {
        if !compound {
            return Ok(Self {
                body,
                compound,
                remaining: 1,
            });
        }
        let mut at = 0;
        let mut count = 0;
        while at < body.len() {
            let (len, msg_at) = get_varint(body, at, "message length")
                .map_err(|e| FrameError::new(e.what, base + e.offset, e.kind))?;
            if len > (body.len() - msg_at) as u64 {
                return Err(FrameError::new(
                    "message",
                    base + msg_at,
                    FrameErrorKind::Truncated,
                ));
            }
            at = msg_at + len as usize;
            count += 1;
            if count > max {
                let kind = FrameErrorKind::OverLimit {
                    len: count as u64,
                    limit: max as u64,
                };
                return Err(FrameError::new("message count", base + msg_at, kind));
            }
        }
        Ok(Self {
            body,
            compound,
            remaining: count,
        })
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        if !self.compound {
            return Some(self.body);
        }
        let (len, at) = get_varint(self.body, 0, "message length").ok()?;
        let (msg, rest) = self.body.get(at..)?.split_at_checked(len as usize)?;
        self.body = rest;
        Some(msg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Messages<'_> {}

/// Reads the varint at `at`: the value and the offset just after it. `what` names the field in
/// errors.
fn get_varint(bytes: &[u8], at: usize, what: &'static str) -> Result<(u64, usize), FrameError> {
    let rest = bytes.get(at..).unwrap_or_default();
    match varint::get(rest) {
        Ok((value, used)) => Ok((value, at + used)),
        Err(VarintError::Truncated) => Err(FrameError::new(what, at, FrameErrorKind::Truncated)),
        Err(_) => Err(FrameError::new(what, at, FrameErrorKind::Malformed)),
    }
}
