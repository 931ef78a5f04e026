//! Criterion benchmarks of the ring CRDT: encode, decode, clone, full merge and lookup at 100 and
//! 1,000 instances x 128 and 512 tokens, and the receive path of a one-instance heartbeat change
//! into a 600 x 128 ring (dskit's `BenchmarkMemberlistReceiveWithRingDesc`: 0.44 ms per message).
//!
//! Run with `cargo bench -p rumour-benches --bench ring`.
#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented public items"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_ring::{
    Instance, Mergeable, Operation, ReplicationConfig, ReplicationSet, Ring, State, Timestamp,
    ZoneAwareness, random_tokens,
};

const T0: u64 = 1_700_000_000_000;
const SIZES: [(usize, usize); 4] = [(100, 128), (100, 512), (1000, 128), (1000, 512)];

fn id(i: usize) -> String {
    format!("ingester-zone-{}-{i:04}", i % 3)
}

/// `n` Active instances in 3 zones with `tokens` random tokens each, heartbeats at `beat`.
fn ring(n: usize, tokens: usize, beat: u64) -> Ring {
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64 * 1000 + tokens as u64);
    let mut ring = Ring::new();
    for i in 0..n {
        let t = random_tokens(tokens, &[], &mut rng).expect("free tokens");
        let addr = format!("10.0.{}.{}:9095", i / 250, i % 250);
        let at = Timestamp(T0 + i as u64);
        let instance = Instance::new(addr, format!("zone-{}", i % 3), State::Active, t, at);
        ring.set_instance(&id(i), instance).expect("valid id");
        ring.set_heartbeat(&id(i), Timestamp(beat + i as u64))
            .expect("valid id");
    }
    ring
}

fn label(n: usize, tokens: usize) -> String {
    format!("{n}x{tokens}")
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring/encode");
    for (n, tokens) in SIZES {
        let r = ring(n, tokens, T0);
        group.bench_function(label(n, tokens), |b| b.iter(|| black_box(&r).encode()));
    }
    group.finish();
    let mut group = c.benchmark_group("ring/decode");
    for (n, tokens) in SIZES {
        let bytes = ring(n, tokens, T0).encode();
        group.bench_function(label(n, tokens), |b| {
            b.iter(|| Ring::decode(black_box(&bytes)).expect("valid bytes"))
        });
    }
    group.finish();
}

fn clone(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring/clone");
    for (n, tokens) in SIZES {
        let r = ring(n, tokens, T0);
        group.bench_function(label(n, tokens), |b| b.iter(|| black_box(&r).clone()));
    }
    group.finish();
}

/// One-instance heartbeat changes, each newer than the last, as encoded gossip messages.
fn heartbeat_messages(count: u64, first: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|k| {
            let mut change = Ring::new();
            change
                .set_heartbeat(&id(42), Timestamp(first + k))
                .expect("valid id");
            change.encode()
        })
        .collect()
}

fn heartbeat_receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring/heartbeat_600x128");
    let base = ring(600, 128, T0);
    // Merge only: one decoded change into the stored ring.
    group.bench_function("merge", |b| {
        let mut stored = base.clone();
        let mut beat = T0 + 1_000_000;
        b.iter_custom(|iters| {
            let changes: Vec<Ring> = heartbeat_messages(iters, beat)
                .iter()
                .map(|m| Ring::decode(m).expect("valid bytes"))
                .collect();
            beat += iters;
            let start = Instant::now();
            for change in &changes {
                black_box(stored.merge(change, None));
            }
            start.elapsed()
        });
    });
    // The receive path of a KV store: decode, merge, prune tombstones, encode the change to
    // forward (dskit's NotifyMsg at 0.44 ms).
    group.bench_function("receive", |b| {
        let mut stored = base.clone();
        let mut beat = T0 + 10_000_000;
        let cutoff = Timestamp(T0);
        b.iter_custom(|iters| {
            let messages = heartbeat_messages(iters, beat);
            beat += iters;
            let start = Instant::now();
            for message in &messages {
                let value = Ring::decode(message).expect("valid bytes");
                if let Some(mut change) = stored.merge(&value, None) {
                    stored.remove_tombstones(cutoff);
                    change.remove_tombstones(cutoff);
                    black_box(change.encode());
                }
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn full_merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring/full_merge");
    for (n, tokens) in SIZES {
        let stored = ring(n, tokens, T0);
        // The same ring seen later: every heartbeat newer, every description equal.
        let newer = ring(n, tokens, T0 + 5_000);
        group.bench_function(format!("{}/heartbeats", label(n, tokens)), |b| {
            b.iter_batched_ref(
                || stored.clone(),
                |s| black_box(s.merge(&newer, None)),
                BatchSize::SmallInput,
            )
        });
        // A fresh replica receiving the whole ring.
        group.bench_function(format!("{}/into_empty", label(n, tokens)), |b| {
            b.iter_batched_ref(
                Ring::new,
                |s| black_box(s.merge(&stored, None)),
                BatchSize::SmallInput,
            )
        });
        // An identical, separately decoded copy: nothing changes.
        let copy = Ring::decode(&stored.encode()).expect("valid bytes");
        group.bench_function(format!("{}/in_sync", label(n, tokens)), |b| {
            b.iter_batched_ref(
                || stored.clone(),
                |s| black_box(s.merge(&copy, None)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let now = Timestamp(T0 + 10_000);
    let mut group = c.benchmark_group("ring/lookup");
    for (n, tokens) in SIZES {
        let r = ring(n, tokens, T0);
        r.prepare_lookup();
        for zone_awareness in [ZoneAwareness::Disabled, ZoneAwareness::Enabled] {
            let config = ReplicationConfig {
                zone_awareness,
                ..ReplicationConfig::default()
            };
            let mut set = ReplicationSet::with_capacity(8);
            let mut key = 0u32;
            let zones = if zone_awareness == ZoneAwareness::Enabled {
                "zones"
            } else {
                "no_zones"
            };
            group.bench_function(format!("{}/{zones}", label(n, tokens)), |b| {
                b.iter(|| {
                    key = key.wrapping_add(0x9E37_79B9);
                    r.get(key, Operation::WRITE, &config, now, &mut set)
                        .expect("healthy ring");
                    black_box(set.len())
                })
            });
        }
        // The first lookup after a token change builds the table.
        group.bench_function(format!("{}/table_build", label(n, tokens)), |b| {
            // A decoded copy shares no table with `r`.
            b.iter_batched_ref(
                || Ring::decode(&r.encode()).expect("valid bytes"),
                |fresh| fresh.prepare_lookup(),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = codec, clone, heartbeat_receive, full_merge, lookup
}
criterion_main!(benches);
