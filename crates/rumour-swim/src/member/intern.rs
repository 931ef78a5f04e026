//! Member names interned process-wide ([`rumour_wire::Interner`]): every
//! [`NodeName`](super::NodeName) with the same text shares one allocation, however many tables
//! hold it and however often it arrives.
//!
//! A name arrives in nearly every message (each alive, suspect and dead, every entry of a
//! full-state exchange), and a thousand nodes simulated in one process each keep a row per
//! member. Interned, a decoded name costs a lookup instead of two allocations, equal names
//! compare by pointer, and the simulator keeps one copy of each name instead of one per node
//! (see `docs/benchmarks.md`, "Memory per member"). The set is a hash set: an ordered one cost
//! about ten string comparisons a lookup, 7 % of a 1,000-node simulated join.

use std::sync::Arc;

use rumour_wire::Interner;

/// A name's shared allocation: an `Arc` of a boxed `str` is one pointer wide (an `Arc<str>`
/// is two), so every holder of a name (a member record, a never-confirmed entry, a queued
/// event) spends 8 bytes on it, for one more hop when the text is read.
pub(super) type Shared = Arc<Box<str>>;

static NAMES: Interner<Box<str>> = Interner::new();

/// The shared allocation holding `name`.
pub(super) fn intern(name: &str) -> Shared {
    NAMES.intern(name.as_bytes(), || Box::from(name))
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
    fn names_compare_by_pointer_and_sort_by_text() {
        use super::super::NodeName;
        let name = |s: &str| NodeName::new(s).expect("a valid name");
        let b = name("intern-test-b");
        assert_eq!(b, name(&String::from("intern-test-b")));
        assert_eq!(b.identity(), name("intern-test-b").identity());
        assert_ne!(b, name("intern-test-c"));
        let mut names = [name("intern-test-c"), b.clone(), name("intern-test-a")];
        names.sort();
        let texts: Vec<&str> = names.iter().map(NodeName::as_str).collect();
        assert_eq!(texts, ["intern-test-a", "intern-test-b", "intern-test-c"]);
        assert_eq!(b.cmp(&name("intern-test-b")), std::cmp::Ordering::Equal);
    }
}
