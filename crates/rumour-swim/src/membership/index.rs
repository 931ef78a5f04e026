//! The member table's name-to-slot index: open addressing with linear probing, each bucket 4
//! bytes holding a record's slot and 8 bits of its name's hash (see `docs/benchmarks.md`,
//! "Memory per member").
//!
//! The names themselves live in the records, so a bucket costs 4 bytes instead of a
//! `BTreeMap` entry's name, slot and node overhead (33 bytes per member at 1,000 members). A
//! lookup hashes the name once; the hash bits kept in each bucket skip all but one in 256 of the
//! other names along the run, so it reads one stored name, where a tree compares about ten; a
//! lookup by an interned `NodeName` (every name decoded from a message is one) compares the
//! record's name by identity and reads no text at all.
//!
//! Names come from the network, so the hash is SipHash-1-3 under a key drawn from the machine's
//! seeded generator: a peer that does not know the seed cannot choose names that share one run
//! of buckets. The index is never iterated; which bucket holds which slot changes no output of
//! the machine, so the same seed gives the same outputs whatever the key.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

use super::record::Record;
use crate::member::NodeName;

/// Most slots the index holds (24 bits of a bucket; slot + 1 is stored, 0 is an empty bucket).
pub(super) const MAX_SLOTS: usize = crate::config::MAX_MEMBERS;
/// A bucket holding no slot.
const EMPTY: u32 = 0;
/// The slot bits of a bucket.
const SLOT_BITS: u32 = (1 << 24) - 1;
/// Buckets of a new index (a power of two).
const MIN_BUCKETS: usize = 8;

/// Name-to-slot index over a table's records; every operation is given the records it indexes.
#[derive(Clone, Debug)]
pub(super) struct NameIndex {
    /// A power-of-two number of buckets, at most three quarters full; each 0 or
    /// `fingerprint << 24 | (slot + 1)`.
    buckets: Box<[u32]>,
    len: usize,
    key: (u64, u64),
}

/// Where a name's search starts and the hash bits its buckets carry.
#[derive(Clone, Copy)]
struct Hash {
    home: usize,
    fingerprint: u32,
}

impl Hash {
    fn bucket(self, slot: u32) -> u32 {
        debug_assert!((slot as usize) < MAX_SLOTS);
        self.fingerprint << 24 | (slot + 1)
    }

    fn matches(self, bucket: u32) -> bool {
        bucket >> 24 == self.fingerprint
    }
}

/// What a member is looked up by: its name's text, or the interned [`NodeName`] itself.
pub(crate) trait MemberKey {
    /// The name's text (what the index hashes).
    fn text(&self) -> &str;
    /// Whether `stored`, a record's name, is this name.
    fn is(&self, stored: &NodeName) -> bool;
}

impl MemberKey for str {
    fn text(&self) -> &str {
        self
    }

    /// Compares the text, unless the pointers already answer (the text of an interned name).
    fn is(&self, stored: &NodeName) -> bool {
        let stored = stored.as_str();
        std::ptr::eq(stored, self) || stored == self
    }
}

impl MemberKey for String {
    fn text(&self) -> &str {
        self
    }

    fn is(&self, stored: &NodeName) -> bool {
        self.as_str().is(stored)
    }
}

impl MemberKey for NodeName {
    fn text(&self) -> &str {
        self.as_str()
    }

    /// Names are interned: equal names held at once share one allocation, so the pointers
    /// answer without reading the stored name's text (held apart from the record, a cache miss
    /// of its own: half the time of a lookup in a 1,000-member table).
    fn is(&self, stored: &NodeName) -> bool {
        self == stored
    }
}

/// The slot a non-empty bucket holds.
fn slot_of(bucket: u32) -> u32 {
    (bucket & SLOT_BITS) - 1
}

impl NameIndex {
    /// An empty index hashing under `key`.
    pub(super) fn new(key: (u64, u64)) -> NameIndex {
        NameIndex {
            buckets: vec![EMPTY; MIN_BUCKETS].into_boxed_slice(),
            len: 0,
            key,
        }
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    fn hash(&self, name: &str) -> Hash {
        let mut hasher = SipHasher13::new_with_keys(self.key.0, self.key.1);
        hasher.write(name.as_bytes());
        let hash = hasher.finish();
        Hash {
            // Truncation on 32-bit targets keeps the low bits, which are the ones masked.
            home: hash as usize & self.mask(),
            fingerprint: (hash >> 56) as u32,
        }
    }

    /// The slot of the record named `name`.
    pub(super) fn get<Q: MemberKey + ?Sized>(&self, records: &[Record], name: &Q) -> Option<u32> {
        self.find(records, name).map(|i| slot_of(self.buckets[i]))
    }

    /// The bucket holding `name`'s slot.
    fn find<Q: MemberKey + ?Sized>(&self, records: &[Record], name: &Q) -> Option<usize> {
        let mask = self.mask();
        let hash = self.hash(name.text());
        let mut i = hash.home;
        loop {
            let bucket = self.buckets[i];
            if bucket == EMPTY {
                return None;
            }
            if hash.matches(bucket) && name.is(&records[slot_of(bucket) as usize].name) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Indexes `slot` (below [`MAX_SLOTS`]), whose record must be in `records` under a name
    /// not yet indexed.
    pub(super) fn insert(&mut self, records: &[Record], slot: u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow(records);
        }
        let hash = self.hash(records[slot as usize].name.as_str());
        self.place(hash, slot);
        self.len += 1;
    }

    /// Puts `slot` in the first free bucket from its home.
    fn place(&mut self, hash: Hash, slot: u32) {
        let mask = self.mask();
        let mut i = hash.home;
        while self.buckets[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.buckets[i] = hash.bucket(slot);
    }

    /// Doubles the buckets and places every slot again.
    fn grow(&mut self, records: &[Record]) {
        let doubled = vec![EMPTY; self.buckets.len() * 2].into_boxed_slice();
        let old = std::mem::replace(&mut self.buckets, doubled);
        for slot in old.iter().copied().filter(|&b| b != EMPTY).map(slot_of) {
            let hash = self.hash(records[slot as usize].name.as_str());
            self.place(hash, slot);
        }
    }

    /// Removes `name` and returns its slot. The records must still hold every indexed slot.
    /// Deletion shifts the run's later entries back (no tombstones), so lookups stay short
    /// however many members come and go.
    pub(super) fn remove<Q: MemberKey + ?Sized>(
        &mut self,
        records: &[Record],
        name: &Q,
    ) -> Option<u32> {
        let mask = self.mask();
        let mut hole = self.find(records, name)?;
        let removed = slot_of(self.buckets[hole]);
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let bucket = self.buckets[j];
            if bucket == EMPTY {
                break;
            }
            let home = self
                .hash(records[slot_of(bucket) as usize].name.as_str())
                .home;
            // The entry at `j` may fill the hole unless its home lies after the hole, up to
            // `j` (cyclically): it would then be found before reaching the hole.
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = bucket;
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        Some(removed)
    }

    /// Records that the record named `name` moved from slot `from` to slot `to`.
    pub(super) fn relocate(&mut self, name: &str, from: u32, to: u32) {
        let mask = self.mask();
        let hash = self.hash(name);
        let mut i = hash.home;
        loop {
            match self.buckets[i] {
                EMPTY => return,
                bucket if bucket == hash.bucket(from) => {
                    self.buckets[i] = hash.bucket(to);
                    return;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Names indexed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Buckets allocated (4 bytes each).
    #[cfg(test)]
    pub(super) fn buckets(&self) -> usize {
        self.buckets.len()
    }
}
