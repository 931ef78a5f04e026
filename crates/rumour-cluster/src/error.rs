//! Errors of the cluster crate.

/// What went wrong in a node, and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SWIM layer refused a command or its configuration.
    #[error(transparent)]
    Swim(#[from] rumour_swim::Error),
    /// The KV layer refused a command.
    #[error(transparent)]
    Gossip(#[from] rumour_gossip::Error),
    /// The ring refused a value.
    #[error(transparent)]
    Ring(#[from] rumour_ring::Error),
    /// A frame could not be encoded (a stream message over the size limit).
    #[error(transparent)]
    Frame(#[from] rumour_transport::FrameError),
    /// The transport could not bind, or the cluster label is invalid.
    #[error(transparent)]
    Transport(#[from] rumour_transport::TransportError),
    /// The node task has stopped (shut down, or every handle was dropped).
    #[error("node {name} is stopped")]
    Stopped {
        /// The node's name.
        name: String,
    },
    /// The goodbye was still being gossiped when the leave timeout passed.
    #[error("node {name} left, but its goodbye was not gossiped within {timeout:?}")]
    LeaveTimeout {
        /// The node's name.
        name: String,
        /// The timeout given to `leave`.
        timeout: std::time::Duration,
    },
    /// A user message names no live member this node has confirmed (by name or address).
    #[error("no live confirmed member {target} to send a user message to")]
    UnknownMember {
        /// The name or address given.
        target: String,
    },
    /// A user message is over the size limit of its delivery (a datagram's packet budget, a
    /// stream's message limit).
    #[error("user message of {len} bytes exceeds the {max}-byte limit of a {delivery}")]
    UserMessageTooLarge {
        /// The payload's length.
        len: usize,
        /// The largest payload the delivery takes.
        max: usize,
        /// `datagram`, `stream` or `broadcast`.
        delivery: &'static str,
    },
    /// A seed could not be read (see [`Seed`](crate::Seed)).
    #[error("bad seed {seed:?}: {reason}")]
    Seed {
        /// The seed as given.
        seed: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The join failed and the node was built with `abort_if_join_fails`.
    #[error("node {name} could not join: {seen} other live members after {attempts} attempts")]
    JoinFailed {
        /// The node's name.
        name: String,
        /// Join attempts made.
        attempts: u32,
        /// Other live members seen at the end (fewer than `min_joins`).
        seen: usize,
    },
    /// A message inside a frame had a bad channel tag or length.
    #[error("bad envelope at byte {offset}: {reason}")]
    Envelope {
        /// Byte offset inside the frame body.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
}
