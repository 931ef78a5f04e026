//! What a scenario run reports.

use std::collections::BTreeMap;

use serde::Serialize;

/// Latency to reach a share of the nodes, in seconds and in gossip rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Seconds until half of the nodes had it.
    pub p50_seconds: f64,
    /// Seconds until 99 % of the nodes had it.
    pub p99_seconds: f64,
    /// Seconds until every node had it.
    pub p100_seconds: f64,
    /// `p50_seconds` in gossip intervals.
    pub p50_rounds: f64,
    /// `p99_seconds` in gossip intervals.
    pub p99_rounds: f64,
    /// `p100_seconds` in gossip intervals.
    pub p100_rounds: f64,
}

impl Spread {
    /// The spread of `times` (seconds, one per node that got it) over `nodes` nodes; `None` if
    /// some node never got it.
    #[must_use]
    pub fn of(times: &mut [f64], nodes: usize, round_seconds: f64) -> Option<Spread> {
        if times.len() < nodes || nodes == 0 {
            return None;
        }
        times.sort_by(f64::total_cmp);
        let at = |share: f64| {
            let rank = ((share * nodes as f64).ceil() as usize).clamp(1, nodes);
            times[rank - 1]
        };
        let (p50, p99, p100) = (at(0.5), at(0.99), at(1.0));
        Some(Spread {
            p50_seconds: p50,
            p99_seconds: p99,
            p100_seconds: p100,
            p50_rounds: p50 / round_seconds,
            p99_rounds: p99 / round_seconds,
            p100_rounds: p100 / round_seconds,
        })
    }
}

/// What the attacker of the `attack` scenario sent and achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AttackFigures {
    /// Crafted packets (datagrams and streams) the attacker sent.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes honest nodes sent to the bystander whose address the reflection requests named.
    pub reflected_bytes: u64,
    /// Distinct honest members declared failed by some honest node.
    pub honest_declared_failed: u64,
    /// The largest member table an honest node held (forged members included).
    pub max_members: u64,
    /// The largest KV store an honest node held, in keys.
    pub max_keys: u64,
    /// Forged members still listed by some honest node at the end of the run.
    pub forged_members_left: u64,
    /// Direct user messages with a forged sender that honest nodes reported as received.
    pub impersonated_messages: u64,
    /// Seconds after the attack stopped until every honest node saw every honest node alive and
    /// the ring replicas agreed.
    pub recovery_seconds: Option<f64>,
}

/// One message kind's share of an idle cluster's traffic, per node and simulated second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct KindRate {
    /// Messages of this kind (for `framing`: datagrams plus streams).
    pub messages_per_node_s: f64,
    /// Their bytes (a layer's encoded message, without channel tag or frame).
    pub bytes_per_node_s: f64,
}

/// What an idle, converged cluster sends, by message kind (`steady`).
///
/// Kinds are named `swim.<kind>` and `kv.<kind>` after the layers' own counters (the cores'
/// `TrafficByKind`); `framing` is everything else on the wire: the one-byte channel tag of
/// every message, the transport frame's header, label and checksum, the compound and stream
/// length prefixes. The kinds add up to `bytes_per_node_s`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IdleTraffic {
    /// Simulated seconds measured (after the cluster converged and settled).
    pub window_seconds: f64,
    /// Every byte sent (frames included) per node per second.
    pub bytes_per_node_s: f64,
    /// Datagrams and streams sent per node per second.
    pub packets_per_node_s: f64,
    /// SWIM full-state exchanges started per node per second (periodic, re-joins, reconnections).
    pub swim_pullpushes_per_node_s: f64,
    /// Attempts to reach reaped failed members per node per second.
    pub reconnect_attempts_per_node_s: f64,
    /// Traffic by kind.
    pub by_kind: BTreeMap<String, KindRate>,
}

/// The outcome of one scenario run. Fields that do not apply to a scenario are `None` (and left
/// out of the JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Cluster size.
    pub nodes: usize,
    /// The run's seed.
    pub seed: u64,
    /// The configuration profile (`lan`, `wan`, `local`).
    pub profile: String,
    /// Datagram loss on every link during the measured phase.
    pub loss: f64,
    /// Whether the scenario reached its goal within its time limit.
    pub converged: bool,
    /// Seconds from the join calls until every node lists every node alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_seconds: Option<f64>,
    /// Dissemination latency of one write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dissemination: Option<Spread>,
    /// Seconds from a crash until the first survivor marks the victim failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_detection_seconds: Option<f64>,
    /// Seconds from a crash until every survivor marks the victim failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_detection_seconds: Option<f64>,
    /// The formula's bound on full detection: a probe cycle plus the suspicion timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection_bound_seconds: Option<f64>,
    /// Live (healthy) members declared failed by anyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_positives: Option<u64>,
    /// Failure declarations about live (healthy) members, counting every observer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_positive_declarations: Option<u64>,
    /// Whether the slow member was declared failed by anyone (`slow` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_member_declared_failed: Option<bool>,
    /// Seconds after healing (or after the last restart) until one view and equal ring replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heal_seconds: Option<f64>,
    /// Seconds until every ring replica is equal (`ring`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_converged_seconds: Option<f64>,
    /// Ring instances that some replica lost or holds as Left while their node is alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_instances: Option<u64>,
    /// Members some node still lists as not alive although they run (zombies of a restart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zombies: Option<u64>,
    /// What an attacker achieved (`attack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack: Option<AttackFigures>,
    /// What the idle, converged cluster sends, by kind (`steady`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleTraffic>,
    /// Suspicions raised, summed over the nodes.
    pub suspicions: u64,
    /// Refutations of self, summed over the nodes.
    pub refutations: u64,
    /// Datagrams and streams sent per node per simulated second.
    pub messages_per_node_s: f64,
    /// Bytes sent per node per simulated second.
    pub bytes_per_node_s: f64,
    /// Simulated seconds.
    pub simulated_seconds: f64,
    /// Wall-clock seconds the run took.
    pub wall_seconds: f64,
    /// The simulator's speed: simulated node-seconds per wall-clock second.
    pub node_seconds_per_wall_second: f64,
    /// The command that replays this run.
    pub replay: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_reads_percentiles_by_rank() {
        let mut times: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Spread::of(&mut times, 100, 0.5).unwrap();
        assert_eq!(
            (s.p50_seconds, s.p99_seconds, s.p100_seconds),
            (50.0, 99.0, 100.0)
        );
        assert_eq!(s.p100_rounds, 200.0);
    }

    #[test]
    fn spread_is_none_when_a_node_never_got_it() {
        let mut times = vec![1.0, 2.0];
        assert!(Spread::of(&mut times, 3, 0.2).is_none());
    }
}
