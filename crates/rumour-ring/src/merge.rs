//! Merge rules of the ring.
//!
//! Per instance id, two parts merge independently:
//!
//! - the description keeps the greater [`Instance`] under its total order
//!   `(updated_at, state, addr, zone, tokens, registered_at, read_only, read_only_updated_at,
//!   versions)`: a newer write wins, and at equal `updated_at` a `Left` tombstone wins (dskit's
//!   rule), any other tie being decided by content;
//! - the heartbeat keeps the maximum.
//!
//! Both are joins of a total order, so the merge is idempotent, commutative and associative on
//! the resulting state. The returned change holds, for every id where something changed, the new
//! description (with the current heartbeat) or only the new heartbeat: merged into a replica that
//! had the receiver's old state, it gives the receiver's new state.
//!
//! In a local compare-and-swap (`local_cas = Some(now)`), `other` is the full desired state:
//!
//! - a described instance missing from it becomes a `Left` tombstone without tokens, written at
//!   `max(now, stored updated_at + 1)`, so no older message can resurrect it;
//! - a desired description whose content differs from the stored one always wins, with a fresh
//!   stamp: its `updated_at` becomes `max(now, stored + 1, desired)`. So a description edited
//!   from a stale read (keeping the old `updated_at`, which may still sort above the stored one
//!   by content) is stamped now and is not lost to a concurrent remote change stamped later, and
//!   no caller ever needs to wait for the clock to move;
//! - a desired description equal in content to the stored one changes nothing.
//!
//! Token conflicts are not resolved by rewriting descriptions: every instance keeps the tokens it
//! claims, and the lookup table gives a contested token to the claimant that is not `Leaving`,
//! else to the smaller id. That rule is a pure function of the merged state, so it cannot depend
//! on the order in which updates arrived.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::forgotten::{self, Admit};
use crate::instance::{Body, Entry, Instance, InstanceId};
use crate::mergeable::{Timestamp, Tombstones};
use crate::position::Positions;
use crate::ring::{HEARTBEAT_SUFFIX, Impact, Ring, table_impact};

/// See the module documentation.
pub(crate) fn merge(ring: &mut Ring, other: &Ring, local_cas: Option<Timestamp>) -> Option<Ring> {
    if Arc::ptr_eq(&ring.entries, &other.entries) {
        return None;
    }
    match local_cas {
        None => merge_received(ring, other),
        Some(now) => merge_cas(ring, other, now),
    }
}

/// The written description if `incoming` wins over `stored` in the plain merge.
fn join_body(stored: Option<&Arc<Body>>, incoming: Option<&Arc<Body>>) -> Option<Arc<Body>> {
    let incoming = incoming?;
    match stored {
        None => Some(incoming.clone()),
        Some(s) if Arc::ptr_eq(s, incoming) => None,
        Some(s) => (incoming.instance > s.instance).then(|| incoming.clone()),
    }
}

/// A version strictly newer than `stored`, and not older than `now`.
fn bump(stored: Timestamp, now: Timestamp) -> Timestamp {
    Timestamp(now.0.max(stored.0.saturating_add(1)))
}

/// The written description if the desired one changes the stored one in a local CAS.
fn cas_body(
    stored: Option<&Arc<Body>>,
    desired: Option<&Arc<Body>>,
    now: Timestamp,
) -> Option<Arc<Body>> {
    let desired = desired?;
    let Some(stored) = stored else {
        return Some(desired.clone());
    };
    if Arc::ptr_eq(stored, desired) || desired.instance.same_content(&stored.instance) {
        return None;
    }
    // Every local content change is stamped fresh: above the stored stamp and not older than
    // now, even when the desired description already sorts higher (an edit made from a stale
    // read must not keep the stale stamp and lose to a concurrent remote change stamped later).
    let at = bump(stored.instance.updated_at, now).max(desired.instance.updated_at);
    if at == desired.instance.updated_at {
        Some(desired.clone())
    } else {
        Some(Body::new(Instance {
            updated_at: at,
            ..desired.instance.clone()
        }))
    }
}

/// The tombstone replacing a live instance missing from the desired state of a local CAS.
fn cas_missing(stored: &Entry, now: Timestamp) -> Option<Arc<Body>> {
    let body = stored.body.as_ref()?;
    if body.instance.is_tombstone() {
        return None;
    }
    let at = bump(body.instance.updated_at, now);
    Some(Body::new(body.instance.tombstone(at)))
}

/// Merges one incoming entry into an optional stored one. Returns the merged entry and the
/// change entry, or `None` when nothing changed.
fn merge_entry(
    stored: Option<&Entry>,
    incoming: &Entry,
    local_cas: Option<Timestamp>,
) -> Option<(Entry, Entry)> {
    let stored_body = stored.and_then(|e| e.body.as_ref());
    let new_body = match local_cas {
        None => join_body(stored_body, incoming.body.as_ref()),
        Some(now) => cas_body(stored_body, incoming.body.as_ref(), now),
    };
    let stored_heartbeat = stored.map_or(Timestamp(0), |e| e.heartbeat);
    let heartbeat = stored_heartbeat.max(incoming.heartbeat);
    if new_body.is_none() && heartbeat == stored_heartbeat {
        return None;
    }
    // The local time the merged entry's tombstone (if it is one) ages from: a local write is
    // received now, a received description or ghost heartbeat brings its receive time along.
    let received = match local_cas {
        Some(now) if new_body.is_some() => now,
        _ if new_body.is_some() || stored_body.is_none() => incoming.received,
        _ => stored.map_or(Timestamp(0), |e| e.received),
    };
    let merged = Entry {
        id: incoming.id.clone(),
        body: new_body.clone().or_else(|| stored_body.cloned()),
        heartbeat,
        received,
    };
    let change = Entry {
        id: incoming.id.clone(),
        body: new_body,
        heartbeat,
        received,
    };
    Some((merged, change))
}

/// Merges after which a ring whose entries did not move builds its [`Positions`].
const STABLE_MERGES: u32 = 2;
/// Rings smaller than this are searched without an index (they stay in the caches).
const MIN_INDEXED: usize = 32;

/// A received value: each incoming entry is found through the ring's [`Positions`] when it has
/// them, else by a galloping search from the previous one, and merged in place; new ids are
/// inserted in one pass at the end. A heartbeat change of `m` entries into a ring of `n` costs
/// `O(m)` expected lookups (`O(m log(n / m))` comparisons without the index) and copies nothing,
/// however large the ring.
fn merge_received(ring: &mut Ring, other: &Ring) -> Option<Ring> {
    if ring.positions.is_none()
        && ring.stable_merges >= STABLE_MERGES
        && ring.entries.len() >= MIN_INDEXED
    {
        ring.positions = Some(Arc::new(Positions::build(&ring.entries)));
    }
    ring.stable_merges = ring.stable_merges.saturating_add(1);
    let mut changes = Vec::new();
    let mut impact = Impact::None;
    let mut revived = Vec::new();
    // New entries and the stored position each goes before, in id order.
    let mut inserts: Vec<(usize, Entry)> = Vec::new();
    let mut from = 0;
    // Entries do not move before the loop ends (new ones are inserted after it).
    let indexed_all = ring
        .positions
        .as_ref()
        .map(|p| p.find_all(&ring.entries, &other.entries));
    for (n, incoming) in other.entries.iter().enumerate() {
        let indexed = indexed_all.as_ref().and_then(|all| all[n]);
        let position = indexed.map_or_else(|| gallop(&ring.entries, from, &incoming.id), Ok);
        from = match position {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        let restored;
        let incoming = match position {
            Ok(_) => incoming,
            // A new id past the limit is not added.
            Err(_) if ring.entries.len() + inserts.len() >= ring.limits.max_instances => {
                ring.refused_instances += 1;
                continue;
            }
            // A new id may be a stale copy of an instance forgotten here.
            Err(_) => match forgotten::admit(&ring.forgotten, incoming, other.received_at) {
                Admit::Take => incoming,
                Admit::Refuse => continue,
                Admit::Restore(tombstone) => {
                    restored = tombstone;
                    &restored
                }
            },
        };
        let stored = position.ok().map(|i| &ring.entries[i]);
        let Some((merged, change)) = merge_entry(stored, incoming, None) else {
            continue;
        };
        if merged.is_tombstone() || stored.is_some_and(Entry::is_tombstone) {
            ring.tombstones = None;
        }
        match position {
            Ok(i) => {
                impact = impact.max(table_impact(
                    ring.entries[i].body.as_ref(),
                    merged.body.as_ref(),
                ));
                Arc::make_mut(&mut ring.entries)[i] = merged;
            }
            Err(i) => {
                if !ring.forgotten.is_empty() {
                    revived.push(incoming.id.clone());
                }
                impact = impact
                    .max(Impact::Shifted)
                    .max(table_impact(None, merged.body.as_ref()));
                inserts.push((i, merged));
            }
        }
        changes.push(change);
    }
    // Entries that did not move keep their index, even when a description changed the table.
    let kept = if inserts.is_empty() {
        ring.positions.clone().map(|p| (p, ring.stable_merges))
    } else {
        None
    };
    if !inserts.is_empty() {
        let entries = Arc::make_mut(&mut ring.entries);
        let stored = std::mem::take(entries);
        entries.reserve_exact(stored.len() + inserts.len());
        let mut inserts = inserts.into_iter().peekable();
        for (i, entry) in stored.into_iter().enumerate() {
            while let Some((_, new)) = inserts.next_if(|(at, _)| *at == i) {
                entries.push(new);
            }
            entries.push(entry);
        }
        entries.extend(inserts.map(|(_, new)| new));
    }
    unremember(ring, &revived);
    let change = finish(ring, changes, impact);
    if let (None, Some((positions, stable))) = (&ring.positions, kept) {
        ring.positions = Some(positions);
        ring.stable_merges = stable;
    }
    change
}

/// The join of `rings` ([`crate::Mergeable::join`]): their entries sorted by id (a stable sort,
/// so among equal ids the earlier ring's entry comes first, as the stored side of a merge), and
/// each run of one id folded by [`merge_entry`], the rule of [`merge_received`]. The result has
/// the first ring's limits and local state. Rings that remember forgotten instances, or that
/// hold more entries between them than the first ring's limit (where a merge would refuse new
/// ids), are joined by merging instead, so the result is always what merging gives.
pub(crate) fn join(rings: &[&Ring]) -> Option<Ring> {
    let first = rings.first()?;
    let total: usize = rings.iter().map(|r| r.entries.len()).sum();
    if total > first.limits.max_instances || rings.iter().any(|r| !r.forgotten.is_empty()) {
        return crate::mergeable::join_by_merging(rings);
    }
    let mut all: Vec<&Entry> = Vec::with_capacity(total);
    for ring in rings {
        all.extend(ring.entries.iter());
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let mut entries: Vec<Entry> = Vec::with_capacity(total);
    for entry in all {
        match entries.last_mut() {
            Some(last) if last.id == entry.id => {
                if let Some((merged, _)) = merge_entry(Some(last), entry, None) {
                    *last = merged;
                }
            }
            _ => entries.push(entry.clone()),
        }
    }
    let mut joined = Ring::from_entries(entries);
    joined.limits = first.limits;
    joined.received_at = first.received_at;
    Some(joined)
}

/// The position of `id` in `entries` (sorted by id), or where it would go, searching from
/// `from` (which no earlier position follows) with steps that double: `O(log d)` comparisons
/// for a position `d` entries on.
fn gallop(entries: &[Entry], from: usize, id: &str) -> Result<usize, usize> {
    let rest = &entries[from..];
    let mut bound = 1;
    while bound < rest.len() && *rest[bound - 1].id < *id {
        bound *= 2;
    }
    let low = bound / 2;
    let window = &rest[low..bound.min(rest.len())];
    match window.binary_search_by(|e| (*e.id).cmp(id)) {
        Ok(i) => Ok(from + low + i),
        Err(i) => Err(from + low + i),
    }
}

/// Forgets the memories of forgotten instances that are held again.
fn unremember(ring: &mut Ring, ids: &[InstanceId]) {
    if !ids.is_empty() {
        let memory = Arc::make_mut(&mut ring.forgotten);
        for id in ids {
            memory.remove(id);
        }
    }
}

/// A local compare-and-swap: a merge-join of both sorted entry lists, since every stored entry
/// missing from the desired state changes too; the result vector is only built once something
/// changes.
fn merge_cas(ring: &mut Ring, other: &Ring, now: Timestamp) -> Option<Ring> {
    let (a, b) = (&ring.entries[..], &other.entries[..]);
    let mut out: Option<Vec<Entry>> = None;
    let mut changes = Vec::new();
    let mut impact = Impact::None;
    let (mut i, mut j) = (0, 0);
    loop {
        let (stored, incoming) = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => match x.id.cmp(&y.id) {
                Ordering::Less => (Some(x), None),
                Ordering::Greater => (None, Some(y)),
                Ordering::Equal => (Some(x), Some(y)),
            },
            (Some(x), None) => (Some(x), None),
            (None, Some(y)) => (None, Some(y)),
            (None, None) => break,
        };
        // Local writes are not bounded by the limits, nor refused as forgotten.
        let merged = match (stored, incoming) {
            (Some(s), None) => cas_missing(s, now).map(|body| {
                let entry = Entry {
                    body: Some(body),
                    received: now,
                    ..s.clone()
                };
                (entry.clone(), entry)
            }),
            (s, Some(inc)) => merge_entry(s, inc, Some(now)),
            (None, None) => None,
        };
        match merged {
            Some((entry, change)) => {
                if entry.is_tombstone() || stored.is_some_and(Entry::is_tombstone) {
                    ring.tombstones = None;
                }
                impact = impact.max(match stored {
                    Some(s) => table_impact(s.body.as_ref(), entry.body.as_ref()),
                    None => table_impact(None, entry.body.as_ref()).max(Impact::Shifted),
                });
                out.get_or_insert_with(|| {
                    let mut v = Vec::with_capacity(a.len() + b.len() - j);
                    v.extend_from_slice(&a[..i]);
                    v
                })
                .push(entry);
                changes.push(change);
            }
            None => {
                if let (Some(v), Some(s)) = (out.as_mut(), stored) {
                    v.push(s.clone());
                }
            }
        }
        if stored.is_some() {
            i += 1;
        }
        if incoming.is_some() {
            j += 1;
        }
    }
    if let Some(entries) = out {
        ring.entries = Arc::new(entries);
    }
    finish(ring, changes, impact)
}

fn finish(ring: &mut Ring, changes: Vec<Entry>, impact: Impact) -> Option<Ring> {
    if changes.is_empty() {
        return None;
    }
    ring.refresh_table(impact);
    Some(Ring::from_entries(changes))
}

/// See [`crate::Mergeable::remove_tombstones`] for the ring. Every merge into a stored value
/// calls this, so the tombstone count and the earliest age base are cached on the ring
/// ([`Ring::tombstones`]): when nothing can expire the call does not look at the entries.
pub(crate) fn remove_tombstones(ring: &mut Ring, older_than: Timestamp) -> Tombstones {
    // A sweep (not a read stripping every tombstone) remembers what it forgets, and forgets
    // old memories even when no tombstone expires.
    let sweep = older_than != Timestamp::MAX;
    if sweep && !ring.forgotten.is_empty() {
        forgotten::expire(&mut ring.forgotten, older_than, ring.limits.max_instances);
    }
    let (count, floor) = *ring
        .tombstones
        .get_or_insert_with(|| tombstone_summary(&ring.entries));
    // An entry expires when its age base is before `older_than`; none is before `floor`.
    if count == 0 || (older_than != Timestamp::MAX && older_than <= floor) {
        return Tombstones {
            remaining: count,
            removed: 0,
        };
    }
    let expired = |e: &Entry| {
        e.is_tombstone() && (older_than == Timestamp::MAX || e.tombstone_age_base() < older_than)
    };
    let mut counts = Tombstones::default();
    for entry in ring.entries.iter().filter(|e| e.is_tombstone()) {
        if expired(entry) {
            counts.removed += 1;
        } else {
            counts.remaining += 1;
        }
    }
    if counts.removed > 0 {
        if sweep {
            let forgotten = ring.entries.iter().filter(|e| expired(e));
            forgotten::remember(Arc::make_mut(&mut ring.forgotten), forgotten, older_than);
            forgotten::expire(&mut ring.forgotten, older_than, ring.limits.max_instances);
        }
        Arc::make_mut(&mut ring.entries).retain(|e| !expired(e));
        ring.refresh_table(Impact::Shifted);
        ring.tombstones = Some(tombstone_summary(&ring.entries));
    }
    counts
}

/// See [`crate::Mergeable::tombstones_quiet_until`] for the ring.
pub(crate) fn tombstones_quiet_until(ring: &Ring) -> Timestamp {
    // An entry expires when its age base is before `older_than`: not while `older_than` is at
    // most the earliest age base.
    let Some((count, floor)) = ring.tombstones else {
        return Timestamp(0);
    };
    let tombstones = if count == 0 { Timestamp::MAX } else { floor };
    tombstones.min(forgotten::quiet_until(
        &ring.forgotten,
        ring.limits.max_instances,
    ))
}

/// The number of tombstones in `entries` and the earliest time one ages from.
fn tombstone_summary(entries: &[Entry]) -> (usize, Timestamp) {
    entries
        .iter()
        .filter(|e| e.is_tombstone())
        .fold((0, Timestamp::MAX), |(n, floor), e| {
            (n + 1, floor.min(e.tombstone_age_base()))
        })
}

/// See [`crate::Mergeable::receive`] for the ring: refuses descriptions and heartbeats stamped
/// after `latest`, then stamps the remaining tombstones (`Left` descriptions, ghosts) with `now`.
pub(crate) fn receive(ring: &mut Ring, now: Timestamp, latest: Timestamp) -> usize {
    ring.received_at = now;
    let future = |body: &Arc<Body>| {
        let i = &body.instance;
        i.updated_at > latest || i.registered_at > latest || i.read_only_updated_at > latest
    };
    let needs_work = ring
        .entries
        .iter()
        .any(|e| e.heartbeat > latest || e.body.as_ref().is_some_and(future) || e.is_tombstone());
    if !needs_work {
        return 0;
    }
    let mut refused = 0;
    ring.tombstones = None;
    let entries = Arc::make_mut(&mut ring.entries);
    for entry in entries.iter_mut() {
        if entry.body.as_ref().is_some_and(future) {
            entry.body = None;
            refused += 1;
        }
        if entry.heartbeat > latest {
            entry.heartbeat = Timestamp(0);
            refused += 1;
        }
        if entry.is_tombstone() {
            entry.received = now;
        }
    }
    // An entry left with neither a description nor a heartbeat carries nothing.
    entries.retain(|e| e.body.is_some() || e.heartbeat.0 > 0);
    ring.refresh_table(Impact::Tokens);
    refused
}

/// The sub-ring holding the named entries: an instance id selects the whole entry, a heartbeat
/// name (`"{id} heartbeat"`) only the heartbeat. Unknown names are skipped.
pub(crate) fn select(ring: &Ring, names: &[String]) -> Ring {
    let mut wanted: Vec<(&str, bool)> = names
        .iter()
        .map(|name| match name.strip_suffix(HEARTBEAT_SUFFIX) {
            Some(id) => (id, false),
            None => (name.as_str(), true),
        })
        .collect();
    // Whole entries sort after heartbeat-only requests of the same id; keep the last.
    wanted.sort_unstable();
    let mut entries: Vec<Entry> = Vec::with_capacity(wanted.len());
    for (k, &(id, whole)) in wanted.iter().enumerate() {
        if wanted.get(k + 1).is_some_and(|next| next.0 == id) {
            continue;
        }
        let Ok(i) = ring.find(id) else { continue };
        let entry = &ring.entries[i];
        if whole {
            entries.push(entry.clone());
        } else if entry.heartbeat.0 > 0 {
            entries.push(Entry {
                body: None,
                ..entry.clone()
            });
        }
    }
    Ring::from_entries(entries)
}
