//! Forgotten instances stay forgotten: a replica that dropped a `Left` tombstone after
//! `left_ingesters_timeout` refuses a stale live copy brought back by a node that was away
//! longer, and answers it with the tombstone, so every replica converges on `Left`.

use rumour_ring::{Instance, Mergeable, Ring, State, Timestamp, Tokens};

const T: Timestamp = Timestamp(1_700_000_000_000);
const MINUTE: u64 = 60 * 1000;
const TIMEOUT: u64 = 5 * MINUTE;
const LATEST: Timestamp = Timestamp(u64::MAX);

fn active(at: Timestamp) -> Instance {
    Instance::new(
        "10.0.0.1:9095",
        "z1",
        State::Active,
        Tokens::new(vec![1, 2, 3]),
        at,
    )
}

fn ring_with(id: &str, instance: Instance) -> Ring {
    let mut ring = Ring::new();
    ring.set_instance(id, instance.clone()).expect("valid id");
    ring.set_heartbeat(id, instance.updated_at)
        .expect("valid id");
    ring
}

/// What the KV store does with a received value: `receive` at `now`, then merge.
fn deliver(store: &mut Ring, value: &Ring, now: Timestamp) -> Option<Ring> {
    let mut value = value.clone();
    value.receive(now, LATEST);
    store.merge(&value, None)
}

/// A replica that held `ing` and forgot it: the operator forgot it at `T + 1 min` (a local CAS
/// without it), and the tombstone was swept a timeout later.
fn replica_that_forgot() -> (Ring, Timestamp) {
    let mut store = ring_with("ing", active(T));
    let forgot_at = T.saturating_add_millis(MINUTE);
    store
        .merge(&Ring::new(), Some(forgot_at))
        .expect("the CAS tombstones ing");
    assert!(
        store
            .instance("ing")
            .is_some_and(|i| i.state() == State::Left)
    );
    let swept_at = forgot_at.saturating_add_millis(TIMEOUT + MINUTE);
    let removed = store.remove_tombstones(swept_at.saturating_sub_millis(TIMEOUT));
    assert_eq!(
        removed.removed, 1,
        "the tombstone is forgotten after the timeout"
    );
    assert!(store.instance("ing").is_none());
    (store, swept_at)
}

#[test]
fn a_stale_copy_of_a_forgotten_instance_brings_back_its_tombstone_not_the_instance() {
    let (mut store, swept_at) = replica_that_forgot();
    // A node cut off since before the Forget returns an hour later with ing still active.
    let stale = ring_with("ing", active(T));
    let returned_at = swept_at.saturating_add_millis(60 * MINUTE);

    let change = deliver(&mut store, &stale, returned_at).expect("the tombstone comes back");
    let held = store.instance("ing").expect("held as a tombstone again");
    assert_eq!(held.state(), State::Left);
    assert!(
        held.instance().updated_at >= returned_at,
        "stamped fresh, so it spreads"
    );
    let sent = change
        .instance("ing")
        .expect("the change carries the tombstone");
    assert_eq!(sent.state(), State::Left);

    // The returning node takes the tombstone, so the instance is gone everywhere.
    let mut returning = stale.clone();
    deliver(&mut returning, &change, returned_at).expect("the tombstone wins");
    assert_eq!(
        returning.instance("ing").map(|i| i.state()),
        Some(State::Left)
    );
    // And a replica that never knew ing (joined later) and took the stale copy converges too.
    let mut newcomer = Ring::new();
    deliver(&mut newcomer, &stale, returned_at).expect("new to the newcomer");
    deliver(&mut newcomer, &change, returned_at).expect("the tombstone wins");
    assert_eq!(
        newcomer.instance("ing").map(|i| i.state()),
        Some(State::Left)
    );
}

#[test]
fn without_a_receive_time_a_stale_copy_is_only_refused() {
    let (mut store, _) = replica_that_forgot();
    let stale = ring_with("ing", active(T));
    assert!(store.merge(&stale, None).is_none());
    assert!(store.instance("ing").is_none());
    assert!(store.heartbeat_of("ing").is_none(), "not even as a ghost");
}

#[test]
fn a_heartbeat_alone_of_a_forgotten_instance_is_dropped() {
    let (mut store, swept_at) = replica_that_forgot();
    let mut beat = Ring::new();
    beat.set_heartbeat("ing", swept_at).expect("valid id");
    assert!(deliver(&mut store, &beat, swept_at).is_none());
    assert!(store.heartbeat_of("ing").is_none());
}

#[test]
fn the_owner_registering_again_is_taken_and_no_longer_remembered() {
    let (mut store, swept_at) = replica_that_forgot();
    let back = ring_with("ing", active(swept_at));
    deliver(&mut store, &back, swept_at).expect("a newer description is taken");
    assert_eq!(
        store.instance("ing").map(|i| i.state()),
        Some(State::Active)
    );

    // Forgotten for good only once it leaves again; a stale copy older than both is refused
    // by the live entry's own order, as any old write is.
    let older = ring_with("ing", active(T));
    assert!(deliver(&mut store, &older, swept_at).is_none());
}

#[test]
fn the_memory_lasts_a_day_after_the_sweep() {
    let (mut store, swept_at) = replica_that_forgot();
    let day = 24 * 60 * MINUTE;
    // A sweep a day and a timeout later forgets the memory too.
    let later = swept_at.saturating_add_millis(day + TIMEOUT + MINUTE);
    store.remove_tombstones(later.saturating_sub_millis(TIMEOUT));
    let stale = ring_with("ing", active(T));
    deliver(&mut store, &stale, later).expect("past the memory, the stale copy is new again");
    assert_eq!(
        store.instance("ing").map(|i| i.state()),
        Some(State::Active)
    );
}

#[test]
fn the_memory_holds_at_most_max_instances_ids() {
    let mut store = Ring::new();
    store.set_limits(rumour_ring::RingLimits {
        max_instances: 3,
        ..rumour_ring::RingLimits::default()
    });
    let mut at = T;
    for id in ["a", "b", "c", "d", "e"] {
        store.set_instance(id, active(at)).expect("valid id");
        at = at.saturating_add_millis(MINUTE);
        let mut desired = store.clone();
        desired.remove(id);
        store
            .merge(&desired, Some(at))
            .expect("the CAS tombstones it");
        at = at.saturating_add_millis(MINUTE);
        // Each sweep forgets one tombstone: the memory keeps the three latest.
        assert_eq!(store.remove_tombstones(at).removed, 1);
    }
    let now = at.saturating_add_millis(MINUTE);
    // Each id is tried on a copy, so the ring's own instance limit stays out of the way.
    for (id, remembered) in [
        ("a", false),
        ("b", false),
        ("c", true),
        ("d", true),
        ("e", true),
    ] {
        let mut copy = store.clone();
        deliver(&mut copy, &ring_with(id, active(T)), now).expect("taken or answered");
        let expected = if remembered {
            State::Left
        } else {
            State::Active
        };
        assert_eq!(copy.instance(id).map(|i| i.state()), Some(expected), "{id}");
    }
}
