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

/// Fingerprint slots (a power of two): 32 KiB.
pub(crate) const RECENT_CHANGES: usize = 4096;

/// A direct-mapped cache of change fingerprints: a fingerprint lives in the slot its low bits
/// name until another with the same low bits replaces it. One memory access per lookup; a
/// fingerprint pushed out early only costs a merge that changes nothing. (A 64-bit fingerprint
/// collision would drop a change; anti-entropy brings it back.)
pub(crate) struct RecentChanges {
    slots: Box<[u64]>,
}

impl Default for RecentChanges {
    fn default() -> Self {
        RecentChanges {
            slots: vec![0; RECENT_CHANGES].into_boxed_slice(),
        }
    }
}

impl RecentChanges {
    /// The fingerprint of a change: its key, codec, marker and value bytes (never 0, the mark
    /// of an empty slot).
    pub(crate) fn fingerprint(change: &KeyChange) -> u64 {
        let mut h = StableHasher::new();
        h.write_str(&change.key);
        h.write_str(&change.codec);
        h.write_u64(change.marker.updated.0);
        h.write_u64(u64::from(change.marker.deleted));
        if let Some(value) = &change.value {
            h.write(value);
        }
        h.finish().max(1)
    }

    fn slot(fingerprint: u64) -> usize {
        (fingerprint as usize) & (RECENT_CHANGES - 1)
    }

    pub(crate) fn contains(&self, fingerprint: u64) -> bool {
        self.slots[Self::slot(fingerprint)] == fingerprint
    }

    pub(crate) fn insert(&mut self, fingerprint: u64) {
        self.slots[Self::slot(fingerprint)] = fingerprint;
    }
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
        assert!(!recent.contains(5) && recent.contains(5 + RECENT_CHANGES as u64));
    }
}
