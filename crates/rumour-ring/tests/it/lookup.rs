//! Lookups against a brute-force reference, replication sets, and ownership.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::support::{random_ring, ring};
use proptest::prelude::*;
use rumour_ring::{
    Error, Instance, Operation, ReplicationConfig, ReplicationSet, Ring, State, Timestamp, Tokens,
    ZoneAwareness,
};

const OPS: [Operation; 4] = [
    Operation::WRITE,
    Operation::WRITE_NO_EXTEND,
    Operation::READ,
    Operation::REPORTING,
];

/// The lookup spelled out with plain collections: resolve every token's owner by scanning all
/// claimants, then walk.
fn reference(
    ring: &Ring,
    key: u32,
    op: Operation,
    config: &ReplicationConfig,
    now: Timestamp,
) -> Result<(Vec<String>, usize), Error> {
    let live: Vec<_> = ring
        .instances()
        .filter(|i| i.state() != State::Left)
        .collect();
    let mut claims: BTreeMap<u32, Vec<(bool, &str)>> = BTreeMap::new();
    for i in &live {
        for &t in i.tokens().iter() {
            claims
                .entry(t)
                .or_default()
                .push((i.state() == State::Leaving, i.id()));
        }
    }
    let tokens: Vec<(u32, &str)> = claims
        .into_iter()
        .map(|(t, mut who)| {
            who.sort();
            (t, who[0].1)
        })
        .collect();
    if tokens.is_empty() {
        return Err(Error::EmptyRing);
    }
    let by_id: BTreeMap<&str, _> = live.iter().map(|i| (i.id(), *i)).collect();
    let owners: BTreeSet<&str> = tokens.iter().map(|t| t.1).collect();
    let zones: BTreeSet<&str> = owners.iter().map(|id| by_id[id].zone()).collect();
    let zone_aware = config.zone_awareness == ZoneAwareness::Enabled;
    let start = tokens.iter().position(|t| t.0 > key).unwrap_or(0);
    let mut wanted = config.replication_factor;
    let (mut picked, mut picked_zones): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for step in 0..tokens.len() {
        if picked.len() >= wanted.min(owners.len()) || picked_zones.len() >= zones.len() {
            break;
        }
        let id = tokens[(start + step) % tokens.len()].1;
        let instance = by_id[id];
        let limited = zone_aware && !instance.zone().is_empty();
        if picked.contains(&id) || (limited && picked_zones.contains(&instance.zone())) {
            continue;
        }
        picked.push(id);
        if op.extends_on(instance.state()) {
            wanted += 1;
        } else if limited {
            picked_zones.push(instance.zone());
        }
    }
    let min_success = config.replication_factor.max(picked.len()) / 2 + 1;
    let healthy: Vec<String> = picked
        .iter()
        .filter(|id| by_id[*id].is_healthy(op, now, config.heartbeat_timeout))
        .map(|id| id.to_string())
        .collect();
    if healthy.len() < min_success {
        return Err(Error::TooFewReplicas {
            needed: min_success,
            found: healthy.len(),
            zone_aware,
        });
    }
    let max_errors = healthy.len() - min_success;
    Ok((healthy, max_errors))
}

fn ids(set: &ReplicationSet) -> Vec<String> {
    set.replicas().iter().map(|r| r.id().to_owned()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn lookups_match_the_reference_for_every_operation(
        ring in ring(),
        keys in prop::collection::vec(0u32..30, 1..6),
        rf in 1usize..5,
        zone_aware in any::<bool>(),
        timeout_ms in prop::sample::select(vec![0u64, 2, 4]),
    ) {
        let config = ReplicationConfig {
            replication_factor: rf,
            zone_awareness: if zone_aware { ZoneAwareness::Enabled } else { ZoneAwareness::Disabled },
            heartbeat_timeout: Duration::from_millis(timeout_ms),
        };
        let now = Timestamp(6);
        let mut set = ReplicationSet::with_capacity(8);
        for key in keys {
            for op in OPS {
                let got = ring.get(key, op, &config, now, &mut set).map(|()| (ids(&set), set.max_errors()));
                prop_assert_eq!(got, reference(&ring, key, op, &config, now), "key {} op {:?}", key, op);
            }
        }
    }

    #[test]
    fn ownership_sums_to_one_overall_and_within_each_zone(ring in ring()) {
        let owned: f64 = ring.ownership().iter().map(|(_, f)| f).sum();
        let any_tokens = ring.instances().any(|i| i.state() != State::Left && !i.tokens().is_empty());
        prop_assert!(!any_tokens || (owned - 1.0).abs() < 1e-9, "sum {}", owned);
        let mut per_zone: BTreeMap<String, f64> = BTreeMap::new();
        for (id, f) in ring.ownership_within_zones() {
            let zone = ring.instance(&id).expect("listed").zone().to_owned();
            *per_zone.entry(zone).or_default() += f;
        }
        for (zone, sum) in per_zone {
            prop_assert!(sum == 0.0 || (sum - 1.0).abs() < 1e-9, "zone {:?}: {}", zone, sum);
        }
    }
}

#[test]
fn large_random_rings_match_the_reference_with_and_without_zones() {
    for (zones, seed) in [(0, 1), (3, 2)] {
        let ring = random_ring(60, 32, zones, seed);
        let now = Timestamp(1_700_000_001_030);
        for zone_awareness in [ZoneAwareness::Disabled, ZoneAwareness::Enabled] {
            let config = ReplicationConfig {
                replication_factor: 3,
                zone_awareness,
                heartbeat_timeout: Duration::from_millis(10),
            };
            let mut set = ReplicationSet::with_capacity(8);
            for key in (0..200u32).map(|k| k.wrapping_mul(0x9E37_79B9)) {
                for op in OPS {
                    let got = ring
                        .get(key, op, &config, now, &mut set)
                        .map(|()| (ids(&set), set.max_errors()));
                    assert_eq!(got, reference(&ring, key, op, &config, now), "key {key}");
                }
            }
        }
    }
}

#[test]
fn a_lookup_with_a_reused_set_does_not_grow_its_buffers() {
    let ring = random_ring(200, 128, 3, 9);
    let config = ReplicationConfig {
        heartbeat_timeout: Duration::ZERO,
        zone_awareness: ZoneAwareness::Enabled,
        ..ReplicationConfig::default()
    };
    let mut set = ReplicationSet::with_capacity(8);
    ring.get(0, Operation::WRITE, &config, Timestamp(0), &mut set)
        .expect("healthy ring");
    let before = set.replicas().as_ptr();
    for key in (0..10_000u32).map(|k| k.wrapping_mul(0x9E37_79B9)) {
        ring.get(key, Operation::WRITE, &config, Timestamp(0), &mut set)
            .expect("healthy ring");
        assert_eq!(set.len(), 3);
    }
    assert_eq!(
        set.replicas().as_ptr(),
        before,
        "the replica buffer was never reallocated"
    );
}

fn three_zone_ring(unhealthy: &[&str]) -> Ring {
    let mut ring = Ring::new();
    let now = Timestamp(100_000);
    for (n, id) in ["a1", "a2", "b1", "b2", "c1", "c2"].iter().enumerate() {
        let zone = format!("zone-{}", &id[..1]);
        let tokens = Tokens::new(vec![n as u32 * 1000, n as u32 * 1000 + 500]);
        ring.set_instance(id, Instance::new("addr", zone, State::Active, tokens, now))
            .expect("valid id");
        let beat = if unhealthy.contains(id) {
            Timestamp(0)
        } else {
            now
        };
        ring.set_heartbeat(id, beat).expect("valid id");
    }
    ring
}

#[test]
fn a_write_extends_past_a_joining_instance_within_the_same_zone() {
    let mut ring = three_zone_ring(&[]);
    let mut joining = ring.instance("a1").expect("present").instance().clone();
    joining.state = State::Joining;
    ring.set_instance("a1", joining).expect("valid id");
    let config = ReplicationConfig {
        zone_awareness: ZoneAwareness::Enabled,
        ..ReplicationConfig::default()
    };
    let mut set = ReplicationSet::with_capacity(8);
    // Key 10 starts at token 500 (a1, joining), then a2 takes zone-a's place.
    ring.get(10, Operation::WRITE, &config, Timestamp(100_000), &mut set)
        .expect("quorum");
    assert_eq!(ids(&set), ["a2", "b1", "c1"]);
    assert_eq!(set.max_errors(), 0);
}

#[test]
fn a_whole_ring_read_tolerates_one_failed_zone_of_three() {
    let config = ReplicationConfig {
        zone_awareness: ZoneAwareness::Enabled,
        ..ReplicationConfig::default()
    };
    let now = Timestamp(100_000);
    let mut set = ReplicationSet::default();
    three_zone_ring(&[])
        .replication_set_for_operation(Operation::READ, &config, now, &mut set)
        .expect("healthy");
    assert_eq!((set.len(), set.max_unavailable_zones()), (6, 1));
    assert!(set.tolerates(&["a1", "a2"]));
    assert!(!set.tolerates(&["a1", "b1"]));

    three_zone_ring(&["b2"])
        .replication_set_for_operation(Operation::READ, &config, now, &mut set)
        .expect("one zone down");
    assert_eq!(ids(&set), ["a1", "a2", "c1", "c2"]);
    assert_eq!(set.max_unavailable_zones(), 0);

    let err = three_zone_ring(&["b2", "c1"])
        .replication_set_for_operation(Operation::READ, &config, now, &mut set)
        .expect_err("two zones down");
    assert_eq!(
        err,
        Error::TooManyUnhealthy {
            unhealthy: 2,
            tolerated: 1,
            zone_aware: true
        }
    );
}

#[test]
fn a_whole_ring_read_without_zones_tolerates_rf_over_two_failures() {
    let config = ReplicationConfig::default();
    let now = Timestamp(100_000);
    let mut set = ReplicationSet::default();
    three_zone_ring(&["a1"])
        .replication_set_for_operation(Operation::READ, &config, now, &mut set)
        .expect("one down");
    // 6 instances, rf 3: 6 - 1 = 5 must succeed; 5 healthy, so none more may fail.
    assert_eq!((set.len(), set.max_errors()), (5, 0));
    let err = three_zone_ring(&["a1", "b1"])
        .replication_set_for_operation(Operation::READ, &config, now, &mut set)
        .expect_err("two down");
    assert!(matches!(err, Error::TooManyUnhealthy { unhealthy: 2, .. }));
}

#[test]
fn an_empty_ring_has_no_replicas() {
    let mut set = ReplicationSet::default();
    let err = Ring::new().get(
        1,
        Operation::READ,
        &ReplicationConfig::default(),
        Timestamp(0),
        &mut set,
    );
    assert_eq!(err, Err(Error::EmptyRing));
}
