//! Shared generators and helpers for the ring's integration tests.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the support module"
)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use rumour_ring::{Instance, Mergeable, Ring, State, Timestamp, Tokens};

/// Instance ids used by generated rings: few, so updates collide.
pub const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// A state.
pub fn state() -> impl Strategy<Value = State> {
    prop::sample::select(State::ALL.to_vec())
}

/// A description drawn from small domains, so equal timestamps and token conflicts are common.
pub fn instance() -> impl Strategy<Value = Instance> {
    (
        1u64..5,
        state(),
        prop::sample::select(vec!["10.0.0.1:1", "10.0.0.2:1"]),
        prop::sample::select(vec!["", "z1", "z2", "z3"]),
        prop::collection::vec(0u32..24, 0..5),
        0u64..3,
        any::<bool>(),
        prop::collection::btree_map(0u64..3, 0u64..3, 0..2),
    )
        .prop_map(
            |(at, state, addr, zone, tokens, reg, ro, versions)| Instance {
                updated_at: Timestamp(at),
                registered_at: Timestamp(reg),
                read_only: ro,
                read_only_updated_at: Timestamp(reg),
                versions,
                ..Instance::new(addr, zone, state, Tokens::new(tokens), Timestamp(at))
            },
        )
}

/// One raw write: a description and/or a heartbeat for one id.
#[derive(Clone, Debug)]
pub struct Write {
    pub id: &'static str,
    pub instance: Option<Instance>,
    pub heartbeat: u64,
}

pub fn write() -> impl Strategy<Value = Write> {
    (
        prop::sample::select(IDS.to_vec()),
        prop::option::of(instance()),
        0u64..6,
    )
        .prop_map(|(id, instance, heartbeat)| Write {
            id,
            instance,
            heartbeat,
        })
}

/// Applies raw writes (plain sets, not merges).
pub fn build(writes: &[Write]) -> Ring {
    let mut ring = Ring::new();
    for w in writes {
        if let Some(instance) = &w.instance {
            ring.set_instance(w.id, instance.clone()).expect("valid id");
        }
        ring.set_heartbeat(w.id, Timestamp(w.heartbeat))
            .expect("valid id");
    }
    ring
}

/// An arbitrary ring (any element of the lattice over the small domains).
pub fn ring() -> impl Strategy<Value = Ring> {
    prop::collection::vec(write(), 0..7).prop_map(|w| build(&w))
}

/// What the KV store's CAS does: read with tombstones stripped, let `f` produce the desired
/// state, merge it with `local_cas = Some(now)`.
pub fn cas(
    stored: &mut Ring,
    now: Timestamp,
    f: impl FnOnce(&Ring) -> Option<Ring>,
) -> Option<Ring> {
    let mut current = stored.clone();
    current.remove_tombstones(Timestamp::MAX);
    let desired = f(&current)?;
    stored.merge(&desired, Some(now))
}

/// A random ring of `n` instances with `tokens` random tokens each, all Active, with realistic
/// ids, addresses, zones and millisecond timestamps.
pub fn random_ring(n: usize, tokens: usize, zones: usize, seed: u64) -> Ring {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut ring = Ring::new();
    let now = Timestamp(1_700_000_000_000);
    for i in 0..n {
        // Collisions between instances are rare and harmless (lookups resolve them).
        let t = rumour_ring::random_tokens(tokens, &[], &mut rng).expect("free tokens");
        let zone = if zones == 0 {
            String::new()
        } else {
            format!("zone-{}", i % zones)
        };
        let id = format!("ingester-{i:04}");
        let at = Timestamp(now.0 + i as u64 * 7);
        let inst = Instance::new(
            format!("10.0.{}.{}:9095", i / 250, i % 250),
            zone,
            State::Active,
            t,
            at,
        );
        ring.set_instance(&id, inst).expect("valid id");
        ring.set_heartbeat(&id, Timestamp(now.0 + 1000 + i as u64))
            .expect("valid id");
    }
    ring
}

/// The entries of a ring as plain data, for readable assertions.
pub fn summary(ring: &Ring) -> BTreeMap<String, (State, Vec<u32>, u64)> {
    ring.instances()
        .map(|i| {
            (
                i.id().to_owned(),
                (i.state(), i.tokens().to_vec(), i.heartbeat().0),
            )
        })
        .collect()
}
