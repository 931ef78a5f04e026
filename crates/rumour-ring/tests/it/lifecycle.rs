//! The lifecycler driven through a simulated KV store, and token generation.

use std::time::Duration;

use crate::support::cas;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_ring::{
    HEARTBEAT_SUFFIX, Instance, Lifecycler, LifecyclerConfig, Mergeable, Ring, State, Timestamp,
    TokenStrategy, Tokens,
};

const T: Timestamp = Timestamp(1_700_000_000_000);

fn lifecycler(id: &str, seed: u64) -> Lifecycler {
    let config = LifecyclerConfig::new(id, format!("{id}.local:9095"), "zone-a");
    Lifecycler::new(config, ChaCha8Rng::seed_from_u64(seed)).expect("valid id")
}

#[test]
fn an_instance_registers_heartbeats_and_unregisters_through_cas() {
    let mut store = Ring::new();
    let mut l = lifecycler("ing-1", 1);
    cas(&mut store, T, |current| l.register(current, T).ok()).expect("registration is a change");
    let me = store.instance("ing-1").expect("registered");
    assert_eq!(
        (me.state(), me.tokens().len(), me.heartbeat()),
        (State::Active, 128, T)
    );
    assert_eq!(me.instance().registered_at, T);
    assert_eq!(l.next_heartbeat_at(), Some(T.saturating_add_millis(5_000)));

    let later = T.saturating_add_millis(5_000);
    assert!(!l.is_heartbeat_due(T.saturating_add_millis(4_999)));
    assert!(l.is_heartbeat_due(later));
    let change = cas(&mut store, later, |current| {
        l.heartbeat(current, later).ok().flatten()
    })
    .expect("a heartbeat is a change");
    assert_eq!(change.content(), vec![format!("ing-1{HEARTBEAT_SUFFIX}")]);
    assert_eq!(store.instance("ing-1").expect("present").heartbeat(), later);

    let end = T.saturating_add_millis(6_000);
    let change = cas(&mut store, end, |current| Some(l.unregister(current))).expect("a tombstone");
    assert_eq!(
        change.instance("ing-1").expect("tombstone").state(),
        State::Left
    );
    assert_eq!(l.heartbeat(&store, end), Ok(None));
    assert_eq!(l.next_heartbeat_at(), None);
}

#[test]
fn instances_registering_in_one_ring_claim_distinct_tokens() {
    let mut store = Ring::new();
    for n in 0..20 {
        let mut l = lifecycler(&format!("ing-{n}"), n);
        cas(&mut store, T, |current| l.register(current, T).ok()).expect("registration");
    }
    let claimed: usize = store.instances().map(|i| i.tokens().len()).sum();
    assert_eq!(store.all_tokens().len(), claimed);
    assert_eq!(claimed, 20 * 128);
}

#[test]
fn a_forgotten_instance_comes_back_at_its_next_heartbeat() {
    let mut store = Ring::new();
    let mut l = lifecycler("ing-1", 3);
    cas(&mut store, T, |current| l.register(current, T).ok()).expect("registration");
    let tokens = l.tokens().clone();
    // Another node forgets it, with a clock ahead of ours.
    let ahead = T.saturating_add_millis(60_000);
    cas(&mut store, ahead, |current| {
        let mut desired = current.clone();
        desired.remove("ing-1");
        Some(desired)
    })
    .expect("forgetting is a change");
    assert_eq!(
        store.instance("ing-1").expect("tombstone").state(),
        State::Left
    );

    let beat = T.saturating_add_millis(5_000);
    cas(&mut store, beat, |current| {
        l.heartbeat(current, beat).ok().flatten()
    })
    .expect("re-registration");
    let me = store.instance("ing-1").expect("back");
    assert_eq!(me.state(), State::Active);
    assert_eq!(me.tokens(), &tokens);
    assert!(
        me.instance().updated_at > ahead,
        "the new description beats the tombstone"
    );
}

#[test]
fn a_restarted_instance_takes_over_its_entry_and_tokens() {
    let mut store = Ring::new();
    let mut before = lifecycler("ing-1", 4);
    cas(&mut store, T, |current| before.register(current, T).ok()).expect("registration");
    let later = T.saturating_add_millis(1_000);
    cas(&mut store, later, |current| {
        before
            .set_state(current, State::Leaving, later)
            .ok()
            .flatten()
    })
    .expect("leaving");

    let mut after = lifecycler("ing-1", 5);
    let restart = T.saturating_add_millis(2_000);
    cas(&mut store, restart, |current| {
        after.register(current, restart).ok()
    })
    .expect("take over");
    let me = store.instance("ing-1").expect("present");
    assert_eq!(me.state(), State::Active, "Leaving becomes Active again");
    assert_eq!(me.tokens(), before.tokens());
    assert_eq!(me.instance().registered_at, T);
}

#[test]
fn a_lifecycler_tops_up_an_entry_with_too_few_tokens() {
    let mut store = Ring::new();
    let short = Instance::new("x", "zone-a", State::Active, Tokens::new(vec![1, 2, 3]), T);
    store.set_instance("ing-1", short).expect("valid id");
    let mut l = lifecycler("ing-1", 6);
    cas(&mut store, T, |current| l.register(current, T).ok()).expect("take over");
    let me = store.instance("ing-1").expect("present");
    assert_eq!(me.tokens().len(), 128);
    assert!(me.tokens().contains(1) && me.tokens().contains(3));
}

#[test]
fn auto_forget_turns_instances_silent_for_too_long_into_tombstones() {
    let mut store = Ring::new();
    let mut config = LifecyclerConfig::new("ing-1", "a:1", "");
    config.auto_forget_after = Some(Duration::from_secs(30));
    let mut l = Lifecycler::new(config, ChaCha8Rng::seed_from_u64(7)).expect("valid id");
    let mut other = lifecycler("ing-2", 8);
    let mut quiet = lifecycler("ing-3", 9);
    cas(&mut store, T, |current| l.register(current, T).ok()).expect("registration");
    cas(&mut store, T, |current| quiet.register(current, T).ok()).expect("registration");
    let later = T.saturating_add_millis(20_000);
    cas(&mut store, later, |current| {
        other.register(current, later).ok()
    })
    .expect("registration");

    let now = T.saturating_add_millis(31_000);
    cas(&mut store, now, |current| {
        l.heartbeat(current, now).ok().flatten()
    })
    .expect("heartbeat");
    assert_eq!(
        store.instance("ing-3").expect("tombstone").state(),
        State::Left
    );
    assert_eq!(
        store.instance("ing-2").expect("present").state(),
        State::Active
    );
    assert_eq!(
        store.instance("ing-1").expect("present").state(),
        State::Active
    );
}

#[test]
fn stores_fed_each_others_changes_converge() {
    // Three nodes, each with its own store and lifecycler; every change is gossiped to the
    // other two stores, some of them twice and in reverse order.
    let mut stores = [Ring::new(), Ring::new(), Ring::new()];
    let mut lifecyclers: Vec<Lifecycler> = (0..3)
        .map(|n| lifecycler(&format!("ing-{n}"), 10 + n))
        .collect();
    let mut inbox: Vec<Vec<Ring>> = vec![Vec::new(); 3];
    for round in 0..6u64 {
        let now = T.saturating_add_millis(round * 5_000);
        for n in 0..3 {
            let l = &mut lifecyclers[n];
            let change = if round == 0 {
                cas(&mut stores[n], now, |current| l.register(current, now).ok())
            } else if round == 4 && n == 2 {
                cas(&mut stores[n], now, |current| Some(l.unregister(current)))
            } else {
                cas(&mut stores[n], now, |current| {
                    l.heartbeat(current, now).ok().flatten()
                })
            };
            for (m, queue) in inbox.iter_mut().enumerate() {
                if m != n {
                    queue.extend(change.iter().cloned());
                    queue.extend(change.iter().filter(|_| round % 2 == 0).cloned());
                }
            }
        }
        if round % 2 == 1 {
            for (store, queue) in stores.iter_mut().zip(inbox.iter_mut()) {
                for change in queue.drain(..).rev() {
                    store.merge(&Ring::decode(&change.encode()).expect("round trip"), None);
                }
            }
        }
    }
    for (store, queue) in stores.iter_mut().zip(inbox.iter_mut()) {
        for change in queue.drain(..) {
            store.merge(&change, None);
        }
    }
    assert_eq!(stores[0], stores[1]);
    assert_eq!(stores[1], stores[2]);
    assert_eq!(
        stores[0].instance("ing-2").expect("tombstone").state(),
        State::Left
    );
}

/// Adds `n` instances one at a time, each generating 128 tokens with `strategy`.
fn grow(strategy: TokenStrategy, n: usize, zones: usize, seed: u64) -> Ring {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ring = Ring::new();
    for i in 0..n {
        let zone = if zones == 0 {
            String::new()
        } else {
            format!("zone-{}", i % zones)
        };
        let tokens = strategy
            .generate(128, &ring, &zone, &mut rng)
            .expect("free tokens");
        let id = format!("ing-{i:04}");
        ring.set_instance(&id, Instance::new("a:1", zone, State::Active, tokens, T))
            .expect("valid id");
    }
    ring
}

#[test]
fn spread_tokens_keep_ownership_far_more_even_than_random_ones() {
    for n in [10, 100] {
        let random = grow(TokenStrategy::Random, n, 0, 1).ownership_imbalance();
        let spread = grow(TokenStrategy::Spread, n, 0, 1).ownership_imbalance();
        println!(
            "{n} instances x 128 tokens: max/min ownership random {random:.3}, spread {spread:.3}"
        );
        assert!(
            spread - 1.0 < (random - 1.0) / 4.0,
            "{n}: spread {spread} random {random}"
        );
    }
}

#[test]
fn spread_tokens_balance_each_zone_on_its_own() {
    let random = grow(TokenStrategy::Random, 60, 3, 2).ownership_imbalance_within_zones();
    let spread = grow(TokenStrategy::Spread, 60, 3, 2).ownership_imbalance_within_zones();
    println!(
        "60 instances in 3 zones: max/min ownership within zones random {random:.3}, spread {spread:.3}"
    );
    assert!(
        spread - 1.0 < (random - 1.0) / 4.0,
        "spread {spread} random {random}"
    );
}
