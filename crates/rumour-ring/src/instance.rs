//! One instance of the ring: its lifecycle [`State`], its [`Tokens`] and its description
//! ([`Instance`]), plus the borrowed view [`InstanceRef`] that ring getters hand out.
//!
//! The ring keeps two independently merged parts per instance id:
//!
//! - the **description** ([`Instance`]: address, zone, state, tokens, ...), a last-writer-wins
//!   register ordered by `(updated_at, state, every other field)`: the newer write wins, and a tie
//!   on `updated_at` is broken by the rest of the content (so `Left` beats any other state written
//!   at the same time, as in dskit, and two different descriptions can never stay unreconciled);
//! - the **heartbeat**, a max register of wall-clock milliseconds.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rumour_wire::{Interned, Interner, StableHasher};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::mergeable::Timestamp;
use crate::replication::Operation;

/// The longest instance id accepted, in bytes.
pub const MAX_INSTANCE_ID_LEN: usize = 255;

/// The lifecycle state of an instance (dskit's `InstanceState`).
///
/// The declaration order is the tie-break order of merge: at equal `updated_at`, the greater
/// state wins, so a `Left` tombstone beats any live state written at the same millisecond.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum State {
    /// Registered, without tokens or not yet ready to take them.
    Pending,
    /// Taking ownership of its tokens.
    Joining,
    /// Serving its tokens.
    #[default]
    Active,
    /// Handing its tokens over before leaving.
    Leaving,
    /// Gone: a tombstone kept for a while so older writes cannot resurrect the instance. A `Left`
    /// instance never holds tokens.
    Left,
}

impl State {
    /// Every state, in merge tie-break order.
    pub const ALL: [State; 5] = [
        State::Pending,
        State::Joining,
        State::Active,
        State::Leaving,
        State::Left,
    ];

    /// The upper-case name dskit uses (`ACTIVE`, `LEAVING`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Joining => "JOINING",
            State::Active => "ACTIVE",
            State::Leaving => "LEAVING",
            State::Left => "LEFT",
        }
    }

    /// The state's position in [`State::ALL`]; also its wire number.
    #[must_use]
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The state with wire number `index`, if any.
    #[must_use]
    pub fn from_index(index: u64) -> Option<State> {
        State::ALL.get(usize::try_from(index).ok()?).copied()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sorted set of distinct 32-bit ring tokens, shared cheaply between clones (an `Arc<[u32]>`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "Vec<u32>", into = "Vec<u32>")]
pub struct Tokens(Arc<[u32]>);

impl Tokens {
    /// Sorts and de-duplicates `tokens`.
    #[must_use]
    pub fn new(mut tokens: Vec<u32>) -> Tokens {
        tokens.sort_unstable();
        tokens.dedup();
        Tokens(tokens.into())
    }

    /// Tokens already sorted and distinct (checked in debug builds).
    pub(crate) fn from_sorted(tokens: Vec<u32>) -> Tokens {
        debug_assert!(tokens.windows(2).all(|w| w[0] < w[1]));
        Tokens(tokens.into())
    }

    /// No tokens.
    #[must_use]
    pub fn empty() -> Tokens {
        Tokens(Arc::from(Vec::new()))
    }

    /// The tokens in increasing order.
    #[must_use]
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// Whether the set holds `token`.
    #[must_use]
    pub fn contains(&self, token: u32) -> bool {
        self.0.binary_search(&token).is_ok()
    }

    /// Whether both sets share one allocation (then they are equal without a comparison).
    #[must_use]
    pub fn shares_storage_with(&self, other: &Tokens) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Equality with a fast path for shared storage.
    pub(crate) fn same(&self, other: &Tokens) -> bool {
        self.shares_storage_with(other) || self.0 == other.0
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens::empty()
    }
}

impl Deref for Tokens {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        &self.0
    }
}

impl From<Vec<u32>> for Tokens {
    fn from(tokens: Vec<u32>) -> Self {
        Tokens::new(tokens)
    }
}

impl From<Tokens> for Vec<u32> {
    fn from(tokens: Tokens) -> Self {
        tokens.0.to_vec()
    }
}

impl FromIterator<u32> for Tokens {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        Tokens::new(iter.into_iter().collect())
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= 8 {
            f.debug_list().entries(self.0.iter()).finish()
        } else {
            write!(
                f,
                "[{}, {}, .. {} tokens .., {}]",
                self.0[0],
                self.0[1],
                self.0.len(),
                self.0[self.0.len() - 1]
            )
        }
    }
}

/// What the ring knows about one instance besides its heartbeat (dskit's `InstanceDesc`).
///
/// Field order matters: the derived `Ord` is the merge order, `updated_at` first, then `state`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Instance {
    /// When this description was written: its version. Merge keeps the description with the
    /// greater `updated_at`, breaking ties by the other fields in declaration order. A local
    /// compare-and-swap that changes a description bumps it past the stored one, so writers never
    /// need to wait for the clock to move.
    pub updated_at: Timestamp,
    /// Lifecycle state.
    pub state: State,
    /// The address clients use to reach the instance (not its gossip address).
    pub addr: String,
    /// Availability zone; empty when unknown.
    pub zone: String,
    /// Tokens claimed by the instance. Where two instances claim one token, lookups give it to
    /// the one that is not `Leaving`, else to the smaller id (dskit's rule).
    pub tokens: Tokens,
    /// When the instance first registered; zero when unknown.
    pub registered_at: Timestamp,
    /// Read-only instances are skipped by writers in shuffle sharding.
    pub read_only: bool,
    /// When `read_only` last changed.
    pub read_only_updated_at: Timestamp,
    /// Application-defined component versions.
    pub versions: BTreeMap<u64, u64>,
}

impl Instance {
    /// A description written and registered at `now`.
    #[must_use]
    pub fn new(
        addr: impl Into<String>,
        zone: impl Into<String>,
        state: State,
        tokens: Tokens,
        now: Timestamp,
    ) -> Instance {
        Instance {
            updated_at: now,
            state,
            addr: addr.into(),
            zone: zone.into(),
            tokens,
            registered_at: now,
            read_only: false,
            read_only_updated_at: Timestamp(0),
            versions: BTreeMap::new(),
        }
        .normalized()
    }

    /// Whether this is a `Left` tombstone.
    #[must_use]
    pub fn is_tombstone(&self) -> bool {
        self.state == State::Left
    }

    /// Whether both descriptions say the same thing, ignoring when they were written.
    #[must_use]
    pub fn same_content(&self, other: &Instance) -> bool {
        self.state == other.state
            && self.addr == other.addr
            && self.zone == other.zone
            && self.tokens.same(&other.tokens)
            && self.registered_at == other.registered_at
            && self.read_only == other.read_only
            && self.read_only_updated_at == other.read_only_updated_at
            && self.versions == other.versions
    }

    /// The same description with the `Left` invariant restored (tombstones hold no tokens).
    pub(crate) fn normalized(mut self) -> Instance {
        if self.state == State::Left && !self.tokens.is_empty() {
            self.tokens = Tokens::empty();
        }
        self
    }

    /// The `Left` tombstone of this description, written at `at`.
    pub(crate) fn tombstone(&self, at: Timestamp) -> Instance {
        Instance {
            updated_at: at,
            state: State::Left,
            tokens: Tokens::empty(),
            ..self.clone()
        }
    }

    fn digest(&self) -> u64 {
        let mut d = StableHasher::new();
        d.write(b"desc");
        d.write_u64(self.updated_at.0);
        d.write_u64(u64::from(self.state.index()));
        d.write_str(&self.addr);
        d.write_str(&self.zone);
        d.write_u64(self.tokens.len() as u64);
        for token in self.tokens.iter() {
            d.write(&token.to_le_bytes());
        }
        d.write_u64(self.registered_at.0);
        d.write_u64(u64::from(self.read_only));
        d.write_u64(self.read_only_updated_at.0);
        d.write_u64(self.versions.len() as u64);
        for (k, v) in &self.versions {
            d.write_u64(*k);
            d.write_u64(*v);
        }
        d.finish()
    }
}

/// A stored description: the instance plus its lazily computed digest, and for a decoded one
/// the canonical bytes it was decoded from.
#[derive(Debug)]
pub(crate) struct Body {
    pub(crate) instance: Instance,
    digest: OnceLock<u64>,
    /// The description's encoding, for one that was decoded: it is interned process-wide by
    /// these bytes ([`Body::decoded`]).
    encoded: Option<Box<[u8]>>,
    /// Whether `encoded` is the canonical encoding, which the codec then writes back as it is.
    canonical: bool,
}

/// Decoded descriptions, shared process-wide by their encoding: a description received again
/// (each arrives a few times by gossip, and in every full-state exchange) is found instead of
/// decoded, equal descriptions compare by pointer, and a simulation of a thousand nodes holds
/// one copy of each instead of one per node.
static DECODED: Interner<Body> = Interner::new();

impl Interned for Body {
    fn key(&self) -> &[u8] {
        self.encoded.as_deref().unwrap_or_default()
    }
}

impl Body {
    pub(crate) fn new(instance: Instance) -> Arc<Body> {
        Arc::new(Body {
            instance: instance.normalized(),
            digest: OnceLock::new(),
            encoded: None,
            canonical: false,
        })
    }

    /// The description `encoded` decodes to, shared: found among the descriptions decoded
    /// before, or decoded by `decode` (from those same bytes) and interned.
    pub(crate) fn decoded<E>(
        encoded: &[u8],
        decode: impl FnOnce() -> Result<Instance, E>,
    ) -> Result<Arc<Body>, E> {
        if let Some(body) = DECODED.get(encoded) {
            return Ok(body);
        }
        let instance = decode()?.normalized();
        // Checked once per distinct description in the process.
        let canonical = crate::codec::encode_description(&instance, Vec::new()) == encoded;
        Ok(DECODED.insert(Body {
            instance,
            digest: OnceLock::new(),
            encoded: Some(encoded.into()),
            canonical,
        }))
    }

    /// The canonical encoding of this description, if it was decoded from it.
    pub(crate) fn encoded(&self) -> Option<&[u8]> {
        self.encoded.as_deref().filter(|_| self.canonical)
    }

    pub(crate) fn digest(&self) -> u64 {
        *self.digest.get_or_init(|| self.instance.digest())
    }
}

/// Equality of optional bodies with a fast path for shared storage.
pub(crate) fn same_body(a: Option<&Arc<Body>>, b: Option<&Arc<Body>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a.instance == b.instance,
        _ => false,
    }
}

/// An instance id as the ring stores it: inline when short (as ids are), shared when long,
/// cheap to clone either way.
pub(crate) type InstanceId = smol_str::SmolStr;

/// One instance id's state in a ring: an optional description and a heartbeat (zero when none).
/// An entry with a heartbeat but no description is a *ghost*: a heartbeat that arrived before
/// (or after forgetting) the description. Ghosts are invisible to getters and lookups.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Inline up to 23 bytes: searches compare ids without leaving the entry vector.
    pub(crate) id: InstanceId,
    pub(crate) body: Option<Arc<Body>>,
    pub(crate) heartbeat: Timestamp,
    /// Local wall time at which this node received (or wrote) the entry's current tombstone;
    /// zero when unknown (the entry was built in code or decoded without
    /// [`Mergeable::receive`](crate::Mergeable::receive)). Never encoded, never compared: it
    /// only ages tombstones here.
    pub(crate) received: Timestamp,
}

impl Entry {
    /// An entry with no receive time.
    pub(crate) fn new(id: InstanceId, body: Option<Arc<Body>>, heartbeat: Timestamp) -> Entry {
        Entry {
            id,
            body,
            heartbeat,
            received: Timestamp(0),
        }
    }

    /// Tombstones are `Left` descriptions and ghosts.
    pub(crate) fn is_tombstone(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.instance.is_tombstone())
    }

    /// When the tombstone was last written.
    pub(crate) fn tombstone_time(&self) -> Timestamp {
        match &self.body {
            Some(body) => body.instance.updated_at,
            None => self.heartbeat,
        }
    }

    /// The time a tombstone ages from: when this node received it, if known, else when it was
    /// written.
    pub(crate) fn tombstone_age_base(&self) -> Timestamp {
        if self.received.0 > 0 {
            self.received
        } else {
            self.tombstone_time()
        }
    }

    pub(crate) fn view(&self) -> Option<InstanceRef<'_>> {
        self.body.as_ref().map(|body| InstanceRef {
            id: &self.id,
            instance: &body.instance,
            heartbeat: self.heartbeat,
        })
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.heartbeat == other.heartbeat
            && self.id == other.id
            && same_body(self.body.as_ref(), other.body.as_ref())
    }
}

/// Checks an instance id: non-empty, at most [`MAX_INSTANCE_ID_LEN`] bytes, and free of
/// whitespace and control characters (so that `"{id} heartbeat"` names are unambiguous).
///
/// # Errors
/// [`Error::InvalidInstanceId`] saying which rule the id breaks.
pub fn validate_instance_id(id: &str) -> Result<(), Error> {
    let reason = if id.is_empty() {
        "empty"
    } else if id.len() > MAX_INSTANCE_ID_LEN {
        "longer than 255 bytes"
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains whitespace or a control character"
    } else {
        return Ok(());
    };
    let mut shown = id.to_owned();
    if shown.len() > 64 {
        let mut cut = 64;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
    }
    Err(Error::InvalidInstanceId { id: shown, reason })
}

/// A borrowed view of one instance in a ring: its id, description and heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceRef<'a> {
    id: &'a str,
    instance: &'a Instance,
    heartbeat: Timestamp,
}

impl<'a> InstanceRef<'a> {
    /// The instance id.
    #[must_use]
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The description.
    #[must_use]
    pub fn instance(&self) -> &'a Instance {
        self.instance
    }

    /// The last heartbeat (zero if none was seen).
    #[must_use]
    pub fn heartbeat(&self) -> Timestamp {
        self.heartbeat
    }

    /// The lifecycle state.
    #[must_use]
    pub fn state(&self) -> State {
        self.instance.state
    }

    /// The address.
    #[must_use]
    pub fn addr(&self) -> &'a str {
        &self.instance.addr
    }

    /// The zone.
    #[must_use]
    pub fn zone(&self) -> &'a str {
        &self.instance.zone
    }

    /// The tokens the instance claims (see [`crate::Ring::ownership`] for what it owns).
    #[must_use]
    pub fn tokens(&self) -> &'a Tokens {
        &self.instance.tokens
    }

    /// Whether the last heartbeat is at most `timeout` old at `now` (a zero timeout means
    /// heartbeats are not checked).
    #[must_use]
    pub fn is_heartbeat_healthy(&self, now: Timestamp, timeout: Duration) -> bool {
        heartbeat_healthy(self.heartbeat, now, timeout)
    }

    /// Whether the instance is healthy for `op`: its state suits the operation and its heartbeat
    /// is fresh.
    #[must_use]
    pub fn is_healthy(&self, op: Operation, now: Timestamp, timeout: Duration) -> bool {
        op.is_healthy_state(self.instance.state) && self.is_heartbeat_healthy(now, timeout)
    }
}

/// `now - heartbeat <= timeout`, in milliseconds; a zero timeout disables the check.
pub(crate) fn heartbeat_healthy(heartbeat: Timestamp, now: Timestamp, timeout: Duration) -> bool {
    timeout.is_zero() || u128::from(now.0.saturating_sub(heartbeat.0)) <= timeout.as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_sorted_and_deduplicated() {
        let tokens = Tokens::new(vec![5, 1, 5, 3]);
        assert_eq!(tokens.as_slice(), &[1, 3, 5]);
        assert!(tokens.contains(3));
        assert!(!tokens.contains(4));
    }

    #[test]
    fn a_left_instance_never_holds_tokens() {
        let left = Instance::new(
            "a:1",
            "z",
            State::Left,
            Tokens::new(vec![1, 2]),
            Timestamp(5),
        );
        assert!(left.tokens.is_empty());
    }

    #[test]
    fn left_wins_ties_on_updated_at() {
        let active = Instance::new(
            "a:1",
            "z",
            State::Active,
            Tokens::new(vec![1]),
            Timestamp(5),
        );
        let left = active.tombstone(Timestamp(5));
        assert!(left > active);
        let newer = Instance {
            updated_at: Timestamp(6),
            ..active.clone()
        };
        assert!(newer > left);
    }

    #[test]
    fn instance_ids_with_spaces_or_nothing_are_refused() {
        assert!(validate_instance_id("ingester-1").is_ok());
        assert!(validate_instance_id("").is_err());
        assert!(validate_instance_id("a b").is_err());
        assert!(validate_instance_id("a\u{0}").is_err());
        assert!(validate_instance_id(&"x".repeat(256)).is_err());
    }

    #[test]
    fn heartbeat_health_uses_the_timeout_in_milliseconds() {
        let t = Duration::from_secs(60);
        assert!(heartbeat_healthy(Timestamp(1_000), Timestamp(61_000), t));
        assert!(!heartbeat_healthy(Timestamp(1_000), Timestamp(61_001), t));
        assert!(heartbeat_healthy(
            Timestamp(0),
            Timestamp(u64::MAX),
            Duration::ZERO
        ));
    }
}
