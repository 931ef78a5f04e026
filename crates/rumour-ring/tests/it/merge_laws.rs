//! The CRDT laws of the ring, as properties over random rings and operation sequences.

use crate::support::{IDS, cas, instance, ring, state};
use proptest::prelude::*;
use rumour_ring::{Mergeable, Ring, State, Timestamp, join_by_merging};

fn merged(a: &Ring, b: &Ring) -> Ring {
    let mut out = a.clone();
    out.merge(b, None);
    out
}

/// An edit a node makes through a local compare-and-swap.
#[derive(Clone, Debug)]
enum Edit {
    Remove(usize),
    SetState(usize, State),
    Heartbeat(usize),
    Put(usize, rumour_ring::Instance),
}

#[derive(Clone, Debug)]
enum Op {
    /// A value received from the network.
    Receive(Ring),
    /// A local CAS applying an edit to the current value.
    Cas(Edit),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..IDS.len()).prop_map(Edit::Remove),
        (0..IDS.len(), state()).prop_map(|(i, s)| Edit::SetState(i, s)),
        (0..IDS.len()).prop_map(Edit::Heartbeat),
        (0..IDS.len(), instance()).prop_map(|(i, inst)| Edit::Put(i, inst)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![ring().prop_map(Op::Receive), edit().prop_map(Op::Cas)]
}

fn apply_edit(current: &Ring, edit: &Edit, now: Timestamp) -> Ring {
    let mut desired = current.clone();
    match edit {
        Edit::Remove(i) => {
            desired.remove(IDS[*i]);
        }
        Edit::SetState(i, s) => {
            if let Some(inst) = current.instance(IDS[*i]) {
                let mut inst = inst.instance().clone();
                inst.state = *s;
                desired.set_instance(IDS[*i], inst).expect("valid id");
            }
        }
        Edit::Heartbeat(i) => desired.set_heartbeat(IDS[*i], now).expect("valid id"),
        Edit::Put(i, inst) => desired
            .set_instance(IDS[*i], inst.clone())
            .expect("valid id"),
    }
    desired
}

/// Runs the operations at one origin; returns its final state and every change it produced.
fn run_origin(base: &Ring, ops: &[Op]) -> (Ring, Vec<Ring>) {
    let mut origin = base.clone();
    let mut changes = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let now = Timestamp(3 + step as u64);
        let change = match op {
            Op::Receive(value) => origin.merge(value, None),
            Op::Cas(e) => cas(&mut origin, now, |current| {
                Some(apply_edit(current, e, now))
            }),
        };
        changes.extend(change);
    }
    (origin, changes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn merge_is_idempotent(a in ring(), b in ring()) {
        let mut same = a.clone();
        prop_assert_eq!(same.merge(&a.clone(), None), None);
        prop_assert_eq!(&same, &a);
        let mut x = a.clone();
        x.merge(&b, None);
        let once = x.clone();
        prop_assert_eq!(x.merge(&b, None), None);
        prop_assert_eq!(x, once);
    }

    #[test]
    fn join_is_what_merging_gives(rings in prop::collection::vec(ring(), 1..7)) {
        let refs: Vec<&Ring> = rings.iter().collect();
        let joined = Ring::join(&refs).expect("one ring at least");
        let mut folded = rings[0].clone();
        for other in &rings[1..] {
            folded.merge(other, None);
        }
        prop_assert_eq!(joined.encode(), folded.encode());
        prop_assert_eq!(&joined, &folded);
        prop_assert_eq!(joined, join_by_merging(&refs).expect("one ring at least"));
    }

    #[test]
    fn merge_is_commutative(a in ring(), b in ring()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
    }

    #[test]
    fn merge_is_associative(a in ring(), b in ring(), c in ring()) {
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    }

    #[test]
    fn a_change_turns_the_old_state_into_the_new_one(a in ring(), b in ring()) {
        let old = a.clone();
        let mut new = a.clone();
        match new.merge(&b, None) {
            None => prop_assert_eq!(&new, &old),
            Some(change) => {
                prop_assert_ne!(&new, &old);
                let mut replayed = old.clone();
                prop_assert!(replayed.merge(&change, None).is_some());
                prop_assert_eq!(replayed, new);
            }
        }
    }

    #[test]
    fn local_cas_changes_are_sound_too(a in ring(), edits in prop::collection::vec(edit(), 1..4)) {
        let mut stored = a.clone();
        for (step, e) in edits.iter().enumerate() {
            let now = Timestamp(2 + step as u64);
            let old = stored.clone();
            match cas(&mut stored, now, |current| Some(apply_edit(current, e, now))) {
                None => prop_assert_eq!(&stored, &old),
                Some(change) => {
                    let mut replayed = old.clone();
                    replayed.merge(&change, None);
                    prop_assert_eq!(&replayed, &stored);
                }
            }
        }
    }

    #[test]
    fn changes_in_any_order_with_duplicates_give_the_same_ring(
        base in ring(),
        ops in prop::collection::vec(op(), 1..8),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let (origin, changes) = run_origin(&base, &ops);
        // Every change once, plus random duplicates, in a shuffled order.
        let mut delivery: Vec<&Ring> = changes.iter().collect();
        delivery.extend(order.iter().filter(|_| !changes.is_empty()).map(|i| i.get(&changes)));
        let mut keys: Vec<usize> = (0..delivery.len()).collect();
        keys.sort_by_key(|&k| order.get(k).map_or(k, |i| i.index(1000)));
        let mut replica = base.clone();
        for k in keys {
            replica.merge(delivery[k], None);
        }
        prop_assert_eq!(&replica, &origin);
        // The same as merging the full states the origin went through.
        let mut full = base.clone();
        for op in &ops {
            if let Op::Receive(value) = op {
                full.merge(value, None);
            }
        }
        for change in &changes {
            full.merge(change, None);
        }
        prop_assert_eq!(&full, &origin);
    }

    #[test]
    fn a_replica_that_has_seen_less_still_converges(
        base in ring(),
        ops in prop::collection::vec(op(), 1..8),
        seen in prop::collection::vec(any::<bool>(), 8),
    ) {
        let (origin, changes) = run_origin(&base, &ops);
        let mut behind = base.clone();
        for (op, saw) in ops.iter().zip(&seen) {
            if let (Op::Receive(value), true) = (op, saw) {
                behind.merge(value, None);
            }
        }
        for change in changes.iter().rev() {
            behind.merge(change, None);
        }
        prop_assert_eq!(behind, origin);
    }

    #[test]
    fn removing_tombstones_never_resurrects_an_entry(a in ring(), cutoff in 0u64..7) {
        let mut pruned = a.clone();
        let counts = pruned.remove_tombstones(Timestamp(cutoff));
        prop_assert_eq!(counts.remaining, pruned.tombstone_count());
        prop_assert_eq!(counts.removed + counts.remaining, a.tombstone_count());
        for kept in pruned.instances() {
            let before = a.instance(kept.id()).expect("nothing appears");
            prop_assert_eq!(kept, before);
        }
        for gone in a.instances().filter(|i| pruned.instance(i.id()).is_none()) {
            prop_assert_eq!(gone.state(), State::Left);
            prop_assert!(gone.instance().updated_at < Timestamp(cutoff));
        }
        // Merging the pruned ring back brings nothing new.
        let mut back = a.clone();
        prop_assert_eq!(back.merge(&pruned, None), None);
    }

    #[test]
    fn digests_differ_exactly_where_entries_differ(a in ring(), b in ring()) {
        let da = a.entry_digests().expect("the ring has digests");
        let db = b.entry_digests().expect("the ring has digests");
        for x in &da {
            if let Some(y) = db.iter().find(|y| y.name == x.name) {
                let same = a.select(std::slice::from_ref(&x.name)) == b.select(std::slice::from_ref(&x.name));
                prop_assert_eq!(x.hash == y.hash, same, "entry {}", x.name);
            }
        }
    }

    #[test]
    fn selecting_differing_entries_and_merging_them_converges(a in ring(), b in ring()) {
        let da = a.entry_digests().expect("digests");
        let db = b.entry_digests().expect("digests");
        let differing: Vec<String> = db
            .iter()
            .filter(|d| !da.contains(d))
            .map(|d| d.name.clone())
            .collect();
        let mut x = a.clone();
        x.merge(&b.select(&differing).expect("the ring can be split"), None);
        prop_assert_eq!(x, merged(&a, &b));
    }
}
