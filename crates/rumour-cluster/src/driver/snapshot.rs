//! What a running node reports through its handle: members and counters, copied out of the
//! node task, and the [`Status`] the status pages render.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumour_gossip::HistoryRecord;
use rumour_ring::{Ring, Timestamp, Value};
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
    /// The smoothed round-trip time of the local node's direct probes of it (see
    /// [`Member::rtt`]); `None` before a direct probe was answered, and for the local node.
    pub rtt: Option<Duration>,
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
            rtt: member.rtt,
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
    /// Messages dropped before reaching the transport, for any reason: a send queue full,
    /// the peer table full, or the queues' byte budget spent.
    pub sends_dropped: u64,
    /// Of `sends_dropped`: reliable messages dropped because 1024 other peers already had a
    /// send queue and task.
    pub sends_dropped_peers: u64,
    /// Of `sends_dropped`: messages dropped because the send queues together already held
    /// 64 MiB.
    pub sends_dropped_bytes: u64,
    /// Messages received but refused by the transport with an error other than shutdown.
    pub recv_errors: u64,
    /// Events handed to subscribers.
    pub events: u64,
    /// Join attempts: those of the node's join (the first included, see
    /// [`JoinStatus::attempts`](crate::join::JoinStatus::attempts)) and the driver's periodic
    /// rejoins.
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

/// How old a [`Status`] may be before the node task takes a new one: requests in between
/// share the last copy, so however many pages are asked for, the node copies its state at
/// most this often.
pub const STATUS_MAX_AGE: Duration = Duration::from_millis(500);

/// A copy of what the status pages show, taken on the node task (see
/// [`Cluster::status`](super::Cluster::status)) and rendered elsewhere: taking it clones the
/// members, the ring and the stored values (cheap next to encoding or analysing them), and
/// everything costly (encoding values, ring ownership) is left to the reader.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// The node's name.
    pub name: String,
    /// When it was taken, by the node's clock.
    pub taken: Instant,
    /// The node's wall clock when it was taken.
    pub wall: Timestamp,
    /// Lifeguard's health score (0 is healthy).
    pub health_score: u32,
    /// Members considered alive, the node itself included.
    pub alive: usize,
    /// Every member, sorted by name.
    pub members: Vec<MemberInfo>,
    /// The ring, if the store holds one.
    pub ring: Option<Ring>,
    /// Every key of the KV store, in order.
    pub keys: Vec<KeyInfo>,
    /// Whether the node keeps a message history.
    pub history_enabled: bool,
    /// Changes sent, oldest first.
    pub history_sent: Vec<HistoryRecord>,
    /// Changes received, oldest first.
    pub history_received: Vec<HistoryRecord>,
}

/// One key of the KV store, in a [`Status`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key.
    pub key: String,
    /// The codec id of its value.
    pub codec: &'static str,
    /// Node-local count of accepted changes.
    pub version: u64,
    /// Whether it is deleted.
    pub deleted: bool,
    /// Wall time of the last write.
    pub updated: Timestamp,
    /// A copy of the value (tombstones included).
    pub value: Arc<dyn Value>,
}

impl Status {
    /// Copies the state of `node` at `now`.
    pub(crate) fn of(node: &Node, now: Instant) -> Status {
        let local = node.name().to_string();
        let gossip = node.gossip();
        let history = gossip.history();
        Status {
            members: node
                .members()
                .map(|m| MemberInfo::new(&m, &local, now))
                .collect(),
            name: local,
            taken: now,
            wall: gossip.wall_time(now),
            health_score: node.swim().health_score(),
            alive: node.num_alive(),
            ring: node.ring(),
            keys: gossip
                .entries()
                .map(|(key, entry)| KeyInfo {
                    key: key.to_string(),
                    codec: entry.codec(),
                    version: entry.version.0,
                    deleted: entry.is_deleted(),
                    updated: entry.marker.updated,
                    value: Arc::from(entry.value.clone_box()),
                })
                .collect(),
            history_enabled: history.enabled(),
            history_sent: history.sent().cloned().collect(),
            history_received: history.received().cloned().collect(),
        }
    }
}
