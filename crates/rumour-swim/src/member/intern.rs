//! Member names interned process-wide: every [`NodeName`](super::NodeName) with the same text
//! shares one allocation, however many tables hold it and however often it arrives.
//!
//! A name arrives in nearly every message (each alive, suspect and dead, every entry of a
//! full-state exchange), and a thousand nodes simulated in one process each keep a row per
//! member. Interned, a decoded name costs a lookup instead of two allocations, equal names
//! compare by pointer, and the simulator keeps one copy of each name instead of one per node
//! (see `docs/benchmarks.md`, "Memory per member").
//!
//! Names come from the network, so the set is bounded by what is in use, not by what was
//! seen: when it has doubled since the last sweep, names no one else holds are dropped (a
//! flood of made-up names costs at most twice the names in use, amortised O(1) per name). The
//! set is ordered by the names' text (a lookup compares a few short, shared, cache-warm
//! names): no hash, so no peer can choose names that collide, and no process-dependent order.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

/// A name's shared allocation: an `Arc` of a boxed `str` is one pointer wide (an `Arc<str>`
/// is two), so every holder of a name (a member record, a never-confirmed entry, a queued
/// event) spends 8 bytes on it, for one more hop when the text is read.
pub(super) type Shared = Arc<Box<str>>;

/// A set entry, found by the name's text.
struct Entry(Shared);

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        *self.0 == *other.0
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        str::cmp(&self.0, &other.0)
    }
}

/// The set is swept when it holds this many names or twice the names kept by the last sweep.
const MIN_SWEEP: usize = 1024;

struct Names {
    set: BTreeSet<Entry>,
    /// Sweep when the set reaches this size.
    sweep_at: usize,
}

static NAMES: Mutex<Option<Names>> = Mutex::new(None);

/// The shared allocation holding `name`.
pub(super) fn intern(name: &str) -> Shared {
    // A panic elsewhere while holding the lock leaves the set consistent (every operation on
    // it is a single call), so a poisoned lock is used as it is.
    let mut guard = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let names = guard.get_or_insert_with(|| Names {
        set: BTreeSet::new(),
        sweep_at: MIN_SWEEP,
    });
    if let Some(entry) = names.set.get(name) {
        return Arc::clone(&entry.0);
    }
    if names.set.len() >= names.sweep_at {
        // Held only by the set: no name, table or queue refers to it. Another holder cannot
        // appear meanwhile, since new holders come through this lock.
        names.set.retain(|entry| Arc::strong_count(&entry.0) > 1);
        names.sweep_at = (names.set.len() * 2).max(MIN_SWEEP);
    }
    let shared: Shared = Arc::new(Box::from(name));
    names.set.insert(Entry(Arc::clone(&shared)));
    shared
}

/// Names in the set now (those in use and those not swept yet).
#[cfg(test)]
pub(super) fn interned() -> usize {
    NAMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map_or(0, |names| names.set.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_names_share_one_allocation() {
        let a = intern("intern-test-a");
        let b = intern(&String::from("intern-test-a"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &intern("intern-test-b")));
    }

    #[test]
    fn names_no_one_holds_are_swept_so_a_flood_of_names_stays_bounded() {
        let kept = intern("intern-test-kept");
        // Other tests intern concurrently; the bound below leaves them room.
        for i in 0..100_000 {
            drop(intern(&format!("intern-test-flood-{i}")));
        }
        assert!(interned() < 4 * MIN_SWEEP, "{} names kept", interned());
        assert!(
            Arc::ptr_eq(&kept, &intern("intern-test-kept")),
            "a held name stays"
        );
    }
}
