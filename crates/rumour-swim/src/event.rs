//! What the machine reports: membership changes and the local health score.

use std::net::SocketAddr;

use crate::member::{Incarnation, Member, NodeName};

/// A change the embedder may want to act on. Events queue inside the machine (bounded; the
/// oldest is dropped and counted in [`Stats::events_dropped`](crate::Stats)) and are read with
/// [`Swim::poll_event`](crate::Swim::poll_event); the machine never waits for a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member was learned of, or came back after being dead or left.
    MemberJoined(Member),
    /// A live member changed its metadata or address, or cleared a suspicion.
    MemberUpdated(Member),
    /// A member is suspected of having failed.
    MemberSuspected(Member),
    /// A member was declared dead.
    MemberFailed(Member),
    /// A member left gracefully.
    MemberLeft(Member),
    /// A member was forgotten: dead or left for `gossip_to_the_dead_time`, or never confirmed
    /// (evicted to make room, or unanswered for `unconfirmed_timeout`).
    MemberReaped(Member),
    /// A member answered a ping of this node at its address for the first time (or since its
    /// address changed): from now on it is probed, gossiped to and exchanged with. An
    /// embedder that sends its own traffic to members should wait for this event rather than
    /// [`MemberJoined`](Event::MemberJoined), which a forged alive can cause.
    MemberConfirmed(Member),
    /// The local node refuted an accusation against itself by raising its incarnation.
    RefutedSelf {
        /// The new incarnation.
        incarnation: Incarnation,
    },
    /// The local health score changed (0 is healthy).
    HealthScoreChanged {
        /// The new score.
        score: u32,
    },
    /// Another address claimed a known member's name and was refused.
    AddressConflict {
        /// The name.
        name: NodeName,
        /// The address on record.
        known: SocketAddr,
        /// The address that claimed the name.
        claimed: SocketAddr,
    },
}

/// The machine's pending events.
pub(crate) type EventQueue = rumour_wire::BoundedQueue<Event>;
