//! The [`Mergeable`] contract: state-based CRDT values that the KV store replicates.
//!
//! A value is merged *in place* with another copy of itself; the merge returns the **change**
//! (the part of `other` that made a difference), which is what the KV store gossips onwards. The
//! laws an implementation must obey, all with respect to the receiver's resulting state:
//!
//! - **idempotent**: merging the same `other` twice changes nothing the second time, and the
//!   second call returns `None`;
//! - **commutative** and **associative**: any two replicas that merged the same set of values, in
//!   any order, with any duplication, end up equal;
//! - **change soundness**: merging the returned change into any replica that had the receiver's
//!   old state gives the receiver's new state; a `None` change means the logical value did not
//!   change;
//! - **tombstones never resurrect**: `remove_tombstones` only forgets entries that are already
//!   deleted (tombstones); it never brings a deleted entry back.
//!
//! `local_cas: Some(now)` is used only by the local compare-and-swap: `other` is then the full
//! desired state and entries missing from it become tombstones stamped `now`. That mode is not
//! commutative and is never used for values received from the network.
//!
//! The KV store holds values of several types; [`Codec`] and [`Value`] are the object-safe face
//! of a `Mergeable` type, and [`TypedCodec`] builds one for any `Mergeable`.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Wall-clock time in milliseconds since the Unix epoch, as carried on the wire.
///
/// Sans-IO code never reads a clock: the caller passes the current `Timestamp` in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The greatest timestamp: `remove_tombstones(Timestamp::MAX)` forgets every tombstone.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// The timestamp `millis` milliseconds later, saturating at [`Timestamp::MAX`].
    #[must_use]
    pub fn saturating_add_millis(self, millis: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// The timestamp `millis` milliseconds earlier, saturating at zero.
    #[must_use]
    pub fn saturating_sub_millis(self, millis: u64) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis))
    }
}

/// The outcome of [`Mergeable::remove_tombstones`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tombstones {
    /// Tombstones still held after the call.
    pub remaining: usize,
    /// Tombstones forgotten by the call.
    pub removed: usize,
}

/// A compact fingerprint of one sub-entry of a value (for the ring: one instance and its
/// version), used by pull-push to find the entries two replicas disagree on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryDigest {
    /// The entry's name, one that [`Mergeable::select`] accepts (for the ring: an instance id,
    /// covering its description and heartbeat).
    pub name: String,
    /// A hash of the entry's state; equal states give equal hashes.
    pub hash: u64,
}

/// The most buckets a bucketed digest may have: [`bucket_count`] never picks more, and a
/// received digest or request naming more is refused.
pub const MAX_DIGEST_BUCKETS: usize = 1024;

/// The digest of one bucket of a value's entries (see [`Mergeable::bucket_digests`]): 32-bit
/// hashes, salted per exchange so that a collision does not repeat in the next one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BucketDigest {
    /// Hash of the bucket's entry names and slow-moving state (for the ring: the ids and their
    /// descriptions).
    pub descriptions: u32,
    /// Hash of the bucket's fast-moving state (for the ring: the heartbeats).
    pub heartbeats: u32,
}

/// Which buckets of a value to take (see [`Mergeable::select_buckets`]).
#[derive(Clone, Copy, Debug)]
pub struct BucketSelection<'a> {
    /// The number of buckets (a power of two, at most [`MAX_DIGEST_BUCKETS`]).
    pub count: usize,
    /// The salt of the exchange.
    pub seed: u64,
    /// Buckets whose entries are taken whole.
    pub whole: &'a [u32],
    /// Buckets of which only the fast-moving state is taken (for the ring: heartbeats).
    pub heartbeats: &'a [u32],
}

/// The bucket count for a value of `entries` entries: the power of two at or above its square
/// root (32 for 1,000 entries), so that the bucket digests and the entries of one bucket cost
/// about the same; at most [`MAX_DIGEST_BUCKETS`].
#[must_use]
pub fn bucket_count(entries: usize) -> usize {
    let mut count = 1;
    while count * count < entries && count < MAX_DIGEST_BUCKETS {
        count *= 2;
    }
    count
}

/// Whether `count` is a bucket count a digest may use: a power of two up to
/// [`MAX_DIGEST_BUCKETS`].
#[must_use]
pub fn valid_bucket_count(count: usize) -> bool {
    count.is_power_of_two() && count <= MAX_DIGEST_BUCKETS
}

/// The salted hash of an entry name: its low bits pick the bucket (of a power-of-two count).
#[must_use]
pub fn name_hash(seed: u64, name: &str) -> u64 {
    let mut h = rumour_wire::StableHasher::new();
    h.write_u64(seed);
    h.write_str(name);
    h.finish()
}

/// The hash of one content name (see [`Mergeable::content_hashes`]): FNV-1a 64 of its bytes
/// (no length prefix, so that a name can be hashed in parts), never zero.
#[must_use]
pub fn content_hash(name: &str) -> u64 {
    let mut h = rumour_wire::StableHasher::new();
    h.write(name.as_bytes());
    h.finish() | 1
}

/// A state-based CRDT value. See the module documentation for the laws.
pub trait Mergeable: Clone + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The codec id written on the wire next to encoded values of this type.
    const CODEC_ID: &'static str;

    /// Merges `other` into `self` and returns the change to gossip, or `None` if `self` did not
    /// change. `local_cas` is `Some(now)` only for a local compare-and-swap (see the module docs).
    fn merge(&mut self, other: &Self, local_cas: Option<Timestamp>) -> Option<Self>;

    /// The names of the sub-entries this value holds, tombstones included (for the ring: an
    /// instance id names its description, `"{id} heartbeat"` its heartbeat). A change whose
    /// content is a superset of a queued change's content replaces it.
    fn content(&self) -> Vec<String>;

    /// The [`content_hash`] of each name [`Mergeable::content`] gives, in any order: what the
    /// gossip queues file and compare changes by. Override it when hashing costs less than
    /// building the names (the ring hashes an id once for its two names).
    fn content_hashes(&self) -> Vec<u64> {
        self.content()
            .iter()
            .map(|name| content_hash(name))
            .collect()
    }

    /// Whether [`Mergeable::content`] names anything. Override it when building the names costs
    /// more than a look: the store asks it of every received change.
    fn has_content(&self) -> bool {
        !self.content().is_empty()
    }

    /// Forgets tombstones last updated before `older_than`; [`Timestamp::MAX`] forgets them all
    /// (what a read that must not show tombstones uses).
    fn remove_tombstones(&mut self, older_than: Timestamp) -> Tombstones;

    /// The latest `older_than` at which [`Mergeable::remove_tombstones`] would change nothing,
    /// as far as the value knows without looking through itself. The KV store asks it after
    /// each sweep of the value and skips the value in its periodic sweeps while their cutoff is
    /// at most this and the value has not changed, so a store of many keys does not visit every
    /// value every second. The default, `Timestamp(0)`, has every sweep visit the value.
    fn tombstones_quiet_until(&self) -> Timestamp {
        Timestamp(0)
    }

    /// Encodes the value canonically: equal values give equal bytes.
    fn encode(&self) -> Vec<u8>;

    /// A 64-bit hash of the value's state, equal for equal values, that pull-push compares
    /// instead of hashing [`Mergeable::encode`]: override it when a value can hash itself
    /// without encoding (the ring hashes cached description digests and heartbeats). `None`,
    /// the default, hashes the encoding.
    fn state_hash(&self) -> Option<u64> {
        None
    }

    /// Decodes a value; arbitrary bytes give an error, never a panic, and never an allocation
    /// larger than the input justifies.
    fn decode(bytes: &[u8]) -> Result<Self, Error>;

    /// Per-entry digests for pull-push reconciliation, or `None` if the type offers none (the
    /// whole value is then exchanged when it differs).
    fn entry_digests(&self) -> Option<Vec<EntryDigest>> {
        None
    }

    /// The bucket count this value's digests use ([`bucket_count`] of its entries; 1 for a type
    /// without bucketed digests).
    fn digest_buckets(&self) -> usize {
        1
    }

    /// Bucketed digests for pull-push: the entries split into `count` buckets (a power of two)
    /// by [`name_hash`] salted with `seed`, one [`BucketDigest`] each; `None` if the type offers
    /// none (the whole value is then exchanged when it differs), or if `count` is not valid.
    fn bucket_digests(&self, count: usize, seed: u64) -> Option<Vec<BucketDigest>> {
        let _ = (count, seed);
        None
    }

    /// The sub-value holding the entries of the selected buckets (whole, or only their
    /// fast-moving state), leaving out what `except` (what the peer sent of the same buckets)
    /// already holds as new or newer; `None` if the type cannot be split.
    fn select_buckets(
        &self,
        selection: &BucketSelection<'_>,
        except: Option<&Self>,
    ) -> Option<Self> {
        let _ = (selection, except);
        None
    }

    /// Prepares a value just received from the network, before it is merged: drops the parts
    /// stamped later than `latest` (the receiver's wall time plus the clock skew it tolerates)
    /// and returns how many it dropped, and records `now` (the receiver's wall time) as the time
    /// its tombstones arrived, so that [`Mergeable::remove_tombstones`] ages them from when this
    /// node saw them rather than from a time the sender chose. The default keeps everything and
    /// returns 0.
    ///
    /// A dropped part is as if it had not been received: the value stays a join-semilattice.
    fn receive(&mut self, now: Timestamp, latest: Timestamp) -> usize {
        let _ = (now, latest);
        0
    }

    /// The sub-value holding only the named entries (those that exist), or `None` if the type
    /// cannot be split (callers then send the whole value).
    fn select(&self, names: &[String]) -> Option<Self> {
        let _ = names;
        None
    }

    /// Whether this value (a change) carries nothing but fast-moving state that its writers
    /// refresh periodically anyway (for the ring: heartbeats only). Gossip sends such changes
    /// fewer times (`refresh_retransmit_mult`). The default is `false`.
    fn is_refresh(&self) -> bool {
        false
    }

    /// The join of `values`: one value holding what they all hold, equal to what merging each
    /// into a copy of the first gives ([`join_by_merging`]); `None` for no values. Gossip packs
    /// the queued changes of one key that go in one packet into one message with it. The
    /// default is [`join_by_merging`]; override it when a direct union costs less than a chain
    /// of merges that each compute a change (the ring merges its sorted entry lists in one
    /// pass).
    fn join(values: &[&Self]) -> Option<Self> {
        join_by_merging(values)
    }
}

/// The join of `values` by [`Mergeable::merge`]: pairwise, in rounds (a join is associative and
/// commutative, and `k` values of `T` entries in all cost `O(T log k)` entry moves where merging
/// each into one growing value moves `O(T k)`). The default of [`Mergeable::join`].
pub fn join_by_merging<T: Mergeable>(values: &[&T]) -> Option<T> {
    let mut round: Vec<T> = values.iter().map(|v| (*v).clone()).collect();
    while round.len() > 1 {
        let mut next = Vec::with_capacity(round.len().div_ceil(2));
        let mut pairs = round.into_iter();
        while let Some(mut left) = pairs.next() {
            if let Some(right) = pairs.next() {
                left.merge(&right, None);
            }
            next.push(left);
        }
        round = next;
    }
    round.pop()
}

/// The object-safe face of a [`Mergeable`] value, so one store can hold several value types.
pub trait Value: Any + fmt::Debug + Send + Sync {
    /// The codec id of the value's type.
    fn codec_id(&self) -> &'static str;
    /// [`Mergeable::merge`]; errors if `other` is of another type.
    fn merge_dyn(
        &mut self,
        other: &dyn Value,
        local_cas: Option<Timestamp>,
    ) -> Result<Option<Box<dyn Value>>, Error>;
    /// [`Mergeable::content`].
    fn content(&self) -> Vec<String>;
    /// [`Mergeable::content_hashes`].
    fn content_hashes(&self) -> Vec<u64>;
    /// [`Mergeable::has_content`].
    fn has_content(&self) -> bool;
    /// [`Mergeable::remove_tombstones`].
    fn remove_tombstones(&mut self, older_than: Timestamp) -> Tombstones;
    /// [`Mergeable::tombstones_quiet_until`].
    fn tombstones_quiet_until(&self) -> Timestamp;
    /// [`Mergeable::encode`].
    fn encode(&self) -> Vec<u8>;
    /// [`Mergeable::state_hash`].
    fn state_hash(&self) -> Option<u64>;
    /// [`Mergeable::entry_digests`].
    fn entry_digests(&self) -> Option<Vec<EntryDigest>>;
    /// [`Mergeable::receive`].
    fn receive(&mut self, now: Timestamp, latest: Timestamp) -> usize {
        let _ = (now, latest);
        0
    }
    /// [`Mergeable::select`].
    fn select(&self, names: &[String]) -> Option<Box<dyn Value>>;
    /// [`Mergeable::is_refresh`].
    fn is_refresh(&self) -> bool;
    /// [`Mergeable::digest_buckets`].
    fn digest_buckets(&self) -> usize;
    /// [`Mergeable::bucket_digests`].
    fn bucket_digests(&self, count: usize, seed: u64) -> Option<Vec<BucketDigest>>;
    /// [`Mergeable::select_buckets`]; an `except` of another type is ignored.
    fn select_buckets(
        &self,
        selection: &BucketSelection<'_>,
        except: Option<&dyn Value>,
    ) -> Option<Box<dyn Value>>;
    /// [`Mergeable::join`] of this value and `others`; errors if one of them is of another
    /// type.
    fn join_dyn(&self, others: &[&dyn Value]) -> Result<Box<dyn Value>, Error>;
    /// A copy of the value.
    fn clone_box(&self) -> Box<dyn Value>;
    /// Equality with another value of any type.
    fn eq_dyn(&self, other: &dyn Value) -> bool;
    /// The value as `Any`, to downcast to the concrete type.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Mergeable> Value for T {
    fn codec_id(&self) -> &'static str {
        T::CODEC_ID
    }

    fn merge_dyn(
        &mut self,
        other: &dyn Value,
        local_cas: Option<Timestamp>,
    ) -> Result<Option<Box<dyn Value>>, Error> {
        let other = other
            .as_any()
            .downcast_ref::<T>()
            .ok_or(Error::CodecMismatch {
                expected: T::CODEC_ID,
                found: other.codec_id(),
            })?;
        Ok(self
            .merge(other, local_cas)
            .map(|change| Box::new(change) as Box<dyn Value>))
    }

    fn content(&self) -> Vec<String> {
        Mergeable::content(self)
    }

    fn content_hashes(&self) -> Vec<u64> {
        Mergeable::content_hashes(self)
    }

    fn has_content(&self) -> bool {
        Mergeable::has_content(self)
    }

    fn remove_tombstones(&mut self, older_than: Timestamp) -> Tombstones {
        Mergeable::remove_tombstones(self, older_than)
    }

    fn tombstones_quiet_until(&self) -> Timestamp {
        Mergeable::tombstones_quiet_until(self)
    }

    fn encode(&self) -> Vec<u8> {
        Mergeable::encode(self)
    }

    fn state_hash(&self) -> Option<u64> {
        Mergeable::state_hash(self)
    }

    fn entry_digests(&self) -> Option<Vec<EntryDigest>> {
        Mergeable::entry_digests(self)
    }

    fn receive(&mut self, now: Timestamp, latest: Timestamp) -> usize {
        Mergeable::receive(self, now, latest)
    }

    fn select(&self, names: &[String]) -> Option<Box<dyn Value>> {
        Mergeable::select(self, names).map(|v| Box::new(v) as Box<dyn Value>)
    }

    fn is_refresh(&self) -> bool {
        Mergeable::is_refresh(self)
    }

    fn digest_buckets(&self) -> usize {
        Mergeable::digest_buckets(self)
    }

    fn bucket_digests(&self, count: usize, seed: u64) -> Option<Vec<BucketDigest>> {
        Mergeable::bucket_digests(self, count, seed)
    }

    fn select_buckets(
        &self,
        selection: &BucketSelection<'_>,
        except: Option<&dyn Value>,
    ) -> Option<Box<dyn Value>> {
        let except = except.and_then(|v| v.as_any().downcast_ref::<T>());
        Mergeable::select_buckets(self, selection, except).map(|v| Box::new(v) as Box<dyn Value>)
    }

    fn join_dyn(&self, others: &[&dyn Value]) -> Result<Box<dyn Value>, Error> {
        let mut values: Vec<&T> = Vec::with_capacity(others.len() + 1);
        values.push(self);
        for other in others {
            values.push(
                other
                    .as_any()
                    .downcast_ref::<T>()
                    .ok_or(Error::CodecMismatch {
                        expected: T::CODEC_ID,
                        found: other.codec_id(),
                    })?,
            );
        }
        let joined = T::join(&values).expect("one value at least");
        Ok(Box::new(joined))
    }

    fn clone_box(&self) -> Box<dyn Value> {
        Box::new(self.clone())
    }

    fn eq_dyn(&self, other: &dyn Value) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Clone for Box<dyn Value> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Decodes bytes tagged with a codec id into values of one type.
pub trait Codec: Send + Sync + 'static {
    /// The codec id on the wire.
    fn id(&self) -> &'static str;
    /// Decodes one value.
    fn decode(&self, bytes: &[u8]) -> Result<Box<dyn Value>, Error>;
}

/// The [`Codec`] of a [`Mergeable`] type `T`.
pub struct TypedCodec<T>(PhantomData<fn() -> T>);

impl<T> TypedCodec<T> {
    /// The codec of `T`.
    #[must_use]
    pub fn new() -> Self {
        TypedCodec(PhantomData)
    }
}

impl<T> Default for TypedCodec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for TypedCodec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TypedCodec")
            .field(&std::any::type_name::<T>())
            .finish()
    }
}

impl<T: Mergeable> Codec for TypedCodec<T> {
    fn id(&self) -> &'static str {
        T::CODEC_ID
    }

    fn decode(&self, bytes: &[u8]) -> Result<Box<dyn Value>, Error> {
        Ok(Box::new(T::decode(bytes)?))
    }
}
