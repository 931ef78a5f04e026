//! Dissemination queues: changes waiting to be gossiped, built on `rumour_wire`'s
//! transmit-limited [`BroadcastQueue`].
//!
//! Changes computed by a local compare-and-swap or delete go on the *local* queue, changes
//! computed while merging received ones on the *forwarded* queue; a fill drains the local queue
//! first. A queued change is invalidated by a newer one for the same key whose content (entry
//! names) is a superset of it. A change too large for one datagram waits in a third pair of
//! queues and goes over a stream, whole.
//!
//! A fill packs the changes of one key it takes into one change: their values merged (a join,
//! so the packed change merged anywhere gives what the changes merged one by one give) and
//! encoded once. A ring of 1,000 instances heartbeating queues one change per heartbeat under
//! one key; a datagram then carries one change of many heartbeats, whose key, codec, marker and
//! value header it pays once, and a receiver merges it once.

use std::sync::Arc;

use bytes::Bytes;
use rumour_ring::Value;
use rumour_wire::{Broadcast, BroadcastQueue, QueueStats, varint};

use crate::message::{Marker, Message};
use crate::store::{Version, change_message};

/// Where a queued change is filed in its queue: the smallest hash of the entry names it carries
/// (0 for a change that carries none) and its KV key. The hash comes first, so that the queue's
/// search of its files mostly compares integers, not keys.
///
/// A change invalidates only queued changes of the same key whose names it all carries, so
/// their smallest name hash is one of its own: queueing a change compares it with the changes
/// filed under its own name hashes, not with every queued change of the key (a ring of 1,000
/// instances heartbeating queues thousands of changes under one key).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileKey {
    first: u64,
    /// Shared: a transmit's copy allocates nothing.
    key: Arc<str>,
}

/// One queued change: the KV key, the hashes of the entry names it carries
/// ([`rumour_ring::content_hash`]), the key's node-local version when it was made, and the
/// encoded [`Message::Change`](crate::message::Message::Change).
///
/// Names are compared by their 64-bit hashes: building and keeping the names themselves cost
/// an allocation each for every heartbeat forwarded. Two names colliding could let a change
/// invalidate a queued one it does not cover; the pull-push that follows repairs what gossip
/// then missed.
#[derive(Clone, Debug)]
pub struct KvBroadcast {
    /// The KV key and the smallest name's hash.
    file: FileKey,
    /// Sorted and distinct; shared, so that the copy each transmit takes allocates nothing.
    content: Arc<[u64]>,
    version: Version,
    message: Bytes,
    /// The change's value and marker, when the message carries a value: what a fill merges to
    /// pack several changes of the key into one.
    value: Option<(Arc<dyn Value>, Marker)>,
    /// Its own retransmit multiplier (a refresh-only change), if any.
    retransmit_mult: Option<u32>,
}

impl KvBroadcast {
    /// A queued change; `content` (the name hashes) may come in any order.
    #[must_use]
    pub fn new(key: String, mut content: Vec<u64>, version: Version, message: Bytes) -> Self {
        content.sort_unstable();
        content.dedup();
        let first = content.first().copied().unwrap_or(0);
        KvBroadcast {
            file: FileKey {
                key: key.into(),
                first,
            },
            content: content.into(),
            version,
            message,
            value: None,
            retransmit_mult: None,
        }
    }

    /// The change with its decoded `value` and `marker` attached (those `message` encodes), so
    /// that a fill can pack it with other changes of its key.
    #[must_use]
    pub fn with_value(mut self, value: Arc<dyn Value>, marker: Marker) -> Self {
        self.value = Some((value, marker));
        self
    }

    /// The KV key.
    #[must_use]
    pub fn kv_key(&self) -> &str {
        &self.file.key
    }

    /// The hashes of the entry names the change carries, sorted.
    #[must_use]
    pub fn content(&self) -> &[u64] {
        &self.content
    }

    /// The key's node-local version when the change was made.
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The encoded message.
    #[must_use]
    pub fn message(&self) -> &Bytes {
        &self.message
    }
}

impl Broadcast for KvBroadcast {
    type Key = FileKey;

    fn key(&self) -> &FileKey {
        &self.file
    }

    /// The KV key with the hash of each name carried, and with 0 (changes carrying no name).
    fn scope(&self, f: &mut dyn FnMut(&FileKey)) {
        let mut scope = FileKey {
            key: self.file.key.clone(),
            first: 0,
        };
        f(&scope);
        for &hash in self.content.iter() {
            scope.first = hash;
            f(&scope);
        }
    }

    fn payload(&self) -> &[u8] {
        &self.message
    }

    fn retransmit_mult(&self) -> Option<u32> {
        self.retransmit_mult
    }

    /// dskit's rule: a newer change (version at least as high) whose content is a superset of
    /// the older one's makes it obsolete.
    fn invalidates(&self, older: &Self) -> bool {
        self.version >= older.version && is_superset(&self.content, &older.content)
    }
}

/// Whether sorted `big` holds every element of sorted `small`.
fn is_superset(big: &[u64], small: &[u64]) -> bool {
    let mut big = big.iter();
    small
        .iter()
        .all(|name| big.any(|candidate| candidate == name))
}

/// Which queue a change goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Made by this node (CAS, delete): sent first.
    Local,
    /// Computed while merging a received change.
    Forwarded,
}

/// The local and forwarded queues, for datagrams and for oversized changes.
#[derive(Clone)]
pub(crate) struct Outbox {
    local: BroadcastQueue<KvBroadcast>,
    forwarded: BroadcastQueue<KvBroadcast>,
    large_local: BroadcastQueue<KvBroadcast>,
    large_forwarded: BroadcastQueue<KvBroadcast>,
    datagram_budget: usize,
    /// The embedder's bytes in front of each message (see `Config::message_overhead`).
    message_overhead: usize,
    /// The retransmit multiplier of refresh-only changes (`Config::refresh_retransmit_mult`).
    refresh_mult: u32,
}

impl Outbox {
    pub(crate) fn new(
        retransmit_mult: u32,
        capacity: usize,
        datagram_budget: usize,
        message_overhead: usize,
        refresh_mult: u32,
    ) -> Self {
        Outbox {
            local: BroadcastQueue::new(retransmit_mult, capacity),
            forwarded: BroadcastQueue::new(retransmit_mult, capacity),
            large_local: BroadcastQueue::new(retransmit_mult, capacity),
            large_forwarded: BroadcastQueue::new(retransmit_mult, capacity),
            datagram_budget,
            message_overhead,
            refresh_mult,
        }
    }

    pub(crate) fn push(&mut self, mut broadcast: KvBroadcast, origin: Origin) {
        if let Some((value, marker)) = &broadcast.value {
            if !marker.deleted && value.is_refresh() {
                broadcast.retransmit_mult = Some(self.refresh_mult);
            }
        }
        let large = self.packed_len(broadcast.message.len()) > self.datagram_budget;
        let queue = match (origin, large) {
            (Origin::Local, false) => &mut self.local,
            (Origin::Forwarded, false) => &mut self.forwarded,
            (Origin::Local, true) => &mut self.large_local,
            (Origin::Forwarded, true) => &mut self.large_forwarded,
        };
        queue.enqueue(broadcast);
    }

    /// Messages for one datagram of `budget` bytes: local changes first, the changes of one key
    /// packed into one (see the module documentation).
    pub(crate) fn fill(&mut self, members: usize, budget: usize) -> Vec<Bytes> {
        let overhead = self.message_overhead;
        let cost = |len| varint::packed_len(len, overhead);
        let mut taken = self
            .local
            .fill_with(members, budget, cost, KvBroadcast::clone);
        let used: usize = taken.iter().map(|b| cost(b.message.len())).sum();
        taken.extend(self.forwarded.fill_with(
            members,
            budget.saturating_sub(used),
            cost,
            KvBroadcast::clone,
        ));
        pack(taken)
    }

    fn packed_len(&self, len: usize) -> usize {
        varint::packed_len(len, self.message_overhead)
    }

    /// Oversized changes for one peer, each to go over its own stream: local ones first.
    pub(crate) fn fill_large(&mut self, members: usize) -> Vec<Bytes> {
        let mut out: Vec<Bytes> = Vec::new();
        for queue in [&mut self.large_local, &mut self.large_forwarded] {
            out.extend(queue.fill_with(members, usize::MAX, |len| len, |b| b.message.clone()));
        }
        out
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.local.is_empty()
            && self.forwarded.is_empty()
            && self.large_local.is_empty()
            && self.large_forwarded.is_empty()
    }

    /// Queued changes: (local, forwarded), oversized ones included.
    pub(crate) fn lens(&self) -> (usize, usize) {
        (
            self.local.len() + self.large_local.len(),
            self.forwarded.len() + self.large_forwarded.len(),
        )
    }

    /// Counters: (local, forwarded), oversized ones included.
    pub(crate) fn stats(&self) -> (QueueStats, QueueStats) {
        (
            add(self.local.stats(), self.large_local.stats()),
            add(self.forwarded.stats(), self.large_forwarded.stats()),
        )
    }

    /// The queued changes in sending order, local ones first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &KvBroadcast> {
        self.local
            .iter()
            .chain(self.large_local.iter())
            .chain(self.forwarded.iter())
            .chain(self.large_forwarded.iter())
    }
}

/// The messages of `taken`, those of one key that carry a value and no deletion packed into one
/// message where the first of them was. A group whose values do not merge, or whose packed
/// message would be longer than its messages together, is sent as it is.
pub(crate) fn pack(taken: Vec<KvBroadcast>) -> Vec<Bytes> {
    let packable = |b: &KvBroadcast| b.value.as_ref().is_some_and(|(_, m)| !m.deleted);
    // Groups of packable changes by key, in order of first appearance.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: Vec<Option<usize>> = vec![None; taken.len()];
    for (i, b) in taken.iter().enumerate() {
        if !packable(b) {
            continue;
        }
        let same = |g: &Vec<usize>| {
            let first = &taken[g[0]];
            first.file.key == b.file.key
                && first.value.as_ref().map(|(v, _)| v.codec_id())
                    == b.value.as_ref().map(|(v, _)| v.codec_id())
        };
        match groups.iter().position(same) {
            Some(g) => {
                groups[g].push(i);
                group_of[i] = Some(g);
            }
            None => {
                group_of[i] = Some(groups.len());
                groups.push(vec![i]);
            }
        }
    }
    let packed: Vec<Option<Bytes>> = groups
        .iter()
        .map(|g| (g.len() > 1).then(|| pack_group(&taken, g)).flatten())
        .collect();
    let mut out = Vec::with_capacity(taken.len());
    for (i, b) in taken.iter().enumerate() {
        match group_of[i] {
            Some(g) if packed[g].is_some() => {
                if groups[g][0] == i {
                    out.push(packed[g].clone().expect("checked"));
                }
            }
            _ => out.push(b.message.clone()),
        }
    }
    out
}

/// One message for the changes `group` of `taken` (one key, each with a value): the join of
/// their values ([`rumour_ring::Mergeable::join`]), the greatest marker. `None` if the join
/// fails or the message is not shorter.
fn pack_group(taken: &[KvBroadcast], group: &[usize]) -> Option<Bytes> {
    let mut marker = taken[group[0]].value.as_ref()?.1;
    let mut values: Vec<&dyn Value> = Vec::with_capacity(group.len());
    for &i in group {
        let (value, m) = taken[i].value.as_ref()?;
        values.push(value.as_ref());
        marker = marker.max(*m);
    }
    let (first, rest) = values.split_first()?;
    let merged = first.join_dyn(rest).ok()?;
    let key = &taken[group[0]].file.key;
    let change = change_message(key, merged.codec_id(), Some(merged.as_ref()), marker);
    let message = Message::Change(change).encode();
    let separate: usize = group.iter().map(|&i| taken[i].message.len()).sum();
    (message.len() < separate).then_some(message)
}

fn add(a: QueueStats, b: QueueStats) -> QueueStats {
    QueueStats {
        enqueued: a.enqueued + b.enqueued,
        invalidated: a.invalidated + b.invalidated,
        dropped: a.dropped + b.dropped,
        finished: a.finished + b.finished,
        transmitted: a.transmitted + b.transmitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, names: &[&str], version: u64, len: usize) -> KvBroadcast {
        KvBroadcast::new(
            key.into(),
            names.iter().map(|n| rumour_ring::content_hash(n)).collect(),
            Version(version),
            Bytes::from(vec![0u8; len]),
        )
    }

    #[test]
    fn a_newer_change_with_a_superset_of_entries_invalidates_the_older_one() {
        let older = change("ring", &["a", "b"], 3, 10);
        assert!(change("ring", &["c", "b", "a"], 4, 10).invalidates(&older));
        assert!(change("ring", &["a", "b"], 3, 10).invalidates(&older));
        assert!(!change("ring", &["a"], 4, 10).invalidates(&older));
        assert!(!change("ring", &["a", "b", "c"], 2, 10).invalidates(&older));
        assert!(change("ring", &["a"], 4, 10).invalidates(&change("ring", &[], 1, 3)));
    }

    #[test]
    fn a_queued_change_is_invalidated_whatever_name_it_is_filed_under() {
        let mut outbox = Outbox::new(4, 64, 1000, 1, 4);
        // No change here carries every name of one queued before it, so all stay queued.
        for (names, version) in [
            (&["a", "c"][..], 1),
            (&["b", "c"][..], 1),
            (&["a"][..], 1),
            (&["b"][..], 1),
            (&["d"][..], 1),
            (&[][..], 1),
        ] {
            outbox.push(change("ring", names, version, 10), Origin::Forwarded);
        }
        outbox.push(change("other", &["a"], 1, 10), Origin::Forwarded);
        assert_eq!(outbox.lens(), (0, 7));
        // {a, b, c} covers {a}, {b}, {a, c}, {} and {b, c}, not {d} nor another key's {a}.
        outbox.push(change("ring", &["c", "b", "a"], 2, 10), Origin::Forwarded);
        let left: Vec<(String, Vec<u64>)> = outbox
            .iter()
            .map(|b| (b.file.key.to_string(), b.content().to_vec()))
            .collect();
        let hashes = |names: &[&str]| {
            let mut hashes: Vec<u64> = names.iter().map(|n| rumour_ring::content_hash(n)).collect();
            hashes.sort_unstable();
            hashes
        };
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left.contains(&("ring".into(), hashes(&["d"]))));
        assert!(left.contains(&("other".into(), hashes(&["a"]))));
        assert!(left.contains(&("ring".into(), hashes(&["a", "b", "c"]))));
    }

    #[test]
    fn oversized_changes_wait_apart_and_leave_whole() {
        let mut outbox = Outbox::new(4, 16, 100, 1, 4);
        outbox.push(change("big", &["x"], 1, 500), Origin::Forwarded);
        outbox.push(change("small", &["y"], 1, 20), Origin::Forwarded);
        assert_eq!(outbox.lens(), (0, 2));
        let datagram = outbox.fill(3, 100);
        assert_eq!(datagram.len(), 1);
        assert_eq!(datagram[0].len(), 20);
        let large = outbox.fill_large(3);
        assert_eq!(large.len(), 1);
        assert_eq!(large[0].len(), 500);
    }

    #[test]
    fn local_changes_fill_the_datagram_before_forwarded_ones() {
        let mut outbox = Outbox::new(4, 16, 1000, 1, 4);
        outbox.push(change("f", &["x"], 1, 60), Origin::Forwarded);
        outbox.push(change("l", &["y"], 1, 50), Origin::Local);
        let datagram = outbox.fill(3, 60);
        assert_eq!(datagram.len(), 1);
        assert_eq!(datagram[0].len(), 50, "the local change goes first");
    }
}

#[cfg(test)]
mod packing {
    use super::*;
    use proptest::prelude::*;
    use rumour_ring::{Instance, Mergeable, Ring, State, Timestamp, Tokens};

    const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

    /// One change: per instance, maybe a description (stamp, state) and a heartbeat.
    type Spec = Vec<(usize, Option<(u64, bool)>, u64)>;

    fn ring_of(spec: &Spec) -> Ring {
        let mut ring = Ring::new();
        for &(i, description, heartbeat) in spec {
            if let Some((at, leaving)) = description {
                let state = if leaving {
                    State::Leaving
                } else {
                    State::Active
                };
                let tokens = Tokens::new(vec![i as u32 * 10 + 1, i as u32 * 10 + 2]);
                let instance =
                    Instance::new(format!("10.0.0.{i}:1"), "z", state, tokens, Timestamp(at));
                ring.set_instance(IDS[i], instance).expect("valid id");
            }
            ring.set_heartbeat(IDS[i], Timestamp(heartbeat))
                .expect("valid id");
        }
        ring
    }

    fn broadcast(key: &str, spec: &Spec, updated: u64, version: u64) -> KvBroadcast {
        let value = ring_of(spec);
        let marker = Marker {
            updated: Timestamp(updated),
            deleted: false,
        };
        let message =
            Message::Change(change_message(key, Ring::CODEC_ID, Some(&value), marker)).encode();
        KvBroadcast::new(
            key.into(),
            Mergeable::content_hashes(&value),
            Version(version),
            message,
        )
        .with_value(Arc::new(value), marker)
    }

    fn decode(message: &[u8]) -> (String, Ring, Marker) {
        let Message::Change(change) = Message::decode(message).expect("decodes") else {
            panic!("a change");
        };
        let ring = Ring::decode(&change.value.expect("a value")).expect("a ring");
        (change.key, ring, change.marker)
    }

    fn spec() -> impl Strategy<Value = Spec> {
        prop::collection::vec(
            (
                0..IDS.len(),
                prop::option::of((1..6u64, any::<bool>())),
                1..20u64,
            ),
            1..4,
        )
    }

    proptest! {
        /// Merging the packed change into a replica gives what merging the changes one by one
        /// gives, and the packed message is shorter than the messages it replaces.
        #[test]
        fn merge_of_packed_equals_sequential_merges(
            base in spec(),
            changes in prop::collection::vec((spec(), 1..100u64, any::<bool>()), 2..6),
        ) {
            let taken: Vec<KvBroadcast> = changes
                .iter()
                .enumerate()
                .map(|(i, (s, at, other))| {
                    broadcast(if *other { "other" } else { "ring" }, s, *at, i as u64)
                })
                .collect();
            let separate: usize = taken.iter().map(|b| b.message.len()).sum();
            let out = pack(taken.clone());
            let sent: usize = out.iter().map(Bytes::len).sum();
            prop_assert!(sent <= separate);
            for key in ["ring", "other"] {
                let mut sequential = ring_of(&base);
                let mut packed = ring_of(&base);
                let mut marker = (Marker::default(), Marker::default());
                for b in taken.iter().filter(|b| b.kv_key() == key) {
                    let (_, value, m) = decode(&b.message);
                    sequential.merge(&value, None);
                    marker.0 = marker.0.max(m);
                }
                let messages: Vec<_> = out.iter().map(|m| decode(m)).filter(|(k, _, _)| k == key).collect();
                prop_assert!(messages.len() <= 1, "one message per key");
                for (_, value, m) in messages {
                    packed.merge(&value, None);
                    marker.1 = marker.1.max(m);
                }
                prop_assert_eq!(&packed, &sequential);
                prop_assert_eq!(marker.0, marker.1);
            }
        }
    }

    #[test]
    fn heartbeats_of_one_key_go_out_as_one_change() {
        let mut outbox = Outbox::new(4, 64, 1400, 1, 4);
        for (i, id) in IDS.iter().enumerate() {
            let _ = id;
            outbox.push(
                broadcast("ring", &vec![(i, None, 7)], 5, i as u64),
                Origin::Forwarded,
            );
        }
        outbox.push(
            broadcast("other", &vec![(0, None, 7)], 5, 1),
            Origin::Forwarded,
        );
        let out = outbox.fill(3, 1400);
        assert_eq!(out.len(), 2, "one message per key");
        let (key, ring, _) = decode(&out[0]);
        let (key, ring) = if key == "ring" {
            (key, ring)
        } else {
            let (k, r, _) = decode(&out[1]);
            (k, r)
        };
        assert_eq!(key, "ring");
        for id in IDS {
            assert_eq!(ring.heartbeat_of(id), Some(Timestamp(7)));
        }
    }
}
