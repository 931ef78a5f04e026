//! Test CRDTs and a hand-wired network of gossip machines on virtual time.
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
#![allow(
    dead_code,
    missing_docs,
    reason = "test support: each test file uses a different part"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_gossip::{Config, Gossip, Message};
use rumour_ring::{BucketDigest, BucketSelection, EntryDigest, Mergeable, Timestamp, Tombstones};
use rumour_wire::{Delivery, stable_hash};
use serde::{Deserialize, Serialize};

/// The wall time of the virtual epoch.
pub const EPOCH_MILLIS: u64 = 1_700_000_000_000;

/// The gossip tick period the nets drive (the LAN profile's).
pub const GOSSIP_INTERVAL: Duration = Duration::from_millis(200);

/// Peers each gossip tick sends to (the LAN profile's).
pub const GOSSIP_NODES: usize = 3;

fn decode_error() -> rumour_ring::Error {
    rumour_ring::Error::Decode {
        what: "test value",
        offset: 0,
        reason: "postcard",
    }
}

/// One entry of an [`LwwMap`]: the greater `(version, deleted, value, updated)` wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot {
    pub version: u64,
    pub deleted: bool,
    pub value: String,
    pub updated: u64,
}

/// A map of name -> last-writer-wins slot, with tombstones, entry digests and selection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LwwMap(pub BTreeMap<String, Slot>);

impl LwwMap {
    /// A copy with `name` set to `value` at the next version.
    pub fn with(&self, name: &str, value: &str) -> LwwMap {
        let mut map = self.clone();
        let version = map.0.get(name).map_or(0, |s| s.version) + 1;
        map.0.insert(
            name.to_owned(),
            Slot {
                version,
                deleted: false,
                value: value.to_owned(),
                updated: 0,
            },
        );
        map
    }

    /// A copy without `name` (a local CAS turns it into a tombstone).
    pub fn without(&self, name: &str) -> LwwMap {
        let mut map = self.clone();
        map.0.remove(name);
        map
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .filter(|s| !s.deleted)
            .map(|s| s.value.as_str())
    }

    /// A map of `n` entries `e0000..`, each at version 1.
    pub fn filled(n: usize) -> LwwMap {
        (0..n).fold(LwwMap::default(), |m, i| {
            m.with(&format!("e{i:04}"), &format!("value {i}"))
        })
    }

    /// A tombstone for `name` at `version`, stamped `updated`.
    pub fn tombstone(name: &str, version: u64, updated: u64) -> LwwMap {
        let mut map = LwwMap::default();
        map.0.insert(
            name.to_owned(),
            Slot {
                version,
                deleted: true,
                value: String::new(),
                updated,
            },
        );
        map
    }
}

impl Mergeable for LwwMap {
    const CODEC_ID: &'static str = "lww";

    fn merge(&mut self, other: &Self, local_cas: Option<Timestamp>) -> Option<Self> {
        let mut change = BTreeMap::new();
        for (name, theirs) in &other.0 {
            if self.0.get(name).is_none_or(|mine| theirs > mine) {
                self.0.insert(name.clone(), theirs.clone());
                change.insert(name.clone(), theirs.clone());
            }
        }
        if let Some(now) = local_cas {
            for (name, mine) in &mut self.0 {
                if !other.0.contains_key(name) && !mine.deleted {
                    *mine = Slot {
                        version: mine.version + 1,
                        deleted: true,
                        value: String::new(),
                        updated: now.0,
                    };
                    change.insert(name.clone(), mine.clone());
                }
            }
        }
        (!change.is_empty()).then_some(LwwMap(change))
    }

    fn content(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    fn remove_tombstones(&mut self, older_than: Timestamp) -> Tombstones {
        let before = self.0.len();
        self.0
            .retain(|_, s| !(s.deleted && s.updated < older_than.0));
        let remaining = self.0.values().filter(|s| s.deleted).count();
        Tombstones {
            remaining,
            removed: before - self.0.len(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.0).unwrap()
    }

    fn decode(bytes: &[u8]) -> Result<Self, rumour_ring::Error> {
        postcard::from_bytes(bytes)
            .map(LwwMap)
            .map_err(|_| decode_error())
    }

    fn entry_digests(&self) -> Option<Vec<EntryDigest>> {
        Some(
            self.0
                .iter()
                .map(|(name, slot)| EntryDigest {
                    name: name.clone(),
                    hash: stable_hash(&postcard::to_allocvec(slot).unwrap()),
                })
                .collect(),
        )
    }

    fn digest_buckets(&self) -> usize {
        rumour_ring::bucket_count(self.0.len())
    }

    /// One hash per bucket over its names and slots; no heartbeats.
    fn bucket_digests(&self, count: usize, seed: u64) -> Option<Vec<BucketDigest>> {
        if !rumour_ring::valid_bucket_count(count) {
            return None;
        }
        let mut out = vec![BucketDigest::default(); count];
        for (name, slot) in &self.0 {
            let id = rumour_ring::name_hash(seed, name);
            let hash = stable_hash(&postcard::to_allocvec(&(id, slot)).unwrap());
            out[id as usize & (count - 1)].descriptions ^= hash as u32;
        }
        Some(out)
    }

    fn select_buckets(
        &self,
        selection: &BucketSelection<'_>,
        except: Option<&Self>,
    ) -> Option<Self> {
        if !rumour_ring::valid_bucket_count(selection.count) {
            return None;
        }
        Some(LwwMap(
            self.0
                .iter()
                .filter(|(name, slot)| {
                    let id = rumour_ring::name_hash(selection.seed, name);
                    let bucket = (id as usize & (selection.count - 1)) as u32;
                    (selection.whole.contains(&bucket) || selection.heartbeats.contains(&bucket))
                        && except.is_none_or(|e| e.0.get(*name) != Some(*slot))
                })
                .map(|(n, s)| (n.clone(), s.clone()))
                .collect(),
        ))
    }

    fn select(&self, names: &[String]) -> Option<Self> {
        Some(LwwMap(
            names
                .iter()
                .filter_map(|n| self.0.get(n).map(|s| (n.clone(), s.clone())))
                .collect(),
        ))
    }
}

/// A grow-only set: no tombstones, no entry digests (pull-push falls back to whole values).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GSet(pub BTreeSet<String>);

impl GSet {
    pub fn of(items: &[&str]) -> GSet {
        GSet(items.iter().map(|s| (*s).to_owned()).collect())
    }
}

impl Mergeable for GSet {
    const CODEC_ID: &'static str = "gset";

    fn merge(&mut self, other: &Self, _local_cas: Option<Timestamp>) -> Option<Self> {
        let new: BTreeSet<String> = other.0.difference(&self.0).cloned().collect();
        self.0.extend(new.iter().cloned());
        (!new.is_empty()).then_some(GSet(new))
    }

    fn content(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }

    fn remove_tombstones(&mut self, _older_than: Timestamp) -> Tombstones {
        Tombstones::default()
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.0).unwrap()
    }

    fn decode(bytes: &[u8]) -> Result<Self, rumour_ring::Error> {
        postcard::from_bytes(bytes)
            .map(GSet)
            .map_err(|_| decode_error())
    }
}

pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))
}

/// A fresh machine at `addr(i)` with both test codecs registered.
pub fn machine(i: usize, start: Instant, config: Config) -> Gossip {
    let mut g = Gossip::new(
        config,
        ChaCha8Rng::seed_from_u64(1000 + i as u64),
        (start, Timestamp(EPOCH_MILLIS)),
    );
    g.register::<LwwMap>();
    g.register::<GSet>();
    g
}

/// A message delivered by the [`Net`].
#[derive(Clone, Debug)]
pub struct Delivered {
    pub at: Instant,
    pub from: usize,
    pub to: usize,
    pub reliable: bool,
    pub bytes: Bytes,
}

impl Delivered {
    pub fn message(&self) -> Message {
        Message::decode(&self.bytes).unwrap()
    }
}

struct InFlight {
    at: Instant,
    seq: u64,
    from: usize,
    to: usize,
    reliable: bool,
    bytes: Bytes,
}

/// Machines wired by hand: every transmit is delivered after `latency`, in order; timers fire
/// on virtual time.
pub struct Net {
    pub nodes: Vec<Gossip>,
    pub start: Instant,
    pub now: Instant,
    pub latency: Duration,
    pub log: Vec<Delivered>,
    /// Links that drop datagrams (from, to).
    pub cut: BTreeSet<(usize, usize)>,
    /// Nodes cut off entirely: nothing reaches them or leaves them (streams included), and
    /// their timers do not run until they return.
    pub away: BTreeSet<usize>,
    inflight: Vec<InFlight>,
    seq: u64,
    /// The embedder's gossip tick (period, fanout) as the node drives it; `None`: no gossip.
    pub gossip: Option<(Duration, usize)>,
    next_gossip: Vec<Instant>,
}

impl Net {
    /// `n` machines, every one told every other is alive.
    pub fn new(n: usize, config: impl Fn(Config) -> Config) -> Net {
        let start = Instant::now();
        let nodes: Vec<Gossip> = (0..n)
            .map(|i| machine(i, start, config(Config::lan(addr(i)))))
            .collect();
        let mut net = Net {
            nodes,
            start,
            now: start,
            latency: Duration::from_millis(1),
            log: Vec::new(),
            cut: BTreeSet::new(),
            away: BTreeSet::new(),
            inflight: Vec::new(),
            seq: 0,
            gossip: Some((GOSSIP_INTERVAL, GOSSIP_NODES)),
            // A fixed phase per node: nodes do not gossip in lockstep.
            next_gossip: (0..n)
                .map(|i| start + GOSSIP_INTERVAL.mul_f64((i % 10) as f64 / 10.0))
                .collect(),
        };
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    net.nodes[i].handle_peer_up(start, addr(j));
                }
            }
        }
        net
    }

    /// The same net without a gossip tick: changes move only when the test moves them (or
    /// through pull-push).
    pub fn without_gossip(mut self) -> Net {
        self.gossip = None;
        self
    }

    /// When node `i`'s gossip tick is next due, if it has anything to send.
    fn gossip_due(&self, i: usize) -> Option<Instant> {
        self.gossip?;
        self.nodes[i]
            .has_broadcasts()
            .then_some(self.next_gossip[i])
    }

    /// The embedder's gossip tick, as the node runs it: queued changes to `fanout` random
    /// peers, a datagram each, oversized ones over streams.
    fn gossip_tick(&mut self, i: usize) {
        let Some((period, fanout)) = self.gossip else {
            return;
        };
        let now = self.now;
        self.next_gossip[i] = now + period;
        let node = &mut self.nodes[i];
        let budget = node.config().datagram_budget();
        let mut out = Vec::new();
        let targets = node.gossip_targets(now, fanout);
        let members = targets.len() + 1;
        for to in targets {
            let messages = node.fill_broadcasts(members, budget);
            if !messages.is_empty() {
                out.push((to, false, messages));
            }
            for message in node.fill_stream_broadcasts(members) {
                out.push((to, true, vec![message]));
            }
        }
        for (to, reliable, messages) in out {
            let to = self.index(to);
            for bytes in messages {
                self.send(i, to, reliable, bytes);
            }
        }
    }

    pub fn index(&self, a: SocketAddr) -> usize {
        (0..self.nodes.len()).find(|&i| addr(i) == a).unwrap()
    }

    /// Moves everything node `i` wants to send into flight.
    pub fn flush(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].poll_transmit() {
            let to = self.index(t.to);
            for bytes in t.messages {
                self.seq += 1;
                self.inflight.push(InFlight {
                    at: self.now + self.latency,
                    seq: self.seq,
                    from: i,
                    to,
                    reliable: t.delivery == Delivery::Stream,
                    bytes,
                });
            }
        }
        while self.nodes[i].poll_event().is_some() {}
    }

    /// Sends `bytes` from node `from` to node `to` as if node `from` had transmitted them.
    pub fn send(&mut self, from: usize, to: usize, reliable: bool, bytes: Bytes) {
        self.seq += 1;
        self.inflight.push(InFlight {
            at: self.now + self.latency,
            seq: self.seq,
            from,
            to,
            reliable,
            bytes,
        });
    }

    /// Runs the next timer or delivery due no later than `deadline`; false if there is none.
    pub fn step(&mut self, deadline: Instant) -> bool {
        let timer = (0..self.nodes.len())
            .filter(|i| !self.away.contains(i))
            .filter_map(|i| {
                let due = [self.nodes[i].poll_timeout(), self.gossip_due(i)];
                due.into_iter().flatten().min().map(|t| (t, i))
            })
            .min();
        let delivery = self
            .inflight
            .iter()
            .enumerate()
            .min_by_key(|(_, f)| (f.at, f.seq))
            .map(|(k, f)| (f.at, k));
        match (timer, delivery) {
            (Some((t, i)), d) if d.is_none_or(|(at, _)| t < at) => {
                if t > deadline {
                    return false;
                }
                self.now = self.now.max(t);
                if self.nodes[i]
                    .poll_timeout()
                    .is_some_and(|at| at <= self.now)
                {
                    self.nodes[i].handle_timeout(self.now);
                }
                if self.gossip_due(i).is_some_and(|at| at <= self.now) {
                    self.gossip_tick(i);
                }
                self.flush(i);
            }
            (_, Some((at, k))) => {
                if at > deadline {
                    return false;
                }
                self.now = self.now.max(at);
                let f = self.inflight.remove(k);
                let gone = self.away.contains(&f.from) || self.away.contains(&f.to);
                if gone || (!f.reliable && self.cut.contains(&(f.from, f.to))) {
                    return true;
                }
                let from = addr(f.from);
                let node = &mut self.nodes[f.to];
                let _ = if f.reliable {
                    node.handle_stream(self.now, from, &f.bytes)
                } else {
                    node.handle_packet(self.now, from, &f.bytes)
                };
                self.log.push(Delivered {
                    at: self.now,
                    from: f.from,
                    to: f.to,
                    reliable: f.reliable,
                    bytes: f.bytes,
                });
                self.flush(f.to);
            }
            _ => return false,
        }
        true
    }

    pub fn run_for(&mut self, duration: Duration) {
        let deadline = self.now + duration;
        let mut steps = 0u64;
        while self.step(deadline) {
            steps += 1;
            assert!(steps < 1_000_000, "livelock: a million steps");
        }
        self.now = deadline;
    }

    /// Runs until `done` holds or `limit` of virtual time passed; returns the time it took.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Net) -> bool,
    ) -> Option<Duration> {
        let begin = self.now;
        let deadline = begin + limit;
        let mut steps = 0u64;
        while !done(self) {
            if !self.step(deadline) {
                return None;
            }
            steps += 1;
            assert!(steps < 1_000_000, "livelock: a million steps");
        }
        Some(self.now - begin)
    }

    /// Everything delivered since `index` in the log.
    pub fn since(&self, index: usize) -> &[Delivered] {
        &self.log[index..]
    }
}
