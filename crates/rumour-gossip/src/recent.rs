//! The changes merged lately, by fingerprint, so that the copies gossip delivers again are
//! dropped before they are decoded.
//!
//! Gossip sends each change `retransmit_limit` times from every node that learns it, so a node
//! receives most changes a dozen times or more (16 at 1,000 nodes). Merging is idempotent and
//! state only grows between two receptions (forgotten tombstones and keys aside, which a repeat
//! must not bring back anyway), so a repeat of a change that merged fully changes nothing: it is
//! counted in `Stats::merges_unchanged`, as its merge would have been, and not decoded.

use rumour_wire::StableHasher;

use crate::message::KeyChange;

/// Most fingerprint slots (a power of two): 32 KiB.
pub(crate) const RECENT_CHANGES: usize = 4096;
/// Slots of a new cache (a power of two): a node that merges few changes keeps 512 bytes.
const MIN_SLOTS: usize = 64;

/// A direct-mapped cache of change fingerprints: a fingerprint lives in the slot its low bits
/// name until another with the same low bits replaces it. One memory access per lookup; a
/// fingerprint pushed out early only costs a merge that changes nothing. (A 64-bit fingerprint
/// collision would drop a change; anti-entropy brings it back.)
///
/// The cache starts small and doubles, up to [`RECENT_CHANGES`] slots, when three quarters of
/// its slots are taken: its memory follows the changes the node sees, not the most it may
/// ever need (a thousand idle nodes in one simulation would otherwise hold 32 MB of empty
/// slots).
#[derive(Clone, Default)]
pub(crate) struct RecentChanges {
    slots: Vec<u64>,
    /// Slots holding a fingerprint.
    taken: usize,
}

impl RecentChanges {
    /// The fingerprint of a change: its key, codec, marker and value bytes (never 0, the mark
    /// of an empty slot). The value is hashed eight bytes at a time ([`words_hash`]): values
    /// reach hundreds of kilobytes (a whole ring in a join answer), where a byte-at-a-time hash
    /// cost a microsecond per kilobyte.
    pub(crate) fn fingerprint(change: &KeyChange) -> u64 {
        let mut h = StableHasher::new();
        h.write_str(&change.key);
        h.write_str(&change.codec);
        h.write_u64(change.marker.updated.0);
        h.write_u64(u64::from(change.marker.deleted));
        let head = h.finish();
        match &change.value {
            Some(value) => words_hash(head, value),
            None => head,
        }
        .max(1)
    }

    fn slot(&self, fingerprint: u64) -> usize {
        (fingerprint as usize) & (self.slots.len() - 1)
    }

    pub(crate) fn contains(&self, fingerprint: u64) -> bool {
        !self.slots.is_empty() && self.slots[self.slot(fingerprint)] == fingerprint
    }

    pub(crate) fn insert(&mut self, fingerprint: u64) {
        if self.slots.len() < RECENT_CHANGES && (self.taken + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let slot = self.slot(fingerprint);
        if self.slots[slot] == 0 {
            self.taken += 1;
        }
        self.slots[slot] = fingerprint;
    }

    /// Doubles the slots (or makes the first ones) and puts every fingerprint back; two that
    /// now share a slot keep the later one's place, as a replacement would.
    fn grow(&mut self) {
        let len = (self.slots.len() * 2).clamp(MIN_SLOTS, RECENT_CHANGES);
        let old = std::mem::replace(&mut self.slots, vec![0; len]);
        self.taken = 0;
        for fingerprint in old.into_iter().filter(|&f| f != 0) {
            let slot = self.slot(fingerprint);
            if self.slots[slot] == 0 {
                self.taken += 1;
            }
            self.slots[slot] = fingerprint;
        }
    }

    /// Slots allocated (8 bytes each).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.slots.len()
    }
}

/// A 64-bit hash of `bytes` after `seed`, eight bytes at a time: each step
/// `h = (rotl(h, 5) ^ word) * K` is a bijection of `h` for a fixed word and of the word for a
/// fixed `h`, so two inputs of one length that differ in a single word never collide; the
/// length and a final mix (MurmurHash3's) close it. Local only, never compared across nodes.
fn words_hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    let mut h = seed;
    for chunk in &mut chunks {
        h = step(
            h,
            u64::from_le_bytes(chunk.try_into().expect("eight bytes")),
        );
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = step(h, u64::from_le_bytes(tail));
    rumour_wire::mix64(step(h, bytes.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_stays_until_one_with_the_same_slot_replaces_it() {
        let mut recent = RecentChanges::default();
        assert!(!recent.contains(5));
        recent.insert(5);
        recent.insert(6);
        assert!(recent.contains(5) && recent.contains(6));
        recent.insert(5 + RECENT_CHANGES as u64);
        // Small, the cache has no room for both yet.
        assert!(!recent.contains(5) && recent.contains(5 + RECENT_CHANGES as u64));
    }

    #[test]
    fn the_cache_grows_with_the_changes_it_sees_and_keeps_them_across_growth() {
        let mut recent = RecentChanges::default();
        assert_eq!(
            recent.capacity(),
            0,
            "nothing reserved before the first change"
        );
        for f in 1..=40 {
            recent.insert(f);
        }
        assert_eq!(recent.capacity(), MIN_SLOTS);
        assert!((1..=40).all(|f| recent.contains(f)));
        for f in 41..=10_000 {
            recent.insert(f);
        }
        assert_eq!(
            recent.capacity(),
            RECENT_CHANGES,
            "growth stops at the bound"
        );
        // Full, a fingerprint is pushed out by the one with its low bits.
        assert!(recent.contains(10_000) && !recent.contains(10_000 - RECENT_CHANGES as u64));
        assert!(recent.contains(10_000 - 1));
    }

    #[test]
    fn the_word_hash_tells_apart_inputs_that_differ_in_one_byte_or_in_length() {
        let base = vec![7u8; 37];
        let h = words_hash(1, &base);
        for i in 0..base.len() {
            let mut other = base.clone();
            other[i] ^= 1;
            assert_ne!(words_hash(1, &other), h, "byte {i}");
        }
        assert_ne!(words_hash(1, &base[..36]), h);
        assert_ne!(words_hash(2, &base), h);
        assert_ne!(words_hash(1, &[]), words_hash(1, &[0]));
    }
}
