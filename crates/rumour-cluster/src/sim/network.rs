//! The simulated network: latency, loss, duplication, reordering, packet budget, partitions and
//! per-packet rules. Faults are data here, not global failpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::NodeId;
use super::streams::{Cost, StreamConfig, StreamStats, Streams};
use crate::transmit::Delivery;

/// How every link behaves unless a rule says otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way latency is drawn uniformly from this range; different draws reorder packets.
    pub latency: (Duration, Duration),
    /// Probability that a datagram is lost. Streams are reliable (never lost, only
    /// partitioned) but pay for loss in time: each lost segment costs a TCP retransmission
    /// timeout, 200 ms doubling (see [`retransmission_delay`]).
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Datagrams larger than this are dropped, like an MTU would.
    pub packet_budget: usize,
}

impl Default for LinkConfig {
    /// A LAN: 0.2 to 1 ms latency, no loss, no duplication, 1,400-byte datagrams.
    fn default() -> Self {
        LinkConfig {
            latency: (Duration::from_micros(200), Duration::from_millis(1)),
            loss: 0.0,
            duplicate: 0.0,
            packet_budget: 1400,
        }
    }
}

/// What a rule decides for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the packet through the normal link model.
    Pass,
    /// Drop it.
    Drop,
    /// Deliver it with this extra delay (after the link model).
    Delay(Duration),
}

/// What a rule sees of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Stream (`true`) or datagram.
    pub delivery: Delivery,
    /// Size in bytes.
    pub len: usize,
}

/// A per-packet rule, for targeted faults.
pub type Rule = Box<dyn FnMut(&PacketInfo) -> Verdict>;

/// Why the network did not deliver a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Random datagram loss.
    Loss,
    /// A partition separates the two nodes.
    Partition,
    /// A rule dropped it.
    Rule,
    /// The datagram was larger than the packet budget.
    Budget,
    /// The receiver refused the stream's connection (see [`StreamConfig::refuse_past_limit`]).
    Refused,
}

/// The fate of one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Delivered once or more, after these delays.
    Deliver(Vec<Duration>),
    /// Not delivered.
    Dropped(Drop),
}

/// The simulated network's state.
pub struct Network {
    link: LinkConfig,
    /// Links configured apart from the default, by direction.
    links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    rng: ChaCha8Rng,
    /// Group of every node while a partition is on (index = node id); empty when healed.
    groups: Vec<u32>,
    /// Directed group pairs that cannot talk.
    blocked: BTreeSet<(u32, u32)>,
    rules: Vec<Rule>,
    /// The connections streams travel on.
    streams: Streams,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("link", &self.link)
            .field("partitioned", &!self.blocked.is_empty())
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Network {
    /// A copy of this network in its current state, its random stream included, that goes on
    /// apart; `None` if it holds a [`Rule`] (a closure, which cannot be copied).
    pub(crate) fn fork(&self) -> Option<Network> {
        self.rules.is_empty().then(|| Network {
            link: self.link.clone(),
            links: self.links.clone(),
            rng: self.rng.clone(),
            groups: self.groups.clone(),
            blocked: self.blocked.clone(),
            rules: Vec::new(),
            streams: self.streams.clone(),
        })
    }
}

impl Network {
    /// A healed network with `link` on every link, drawing from `rng`.
    pub fn new(link: LinkConfig, rng: ChaCha8Rng) -> Network {
        Network {
            link,
            links: BTreeMap::new(),
            rng,
            groups: Vec::new(),
            blocked: BTreeSet::new(),
            rules: Vec::new(),
            streams: Streams::default(),
        }
    }

    /// Replaces the connection model of streams (see [`StreamConfig`]).
    pub fn set_streams(&mut self, config: StreamConfig) {
        self.streams.config = config;
    }

    /// The connection model's settings.
    pub fn streams(&self) -> StreamConfig {
        self.streams.config
    }

    /// The connection model's counters.
    pub fn stream_stats(&self) -> StreamStats {
        self.streams.stats
    }

    /// Forgets the connections of a node that crashed or restarted.
    pub(crate) fn forget_connections(&mut self, node: NodeId) {
        self.streams.forget(node);
    }

    /// Decides what happens to one packet sent at `now` (virtual time since the start): as
    /// [`Network::route`], and a stream also pays for its connection (see [`StreamConfig`]).
    pub fn route_at(&mut self, packet: PacketInfo, now: Duration) -> Fate {
        let mut fate = self.route(packet);
        if packet.delivery != Delivery::Stream {
            return fate;
        }
        let Fate::Deliver(delays) = &mut fate else {
            return fate;
        };
        match self.streams.cost(packet.from, packet.to, now) {
            Cost::Open => {}
            Cost::Connect { wait } => {
                let link = self
                    .links
                    .get(&(packet.from, packet.to))
                    .unwrap_or(&self.link);
                // SYN and SYN-ACK before the message's bytes.
                let handshake =
                    Self::latency(&mut self.rng, link) + Self::latency(&mut self.rng, link);
                delays[0] += wait + handshake;
            }
            Cost::Refused => return Fate::Dropped(Drop::Refused),
        }
        self.streams
            .record(packet.from, packet.to, now, now + delays[0]);
        fate
    }

    /// The link configuration.
    pub fn link(&self) -> &LinkConfig {
        &self.link
    }

    /// Replaces the link configuration (for example to start or stop loss).
    pub fn set_link(&mut self, link: LinkConfig) {
        self.link = link;
    }

    /// Gives the link from `from` to `to` (that direction only) its own configuration.
    pub fn set_link_between(&mut self, from: NodeId, to: NodeId, link: LinkConfig) {
        self.links.insert((from, to), link);
    }

    /// Returns the link from `from` to `to` to the default configuration.
    pub fn reset_link_between(&mut self, from: NodeId, to: NodeId) {
        self.links.remove(&(from, to));
    }

    /// Adds a per-packet rule; rules run in the order they were added, the first non-`Pass`
    /// verdict wins.
    pub fn add_rule(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear_rules(&mut self) {
        self.rules.clear();
    }

    /// Splits the nodes into `sides`: nodes on different sides cannot talk, either way. Nodes
    /// named on no side form one more side of their own.
    pub fn partition(&mut self, sides: &[Vec<NodeId>], nodes: usize) {
        self.assign_groups(sides, nodes);
        let count = sides.len() as u32 + 1;
        for a in 0..count {
            for b in 0..count {
                if a != b {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    /// Blocks packets from `from` to `to` (and only that way).
    pub fn partition_one_way(&mut self, from: &[NodeId], to: &[NodeId], nodes: usize) {
        self.assign_groups(&[from.to_vec(), to.to_vec()], nodes);
        self.blocked.insert((0, 1));
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        self.groups.clear();
        self.blocked.clear();
    }

    /// Whether a partition is on.
    pub fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }

    fn assign_groups(&mut self, sides: &[Vec<NodeId>], nodes: usize) {
        self.heal();
        let rest = sides.len() as u32;
        self.groups = vec![rest; nodes];
        for (group, side) in sides.iter().enumerate() {
            for node in side {
                if let Some(slot) = self.groups.get_mut(node.0) {
                    *slot = group as u32;
                }
            }
        }
    }

    fn separated(&self, from: NodeId, to: NodeId) -> bool {
        if self.blocked.is_empty() {
            return false;
        }
        let group = |n: NodeId| self.groups.get(n.0).copied().unwrap_or(u32::MAX);
        self.blocked.contains(&(group(from), group(to)))
    }

    fn latency(rng: &mut ChaCha8Rng, link: &LinkConfig) -> Duration {
        let (lo, hi) = link.latency;
        if hi <= lo { lo } else { rng.gen_range(lo..=hi) }
    }

    /// Decides what happens to one packet, without the connection model of streams.
    pub fn route(&mut self, packet: PacketInfo) -> Fate {
        if self.separated(packet.from, packet.to) {
            return Fate::Dropped(Drop::Partition);
        }
        let mut extra = Duration::ZERO;
        for rule in &mut self.rules {
            match rule(&packet) {
                Verdict::Pass => continue,
                Verdict::Drop => return Fate::Dropped(Drop::Rule),
                Verdict::Delay(d) => {
                    extra = d;
                    break;
                }
            }
        }
        let link = self
            .links
            .get(&(packet.from, packet.to))
            .unwrap_or(&self.link);
        if packet.delivery == Delivery::Datagram {
            if packet.len > link.packet_budget {
                return Fate::Dropped(Drop::Budget);
            }
            if link.loss > 0.0 && self.rng.gen_bool(link.loss.min(1.0)) {
                return Fate::Dropped(Drop::Loss);
            }
        }
        if packet.delivery == Delivery::Stream {
            extra += retransmission_delay(&mut self.rng, link.loss);
        }
        let mut delays = vec![Self::latency(&mut self.rng, link) + extra];
        if packet.delivery == Delivery::Datagram
            && link.duplicate > 0.0
            && self.rng.gen_bool(link.duplicate.min(1.0))
        {
            delays.push(Self::latency(&mut self.rng, link) + extra);
        }
        Fate::Deliver(delays)
    }
}

/// First TCP retransmission timeout (Linux's minimum RTO).
const MIN_RTO: Duration = Duration::from_millis(200);
/// Retransmissions a stream may need before the model stops adding delay.
const MAX_RETRANSMISSIONS: u32 = 6;

/// The delay a reliable message pays on a link that loses segments with probability `loss`:
/// every loss costs a retransmission timeout, 200 ms doubling, as TCP's does.
pub fn retransmission_delay(rng: &mut ChaCha8Rng, loss: f64) -> Duration {
    let mut delay = Duration::ZERO;
    if loss <= 0.0 {
        return delay;
    }
    let mut rto = MIN_RTO;
    for _ in 0..MAX_RETRANSMISSIONS {
        if !rng.gen_bool(loss.min(1.0)) {
            break;
        }
        delay += rto;
        rto *= 2;
    }
    delay
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn packet(from: usize, to: usize) -> PacketInfo {
        PacketInfo {
            from: NodeId(from),
            to: NodeId(to),
            delivery: Delivery::Datagram,
            len: 100,
        }
    }

    #[test]
    fn partition_blocks_both_ways_and_heal_restores() {
        let mut net = Network::new(LinkConfig::default(), ChaCha8Rng::seed_from_u64(1));
        net.partition(&[vec![NodeId(0), NodeId(1)], vec![NodeId(2)]], 3);
        assert!(matches!(net.route(packet(0, 1)), Fate::Deliver(_)));
        assert_eq!(net.route(packet(0, 2)), Fate::Dropped(Drop::Partition));
        assert_eq!(net.route(packet(2, 1)), Fate::Dropped(Drop::Partition));
        net.heal();
        assert!(matches!(net.route(packet(2, 1)), Fate::Deliver(_)));
    }

    #[test]
    fn one_way_partition_blocks_one_direction_only() {
        let mut net = Network::new(LinkConfig::default(), ChaCha8Rng::seed_from_u64(1));
        net.partition_one_way(&[NodeId(0)], &[NodeId(1)], 3);
        assert_eq!(net.route(packet(0, 1)), Fate::Dropped(Drop::Partition));
        assert!(matches!(net.route(packet(1, 0)), Fate::Deliver(_)));
        assert!(matches!(net.route(packet(0, 2)), Fate::Deliver(_)));
    }

    #[test]
    fn loss_drops_about_the_configured_share_of_datagrams_but_no_streams() {
        let link = LinkConfig {
            loss: 0.25,
            ..LinkConfig::default()
        };
        let mut net = Network::new(link, ChaCha8Rng::seed_from_u64(7));
        let lost = (0..10_000)
            .filter(|_| net.route(packet(0, 1)) == Fate::Dropped(Drop::Loss))
            .count();
        assert!((2_000..3_000).contains(&lost), "lost {lost} of 10000");
        let stream = PacketInfo {
            delivery: Delivery::Stream,
            ..packet(0, 1)
        };
        let delays: Vec<Duration> = (0..1_000)
            .map(|_| match net.route(stream) {
                Fate::Deliver(d) => d[0],
                Fate::Dropped(why) => panic!("a stream was dropped: {why:?}"),
            })
            .collect();
        let retransmitted = delays.iter().filter(|d| **d >= MIN_RTO).count();
        assert!(
            (150..350).contains(&retransmitted),
            "{retransmitted} of 1000 streams paid an RTO"
        );
    }

    #[test]
    fn one_link_can_be_slower_and_lossier_than_the_rest() {
        let mut net = Network::new(LinkConfig::default(), ChaCha8Rng::seed_from_u64(3));
        let slow = LinkConfig {
            latency: (Duration::from_millis(50), Duration::from_millis(60)),
            loss: 1.0,
            ..LinkConfig::default()
        };
        net.set_link_between(NodeId(0), NodeId(1), slow);
        assert_eq!(net.route(packet(0, 1)), Fate::Dropped(Drop::Loss));
        let stream = PacketInfo {
            delivery: Delivery::Stream,
            ..packet(0, 1)
        };
        let Fate::Deliver(delays) = net.route(stream) else {
            panic!("streams are not lost")
        };
        assert!(delays[0] >= Duration::from_millis(50));
        let Fate::Deliver(back) = net.route(packet(1, 0)) else {
            panic!("the way back is healthy")
        };
        assert!(back[0] <= Duration::from_millis(1));
        net.reset_link_between(NodeId(0), NodeId(1));
        assert!(matches!(net.route(packet(0, 1)), Fate::Deliver(_)));
    }

    #[test]
    fn oversized_datagrams_are_dropped_and_rules_apply() {
        let mut net = Network::new(LinkConfig::default(), ChaCha8Rng::seed_from_u64(1));
        let big = PacketInfo {
            len: 1401,
            ..packet(0, 1)
        };
        assert_eq!(net.route(big), Fate::Dropped(Drop::Budget));
        net.add_rule(Box::new(|p: &PacketInfo| {
            if p.to == NodeId(1) {
                Verdict::Drop
            } else {
                Verdict::Pass
            }
        }));
        assert_eq!(net.route(packet(0, 1)), Fate::Dropped(Drop::Rule));
        assert!(matches!(net.route(packet(1, 0)), Fate::Deliver(_)));
    }
}
