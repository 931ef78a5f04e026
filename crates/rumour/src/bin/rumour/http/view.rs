//! What the status pages show, made off the node task from the copy the node publishes
//! ([`Cluster::status`](rumour::Cluster::status)), and serialisable as the pages' JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use rumour::MemberInfo;
use rumour::gossip::HistoryRecord;
use rumour::ring::{Ring, State, Timestamp};
use serde::Serialize;

/// An instance whose last heartbeat is older than this shows as unhealthy (dskit's
/// `-ring.heartbeat-timeout`).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `/memberlist` page: members, KV keys and the message history of one node.
#[derive(Clone, Debug, Serialize)]
pub struct MemberList {
    /// The node whose view this is.
    pub node: String,
    /// Its wall clock, in Unix milliseconds.
    pub now: u64,
    /// Lifeguard's health score (0 is healthy).
    pub health_score: u32,
    /// Members considered alive, the node itself included.
    pub alive: usize,
    /// Every known member, sorted by name.
    pub members: Vec<MemberRow>,
    /// Every key of the KV store, in order.
    pub keys: Vec<KeyRow>,
    /// Changes sent and received, if the node keeps a message history.
    pub history: History,
}

/// One member.
#[derive(Clone, Debug, Serialize)]
pub struct MemberRow {
    /// Its name.
    pub name: String,
    /// Its advertised address.
    pub addr: String,
    /// `alive`, `suspect`, `dead` or `left`.
    pub state: String,
    /// The highest incarnation heard of.
    pub incarnation: u32,
    /// Seconds in this state.
    pub since_secs: f64,
    /// Metadata length in bytes.
    pub meta_len: usize,
    /// The metadata for a person to read: its text if it is short printable UTF-8, else its
    /// first bytes in hex.
    pub meta: String,
    /// The last measured probe round-trip time in milliseconds, if this node probed it.
    pub rtt_ms: Option<f64>,
}

/// How many bytes of metadata a member row shows.
const META_PREVIEW: usize = 64;

/// `meta` as short readable text: UTF-8 without control characters as it is, anything else as
/// hex; past [`META_PREVIEW`] characters (or bytes, in hex) it is cut with an ellipsis.
fn meta_preview(meta: &[u8]) -> String {
    match std::str::from_utf8(meta) {
        Ok(text) if !text.chars().any(char::is_control) => {
            let head: String = text.chars().take(META_PREVIEW).collect();
            let more = if head.len() < text.len() { "…" } else { "" };
            format!("{head}{more}")
        }
        _ => {
            let head = &meta[..meta.len().min(META_PREVIEW)];
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            let more = if head.len() < meta.len() { "…" } else { "" };
            format!("0x{hex}{more}")
        }
    }
}

/// One key of the KV store.
#[derive(Clone, Debug, Serialize)]
pub struct KeyRow {
    /// The key.
    pub key: String,
    /// The codec of its value.
    pub codec: String,
    /// Node-local count of accepted changes.
    pub version: u64,
    /// Whether it is deleted.
    pub deleted: bool,
    /// Wall time of the last local write, Unix milliseconds.
    pub updated: u64,
    /// Encoded size of the value in bytes.
    pub size: usize,
}

/// The message history of a node.
#[derive(Clone, Debug, Default, Serialize)]
pub struct History {
    /// Whether the node records one.
    pub enabled: bool,
    /// Changes sent, newest first.
    pub sent: Vec<HistoryRow>,
    /// Changes received, newest first.
    pub received: Vec<HistoryRow>,
}

/// One change sent or received.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryRow {
    /// Increasing over both lists.
    pub id: u64,
    /// Wall time, Unix milliseconds.
    pub at: u64,
    /// The key.
    pub key: String,
    /// The value's codec.
    pub codec: String,
    /// Encoded size of the value.
    pub value_len: usize,
    /// The key's version after the change (0: it changed nothing).
    pub version_after: u64,
    /// Entries the change carried.
    pub changes: Vec<String>,
}

/// The `/ring` page: the instances of one node's ring.
#[derive(Clone, Debug, Serialize)]
pub struct RingView {
    /// The node whose view this is.
    pub node: String,
    /// Its wall clock, in Unix milliseconds.
    pub now: u64,
    /// Whether the store holds a ring at all.
    pub present: bool,
    /// Whether the Forget action is enabled (`--http-allow-forget`).
    pub allow_forget: bool,
    /// Every instance, sorted by id.
    pub instances: Vec<InstanceRow>,
}

/// One ring instance.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceRow {
    /// Its id.
    pub id: String,
    /// `PENDING`, `JOINING`, `ACTIVE`, `LEAVING` or `LEFT`.
    pub state: String,
    /// Whether its heartbeat is fresh (within [`HEARTBEAT_TIMEOUT`]).
    pub healthy: bool,
    /// Its address.
    pub addr: String,
    /// Its zone (empty without zones).
    pub zone: String,
    /// How many tokens it holds.
    pub tokens: usize,
    /// Its share of the token space, in percent.
    pub ownership: f64,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_secs: f64,
    /// Seconds since it first registered (`None` when unknown).
    pub registered_age_secs: Option<f64>,
    /// Whether the page offers to forget it: unhealthy and not `LEFT` yet (as dskit's page).
    pub forgettable: bool,
}

/// The rows of `members`.
pub fn member_rows(members: &[MemberInfo]) -> Vec<MemberRow> {
    members
        .iter()
        .map(|m| MemberRow {
            name: m.name.clone(),
            addr: m.addr.to_string(),
            state: m.state.to_string(),
            incarnation: m.incarnation,
            since_secs: m.since.as_secs_f64(),
            meta_len: m.meta.len(),
            meta: meta_preview(&m.meta),
            rtt_ms: m.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
        })
        .collect()
}

impl History {
    /// The history of a node that records one if `enabled`, from its records oldest first.
    pub fn new(enabled: bool, sent: &[HistoryRecord], received: &[HistoryRecord]) -> History {
        History {
            enabled,
            sent: newest_first(sent.iter()),
            received: newest_first(received.iter()),
        }
    }
}

fn newest_first<'a>(records: impl Iterator<Item = &'a HistoryRecord>) -> Vec<HistoryRow> {
    let mut rows: Vec<HistoryRow> = records.map(HistoryRow::from).collect();
    rows.reverse();
    rows
}

impl From<&HistoryRecord> for HistoryRow {
    fn from(record: &HistoryRecord) -> HistoryRow {
        HistoryRow {
            id: record.id,
            at: record.at.0,
            key: record.key.clone(),
            codec: record.codec.clone(),
            value_len: record.value_len,
            version_after: record.version_after.0,
            changes: record.changes.clone(),
        }
    }
}

impl RingView {
    /// The page of the node `node`, whose wall clock reads `wall`, holding `ring`, with the
    /// Forget action enabled if `allow_forget`. O(n log n) in the instances and tokens.
    pub fn new(node: String, wall: Timestamp, ring: Option<&Ring>, allow_forget: bool) -> RingView {
        RingView {
            node,
            now: wall.0,
            present: ring.is_some(),
            allow_forget,
            instances: ring.map(|r| instances(r, wall)).unwrap_or_default(),
        }
    }
}

fn instances(ring: &Ring, wall: Timestamp) -> Vec<InstanceRow> {
    // One pass to index the shares by id, so each instance finds its own in O(log n).
    let ownership: BTreeMap<String, f64> = ring.ownership().into_iter().collect();
    let share = |id: &str| ownership.get(id).map_or(0.0, |fraction| fraction * 100.0);
    let age = |at: Timestamp| wall.0.saturating_sub(at.0) as f64 / 1000.0;
    ring.instances()
        .map(|i| InstanceRow {
            id: i.id().to_string(),
            state: i.state().as_str().to_string(),
            healthy: i.is_heartbeat_healthy(wall, HEARTBEAT_TIMEOUT),
            forgettable: i.state() != State::Left
                && !i.is_heartbeat_healthy(wall, HEARTBEAT_TIMEOUT),
            registered_age_secs: Some(i.instance().registered_at)
                .filter(|at| at.0 != 0)
                .map(age),
            addr: i.addr().to_string(),
            zone: i.zone().to_string(),
            tokens: i.tokens().as_slice().len(),
            ownership: share(i.id()),
            heartbeat_age_secs: age(i.heartbeat()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rumour::ring::{Instance, Tokens};

    use super::*;

    #[test]
    fn metadata_is_shown_as_text_when_readable_and_as_hex_otherwise() {
        assert_eq!(meta_preview(b"zone=a"), "zone=a");
        assert_eq!(meta_preview(&[0, 1, 0xff]), "0x0001ff");
        assert_eq!(meta_preview(b"a\nb"), "0x610a62");
        let long = "x".repeat(100);
        assert_eq!(
            meta_preview(long.as_bytes()),
            format!("{}…", "x".repeat(64))
        );
        assert_eq!(meta_preview(b""), "");
    }

    #[test]
    fn a_ring_of_thousands_of_instances_renders_with_every_share() {
        let mut ring = Ring::new();
        let n = 3000u32;
        for i in 0..n {
            let tokens = Tokens::new(vec![i.wrapping_mul(1_431_655_765), i]);
            let addr = format!("10.0.{}.{}:1", i / 256, i % 256);
            let instance = Instance::new(addr, "", State::Active, tokens, Timestamp(1));
            ring.set_instance(&format!("i{i:05}"), instance).unwrap();
        }
        let started = Instant::now();
        let view = RingView::new("me".into(), Timestamp(2), Some(&ring), false);
        assert_eq!(view.instances.len(), n as usize);
        assert!(
            view.instances
                .iter()
                .all(|i| i.registered_age_secs == Some(0.001))
        );
        let total: f64 = view.instances.iter().map(|i| i.ownership).sum();
        assert!((total - 100.0).abs() < 1e-6, "{total}");
        // Generous: the quadratic page took seconds at this size.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn only_unhealthy_instances_not_left_yet_are_offered_to_forget() {
        let mut ring = Ring::new();
        let minute = 60_000;
        for (id, state, heartbeat) in [
            ("fresh", State::Active, 10 * minute),
            ("stale", State::Active, minute),
            ("gone", State::Left, minute),
        ] {
            let tokens = Tokens::new(vec![id.len() as u32]);
            let instance = Instance::new("10.0.0.1:1", "z", state, tokens, Timestamp(1));
            ring.set_instance(id, instance).unwrap();
            ring.set_heartbeat(id, Timestamp(heartbeat)).unwrap();
        }
        let view = RingView::new("me".into(), Timestamp(10 * minute + 1), Some(&ring), true);
        let offered: Vec<(&str, bool)> = view
            .instances
            .iter()
            .map(|i| (i.id.as_str(), i.forgettable))
            .collect();
        assert_eq!(
            offered,
            vec![("fresh", false), ("gone", false), ("stale", true)]
        );
    }
}
