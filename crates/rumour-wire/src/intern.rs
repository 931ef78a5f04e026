//! Values interned process-wide: every value with the same key bytes shares one allocation,
//! however many tables hold it and however often it arrives.
//!
//! Member names (`rumour-swim`) and ring descriptions (`rumour-ring`) arrive again and again,
//! and a simulation runs a thousand nodes in one process, each keeping its own copy of what
//! the others hold. Interned, a value decoded twice is found instead of built, equal values
//! compare by pointer, and the simulator keeps one copy of each (see `docs/benchmarks.md`,
//! "Memory per member").
//!
//! Values come from the network, so an interner is bounded by what is in use, not by what was
//! seen: when it has doubled since the last sweep, values no one else holds are dropped (a
//! flood of made-up values costs at most twice the values in use, amortised O(1) per value).
//! The set is a hash set under the standard library's randomly keyed SipHash, so no peer can
//! choose keys that collide; it is never iterated into any output, so its process-dependent
//! layout changes nothing a seeded run produces.
#![allow(
    clippy::disallowed_types,
    reason = "the set is only searched and swept, never iterated into an output"
)]

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

/// A value an [`Interner`] can hold: values with equal keys are interchangeable.
pub trait Interned: Send + Sync + 'static {
    /// The bytes that identify the value.
    fn key(&self) -> &[u8];
}

impl Interned for Box<str> {
    fn key(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// A set entry, found by its value's key.
struct Entry<T>(Arc<T>);

impl<T: Interned> Borrow<[u8]> for Entry<T> {
    fn borrow(&self) -> &[u8] {
        self.0.key()
    }
}

impl<T: Interned> PartialEq for Entry<T> {
    fn eq(&self, other: &Entry<T>) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<T: Interned> Eq for Entry<T> {}

impl<T: Interned> Hash for Entry<T> {
    /// Hashes as the `[u8]` it borrows as, so the set is searched by key.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key().hash(state);
    }
}

/// An interner is swept when it holds this many values or twice the values kept by the last
/// sweep.
const MIN_SWEEP: usize = 1024;

struct Set<T> {
    entries: HashSet<Entry<T>>,
    /// Sweep when the set reaches this size.
    sweep_at: usize,
}

/// A process-wide set of shared values, found by key (see the module documentation). Meant
/// for a `static`.
///
/// ```
/// use std::sync::Arc;
/// use rumour_wire::Interner;
///
/// static NAMES: Interner<Box<str>> = Interner::new();
/// let a = NAMES.intern(b"node-1", || Box::from("node-1"));
/// let b = NAMES.intern(b"node-1", || unreachable!("already interned"));
/// assert!(Arc::ptr_eq(&a, &b));
/// ```
pub struct Interner<T> {
    set: Mutex<Option<Set<T>>>,
}

impl<T: Interned> Interner<T> {
    /// An empty interner.
    pub const fn new() -> Interner<T> {
        Interner {
            set: Mutex::new(None),
        }
    }

    /// Runs `f` on the set. A panic elsewhere while holding the lock leaves the set
    /// consistent (every operation on it is a single call), so a poisoned lock is used as it is.
    fn with<R>(&self, f: impl FnOnce(&mut Set<T>) -> R) -> R {
        let mut guard = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        f(guard.get_or_insert_with(|| Set {
            entries: HashSet::new(),
            sweep_at: MIN_SWEEP,
        }))
    }

    /// The shared value under `key`, if one is interned.
    pub fn get(&self, key: &[u8]) -> Option<Arc<T>> {
        self.with(|set| set.entries.get(key).map(|e| Arc::clone(&e.0)))
    }

    /// The shared value under `key`, made by `make` (whose value must have `key` as its key)
    /// if none is interned.
    pub fn intern(&self, key: &[u8], make: impl FnOnce() -> T) -> Arc<T> {
        self.with(|set| match set.entries.get(key) {
            Some(entry) => Arc::clone(&entry.0),
            None => set.insert(make()),
        })
    }

    /// `value`, shared: the value already interned under its key if there is one, else
    /// `value` itself, now interned.
    pub fn insert(&self, value: T) -> Arc<T> {
        self.with(|set| match set.entries.get(value.key()) {
            Some(entry) => Arc::clone(&entry.0),
            None => set.insert(value),
        })
    }

    /// Values in the set now (those in use and those not swept yet).
    pub fn len(&self) -> usize {
        self.with(|set| set.entries.len())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Interned> Default for Interner<T> {
    fn default() -> Interner<T> {
        Interner::new()
    }
}

impl<T: Interned> Set<T> {
    /// Adds `value` (not in the set), sweeping first if the set has doubled.
    fn insert(&mut self, value: T) -> Arc<T> {
        if self.entries.len() >= self.sweep_at {
            // Held only by the set: nothing refers to it. Another holder cannot appear
            // meanwhile, since new holders come through the lock.
            self.entries.retain(|entry| Arc::strong_count(&entry.0) > 1);
            self.sweep_at = (self.entries.len() * 2).max(MIN_SWEEP);
        }
        let shared = Arc::new(value);
        self.entries.insert(Entry(Arc::clone(&shared)));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_share_one_allocation() {
        let names: Interner<Box<str>> = Interner::new();
        let a = names.intern(b"a", || Box::from("a"));
        let b = names.insert(Box::from("a"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &names.insert(Box::from("b"))));
        assert!(Arc::ptr_eq(&a, &names.get(b"a").expect("interned")));
        assert!(names.get(b"c").is_none());
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn values_no_one_holds_are_swept_so_a_flood_stays_bounded() {
        let names: Interner<Box<str>> = Interner::new();
        let kept = names.insert(Box::from("kept"));
        for i in 0..100_000 {
            drop(names.insert(format!("flood-{i}").into_boxed_str()));
        }
        assert!(names.len() <= 2 * MIN_SWEEP, "{} values kept", names.len());
        assert!(
            Arc::ptr_eq(&kept, &names.insert(Box::from("kept"))),
            "a held value stays"
        );
    }
}
