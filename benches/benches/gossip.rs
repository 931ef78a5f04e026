//! Criterion benchmarks of the gossip machine: a local change, a received change, and an
//! in-sync pull-push.
//!
//! `cargo bench -p rumour-benches --bench gossip`
#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented public items"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_gossip::{Config, Gossip};
use rumour_ring::{
    EntryDigest, Instance, Mergeable, Ring, State, Timestamp, Tombstones, random_tokens,
};
use rumour_wire::stable_hash;

const EPOCH: Timestamp = Timestamp(1_700_000_000_000);

/// A small last-writer-wins map (name -> (version, value)): the benchmarks' test CRDT.
#[derive(Clone, Debug, Default, PartialEq)]
struct Lww(BTreeMap<String, (u64, String)>);

impl Lww {
    fn filled(n: usize) -> Lww {
        Lww((0..n)
            .map(|i| (format!("entry-{i:04}"), (1, format!("value of entry {i}"))))
            .collect())
    }

    fn bumped(&self, name: &str) -> Lww {
        let mut map = self.clone();
        let slot = map.0.entry(name.to_owned()).or_default();
        slot.0 += 1;
        map
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], rumour_ring::Error> {
    if input.len() < n {
        return Err(rumour_ring::Error::Decode {
            what: "lww",
            offset: 0,
            reason: "short",
        });
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn take_u64(input: &mut &[u8], n: usize) -> Result<u64, rumour_ring::Error> {
    let mut word = [0u8; 8];
    word[..n].copy_from_slice(take(input, n)?);
    Ok(u64::from_le_bytes(word))
}

fn take_string(input: &mut &[u8]) -> Result<String, rumour_ring::Error> {
    let len = take_u64(input, 4)? as usize;
    let bytes = take(input, len)?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

impl Mergeable for Lww {
    const CODEC_ID: &'static str = "bench-lww";

    fn merge(&mut self, other: &Self, _local_cas: Option<Timestamp>) -> Option<Self> {
        let mut change = BTreeMap::new();
        for (name, theirs) in &other.0 {
            if self.0.get(name).is_none_or(|mine| theirs > mine) {
                self.0.insert(name.clone(), theirs.clone());
                change.insert(name.clone(), theirs.clone());
            }
        }
        (!change.is_empty()).then_some(Lww(change))
    }

    fn content(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    fn remove_tombstones(&mut self, _older_than: Timestamp) -> Tombstones {
        Tombstones::default()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, (version, value)) in &self.0 {
            put(&mut out, name.as_bytes());
            out.extend_from_slice(&version.to_le_bytes());
            put(&mut out, value.as_bytes());
        }
        out
    }

    fn decode(mut bytes: &[u8]) -> Result<Self, rumour_ring::Error> {
        let mut map = BTreeMap::new();
        while !bytes.is_empty() {
            let name = take_string(&mut bytes)?;
            let version = take_u64(&mut bytes, 8)?;
            let value = take_string(&mut bytes)?;
            map.insert(name, (version, value));
        }
        Ok(Lww(map))
    }

    fn entry_digests(&self) -> Option<Vec<EntryDigest>> {
        Some(
            self.0
                .iter()
                .map(|(name, (version, value))| EntryDigest {
                    name: name.clone(),
                    hash: stable_hash(value.as_bytes())
                        ^ version.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                })
                .collect(),
        )
    }

    fn select(&self, names: &[String]) -> Option<Self> {
        Some(Lww(names
            .iter()
            .filter_map(|n| self.0.get(n).map(|s| (n.clone(), s.clone())))
            .collect()))
    }
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + i))
}

fn machine(i: u16, start: Instant) -> Gossip {
    let config = Config {
        pullpush_interval: None,
        ..Config::lan(addr(i))
    };
    let mut g = Gossip::new(
        config,
        ChaCha8Rng::seed_from_u64(u64::from(i)),
        (start, EPOCH),
    );
    g.register::<Lww>();
    g.register::<Ring>();
    g
}

/// Two machines holding the same store, `key` = `value`.
fn in_sync<T: Mergeable>(start: Instant, key: &str, value: &T) -> (Gossip, Gossip) {
    let mut a = machine(0, start);
    let mut b = machine(1, start);
    // Full-state answers go only to peers known alive.
    a.handle_peer_up(start, addr(1));
    b.handle_peer_up(start, addr(0));
    a.cas(start, key, |_: Option<&T>| Some(value.clone()))
        .unwrap();
    let join = a.start_pullpush(start, addr(1), true).unwrap();
    b.handle_stream(start, addr(0), &join).unwrap();
    let answer = b.poll_transmit().unwrap();
    a.handle_stream(start, addr(1), &answer.messages[0])
        .unwrap();
    while a.fill_broadcasts(2, usize::MAX).len() + b.fill_broadcasts(2, usize::MAX).len() > 0 {}
    (a, b)
}

/// One periodic pull-push from `a` to `b`, every message handed over at once; returns the bytes
/// exchanged.
fn exchange(start: Instant, a: &mut Gossip, b: &mut Gossip) -> usize {
    let opening = a.start_pullpush(start, addr(1), false).unwrap();
    let mut bytes = opening.len();
    b.handle_stream(start, addr(0), &opening).unwrap();
    loop {
        let mut moved = false;
        while let Some(t) = b.poll_transmit() {
            for m in &t.messages {
                bytes += m.len();
                a.handle_stream(start, addr(1), m).unwrap();
            }
            moved = true;
        }
        while let Some(t) = a.poll_transmit() {
            for m in &t.messages {
                bytes += m.len();
                b.handle_stream(start, addr(0), m).unwrap();
            }
            moved = true;
        }
        if !moved {
            return bytes;
        }
    }
}

fn ring(instances: usize, tokens: usize) -> Ring {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut ring = Ring::new();
    let mut taken = Vec::new();
    for i in 0..instances {
        let t = random_tokens(tokens, &taken, &mut rng).unwrap();
        taken.extend_from_slice(t.as_slice());
        let id = format!("ingester-{i:03}");
        ring.set_instance(
            &id,
            Instance::new(format!("10.1.0.{i}:9095"), "", State::Active, t, EPOCH),
        )
        .unwrap();
        ring.set_heartbeat(&id, EPOCH).unwrap();
    }
    ring
}

fn local_change(c: &mut Criterion) {
    let start = Instant::now();
    let mut g = machine(0, start);
    g.cas(start, "k", |_: Option<&Lww>| Some(Lww::filled(100)))
        .unwrap();
    let mut i = 0usize;
    c.bench_function(
        "gossip/cas_and_fill_one_change (100-entry value)",
        |bench| {
            bench.iter(|| {
                i += 1;
                let name = format!("entry-{:04}", i % 100);
                g.cas(start, "k", |cur: Option<&Lww>| {
                    Some(cur.unwrap().bumped(&name))
                })
                .unwrap();
                black_box(g.fill_broadcasts(10, 1384));
            });
        },
    );
}

fn received_change(c: &mut Criterion) {
    let start = Instant::now();
    let (mut a, mut b) = in_sync(start, "k", &Lww::filled(100));
    let mut i = 0usize;
    c.bench_function("gossip/handle_received_change (100-entry value)", |bench| {
        bench.iter_batched(
            || {
                i += 1;
                let name = format!("entry-{:04}", i % 100);
                a.cas(start, "k", |cur: Option<&Lww>| {
                    Some(cur.unwrap().bumped(&name))
                })
                .unwrap();
                a.fill_broadcasts(10, 1384).pop().unwrap()
            },
            |message| {
                b.handle_packet(start, addr(0), &message).unwrap();
                black_box(b.fill_broadcasts(10, 1384));
            },
            BatchSize::SmallInput,
        );
    });

    let (mut a, mut b) = in_sync(start, "ring", &ring(600, 128));
    let mut beat = EPOCH.0;
    c.bench_function(
        "gossip/handle_ring_heartbeat_change (600 x 128 ring)",
        |bench| {
            bench.iter_batched(
                || {
                    beat += 1;
                    let id = format!("ingester-{:03}", beat % 600);
                    a.cas(start, "ring", |cur: Option<&Ring>| {
                        let mut ring = cur.unwrap().clone();
                        ring.set_heartbeat(&id, Timestamp(beat)).unwrap();
                        Some(ring)
                    })
                    .unwrap();
                    a.fill_broadcasts(10, 1384).pop().unwrap()
                },
                |message| {
                    b.handle_packet(start, addr(0), &message).unwrap();
                    black_box(b.fill_broadcasts(10, 1384));
                },
                BatchSize::SmallInput,
            );
        },
    );
}

fn pullpush(c: &mut Criterion) {
    let start = Instant::now();
    let (mut a, mut b) = in_sync(start, "k", &Lww::filled(1000));
    let bytes = exchange(start, &mut a, &mut b);
    println!("in-sync pull-push, one 1,000-entry value: {bytes} bytes");
    c.bench_function("gossip/in_sync_pullpush (1,000 entries)", |bench| {
        bench.iter(|| black_box(exchange(start, &mut a, &mut b)));
    });

    let mut i = 0usize;
    c.bench_function("gossip/pullpush_one_entry_apart (1,000 entries)", |bench| {
        bench.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                let name = format!("entry-{:04}", i % 1000);
                b.cas(start, "k", |cur: Option<&Lww>| {
                    Some(cur.unwrap().bumped(&name))
                })
                .unwrap();
                let began = Instant::now();
                black_box(exchange(start, &mut a, &mut b));
                total += began.elapsed();
            }
            total
        });
    });
}

criterion_group!(benches, local_change, received_change, pullpush);
criterion_main!(benches);
