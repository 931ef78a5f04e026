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
//! `docs/protocol.md` describes every byte.
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
//! let messages: Vec<&[u8]> = codec.decode_packet(&packet)?.collect();
//! assert_eq!(messages, [&b"ping"[..], &b"alive:n1"[..]]);
//! # Ok::<(), rumour_transport::FrameError>(())
//! ```

mod stats;

#[cfg(test)]
mod tests;

pub use stats::FrameStats;

use rumour_wire::{VarintError, varint};

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
/// Flag, reserved: the frame is sealed with an AEAD. Not produced yet; rejected on input.
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
    /// is read past the length field when decoding. Capped at `u32::MAX`. Default 32 MiB.
    pub max_message: usize,
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

    /// Sets the limit on messages per compound datagram.
    #[must_use]
    pub fn with_max_packet_messages(mut self, max: usize) -> Self {
        self.max_packet_messages = max;
        self
    }
}

/// Encodes and decodes frames for one node and counts what it sees. Methods take `&self`
/// (counters are atomic), so one codec can be shared.
#[derive(Debug)]
pub struct FrameCodec {
    config: FrameConfig,
    /// Magic, version, flags (label bit only) and the label: the start of every frame we write.
    prefix: Vec<u8>,
    counters: FrameCounters,
}

/// The fields in front of a frame's checksum or length.
struct Header<'a> {
    flags: u8,
    label: Option<&'a [u8]>,
    /// Offset just past the header (the label, or the flags byte without a label).
    end: usize,
}

impl FrameCodec {
    /// A codec for `config`.
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
        Self {
            config,
            prefix,
            counters: FrameCounters::default(),
        }
    }

    /// The configuration this codec was built with.
    pub fn config(&self) -> &FrameConfig {
        &self.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FrameStats {
        self.counters.snapshot()
    }

    /// The configured packet budget.
    pub fn packet_budget(&self) -> usize {
        self.config.packet_budget
    }

    /// Bytes every datagram frame spends before its body: magic, version, flags, the label if
    /// any, and the checksum. 8 bytes without a label, `10 + label length` with one.
    pub fn header_len(&self) -> usize {
        self.prefix.len() + CRC_LEN
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
        match msgs {
            [one] => self.header_len() + one.len(),
            _ => {
                self.header_len()
                    + msgs
                        .iter()
                        .map(|m| Self::packed_len(m.len()))
                        .sum::<usize>()
            }
        }
    }

    /// Frames `msgs` as one datagram: a plain frame for one message, a compound frame for zero or
    /// several. The packet budget is not enforced here; check
    /// [`packet_len`](Self::packet_len) first.
    pub fn encode_packet(&self, msgs: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.packet_len(msgs));
        out.extend_from_slice(&self.prefix);
        let crc_at = out.len();
        out.extend_from_slice(&[0; CRC_LEN]);
        if let [one] = msgs {
            out.extend_from_slice(one);
        } else {
            out[FLAGS_AT] |= FLAG_COMPOUND;
            for msg in msgs {
                varint::put(&mut out, msg.len() as u64);
                out.extend_from_slice(msg);
            }
        }
        seal_checksum(&mut out, crc_at);
        bump(&self.counters.packets_encoded, 1);
        out
    }

    /// Checks a datagram frame and returns its messages. A frame with a wrong checksum, a wrong
    /// or missing label, or any structural fault is rejected whole and counted; nothing in it is
    /// returned.
    pub fn decode_packet<'a>(&self, bytes: &'a [u8]) -> Result<Messages<'a>, FrameError> {
        let messages = self.count(self.check_packet(bytes))?;
        bump(&self.counters.packets_decoded, 1);
        bump(&self.counters.messages_decoded, messages.len() as u64);
        Ok(messages)
    }

    /// Bytes a stream frame spends around its message: header, length and checksum.
    pub fn stream_overhead(&self) -> usize {
        self.prefix.len() + LENGTH_LEN + CRC_LEN
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
    /// against the limit before anything after it is looked at.
    pub fn decode_stream<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], FrameError> {
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
            .and_then(|(header, crc_at, len)| Ok((self.verify_label(&header)?, crc_at, len)));
        match head {
            Ok(((), crc_at, len)) => Ok(Some(crc_at + CRC_LEN + len)),
            Err(e) if e.kind == FrameErrorKind::Truncated => Ok(None),
            Err(e) => {
                self.counters.count_drop(e.kind);
                Err(e)
            }
        }
    }

    fn max_message(&self) -> u64 {
        (self.config.max_message as u64).min(u64::from(u32::MAX))
    }

    fn count<T>(&self, result: Result<T, FrameError>) -> Result<T, FrameError> {
        if let Err(e) = &result {
            self.counters.count_drop(e.kind);
        }
        result
    }

    fn check_packet<'a>(&self, bytes: &'a [u8]) -> Result<Messages<'a>, FrameError> {
        let header = parse_header(bytes)?;
        if header.flags & FLAG_STREAM != 0 {
            return Err(FrameError::new(
                "flags",
                FLAGS_AT,
                FrameErrorKind::Malformed,
            ));
        }
        let crc_at = header.end;
        verify_checksum(bytes, crc_at)?;
        self.verify_label(&header)?;
        let body_at = crc_at + CRC_LEN;
        Messages::check(
            &bytes[body_at..],
            body_at,
            header.flags & FLAG_COMPOUND != 0,
            self.config.max_packet_messages,
        )
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
        if u64::from(len) > limit {
            let kind = FrameErrorKind::OverLimit {
                len: u64::from(len),
                limit,
            };
            return Err(FrameError::new("message length", len_at, kind));
        }
        Ok((header, len_at + LENGTH_LEN, len as usize))
    }

    fn check_stream<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], FrameError> {
        let (header, crc_at, len) = self.check_stream_head(bytes)?;
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
        Ok(&bytes[msg_at..])
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
    if flags & FLAG_SEALED != 0 {
        return Err(FrameError::new("flags", FLAGS_AT, FrameErrorKind::Sealed));
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

/// The messages of an accepted datagram, in order. Checked in full before it is handed out.
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
