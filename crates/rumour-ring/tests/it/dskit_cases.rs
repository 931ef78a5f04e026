//! dskit's documented merge cases (`ring/merge_test.go`), in rumour's model, and the two
//! improvements: ties never block progress, heartbeats are cheap.

use crate::support::{cas, random_ring, summary};
use rumour_ring::testing::shares_lookup_table;
use rumour_ring::{
    HEARTBEAT_SUFFIX, Instance, Mergeable, Operation, ReplicationConfig, ReplicationSet, Ring,
    State, Timestamp, Tokens,
};

const T: Timestamp = Timestamp(1_700_000_000_000);

fn inst(state: State, tokens: &[u32], at: Timestamp) -> Instance {
    Instance::new("10.0.0.1:9095", "", state, Tokens::new(tokens.to_vec()), at)
}

fn ring_of(items: &[(&str, Instance)]) -> Ring {
    let mut ring = Ring::new();
    for (id, instance) in items {
        ring.set_instance(id, instance.clone()).expect("valid id");
        ring.set_heartbeat(id, instance.updated_at)
            .expect("valid id");
    }
    ring
}

fn owner_of(ring: &Ring, key: u32) -> String {
    let config = ReplicationConfig {
        replication_factor: 1,
        heartbeat_timeout: std::time::Duration::ZERO,
        ..ReplicationConfig::default()
    };
    let mut set = ReplicationSet::with_capacity(2);
    ring.get(key, Operation::REPORTING, &config, T, &mut set)
        .expect("the ring has tokens");
    set.replicas()[0].id().to_owned()
}

#[test]
fn a_contested_token_goes_to_the_smaller_id_whatever_the_merge_order() {
    let first = ring_of(&[("ing1", inst(State::Active, &[10, 20, 30], T))]);
    let second = ring_of(&[(
        "ing2",
        inst(State::Active, &[5, 20, 40], T.saturating_add_millis(1)),
    )]);
    let mut a = first.clone();
    a.merge(&second, None);
    let mut b = second.clone();
    b.merge(&first, None);
    assert_eq!(a, b);
    // Key 15 belongs to the first token above it, 20, claimed by both: ing1 keeps it.
    assert_eq!(owner_of(&a, 15), "ing1");
    assert_eq!(owner_of(&b, 15), "ing1");
    assert_eq!(owner_of(&a, 35), "ing2");
    // Both claims stay recorded; only ownership is resolved.
    assert_eq!(
        a.instance("ing2").expect("present").tokens().as_slice(),
        &[5, 20, 40]
    );
}

#[test]
fn a_leaving_instance_loses_a_contested_token_to_a_newcomer() {
    let leaving = ring_of(&[("ing1", inst(State::Leaving, &[10, 20, 30], T))]);
    let joining = ring_of(&[("ing2", inst(State::Active, &[20], T))]);
    let mut ring = leaving.clone();
    ring.merge(&joining, None);
    assert_eq!(owner_of(&ring, 15), "ing2");
    assert_eq!(owner_of(&ring, 25), "ing1");
    let ownership = ring.ownership();
    let total: f64 = ownership.iter().map(|(_, f)| f).sum();
    assert!((total - 1.0).abs() < 1e-12);
}

#[test]
fn left_wins_over_a_live_state_written_at_the_same_time() {
    let active = ring_of(&[("ing1", inst(State::Active, &[1, 2, 3], T))]);
    let left = ring_of(&[("ing1", inst(State::Left, &[], T))]);
    let mut a = active.clone();
    let change = a.merge(&left, None).expect("Left is news");
    assert_eq!(a.instance("ing1").expect("kept").state(), State::Left);
    assert!(a.instance("ing1").expect("kept").tokens().is_empty());
    assert_eq!(
        change.content(),
        vec!["ing1".to_owned(), format!("ing1{HEARTBEAT_SUFFIX}")]
    );
    let mut b = left.clone();
    assert_eq!(
        b.merge(&active, None),
        None,
        "an equal-time live state does not undo Left"
    );
    assert_eq!(a, b);
}

#[test]
fn an_instance_missing_from_a_local_cas_becomes_left_at_now() {
    let mut stored = ring_of(&[
        ("ing1", inst(State::Active, &[1], T)),
        ("ing2", inst(State::Active, &[2], T)),
    ]);
    let in_flight = stored.clone(); // an older message still travelling
    let now = T.saturating_add_millis(500);
    let change = cas(&mut stored, now, |current| {
        let mut desired = current.clone();
        desired.remove("ing2");
        Some(desired)
    })
    .expect("removing an instance is a change");
    let tombstone = stored.instance("ing2").expect("kept as a tombstone");
    assert_eq!(tombstone.state(), State::Left);
    assert_eq!(tombstone.instance().updated_at, now);
    assert!(tombstone.tokens().is_empty());
    assert_eq!(summary(&change).keys().collect::<Vec<_>>(), ["ing2"]);
    // The older message cannot resurrect it.
    assert_eq!(stored.merge(&in_flight, None), None);
    assert_eq!(stored.instance("ing2").expect("kept").state(), State::Left);
}

#[test]
fn a_tombstone_for_an_unknown_instance_is_kept_so_older_writes_cannot_resurrect_it() {
    let mut ring = ring_of(&[("ing1", inst(State::Active, &[1], T))]);
    let left = ring_of(&[("ing2", inst(State::Left, &[], T.saturating_add_millis(10)))]);
    assert!(ring.merge(&left, None).is_some());
    assert_eq!(ring.instance("ing2").expect("stored").state(), State::Left);
    let older = ring_of(&[("ing2", inst(State::Active, &[2], T))]);
    assert_eq!(ring.merge(&older, None), None);
}

#[test]
fn a_local_cas_without_a_tombstoned_instance_changes_nothing() {
    let mut stored = ring_of(&[
        ("ing1", inst(State::Active, &[1], T)),
        ("ing2", inst(State::Left, &[], T)),
    ]);
    let before = stored.clone();
    let change = cas(&mut stored, T.saturating_add_millis(1), |current| {
        Some(current.clone())
    });
    assert_eq!(change, None);
    assert_eq!(stored, before);
}

#[test]
fn old_tombstones_are_forgotten_and_not_forwarded() {
    let five_minutes = 5 * 60 * 1000;
    let now = T.saturating_add_millis(10 * 60 * 1000);
    let cutoff = now.saturating_sub_millis(five_minutes);
    let mut store = Ring::new();
    let old = ring_of(&[("old", inst(State::Left, &[], T))]);
    let recent = ring_of(&[("recent", inst(State::Left, &[], now))]);

    // What the KV store does with a received value: merge, then prune result and change.
    let mut change = store.merge(&old, None).expect("new to this store");
    store.remove_tombstones(cutoff);
    let pruned = change.remove_tombstones(cutoff);
    assert_eq!((pruned.removed, pruned.remaining), (1, 0));
    assert!(change.content().is_empty(), "nothing left to forward");
    assert!(store.instance("old").is_none());

    let mut change = store.merge(&recent, None).expect("new to this store");
    change.remove_tombstones(cutoff);
    assert_eq!(change.content()[0], "recent");
    let counts = store.remove_tombstones(cutoff);
    assert_eq!((counts.removed, counts.remaining), (0, 1));
}

#[test]
fn updates_in_the_same_millisecond_apply_without_waiting() {
    let mut stored = ring_of(&[("ing1", inst(State::Active, &[1], T))]);
    for (step, state) in [State::Leaving, State::Active, State::Leaving]
        .into_iter()
        .enumerate()
    {
        let change = cas(&mut stored, T, |current| {
            let mut desired = current.clone();
            let mut instance = current
                .instance("ing1")
                .expect("present")
                .instance()
                .clone();
            instance.state = state;
            desired.set_instance("ing1", instance).expect("valid id");
            Some(desired)
        });
        assert!(change.is_some(), "step {step} applied");
        let now = stored.instance("ing1").expect("present");
        assert_eq!(now.state(), state);
        // Bumped past the stored version only when the plain order would not let it win.
        assert!(now.instance().updated_at <= T.saturating_add_millis(step as u64 + 1));
    }
}

#[test]
fn descriptions_and_heartbeats_merge_independently() {
    let mut a = ring_of(&[(
        "ing1",
        inst(State::Leaving, &[1], T.saturating_add_millis(5)),
    )]);
    let mut b = ring_of(&[("ing1", inst(State::Active, &[1], T))]);
    b.set_heartbeat("ing1", T.saturating_add_millis(9))
        .expect("valid id");
    let mut c = a.clone();
    a.merge(&b, None);
    b.merge(&c, None);
    c.merge(&b, None);
    assert_eq!(a, b);
    let merged = a.instance("ing1").expect("present");
    assert_eq!(merged.state(), State::Leaving);
    assert_eq!(merged.heartbeat(), T.saturating_add_millis(9));
}

#[test]
fn a_heartbeat_change_carries_no_tokens_and_fits_in_64_bytes() {
    let mut stored = random_ring(600, 512, 3, 1);
    let id = "ingester-0042";
    let full = stored
        .select(&[id.to_owned()])
        .expect("splittable")
        .encode()
        .len();
    let now = T.saturating_add_millis(60_000);
    let change = cas(&mut stored, now, |current| {
        let mut desired = current.clone();
        desired.set_heartbeat(id, now).expect("valid id");
        Some(desired)
    })
    .expect("a newer heartbeat is a change");
    let bytes = change.encode();
    println!(
        "heartbeat change: {} bytes for a 512-token instance (whole instance: {full} bytes)",
        bytes.len()
    );
    assert!(bytes.len() <= 64);
    assert!(
        change.instance(id).is_none(),
        "no description in the change"
    );
    assert_eq!(change.heartbeat_of(id), Some(now));
    assert_eq!(change.content(), vec![format!("{id}{HEARTBEAT_SUFFIX}")]);
}

#[test]
fn a_heartbeat_keeps_the_lookup_table() {
    let mut ring = random_ring(100, 128, 0, 2);
    ring.prepare_lookup();
    let before = ring.clone();
    let mut beat = Ring::new();
    beat.set_heartbeat("ingester-0007", T.saturating_add_millis(99_999))
        .expect("valid id");
    assert!(ring.merge(&beat, None).is_some());
    assert!(shares_lookup_table(&ring, &before));
    // A token change drops it.
    let mut moved = ring
        .instance("ingester-0007")
        .expect("present")
        .instance()
        .clone();
    moved.tokens = Tokens::new(vec![1, 2, 3]);
    moved.updated_at = T.saturating_add_millis(100_000);
    let mut update = Ring::new();
    update
        .set_instance("ingester-0007", moved)
        .expect("valid id");
    ring.merge(&update, None);
    ring.prepare_lookup();
    assert!(!shares_lookup_table(&ring, &before));
}

#[test]
fn a_state_change_that_keeps_tokens_keeps_the_lookup_table() {
    let mut ring = random_ring(50, 64, 0, 3);
    ring.prepare_lookup();
    let before = ring.clone();
    let mut joined = ring
        .instance("ingester-0003")
        .expect("present")
        .instance()
        .clone();
    joined.state = State::Joining;
    joined.updated_at = T.saturating_add_millis(1_000_000);
    let mut update = Ring::new();
    update
        .set_instance("ingester-0003", joined)
        .expect("valid id");
    assert!(ring.merge(&update, None).is_some());
    assert!(shares_lookup_table(&ring, &before));
}

#[test]
fn an_edit_from_a_stale_read_is_stamped_now_and_survives_a_concurrent_remote_change() {
    // Stored Active at T; the operator's edit keeps the read's stamp T but sorts higher by
    // content (Leaving > Active).
    let mut stored = ring_of(&[("ing1", inst(State::Active, &[1], T))]);
    let now = T.saturating_add_millis(1_000);
    let change = cas(&mut stored, now, |current| {
        let mut desired = current.clone();
        let mut edited = current
            .instance("ing1")
            .expect("present")
            .instance()
            .clone();
        edited.state = State::Leaving;
        desired.set_instance("ing1", edited).expect("valid id");
        Some(desired)
    })
    .expect("the edit is a change");
    assert_eq!(
        stored.instance("ing1").expect("kept").instance().updated_at,
        now
    );
    // A concurrent remote change stamped between the read and the edit loses everywhere.
    let remote = ring_of(&[(
        "ing1",
        inst(State::Active, &[1, 2], T.saturating_add_millis(500)),
    )]);
    stored.merge(&remote, None);
    assert_eq!(
        stored.instance("ing1").expect("kept").state(),
        State::Leaving
    );
    let mut replica = ring_of(&[("ing1", inst(State::Active, &[1], T))]);
    replica.merge(&remote, None);
    replica.merge(&change, None);
    assert_eq!(replica, stored);
    assert_eq!(
        replica.instance("ing1").expect("kept").state(),
        State::Leaving
    );
}

#[test]
fn a_desired_stamp_newer_than_now_is_kept() {
    let mut stored = ring_of(&[("ing1", inst(State::Active, &[1], T))]);
    let later = T.saturating_add_millis(9_000);
    cas(&mut stored, T.saturating_add_millis(1), |current| {
        let mut desired = current.clone();
        desired
            .set_instance("ing1", inst(State::Leaving, &[1], later))
            .expect("valid id");
        Some(desired)
    })
    .expect("a change");
    assert_eq!(
        stored.instance("ing1").expect("kept").instance().updated_at,
        later
    );
}
