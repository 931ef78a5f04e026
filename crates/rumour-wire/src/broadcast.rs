//! A transmit-limited broadcast queue: what gets piggybacked on outgoing packets.
//!
//! This is memberlist's `TransmitLimitedQueue`, bounded. Every queued [`Broadcast`] is sent up to
//! [`retransmit_limit`] times (`retransmit_mult * ceil(log10(n + 1))` for `n` members, with the
//! broadcast's own [`Broadcast::retransmit_mult`] if it has one). A fill
//! takes broadcasts in order of fewest transmits first, then largest first, then newest first,
//! skipping those that do not fit the remaining budget. A broadcast invalidates the queued ones
//! filed under its key (or under the keys of its [`Broadcast::scope`]) that it
//! [`Broadcast::invalidates`] (for membership: always, so there is one pending update per
//! member). The queue holds at most `capacity` broadcasts; past that it drops
//! the most-transmitted one and counts the drop.
//!
//! The queue is generic: SWIM queues membership updates in it, the gossip crate KV changes.
//!
//! ```
//! use bytes::Bytes;
//! use rumour_wire::{Broadcast, BroadcastQueue};
//!
//! #[derive(Clone)]
//! struct Update { member: String, bytes: Bytes }
//! impl Broadcast for Update {
//!     type Key = String;
//!     fn key(&self) -> &String { &self.member }
//!     fn payload(&self) -> &[u8] { &self.bytes }
//! }
//!
//! let mut queue = BroadcastQueue::new(4, 1024);
//! queue.enqueue(Update { member: "a".into(), bytes: Bytes::from_static(b"alive a 1") });
//! queue.enqueue(Update { member: "a".into(), bytes: Bytes::from_static(b"alive a 2") });
//! assert_eq!(queue.len(), 1); // the newer update for `a` replaced the older one
//!
//! // Fill a 100-byte packet in a 3-member cluster; each message costs its length + 1.
//! let batch = queue.fill(3, 100, |len| len + 1);
//! assert_eq!(&batch[0].bytes[..], b"alive a 2");
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::scale::retransmit_limit;

/// Something to disseminate: a payload and the key that names its subject.
pub trait Broadcast: Clone {
    /// What the broadcast is about (a member name, a KV key).
    type Key: Ord + Clone;

    /// The subject of this broadcast.
    fn key(&self) -> &Self::Key;

    /// The bytes to send.
    fn payload(&self) -> &[u8];

    /// Whether this (newer) broadcast makes `older`, queued under one of the keys of its
    /// [`Broadcast::scope`], obsolete. The default says yes: one pending broadcast per key.
    fn invalidates(&self, older: &Self) -> bool {
        let _ = older;
        true
    }

    /// Calls `f` with every key under which a queued broadcast that this one
    /// [`invalidates`](Broadcast::invalidates) may be filed (a broadcast is filed under its
    /// [`key`](Broadcast::key)). The default is the broadcast's own key. A type whose keys are
    /// shared by many queued broadcasts (every change of one KV value) files each under a finer
    /// key and names here every finer key an invalidated one can have, so that queueing one
    /// broadcast does not compare it with the whole queue.
    fn scope(&self, f: &mut dyn FnMut(&Self::Key)) {
        f(self.key());
    }

    /// This broadcast's own retransmit multiplier, in place of the queue's: a broadcast that
    /// only refreshes what peers will soon hear again (a heartbeat) need not be repeated as
    /// often as one they would otherwise miss. The default is `None`: the queue's multiplier.
    fn retransmit_mult(&self) -> Option<u32> {
        None
    }
}

/// Counters of a [`BroadcastQueue`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Broadcasts enqueued.
    pub enqueued: u64,
    /// Queued broadcasts replaced by a newer one.
    pub invalidated: u64,
    /// Broadcasts dropped because the queue was full.
    pub dropped: u64,
    /// Broadcasts that reached their retransmit limit.
    pub finished: u64,
    /// Broadcasts handed out by [`BroadcastQueue::fill`] (counting each transmit).
    pub transmitted: u64,
}

/// A queued broadcast in its slot, with what places it in the sending order.
#[derive(Clone)]
struct Queued<B> {
    broadcast: B,
    transmits: u32,
    /// Enqueue order: newer broadcasts have higher ids.
    id: u64,
}

impl<B: Broadcast> Queued<B> {
    fn len(&self) -> usize {
        self.broadcast.payload().len()
    }

    fn rank(&self, slot: u32) -> Rank {
        (self.transmits, Reverse(self.len()), Reverse(self.id), slot)
    }
}

/// Position of a queued broadcast in sending order: fewest transmits, largest, newest first;
/// then the slot it is stored in (never decisive: ids are distinct).
type Rank = (u32, Reverse<usize>, Reverse<u64>, u32);

/// A bounded, transmit-limited queue of broadcasts. See the module documentation.
///
/// Broadcasts live in slots of a vector (freed slots are reused), so the sending order and the
/// key index refer to them by slot and reach one without a search.
#[derive(Clone)]
pub struct BroadcastQueue<B: Broadcast> {
    retransmit_mult: u32,
    capacity: usize,
    next_id: u64,
    order: BTreeSet<Rank>,
    slots: Vec<Option<Queued<B>>>,
    /// Slots holding nothing.
    free: Vec<u32>,
    /// Broadcasts queued.
    len: usize,
    by_key: BTreeMap<B::Key, Vec<u32>>,
    /// How many queued broadcasts have each payload length (to know the smallest one).
    lengths: BTreeMap<usize, usize>,
    /// Sum of the queued payload lengths.
    payload_bytes: usize,
    stats: QueueStats,
}

/// Queued broadcasts in a row that may not fit before a fill gives up on the packet: bounds the
/// work of one fill when the room left is smaller than most of the queue.
const MAX_MISSES: usize = 32;

impl<B: Broadcast> BroadcastQueue<B> {
    /// An empty queue sending each broadcast `retransmit_mult * ceil(log10(n + 1))` times and
    /// holding at most `capacity` broadcasts (at least one).
    #[must_use]
    pub fn new(retransmit_mult: u32, capacity: usize) -> Self {
        BroadcastQueue {
            retransmit_mult,
            capacity: capacity.max(1),
            next_id: 0,
            order: BTreeSet::new(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            by_key: BTreeMap::new(),
            lengths: BTreeMap::new(),
            payload_bytes: 0,
            stats: QueueStats::default(),
        }
    }

    fn queued(&self, slot: u32) -> &Queued<B> {
        self.slots[slot as usize]
            .as_ref()
            .expect("indexed slots are full")
    }

    /// Queues `broadcast`, first removing the queued broadcasts with the same key that it
    /// invalidates. If the queue is then over capacity, the most-transmitted broadcast is
    /// dropped (and counted).
    pub fn enqueue(&mut self, broadcast: B) {
        self.stats.enqueued += 1;
        let key = broadcast.key().clone();
        let mut stale: Vec<u32> = Vec::new();
        broadcast.scope(&mut |scope| {
            if let Some(slots) = self.by_key.get(scope) {
                stale.extend(
                    slots
                        .iter()
                        .copied()
                        .filter(|&slot| broadcast.invalidates(&self.queued(slot).broadcast)),
                );
            }
        });
        stale.sort_unstable();
        stale.dedup();
        for slot in stale {
            self.remove(slot);
            self.stats.invalidated += 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        let len = broadcast.payload().len();
        let queued = Queued {
            broadcast,
            transmits: 0,
            id,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(queued);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("a queue holds below 2^32");
                self.slots.push(Some(queued));
                slot
            }
        };
        self.len += 1;
        self.order.insert(self.queued(slot).rank(slot));
        *self.lengths.entry(len).or_default() += 1;
        self.payload_bytes += len;
        self.by_key.entry(key).or_default().push(slot);
        while self.len > self.capacity {
            let &(.., worst) = self.order.last().expect("queue is not empty");
            self.remove(worst);
            self.stats.dropped += 1;
        }
    }

    /// Takes the broadcasts to send in one packet: fewest transmits first, largest first, each
    /// only if `cost(payload_len)` fits what is left of `budget`. `members` is the cluster size
    /// used for the retransmit limit. Each broadcast taken counts one transmit; those that reach
    /// the limit leave the queue.
    pub fn fill(&mut self, members: usize, budget: usize, cost: impl Fn(usize) -> usize) -> Vec<B> {
        self.fill_with(members, budget, cost, B::clone)
    }

    /// [`BroadcastQueue::fill`], handing out `take` of each broadcast taken instead of a clone
    /// of it (the payload alone, say).
    pub fn fill_with<T>(
        &mut self,
        members: usize,
        budget: usize,
        cost: impl Fn(usize) -> usize,
        mut take: impl FnMut(&B) -> T,
    ) -> Vec<T> {
        let default_mult = self.retransmit_mult;
        let limit =
            |b: &B| retransmit_limit(b.retransmit_mult().unwrap_or(default_mult), members).max(1);
        let mut remaining = budget;
        let mut taken = Vec::new();
        let mut misses = 0;
        // Nothing leaves the queue during the scan, so the smallest queued length holds.
        let smallest = self
            .lengths
            .keys()
            .next()
            .map_or(usize::MAX, |&len| cost(len));
        for &rank in &self.order {
            if remaining < smallest || misses >= MAX_MISSES {
                break;
            }
            let c = cost(rank.1.0);
            if c <= remaining {
                remaining -= c;
                taken.push(rank);
                misses = 0;
            } else {
                misses += 1;
            }
        }
        let mut out = Vec::with_capacity(taken.len());
        for rank in taken {
            let slot = rank.3;
            self.order.remove(&rank);
            let item = self.slots[slot as usize]
                .as_mut()
                .expect("ranked slots are full");
            item.transmits += 1;
            out.push(take(&item.broadcast));
            self.stats.transmitted += 1;
            if item.transmits >= limit(&item.broadcast) {
                self.remove_unranked(slot);
                self.stats.finished += 1;
            } else {
                let rank = item.rank(slot);
                self.order.insert(rank);
            }
        }
        out
    }

    /// Drops the most-transmitted broadcasts until at most `max_retain` remain; returns how many
    /// were dropped (also counted in [`QueueStats::dropped`]).
    pub fn prune(&mut self, max_retain: usize) -> usize {
        let mut dropped = 0;
        while self.len > max_retain {
            let &(.., worst) = self.order.last().expect("queue is not empty");
            self.remove(worst);
            dropped += 1;
        }
        self.stats.dropped += dropped as u64;
        dropped
    }

    /// Forgets every queued broadcast.
    pub fn clear(&mut self) {
        self.order.clear();
        self.slots.clear();
        self.free.clear();
        self.len = 0;
        self.by_key.clear();
        self.lengths.clear();
        self.payload_bytes = 0;
    }

    /// Number of queued broadcasts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The sum of the queued payloads' lengths.
    #[must_use]
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// Whether nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The queued broadcasts, in sending order.
    pub fn iter(&self) -> impl Iterator<Item = &B> {
        self.order
            .iter()
            .map(|&(.., slot)| &self.queued(slot).broadcast)
    }

    /// The queue's counters.
    #[must_use]
    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// The retransmit multiplier.
    #[must_use]
    pub fn retransmit_mult(&self) -> u32 {
        self.retransmit_mult
    }

    /// Removes the broadcast in `slot`, which is in the sending order.
    fn remove(&mut self, slot: u32) {
        let rank = self.queued(slot).rank(slot);
        self.order.remove(&rank);
        self.remove_unranked(slot);
    }

    /// Removes the broadcast in `slot`, already out of the sending order.
    fn remove_unranked(&mut self, slot: u32) {
        let Some(item) = self.slots[slot as usize].take() else {
            return;
        };
        self.len -= 1;
        if self.len == 0 {
            // Slots left by a burst are given back once it has drained.
            self.slots = Vec::new();
            self.free = Vec::new();
        } else {
            self.free.push(slot);
        }
        let len = item.len();
        self.payload_bytes -= len;
        if let Some(count) = self.lengths.get_mut(&len) {
            *count -= 1;
            if *count == 0 {
                self.lengths.remove(&len);
            }
        }
        let key = item.broadcast.key();
        if let Some(slots) = self.by_key.get_mut(key) {
            slots.retain(|&other| other != slot);
            if slots.is_empty() {
                self.by_key.remove(key);
            }
        }
    }
}

impl<B: Broadcast> std::fmt::Debug for BroadcastQueue<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastQueue")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("stats", &self.stats)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[derive(Clone, Debug)]
    struct Msg {
        key: &'static str,
        version: u32,
        bytes: Bytes,
    }

    impl Broadcast for Msg {
        type Key = &'static str;
        fn key(&self) -> &&'static str {
            &self.key
        }
        fn payload(&self) -> &[u8] {
            &self.bytes
        }
        fn invalidates(&self, older: &Self) -> bool {
            self.version >= older.version
        }
    }

    fn msg(key: &'static str, version: u32, len: usize) -> Msg {
        Msg {
            key,
            version,
            bytes: Bytes::from(vec![b'x'; len]),
        }
    }

    #[test]
    fn newer_broadcast_replaces_older_one_for_same_key() {
        let mut q = BroadcastQueue::new(4, 16);
        q.enqueue(msg("a", 1, 10));
        q.enqueue(msg("a", 2, 10));
        q.enqueue(msg("b", 1, 10));
        assert_eq!(q.len(), 2);
        assert_eq!(
            q.payload_bytes(),
            20,
            "the replaced payload no longer counts"
        );
        assert_eq!(q.stats().invalidated, 1);
        let batch = q.fill(3, 1000, |l| l);
        assert_eq!(
            batch.iter().find(|m| m.key == "a").map(|m| m.version),
            Some(2)
        );
    }

    #[test]
    fn a_freed_slot_is_reused_without_changing_the_order_and_a_drained_queue_gives_all_back() {
        let mut q = BroadcastQueue::new(1, 16);
        q.enqueue(msg("a", 1, 10));
        q.enqueue(msg("b", 1, 10));
        q.enqueue(msg("c", 1, 10));
        // `b`'s replacement takes the slot `b` left: newest, so it is sent first all the same.
        q.enqueue(msg("b", 2, 10));
        assert_eq!(q.slots.len(), 3, "the freed slot was reused");
        let order: Vec<(&str, u32)> = q.iter().map(|m| (m.key, m.version)).collect();
        assert_eq!(order, [("b", 2), ("c", 1), ("a", 1)]);
        let batch = q.fill(3, 15, |l| l);
        assert_eq!((batch[0].key, batch[0].version), ("b", 2));
        // A cluster of 3 sends each broadcast once: two more fills drain the queue.
        let rest: Vec<&str> = [q.fill(3, 15, |l| l), q.fill(3, 15, |l| l)]
            .iter()
            .flatten()
            .map(|m| m.key)
            .collect();
        assert_eq!(rest, ["c", "a"]);
        assert!(q.is_empty());
        assert_eq!(q.payload_bytes(), 0);
        assert_eq!(q.slots.len(), 0, "a drained queue keeps no slots");
        q.enqueue(msg("d", 1, 10));
        assert_eq!(q.fill(3, 15, |l| l)[0].key, "d");
    }

    #[test]
    fn older_broadcast_does_not_replace_newer_one() {
        let mut q = BroadcastQueue::new(4, 16);
        q.enqueue(msg("a", 2, 10));
        q.enqueue(msg("a", 1, 10));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn fill_takes_fewest_transmits_first_and_respects_budget() {
        let mut q = BroadcastQueue::new(1, 16);
        q.enqueue(msg("a", 1, 40));
        q.enqueue(msg("b", 1, 40));
        q.enqueue(msg("c", 1, 40));
        // Budget fits two; with 100 members the limit is 3 transmits.
        let first: Vec<_> = q.fill(100, 100, |l| l + 2).iter().map(|m| m.key).collect();
        assert_eq!(first.len(), 2);
        let second: Vec<_> = q.fill(100, 100, |l| l + 2).iter().map(|m| m.key).collect();
        let unsent = ["a", "b", "c"]
            .into_iter()
            .find(|k| !first.contains(k))
            .unwrap();
        assert_eq!(second[0], unsent, "the never-sent broadcast goes first");
    }

    #[test]
    fn broadcasts_leave_after_the_retransmit_limit() {
        let mut q = BroadcastQueue::new(2, 16);
        q.enqueue(msg("a", 1, 10));
        // 5 members: limit 2 * 1 = 2.
        assert_eq!(q.fill(5, 100, |l| l).len(), 1);
        assert_eq!(q.fill(5, 100, |l| l).len(), 1);
        assert!(q.is_empty());
        assert_eq!(q.stats().finished, 1);
        assert_eq!(q.stats().transmitted, 2);
    }

    #[test]
    fn full_queue_drops_most_transmitted_and_counts_it() {
        let mut q = BroadcastQueue::new(4, 2);
        q.enqueue(msg("a", 1, 10));
        q.fill(100, 10, |l| l); // a has one transmit now
        q.enqueue(msg("b", 1, 10));
        q.enqueue(msg("c", 1, 10));
        assert_eq!(q.len(), 2);
        assert_eq!(q.stats().dropped, 1);
        assert!(q.iter().all(|m| m.key != "a"));
    }

    #[test]
    fn small_broadcast_behind_large_ones_still_fills_the_room_left() {
        let mut q = BroadcastQueue::new(4, 64);
        for key in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            q.enqueue(msg(key, 1, 100));
        }
        q.enqueue(msg("small", 1, 10));
        let batch = q.fill(100, 150, |l| l);
        let keys: Vec<_> = batch.iter().map(|m| m.key).collect();
        assert_eq!(
            keys.len(),
            2,
            "one large and the small one fit 150 bytes: {keys:?}"
        );
        assert!(keys.contains(&"small"));
    }

    #[test]
    fn fill_stops_once_nothing_left_can_fit() {
        let mut q = BroadcastQueue::new(4, 64);
        q.enqueue(msg("a", 1, 50));
        q.enqueue(msg("b", 1, 50));
        assert_eq!(q.fill(100, 40, |l| l).len(), 0);
        assert_eq!(q.len(), 2, "nothing was taken or dropped");
    }

    #[derive(Clone)]
    struct Refresh(Msg, Option<u32>);

    impl Broadcast for Refresh {
        type Key = &'static str;
        fn key(&self) -> &&'static str {
            &self.0.key
        }
        fn payload(&self) -> &[u8] {
            &self.0.bytes
        }
        fn retransmit_mult(&self) -> Option<u32> {
            self.1
        }
    }

    #[test]
    fn a_broadcast_with_its_own_multiplier_leaves_after_its_own_limit() {
        let mut q = BroadcastQueue::new(4, 16);
        q.enqueue(Refresh(msg("heartbeat", 1, 10), Some(1)));
        q.enqueue(Refresh(msg("update", 1, 10), None));
        // 1,000 members: ceil(log10(1001)) = 4, so 1 x 4 and 4 x 4 transmits.
        let mut sent = BTreeMap::new();
        for _ in 0..20 {
            for m in q.fill(1000, 100, |l| l) {
                *sent.entry(m.0.key).or_insert(0) += 1;
            }
        }
        assert_eq!(sent["heartbeat"], 4);
        assert_eq!(sent["update"], 16);
        assert!(q.is_empty());
    }

    #[test]
    fn larger_broadcast_goes_first_within_a_tier() {
        let mut q = BroadcastQueue::new(4, 8);
        q.enqueue(msg("small", 1, 5));
        q.enqueue(msg("large", 1, 50));
        let order: Vec<_> = q.iter().map(|m| m.key).collect();
        assert_eq!(order, ["large", "small"]);
    }
}
