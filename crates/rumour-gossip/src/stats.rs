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
    /// Changes a join exchange pushed directly to a peer of this node's side (one per peer).
    pub rejoin_pushed: u64,
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
    /// Incoming pull-push exchanges refused (answered `Done`) because `max_incoming_pullpush`
    /// were in progress or the opener is not a peer reported alive.
    pub pullpush_refused: u64,
    /// Pull-push messages that belong to no exchange in progress (late or forged).
    pub pullpush_unexpected: u64,
    /// Tombstones forgotten after `left_ingesters_timeout`.
    pub tombstones_removed: u64,
    /// Deleted keys forgotten after `obsolete_entries_timeout`.
    pub keys_forgotten: u64,
    /// Keys held (deleted ones included).
    pub keys: usize,
    /// Pull-push messages refused because they arrived in a datagram (pull-push runs only over
    /// streams, so no datagram with a forged source can make this node reply).
    pub pullpush_on_datagram: u64,
    /// Pull-push messages refused because their session address is not the address the stream
    /// came from, or an answer came from another peer than the exchange's.
    pub session_mismatch: u64,
    /// Join requests from a peer not (yet) known alive, whose answer waits until the peer is
    /// reported up.
    pub pullpush_deferred: u64,
    /// Deferred join answers dropped: the peer was not reported up within `pullpush_timeout`,
    /// or `max_incoming_pullpush` were already waiting.
    pub pullpush_deferred_dropped: u64,
    /// Pull-push exchanges this node did not open because `max_outgoing_pullpush` were in
    /// progress.
    pub pullpush_busy: u64,
    /// Periodic pull-push exchanges not opened because the store was quiet
    /// ([`Config::pullpush_quiet_periods`](crate::Config::pullpush_quiet_periods)).
    pub pullpush_quiet: u64,
    /// Received changes for a new key refused because the store held `max_keys`.
    pub keys_refused: u64,
    /// Received keys longer than `max_key_len`.
    pub key_too_long: u64,
    /// Received values longer than `max_value_bytes`.
    pub value_too_large: u64,
    /// Pull-push messages refused for carrying more keys than `max_keys`, or a bucket count per
    /// key that is not a power of two up to `max_entry_names` and 1,024.
    pub too_many_items: u64,
    /// Stream messages past `max_stream_messages` in one stream, refused unread.
    pub stream_messages_refused: u64,
    /// Received changes or parts of values refused for a timestamp more than `max_clock_skew`
    /// ahead of this node's wall time.
    pub clock_refused: u64,
}

impl Stats {
    /// Every input refused: undecodable or invalid messages and values, and messages or parts
    /// refused by a limit, the clock rule or the reflection rules.
    #[must_use]
    pub fn refusals(&self) -> u64 {
        self.invalid
            + self.pullpush_on_datagram
            + self.session_mismatch
            + self.keys_refused
            + self.key_too_long
            + self.value_too_large
            + self.too_many_items
            + self.stream_messages_refused
            + self.clock_refused
    }
}
