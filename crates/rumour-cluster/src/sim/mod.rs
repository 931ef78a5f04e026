//! The deterministic simulator: many sans-IO machines on virtual time.
//!
//! One `u64` seed fixes a whole run. Node `i` draws from ChaCha stream `i` of that seed (a
//! restarted node from a fresh stream), the network from a stream of its own, and nothing else is
//! random. Events run in a total order, `(virtual time, sequence number)`, so the same seed gives
//! the same run, byte for byte: [`Sim::trace_hash`] folds every delivered packet, and a test runs
//! one seed twice and compares the hashes.
//!
//! The network model ([`LinkConfig`], [`network::Rule`]) and node faults ([`Fault`]) are data.
//! Invariant checks run on a virtual-time period; a failing check stops the run with a
//! [`SimError`] that names the seed and the command that replays it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rumour_cluster::sim::{Machine, Sim, LinkConfig};
//! use rumour_cluster::{Delivery, Transmit};
//!
//! /// A machine that counts the datagrams it receives.
//! struct Echo { got: usize }
//! impl Machine for Echo {
//!     fn handle_packet(&mut self, _: Instant, _: std::net::SocketAddr, _: &[u8]) { self.got += 1 }
//!     fn handle_stream(&mut self, _: Instant, _: std::net::SocketAddr, _: &[u8]) {}
//!     fn handle_timeout(&mut self, _: Instant) {}
//!     fn poll_transmit(&mut self) -> Option<Transmit> { None }
//!     fn poll_timeout(&self) -> Option<Instant> { None }
//!     type Event = ();
//!     fn poll_event(&mut self) -> Option<()> { None }
//! }
//!
//! let start = std::time::Instant::now();
//! let mut sim = Sim::new(42, start, LinkConfig::default(), Box::new(|_| Echo { got: 0 }));
//! let a = sim.add_node();
//! let b = sim.add_node();
//! let to = sim.addr(b);
//! sim.send_from(a, Transmit { to, delivery: Delivery::Datagram, bytes: bytes::Bytes::from_static(b"hi") });
//! sim.run_for(Duration::from_millis(10)).unwrap();
//! assert_eq!(sim.node(b).unwrap().got, 1);
//! ```

mod fault;
mod machine;
pub mod network;
mod streams;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::transmit::{Delivery, Transmit};

pub use fault::Fault;
pub use machine::Machine;
pub use network::{LinkConfig, Network, PacketInfo, Verdict};
pub use streams::{StreamConfig, StreamStats};

/// The index of a node in a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

/// What the factory is given to build (or rebuild) a node.
#[derive(Debug)]
pub struct NodeSeed {
    /// The node's index.
    pub id: NodeId,
    /// Its address (stable across restarts).
    pub addr: SocketAddr,
    /// Its random stream (a fresh one on every restart).
    pub rng: ChaCha8Rng,
    /// The virtual time of its start.
    pub now: Instant,
    /// Virtual time since the start of the simulation.
    pub elapsed: Duration,
    /// 0 at first start, +1 on each restart.
    pub generation: u32,
}

/// Builds the machine of a node.
pub type Factory<M> = Box<dyn FnMut(NodeSeed) -> M>;

/// An invariant check: `Err(message)` stops the run.
pub type Check<M> = Box<dyn FnMut(&Sim<M>) -> Result<(), String>>;

/// Receives every event a node reports, with the node and the virtual time since the start.
pub type EventSink<E> = Box<dyn FnMut(NodeId, Duration, E)>;

/// Why a run stopped early.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// An invariant check failed.
    #[error(
        "invariant `{check}` failed at {at:?} of virtual time: {message} (seed {seed}; replay: {replay})"
    )]
    Invariant {
        /// The check's name.
        check: String,
        /// Virtual time since the start.
        at: Duration,
        /// What the check said.
        message: String,
        /// The run's seed.
        seed: u64,
        /// The command that replays the run.
        replay: String,
    },
    /// Too many events at one instant of virtual time: the machines are live-locked.
    #[error(
        "livelock: over {events} events at {at:?} of virtual time (seed {seed}; replay: {replay})"
    )]
    Livelock {
        /// Virtual time since the start.
        at: Duration,
        /// Events run at that instant.
        events: u64,
        /// The run's seed.
        seed: u64,
        /// The command that replays the run.
        replay: String,
    },
}

/// Counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events processed.
    pub events: u64,
    /// Packets delivered to a machine.
    pub delivered: u64,
    /// Datagrams lost at random.
    pub dropped_loss: u64,
    /// Packets dropped by a partition.
    pub dropped_partition: u64,
    /// Packets dropped by a rule.
    pub dropped_rule: u64,
    /// Datagrams over the packet budget.
    pub dropped_budget: u64,
    /// Streams whose connection the receiver refused (see [`StreamConfig::refuse_past_limit`]).
    pub dropped_refused: u64,
    /// Packets to a crashed node or an unknown address.
    pub dropped_down: u64,
    /// Datagrams sent, by every node.
    pub datagrams_sent: u64,
    /// Streams sent, by every node.
    pub streams_sent: u64,
    /// Bytes sent (datagrams and streams), by every node.
    pub bytes_sent: u64,
}

#[derive(Clone)]
enum Event {
    Deliver {
        to: NodeId,
        from: SocketAddr,
        delivery: Delivery,
        bytes: Bytes,
        slowed: bool,
    },
    Wake {
        node: NodeId,
        epoch: u64,
    },
    Fault(Fault),
    Check(usize),
}

/// A queued event's place in the total order; the event itself waits in `Sim::events`, so
/// the heap moves 32 bytes per step of a sift, not a whole packet event.
#[derive(Clone, Copy)]
struct Scheduled {
    at: Duration,
    seq: u64,
    slot: usize,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed, so that `BinaryHeap` pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Clone)]
struct Slot<M> {
    machine: Option<M>,
    addr: SocketAddr,
    paused_until: Option<Duration>,
    slow: Duration,
    timer: Option<Duration>,
    epoch: u64,
    generation: u32,
    /// Bytes sent to this slot's address (counted when they leave the sender).
    bytes_in: u64,
}

struct PeriodicCheck<M: Machine> {
    name: String,
    every: Duration,
    check: Check<M>,
}

/// The fingerprint of a run's deliveries, fed eight bytes at a time, each word folded in with
/// FxHash's rotate, xor and multiply, the total mixed by [`rumour_wire::mix64`] when read.
/// FNV-1a byte by byte was 5 % of a 1,000-node ring simulation. The value is only ever compared
/// with another run's of the same build, never stored.
#[derive(Clone, Copy, Debug, Default)]
struct Trace(u64);

impl Trace {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }

    /// Feeds `bytes`, its length first, so that `("ab", "c")` and `("a", "bc")` differ.
    fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.word(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    fn finish(&self) -> u64 {
        rumour_wire::mix64(self.0)
    }
}

/// Stream of the seed reserved for the network.
const NETWORK_STREAM: u64 = u64::MAX;
/// Events at one virtual instant past which a run is declared live-locked.
const LIVELOCK_EVENTS: u64 = 5_000_000;

/// The simulator. See the module documentation.
pub struct Sim<M: Machine> {
    seed: u64,
    replay: String,
    base: Instant,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    /// The events the queue orders, by slot; `free` lists the empty slots.
    events: Vec<Option<Event>>,
    free: Vec<usize>,
    slots: Vec<Slot<M>>,
    by_addr: BTreeMap<SocketAddr, NodeId>,
    /// Where new nodes are placed.
    hosts: Hosts,
    network: Network,
    factory: Factory<M>,
    checks: Vec<PeriodicCheck<M>>,
    sink: Option<EventSink<M::Event>>,
    failure: Option<SimError>,
    trace: Trace,
    stats: SimStats,
    same_instant: (Duration, u64),
}

impl<M: Machine> fmt::Debug for Sim<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("nodes", &self.slots.len())
            .field("queued", &self.queue.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// The address of node `i` in a simulation whose nodes each have an IP address of their own
/// ([`Hosts::Own`], the default): `127.x.y.z:7946` with `x.y.z` counting from 1.0.1.
///
/// The values never reach a socket; loopback keeps even a mistake harmless.
#[must_use]
pub fn node_addr(id: NodeId) -> SocketAddr {
    Hosts::Own.addr(id)
}

/// Where a simulation's nodes live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hosts {
    /// Each node on an IP address of its own, port 7946 ([`node_addr`]).
    #[default]
    Own,
    /// All nodes on one host told apart by port (several instances on one machine, a cluster
    /// on loopback): `127.0.0.1:1024`, `:1025`, ..., continuing on `127.0.0.2` past port
    /// 65535. Limits per source or destination IP then apply to the whole cluster at once.
    Shared,
}

impl Hosts {
    /// The address of node `id`.
    #[must_use]
    pub fn addr(self, id: NodeId) -> SocketAddr {
        match self {
            Hosts::Own => {
                let n = id.0 + 1;
                let ip = Ipv4Addr::new(127, 1 + (n >> 16) as u8, (n >> 8) as u8, n as u8);
                SocketAddr::new(ip.into(), 7946)
            }
            Hosts::Shared => {
                const PORTS: usize = 65536 - 1024;
                let host = 1 + id.0 / PORTS;
                let ip = Ipv4Addr::new(127, 0, (host >> 8) as u8, host as u8);
                SocketAddr::new(ip.into(), (1024 + id.0 % PORTS) as u16)
            }
        }
    }
}

/// The random stream of node `id` in its `generation`.
fn node_rng(seed: u64, id: NodeId, generation: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((generation as u64) << 40) | id.0 as u64);
    rng
}

impl<M: Machine> Sim<M> {
    /// An empty simulation whose virtual time 0 is `start`; `factory` builds each node.
    ///
    /// `start` is only a base for the `Instant`s the machines see: the run depends on virtual
    /// offsets from it alone, so any instant (`Instant::now()` at the caller) replays the same.
    pub fn new(seed: u64, start: Instant, link: LinkConfig, factory: Factory<M>) -> Sim<M> {
        let mut net_rng = ChaCha8Rng::seed_from_u64(seed);
        net_rng.set_stream(NETWORK_STREAM);
        Sim {
            seed,
            replay: format!("rumour sim --seed {seed}"),
            base: start,
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            free: Vec::new(),
            slots: Vec::new(),
            by_addr: BTreeMap::new(),
            hosts: Hosts::Own,
            network: Network::new(link, net_rng),
            factory,
            checks: Vec::new(),
            sink: None,
            failure: None,
            trace: Trace::default(),
            stats: SimStats::default(),
            same_instant: (Duration::ZERO, 0),
        }
    }

    /// A copy of this simulation in its current state that runs on apart: the same nodes
    /// (cloned), queued packets and timers, network and random streams, counters and trace
    /// hash, so it goes on exactly as this one would. `factory` builds the nodes it restarts;
    /// `check` gives, for each invariant check of this one (by name, in the order they were
    /// added), the closure the copy runs in its place. The copy has no event sink
    /// ([`Sim::set_event_sink`]).
    ///
    /// Scenarios that start alike (a converged cluster of the same size and seed) start from
    /// one fork each instead of each running the join again. `None` if the network holds a
    /// [`network::Rule`] or the run has failed.
    pub fn fork(
        &self,
        factory: Factory<M>,
        mut check: impl FnMut(&str) -> Check<M>,
    ) -> Option<Sim<M>>
    where
        M: Clone,
    {
        if self.failure.is_some() {
            return None;
        }
        let network = self.network.fork()?;
        let checks = self
            .checks
            .iter()
            .map(|c| PeriodicCheck {
                name: c.name.clone(),
                every: c.every,
                check: check(&c.name),
            })
            .collect();
        Some(Sim {
            seed: self.seed,
            replay: self.replay.clone(),
            base: self.base,
            now: self.now,
            seq: self.seq,
            queue: self.queue.clone(),
            events: self.events.clone(),
            free: self.free.clone(),
            slots: self.slots.clone(),
            by_addr: self.by_addr.clone(),
            hosts: self.hosts,
            network,
            factory,
            checks,
            sink: None,
            failure: None,
            trace: self.trace,
            stats: self.stats.clone(),
            same_instant: self.same_instant,
        })
    }

    /// Places the nodes added from now on ([`Hosts::Own`] until set). Set it before adding
    /// the first node: nodes already added keep their addresses, and the two plans overlap.
    pub fn set_hosts(&mut self, hosts: Hosts) {
        self.hosts = hosts;
    }

    /// Where node `id` lives, added or not.
    #[must_use]
    pub fn addr_of(&self, id: NodeId) -> SocketAddr {
        self.slots
            .get(id.0)
            .map_or_else(|| self.hosts.addr(id), |slot| slot.addr)
    }

    /// Sends every event the nodes report to `sink` (without one, events are discarded).
    pub fn set_event_sink(&mut self, sink: EventSink<M::Event>) {
        self.sink = Some(sink);
    }

    /// Sets the command printed to replay this run.
    pub fn set_replay(&mut self, command: impl Into<String>) {
        self.replay = command.into();
    }

    /// The command that replays this run.
    pub fn replay(&self) -> &str {
        &self.replay
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Adds a node, built by the factory at the current virtual time.
    pub fn add_node(&mut self) -> NodeId {
        let id = NodeId(self.slots.len());
        let addr = self.hosts.addr(id);
        let seed = NodeSeed {
            id,
            addr,
            rng: node_rng(self.seed, id, 0),
            now: self.now(),
            elapsed: self.now,
            generation: 0,
        };
        let machine = (self.factory)(seed);
        self.push_slot(Some(machine));
        self.flush(id);
        id
    }

    /// Adds a host that runs no machine: an address that [`Sim::send_from`] can send from (an
    /// attacker) and that counts what is sent to it ([`Sim::bytes_sent_to`]; a bystander).
    /// Packets to it are dropped as if it were down. Never restart a host.
    pub fn add_host(&mut self) -> NodeId {
        self.push_slot(None)
    }

    fn push_slot(&mut self, machine: Option<M>) -> NodeId {
        let id = NodeId(self.slots.len());
        let addr = self.hosts.addr(id);
        self.slots.push(Slot {
            machine,
            addr,
            paused_until: None,
            slow: Duration::ZERO,
            timer: None,
            epoch: 0,
            generation: 0,
            bytes_in: 0,
        });
        self.by_addr.insert(addr, id);
        id
    }

    /// Bytes every sender put on the wire towards node or host `id` (lost ones included).
    pub fn bytes_sent_to(&self, id: NodeId) -> u64 {
        self.slots[id.0].bytes_in
    }

    /// The number of nodes, crashed ones included.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the simulation has no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every node id.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + use<M> {
        (0..self.slots.len()).map(NodeId)
    }

    /// The address of a node.
    pub fn addr(&self, id: NodeId) -> SocketAddr {
        self.slots[id.0].addr
    }

    /// The node at `addr`, if any.
    pub fn id_of(&self, addr: SocketAddr) -> Option<NodeId> {
        self.by_addr.get(&addr).copied()
    }

    /// The machine of a running node (`None` while crashed).
    pub fn node(&self, id: NodeId) -> Option<&M> {
        self.slots.get(id.0)?.machine.as_ref()
    }

    /// How many times the node was restarted (0 for its first process).
    pub fn generation(&self, id: NodeId) -> u32 {
        self.slots[id.0].generation
    }

    /// Whether the node is running (not crashed; a paused node is running).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.node(id).is_some()
    }

    /// Every running node.
    pub fn running(&self) -> impl Iterator<Item = (NodeId, &M)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.machine.as_ref().map(|m| (NodeId(i), m)))
    }

    /// Runs a command on a running node at the current virtual time, then sends what it
    /// produced. Returns `None` if the node is crashed.
    pub fn command<R>(&mut self, id: NodeId, f: impl FnOnce(&mut M, Instant) -> R) -> Option<R> {
        let now = self.now();
        let out = f(self.slots.get_mut(id.0)?.machine.as_mut()?, now);
        self.flush(id);
        Some(out)
    }

    /// Sends a transmit as if node `from` had produced it.
    pub fn send_from(&mut self, from: NodeId, transmit: Transmit) {
        self.route(from, transmit);
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.base + self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    /// The network, to change links, partitions and rules now.
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.network
    }

    /// Applies a fault now.
    pub fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::Crash(id) => {
                self.network.forget_connections(id);
                let slot = &mut self.slots[id.0];
                slot.machine = None;
                slot.timer = None;
                slot.epoch += 1;
                slot.paused_until = None;
            }
            Fault::Restart(id) => self.restart(id),
            Fault::Pause(id, d) => self.slots[id.0].paused_until = Some(self.now + d),
            Fault::Slow(id, d) => self.slots[id.0].slow = d,
            Fault::Partition(sides) => self.network.partition(&sides, self.slots.len()),
            Fault::PartitionOneWay(from, to) => {
                self.network.partition_one_way(&from, &to, self.slots.len());
            }
            Fault::Heal => self.network.heal(),
            Fault::SetLink(link) => self.network.set_link(link),
        }
    }

    /// Schedules a fault `after` from now.
    pub fn schedule(&mut self, after: Duration, fault: Fault) {
        self.push(self.now + after, Event::Fault(fault));
    }

    /// Adds an invariant check run every `every` of virtual time (first run one period from now).
    pub fn add_check(&mut self, name: impl Into<String>, every: Duration, check: Check<M>) {
        let index = self.checks.len();
        self.checks.push(PeriodicCheck {
            name: name.into(),
            every,
            check,
        });
        self.push(self.now + every, Event::Check(index));
    }

    /// The hash of every packet delivered so far (time, ends, bytes).
    pub fn trace_hash(&self) -> u64 {
        self.trace.finish()
    }

    /// The run's counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Runs every event up to `elapsed() + d`.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        self.run_to(self.now + d)
    }

    /// Runs until `done` holds (tested every `poll` of virtual time) or `limit` has passed.
    /// Returns the virtual time it took, or `None` if `limit` passed first.
    pub fn run_until(
        &mut self,
        limit: Duration,
        poll: Duration,
        mut done: impl FnMut(&Sim<M>) -> bool,
    ) -> Result<Option<Duration>, SimError> {
        let start = self.now;
        let end = start + limit;
        loop {
            if done(self) {
                return Ok(Some(self.now - start));
            }
            if self.now >= end {
                return Ok(None);
            }
            self.run_to((self.now + poll).min(end))?;
        }
    }

    fn run_to(&mut self, end: Duration) -> Result<(), SimError> {
        while let Some(next) = self.queue.peek() {
            if next.at > end {
                break;
            }
            let Scheduled { at, slot, .. } = self.queue.pop().expect("peeked");
            let event = self.events[slot].take().expect("queued events are stored");
            self.free.push(slot);
            self.advance(at)?;
            self.dispatch(event);
            if let Some(failure) = self.failure.take() {
                return Err(failure);
            }
        }
        self.now = self.now.max(end);
        Ok(())
    }

    fn advance(&mut self, at: Duration) -> Result<(), SimError> {
        self.stats.events += 1;
        if at == self.same_instant.0 {
            self.same_instant.1 += 1;
            if self.same_instant.1 > LIVELOCK_EVENTS {
                return Err(SimError::Livelock {
                    at,
                    events: self.same_instant.1,
                    seed: self.seed,
                    replay: self.replay.clone(),
                });
            }
        } else {
            self.same_instant = (at, 1);
        }
        self.now = at;
        Ok(())
    }

    fn push(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.events[slot] = Some(event);
                slot
            }
            None => {
                self.events.push(Some(event));
                self.events.len() - 1
            }
        };
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            slot,
        });
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver {
                to,
                from,
                delivery,
                bytes,
                slowed,
            } => self.deliver(to, from, delivery, bytes, slowed),
            Event::Wake { node, epoch } => self.wake(node, epoch),
            Event::Fault(fault) => self.apply(fault),
            Event::Check(index) => self.check(index),
        }
    }

    fn deliver(
        &mut self,
        to: NodeId,
        from: SocketAddr,
        delivery: Delivery,
        bytes: Bytes,
        slowed: bool,
    ) {
        let now = self.now;
        let slot = &mut self.slots[to.0];
        if slot.machine.is_none() {
            self.stats.dropped_down += 1;
            return;
        }
        if let Some(until) = slot.paused_until.filter(|&u| u > now) {
            let event = Event::Deliver {
                to,
                from,
                delivery,
                bytes,
                slowed,
            };
            self.push(until, event);
            return;
        }
        if !slowed && !slot.slow.is_zero() {
            let at = now + slot.slow;
            let event = Event::Deliver {
                to,
                from,
                delivery,
                bytes,
                slowed: true,
            };
            self.push(at, event);
            return;
        }
        self.stats.delivered += 1;
        self.trace.word(now.as_nanos() as u64);
        self.trace.word(to.0 as u64);
        match from.ip() {
            std::net::IpAddr::V4(ip) => self.trace.bytes(&ip.octets()),
            std::net::IpAddr::V6(ip) => self.trace.bytes(&ip.octets()),
        }
        self.trace.word(u64::from(from.port()));
        self.trace.bytes(&bytes);
        let instant = self.base + now;
        let machine = slot.machine.as_mut().expect("checked above");
        match delivery {
            Delivery::Stream => machine.handle_stream(instant, from, &bytes),
            Delivery::Datagram => machine.handle_packet(instant, from, &bytes),
        }
        self.flush(to);
    }

    fn wake(&mut self, node: NodeId, epoch: u64) {
        let now = self.now;
        let slot = &mut self.slots[node.0];
        if slot.epoch != epoch || slot.machine.is_none() {
            return;
        }
        if let Some(until) = slot.paused_until.filter(|&u| u > now) {
            self.push(until, Event::Wake { node, epoch });
            return;
        }
        slot.timer = None;
        let instant = self.base + now;
        slot.machine
            .as_mut()
            .expect("checked above")
            .handle_timeout(instant);
        self.flush(node);
    }

    fn check(&mut self, index: usize) {
        let mut check = std::mem::replace(&mut self.checks[index].check, Box::new(|_| Ok(())));
        let result = check(self);
        self.checks[index].check = check;
        match result {
            Ok(()) => {
                let every = self.checks[index].every;
                self.push(self.now + every, Event::Check(index));
            }
            Err(message) => {
                self.failure = Some(SimError::Invariant {
                    check: self.checks[index].name.clone(),
                    at: self.now,
                    message,
                    seed: self.seed,
                    replay: self.replay.clone(),
                });
            }
        }
    }

    fn restart(&mut self, id: NodeId) {
        self.network.forget_connections(id);
        let generation = self.slots[id.0].generation + 1;
        let seed = NodeSeed {
            id,
            addr: self.slots[id.0].addr,
            rng: node_rng(self.seed, id, generation),
            now: self.now(),
            elapsed: self.now,
            generation,
        };
        let machine = (self.factory)(seed);
        let slot = &mut self.slots[id.0];
        slot.machine = Some(machine);
        slot.generation = generation;
        slot.paused_until = None;
        slot.timer = None;
        slot.epoch += 1;
        self.flush(id);
    }

    /// Sends everything the node produced and reschedules its timer.
    fn flush(&mut self, id: NodeId) {
        loop {
            let Some(machine) = self.slots[id.0].machine.as_mut() else {
                return;
            };
            match machine.poll_transmit() {
                Some(transmit) => self.route(id, transmit),
                None => break,
            }
        }
        if let Some(machine) = self.slots[id.0].machine.as_mut() {
            while let Some(event) = machine.poll_event() {
                if let Some(sink) = self.sink.as_mut() {
                    sink(id, self.now, event);
                }
            }
        }
        let base = self.base;
        let now = self.now;
        let slot = &mut self.slots[id.0];
        let wanted = slot
            .machine
            .as_ref()
            .and_then(|m| m.poll_timeout())
            .map(|t| t.saturating_duration_since(base).max(now));
        if wanted != slot.timer {
            slot.timer = wanted;
            slot.epoch += 1;
            if let Some(at) = wanted {
                let epoch = slot.epoch;
                self.push(at, Event::Wake { node: id, epoch });
            }
        }
    }

    fn route(&mut self, from: NodeId, transmit: Transmit) {
        let len = transmit.bytes.len();
        if transmit.delivery == Delivery::Stream {
            self.stats.streams_sent += 1;
        } else {
            self.stats.datagrams_sent += 1;
        }
        self.stats.bytes_sent += len as u64;
        let Some(to) = self.id_of(transmit.to) else {
            self.stats.dropped_down += 1;
            return;
        };
        self.slots[to.0].bytes_in += len as u64;
        let info = PacketInfo {
            from,
            to,
            delivery: transmit.delivery,
            len,
        };
        match self.network.route_at(info, self.now) {
            network::Fate::Deliver(delays) => {
                let from_addr = self.slots[from.0].addr;
                for delay in delays {
                    let event = Event::Deliver {
                        to,
                        from: from_addr,
                        delivery: transmit.delivery,
                        bytes: transmit.bytes.clone(),
                        slowed: false,
                    };
                    self.push(self.now + delay, event);
                }
            }
            network::Fate::Dropped(why) => {
                let counter = match why {
                    network::Drop::Loss => &mut self.stats.dropped_loss,
                    network::Drop::Partition => &mut self.stats.dropped_partition,
                    network::Drop::Rule => &mut self.stats.dropped_rule,
                    network::Drop::Budget => &mut self.stats.dropped_budget,
                    network::Drop::Refused => &mut self.stats.dropped_refused,
                };
                *counter += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
