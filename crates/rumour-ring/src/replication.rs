//! Operations, replication settings and replication sets: what a lookup returns and how many of
//! its replicas may fail (dskit's `Operation`, `ReplicationSet` and default replication strategy).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::instance::{Body, Instance, InstanceId, State, heartbeat_healthy};
use crate::mergeable::Timestamp;
use crate::ring::Ring;

/// A lookup operation: which states count as healthy for it, and which states make a write
/// extend its replica set by one more instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    healthy: u8,
    extend: u8,
}

const fn mask(states: &[State]) -> u8 {
    let mut bits = 0u8;
    let mut i = 0;
    while i < states.len() {
        bits |= 1 << states[i] as u8;
        i += 1;
    }
    bits
}

impl Operation {
    /// Writes: only `Active` instances are healthy, and every other instance picked extends the
    /// set by one, so a joining or leaving instance does not reduce the write quorum.
    pub const WRITE: Operation = Operation::new(
        &[State::Active],
        &[State::Pending, State::Joining, State::Leaving, State::Left],
    );
    /// Writes that never extend the set (dskit `WriteNoExtend`, Mimir's `extend-writes=false`).
    pub const WRITE_NO_EXTEND: Operation = Operation::new(&[State::Active], &[]);
    /// Reads: `Active`, `Pending` and `Leaving` instances are healthy; `Pending` and `Joining`
    /// ones extend the set.
    pub const READ: Operation = Operation::new(
        &[State::Active, State::Pending, State::Leaving],
        &[State::Pending, State::Joining, State::Left],
    );
    /// Reporting: every state is healthy, nothing extends.
    pub const REPORTING: Operation = Operation::new(&State::ALL, &[]);

    /// An operation healthy in `healthy` states that extends the set on `extend` states.
    #[must_use]
    pub const fn new(healthy: &[State], extend: &[State]) -> Operation {
        Operation {
            healthy: mask(healthy),
            extend: mask(extend),
        }
    }

    /// Whether an instance in `state` is healthy for this operation.
    #[must_use]
    pub fn is_healthy_state(self, state: State) -> bool {
        self.healthy & (1 << state as u8) != 0
    }

    /// Whether picking an instance in `state` extends the replica set by one.
    #[must_use]
    pub fn extends_on(self, state: State) -> bool {
        self.extend & (1 << state as u8) != 0
    }
}

/// Whether lookups spread replicas over zones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ZoneAwareness {
    /// Zones are ignored.
    #[default]
    Disabled,
    /// At most one replica per zone (instances without a zone are not limited).
    Enabled,
}

/// Replication settings of a ring reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// Replicas per key (dskit `-distributor.replication-factor`, default 3).
    pub replication_factor: usize,
    /// Zone-aware replication (default off).
    pub zone_awareness: ZoneAwareness,
    /// An instance whose last heartbeat is older than this is unhealthy (default 1 min; zero
    /// disables the check).
    pub heartbeat_timeout: Duration,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replication_factor: 3,
            zone_awareness: ZoneAwareness::Disabled,
            heartbeat_timeout: Duration::from_secs(60),
        }
    }
}

/// One instance picked by a lookup: a cheap owned handle (two `Arc`s and a timestamp).
#[derive(Clone, Debug)]
pub struct Replica {
    pub(crate) id: InstanceId,
    pub(crate) body: Arc<Body>,
    pub(crate) heartbeat: Timestamp,
}

impl Replica {
    /// The instance id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The description.
    #[must_use]
    pub fn instance(&self) -> &Instance {
        &self.body.instance
    }

    /// The address.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.body.instance.addr
    }

    /// The zone.
    #[must_use]
    pub fn zone(&self) -> &str {
        &self.body.instance.zone
    }

    /// The last heartbeat.
    #[must_use]
    pub fn heartbeat(&self) -> Timestamp {
        self.heartbeat
    }

    pub(crate) fn is_healthy(&self, op: Operation, now: Timestamp, timeout: Duration) -> bool {
        op.is_healthy_state(self.body.instance.state)
            && heartbeat_healthy(self.heartbeat, now, timeout)
    }
}

impl PartialEq for Replica {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.heartbeat == other.heartbeat
            && (Arc::ptr_eq(&self.body, &other.body) || self.body.instance == other.body.instance)
    }
}

impl Eq for Replica {}

/// The replicas of a key (or of a whole-ring operation) and how many of them may fail.
///
/// Reuse one set across lookups: [`Ring::get`] clears and refills it without allocating once
/// its buffers have grown to the replica count.
#[derive(Clone, Debug, Default)]
pub struct ReplicationSet {
    pub(crate) replicas: Vec<Replica>,
    pub(crate) max_errors: usize,
    pub(crate) max_unavailable_zones: usize,
    pub(crate) zone_aware: bool,
    pub(crate) seen_slots: Vec<u32>,
    pub(crate) seen_zones: Vec<u32>,
}

impl ReplicationSet {
    /// An empty set with room for `replicas` replicas.
    #[must_use]
    pub fn with_capacity(replicas: usize) -> ReplicationSet {
        ReplicationSet {
            replicas: Vec::with_capacity(replicas),
            seen_slots: Vec::with_capacity(replicas),
            seen_zones: Vec::with_capacity(replicas),
            ..ReplicationSet::default()
        }
    }

    /// The healthy replicas, in ring order for a key lookup.
    #[must_use]
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// Number of replicas.
    #[must_use]
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// How many replicas may fail while a quorum still succeeds.
    #[must_use]
    pub fn max_errors(&self) -> usize {
        self.max_errors
    }

    /// How many zones may fail while a quorum still succeeds (zone-aware whole-ring sets only).
    #[must_use]
    pub fn max_unavailable_zones(&self) -> usize {
        self.max_unavailable_zones
    }

    /// Replicas that must succeed: `len - max_errors`.
    #[must_use]
    pub fn min_success(&self) -> usize {
        self.replicas.len() - self.max_errors.min(self.replicas.len())
    }

    /// Whether replica `id` is in the set.
    #[must_use]
    pub fn includes(&self, id: &str) -> bool {
        self.replicas.iter().any(|r| &*r.id == id)
    }

    /// Whether a quorum still succeeds when the replicas `failed` fail: at most `max_errors`
    /// failures, or, for a zone-aware whole-ring set, failures in at most
    /// `max_unavailable_zones` zones. Ids not in the set are ignored.
    #[must_use]
    pub fn tolerates(&self, failed: &[&str]) -> bool {
        let failed: Vec<&Replica> = self
            .replicas
            .iter()
            .filter(|r| failed.contains(&&*r.id))
            .collect();
        if self.zone_aware && self.max_unavailable_zones > 0 {
            let zones: BTreeSet<&str> = failed.iter().map(|r| r.zone()).collect();
            zones.len() <= self.max_unavailable_zones
        } else {
            failed.len() <= self.max_errors
        }
    }

    pub(crate) fn clear(&mut self, zone_aware: bool) {
        self.replicas.clear();
        self.seen_slots.clear();
        self.seen_zones.clear();
        self.max_errors = 0;
        self.max_unavailable_zones = 0;
        self.zone_aware = zone_aware;
    }

    /// dskit's default strategy: drop unhealthy replicas and require a quorum of
    /// `max(replication_factor, picked) / 2 + 1` healthy ones.
    pub(crate) fn filter_for_quorum(
        &mut self,
        op: Operation,
        config: &ReplicationConfig,
        now: Timestamp,
    ) -> Result<(), Error> {
        let factor = config.replication_factor.max(self.replicas.len());
        let min_success = factor / 2 + 1;
        let timeout = config.heartbeat_timeout;
        self.replicas.retain(|r| r.is_healthy(op, now, timeout));
        if self.replicas.len() < min_success {
            let found = self.replicas.len();
            self.replicas.clear();
            return Err(Error::TooFewReplicas {
                needed: min_success,
                found,
                zone_aware: self.zone_aware,
            });
        }
        self.max_errors = self.replicas.len() - min_success;
        Ok(())
    }
}

impl Ring {
    /// Described instances that are not tombstones, in id order.
    fn live_entries(&self) -> impl Iterator<Item = (&InstanceId, &Arc<Body>, Timestamp)> + '_ {
        self.entries.iter().filter_map(|e| {
            let body = e.body.as_ref()?;
            (!body.instance.is_tombstone()).then_some((&e.id, body, e.heartbeat))
        })
    }

    /// The healthy instances for `op` (dskit `GetAllHealthy`), with no error tolerance.
    pub fn all_healthy(
        &self,
        op: Operation,
        now: Timestamp,
        heartbeat_timeout: Duration,
        set: &mut ReplicationSet,
    ) {
        set.clear(false);
        for (id, body, heartbeat) in self.live_entries() {
            let candidate = replica(id, body, heartbeat);
            if candidate.is_healthy(op, now, heartbeat_timeout) {
                set.replicas.push(candidate);
            }
        }
    }

    /// The replication set of an operation over every instance (dskit
    /// `GetReplicationSetForOperation`): all healthy instances, and how many may fail.
    ///
    /// Without zones, `max(instances, rf) - rf / 2` must succeed. With zones, data lives in
    /// `min(zones, rf)` zones, a quorum of them must succeed, every instance of a zone with an
    /// unhealthy instance is dropped, and `max_unavailable_zones` says how many more zones may
    /// fail.
    ///
    /// # Errors
    /// [`Error::EmptyRing`] if no instance owns a token; [`Error::TooManyUnhealthy`] if the
    /// operation cannot reach a quorum.
    pub fn replication_set_for_operation(
        &self,
        op: Operation,
        config: &ReplicationConfig,
        now: Timestamp,
        set: &mut ReplicationSet,
    ) -> Result<(), Error> {
        let zone_aware = config.zone_awareness == ZoneAwareness::Enabled;
        set.clear(zone_aware);
        let table = self.table();
        if table.tokens.is_empty() {
            return Err(Error::EmptyRing);
        }
        let timeout = config.heartbeat_timeout;
        let mut failed_zones = BTreeSet::new();
        let (mut live, mut unhealthy) = (0, 0);
        for (id, body, heartbeat) in self.live_entries() {
            live += 1;
            let candidate = replica(id, body, heartbeat);
            if candidate.is_healthy(op, now, timeout) {
                set.replicas.push(candidate);
            } else {
                failed_zones.insert(body.instance.zone.as_str());
                unhealthy += 1;
            }
        }
        let rf = config.replication_factor;
        let verdict = if zone_aware {
            let tolerated = table.zone_count().min(rf) / 2;
            set.replicas.retain(|r| !failed_zones.contains(r.zone()));
            set.max_unavailable_zones = tolerated.saturating_sub(failed_zones.len());
            (failed_zones.len() <= tolerated)
                .then_some(())
                .ok_or(Error::TooManyUnhealthy {
                    unhealthy: failed_zones.len(),
                    tolerated,
                    zone_aware,
                })
        } else {
            let required = live.max(rf) - rf / 2;
            set.max_errors = set.replicas.len().saturating_sub(required);
            (set.replicas.len() >= required)
                .then_some(())
                .ok_or(Error::TooManyUnhealthy {
                    unhealthy,
                    tolerated: live.saturating_sub(required),
                    zone_aware,
                })
        };
        if verdict.is_err() {
            set.clear(zone_aware);
        }
        verdict
    }
}

pub(crate) fn replica(id: &InstanceId, body: &Arc<Body>, heartbeat: Timestamp) -> Replica {
    Replica {
        id: id.clone(),
        body: body.clone(),
        heartbeat,
    }
}
