//! Counters of the gossip machine, read through [`Gossip::stats`](crate::Gossip::stats) and
//! exported by the driver as metrics.

use rumour_wire::{QueueStats, TrafficByKind};

use crate::message::MessageKind;

/// Counters of a [`Gossip`](crate::Gossip) machine. All only ever grow, except the `*_queued`
/// gauges and `keys`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages handed out, by kind (a change is counted each time it is put in a packet).
    pub sent: TrafficByKind<MessageKind>,
    /// Messages received and decoded, by kind.
    pub received: TrafficByKind<MessageKind>,
    /// Messages that could not be decoded, and received values that could not be decoded or
    /// merged.
    pub invalid: u64,
    /// Received values skipped because their codec is not registered.
    pub unknown_codec: u64,
    /// Received values (gossip or pull-push) that changed the store.
    pub merges: u64,
    /// Received values that changed nothing (already known, or old tombstones only).
    pub merges_unchanged: u64,
    /// Compare-and-swap attempts.
    pub cas_attempts: u64,
    /// Compare-and-swaps that changed the store.
    pub cas_successes: u64,
    /// Compare-and-swaps that found the key changed since it was read.
    pub cas_conflicts: u64,
    /// Keys deleted locally.
    pub deletes: u64,
    /// Counters of the local queue (oversized changes included).
    pub local_queue: QueueStats,
    /// Counters of the forwarded queue (oversized changes included).
    pub forwarded_queue: QueueStats,
    /// Changes waiting in the local queue.
    pub local_queued: usize,
    /// Changes waiting in the forwarded queue.
    pub forwarded_queued: usize,
    /// Changes too large for a datagram, sent over a stream.
    pub streamed_changes: u64,
    /// Watch notifications dropped because a prefix watch's buffer was full.
    pub watch_drops: u64,
    /// Watch notifications merged into one still pending.
    pub watch_coalesced: u64,
    /// Pull-push exchanges this node opened.
    pub pullpush_started: u64,
    /// Pull-push exchanges this node opened that completed.
    pub pullpush_completed: u64,
    /// Pull-push exchanges (either side) abandoned after `pullpush_timeout`.
    pub pullpush_timeouts: u64,
    /// Pull-push exchanges started by peers and served.
    pub pullpush_served: u64,
    /// Incoming pull-push exchanges refused because `max_incoming_pullpush` were in progress.
    pub pullpush_refused: u64,
    /// Pull-push messages that belong to no exchange in progress (late or forged).
    pub pullpush_unexpected: u64,
    /// Tombstones forgotten after `left_ingesters_timeout`.
    pub tombstones_removed: u64,
    /// Deleted keys forgotten after `obsolete_entries_timeout`.
    pub keys_forgotten: u64,
    /// Keys held (deleted ones included).
    pub keys: usize,
}
