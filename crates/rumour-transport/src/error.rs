//! Errors: what went wrong, and where.
//!
//! [`FrameError`] is returned by the pure [`frame`](crate::frame) decoder and says which field of
//! which byte offset was wrong; [`TransportError`] is returned by [`Transport`](crate::Transport)
//! implementations and by configuration checks.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a frame was rejected. Each kind has its own drop counter in
/// [`FrameStats`](crate::frame::FrameStats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameErrorKind {
    /// The input ended before the field was complete.
    #[error("truncated")]
    Truncated,
    /// The frame does not start with the rumour magic bytes.
    #[error("bad magic")]
    BadMagic,
    /// The frame's protocol version is not one this build speaks.
    #[error("unsupported protocol version {found}")]
    UnsupportedVersion {
        /// The version byte found in the frame.
        found: u8,
    },
    /// The bytes cannot be a frame of the expected type: an undefined flag bit, a stream frame
    /// where a datagram was expected (or the reverse), a zero-length label, an over-long varint,
    /// or bytes left over after the message.
    #[error("malformed")]
    Malformed,
    /// The CRC-32 carried by the frame is not the CRC-32 of the bytes it covers.
    #[error("checksum mismatch (frame says {expected:#010x}, bytes give {computed:#010x})")]
    ChecksumMismatch {
        /// The checksum written in the frame.
        expected: u32,
        /// The checksum computed over the received bytes.
        computed: u32,
    },
    /// The frame carries a cluster label other than ours (or one when we have none).
    #[error("cluster label mismatch")]
    LabelMismatch,
    /// We require a cluster label and the frame carries none.
    #[error("missing cluster label")]
    MissingLabel,
    /// A length field is larger than the configured limit.
    #[error("length {len} is over the limit of {limit}")]
    OverLimit {
        /// The length read from the frame (or asked for by the caller).
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The frame is sealed (encrypted) and this codec has no key to open it.
    #[error("sealed frame and no key to open it")]
    Sealed,
    /// The frame is sealed and no installed key opens it: another key, or bytes altered or cut
    /// on the way (the tag covers every byte of the frame).
    #[error("sealed frame that no installed key opens")]
    NotAuthentic,
    /// The frame is not sealed, and this codec accepts only sealed frames (it has keys and
    /// `verify_incoming` is on).
    #[error("plaintext frame and only sealed frames are accepted")]
    Unsealed,
}

/// A frame that could not be decoded (or a message that cannot be encoded): the field, the byte
/// offset of that field in the input, and the kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame rejected: {kind} ({what} at byte {offset})")]
pub struct FrameError {
    /// The field being read when decoding failed, for example `"magic"` or `"message length"`.
    pub what: &'static str,
    /// Byte offset of that field from the start of the frame.
    pub offset: usize,
    /// What was wrong with it.
    pub kind: FrameErrorKind,
}

impl FrameError {
    pub(crate) const fn new(what: &'static str, offset: usize, kind: FrameErrorKind) -> Self {
        Self { what, offset, kind }
    }
}

/// An error from a [`Transport`](crate::Transport) or from building one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A socket could not be bound to the address.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A socket operation failed.
    #[error("{op} {addr}: {source}")]
    Io {
        /// What was being done: `"send datagram to"`, `"connect to"`, `"write to"`, ...
        op: &'static str,
        /// The peer (or local) address involved.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A socket operation did not finish in time.
    #[error("{op} {addr} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The peer address involved.
        addr: SocketAddr,
        /// The deadline that passed.
        after: Duration,
    },
    /// A message is larger than the configured limit; it was not sent.
    #[error("{what} of {len} bytes is over the limit of {limit} bytes")]
    OverLimit {
        /// Which limit: `"datagram"` or `"reliable message"`.
        what: &'static str,
        /// The message's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// No endpoint listens at the address, or a partition separates us from it (in-memory
    /// network), so a reliable message cannot be delivered.
    #[error("{to} is unreachable")]
    Unreachable {
        /// The destination.
        to: SocketAddr,
    },
    /// The queue of messages waiting for a connection to the peer is full; the message was
    /// dropped.
    #[error("the send queue to {to} is full")]
    QueueFull {
        /// The destination.
        to: SocketAddr,
    },
    /// The table of peers with a writer is full (`max_outbound_peers`), so no connection to a
    /// new peer can be opened now; the message was dropped.
    #[error("too many peers to send to; nothing sent to {to}")]
    PeerLimit {
        /// The destination.
        to: SocketAddr,
    },
    /// A configuration value makes no sense.
    #[error("invalid configuration: {field} {reason}")]
    Config {
        /// The field at fault.
        field: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The transport was shut down.
    #[error("the transport is shut down")]
    Shutdown,
    /// A key could not be read: wrong length or encoding. The key itself is never part of
    /// the message.
    #[error("invalid key: {reason}")]
    KeyFormat {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key is not in the keyring (to make it primary or remove it, install it first).
    #[error("key {fingerprint} is not installed")]
    UnknownKey {
        /// The key's fingerprint (never the key).
        fingerprint: String,
    },
    /// The primary key cannot be removed: make another key primary first.
    #[error("key {fingerprint} is the primary key; make another key primary before removing it")]
    RemovePrimaryKey {
        /// The key's fingerprint (never the key).
        fingerprint: String,
    },
    /// A frame could not be decoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
}
