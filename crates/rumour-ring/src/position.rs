//! Where each instance id sits in a ring's sorted entries, found by hash: a hint that spares a
//! merge the binary search's cache misses.
//!
//! A received heartbeat change names a few ids, each found in the stored ring by a galloping
//! search: about `2 log2(n / m)` probes for `m` ids in a ring of `n`, each reading another
//! 48-byte entry. A thousand simulated rings of a thousand entries (48 MB) do not stay in the
//! caches, so those reads were a third of a 1,000-node ring simulation. Here an id costs a hash,
//! one 8-byte bucket (the index of a 1,000-entry ring is 16 KB) and the one entry it points at.
//!
//! The index is only a hint: every position it gives is checked against the entry's id, and
//! an id it does not give (a new one, one that moved since the index was built, or one of a run
//! of ids crafted to share a hash past [`MAX_PROBES`]) is found by the search as before. So it
//! can never change a merge's result, only its cost, and the hash need not be keyed: it is the
//! stable FNV-1a of [`rumour_wire::stable_hash`].

use rumour_wire::{mix64, stable_hash};

use crate::instance::Entry;

/// Buckets a lookup reads at most before it gives up and leaves the id to the search (at most
/// half the buckets are full: a lookup reads 1.5 on average).
pub(crate) const MAX_PROBES: usize = 16;
/// A bucket holding no position.
const EMPTY: u64 = 0;

/// An id's hash: the low bits choose its first bucket, the high 32 are kept in it. FNV-1a's
/// low bits barely differ between ids that differ in their last character (`ingester-1`,
/// `ingester-2`), so they are mixed first (MurmurHash3's 64-bit finaliser).
fn hash(id: &str) -> u64 {
    mix64(stable_hash(id.as_bytes()))
}

/// Positions of a ring's entries by id (see the module documentation).
#[derive(Debug)]
pub(crate) struct Positions {
    /// A power-of-two number of buckets, at most half full; each [`EMPTY`] or
    /// `hash >> 32 << 32 | (position + 1)`.
    buckets: Box<[u64]>,
}

impl Positions {
    /// The index of `entries` as they are now.
    pub(crate) fn build(entries: &[Entry]) -> Positions {
        let len = (entries.len() * 2).next_power_of_two().max(8);
        let mut buckets = vec![EMPTY; len].into_boxed_slice();
        let mask = len - 1;
        for (position, entry) in entries.iter().enumerate() {
            let Ok(stored) = u32::try_from(position + 1) else {
                break;
            };
            let hash = hash(&entry.id);
            let bucket = (hash >> 32 << 32) | u64::from(stored);
            // A position with no free bucket within reach stays out: the search finds it.
            if let Some(free) = (0..MAX_PROBES)
                .map(|probe| (hash as usize).wrapping_add(probe) & mask)
                .find(|&i| buckets[i] == EMPTY)
            {
                buckets[free] = bucket;
            }
        }
        Positions { buckets }
    }

    /// The positions of `incoming`'s ids in `entries`, as [`Positions::find`] gives them, found
    /// together: the first bucket of every id is read before any id is checked, and every
    /// entry a bucket names before any is compared, so the cache misses of a whole change
    /// overlap instead of following one another (two per id: in a thousand simulated rings
    /// the buckets and entries are rarely cached).
    pub(crate) fn find_all(&self, entries: &[Entry], incoming: &[Entry]) -> Vec<Option<usize>> {
        let mask = self.buckets.len() - 1;
        let firsts: Vec<(u64, u64)> = incoming
            .iter()
            .map(|e| {
                let hash = hash(&e.id);
                (hash, self.buckets[hash as usize & mask])
            })
            .collect();
        // Touch the entry each first bucket names; what is read is checked below.
        let touched = firsts
            .iter()
            .filter(|(hash, bucket)| *bucket != EMPTY && bucket >> 32 == hash >> 32)
            .filter_map(|(_, bucket)| entries.get((*bucket as u32 - 1) as usize))
            .fold(0usize, |n, e| n ^ e.id.len());
        std::hint::black_box(touched);
        incoming
            .iter()
            .zip(&firsts)
            .map(|(e, &(hash, first))| self.find_from(entries, &e.id, hash, first))
            .collect()
    }

    /// The position of `id` in `entries`, if the index knows it and it is still there.
    #[cfg(test)]
    pub(crate) fn find(&self, entries: &[Entry], id: &str) -> Option<usize> {
        let hash = hash(id);
        let first = self.buckets[hash as usize & (self.buckets.len() - 1)];
        self.find_from(entries, id, hash, first)
    }

    /// [`Positions::find`] of `id`, whose `hash` and first bucket are known.
    fn find_from(&self, entries: &[Entry], id: &str, hash: u64, first: u64) -> Option<usize> {
        let mask = self.buckets.len() - 1;
        for probe in 0..MAX_PROBES {
            let bucket = if probe == 0 {
                first
            } else {
                self.buckets[(hash as usize).wrapping_add(probe) & mask]
            };
            if bucket == EMPTY {
                return None;
            }
            if bucket >> 32 == hash >> 32 {
                let position = (bucket as u32 - 1) as usize;
                if entries.get(position).is_some_and(|e| *e.id == *id) {
                    return Some(position);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mergeable::Timestamp;

    fn entries(ids: &[String]) -> Vec<Entry> {
        ids.iter()
            .map(|id| Entry::new(id.as_str().into(), None, Timestamp(1)))
            .collect()
    }

    #[test]
    fn every_id_is_found_at_its_position_and_no_other_id_is() {
        let mut ids: Vec<String> = (0..1000).map(|i| format!("ingester-{i}")).collect();
        ids.sort();
        let entries = entries(&ids);
        let positions = Positions::build(&entries);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(positions.find(&entries, id), Some(i), "{id}");
        }
        let found = positions.find_all(&entries, &entries);
        assert_eq!(found, (0..ids.len()).map(Some).collect::<Vec<_>>());
        assert_eq!(positions.find(&entries, "ingester-1000"), None);
        assert_eq!(positions.find(&entries, ""), None);
    }

    #[test]
    fn a_stale_index_never_gives_a_wrong_position() {
        let mut ids: Vec<String> = (0..100).map(|i| format!("ingester-{i:03}")).collect();
        let positions = Positions::build(&entries(&ids));
        // Ids inserted before every indexed one: each indexed position now holds another id.
        ids.splice(0..0, (0..7).map(|i| format!("a-{i}")));
        let moved = entries(&ids);
        for (i, id) in ids.iter().enumerate() {
            if let Some(found) = positions.find(&moved, id) {
                assert_eq!(found, i, "{id}");
            }
        }
        let all = positions.find_all(&moved, &moved);
        let one_by_one: Vec<Option<usize>> =
            ids.iter().map(|id| positions.find(&moved, id)).collect();
        assert_eq!(all, one_by_one);
        // And fewer entries than indexed: a position past the end is no answer either.
        let fewer = entries(&ids[..10]);
        assert_eq!(positions.find(&fewer, "ingester-099"), None);
    }

    #[test]
    fn merges_through_the_index_give_what_the_search_gives() {
        use rand::{Rng, SeedableRng};

        use crate::{Mergeable, Ring};

        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut indexed, mut searched) = (Ring::new(), Ring::new());
        let mut used = 0;
        for _ in 0..600 {
            let mut change = Ring::new();
            for _ in 0..rng.gen_range(1..8) {
                let id = format!("ingester-{:03}", rng.gen_range(0..300));
                let heartbeat = Timestamp(rng.gen_range(1..10_000));
                change.set_heartbeat(&id, heartbeat).expect("a valid id");
            }
            used += usize::from(indexed.positions.is_some());
            searched.positions = None;
            searched.stable_merges = 0;
            assert_eq!(indexed.merge(&change, None), searched.merge(&change, None));
            assert_eq!(indexed, searched);
        }
        assert!(used > 100, "the index was used in {used} merges");
    }
}
