//! Key lookup: the token table, [`Ring::get`] and ownership.
//!
//! The table is every claimed token sorted, each mapped to the instance that owns it: the
//! claimant that is not `Leaving`, else the one with the smaller id. It is built lazily on the
//! first lookup after a token change and shared by clones; heartbeats and state changes that do
//! not move tokens keep it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Error;
use crate::instance::{Entry, Instance, InstanceId, State};
use crate::mergeable::Timestamp;
use crate::replication::{Operation, ReplicationConfig, ReplicationSet, ZoneAwareness, replica};
use crate::ring::Ring;

/// The size of the token space: ownership fractions are token counts divided by this.
pub const TOKEN_SPACE: u64 = 1 << 32;

/// A token-owning instance in the table.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    /// Position of the instance in the ring's entries.
    pub(crate) entry: u32,
    /// Index of its zone in `TokenTable::zones`.
    pub(crate) zone: u32,
    pub(crate) id: InstanceId,
}

/// Sorted ring tokens and their owners.
#[derive(Clone, Debug)]
pub(crate) struct TokenTable {
    /// Every claimed token, sorted, distinct.
    pub(crate) tokens: Arc<[u32]>,
    /// The slot owning each token.
    pub(crate) owners: Arc<[u32]>,
    /// Token-owning instances in id order.
    pub(crate) slots: Vec<Slot>,
    /// Distinct zones of the slots, sorted (the empty zone included if present).
    pub(crate) zones: Vec<Arc<str>>,
    /// Instances that own at least one token (after conflicts).
    pub(crate) owning_instances: usize,
    /// Distinct zones of the instances that own at least one token.
    pub(crate) owning_zones: usize,
}

/// Every token claim of live instances: the slots (instances with tokens, in id order), their
/// distinct zones (sorted), and one key per claim, `token << 32 | leaving << 31 | slot`, so that
/// sorting the keys puts, for each token, the non-leaving claimant with the smallest id first.
fn claims(entries: &[Entry]) -> (Vec<Slot>, Vec<Arc<str>>, Vec<u64>) {
    fn owning(entry: &Entry) -> Option<&Instance> {
        entry
            .body
            .as_ref()
            .map(|b| &b.instance)
            .filter(|i| i.state != State::Left && !i.tokens.is_empty())
    }
    let mut zone_index: BTreeMap<&str, u32> = BTreeMap::new();
    let mut total = 0;
    for instance in entries.iter().filter_map(owning) {
        zone_index.insert(&instance.zone, 0);
        total += instance.tokens.len();
    }
    let zones: Vec<Arc<str>> = zone_index.keys().map(|z| Arc::from(*z)).collect();
    for (n, index) in zone_index.values_mut().enumerate() {
        *index = n as u32;
    }
    let mut keys = Vec::with_capacity(total);
    let mut slots = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(instance) = owning(entry) else {
            continue;
        };
        let slot = slots.len() as u64;
        let leaving = u64::from(instance.state == State::Leaving) << 31;
        keys.extend(
            instance
                .tokens
                .iter()
                .map(|&t| (u64::from(t) << 32) | leaving | slot),
        );
        slots.push(Slot {
            entry: i as u32,
            zone: zone_index[instance.zone.as_str()],
            id: entry.id.clone(),
        });
    }
    (slots, zones, keys)
}

impl TokenTable {
    /// Builds the table of a ring's entries (sorted by id).
    pub(crate) fn build(entries: &[Entry]) -> TokenTable {
        let (slots, zones, mut keys) = claims(entries);
        keys.sort_unstable();
        // The first key of each token is its owner.
        let mut tokens = Vec::with_capacity(keys.len());
        let mut owners = Vec::with_capacity(keys.len());
        let mut owns = vec![false; slots.len()];
        for key in keys {
            let token = (key >> 32) as u32;
            if tokens.last() != Some(&token) {
                let slot = (key & 0x7fff_ffff) as u32;
                tokens.push(token);
                owners.push(slot);
                owns[slot as usize] = true;
            }
        }
        let mut owning_zones: Vec<u32> = (0..slots.len())
            .filter(|&s| owns[s])
            .map(|s| slots[s].zone)
            .collect();
        owning_zones.sort_unstable();
        owning_zones.dedup();
        TokenTable {
            tokens: tokens.into(),
            owners: owners.into(),
            owning_instances: owns.iter().filter(|&&o| o).count(),
            owning_zones: owning_zones.len(),
            slots,
            zones,
        }
    }

    /// The same table for entries whose positions moved without any token owner changing, or
    /// `None` if an owner is gone (then the table must be rebuilt).
    pub(crate) fn remapped(&self, entries: &[Entry]) -> Option<TokenTable> {
        let mut slots = self.slots.clone();
        for slot in &mut slots {
            let i = entries.binary_search_by(|e| e.id.cmp(&slot.id)).ok()?;
            let body = entries[i].body.as_ref()?;
            if body.instance.state == State::Left || body.instance.tokens.is_empty() {
                return None;
            }
            slot.entry = i as u32;
        }
        Some(TokenTable {
            slots,
            ..self.clone()
        })
    }

    /// Number of distinct zones among instances owning a token.
    pub(crate) fn zone_count(&self) -> usize {
        self.owning_zones
    }

    /// Tokens owned by each slot, as a count of the token space: a token owns the keys from its
    /// predecessor (inclusive) up to itself (exclusive). With `by_zone`, each zone is its own
    /// ring.
    fn owned(&self, by_zone: bool) -> Vec<u64> {
        let mut owned = vec![0u64; self.slots.len()];
        let groups = if by_zone { self.zones.len() } else { 1 };
        let group_of = |slot: u32| {
            if by_zone {
                self.slots[slot as usize].zone as usize
            } else {
                0
            }
        };
        // Last token of each group, to wrap around.
        let mut last = vec![None; groups];
        for (&token, &slot) in self.tokens.iter().zip(self.owners.iter()) {
            last[group_of(slot)] = Some(token);
        }
        let mut previous = last;
        for (&token, &slot) in self.tokens.iter().zip(self.owners.iter()) {
            let group = group_of(slot);
            let range = match previous[group] {
                Some(p) if p < token => u64::from(token - p),
                Some(p) => TOKEN_SPACE - u64::from(p - token),
                None => TOKEN_SPACE,
            };
            owned[slot as usize] += range;
            previous[group] = Some(token);
        }
        owned
    }
}

impl Ring {
    /// Finds the replicas of `key`: walks clockwise from the first token strictly greater than
    /// the key, picking distinct instances (and, zone-aware, at most one per zone) until
    /// `replication_factor` are found, extending the set by one for every instance whose state
    /// makes `op` extend; then drops unhealthy replicas and checks that a quorum
    /// (`max(rf, picked) / 2 + 1`) is healthy.
    ///
    /// `set` is cleared and refilled; once its buffers have grown, a lookup allocates nothing
    /// (the token table is built on the first lookup after a token change).
    ///
    /// # Errors
    /// [`Error::EmptyRing`] if no instance owns a token; [`Error::TooFewReplicas`] if fewer
    /// healthy replicas than a quorum were found (the set is then empty).
    pub fn get(
        &self,
        key: u32,
        op: Operation,
        config: &ReplicationConfig,
        now: Timestamp,
        set: &mut ReplicationSet,
    ) -> Result<(), Error> {
        let zone_aware = config.zone_awareness == ZoneAwareness::Enabled;
        set.clear(zone_aware);
        let table = self.table();
        let count = table.tokens.len();
        if count == 0 {
            return Err(Error::EmptyRing);
        }
        let mut wanted = config.replication_factor;
        let max_zones = table.owning_zones;
        let mut i = table.tokens.partition_point(|&t| t <= key);
        for _ in 0..count {
            if set.seen_slots.len() >= wanted.min(table.owning_instances)
                || set.seen_zones.len() >= max_zones
            {
                break;
            }
            if i == count {
                i = 0;
            }
            let slot_index = table.owners[i];
            i += 1;
            if set.seen_slots.contains(&slot_index) {
                continue;
            }
            let slot = &table.slots[slot_index as usize];
            let limited_zone = zone_aware && !table.zones[slot.zone as usize].is_empty();
            if limited_zone && set.seen_zones.contains(&slot.zone) {
                continue;
            }
            set.seen_slots.push(slot_index);
            let entry = &self.entries[slot.entry as usize];
            let Some(body) = &entry.body else { continue };
            if op.extends_on(body.instance.state) {
                wanted += 1;
            } else if limited_zone {
                set.seen_zones.push(slot.zone);
            }
            set.replicas.push(replica(&entry.id, body, entry.heartbeat));
        }
        set.filter_for_quorum(op, config, now)
    }

    /// Builds the token table now if it is not cached, so that the next lookup does not pay
    /// for it (it is otherwise built by the first lookup after a token change).
    pub fn prepare_lookup(&self) {
        let _ = self.table();
    }

    /// Every claimed token in the ring, sorted (each once, whoever owns it).
    #[must_use]
    pub fn all_tokens(&self) -> Arc<[u32]> {
        self.table().tokens.clone()
    }

    /// The fraction of the token space each live instance owns, in id order (instances without
    /// tokens own 0). The fractions sum to 1 when any instance owns a token.
    #[must_use]
    pub fn ownership(&self) -> Vec<(String, f64)> {
        self.ownership_with(false)
    }

    /// Like [`Ring::ownership`], but each instance's fraction is of its own zone's ring (what
    /// matters under zone-aware replication).
    #[must_use]
    pub fn ownership_within_zones(&self) -> Vec<(String, f64)> {
        self.ownership_with(true)
    }

    fn ownership_with(&self, by_zone: bool) -> Vec<(String, f64)> {
        let table = self.table();
        let owned = table.owned(by_zone);
        let mut by_id: BTreeMap<&str, u64> = BTreeMap::new();
        for (slot, amount) in table.slots.iter().zip(owned) {
            by_id.insert(&slot.id, amount);
        }
        self.instances()
            .filter(|i| i.state() != State::Left)
            .map(|i| {
                let amount = by_id.get(i.id()).copied().unwrap_or(0);
                (i.id().to_owned(), amount as f64 / TOKEN_SPACE as f64)
            })
            .collect()
    }

    /// The claimed tokens in `zone` (all zones if `None`) with a dense owner number per
    /// instance, sorted by token: the input of the spread token generator.
    pub(crate) fn owned_tokens(&self, zone: Option<&str>) -> (Vec<(u32, u32)>, usize) {
        let table = self.table();
        let zone_index = zone.map(|z| table.zones.iter().position(|x| &**x == z));
        let mut dense = vec![u32::MAX; table.slots.len()];
        let mut next = 0u32;
        let mut out = Vec::new();
        for (&token, &slot) in table.tokens.iter().zip(table.owners.iter()) {
            let in_zone = match zone_index {
                None => true,
                Some(None) => false,
                Some(Some(z)) => table.slots[slot as usize].zone as usize == z,
            };
            if in_zone {
                let owner = &mut dense[slot as usize];
                if *owner == u32::MAX {
                    *owner = next;
                    next += 1;
                }
                out.push((token, *owner));
            }
        }
        (out, next as usize)
    }
}
