//! The composed node: SWIM, the KV store and the ring behind one sans-IO vocabulary.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumour_gossip::Gossip;
use rumour_ring::{Lifecycler, Ring, State as InstanceState};
use rumour_swim::{Event as SwimEvent, Member, NodeName, PullPush, State, Swim};
use rumour_transport::frame::FrameCodec;
use rumour_wire::BoundedQueue;

use crate::config::{NodeConfig, SIM_EPOCH, Wire};
use crate::envelope::{self, Channel};
use crate::error::Error;
use crate::event::NodeEvent;
use crate::join::{JoinSettings, JoinStatus, Joining, Step};
use crate::memberlist::{Adapter, MemberlistStats, StreamInput};
use crate::sim::Machine;
use crate::transmit::{Delivery, Transmit};
use crate::user::{self, UserMessages, UserStats};

/// SWIM messages (and user messages) one stream may carry (a real node sends one: its state
/// exchange, or one user message); the rest are refused unread and counted.
const MAX_SWIM_STREAM_PARTS: usize = 4;
/// Most events a node holds for its user; past it the oldest is dropped and counted.
const EVENT_CAPACITY: usize = 4096;
/// Transmits' room the outbox keeps once drained; a burst beyond it is given back.
const OUTBOX_RETAINED: usize = 32;
/// Bytes of memberlist's 1,400-byte buffer the SWIM machine leaves unused in memberlist mode
/// (its largest ping, with 512 bytes of metadata, must still fit what remains).
const MEMBERLIST_RESERVE: usize = 200;
/// Slack kept free in every datagram for the one-byte channel tag's effect on length prefixes.
const TAG_SLACK: usize = 8;

/// Counters of a node (its layers keep their own too: [`Node::swim`], [`Node::gossip`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Suspicions this node raised.
    pub suspicions: u64,
    /// Refutations of accusations against this node.
    pub refutations: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Streams sent.
    pub streams_sent: u64,
    /// Bytes sent, frames included.
    pub bytes_sent: u64,
    /// Frames dropped on receipt (checksum, label, structure).
    pub frames_dropped: u64,
    /// Messages a layer refused (bad bytes, unknown channel).
    pub messages_refused: u64,
    /// Events dropped because nobody read them.
    pub events_dropped: u64,
    /// Ring writes that failed (for example no free tokens).
    pub ring_errors: u64,
    /// User messages and broadcasts.
    pub user: UserStats,
}

/// What a leaving node does with its ring instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaveMode {
    /// The instance becomes a `Left` tombstone without tokens: its tokens go to the others at
    /// once (dskit's default unregister-on-shutdown).
    #[default]
    MarkLeft,
    /// The instance stays in the ring as it is, tokens included, and only its heartbeats stop
    /// (dskit's `-ring.unregister-on-shutdown=false`, "keep instance in the ring on shutdown"):
    /// an instance restarting with the same id (a stateful set) takes its tokens back, and until
    /// then readers see it unhealthy once its heartbeat is older than `heartbeat_timeout`.
    KeepInstance,
}

/// A rumour node as a sans-IO state machine. See the crate documentation for the driving loop.
///
/// Call order: after any `handle_*` call or command, drain [`Node::poll_transmit`] and
/// [`Node::poll_event`], then sleep until [`Node::poll_timeout`] and call
/// [`Node::handle_timeout`].
#[derive(Clone)]
pub struct Node {
    swim: Swim,
    gossip: Gossip,
    frame: FrameCodec,
    lifecycler: Option<Lifecycler>,
    ring_key: String,
    gossip_interval: Duration,
    gossip_nodes: usize,
    /// The earliest instant the next gossip tick may run: a tick runs only when something waits
    /// to be gossiped (see [`Node::gossip_pending`]), at most one per `gossip_interval`.
    next_gossip: Instant,
    next_heartbeat: Option<Instant>,
    /// The member table generation the KV peer set was last reconciled with.
    peers_generation: u64,
    /// SWIM's dropped-event count when the KV peer set was last rebuilt from the table.
    peers_events_dropped: u64,
    outbox: VecDeque<Transmit>,
    events: BoundedQueue<NodeEvent>,
    stats: NodeStats,
    user: UserMessages,
    /// The join in progress, if any (see [`crate::join`]).
    joining: Option<Joining>,
    join_status: JoinStatus,
    /// The memberlist adapter, in [`Wire::Memberlist`] mode (the KV store then runs over
    /// memberlist's user and local-state channels, as dskit's).
    memberlist: Option<Adapter>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.swim.local_name())
            .field("alive", &self.swim.num_alive())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Node {
    /// A node started at `now`, drawing every random choice from `rng`.
    ///
    /// # Errors
    /// A configuration the layers refuse (name, metadata, instance id).
    pub fn new(config: NodeConfig, mut rng: ChaCha8Rng, now: Instant) -> Result<Node, Error> {
        let frame = FrameCodec::new(config.frame.clone()).with_nonce_rng(nonce_rng(&rng));
        let frame_overhead = frame.header_len() + TAG_SLACK;
        let gossip_interval = config.gossip_interval();
        let gossip_nodes = config.swim.gossip_nodes().get();
        let mut swim_config = config
            .swim
            .to_builder()
            .frame_overhead(frame_overhead)
            .message_overhead(envelope::TAG_LEN)
            .packet_budget(
                std::num::NonZeroUsize::new(frame.packet_budget())
                    .unwrap_or(config.swim.packet_budget()),
            );
        if let Wire::Memberlist(_) = &config.wire {
            // memberlist's push/pull has no digest; its metadata is at most 512 bytes; its
            // MessagePack is larger than swim's postcard (field names), so the machine's budget
            // is smaller than memberlist's buffer; the adapter splits what comes out too large.
            swim_config = swim_config
                .pullpush_digest(false)
                .meta_max_size(
                    config
                        .swim
                        .meta_max_size()
                        .min(rumour_memberlist::META_MAX_SIZE),
                )
                .packet_budget(
                    std::num::NonZeroUsize::new(crate::memberlist::UDP_BUFFER_SIZE)
                        .expect("non-zero"),
                )
                .frame_overhead(MEMBERLIST_RESERVE)
                .message_overhead(0);
        }
        let swim_config = swim_config.build()?;
        let mut gossip_config = config.gossip.clone();
        gossip_config.frame_overhead = frame_overhead;
        gossip_config.message_overhead = envelope::TAG_LEN;
        gossip_config.packet_budget = frame.packet_budget();
        gossip_config.advertise_addr = config.addr;
        if let Wire::Memberlist(_) = &config.wire {
            // memberlist's push/pull carries the whole store (dskit's `LocalState`), so the
            // store's own pull-push is off; its changes go out as user messages in the same
            // compounds as SWIM's, whose size the store overestimates by
            // `KV_MESSAGE_OVERHEAD` per change.
            gossip_config.pullpush_interval = None;
            gossip_config.packet_budget = crate::memberlist::UDP_BUFFER_SIZE;
            gossip_config.frame_overhead = MEMBERLIST_RESERVE;
            gossip_config.message_overhead = crate::memberlist::KV_MESSAGE_OVERHEAD;
        }
        let child = |rng: &mut ChaCha8Rng| ChaCha8Rng::seed_from_u64(rng.next_u64());
        let (swim_rng, gossip_rng, ring_rng) = (child(&mut rng), child(&mut rng), child(&mut rng));
        let swim = Swim::new(
            swim_config,
            NodeName::new(&config.name)?,
            config.addr,
            config.meta.clone(),
            swim_rng,
            now,
        )?;
        let epoch = config.wall_epoch.unwrap_or((now, SIM_EPOCH));
        let mut gossip = Gossip::new(gossip_config, gossip_rng, epoch);
        gossip.register::<Ring>();
        let lifecycler = config
            .ring
            .clone()
            .map(|c| Lifecycler::new(c, ring_rng))
            .transpose()?;
        // Broadcast sequences start at the wall clock in microseconds: a restarted node never
        // reuses a name its peers still remember.
        let first_seq = gossip.wall_time(now).0.saturating_mul(1000);
        let user = UserMessages::new(config.swim.retransmit_mult().get(), first_seq);
        let memberlist = match &config.wire {
            Wire::Memberlist(options) => Some(Adapter::new(options, nonce_rng(&rng))),
            Wire::Rumour => None,
        };
        let mut node = Node {
            memberlist,
            swim,
            gossip,
            frame,
            next_heartbeat: lifecycler.as_ref().map(|_| now),
            lifecycler,
            ring_key: config.ring_key,
            gossip_interval,
            gossip_nodes,
            // A random phase: nodes started together do not gossip in lockstep.
            next_gossip: now + gossip_interval.mul_f64(rng.gen_range(0.0..1.0)),
            peers_generation: 0,
            peers_events_dropped: 0,
            outbox: VecDeque::new(),
            events: BoundedQueue::new(EVENT_CAPACITY),
            stats: NodeStats::default(),
            user,
            joining: None,
            join_status: JoinStatus::Idle,
        };
        node.register_in_ring(now);
        node.pump(now);
        Ok(node)
    }

    // ---- getters ------------------------------------------------------------------------------

    /// This node's member name.
    pub fn name(&self) -> &str {
        self.swim.local_name().as_str()
    }

    /// The membership layer.
    pub fn swim(&self) -> &Swim {
        &self.swim
    }

    /// The KV store.
    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    /// Every known member, sorted by name.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.swim.members()
    }

    /// Members this node considers alive, itself included.
    pub fn num_alive(&self) -> usize {
        self.swim.num_alive()
    }

    /// The state this node holds for member `name`.
    pub fn member_state(&self, name: &str) -> Option<State> {
        self.swim.member(name).map(|m| m.state)
    }

    /// The ring, if the store holds one.
    pub fn ring(&self) -> Option<Ring> {
        self.gossip.get::<Ring>(&self.ring_key)
    }

    /// The node's counters.
    pub fn stats(&self) -> NodeStats {
        let swim = self.swim.stats();
        NodeStats {
            suspicions: swim.suspicions,
            refutations: swim.refutations,
            frames_dropped: self.frame.stats().dropped_total(),
            events_dropped: self.events.dropped(),
            user: self.user.stats,
            ..self.stats.clone()
        }
    }

    /// The memberlist adapter's counters, in [`Wire::Memberlist`] mode.
    pub fn memberlist_stats(&self) -> Option<MemberlistStats> {
        self.memberlist.as_ref().map(|m| m.stats)
    }

    /// The memberlist codec inbound bytes are decoded with, in [`Wire::Memberlist`] mode (the
    /// driver's transport uses a copy to find where a stream message ends).
    pub fn memberlist_codec(&self) -> Option<&rumour_memberlist::Codec> {
        self.memberlist.as_ref().map(Adapter::codec)
    }

    /// Replaces the generator of the memberlist mode's encryption nonces (the tokio driver
    /// seeds one from the operating system; by default it derives from the node's seed, so
    /// the simulator replays byte for byte).
    pub fn set_memberlist_nonces(&mut self, nonces: ChaCha8Rng) {
        if let Some(adapter) = self.memberlist.as_mut() {
            adapter.set_nonces(nonces);
        }
    }

    /// The transport frame codec (its counters count dropped frames by reason).
    pub fn frame(&self) -> &FrameCodec {
        &self.frame
    }

    // ---- commands -----------------------------------------------------------------------------

    /// Joins the cluster through `seeds` (a full-state exchange with each, KV store included),
    /// retrying with the default [`JoinSettings`] (1 s doubling to 1 min, 10 retries) until
    /// the node sees another live member. See [`Node::start_join`].
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) {
        self.start_join(now, seeds, JoinSettings::default());
    }

    /// Joins the cluster through `seeds`: a full-state exchange with each now, tried again
    /// with back-off until the node sees `settings.min_joins` other live members or the
    /// retries run out ([`Node::join_status`] tells which). Replaces a join in progress.
    pub fn start_join(&mut self, now: Instant, seeds: &[SocketAddr], settings: JoinSettings) {
        let joining = Joining::new(now, seeds.to_vec(), settings);
        self.join_status = joining.status();
        self.joining = Some(joining);
        self.join_once(now, seeds);
    }

    /// One full-state exchange with each of `seeds`, never retried (a periodic rejoin).
    pub fn join_once(&mut self, now: Instant, seeds: &[SocketAddr]) {
        if !seeds.is_empty() {
            if let Err(error) = self.swim.join(now, seeds) {
                tracing::warn!(%error, "join refused");
            }
        }
        self.pump(now);
    }

    /// Replaces the seeds of the next attempts of the join in progress (the driver resolves
    /// seed names again after every attempt).
    pub fn set_join_seeds(&mut self, seeds: &[SocketAddr]) {
        if let Some(joining) = self.joining.as_mut() {
            joining.seeds = seeds.to_vec();
        }
    }

    /// Where the join stands.
    pub fn join_status(&self) -> JoinStatus {
        self.join_status
    }

    /// Moves this node's ring instance to `state` (for example `Leaving` before a graceful
    /// shutdown, so that writers stop picking it while it hands its data over, as dskit's
    /// lifecycler does). Does nothing without a ring instance.
    ///
    /// # Errors
    /// The store refused the write.
    pub fn set_ring_state(&mut self, now: Instant, state: InstanceState) -> Result<(), Error> {
        let Some(lifecycler) = self.lifecycler.as_mut() else {
            return Ok(());
        };
        let wall = self.gossip.wall_time(now);
        let result = self.gossip.cas::<Ring>(now, &self.ring_key, |current| {
            lifecycler
                .set_state(current.unwrap_or(&Ring::new()), state, wall)
                .ok()
                .flatten()
        });
        self.pump(now);
        result.map(|_| ()).map_err(Error::from)
    }

    /// Leaves the cluster: the ring instance becomes a Left tombstone (call
    /// [`Node::set_ring_state`] with `Leaving` first for dskit's Leaving-then-Left sequence) and
    /// the member says goodbye directly to several members. Same as
    /// [`Node::leave_with`]`(now, LeaveMode::MarkLeft)`.
    ///
    /// # Errors
    /// The membership layer refused (for example the node already left).
    pub fn leave(&mut self, now: Instant) -> Result<(), Error> {
        self.leave_with(now, LeaveMode::MarkLeft)
    }

    /// Leaves the cluster, doing with the ring instance what `mode` says (see [`LeaveMode`]);
    /// the member says goodbye directly to several members. Ring heartbeats stop either way.
    ///
    /// # Errors
    /// The membership layer refused (for example the node already left).
    pub fn leave_with(&mut self, now: Instant, mode: LeaveMode) -> Result<(), Error> {
        if let Some(lifecycler) = self.lifecycler.as_mut() {
            if mode == LeaveMode::MarkLeft {
                let result = self.gossip.cas::<Ring>(now, &self.ring_key, |current| {
                    Some(lifecycler.unregister(current.unwrap_or(&Ring::new())))
                });
                if result.is_err() {
                    self.stats.ring_errors += 1;
                }
            }
            self.next_heartbeat = None;
        }
        let result = self.swim.leave(now);
        self.pump(now);
        Ok(result?)
    }

    /// Replaces this node's metadata and announces it to the cluster with a new incarnation
    /// (memberlist's `UpdateNode`): every member sees a [`NodeEvent::MemberUpdated`] carrying it.
    ///
    /// # Errors
    /// Metadata over the configured `meta_max_size` (nothing changes), or the node has left.
    pub fn set_meta(&mut self, now: Instant, meta: impl Into<Bytes>) -> Result<(), Error> {
        let result = self.swim.set_meta(now, meta);
        self.pump(now);
        Ok(result?)
    }

    /// Installs (or removes) the hook that may refuse a new member or a member's new address
    /// or metadata, learned from gossip or a state exchange (memberlist's alive and merge
    /// delegates). Refusals are counted in the membership layer's stats.
    pub fn set_admission(&mut self, admission: Option<rumour_swim::Admission>) {
        self.swim.set_admission(admission);
    }

    /// Compare-and-swap on the ring (see [`Gossip::cas`]).
    ///
    /// # Errors
    /// The store refused (retries exhausted, codec mismatch).
    pub fn cas_ring(
        &mut self,
        now: Instant,
        f: impl FnMut(Option<&Ring>) -> Option<Ring>,
    ) -> Result<(), Error> {
        let result = self.gossip.cas::<Ring>(now, &self.ring_key, f);
        self.pump(now);
        result.map(|_| ()).map_err(Error::from)
    }

    /// Registers the codec of `T` in the KV store, so that values of that type received from
    /// peers are decoded and merged (the ring's is registered from the start; a writer's
    /// [`Node::cas`] registers its own type). In [`Wire::Memberlist`] mode this also decides
    /// which user messages are the store's: one that decodes as a dskit `KeyValuePair` of a
    /// registered codec is merged, any other goes to the application.
    pub fn register<T: rumour_ring::Mergeable>(&mut self) {
        self.gossip.register::<T>();
    }

    /// Compare-and-swap on any key of the KV store (see [`Gossip::cas`]).
    ///
    /// # Errors
    /// The store refused (retries exhausted, codec mismatch, empty key).
    pub fn cas<T: rumour_ring::Mergeable>(
        &mut self,
        now: Instant,
        key: &str,
        f: impl FnMut(Option<&T>) -> Option<T>,
    ) -> Result<rumour_gossip::CasOutcome, Error> {
        let result = self.gossip.cas::<T>(now, key, f);
        self.pump(now);
        Ok(result?)
    }

    /// Deletes a key of the KV store (see [`Gossip::delete`]); false if it was absent.
    pub fn delete(&mut self, now: Instant, key: &str) -> bool {
        let deleted = self.gossip.delete(now, key);
        self.pump(now);
        deleted
    }

    /// Reports a [`NodeEvent::KeyChanged`] each time `key` changes.
    pub fn watch_key(&mut self, key: &str) -> rumour_gossip::WatchId {
        self.gossip.watch_key(key)
    }

    /// Reports a [`NodeEvent::KeyChanged`] each time a key starting with `prefix` changes, and a
    /// [`NodeEvent::WatchLagged`] when more than `watch_buffer` keys were pending and some
    /// notifications were lost (re-read the prefix then).
    pub fn watch_prefix(&mut self, prefix: &str) -> rumour_gossip::WatchId {
        self.gossip.watch_prefix(prefix)
    }

    /// Sends the application's `bytes` to the member named `target` (a member name or its
    /// address), as a datagram (memberlist's `SendBestEffort`) or on a stream (`SendReliable`).
    /// The receiver reports a [`NodeEvent::UserMessage`]. Only live members this node has
    /// confirmed (they answered its ping) are sent to.
    ///
    /// # Errors
    /// [`Error::UnknownMember`] for any other target, [`Error::UserMessageTooLarge`] for a
    /// datagram over the packet budget or a stream over the message limit. Refusals are
    /// counted in [`UserStats::refused`].
    pub fn send_user_message(
        &mut self,
        now: Instant,
        target: &str,
        bytes: &[u8],
        delivery: Delivery,
    ) -> Result<(), Error> {
        let result = self.try_send_user_message(target, bytes, delivery);
        match &result {
            Ok(()) => self.user.stats.sent += 1,
            Err(_) => self.user.stats.refused += 1,
        }
        self.pump(now);
        result
    }

    /// Queues the application's `bytes` to be broadcast to every member: piggybacked on the
    /// gossip ticks after membership and KV updates, sent `retransmit_mult * log10(n + 1)` times
    /// by every node that receives it, each node reporting it once as a
    /// [`NodeEvent::UserMessage`] (memberlist's `GetBroadcasts`, with forwarding built in). The
    /// queue holds 1,024 broadcasts; past it the most-sent is dropped.
    ///
    /// # Errors
    /// [`Error::UserMessageTooLarge`] if the broadcast does not fit one datagram (counted in
    /// [`UserStats::refused`]).
    pub fn broadcast_user(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let broadcast = self
            .user
            .new_broadcast(self.swim.local_name().as_str(), bytes);
        let encoded = broadcast.body().len();
        self.check_datagram(encoded, bytes.len(), "broadcast")
            .inspect_err(|_| self.user.stats.refused += 1)?;
        self.user.start(broadcast);
        Ok(())
    }

    /// User broadcasts waiting to be sent (or still to be retransmitted).
    #[must_use]
    pub fn pending_user_broadcasts(&self) -> usize {
        self.user.queue.len()
    }

    /// Removes a watch; false if it did not exist.
    pub fn unwatch(&mut self, watch: rumour_gossip::WatchId) -> bool {
        self.gossip.unwatch(watch)
    }

    // ---- inputs -------------------------------------------------------------------------------

    /// A datagram arrived.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.memberlist.is_some() {
            self.handle_memberlist_packet(now, from, bytes);
            self.pump(now);
            return;
        }
        let Ok(messages) = self.frame.decode_packet(bytes) else {
            return; // counted by the frame codec
        };
        for message in &messages {
            let result = match envelope::untag(message) {
                Ok((Channel::Swim, body)) => self
                    .swim
                    .handle_packet(now, from, body)
                    .map_err(Error::from),
                Ok((Channel::Gossip, body)) => self
                    .gossip
                    .handle_packet(now, from, body)
                    .map_err(Error::from),
                Ok((Channel::User, body)) => self.handle_user(from, body),
                Err(error) => Err(error),
            };
            if result.is_err() {
                self.stats.messages_refused += 1;
            }
        }
        self.pump(now);
    }

    /// A reliable message arrived.
    pub fn handle_stream(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.memberlist.is_some() {
            self.handle_memberlist_stream(now, from, bytes);
            self.pump(now);
            return;
        }
        let Ok(body) = self.frame.decode_stream(bytes) else {
            return; // counted by the frame codec
        };
        let Ok(parts) = envelope::decode_stream(&body) else {
            self.stats.messages_refused += 1;
            self.pump(now);
            return;
        };
        // SWIM's parts first (a joiner's state exchange makes it a member before the KV
        // store answers), then the KV store's, which bounds how many one stream may carry.
        let mut swim_parts = 0;
        for part in parts
            .iter()
            .filter(|(c, _)| *c == Channel::Swim)
            .map(|(_, p)| *p)
        {
            swim_parts += 1;
            let result = if swim_parts > MAX_SWIM_STREAM_PARTS {
                Err(())
            } else {
                self.swim.handle_stream(now, from, part).map_err(drop)
            };
            if result.is_err() {
                self.stats.messages_refused += 1;
            }
        }
        let kv = parts
            .iter()
            .filter(|(c, _)| *c == Channel::Gossip)
            .map(|(_, p)| *p);
        if self.gossip.handle_stream_messages(now, from, kv).is_err() {
            self.stats.messages_refused += 1;
        }
        let user = parts.iter().filter(|(c, _)| *c == Channel::User);
        for (i, (_, part)) in user.enumerate() {
            if i >= MAX_SWIM_STREAM_PARTS || self.handle_user(from, part).is_err() {
                self.stats.messages_refused += 1;
            }
        }
        self.pump(now);
    }

    /// Time passed: probes, gossip ticks, pull-push, ring heartbeats.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.swim.poll_timeout().is_some_and(|t| t <= now) {
            self.swim.handle_timeout(now);
        }
        if self.gossip.poll_timeout().is_some_and(|t| t <= now) {
            self.gossip.handle_timeout(now);
        }
        if self.next_gossip <= now && self.gossip_pending() {
            self.next_gossip = now + self.gossip_interval;
            self.reconcile_peers(now);
            self.gossip_tick(now);
        }
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.heartbeat(now);
        }
        self.pump(now);
    }

    // ---- outputs ------------------------------------------------------------------------------

    /// The next framed message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.outbox.pop_front();
        if transmit.is_none() && self.outbox.capacity() > OUTBOX_RETAINED {
            // A burst (a join's state exchanges) must not pin its memory in every node.
            self.outbox.shrink_to(OUTBOX_RETAINED);
        }
        transmit
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop()
    }

    /// When to call [`Node::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.swim.poll_timeout(),
            self.gossip.poll_timeout(),
            self.gossip_pending().then_some(self.next_gossip),
            self.next_heartbeat,
            self.joining.as_ref().map(|j| j.next),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals ----------------------------------------------------------------------------

    /// Whether a gossip tick has work: membership updates, KV changes or user broadcasts are
    /// queued, or the member table moved since the KV peer set was last reconciled. An idle
    /// node does not wake up every `gossip_interval` for nothing, and the first update queued
    /// after a quiet spell leaves at once instead of waiting for the next tick of a fixed grid
    /// (each hop of an idle cluster's dissemination waits a network delay, not up to a whole
    /// `gossip_interval`); later ones keep to one tick per `gossip_interval`.
    fn gossip_pending(&self) -> bool {
        self.swim.pending_broadcasts() > 0
            || self.gossip.has_broadcasts()
            || !self.user.queue.is_empty()
            || self.swim.table_generation() != self.peers_generation
    }

    fn register_in_ring(&mut self, now: Instant) {
        let Some(lifecycler) = self.lifecycler.as_mut() else {
            return;
        };
        let wall = self.gossip.wall_time(now);
        let result = self.gossip.cas::<Ring>(now, &self.ring_key, |current| {
            lifecycler
                .register(current.unwrap_or(&Ring::new()), wall)
                .ok()
        });
        if result.is_err() {
            self.stats.ring_errors += 1;
        }
    }

    fn heartbeat(&mut self, now: Instant) {
        let Some(lifecycler) = self.lifecycler.as_mut() else {
            self.next_heartbeat = None;
            return;
        };
        let period = lifecycler.config().heartbeat_period;
        let wall = self.gossip.wall_time(now);
        let result = self.gossip.cas::<Ring>(now, &self.ring_key, |current| {
            lifecycler
                .heartbeat(current.unwrap_or(&Ring::new()), wall)
                .ok()
                .flatten()
        });
        if result.is_err() {
            self.stats.ring_errors += 1;
        }
        self.next_heartbeat = Some(now + period);
    }

    /// One gossip round: SWIM updates and KV changes to `gossip_nodes` members, packed together.
    ///
    /// The budget is shared fairly: SWIM's queued updates are promised up to half of it, KV
    /// changes fill the rest, and SWIM then takes whatever KV left. So a flood of membership
    /// updates (a mass join) cannot starve KV dissemination, nor a burst of KV writes starve
    /// failure detection. Each layer fills once per datagram: a second fill would put the same
    /// change into the datagram twice and waste one of its transmits.
    fn gossip_tick(&mut self, now: Instant) {
        let members = self.swim.num_alive();
        let budget = self.swim.config().datagram_budget();
        let overhead = self.swim.config().message_overhead();
        let cost = |parts: &[(Channel, Bytes)]| -> usize {
            parts
                .iter()
                .map(|(_, m)| rumour_wire::varint::packed_len(m.len(), overhead))
                .sum()
        };
        for to in self.swim.gossip_targets(now, self.gossip_nodes) {
            let swim_share = self.swim.pending_broadcast_bytes().min(budget / 2);
            let mut parts: Vec<(Channel, Bytes)> = self
                .gossip
                .fill_broadcasts(members, budget - swim_share)
                .into_iter()
                .map(|m| (Channel::Gossip, m))
                .collect();
            let swim_room = budget.saturating_sub(cost(&parts));
            parts.extend(
                self.swim
                    .fill_broadcasts(swim_room)
                    .into_iter()
                    .map(|m| (Channel::Swim, m)),
            );
            // User broadcasts take what membership and KV left (as memberlist's
            // `GetBroadcasts` gets the room its own broadcasts leave).
            let user_room = budget.saturating_sub(cost(&parts));
            parts.extend(
                self.user
                    .queue
                    .fill(members, user_room, |len| {
                        rumour_wire::varint::packed_len(len, overhead)
                    })
                    .into_iter()
                    .map(|b| (Channel::User, b.body())),
            );
            self.send_datagram(to, &parts);
            for large in self.gossip.fill_stream_broadcasts(members) {
                self.send_stream(to, &[(Channel::Gossip, large)]);
            }
        }
    }

    /// Moves what the layers produced into the node's outbox and events.
    fn pump(&mut self, now: Instant) {
        self.drive_join(now);
        while let Some(event) = self.swim.poll_event() {
            self.membership_changed(now, &event);
            if let Some(event) = NodeEvent::from_swim(&event) {
                self.push_event(event);
            }
        }
        while let Some(event) = self.gossip.poll_event() {
            match event {
                rumour_gossip::Event::Changed { key, .. } => {
                    self.push_event(NodeEvent::KeyChanged { key });
                }
                rumour_gossip::Event::Lagged { watch, dropped } => {
                    self.push_event(NodeEvent::WatchLagged { watch, dropped });
                }
                _ => {}
            }
        }
        let budget = self.swim.config().datagram_budget();
        while let Some(t) = self.swim.poll_transmit() {
            let mut parts: Vec<(Channel, Bytes)> = t
                .messages
                .iter()
                .map(|m| (Channel::Swim, m.clone()))
                .collect();
            if t.delivery == Delivery::Stream {
                if let Some(PullPush::Request { join }) = t.pullpush {
                    if let Some(adapter) = self.memberlist.as_mut() {
                        adapter.expect_reply(t.to, join);
                    } else if let Some(opening) = self.gossip.start_pullpush(now, t.to, join) {
                        parts.push((Channel::Gossip, opening));
                    }
                }
                self.send_stream(t.to, &parts);
            } else {
                let room = self.swim.remaining_budget(&t);
                let members = self.swim.num_alive();
                parts.extend(
                    self.gossip
                        .fill_broadcasts(members, room)
                        .into_iter()
                        .map(|m| (Channel::Gossip, m)),
                );
                self.send_datagram(t.to, &parts);
            }
        }
        while let Some(t) = self.gossip.poll_transmit() {
            let mut parts: Vec<(Channel, Bytes)> = t
                .messages
                .iter()
                .map(|m| (Channel::Gossip, m.clone()))
                .collect();
            if t.delivery == Delivery::Stream {
                self.send_stream(t.to, &parts);
            } else {
                let used: usize = t
                    .messages
                    .iter()
                    .map(|m| self.swim.config().packed_len(m.len()))
                    .sum();
                parts.extend(
                    self.swim
                        .fill_broadcasts(budget.saturating_sub(used))
                        .into_iter()
                        .map(|m| (Channel::Swim, m)),
                );
                self.send_datagram(t.to, &parts);
            }
        }
    }

    /// Judges the join in progress: over once enough members are seen or the retries ran out,
    /// else another attempt when its back-off is up.
    fn drive_join(&mut self, now: Instant) {
        let Some(joining) = self.joining.as_mut() else {
            return;
        };
        let seen = self.swim.num_alive().saturating_sub(1);
        match joining.step(now, seen) {
            Step::Wait => {}
            Step::Attempt => {
                self.join_status = joining.status();
                let seeds = joining.seeds.clone();
                tracing::debug!(attempts = self.join_status.attempts(), "joining again");
                if !seeds.is_empty() {
                    if let Err(error) = self.swim.join(now, &seeds) {
                        tracing::warn!(%error, "join refused");
                    }
                }
            }
            Step::Done(status) => {
                self.join_status = status;
                self.joining = None;
            }
        }
    }

    /// Tells the KV store which peers exist: only members that answered this node themselves
    /// (confirmed), so a forged alive never makes a KV peer.
    fn membership_changed(&mut self, now: Instant, event: &SwimEvent) {
        if self.memberlist.is_some() {
            // The store's peer set serves only its own pull-push, which memberlist's push/pull
            // replaces; its gossip goes to SWIM's targets.
            return;
        }
        match event {
            SwimEvent::MemberConfirmed(m) => self.gossip.handle_peer_up(now, m.addr),
            SwimEvent::MemberJoined(m) | SwimEvent::MemberUpdated(m)
                if m.state == State::Alive && self.swim.is_confirmed(m.name.as_str()) =>
            {
                self.gossip.handle_peer_up(now, m.addr);
            }
            SwimEvent::MemberFailed(m) | SwimEvent::MemberLeft(m) | SwimEvent::MemberReaped(m) => {
                self.gossip.handle_peer_down(now, m.addr)
            }
            _ => {}
        }
    }

    fn try_send_user_message(
        &mut self,
        target: &str,
        bytes: &[u8],
        delivery: Delivery,
    ) -> Result<(), Error> {
        let to = self
            .user_target(target)
            .ok_or_else(|| Error::UnknownMember {
                target: target.to_string(),
            })?;
        let body = user::encode_direct(self.swim.local_name().as_str(), bytes);
        match delivery {
            Delivery::Datagram => {
                self.check_datagram(body.len(), bytes.len(), "datagram")?;
                self.send_datagram(to, &[(Channel::User, Bytes::from(body))]);
            }
            Delivery::Stream if self.memberlist.is_some() => {
                self.send_memberlist_stream(to, &[(Channel::User, Bytes::from(body))]);
            }
            Delivery::Stream => {
                let stream = envelope::encode_stream(&[(Channel::User, &body)]);
                let framed = self.frame.encode_stream(&stream).map_err(|_| {
                    let max = self.frame.config().max_message;
                    Error::UserMessageTooLarge {
                        len: bytes.len(),
                        max: max.saturating_sub(stream.len() - bytes.len()),
                        delivery: "stream",
                    }
                })?;
                self.stats.streams_sent += 1;
                self.stats.bytes_sent += framed.len() as u64;
                self.outbox.push_back(Transmit {
                    to,
                    delivery: Delivery::Stream,
                    bytes: Bytes::from(framed),
                });
            }
        }
        Ok(())
    }

    /// Whether a user message of `encoded` bytes (a `payload` of `len`) fits one datagram.
    fn check_datagram(
        &self,
        encoded: usize,
        len: usize,
        delivery: &'static str,
    ) -> Result<(), Error> {
        let budget = self.swim.config().datagram_budget();
        let overhead = self.swim.config().message_overhead();
        let packed = rumour_wire::varint::packed_len(encoded, overhead);
        if packed <= budget {
            return Ok(());
        }
        Err(Error::UserMessageTooLarge {
            len,
            max: budget.saturating_sub(packed - len),
            delivery,
        })
    }

    /// The address of the live, confirmed member named `target` or at address `target`.
    fn user_target(&self, target: &str) -> Option<SocketAddr> {
        let addr = target.parse::<SocketAddr>().ok();
        let local = self.swim.local_name().as_str();
        self.swim
            .members()
            .find(|m| match addr {
                Some(addr) => m.addr == addr,
                None => m.name.as_str() == target,
            })
            .filter(|m| {
                m.state.is_live()
                    && m.name.as_str() != local
                    && self.swim.is_confirmed(m.name.as_str())
            })
            .map(|m| m.addr)
    }

    /// A user message arrived on channel 2 from `source` (the datagram's source, or the
    /// stream's verified advertised address). A direct message is reported only if `source` is
    /// the advertised address of the member it names as its sender; a broadcast's origin is
    /// whoever started it, so it cannot be checked against the node that forwarded it.
    fn handle_user(&mut self, source: SocketAddr, body: &[u8]) -> Result<(), Error> {
        let decoded = user::decode(body).inspect_err(|_| self.user.stats.malformed += 1)?;
        let event = match decoded {
            user::Decoded::Direct { from, payload } => {
                if self.swim.member(from).is_none_or(|m| m.addr != source) {
                    self.user.stats.unverified += 1;
                    return Ok(());
                }
                self.user.stats.received += 1;
                NodeEvent::UserMessage {
                    from: from.to_string(),
                    bytes: Bytes::copy_from_slice(payload),
                    broadcast: false,
                }
            }
            user::Decoded::Broadcast {
                origin,
                seq,
                payload,
            } => {
                if !self.user.receive_broadcast(origin, seq, body) {
                    return Ok(());
                }
                NodeEvent::UserMessage {
                    from: origin.to_string(),
                    bytes: Bytes::copy_from_slice(payload),
                    broadcast: true,
                }
            }
        };
        self.push_event(event);
        Ok(())
    }

    /// Derives the KV peer set from the member table itself when SWIM dropped membership
    /// events since the last reconciliation (checked at most once per gossip tick, when the
    /// table changed): every confirmed member that is alive or suspect is a peer up, every
    /// other peer is down. Membership events keep the set current as they pass (so a join
    /// answer waiting for its peer goes out at once), but they travel through a bounded queue
    /// that drops under a mass join; this repairs whatever was dropped. Rebuilding on every
    /// table change instead cost 14 % of a 1,000-node join's simulation time.
    fn reconcile_peers(&mut self, now: Instant) {
        if self.memberlist.is_some() {
            return; // the store's own pull-push does not run in memberlist mode
        }
        let generation = self.swim.table_generation();
        if generation == self.peers_generation {
            return;
        }
        self.peers_generation = generation;
        // Every change of the table is an event, and `membership_changed` applies each one to
        // the peer set as it passes: only an event the bounded queue dropped (a full-state
        // exchange of thousands of members) leaves the set behind the table.
        let dropped = self.swim.stats().events_dropped;
        if dropped == self.peers_events_dropped {
            return;
        }
        self.peers_events_dropped = dropped;
        // Sorted vectors and binary searches: this runs every gossip tick while the table
        // changes (a whole join), so it must not build trees of every member.
        let mut up: Vec<SocketAddr> = self.swim.confirmed_live_addrs().collect();
        up.sort_unstable();
        up.dedup(); // two members may claim one address
        let alive = |state: &rumour_gossip::PeerState| *state == rumour_gossip::PeerState::Alive;
        let stale: Vec<SocketAddr> = self
            .gossip
            .peers()
            .filter(|(addr, state)| alive(state) && up.binary_search(addr).is_err())
            .map(|(addr, _)| addr)
            .collect();
        for addr in stale {
            self.gossip.handle_peer_down(now, addr);
        }
        let mut known: Vec<SocketAddr> = self
            .gossip
            .peers()
            .filter(|(_, state)| alive(state))
            .map(|(addr, _)| addr)
            .collect();
        known.sort_unstable();
        for addr in up {
            if known.binary_search(&addr).is_err() {
                self.gossip.handle_peer_up(now, addr);
            }
        }
    }

    fn push_event(&mut self, event: NodeEvent) {
        self.events.push(event);
    }

    /// Frames `parts` into as few datagrams as the packet budget allows.
    fn send_datagram(&mut self, to: SocketAddr, parts: &[(Channel, Bytes)]) {
        if self.memberlist.is_some() {
            self.send_memberlist_datagram(to, parts);
            return;
        }
        let budget = self.frame.packet_budget();
        let header = self.frame.header_len();
        // Each message is its channel's tag and the layer's bytes, framed as they are.
        let mut batch: Vec<[&[u8]; 2]> = Vec::with_capacity(parts.len());
        let mut len = header;
        for (channel, message) in parts {
            let cost = FrameCodec::packed_len(envelope::TAG_LEN + message.len());
            if !batch.is_empty() && len + cost > budget {
                self.flush_datagram(to, &batch);
                batch.clear();
                len = header;
            }
            len += cost;
            batch.push([channel.tag(), message]);
        }
        if !batch.is_empty() {
            self.flush_datagram(to, &batch);
        }
    }

    fn flush_datagram(&mut self, to: SocketAddr, batch: &[[&[u8]; 2]]) {
        let bytes = Bytes::from(self.frame.encode_packet_pieces(batch));
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        self.outbox.push_back(Transmit {
            to,
            delivery: Delivery::Datagram,
            bytes,
        });
    }

    fn send_stream(&mut self, to: SocketAddr, parts: &[(Channel, Bytes)]) {
        if self.memberlist.is_some() {
            self.send_memberlist_stream(to, parts);
            return;
        }
        let refs: Vec<(Channel, &[u8])> = parts.iter().map(|(c, m)| (*c, &m[..])).collect();
        match self.frame.encode_stream(&envelope::encode_stream(&refs)) {
            Ok(bytes) => {
                self.stats.streams_sent += 1;
                self.stats.bytes_sent += bytes.len() as u64;
                self.outbox.push_back(Transmit {
                    to,
                    delivery: Delivery::Stream,
                    bytes: Bytes::from(bytes),
                });
            }
            Err(error) => {
                tracing::warn!(%error, %to, "stream message over the size limit, not sent")
            }
        }
    }
}

/// The memberlist wire mode: the adapter's glue (see [`crate::memberlist`]).
impl Node {
    fn handle_memberlist_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Some(adapter) = self.memberlist.as_mut() else {
            return;
        };
        let Some(messages) = adapter.decode_packet(bytes) else {
            return;
        };
        for message in messages {
            let adapter = self.memberlist.as_mut().expect("memberlist mode");
            if let rumour_memberlist::Message::User(payload) = message {
                if let Some(payload) = adapter.receive_user(&mut self.gossip, now, from, payload) {
                    let from = self.name_at(from);
                    self.report_user(from, payload);
                }
                continue;
            }
            let Some(mapped) = adapter.inbound(&self.swim, from, message) else {
                continue;
            };
            if self
                .swim
                .handle_message(now, from, mapped, Delivery::Datagram)
                .is_err()
            {
                self.stats.messages_refused += 1;
            }
        }
    }

    fn handle_memberlist_stream(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Some(adapter) = self.memberlist.as_mut() else {
            return;
        };
        let (reply, input) = adapter.handle_stream(&self.swim, &self.gossip, from, bytes);
        if let Some(reply) = reply {
            self.push_stream(from, reply);
        }
        match input {
            StreamInput::Done => {}
            StreamInput::Swim(from, message) => {
                if self
                    .swim
                    .handle_message(now, from, message, Delivery::Stream)
                    .is_err()
                {
                    self.stats.messages_refused += 1;
                }
            }
            StreamInput::PushPull {
                from,
                state,
                user_state,
            } => {
                // Members first: a joiner is a member before its KV state merges.
                if let Some(state) = state {
                    if self
                        .swim
                        .handle_message(now, from, state, Delivery::Stream)
                        .is_err()
                    {
                        self.stats.messages_refused += 1;
                    }
                }
                if !user_state.is_empty() {
                    let adapter = self.memberlist.as_mut().expect("memberlist mode");
                    adapter.merge_user_state(&mut self.gossip, now, from, &user_state);
                }
            }
            StreamInput::User(payload) => {
                let adapter = self.memberlist.as_mut().expect("memberlist mode");
                if let Some(payload) = adapter.receive_user(&mut self.gossip, now, from, payload) {
                    let from = self.name_at(from);
                    self.report_user(from, payload);
                }
            }
        }
    }

    /// The name of the member at `addr`, or the address itself (memberlist's user messages
    /// name no sender).
    fn name_at(&self, addr: SocketAddr) -> String {
        self.swim
            .members()
            .find(|m| m.addr == addr)
            .map_or_else(|| addr.to_string(), |m| m.name.as_str().to_string())
    }

    fn report_user(&mut self, from: String, payload: Vec<u8>) {
        self.user.stats.received += 1;
        self.push_event(NodeEvent::UserMessage {
            from,
            bytes: Bytes::from(payload),
            broadcast: false,
        });
    }

    /// The payloads of memberlist messages for `parts`: swim messages re-encoded, user messages
    /// as their raw payload, KV changes as user messages holding a dskit `KeyValuePair`.
    fn memberlist_messages(
        &mut self,
        parts: &[(Channel, Bytes)],
    ) -> Vec<rumour_memberlist::Message> {
        let adapter = self.memberlist.as_mut().expect("memberlist mode");
        let mut out = Vec::with_capacity(parts.len());
        for (channel, body) in parts {
            match channel {
                Channel::Swim => match rumour_swim::message::Message::decode(body) {
                    Ok(message) => out.extend(adapter.outbound(&self.swim, message)),
                    Err(_) => adapter.stats.unmapped += 1,
                },
                Channel::User => match user::decode(body) {
                    Ok(
                        user::Decoded::Direct { payload, .. }
                        | user::Decoded::Broadcast { payload, .. },
                    ) => out.push(rumour_memberlist::Message::User(payload.to_vec())),
                    Err(_) => adapter.stats.unmapped += 1,
                },
                Channel::Gossip => {
                    out.extend(
                        adapter
                            .kv_payload(body)
                            .map(rumour_memberlist::Message::User),
                    );
                }
            }
        }
        out
    }

    fn send_memberlist_datagram(&mut self, to: SocketAddr, parts: &[(Channel, Bytes)]) {
        let messages: Vec<Vec<u8>> = self
            .memberlist_messages(parts)
            .iter()
            .map(rumour_memberlist::Message::encode)
            .collect();
        let adapter = self.memberlist.as_mut().expect("memberlist mode");
        let crc = adapter.wants_crc(&self.swim, to);
        for bytes in adapter.encode_packets(crc, messages) {
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += bytes.len() as u64;
            self.outbox.push_back(Transmit {
                to,
                delivery: Delivery::Datagram,
                bytes: Bytes::from(bytes),
            });
        }
    }

    /// Streams in memberlist mode: a full-state exchange becomes a push/pull carrying the KV
    /// store as its user state (its reply comes back on the same connection), a stream ping or
    /// ack its stream form, a user message or a KV change too large for a packet a reliable
    /// user message.
    fn send_memberlist_stream(&mut self, to: SocketAddr, parts: &[(Channel, Bytes)]) {
        use rumour_memberlist::StreamMessage;
        use rumour_swim::message::{Exchange, Message as SwimMessage};
        let mut streams = Vec::new();
        for (channel, body) in parts {
            let adapter = self.memberlist.as_mut().expect("memberlist mode");
            let message = match channel {
                Channel::Swim => match SwimMessage::decode(body) {
                    Ok(SwimMessage::State(state)) if state.exchange == Exchange::Request => {
                        Some(StreamMessage::PushPull(adapter.local_state(
                            &self.swim,
                            &self.gossip,
                            state.join,
                        )))
                    }
                    Ok(message) => match adapter.outbound(&self.swim, message) {
                        Some(rumour_memberlist::Message::Ping(p)) => Some(StreamMessage::Ping(p)),
                        Some(rumour_memberlist::Message::Ack(a)) => Some(StreamMessage::Ack(a)),
                        _ => None,
                    },
                    Err(_) => None,
                },
                Channel::User => match user::decode(body) {
                    Ok(user::Decoded::Direct { payload, .. }) => {
                        Some(StreamMessage::User(payload.to_vec()))
                    }
                    _ => None,
                },
                Channel::Gossip => match adapter.kv_payload(body) {
                    Some(payload) => Some(StreamMessage::User(payload)),
                    None => continue, // counted as unmapped
                },
            };
            match message {
                Some(message) => streams.extend(adapter.encode_stream(&message)),
                None => adapter.stats.unmapped += 1,
            }
        }
        for bytes in streams {
            self.push_stream(to, bytes);
        }
    }

    fn push_stream(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.stats.streams_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        self.outbox.push_back(Transmit {
            to,
            delivery: Delivery::Stream,
            bytes: Bytes::from(bytes),
        });
    }
}

impl Machine for Node {
    type Event = NodeEvent;

    fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        Node::handle_packet(self, now, from, bytes);
    }
    fn handle_stream(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        Node::handle_stream(self, now, from, bytes);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        Node::poll_transmit(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }
    fn poll_event(&mut self) -> Option<NodeEvent> {
        Node::poll_event(self)
    }
}

/// The generator of a node's frame nonces: the node's seeded generator on another ChaCha stream
/// (its own stream with the high bits of "nonce" flipped, so nodes of one simulation, which share
/// a seed on different streams, never share nonces), so the simulator replays byte for byte and
/// no random choice of the layers is disturbed. The tokio driver replaces it with one seeded from
/// the operating system.
fn nonce_rng(rng: &ChaCha8Rng) -> ChaCha8Rng {
    let mut nonces = rng.clone();
    nonces.set_stream(rng.get_stream() ^ 0x6e6f_6e63_6500_0000); // "nonce"
    nonces
}
