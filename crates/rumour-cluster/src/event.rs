//! What a node reports.

use bytes::Bytes;
use rumour_swim::{Event as SwimEvent, Member};

/// A change a node reports to its user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A member joined (or came back).
    MemberJoined {
        /// Its name.
        name: String,
        /// Its metadata (memberlist's `Node.Meta` in `NotifyJoin`).
        meta: Bytes,
    },
    /// A member changed its metadata or address, or cleared a suspicion (memberlist's
    /// `NotifyUpdate`).
    MemberUpdated {
        /// Its name.
        name: String,
        /// Its metadata, as now known.
        meta: Bytes,
    },
    /// A member is suspected of having failed.
    MemberSuspected {
        /// Its name.
        name: String,
    },
    /// A member was declared failed.
    MemberFailed {
        /// Its name.
        name: String,
    },
    /// A member left gracefully.
    MemberLeft {
        /// Its name.
        name: String,
    },
    /// This node refuted an accusation against itself.
    RefutedSelf,
    /// The local health score changed.
    HealthScoreChanged {
        /// The new score (0 is healthy).
        score: u32,
    },
    /// A watched key of the KV store changed.
    KeyChanged {
        /// The key.
        key: String,
    },
    /// A user message arrived (memberlist's `NotifyMsg`): sent directly to this node, or the
    /// first copy of a user broadcast.
    UserMessage {
        /// The sender's name (the broadcast's origin), as the message states it.
        from: String,
        /// The application's bytes.
        bytes: Bytes,
        /// Whether it was a broadcast.
        broadcast: bool,
    },
    /// Another address claimed a member's name and was refused (memberlist's conflict
    /// delegate). With `name` this node's own name, another process uses this node's name (or
    /// an old life of it at another address is still gossiped): this node reports it instead of
    /// raising its incarnation against it.
    AddressConflict {
        /// The name.
        name: String,
        /// The address on record (this node's own, for a conflict about itself).
        known: std::net::SocketAddr,
        /// The address that claimed the name.
        claimed: std::net::SocketAddr,
    },
    /// A watch had more pending notifications than `watch_buffer` (see
    /// [`rumour_gossip::Config::watch_buffer`]) and lost some: re-read every key it covers.
    WatchLagged {
        /// The watch (from [`Node::watch_prefix`](crate::Node::watch_prefix) or
        /// [`Node::watch_key`](crate::Node::watch_key)).
        watch: rumour_gossip::WatchId,
        /// Notifications lost since its previous `WatchLagged`.
        dropped: u64,
    },
}

fn name(member: &Member) -> String {
    member.name.as_str().to_string()
}

impl NodeEvent {
    /// The node event for a SWIM event, if users see one.
    #[must_use]
    pub fn from_swim(event: &SwimEvent) -> Option<NodeEvent> {
        Some(match event {
            SwimEvent::MemberJoined(m) => NodeEvent::MemberJoined {
                name: name(m),
                meta: m.meta.clone(),
            },
            SwimEvent::MemberUpdated(m) => NodeEvent::MemberUpdated {
                name: name(m),
                meta: m.meta.clone(),
            },
            SwimEvent::MemberSuspected(m) => NodeEvent::MemberSuspected { name: name(m) },
            SwimEvent::MemberFailed(m) => NodeEvent::MemberFailed { name: name(m) },
            SwimEvent::MemberLeft(m) => NodeEvent::MemberLeft { name: name(m) },
            SwimEvent::RefutedSelf { .. } => NodeEvent::RefutedSelf,
            SwimEvent::HealthScoreChanged { score } => {
                NodeEvent::HealthScoreChanged { score: *score }
            }
            SwimEvent::AddressConflict {
                name,
                known,
                claimed,
            } => NodeEvent::AddressConflict {
                name: name.as_str().to_string(),
                known: *known,
                claimed: *claimed,
            },
            _ => return None,
        })
    }
}
