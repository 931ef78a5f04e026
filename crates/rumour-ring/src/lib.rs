//! The hash ring as a CRDT: the [`Mergeable`] contract the KV store replicates, the [`Ring`]
//! value with its merge rules and codec, token generation, key lookup, and a pure
//! [`Lifecycler`].
//!
//! # Contract
//!
//! - **Pure.** No I/O, no clock reads, no unseeded randomness: times come in as [`Timestamp`]s
//!   (wall-clock milliseconds), randomness from a `ChaCha8Rng` the caller hands over.
//! - **A true join-semilattice.** Per instance id the ring holds a description ([`Instance`]), a
//!   last-writer-wins register totally ordered by `(updated_at, state, content)`, and a
//!   heartbeat, a max register. Merge is idempotent, commutative and associative whatever the
//!   timestamps: every tie is decided by that total order, so no caller ever waits for the clock
//!   to move (dskit's CAS sleeps a second instead).
//! - **dskit's rules** otherwise: a newer write wins per instance; `Left` is a tombstone that
//!   clears tokens and wins ties; in a local compare-and-swap an instance missing from the
//!   desired state becomes `Left` at `now`; token conflicts go to the claimant that is not
//!   `Leaving`, else to the smaller id (resolved in the lookup table, a pure function of the
//!   merged state, instead of by rewriting descriptions); the change holds only what changed.
//! - **Cheap heartbeats.** A heartbeat-only change carries the instance id and a timestamp, no
//!   tokens: encoded it is `14 + id length` bytes (at most 64 for ids up to 50 bytes), where
//!   dskit gossips the whole 0.7-2.6 KB instance.
//! - **Compact, checked codec.** A version byte, postcard, Rice-coded token gaps and a checksum
//!   (see the `codec` module and `docs/ring.md`). Decoding arbitrary bytes returns an
//!   error, never panics, and never reserves more than the input can hold or [`RingLimits`]
//!   allow (instances per ring, tokens per instance); merges of received rings add no instance
//!   past the limit.
//! - **Hostile clocks.** [`Mergeable::receive`] drops received descriptions and heartbeats
//!   stamped too far ahead and makes tombstones age from the local time they arrived, so no
//!   timestamp can tombstone an instance forever; an owner's local CAS always outbids a stored
//!   description of its own instance.
//! - **Cheap clones and lookups.** Clones share entries and tokens; the token table is cached
//!   and survives heartbeats; [`Ring::get`] allocates nothing when given a reused
//!   [`ReplicationSet`].
//!
//! # Figures
//!
//! Encoded size of rings of random tokens, against the information-theoretic bound for the token
//! sets (`log2(C(2^32, n)) / 8` bytes per instance), from the test
//! `encoded_random_rings_are_within_a_quarter_of_the_information_bound`:
//!
//! | ring | B/token | bound B/token | ratio |
//! | --- | --- | --- | --- |
//! | 100 x 128 | 3.82 | 3.30 | 1.16 |
//! | 600 x 128 | 3.83 | 3.30 | 1.16 |
//! | 100 x 512 | 3.19 | 3.05 | 1.05 |
//!
//! (dskit's protobuf+snappy: about 5.3 B/token.)
//!
//! Ownership imbalance (largest owned fraction / smallest) as instances join one at a time with
//! 128 tokens each, from `cargo run --release -p rumour-ring --example ownership`:
//!
//! | instances | [`TokenStrategy::Random`] | [`TokenStrategy::Spread`] |
//! | --- | --- | --- |
//! | 10 | 1.376 | 1.008 |
//! | 100 | 1.589 | 1.008 |
//! | 1,000 | 2.014 | 1.008 |
//!
//! Benchmarks are in `docs/ring.md`.
//!
//! # Example
//!
//! ```
//! use rumour_ring::{
//!     Instance, Mergeable, Operation, ReplicationConfig, ReplicationSet, Ring, State,
//!     Timestamp, Tokens,
//! };
//!
//! let now = Timestamp(1_700_000_000_000);
//! // Two replicas learn about different instances...
//! let mut a = Ring::new();
//! a.set_instance("a", Instance::new("10.0.0.1:9095", "", State::Active, Tokens::new(vec![100, 300]), now))?;
//! a.set_heartbeat("a", now)?;
//! let mut b = Ring::new();
//! b.set_instance("b", Instance::new("10.0.0.2:9095", "", State::Active, Tokens::new(vec![200, 400]), now))?;
//! b.set_heartbeat("b", now)?;
//!
//! // ...and converge by exchanging what changed.
//! let change = a.merge(&b, None).expect("b brought something new");
//! assert_eq!(b.merge(&Ring::decode(&change.encode())?, None), None);
//! b.merge(&a, None);
//! assert_eq!(a, b);
//!
//! // Key 150 belongs to the first token greater than it (200, instance b), then a.
//! let config = ReplicationConfig { replication_factor: 2, ..ReplicationConfig::default() };
//! let mut set = ReplicationSet::with_capacity(4);
//! a.get(150, Operation::WRITE, &config, now, &mut set)?;
//! let ids: Vec<&str> = set.replicas().iter().map(|r| r.id()).collect();
//! assert_eq!(ids, ["b", "a"]);
//! # Ok::<(), rumour_ring::Error>(())
//! ```

mod codec;
mod error;
mod forgotten;
mod instance;
mod lifecycler;
mod limits;
mod lookup;
mod merge;
mod mergeable;
mod position;
mod replication;
mod ring;
mod token;

pub use codec::FORMAT_VERSION;
pub use error::Error;
pub use instance::{
    Instance, InstanceRef, MAX_INSTANCE_ID_LEN, State, Tokens, validate_instance_id,
};
pub use lifecycler::{Lifecycler, LifecyclerConfig};
pub use limits::{RingCodec, RingLimits};
pub use lookup::TOKEN_SPACE;
pub use mergeable::{
    BucketDigest, BucketSelection, Codec, EntryDigest, MAX_DIGEST_BUCKETS, Mergeable, Timestamp,
    Tombstones, TypedCodec, Value, bucket_count, content_hash, join_by_merging, name_hash,
    valid_bucket_count,
};
pub use replication::{Operation, Replica, ReplicationConfig, ReplicationSet, ZoneAwareness};
pub use ring::{HEARTBEAT_SUFFIX, Ring};
pub use token::{TokenStrategy, random_tokens, spread_tokens};

#[doc(hidden)]
pub mod testing {
    //! Hooks for this crate's integration tests and benchmarks; not a stable API.

    /// Decodes the bytes of an encoded ring *without* its trailing checksum, so that tests can
    /// exercise the parser on corrupted input that the checksum would otherwise reject.
    ///
    /// # Errors
    /// Whatever the parser finds wrong.
    pub fn decode_unchecked(payload: &[u8]) -> Result<crate::Ring, crate::Error> {
        crate::codec::decode_payload(payload, &crate::RingLimits::UNBOUNDED)
    }

    /// Whether two rings share one cached lookup table (a cheap change kept it).
    #[must_use]
    pub fn shares_lookup_table(a: &crate::Ring, b: &crate::Ring) -> bool {
        match (a.table.get(), b.table.get()) {
            (Some(x), Some(y)) => std::sync::Arc::ptr_eq(x, y),
            _ => false,
        }
    }
}
