//! The replicated store: keys, their values, node-local versions, deletion markers and
//! tombstones, and the two ways a value changes (a local compare-and-swap, a received change).
//!
//! Each key holds a [`Value`] (a `Mergeable` of a registered codec), a [`Marker`] (deleted or
//! not, as of which wall time: a last-writer-wins register that travels with every change) and a
//! [`Version`] that counts the changes this node accepted for the key. Versions are node-local:
//! they serve compare-and-swap and queue invalidation and never go on the wire.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use rumour_ring::{Codec, Timestamp, Value};
use rumour_wire::StableHasher;

use crate::error::Error;
use crate::message::{KeyChange, KeyHash, Marker};

/// A node-local count of the changes accepted for one key (0: the key is absent). Never sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

/// A read-only view of one stored key.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    /// The stored value, tombstones included.
    pub value: &'a dyn Value,
    /// The key's node-local version.
    pub version: Version,
    /// The key's deletion marker.
    pub marker: Marker,
}

impl EntryRef<'_> {
    /// The codec id of the value.
    #[must_use]
    pub fn codec(&self) -> &'static str {
        self.value.codec_id()
    }

    /// Whether the key is deleted (it still answers `entry` until it is forgotten).
    #[must_use]
    pub fn is_deleted(&self) -> bool {
        self.marker.deleted
    }
}

impl fmt::Debug for EntryRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryRef")
            .field("codec", &self.codec())
            .field("version", &self.version)
            .field("marker", &self.marker)
            .finish_non_exhaustive()
    }
}

/// What a change did to a key: its new version, the change to disseminate (`None` when only the
/// marker moved) and the key's marker.
pub(crate) struct Applied {
    pub(crate) version: Version,
    pub(crate) change: Option<Box<dyn Value>>,
    pub(crate) marker: Marker,
}

/// What a sweep removed.
#[derive(Debug, Default)]
pub(crate) struct Sweep {
    pub(crate) tombstones_removed: u64,
    pub(crate) keys_forgotten: u64,
}

#[derive(Clone)]
struct Entry {
    value: Box<dyn Value>,
    version: Version,
    marker: Marker,
    /// Local wall time at which this node saw the key become deleted: the deleted key is
    /// forgotten `obsolete_entries_timeout` after it, whatever time the marker carries.
    deleted_at: Timestamp,
    /// Cached [`key_hash`], cleared whenever the entry changes.
    hash: Option<u64>,
    /// The value's [`Value::tombstones_quiet_until`] after its last sweep: sweeps with a cutoff
    /// at most this skip it. Zero (sweep it) whenever the entry changes.
    quiet_until: Timestamp,
}

impl Entry {
    fn new(value: Box<dyn Value>, marker: Marker) -> Entry {
        Entry {
            value,
            version: Version(1),
            marker,
            deleted_at: Timestamp(0),
            hash: None,
            quiet_until: Timestamp(0),
        }
    }

    /// Merges `other` into the value, prunes tombstones older than `cutoff` from the result and
    /// from the change, and returns the change if it names anything.
    fn merge(
        &mut self,
        key: &str,
        other: &dyn Value,
        local_cas: Option<Timestamp>,
        cutoff: Option<Timestamp>,
    ) -> Result<Option<Box<dyn Value>>, Error> {
        if other.codec_id() != self.value.codec_id() {
            return Err(Error::CodecMismatch {
                key: key.to_owned(),
                stored: self.value.codec_id().to_owned(),
                offered: other.codec_id().to_owned(),
            });
        }
        let change = self
            .value
            .merge_dyn(other, local_cas)
            .map_err(|source| Error::Value {
                key: key.to_owned(),
                codec: other.codec_id().to_owned(),
                source,
            })?;
        if change.is_some() {
            self.hash = None;
            self.quiet_until = Timestamp(0);
        }
        if let Some(cutoff) = cutoff {
            if self.value.remove_tombstones(cutoff).removed > 0 {
                self.hash = None;
            }
        }
        Ok(change.and_then(|change| prune(change, cutoff)))
    }

    fn bump(&mut self, change: Option<Box<dyn Value>>) -> Applied {
        self.version.0 += 1;
        self.hash = None;
        self.quiet_until = Timestamp(0);
        Applied {
            version: self.version,
            change,
            marker: self.marker,
        }
    }

    fn hash(&mut self) -> u64 {
        if let Some(hash) = self.hash {
            return hash;
        }
        let codec = self.value.codec_id();
        let hash = match self.value.state_hash() {
            Some(state) => key_hash(codec, self.marker, &state.to_le_bytes()),
            None => key_hash(codec, self.marker, &self.value.encode()),
        };
        self.hash = Some(hash);
        hash
    }
}

/// Drops tombstones older than `cutoff` from `value`; `None` if nothing is left to name.
pub(crate) fn prune(
    mut value: Box<dyn Value>,
    cutoff: Option<Timestamp>,
) -> Option<Box<dyn Value>> {
    if let Some(cutoff) = cutoff {
        value.remove_tombstones(cutoff);
    }
    value.has_content().then_some(value)
}

/// The hash pull-push compares for one key: FNV-1a 64 over the codec id, the marker and the
/// value's state: its [`Mergeable::state_hash`](rumour_ring::Mergeable::state_hash) (8 bytes,
/// little-endian) where its type has one, else its canonical encoding.
pub(crate) fn key_hash(codec: &str, marker: Marker, encoded: &[u8]) -> u64 {
    let mut fnv = StableHasher::new();
    fnv.write(&(codec.len() as u64).to_le_bytes());
    fnv.write(codec.as_bytes());
    fnv.write(&marker.updated.0.to_le_bytes());
    fnv.write(&[u8::from(marker.deleted)]);
    fnv.write(encoded);
    fnv.finish()
}

/// The keys, their values and the registered codecs.
#[derive(Clone, Default)]
pub(crate) struct Store {
    entries: BTreeMap<String, Entry>,
    codecs: BTreeMap<&'static str, std::sync::Arc<dyn Codec>>,
}

impl Store {
    pub(crate) fn register_codec(&mut self, codec: Box<dyn Codec>) {
        self.codecs.insert(codec.id(), codec.into());
    }

    pub(crate) fn has_codec(&self, id: &str) -> bool {
        self.codecs.contains_key(id)
    }

    /// Decodes a received value: `Ok(None)` when its codec is not registered.
    pub(crate) fn decode(
        &self,
        key: &str,
        codec: &str,
        bytes: &[u8],
    ) -> Result<Option<Box<dyn Value>>, Error> {
        let Some(decoder) = self.codecs.get(codec) else {
            return Ok(None);
        };
        decoder
            .decode(bytes)
            .map(Some)
            .map_err(|source| Error::Value {
                key: key.to_owned(),
                codec: codec.to_owned(),
                source,
            })
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn entry(&self, key: &str) -> Option<EntryRef<'_>> {
        self.entries.get(key).map(|entry| EntryRef {
            value: entry.value.as_ref(),
            version: entry.version,
            marker: entry.marker,
        })
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, EntryRef<'_>)> {
        self.entries.iter().map(|(key, entry)| {
            (
                key.as_str(),
                EntryRef {
                    value: entry.value.as_ref(),
                    version: entry.version,
                    marker: entry.marker,
                },
            )
        })
    }

    pub(crate) fn version(&self, key: &str) -> Version {
        self.entries.get(key).map_or(Version(0), |e| e.version)
    }

    /// Keys starting with `prefix` that are not deleted, in order.
    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        self.entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, entry)| !entry.marker.deleted)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Merges a received value (or only a marker) into `key`. Tombstones older than `cutoff`
    /// are removed from the incoming value first (never applied) and from the change (never
    /// forwarded). A deletion of an unknown key is ignored: deleted keys do not come back.
    /// `wall` is the local time, from which a deletion received now ages.
    pub(crate) fn apply_remote(
        &mut self,
        key: &str,
        incoming: Option<Box<dyn Value>>,
        marker: Marker,
        cutoff: Option<Timestamp>,
        wall: Timestamp,
    ) -> Result<Option<Applied>, Error> {
        let incoming = incoming.and_then(|value| prune(value, cutoff));
        let Some(entry) = self.entries.get_mut(key) else {
            let Some(value) = incoming.filter(|_| !marker.deleted) else {
                return Ok(None);
            };
            let change = value.clone_box();
            self.entries
                .insert(key.to_owned(), Entry::new(value, marker));
            return Ok(Some(Applied {
                version: Version(1),
                change: Some(change),
                marker,
            }));
        };
        let change = match incoming {
            Some(value) => entry.merge(key, value.as_ref(), None, cutoff)?,
            None => None,
        };
        let marker_moved = marker > entry.marker;
        if marker_moved {
            if marker.deleted && !entry.marker.deleted {
                entry.deleted_at = wall;
            }
            entry.marker = marker;
        }
        if change.is_none() && !marker_moved {
            return Ok(None);
        }
        Ok(Some(entry.bump(change)))
    }

    /// The local compare-and-swap: merges the full `desired` state (entries missing from it
    /// become tombstones stamped `wall`) if the key is still at version `expected`.
    pub(crate) fn apply_local(
        &mut self,
        key: &str,
        desired: Box<dyn Value>,
        expected: Version,
        wall: Timestamp,
        cutoff: Option<Timestamp>,
    ) -> Result<Option<Applied>, Error> {
        let found = self.version(key);
        if found != expected {
            return Err(Error::CasConflict {
                key: key.to_owned(),
                expected: expected.0,
                found: found.0,
            });
        }
        let fresh = Marker {
            updated: wall,
            deleted: false,
        };
        let Some(entry) = self.entries.get_mut(key) else {
            let Some(value) = prune(desired, cutoff) else {
                return Ok(None);
            };
            let change = value.clone_box();
            self.entries
                .insert(key.to_owned(), Entry::new(value, fresh));
            return Ok(Some(Applied {
                version: Version(1),
                change: Some(change),
                marker: fresh,
            }));
        };
        let change = entry.merge(key, desired.as_ref(), Some(wall), cutoff)?;
        let was_deleted = entry.marker.deleted;
        if change.is_none() && !was_deleted {
            return Ok(None);
        }
        // A local write after a deletion re-creates the key: its marker goes past the stored
        // one, which is at most `max_clock_skew` ahead of when it arrived.
        entry.marker = if was_deleted {
            Marker {
                updated: wall.max(entry.marker.updated.saturating_add_millis(1)),
                deleted: false,
            }
        } else {
            entry.marker.max(fresh)
        };
        let undeleted = was_deleted && !entry.marker.deleted;
        if change.is_none() && !undeleted {
            return Ok(None);
        }
        // A key coming back from deletion is sent whole: peers may have forgotten it.
        let change = if undeleted {
            Some(entry.value.clone_box())
        } else {
            change
        };
        Ok(Some(entry.bump(change)))
    }

    /// Marks `key` deleted as of `wall`; `None` if it is absent or already deleted.
    pub(crate) fn delete(&mut self, key: &str, wall: Timestamp) -> Option<Applied> {
        let entry = self.entries.get_mut(key)?;
        if entry.marker.deleted {
            return None;
        }
        entry.marker = Marker {
            updated: wall.max(entry.marker.updated),
            deleted: true,
        };
        entry.deleted_at = wall;
        Some(entry.bump(None))
    }

    /// Forgets keys this node saw deleted before `obsolete_before` and tombstones older than
    /// `cutoff` (by local receive time, for values that record it).
    pub(crate) fn sweep(&mut self, obsolete_before: Timestamp, cutoff: Option<Timestamp>) -> Sweep {
        let mut sweep = Sweep::default();
        self.entries.retain(|_, entry| {
            if entry.marker.deleted && entry.deleted_at < obsolete_before {
                sweep.keys_forgotten += 1;
                return false;
            }
            if let Some(cutoff) = cutoff.filter(|&c| c > entry.quiet_until) {
                let removed = entry.value.remove_tombstones(cutoff).removed;
                if removed > 0 {
                    entry.hash = None;
                    sweep.tombstones_removed += removed as u64;
                }
                entry.quiet_until = entry.value.tombstones_quiet_until();
            }
            true
        });
        sweep
    }

    /// The hash of every key, in key order.
    pub(crate) fn key_hashes(&mut self) -> Vec<KeyHash> {
        self.entries
            .iter_mut()
            .map(|(key, entry)| KeyHash {
                key: key.clone(),
                hash: entry.hash(),
            })
            .collect()
    }

    /// One hash over every key and its hash, and the number of keys.
    pub(crate) fn root_hash(&mut self) -> (u64, u64) {
        let mut fnv = StableHasher::new();
        for (key, entry) in &mut self.entries {
            fnv.write(&(key.len() as u64).to_le_bytes());
            fnv.write(key.as_bytes());
            fnv.write(&entry.hash().to_le_bytes());
        }
        (fnv.finish(), self.entries.len() as u64)
    }

    pub(crate) fn marker(&self, key: &str) -> Option<Marker> {
        self.entries.get(key).map(|e| e.marker)
    }

    /// The whole value of `key` as a change message.
    pub(crate) fn whole(&self, key: &str) -> Option<KeyChange> {
        let entry = self.entries.get(key)?;
        Some(change_message(
            key,
            entry.value.codec_id(),
            Some(entry.value.as_ref()),
            entry.marker,
        ))
    }

    /// Every key as a change message (a join's full state).
    pub(crate) fn all(&self) -> Vec<KeyChange> {
        self.entries
            .iter()
            .map(|(key, entry)| {
                change_message(
                    key,
                    entry.value.codec_id(),
                    Some(entry.value.as_ref()),
                    entry.marker,
                )
            })
            .collect()
    }
}

/// The wire form of a change to `key`.
pub(crate) fn change_message(
    key: &str,
    codec: &str,
    value: Option<&dyn Value>,
    marker: Marker,
) -> KeyChange {
    KeyChange {
        key: key.to_owned(),
        codec: codec.to_owned(),
        value: value.map(|v| Bytes::from(v.encode())),
        marker,
    }
}
