//! Errors of the gossip crate.

use std::net::SocketAddr;

/// What went wrong in the gossip crate, and where. A call that returns an error left the store
/// as it was (for a multi-key message, the keys before the failing one were applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message from `from` could not be decoded; nothing was applied.
    #[error("cannot decode a gossip message from {from}")]
    Decode {
        /// Where the bytes came from.
        from: SocketAddr,
        /// Why decoding failed.
        #[source]
        source: postcard::Error,
    },
    /// A message from `from` was longer than the limit; it was dropped unread.
    #[error("a {len}-byte gossip message from {from} is over the {max}-byte limit")]
    TooLarge {
        /// Where the bytes came from.
        from: SocketAddr,
        /// Its length.
        len: usize,
        /// The limit ([`Config::max_message_bytes`](crate::Config::max_message_bytes)).
        max: usize,
    },
    /// A change or command named the empty key, which the store does not hold.
    #[error("the empty string is not a valid key")]
    EmptyKey,
    /// A value received for `key` could not be decoded with its codec; the key is unchanged.
    #[error("cannot decode the `{codec}` value received for key `{key}`: {source}")]
    Value {
        /// The key.
        key: String,
        /// The codec id the value was tagged with.
        codec: String,
        /// What the codec said.
        source: rumour_ring::Error,
    },
    /// `key` holds a value of codec `stored` and was offered one of codec `offered`; the key is
    /// unchanged.
    #[error("key `{key}` holds a `{stored}` value, not a `{offered}` value")]
    CodecMismatch {
        /// The key.
        key: String,
        /// The codec of the stored value.
        stored: String,
        /// The codec of the value offered.
        offered: String,
    },
    /// A compare-and-swap on `key` expected version `expected` but the key is at `found`
    /// (another change landed in between); nothing was written.
    #[error("compare-and-swap on `{key}` expected version {expected} but found {found}")]
    CasConflict {
        /// The key.
        key: String,
        /// The version the caller read.
        expected: u64,
        /// The version the key is at now.
        found: u64,
    },
    /// A compare-and-swap on `key` met a concurrent change on every one of its `attempts`.
    #[error("compare-and-swap on `{key}` gave up after {attempts} conflicting attempts")]
    CasRetriesExhausted {
        /// The key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
}
