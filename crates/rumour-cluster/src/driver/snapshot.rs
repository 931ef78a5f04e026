//! What a running node reports through its handle: members and counters, copied out of the
//! node task.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumour_swim::{Member, State};
use rumour_transport::frame::FrameStats;

use crate::{Node, NodeStats};

/// One member as the local node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberInfo {
    /// Its name.
    pub name: String,
    /// Its advertised address.
    pub addr: SocketAddr,
    /// Alive, suspect, dead or left.
    pub state: State,
    /// The highest incarnation heard of.
    pub incarnation: u32,
    /// Its metadata.
    pub meta: Bytes,
    /// How long it has been in `state`, by the local clock.
    pub since: Duration,
    /// Whether it is the local node.
    pub local: bool,
}

impl MemberInfo {
    /// The view of `member` at `now`, from a node named `local`.
    #[must_use]
    pub fn new(member: &Member, local: &str, now: Instant) -> MemberInfo {
        MemberInfo {
            name: member.name.as_str().to_string(),
            addr: member.addr,
            state: member.state,
            incarnation: member.incarnation.0,
            meta: member.meta.clone(),
            since: now.saturating_duration_since(member.state_changed_at),
            local: member.name.as_str() == local,
        }
    }
}

/// How many members a node holds in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberCounts {
    /// Alive members, the local one included.
    pub alive: usize,
    /// Suspected members.
    pub suspect: usize,
    /// Members declared failed and not yet forgotten.
    pub dead: usize,
    /// Members that left and are not yet forgotten.
    pub left: usize,
}

impl MemberCounts {
    /// Counts the members `node` holds.
    #[must_use]
    pub fn of(node: &Node) -> MemberCounts {
        let mut counts = MemberCounts::default();
        for member in node.members() {
            match member.state {
                State::Alive => counts.alive += 1,
                State::Suspect => counts.suspect += 1,
                State::Dead => counts.dead += 1,
                State::Left => counts.left += 1,
            }
        }
        counts
    }

    /// The count of one state.
    #[must_use]
    pub fn get(&self, state: State) -> usize {
        match state {
            State::Alive => self.alive,
            State::Suspect => self.suspect,
            State::Dead => self.dead,
            State::Left => self.left,
        }
    }
}

/// Counters of the driver itself (the I/O around the node).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Sends the transport refused or failed (a peer unreachable, a socket error).
    pub send_errors: u64,
    /// Messages dropped before reaching the transport because a send queue was full.
    pub sends_dropped: u64,
    /// Messages received but refused by the transport with an error other than shutdown.
    pub recv_errors: u64,
    /// Events handed to subscribers.
    pub events: u64,
    /// Join attempts made by the driver (the first included).
    pub join_attempts: u64,
}

/// A snapshot of every counter of a running node: its own, its layers', the frame codec's, the
/// transport's and the driver's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// The node's counters.
    pub node: NodeStats,
    /// The membership layer's counters.
    pub swim: rumour_swim::Stats,
    /// The KV store's counters.
    pub gossip: rumour_gossip::Stats,
    /// The frame codec's counters (frames dropped by reason).
    pub frame: FrameStats,
    /// The transport's counters.
    pub transport: rumour_transport::Stats,
    /// The driver's counters.
    pub driver: DriverStats,
    /// Lifeguard's local health score (0 is healthy).
    pub health_score: u32,
    /// Members by state.
    pub members: MemberCounts,
}

impl ClusterStats {
    /// The part of the snapshot the node task knows; the handle adds the rest.
    pub(crate) fn of(node: &Node) -> ClusterStats {
        ClusterStats {
            node: node.stats(),
            swim: node.swim().stats(),
            gossip: node.gossip().stats(),
            frame: node.frame().stats(),
            health_score: node.swim().health_score(),
            members: MemberCounts::of(node),
            ..ClusterStats::default()
        }
    }
}
