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
    /// A pull-push message arrived in a datagram; pull-push runs only over streams. Nothing was
    /// applied and nothing is sent.
    #[error("a pull-push message from {from} arrived in a datagram")]
    PullPushOnDatagram {
        /// Where the datagram claimed to come from.
        from: SocketAddr,
    },
    /// A pull-push message from `from` named another address (`named`) as its sender, or an
    /// answer came from another peer than the exchange's; nothing was applied or sent.
    #[error("a pull-push message from {from} names {named} as its sender")]
    SessionMismatch {
        /// Where the message came from.
        from: SocketAddr,
        /// The address it named.
        named: SocketAddr,
    },
    /// A message from `from` carried more of `what` than the configured limit; it was refused.
    #[error("a message from {from} carries {len} {what}, over the limit of {max}")]
    Limit {
        /// Where the message came from.
        from: SocketAddr,
        /// What was counted (keys, key bytes, value bytes, entry names, stream messages).
        what: &'static str,
        /// How many it carried.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A change for `key` from `from` was stamped `at`, after `latest` (this node's wall time
    /// plus `max_clock_skew`); it was refused.
    #[error(
        "a change for `{key}` from {from} is stamped {at} ms, after the latest allowed {latest} ms"
    )]
    FutureTimestamp {
        /// Where the change came from.
        from: SocketAddr,
        /// The key.
        key: String,
        /// The change's marker time (ms since the Unix epoch).
        at: u64,
        /// The latest time accepted.
        latest: u64,
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
