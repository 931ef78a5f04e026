//! The hash ring value: instances keyed by id, replicated as a CRDT.
//!
//! A [`Ring`] is cheap to clone (one `Arc` for the entries, one for the cached lookup table) and
//! cheap to compare (shared storage short-cuts the comparison). Mutations copy the entry vector
//! only when it is shared, and keep the lookup table unless tokens, zones or the `Leaving`/`Left`
//! states of token owners changed: a heartbeat never rebuilds it.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::error::Error;
use crate::forgotten::Memory;
use crate::instance::{Body, Entry, Instance, InstanceRef, State, validate_instance_id};
use crate::limits::RingLimits;
use crate::lookup::TokenTable;
use crate::mergeable::{
    BucketDigest, BucketSelection, EntryDigest, Mergeable, Timestamp, Tombstones,
};
use crate::position::Positions;

/// The suffix of the content name of an instance's heartbeat: the heartbeat of instance `a` is
/// the sub-entry `"a heartbeat"` in [`Mergeable::content`] (instance ids contain no spaces).
pub const HEARTBEAT_SUFFIX: &str = " heartbeat";

/// The hash ring: for each instance id, a description ([`Instance`]) and a heartbeat.
///
/// As a [`Mergeable`] value, the ring is a join-semilattice: per instance, the description is a
/// last-writer-wins register totally ordered by `(updated_at, state, content)`, and the heartbeat
/// is a max register. See the crate documentation for the merge rules and the change format.
#[derive(Clone, Default)]
pub struct Ring {
    pub(crate) entries: Arc<Vec<Entry>>,
    pub(crate) table: OnceLock<Arc<TokenTable>>,
    /// Bounds applied when merging received values (local, never encoded or compared).
    pub(crate) limits: RingLimits,
    /// New instance ids a merge did not add because of `limits` (local, never compared).
    pub(crate) refused_instances: u64,
    /// Tombstones this replica forgot, so stale copies do not bring them back (local, never
    /// encoded or compared; see [`crate::forgotten`]).
    pub(crate) forgotten: Arc<Memory>,
    /// The local time [`Mergeable::receive`] ran on this value, zero if it did not (local).
    pub(crate) received_at: Timestamp,
    /// When known: how many tombstones the entries hold and the earliest time one of them ages
    /// from ([`Timestamp::MAX`] if none), so that the `remove_tombstones` every merge runs is
    /// O(1) when nothing can expire. `None` after a change that may have touched a tombstone.
    pub(crate) tombstones: Option<(usize, Timestamp)>,
    /// Where each id sits in `entries`, once the layout has held still for a few merges (local,
    /// never compared; a hint checked at every use, see [`crate::position`]).
    pub(crate) positions: Option<Arc<Positions>>,
    /// Merges since the entries last moved (local, never compared).
    pub(crate) stable_merges: u32,
}

/// How a mutation affects the cached lookup table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Impact {
    /// Still valid as it is.
    None,
    /// Entry positions moved, token owners did not change: the table can be remapped.
    Shifted,
    /// Token ownership may have changed: rebuild.
    Tokens,
}

impl Ring {
    /// An empty ring.
    #[must_use]
    pub fn new() -> Ring {
        Ring::default()
    }

    pub(crate) fn from_entries(entries: Vec<Entry>) -> Ring {
        debug_assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
        Ring {
            entries: Arc::new(entries),
            table: OnceLock::new(),
            limits: RingLimits::default(),
            refused_instances: 0,
            forgotten: Arc::default(),
            received_at: Timestamp(0),
            tombstones: None,
            positions: None,
            stable_merges: 0,
        }
    }

    /// Decodes a ring refusing, before reserving memory, more instances or tokens per instance
    /// than `limits` allow; the ring keeps `limits` for its merges. [`Mergeable::decode`] is
    /// this with [`RingLimits::default`].
    ///
    /// # Errors
    /// [`Error::Decode`] naming what is wrong and where.
    pub fn decode_with(bytes: &[u8], limits: RingLimits) -> Result<Ring, Error> {
        let mut ring = crate::codec::decode(bytes, &limits)?;
        ring.limits = limits;
        Ok(ring)
    }

    /// The limits this ring's merges apply.
    #[must_use]
    pub fn limits(&self) -> RingLimits {
        self.limits
    }

    /// Sets the limits this ring's merges apply.
    pub fn set_limits(&mut self, limits: RingLimits) {
        self.limits = limits;
    }

    /// New instance ids that merges into this ring refused because it held
    /// [`RingLimits::max_instances`] entries.
    #[must_use]
    pub fn refused_instances(&self) -> u64 {
        self.refused_instances
    }

    /// Instances with a description, `Left` tombstones included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.body.is_some()).count()
    }

    /// Whether no instance has a description.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every described instance in id order, `Left` tombstones included.
    pub fn instances(&self) -> impl Iterator<Item = InstanceRef<'_>> + '_ {
        self.entries.iter().filter_map(Entry::view)
    }

    /// The instance `id`, if it has a description (which may be a `Left` tombstone).
    #[must_use]
    pub fn instance(&self, id: &str) -> Option<InstanceRef<'_>> {
        self.find(id).ok().and_then(|i| self.entries[i].view())
    }

    /// The last heartbeat seen for `id`, described or not.
    #[must_use]
    pub fn heartbeat_of(&self, id: &str) -> Option<Timestamp> {
        self.find(id).ok().map(|i| self.entries[i].heartbeat)
    }

    /// The number of tombstones held: `Left` descriptions, and heartbeats without a description.
    #[must_use]
    pub fn tombstone_count(&self) -> usize {
        self.entries.iter().filter(|e| e.is_tombstone()).count()
    }

    /// Sets the description of `id`, replacing any other (a plain write, not a merge: use it to
    /// build the desired state of a compare-and-swap). A `Left` description loses its tokens.
    ///
    /// # Errors
    /// [`Error::InvalidInstanceId`] if `id` is not a valid instance id.
    pub fn set_instance(&mut self, id: &str, instance: Instance) -> Result<(), Error> {
        validate_instance_id(id)?;
        let body = Body::new(instance);
        self.tombstones = None;
        let impact = match self.find(id) {
            Ok(i) => {
                let entry = &mut Arc::make_mut(&mut self.entries)[i];
                let impact = table_impact(entry.body.as_ref(), Some(&body));
                entry.body = Some(body);
                impact
            }
            Err(i) => {
                let impact = table_impact(None, Some(&body)).max(Impact::Shifted);
                let entry = Entry::new(id.into(), Some(body), Timestamp(0));
                Arc::make_mut(&mut self.entries).insert(i, entry);
                impact
            }
        };
        self.refresh_table(impact);
        Ok(())
    }

    /// Sets the heartbeat of `id` (a plain write, not a merge). Setting a heartbeat for an id
    /// without a description keeps it as an invisible ghost entry until one arrives.
    ///
    /// # Errors
    /// [`Error::InvalidInstanceId`] if `id` is not a valid instance id.
    pub fn set_heartbeat(&mut self, id: &str, heartbeat: Timestamp) -> Result<(), Error> {
        validate_instance_id(id)?;
        match self.find(id) {
            Ok(i) => {
                if self.entries[i].is_tombstone() {
                    self.tombstones = None;
                }
                let entries = Arc::make_mut(&mut self.entries);
                if heartbeat.0 == 0 && entries[i].body.is_none() {
                    entries.remove(i);
                    self.refresh_table(Impact::Shifted);
                } else {
                    entries[i].heartbeat = heartbeat;
                }
            }
            Err(i) if heartbeat.0 > 0 => {
                self.tombstones = None;
                let entry = Entry::new(id.into(), None, heartbeat);
                Arc::make_mut(&mut self.entries).insert(i, entry);
                self.refresh_table(Impact::Shifted);
            }
            Err(_) => {}
        }
        Ok(())
    }

    /// Removes `id` from this value entirely (description and heartbeat). In the desired state of
    /// a local compare-and-swap this makes the instance a `Left` tombstone (dskit's
    /// `RemoveIngester`). Returns whether the id was present.
    pub fn remove(&mut self, id: &str) -> bool {
        match self.find(id) {
            Ok(i) => {
                self.tombstones = None;
                let removed = Arc::make_mut(&mut self.entries).remove(i);
                let impact = table_impact(removed.body.as_ref(), None).max(Impact::Shifted);
                self.refresh_table(impact);
                true
            }
            Err(_) => false,
        }
    }

    /// Position of `id` in the entries, or where it would be inserted.
    pub(crate) fn find(&self, id: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| (*e.id).cmp(id))
    }

    /// Keeps, remaps or drops the cached lookup table after a mutation.
    pub(crate) fn refresh_table(&mut self, impact: Impact) {
        if impact != Impact::None {
            self.positions = None;
            self.stable_merges = 0;
        }
        match impact {
            Impact::None => {}
            Impact::Tokens => self.table = OnceLock::new(),
            Impact::Shifted => {
                let remapped = self.table.get().and_then(|t| t.remapped(&self.entries));
                self.table = match remapped {
                    Some(table) => OnceLock::from(Arc::new(table)),
                    None => OnceLock::new(),
                };
            }
        }
    }

    /// The lookup table, built on first use after a token change.
    pub(crate) fn table(&self) -> &Arc<TokenTable> {
        self.table
            .get_or_init(|| Arc::new(TokenTable::build(&self.entries)))
    }
}

/// The description of a body that owns tokens in the lookup table.
fn token_owner(body: Option<&Arc<Body>>) -> Option<&Instance> {
    body.map(|b| &b.instance)
        .filter(|i| i.state != State::Left && !i.tokens.is_empty())
}

/// Whether replacing `old` by `new` changes who owns which token.
pub(crate) fn table_impact(old: Option<&Arc<Body>>, new: Option<&Arc<Body>>) -> Impact {
    if let (Some(a), Some(b)) = (old, new)
        && Arc::ptr_eq(a, b)
    {
        // A heartbeat merged beside a shared description (the common case).
        return Impact::None;
    }
    match (token_owner(old), token_owner(new)) {
        (None, None) => Impact::None,
        (Some(a), Some(b))
            if a.tokens.same(&b.tokens)
                && a.zone == b.zone
                && (a.state == State::Leaving) == (b.state == State::Leaving) =>
        {
            Impact::None
        }
        _ => Impact::Tokens,
    }
}

impl PartialEq for Ring {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries) || self.entries == other.entries
    }
}

impl Eq for Ring {}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for entry in self.entries.iter() {
            match &entry.body {
                Some(body) => map.entry(&entry.id, &(&body.instance, entry.heartbeat)),
                None => map.entry(&entry.id, &("heartbeat only", entry.heartbeat)),
            };
        }
        map.finish()
    }
}

impl Mergeable for Ring {
    const CODEC_ID: &'static str = "ring";

    fn merge(&mut self, other: &Self, local_cas: Option<Timestamp>) -> Option<Self> {
        crate::merge::merge(self, other, local_cas)
    }

    /// An instance's description is named by its id, its heartbeat by the id followed by
    /// [`HEARTBEAT_SUFFIX`]. A change that carries a description always carries the heartbeat
    /// too, so it supersedes queued heartbeat-only changes of that instance, never the reverse.
    fn content(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.entries.len() * 2);
        for entry in self.entries.iter() {
            if entry.body.is_some() {
                names.push(entry.id.to_string());
            }
            if entry.heartbeat.0 > 0 {
                names.push(format!("{}{HEARTBEAT_SUFFIX}", entry.id));
            }
        }
        names
    }

    fn content_hashes(&self) -> Vec<u64> {
        let mut hashes = Vec::with_capacity(self.entries.len() * 2);
        for entry in self.entries.iter() {
            let mut h = rumour_wire::StableHasher::new();
            h.write(entry.id.as_bytes());
            if entry.body.is_some() {
                hashes.push(h.finish() | 1);
            }
            if entry.heartbeat.0 > 0 {
                h.write(HEARTBEAT_SUFFIX.as_bytes());
                hashes.push(h.finish() | 1);
            }
        }
        hashes
    }

    fn has_content(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.body.is_some() || e.heartbeat.0 > 0)
    }

    /// Each entry's id, description digest and heartbeat, in id order: what the canonical
    /// encoding holds, without encoding a token (descriptions cache their digests).
    fn state_hash(&self) -> Option<u64> {
        let mut h = rumour_wire::StableHasher::new();
        h.write(b"ring");
        h.write_u64(self.entries.len() as u64);
        for entry in self.entries.iter() {
            h.write_str(&entry.id);
            h.write_u64(entry_hash(entry));
        }
        Some(h.finish())
    }

    /// A ring (change) holding heartbeats and no description.
    fn is_refresh(&self) -> bool {
        !self.entries.is_empty() && self.entries.iter().all(|e| e.body.is_none())
    }

    /// Every entry of every ring in one sorted pass, per id the greater description and the
    /// greater heartbeat (the merge rule): no change sets, no copy-on-write of the entries at
    /// each step.
    fn join(values: &[&Ring]) -> Option<Ring> {
        crate::merge::join(values)
    }

    /// Forgets `Left` tombstones written before `older_than`, and heartbeats without a
    /// description last seen before it. Pass [`Timestamp::MAX`] to forget every tombstone.
    fn remove_tombstones(&mut self, older_than: Timestamp) -> Tombstones {
        crate::merge::remove_tombstones(self, older_than)
    }

    /// Known after a sweep: until the earliest tombstone's age base, and until the earliest
    /// forgotten instance leaves the memory (24 hours after it was forgotten).
    fn tombstones_quiet_until(&self) -> Timestamp {
        crate::merge::tombstones_quiet_until(self)
    }

    fn encode(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Ring::decode_with(bytes, RingLimits::default())
    }

    /// Drops every description with a timestamp (`updated_at`, `registered_at`,
    /// `read_only_updated_at`) after `latest` and every heartbeat after `latest` (returning how
    /// many), then stamps the tombstones left with `now`, the local time they age from.
    fn receive(&mut self, now: Timestamp, latest: Timestamp) -> usize {
        crate::merge::receive(self, now, latest)
    }

    /// One digest per instance id, covering its description and heartbeat.
    fn entry_digests(&self) -> Option<Vec<EntryDigest>> {
        Some(
            self.entries
                .iter()
                .map(|e| EntryDigest {
                    name: e.id.to_string(),
                    hash: entry_hash(e),
                })
                .collect(),
        )
    }

    /// Accepts instance ids (the whole entry) and heartbeat names (`"{id} heartbeat"`: the
    /// heartbeat alone).
    fn select(&self, names: &[String]) -> Option<Self> {
        Some(crate::merge::select(self, names))
    }

    fn digest_buckets(&self) -> usize {
        crate::mergeable::bucket_count(self.entries.len())
    }

    /// Per bucket: the ids with their descriptions (a ghost counts with an empty one), and
    /// apart from them the ids with their heartbeats. Replicas whose descriptions agree and whose
    /// heartbeats do not (one heartbeat behind) differ only in `heartbeats`.
    fn bucket_digests(&self, count: usize, seed: u64) -> Option<Vec<BucketDigest>> {
        if !crate::mergeable::valid_bucket_count(count) {
            return None;
        }
        let mut sums = vec![(0u64, 0u64); count];
        for entry in self.entries.iter() {
            let id = crate::mergeable::name_hash(seed, &entry.id);
            let sum = &mut sums[bucket(id, count)];
            sum.0 ^= mix(id, entry.body.as_ref().map_or(0, |b| b.digest()));
            sum.1 ^= mix(!id, entry.heartbeat.0);
        }
        Some(
            sums.into_iter()
                .map(|(d, h)| BucketDigest {
                    descriptions: fold(d),
                    heartbeats: fold(h),
                })
                .collect(),
        )
    }

    /// Whole buckets give whole entries (only the heartbeat of an entry whose description
    /// `except` holds too), heartbeat buckets give heartbeats; either leaves out what `except`
    /// holds as new or newer.
    fn select_buckets(
        &self,
        selection: &BucketSelection<'_>,
        except: Option<&Self>,
    ) -> Option<Self> {
        let count = selection.count;
        if !crate::mergeable::valid_bucket_count(count) {
            return None;
        }
        // 1: the whole entry, 2: the heartbeat alone.
        let mut wanted = vec![0u8; count];
        for &b in selection.heartbeats {
            if let Some(w) = wanted.get_mut(b as usize) {
                *w = 2;
            }
        }
        for &b in selection.whole {
            if let Some(w) = wanted.get_mut(b as usize) {
                *w = 1;
            }
        }
        let mut out = Vec::new();
        for entry in self.entries.iter() {
            let id = crate::mergeable::name_hash(selection.seed, &entry.id);
            let whole = match wanted[bucket(id, count)] {
                1 => true,
                2 => false,
                _ => continue,
            };
            let theirs = except.and_then(|r| r.find(&entry.id).ok().map(|i| &r.entries[i]));
            let newer_beat = theirs.is_none_or(|t| t.heartbeat < entry.heartbeat);
            let same_body = theirs
                .is_some_and(|t| crate::instance::same_body(t.body.as_ref(), entry.body.as_ref()));
            if whole && !same_body {
                out.push(entry.clone());
            } else if newer_beat && entry.heartbeat.0 > 0 {
                out.push(Entry {
                    body: None,
                    ..entry.clone()
                });
            }
        }
        Some(Ring::from_entries(out))
    }
}

/// The bucket of a salted id hash among `count` (a power of two).
fn bucket(id: u64, count: usize) -> usize {
    (id as usize) & (count - 1)
}

/// One entry's contribution to a bucket hash.
fn mix(id: u64, state: u64) -> u64 {
    let mut h = rumour_wire::StableHasher::new();
    h.write_u64(id);
    h.write_u64(state);
    h.finish()
}

/// A 64-bit hash folded to 32 bits.
fn fold(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

fn entry_hash(entry: &Entry) -> u64 {
    let mut d = rumour_wire::StableHasher::new();
    d.write(b"entry");
    d.write_u64(entry.body.as_ref().map_or(0, |b| b.digest()));
    d.write_u64(entry.heartbeat.0);
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::Tokens;
    use crate::mergeable::{Codec, TypedCodec, Value};

    fn one(id: &str, at: u64) -> Ring {
        let mut ring = Ring::new();
        let instance = Instance::new(
            "a:1",
            "",
            State::Active,
            Tokens::new(vec![7]),
            Timestamp(at),
        );
        ring.set_instance(id, instance).expect("valid id");
        ring.set_heartbeat(id, Timestamp(at)).expect("valid id");
        ring
    }

    #[test]
    fn content_hashes_and_state_hash_agree_with_the_names_and_the_encoding() {
        let mut ring = one("a", 5);
        ring.merge(&one("b", 6), None);
        ring.set_heartbeat("ghost", Timestamp(9)).expect("valid id");
        ring.set_instance(
            "quiet",
            one("q", 2).instance("q").expect("q").instance().clone(),
        )
        .expect("valid id");
        let mut named: Vec<u64> = Mergeable::content(&ring)
            .iter()
            .map(|n| crate::content_hash(n))
            .collect();
        let mut hashed = Mergeable::content_hashes(&ring);
        named.sort_unstable();
        hashed.sort_unstable();
        assert_eq!(
            named.len(),
            6,
            "a, b and quiet described; a, b and ghost heartbeating"
        );
        assert_eq!(hashed, named);
        assert!(Mergeable::has_content(&ring));
        assert!(!Mergeable::has_content(&Ring::new()));

        // Equal states hash equally however they were built; any change moves the hash.
        let decoded = Ring::decode(&Mergeable::encode(&ring)).expect("decodes");
        assert_eq!(
            Mergeable::state_hash(&decoded),
            Mergeable::state_hash(&ring)
        );
        let mut later = ring.clone();
        later
            .set_heartbeat("ghost", Timestamp(10))
            .expect("valid id");
        assert_ne!(Mergeable::state_hash(&later), Mergeable::state_hash(&ring));
        let mut moved = ring.clone();
        let mut instance = moved.instance("b").expect("b").instance().clone();
        instance.addr = "b:2".into();
        moved.set_instance("b", instance).expect("valid id");
        assert_ne!(Mergeable::state_hash(&moved), Mergeable::state_hash(&ring));
    }

    #[test]
    fn a_ring_works_through_the_object_safe_value_interface() {
        let codec = TypedCodec::<Ring>::new();
        assert_eq!(codec.id(), "ring");
        let mut stored: Box<dyn Value> = codec
            .decode(&Mergeable::encode(&one("a", 5)))
            .expect("decodes");
        let incoming: Box<dyn Value> = Box::new(one("b", 6));
        let change = stored
            .merge_dyn(incoming.as_ref(), None)
            .expect("same type")
            .expect("b is new");
        assert_eq!(
            change.content(),
            ["b".to_owned(), format!("b{HEARTBEAT_SUFFIX}")]
        );
        let ring = stored.as_any().downcast_ref::<Ring>().expect("a ring");
        assert_eq!(ring.len(), 2);
        assert!(stored.eq_dyn(stored.clone_box().as_ref()));
    }

    #[test]
    fn select_takes_whole_entries_or_heartbeats_alone() {
        let mut ring = one("a", 5);
        Mergeable::merge(&mut ring, &one("b", 6), None);
        let names = [
            "a".to_owned(),
            format!("b{HEARTBEAT_SUFFIX}"),
            "zz".to_owned(),
        ];
        let part = Mergeable::select(&ring, &names).expect("the ring can be split");
        assert_eq!(part.instance("a"), ring.instance("a"));
        assert!(part.instance("b").is_none());
        assert_eq!(part.heartbeat_of("b"), Some(Timestamp(6)));
        assert_eq!(
            Mergeable::content(&part),
            [
                "a".to_owned(),
                format!("a{HEARTBEAT_SUFFIX}"),
                format!("b{HEARTBEAT_SUFFIX}")
            ]
        );
    }

    fn many(n: usize, at: u64) -> Ring {
        let mut ring = Ring::new();
        for i in 0..n {
            let id = format!("node-{i}");
            let tokens = Tokens::new((0..128).map(|t| (i as u32) << 12 | t).collect());
            let instance = Instance::new("a:1", "", State::Active, tokens, Timestamp(at));
            ring.set_instance(&id, instance).expect("valid id");
            ring.set_heartbeat(&id, Timestamp(at)).expect("valid id");
        }
        ring
    }

    #[test]
    fn replicas_one_heartbeat_apart_differ_in_one_bucket_of_heartbeats() {
        let behind = many(1000, 5);
        let mut ahead = behind.clone();
        ahead
            .set_heartbeat("node-7", Timestamp(9))
            .expect("valid id");
        let count = Mergeable::digest_buckets(&behind);
        assert_eq!(count, 32);
        let (a, b) = (
            Mergeable::bucket_digests(&ahead, count, 42).expect("the ring has buckets"),
            Mergeable::bucket_digests(&behind, count, 42).expect("the ring has buckets"),
        );
        let differing: Vec<u32> = (0u32..)
            .zip(a.iter().zip(&b))
            .filter(|(_, (x, y))| x != y)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(differing.len(), 1);
        let bucket = differing[0] as usize;
        assert_eq!(a[bucket].descriptions, b[bucket].descriptions);
        // The side behind sends its heartbeats of that bucket; the side ahead answers with the
        // one heartbeat that is newer.
        let selection = BucketSelection {
            count,
            seed: 42,
            whole: &[],
            heartbeats: &differing,
        };
        let sent = Mergeable::select_buckets(&behind, &selection, None).expect("splits");
        assert!(sent.is_empty(), "heartbeats only");
        assert!(Mergeable::content(&sent).len() > 1);
        let back = Mergeable::select_buckets(&ahead, &selection, Some(&sent)).expect("splits");
        assert_eq!(
            Mergeable::content(&back),
            [format!("node-7{HEARTBEAT_SUFFIX}")]
        );
        assert!(Mergeable::encode(&back).len() < 32);
        let mut merged = behind.clone();
        Mergeable::merge(&mut merged, &back, None);
        assert_eq!(merged, ahead);
    }

    #[test]
    fn a_whole_bucket_sends_descriptions_only_where_they_differ() {
        let mine = many(100, 5);
        let mut theirs = mine.clone();
        let instance = Instance::new(
            "b:2",
            "",
            State::Leaving,
            Tokens::new(vec![1]),
            Timestamp(6),
        );
        theirs.set_instance("node-3", instance).expect("valid id");
        let count = 8;
        let bucket = (crate::mergeable::name_hash(1, "node-3") as usize & (count - 1)) as u32;
        let selection = BucketSelection {
            count,
            seed: 1,
            whole: &[bucket],
            heartbeats: &[],
        };
        let part = Mergeable::select_buckets(&mine, &selection, Some(&theirs)).expect("splits");
        assert_eq!(
            Mergeable::content(&part),
            ["node-3".to_owned(), format!("node-3{HEARTBEAT_SUFFIX}")]
        );
        let invalid = BucketSelection {
            count: 3,
            ..selection
        };
        assert!(Mergeable::select_buckets(&mine, &invalid, None).is_none());
        assert!(Mergeable::bucket_digests(&mine, 2048, 1).is_none());
    }

    #[test]
    fn the_tombstone_count_follows_merges_that_make_or_forget_tombstones() {
        let mut ring = many(10, 5);
        assert_eq!(
            Mergeable::remove_tombstones(&mut ring, Timestamp(100)).remaining,
            0
        );
        // A heartbeat changes no tombstone.
        Mergeable::merge(&mut ring, &one("node-1", 50), None);
        let mut left = ring.clone();
        left.remove("node-2");
        Mergeable::merge(&mut ring, &left, Some(Timestamp(60)));
        assert_eq!(ring.tombstone_count(), 1);
        assert_eq!(
            Mergeable::remove_tombstones(&mut ring, Timestamp(60)),
            Tombstones {
                remaining: 1,
                removed: 0
            }
        );
        assert_eq!(
            Mergeable::remove_tombstones(&mut ring, Timestamp(61)),
            Tombstones {
                remaining: 0,
                removed: 1
            }
        );
        assert_eq!(ring.tombstone_count(), 0);
        ring.set_heartbeat("ghost", Timestamp(7)).expect("valid id");
        assert_eq!(
            Mergeable::remove_tombstones(&mut ring, Timestamp::MAX).removed,
            1
        );
    }

    #[test]
    fn invalid_ids_are_refused_and_leave_the_ring_unchanged() {
        let mut ring = one("a", 5);
        let before = ring.clone();
        let instance = Instance::new("a:1", "", State::Active, Tokens::empty(), Timestamp(1));
        assert!(ring.set_instance("has space", instance).is_err());
        assert!(ring.set_heartbeat("", Timestamp(1)).is_err());
        assert_eq!(ring, before);
    }
}
