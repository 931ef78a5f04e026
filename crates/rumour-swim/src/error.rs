//! The crate's one error type.

use crate::message::MessageKind;

/// What went wrong. Every input that returns an error leaves the membership state unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from the network are not a swim message.
    #[error("could not decode a swim message ({len} bytes): {source}")]
    Decode {
        /// Length of the rejected input.
        len: usize,
        /// What postcard reported.
        source: postcard::Error,
    },
    /// A message decoded but bytes were left after it.
    #[error("a swim {kind} message is followed by {trailing} unexpected bytes")]
    TrailingBytes {
        /// The message that decoded.
        kind: MessageKind,
        /// How many bytes followed it.
        trailing: usize,
    },
    /// A decoded message breaks a protocol limit (name length, metadata size, member count).
    #[error("a swim {kind} message is invalid: {reason}")]
    Invalid {
        /// The offending message.
        kind: MessageKind,
        /// Which limit it breaks.
        reason: &'static str,
    },
    /// A message arrived on a channel it is never sent on (a full state in a datagram, an
    /// indirect ping on a stream).
    #[error("a swim {kind} message arrived on the {channel} channel, where it is never sent")]
    WrongChannel {
        /// The message.
        kind: MessageKind,
        /// `"datagram"` or `"stream"`.
        channel: &'static str,
    },
    /// A node name is empty or too long.
    #[error("node name of {len} bytes is invalid: names are 1 to {max} bytes")]
    InvalidName {
        /// Length of the rejected name.
        len: usize,
        /// The largest name allowed.
        max: usize,
    },
    /// `set_meta` (or construction) was given more metadata than the configured limit.
    #[error("node metadata of {len} bytes exceeds the configured limit of {max} bytes")]
    MetaTooLarge {
        /// Length of the rejected metadata.
        len: usize,
        /// `Config::meta_max_size`.
        max: usize,
    },
    /// A configuration was rejected when it was built.
    #[error("invalid swim configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A command was given after `leave`: a node that left does not come back.
    #[error("this node has left the cluster; create a new machine to join again")]
    Left,
}
