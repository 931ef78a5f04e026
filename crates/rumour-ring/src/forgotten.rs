//! Instances this replica forgot, remembered for a while so a stale copy cannot bring them back.
//!
//! A `Left` tombstone is forgotten `left_ingesters_timeout` after it arrived (dskit's rule). A
//! node cut off for longer than that still holds the instance live, and when it returns its
//! copy is, to a replica that forgot, a new id. Refusing every old live entry would make
//! replicas diverge (a new node must still learn a crashed instance the others keep), so instead
//! each replica remembers the tombstones it forgot, by id, for [`RETENTION`] and at most
//! `max_instances` of them:
//!
//! - a received description of a remembered id that does not sort above the forgotten tombstone
//!   (the returning node's stale copy) is not merged. If the value went through
//!   [`Mergeable::receive`](crate::Mergeable::receive), the tombstone comes back instead, stamped
//!   fresh (`max(received, stale + 1)`), so it spreads as a change and wins on every replica
//!   that took the stale copy, the returning node's included; it is then forgotten again
//!   everywhere a timeout later;
//! - a received heartbeat alone, or an older tombstone, of a remembered id is dropped;
//! - a description that sorts above the tombstone (the owner registering again) is merged as
//!   usual, and the id is no longer remembered.
//!
//! The memory is local: never encoded, never compared, never part of a digest.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::instance::{Body, Entry, Instance, InstanceId};
use crate::mergeable::Timestamp;

/// How long a forgotten instance is remembered after it was forgotten: a node away for longer
/// than this plus `left_ingesters_timeout` brings it back (24 hours, in milliseconds).
pub(crate) const RETENTION: Timestamp = Timestamp(24 * 60 * 60 * 1000);

/// Forgotten tombstones by instance id, and the earliest sweep that forgot one of them (so a
/// sweep with nothing to expire costs O(1)).
#[derive(Clone, Debug)]
pub(crate) struct Memory {
    ids: BTreeMap<InstanceId, Forgotten>,
    floor: Timestamp,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            ids: BTreeMap::new(),
            floor: Timestamp::MAX,
        }
    }
}

impl Memory {
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Forgets the memory of `id` (it is held again).
    pub(crate) fn remove(&mut self, id: &str) {
        self.ids.remove(id);
    }
}

/// One forgotten tombstone.
#[derive(Clone, Debug)]
pub(crate) struct Forgotten {
    tombstone: Arc<Body>,
    /// The `older_than` of the sweep that forgot it: a local time, only used to age the memory.
    forgotten_at: Timestamp,
}

/// What a merge does with a received entry whose id the ring does not hold.
pub(crate) enum Admit {
    /// Not remembered, or newer than what was forgotten: merge it.
    Take,
    /// A stale copy of a forgotten instance: drop it.
    Refuse,
    /// A stale copy of a forgotten instance: merge this fresh tombstone in its place.
    Restore(Entry),
}

/// Decides on a received `incoming` entry absent from the ring; `received` is the local time
/// the value went through `receive` (zero if it did not).
pub(crate) fn admit(memory: &Memory, incoming: &Entry, received: Timestamp) -> Admit {
    let Some(forgotten) = memory.ids.get(&incoming.id) else {
        return Admit::Take;
    };
    let gone = &forgotten.tombstone.instance;
    match &incoming.body {
        Some(body) if body.instance > *gone => Admit::Take,
        Some(body) if received.0 > 0 && !body.instance.is_tombstone() => {
            let at = Timestamp(
                received.0.max(
                    gone.updated_at
                        .0
                        .max(body.instance.updated_at.0)
                        .saturating_add(1),
                ),
            );
            Admit::Restore(Entry {
                id: incoming.id.clone(),
                body: Some(Body::new(Instance {
                    updated_at: at,
                    ..gone.clone()
                })),
                heartbeat: incoming.heartbeat,
                received,
            })
        }
        _ => Admit::Refuse,
    }
}

/// Remembers the tombstones a sweep with `older_than` is about to forget.
pub(crate) fn remember<'a>(
    memory: &mut Memory,
    forgotten: impl Iterator<Item = &'a Entry>,
    older_than: Timestamp,
) {
    for entry in forgotten {
        if let Some(body) = entry.body.as_ref().filter(|b| b.instance.is_tombstone()) {
            memory.ids.insert(
                entry.id.clone(),
                Forgotten {
                    tombstone: body.clone(),
                    forgotten_at: older_than,
                },
            );
            memory.floor = memory.floor.min(older_than);
        }
    }
}

/// The latest `older_than` at which [`expire`] changes nothing.
pub(crate) fn quiet_until(memory: &Memory, max: usize) -> Timestamp {
    if memory.ids.len() > max {
        return Timestamp(0);
    }
    // `expire` keeps every memory while `older_than - RETENTION <= floor`.
    Timestamp(memory.floor.0.saturating_add(RETENTION.0))
}

/// Forgets memories older than [`RETENTION`] at a sweep with `older_than` and, past `max`
/// memories, the oldest. O(1) when nothing is due.
pub(crate) fn expire(memory: &mut Arc<Memory>, older_than: Timestamp, max: usize) {
    let horizon = Timestamp(older_than.0.saturating_sub(RETENTION.0));
    if memory.floor >= horizon && memory.ids.len() <= max {
        return;
    }
    let memory = Arc::make_mut(memory);
    memory.ids.retain(|_, f| f.forgotten_at >= horizon);
    while memory.ids.len() > max {
        let Some(oldest) = memory
            .ids
            .iter()
            .min_by_key(|(_, f)| f.forgotten_at)
            .map(|(id, _)| id.clone())
        else {
            break;
        };
        memory.ids.remove(&oldest);
    }
    memory.floor = memory
        .ids
        .values()
        .map(|f| f.forgotten_at)
        .min()
        .unwrap_or(Timestamp::MAX);
}
