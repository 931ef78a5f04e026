//! The gossip machine: the replicated store, its dissemination and its reconciliation, driven by
//! the caller's clock and I/O.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rumour_ring::{Codec, Mergeable, Timestamp, TypedCodec, Value};
use rumour_wire::{CountedKind, Delivery, pullpush_scale};

use crate::broadcast::{KvBroadcast, Origin, Outbox};
use crate::config::Config;
use crate::error::Error;
use crate::history::{HistoryRecord, MessageHistory};
use crate::message::{KeyChange, Limits, Message, MessageKind, OverLimit};
use crate::peers::Peers;
use crate::pullpush::Sessions;
use crate::recent::RecentChanges;
use crate::stats::Stats;
use crate::store::{Applied, EntryRef, Store, Version, change_message, prune};
use crate::watch::{Event, WatchId, Watchers};

/// Bytes to send: one or more gossip messages (unframed) for one peer. Datagrams fit one
/// datagram once packed (see [`Config::packed_len`]); streams carry their messages one after the
/// other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The peer.
    pub to: SocketAddr,
    /// A datagram or a stream.
    pub delivery: Delivery,
    /// The encoded messages.
    pub messages: Vec<Bytes>,
}

/// What the machine knows of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Alive: a gossip and pull-push target.
    Alive,
    /// Reported dead or left at `since`; still gossiped to for `gossip_to_the_dead_time`.
    Down {
        /// When it was reported down.
        since: Instant,
    },
}

/// A value read for a compare-and-swap, with the key's version at the time.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    /// The value without tombstones; `None` if the key is absent or deleted.
    pub value: Option<T>,
    /// The key's version, to pass to [`Gossip::cas_versioned`].
    pub version: Version,
}

/// What a compare-and-swap did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// Nothing changed (the function returned `None`, or the desired state added nothing).
    Unchanged,
    /// The store changed; the change is queued for gossip.
    Updated {
        /// The key's new version.
        version: Version,
    },
}

/// The gossip machine. See the crate documentation for the driving loop.
///
/// Call order: after any `handle_*` call or command, drain [`Gossip::poll_transmit`] and
/// [`Gossip::poll_event`], then sleep until [`Gossip::poll_timeout`] and call
/// [`Gossip::handle_timeout`].
#[derive(Clone)]
pub struct Gossip {
    pub(crate) config: Config,
    pub(crate) rng: ChaCha8Rng,
    epoch: (Instant, Timestamp),
    pub(crate) store: Store,
    outbox: Outbox,
    watchers: Watchers,
    history: MessageHistory,
    recent: RecentChanges,
    pub(crate) stats: Stats,
    peers: Peers,
    /// No later than the `since` of every peer down (`None`: none is), so that the sweep every
    /// `cleanup_interval` skips the peer table until a down peer can be due.
    earliest_down: Option<Instant>,
    pub(crate) sessions: Sessions,
    pub(crate) transmits: VecDeque<Transmit>,
    next_pullpush: Option<Instant>,
    next_cleanup: Instant,
    /// When the store last changed (a write, a delete, a merged remote change): the periodic
    /// pull-push pauses once this is `pullpush_quiet_periods` intervals ago. `None` until the
    /// first change: a store that never held anything has nothing to reconcile of its own (a
    /// joiner's first state comes with the embedder's join exchange, and any change elsewhere
    /// starts the exchanges of every store that merges it).
    last_change: Option<Instant>,
}

impl fmt::Debug for Gossip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gossip")
            .field("advertise_addr", &self.config.advertise_addr)
            .field("keys", &self.store.len())
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

/// A random instant in `[start, start + period)`.
fn staggered(rng: &mut ChaCha8Rng, start: Instant, period: Duration) -> Instant {
    let millis = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
    start + Duration::from_millis(rng.gen_range(0..millis))
}

impl Gossip {
    /// A machine with an empty store. `epoch` ties the caller's monotonic clock to wall time:
    /// the wall time at `now` is `epoch.1 + (now - epoch.0)`. Timers start at `epoch.0`, each
    /// first tick at a random point of its first period.
    #[must_use]
    pub fn new(config: Config, mut rng: ChaCha8Rng, epoch: (Instant, Timestamp)) -> Gossip {
        let start = epoch.0;
        let next_pullpush = config
            .pullpush_period()
            .map(|period| staggered(&mut rng, start, period));
        Gossip {
            outbox: Outbox::new(
                config.retransmit_mult,
                config.queue_capacity,
                config.datagram_budget(),
                config.message_overhead,
                config.refresh_retransmit_mult,
            ),
            watchers: Watchers::new(config.notify_interval, config.watch_buffer),
            history: MessageHistory::new(config.message_history_bytes),
            recent: RecentChanges::default(),
            sessions: Sessions::new(
                config.max_outgoing_pullpush,
                config.max_incoming_pullpush,
                config.pullpush_timeout,
            ),
            next_cleanup: start + config.cleanup_interval,
            next_pullpush,
            last_change: None,
            config,
            rng,
            epoch,
            store: Store::default(),
            stats: Stats::default(),
            peers: Peers::new(start),
            earliest_down: None,
            transmits: VecDeque::new(),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The wall time at `now`.
    #[must_use]
    pub fn wall_time(&self, now: Instant) -> Timestamp {
        let elapsed = now.saturating_duration_since(self.epoch.0).as_millis();
        Timestamp(
            self.epoch
                .1
                .0
                .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX)),
        )
    }

    fn tombstone_cutoff(&self, wall: Timestamp) -> Option<Timestamp> {
        let timeout = self.config.left_ingesters_timeout;
        (!timeout.is_zero()).then(|| wall.saturating_sub_millis(millis(timeout)))
    }

    // ---- codecs -------------------------------------------------------------------------

    /// Registers the codec of `T`, so received values of that type are decoded.
    pub fn register<T: Mergeable>(&mut self) {
        if !self.store.has_codec(T::CODEC_ID) {
            self.store.register_codec(Box::new(TypedCodec::<T>::new()));
        }
    }

    /// Registers a codec (replacing one with the same id).
    pub fn register_codec(&mut self, codec: Box<dyn Codec>) {
        self.store.register_codec(codec);
    }

    // ---- membership input ---------------------------------------------------------------

    /// `addr` is alive: a gossip and pull-push target. This node's own address is ignored.
    /// A join request from `addr` that arrived before `addr` was known alive is answered now.
    pub fn handle_peer_up(&mut self, now: Instant, addr: SocketAddr) {
        if addr != self.config.advertise_addr {
            self.peers.insert(addr, PeerState::Alive);
            self.release_deferred(now, addr);
        }
    }

    /// Whether `addr` is a peer reported alive.
    pub(crate) fn is_alive(&self, addr: SocketAddr) -> bool {
        self.peers.get(addr) == Some(PeerState::Alive)
    }

    /// `addr` died or left: it stays a gossip target (never a pull-push one) for
    /// `gossip_to_the_dead_time`, then is forgotten.
    pub fn handle_peer_down(&mut self, now: Instant, addr: SocketAddr) {
        if self.peers.mark_down(addr, now) {
            self.earliest_down = Some(self.earliest_down.map_or(now, |t| t.min(now)));
        }
    }

    /// The peers known, alive or recently down.
    pub fn peers(&self) -> impl Iterator<Item = (SocketAddr, PeerState)> + '_ {
        self.peers.iter()
    }

    /// Up to `count` random peers to gossip to: alive ones, and those reported down less than
    /// `gossip_to_the_dead_time` ago (so they can catch up). The machine keeps no gossip timer:
    /// every gossip interval the embedder sends [`Gossip::fill_broadcasts`] (and
    /// [`Gossip::fill_stream_broadcasts`]) to each of these.
    pub fn gossip_targets(&mut self, now: Instant, count: usize) -> Vec<SocketAddr> {
        let window = self.config.gossip_to_the_dead_time;
        let candidates = self
            .peers
            .iter()
            .filter(|(_, state)| match state {
                PeerState::Alive => true,
                PeerState::Down { since } => now.saturating_duration_since(*since) < window,
            })
            .map(|(addr, _)| addr)
            .collect();
        self.pick(candidates, count)
    }

    pub(crate) fn alive_peers(&self) -> Vec<SocketAddr> {
        self.peers.alive().collect()
    }

    /// Whether a peer other than `peer` is alive.
    pub(crate) fn has_other_alive_peer(&self, peer: SocketAddr) -> bool {
        self.peers.alive().any(|addr| addr != peer)
    }

    /// Up to `n` distinct random elements of `candidates`.
    pub(crate) fn pick(&mut self, mut candidates: Vec<SocketAddr>, n: usize) -> Vec<SocketAddr> {
        let n = n.min(candidates.len());
        let (picked, _) = candidates.partial_shuffle(&mut self.rng, n);
        picked.to_vec()
    }

    // ---- I/O input ----------------------------------------------------------------------

    /// Handles one gossip message received in a datagram (the embedder removed its framing).
    /// Bad input returns an error, is counted, and changes nothing.
    ///
    /// Only [`Message::Change`] is accepted: a datagram's source address can be forged, so a
    /// pull-push message (which asks for an answer) in a datagram is refused before it is
    /// decoded and counted in [`Stats::pullpush_on_datagram`]. Nothing received in a datagram
    /// makes this node send anything to anyone but its usual gossip targets.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        // The first byte is the variant tag (one byte for every variant): refuse pull-push
        // messages unread.
        let pullpush = bytes.first().is_some_and(|&tag| {
            let tag = usize::from(tag);
            tag != MessageKind::Change.index() && tag < MessageKind::ALL.len()
        });
        if pullpush {
            self.stats.pullpush_on_datagram += 1;
            return Err(Error::PullPushOnDatagram { from });
        }
        self.handle_message(now, from, bytes, Delivery::Datagram)
    }

    /// Handles one gossip message received over a reliable stream (a pull-push step, or a
    /// change too large for a datagram). `from` is the address the stream's sender advertised;
    /// a pull-push message whose session names another address is refused and counted in
    /// [`Stats::session_mismatch`], and every answer goes to `from`.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.handle_message(now, from, bytes, Delivery::Stream)
    }

    /// Handles the gossip messages of one stream: at most `max_stream_messages` of them, the
    /// rest refused unread and counted in [`Stats::stream_messages_refused`]. Returns the first
    /// error after trying every accepted message.
    pub fn handle_stream_messages<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        messages: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), Error> {
        let max = self.config.max_stream_messages;
        let mut first = Ok(());
        let mut count = 0;
        for bytes in messages {
            count += 1;
            if count > max {
                self.stats.stream_messages_refused += 1;
                first = first.and(Err(Error::Limit {
                    from,
                    what: "stream messages",
                    len: count,
                    max,
                }));
                continue;
            }
            if let Err(e) = self.handle_stream(now, from, bytes) {
                first = first.and(Err(e));
            }
        }
        first
    }

    fn limits(&self) -> Limits {
        Limits {
            max_keys: self.config.max_keys,
            max_key_len: self.config.max_key_len,
            max_value_bytes: self.config.max_value_bytes,
            max_entry_names: self.config.max_entry_names,
        }
    }

    fn handle_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        delivery: Delivery,
    ) -> Result<(), Error> {
        if bytes.len() > self.config.max_message_bytes {
            self.stats.invalid += 1;
            return Err(Error::TooLarge {
                from,
                len: bytes.len(),
                max: self.config.max_message_bytes,
            });
        }
        let message = Message::decode(bytes).map_err(|e| {
            self.stats.invalid += 1;
            Error::Decode { from, source: e }
        })?;
        if let Err(over) = self.limits().check(&message) {
            return Err(self.over_limit(from, over));
        }
        if let Some(session) = message.session() {
            if delivery == Delivery::Datagram {
                self.stats.pullpush_on_datagram += 1;
                return Err(Error::PullPushOnDatagram { from });
            }
            if session.from != from {
                self.stats.session_mismatch += 1;
                return Err(Error::SessionMismatch {
                    from,
                    named: session.from,
                });
            }
        }
        self.stats.received.count(message.kind(), bytes.len());
        match message {
            Message::Change(change) => self.receive_change(now, from, change, true, Some(bytes)),
            other => self.handle_pullpush(now, from, other),
        }
    }

    /// Counts a received message over a limit and names it.
    fn over_limit(&mut self, from: SocketAddr, over: OverLimit) -> Error {
        match over.what {
            "key bytes" => self.stats.key_too_long += 1,
            "value bytes" => self.stats.value_too_large += 1,
            _ => self.stats.too_many_items += 1,
        }
        Error::Limit {
            from,
            what: over.what,
            len: over.len,
            max: over.max,
        }
    }

    /// Merges one change that arrived in another wire's envelope (the memberlist wire mode's
    /// dskit `KeyValuePair`, decoded by the embedder) exactly as a [`Message::Change`] received
    /// by [`Gossip::handle_packet`]: the same limits (`max_message_bytes` against `len`, the
    /// bytes it arrived as; key and value sizes), the same counters, clamped clocks and
    /// tombstone cutoff; what it changed is queued for gossip, nothing if it changed nothing.
    pub fn handle_change(
        &mut self,
        now: Instant,
        from: SocketAddr,
        change: KeyChange,
        len: usize,
    ) -> Result<(), Error> {
        self.check_envelope_len(from, len)?;
        let message = Message::Change(change);
        if let Err(over) = self.limits().check(&message) {
            return Err(self.over_limit(from, over));
        }
        self.stats.received.count(MessageKind::Change, len);
        let Message::Change(change) = message else {
            unreachable!("built above")
        };
        self.receive_change(now, from, change, true, None)
    }

    /// Refuses (and counts) what arrived in another wire's envelope if its `len` exceeds
    /// `max_message_bytes`.
    fn check_envelope_len(&mut self, from: SocketAddr, len: usize) -> Result<(), Error> {
        if len > self.config.max_message_bytes {
            self.stats.invalid += 1;
            return Err(Error::TooLarge {
                from,
                len,
                max: self.config.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Merges a peer's whole store that arrived in another wire's envelope (the memberlist wire
    /// mode: a push/pull's user state, dskit's `MergeRemoteState`), `len` bytes in all. Refused
    /// whole (and counted) if `len` exceeds `max_message_bytes` or it holds more than
    /// `max_keys` entries; otherwise every entry is merged as by [`Gossip::handle_change`]
    /// (counted as one [`MessageKind::FullState`] received): an entry that is over a limit or
    /// does not merge is refused and counted in [`Stats`] and the others still merged, as dskit
    /// skips a pair it cannot merge; what the entries changed is queued for gossip. Returns how
    /// many entries were refused.
    pub fn handle_full_state(
        &mut self,
        now: Instant,
        from: SocketAddr,
        entries: Vec<KeyChange>,
        len: usize,
    ) -> Result<usize, Error> {
        self.check_envelope_len(from, len)?;
        if entries.len() > self.config.max_keys {
            self.stats.too_many_items += 1;
            return Err(Error::Limit {
                from,
                what: "keys",
                len: entries.len(),
                max: self.config.max_keys,
            });
        }
        self.stats.received.count(MessageKind::FullState, len);
        let limits = self.limits();
        let mut refused = 0;
        for change in entries {
            let message = Message::Change(change);
            let result = match limits.check(&message) {
                Err(over) => Err(self.over_limit(from, over)),
                Ok(()) => {
                    let Message::Change(change) = message else {
                        unreachable!("built above")
                    };
                    self.receive_change(now, from, change, true, None)
                }
            };
            refused += usize::from(result.is_err());
        }
        Ok(refused)
    }

    /// The whole store as changes, one per key in key order, deleted keys included with their
    /// values (what a join's full state carries; dskit's `LocalState`), for an embedder that
    /// carries it in another wire's envelope.
    #[must_use]
    pub fn full_state(&self) -> Vec<KeyChange> {
        self.store.all()
    }

    /// Whether a codec with this id is registered.
    #[must_use]
    pub fn has_codec(&self, id: &str) -> bool {
        self.store.has_codec(id)
    }

    /// The latest wall time a received timestamp may carry at `now`.
    fn latest_accepted(&self, now: Instant) -> Timestamp {
        self.wall_time(now)
            .saturating_add_millis(millis(self.config.max_clock_skew))
    }

    /// Merges one received change; what it changed is forwarded if `forward`.
    pub(crate) fn receive_change(
        &mut self,
        now: Instant,
        from: SocketAddr,
        change: KeyChange,
        forward: bool,
        raw: Option<&[u8]>,
    ) -> Result<(), Error> {
        self.merge_change(now, from, change, forward, raw)
            .map(|_| ())
    }

    /// Merges one received change; what it changed is queued for gossip if `forward`, and its
    /// encoded message returned.
    pub(crate) fn merge_change(
        &mut self,
        now: Instant,
        from: SocketAddr,
        change: KeyChange,
        forward: bool,
        raw: Option<&[u8]>,
    ) -> Result<Option<Bytes>, Error> {
        if change.key.is_empty() {
            self.stats.invalid += 1;
            return Err(Error::EmptyKey);
        }
        let wall = self.wall_time(now);
        let latest = self.latest_accepted(now);
        if change.marker.updated > latest {
            self.stats.clock_refused += 1;
            return Err(Error::FutureTimestamp {
                from,
                key: change.key,
                at: change.marker.updated.0,
                latest: latest.0,
            });
        }
        if self.store.entry(&change.key).is_none()
            && !change.marker.deleted
            && self.store.len() >= self.config.max_keys
        {
            self.stats.keys_refused += 1;
            return Err(Error::Limit {
                from,
                what: "keys",
                len: self.store.len() + 1,
                max: self.config.max_keys,
            });
        }
        // A repeat of a change that merged fully changes nothing (see `recent`); with the
        // history on, every reception is recorded, so every one is merged.
        let fingerprint = (change.value.is_some() && !self.history.enabled())
            .then(|| RecentChanges::fingerprint(&change));
        if fingerprint.is_some_and(|f| self.recent.contains(f)) {
            self.stats.merges_unchanged += 1;
            return Ok(None);
        }
        let mut refused = 0;
        let cutoff = self.tombstone_cutoff(wall);
        let incoming = match &change.value {
            None => None,
            Some(bytes) => match self.store.decode(&change.key, &change.codec, bytes) {
                // Tombstones too old by their own time are never applied (so forgotten ones do
                // not come back); the rest age from now, when this node received them.
                Ok(Some(value)) => prune(value, cutoff).map(|mut value| {
                    refused = value.receive(wall, latest);
                    self.stats.clock_refused += refused as u64;
                    value
                }),
                Ok(None) => {
                    self.stats.unknown_codec += 1;
                    return Ok(None);
                }
                Err(e) => {
                    self.stats.invalid += 1;
                    return Err(e);
                }
            },
        };
        let record = self.history.enabled().then(|| HistoryRecord {
            id: 0,
            at: wall,
            key: change.key.clone(),
            codec: change.codec.clone(),
            value_len: change.value.as_ref().map_or(0, Bytes::len),
            version_after: Version(0),
            changes: incoming.as_ref().map(|v| v.content()).unwrap_or_default(),
            message: raw.map_or_else(
                || Message::Change(change.clone()).encode(),
                Bytes::copy_from_slice,
            ),
        });
        let applied = self
            .store
            .apply_remote(&change.key, incoming, change.marker, cutoff, wall)
            .inspect_err(|_| self.stats.invalid += 1)?;
        if let Some(mut record) = record {
            record.version_after = applied.as_ref().map_or(Version(0), |a| a.version);
            self.history.record(false, record);
        }
        if let Some(fingerprint) = fingerprint.filter(|_| refused == 0) {
            self.recent.insert(fingerprint);
        }
        let Some(applied) = applied else {
            self.stats.merges_unchanged += 1;
            return Ok(None);
        };
        self.stats.merges += 1;
        self.changed(now, &change.key);
        Ok(forward.then(|| self.queue_change(now, &change.key, applied, Origin::Forwarded)))
    }

    /// `key` changed in the store: watchers are told, and the periodic pull-push runs (again).
    fn changed(&mut self, now: Instant, key: &str) {
        self.last_change = self.last_change.max(Some(now));
        self.watchers.changed(now, key);
    }

    /// Encodes the change `applied` made to `key` and queues it for gossip; returns the message.
    fn queue_change(&mut self, now: Instant, key: &str, applied: Applied, origin: Origin) -> Bytes {
        let codec = self.store.entry(key).map_or("", |e| e.codec());
        let kc = change_message(key, codec, applied.change.as_deref(), applied.marker);
        let value_len = kc.value.as_ref().map_or(0, Bytes::len);
        let content = applied
            .change
            .as_ref()
            .map(|c| c.content_hashes())
            .unwrap_or_default();
        let message = Message::Change(kc).encode();
        if self.history.enabled() {
            let record = HistoryRecord {
                id: 0,
                at: self.wall_time(now),
                key: key.to_owned(),
                codec: codec.to_owned(),
                value_len,
                version_after: applied.version,
                changes: applied
                    .change
                    .as_ref()
                    .map(|c| c.content())
                    .unwrap_or_default(),
                message: message.clone(),
            };
            self.history.record(true, record);
        }
        let mut broadcast =
            KvBroadcast::new(key.to_owned(), content, applied.version, message.clone());
        if let Some(change) = applied.change {
            broadcast = broadcast.with_value(Arc::from(change), applied.marker);
        }
        self.outbox.push(broadcast, origin);
        message
    }

    pub(crate) fn encode_sent(&mut self, message: &Message) -> Bytes {
        let bytes = message.encode();
        self.stats.sent.count(message.kind(), bytes.len());
        bytes
    }

    // ---- timers ---------------------------------------------------------------------------

    /// Runs the timers due at `now`: gossip tick, periodic pull-push, expiry of exchanges,
    /// sweeping of deleted keys and old tombstones, debounced watch notifications.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (expired, dropped) = self.sessions.expire(now);
        self.stats.pullpush_timeouts += expired;
        self.stats.pullpush_deferred_dropped += dropped;
        if let (Some(at), Some(period)) = (self.next_pullpush, self.config.pullpush_period()) {
            if at <= now {
                let alive = self.alive_peers();
                let scaled = pullpush_scale(period, alive.len() + 1);
                self.next_pullpush = Some(now + scaled);
                let quiet = self
                    .config
                    .pullpush_quiet_periods
                    .and_then(|periods| scaled.checked_mul(periods.get()))
                    .is_some_and(|quiet| {
                        self.last_change
                            .is_none_or(|at| now.saturating_duration_since(at) >= quiet)
                    });
                if quiet {
                    self.stats.pullpush_quiet += 1;
                } else if let Some(&peer) = self.pick(alive, 1).first() {
                    if let Some(bytes) = self.start_pullpush(now, peer, false) {
                        self.transmits.push_back(Transmit {
                            to: peer,
                            delivery: Delivery::Stream,
                            messages: vec![bytes],
                        });
                    }
                }
            }
        }
        if self.next_cleanup <= now {
            self.next_cleanup = now + self.config.cleanup_interval.max(Duration::from_millis(1));
            self.cleanup(now);
        }
        self.watchers.handle_timeout(now);
    }

    fn cleanup(&mut self, now: Instant) {
        let wall = self.wall_time(now);
        let obsolete = wall.saturating_sub_millis(millis(self.config.obsolete_entries_timeout));
        let sweep = self.store.sweep(obsolete, self.tombstone_cutoff(wall));
        self.stats.tombstones_removed += sweep.tombstones_removed;
        self.stats.keys_forgotten += sweep.keys_forgotten;
        let window = self.config.gossip_to_the_dead_time;
        if self
            .earliest_down
            .is_some_and(|t| now.saturating_duration_since(t) >= window)
        {
            self.peers.retain(|state| match state {
                PeerState::Alive => true,
                PeerState::Down { since } => now.saturating_duration_since(since) < window,
            });
            self.earliest_down = self
                .peers
                .down()
                .filter_map(|(_, state)| match state {
                    PeerState::Down { since } => Some(since),
                    PeerState::Alive => None,
                })
                .min();
        }
    }

    /// When [`Gossip::handle_timeout`] next needs to run, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // The sweep has work only with keys in the store or a peer down: an empty store in a
        // healthy cluster does not wake its node every `cleanup_interval` for nothing.
        let cleanup =
            (self.store.len() > 0 || self.earliest_down.is_some()).then_some(self.next_cleanup);
        [
            self.next_pullpush,
            cleanup,
            self.sessions.poll_timeout(),
            self.watchers.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- output -----------------------------------------------------------------------------

    /// The next bytes to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next watch notification.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.watchers.poll()
    }

    /// Queued changes for one datagram with `budget` bytes free (each message costs
    /// [`Config::packed_len`]), local changes first; `members` is the cluster size
    /// for the retransmit limit. For embedders that piggyback changes on their own packets.
    pub fn fill_broadcasts(&mut self, members: usize, budget: usize) -> Vec<Bytes> {
        let messages = self.outbox.fill(members, budget);
        for message in &messages {
            self.stats.sent.count(MessageKind::Change, message.len());
        }
        messages
    }

    /// Queued changes too large for a datagram, for one peer: send each over its own stream.
    pub fn fill_stream_broadcasts(&mut self, members: usize) -> Vec<Bytes> {
        let messages = self.outbox.fill_large(members);
        for message in &messages {
            self.stats.sent.count(MessageKind::Change, message.len());
            self.stats.streamed_changes += 1;
        }
        messages
    }

    /// Whether changes are waiting to be gossiped.
    #[must_use]
    pub fn has_broadcasts(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The queued changes in sending order, local ones first.
    pub fn queued(&self) -> impl Iterator<Item = &KvBroadcast> {
        self.outbox.iter()
    }

    /// The peer of the pull-push this node opened, while it is in progress.
    #[must_use]
    pub fn pullpush_in_flight(&self) -> Option<SocketAddr> {
        self.sessions.outgoing_peer()
    }

    // ---- the store ----------------------------------------------------------------------------

    /// The value of `key` without tombstones; `None` if the key is absent, deleted, or holds
    /// another type.
    #[must_use]
    pub fn get<T: Mergeable>(&self, key: &str) -> Option<T> {
        let entry = self.store.entry(key).filter(|e| !e.is_deleted())?;
        let mut value = entry.value.as_any().downcast_ref::<T>()?.clone();
        value.remove_tombstones(Timestamp(u64::MAX));
        Some(value)
    }

    /// The value of `key` without tombstones, whatever its type.
    #[must_use]
    pub fn get_value(&self, key: &str) -> Option<Box<dyn Value>> {
        let entry = self.store.entry(key).filter(|e| !e.is_deleted())?;
        let mut value = entry.value.clone_box();
        value.remove_tombstones(Timestamp(u64::MAX));
        Some(value)
    }

    /// The stored entry of `key` as it is (tombstones included, deleted keys too).
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<EntryRef<'_>> {
        self.store.entry(key)
    }

    /// Every stored entry, in key order (for the status page).
    pub fn entries(&self) -> impl Iterator<Item = (&str, EntryRef<'_>)> {
        self.store.entries()
    }

    /// The keys starting with `prefix` that are not deleted, in order.
    #[must_use]
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.store.list(prefix)
    }

    /// Reads `key` for [`Gossip::cas_versioned`]: its value (tombstones stripped) and version.
    pub fn read<T: Mergeable>(&self, key: &str) -> Result<Versioned<T>, Error> {
        let Some(entry) = self.store.entry(key) else {
            return Ok(Versioned {
                value: None,
                version: Version(0),
            });
        };
        let Some(value) = entry.value.as_any().downcast_ref::<T>() else {
            return Err(Error::CodecMismatch {
                key: key.to_owned(),
                stored: entry.codec().to_owned(),
                offered: T::CODEC_ID.to_owned(),
            });
        };
        let value = (!entry.is_deleted()).then(|| {
            let mut value = value.clone();
            value.remove_tombstones(Timestamp(u64::MAX));
            value
        });
        Ok(Versioned {
            value,
            version: entry.version,
        })
    }

    /// Compare-and-swap: `f` gets the current value (tombstones stripped, `None` if absent or
    /// deleted) and returns the desired full state, or `None` to change nothing. The desired
    /// state is merged in local-CAS mode (entries it lacks become tombstones) and the change is
    /// queued for gossip, ahead of forwarded changes. `f` may run again if the key changed
    /// meanwhile, up to `max_cas_retries` times; `T`'s codec is registered if it was not.
    pub fn cas<T: Mergeable>(
        &mut self,
        now: Instant,
        key: &str,
        mut f: impl FnMut(Option<&T>) -> Option<T>,
    ) -> Result<CasOutcome, Error> {
        let attempts = self.config.max_cas_retries.max(1);
        for _ in 0..attempts {
            let current = self.read::<T>(key)?;
            let Some(desired) = f(current.value.as_ref()) else {
                return Ok(CasOutcome::Unchanged);
            };
            match self.cas_versioned(now, key, current.version, desired) {
                Err(Error::CasConflict { .. }) => continue,
                outcome => return outcome,
            }
        }
        Err(Error::CasRetriesExhausted {
            key: key.to_owned(),
            attempts,
        })
    }

    /// The second half of a compare-and-swap whose first half ([`Gossip::read`]) ran
    /// elsewhere: writes `desired` if `key` is still at `expected`, else fails with
    /// [`Error::CasConflict`] (read again and retry, at most `max_cas_retries` times).
    pub fn cas_versioned<T: Mergeable>(
        &mut self,
        now: Instant,
        key: &str,
        expected: Version,
        desired: T,
    ) -> Result<CasOutcome, Error> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        self.register::<T>();
        self.stats.cas_attempts += 1;
        let wall = self.wall_time(now);
        let cutoff = self.tombstone_cutoff(wall);
        let applied = self
            .store
            .apply_local(key, Box::new(desired), expected, wall, cutoff)
            .inspect_err(|e| {
                if matches!(e, Error::CasConflict { .. }) {
                    self.stats.cas_conflicts += 1;
                }
            })?;
        let Some(applied) = applied else {
            return Ok(CasOutcome::Unchanged);
        };
        self.stats.cas_successes += 1;
        let version = applied.version;
        self.changed(now, key);
        self.queue_change(now, key, applied, Origin::Local);
        Ok(CasOutcome::Updated { version })
    }

    /// Deletes `key`: it reads as absent at once, the deletion is gossiped, and the key is
    /// forgotten `obsolete_entries_timeout` later. False if it was absent or already deleted.
    pub fn delete(&mut self, now: Instant, key: &str) -> bool {
        let Some(applied) = self.store.delete(key, self.wall_time(now)) else {
            return false;
        };
        self.stats.deletes += 1;
        self.changed(now, key);
        self.queue_change(now, key, applied, Origin::Local);
        true
    }

    /// Watches one key: an [`Event::Changed`] each time it changes (coalesced).
    pub fn watch_key(&mut self, key: &str) -> WatchId {
        self.watchers.watch_key(key)
    }

    /// Watches every key starting with `prefix`.
    pub fn watch_prefix(&mut self, prefix: &str) -> WatchId {
        self.watchers.watch_prefix(prefix)
    }

    /// Stops a watch; false if there was none.
    pub fn unwatch(&mut self, watch: WatchId) -> bool {
        self.watchers.unwatch(watch)
    }

    // ---- observation --------------------------------------------------------------------------

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let (local, forwarded) = self.outbox.stats();
        let (local_queued, forwarded_queued) = self.outbox.lens();
        Stats {
            local_queue: local,
            forwarded_queue: forwarded,
            local_queued,
            forwarded_queued,
            watch_drops: self.watchers.dropped(),
            watch_coalesced: self.watchers.coalesced(),
            keys: self.store.len(),
            ..self.stats
        }
    }

    /// The message history (empty unless `message_history_bytes` > 0).
    #[must_use]
    pub fn history(&self) -> &MessageHistory {
        &self.history
    }

    /// Forgets the message history.
    pub fn clear_history(&mut self) {
        self.history.clear();
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
