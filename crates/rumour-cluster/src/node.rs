//! The composed node: SWIM, the KV store and the ring behind one sans-IO vocabulary.

use std::collections::{BTreeSet, VecDeque};
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

use crate::config::{NodeConfig, SIM_EPOCH};
use crate::envelope::{self, Channel};
use crate::error::Error;
use crate::event::NodeEvent;
use crate::sim::Machine;
use crate::transmit::{Delivery, Transmit};

/// Most events a node holds for its user; past it the oldest is dropped and counted.
const EVENT_CAPACITY: usize = 4096;
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
pub struct Node {
    swim: Swim,
    gossip: Gossip,
    frame: FrameCodec,
    lifecycler: Option<Lifecycler>,
    ring_key: String,
    gossip_interval: Duration,
    gossip_nodes: usize,
    next_gossip: Instant,
    next_heartbeat: Option<Instant>,
    /// The member table generation the KV peer set was last reconciled with.
    peers_generation: u64,
    outbox: VecDeque<Transmit>,
    events: BoundedQueue<NodeEvent>,
    stats: NodeStats,
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
        let swim_config = config
            .swim
            .to_builder()
            .frame_overhead(frame_overhead)
            .message_overhead(envelope::TAG_LEN)
            .packet_budget(
                std::num::NonZeroUsize::new(frame.packet_budget())
                    .unwrap_or(config.swim.packet_budget()),
            )
            .build()?;
        let mut gossip_config = config.gossip.clone();
        gossip_config.frame_overhead = frame_overhead;
        gossip_config.message_overhead = envelope::TAG_LEN;
        gossip_config.packet_budget = frame.packet_budget();
        gossip_config.advertise_addr = config.addr;
        let child = |rng: &mut ChaCha8Rng| ChaCha8Rng::seed_from_u64(rng.next_u64());
        let (swim_rng, gossip_rng, ring_rng) = (child(&mut rng), child(&mut rng), child(&mut rng));
        let swim = Swim::new(
            swim_config,
            NodeName::new(config.name.clone())?,
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
        let mut node = Node {
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
            outbox: VecDeque::new(),
            events: BoundedQueue::new(EVENT_CAPACITY),
            stats: NodeStats::default(),
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
    pub fn members(&self) -> impl Iterator<Item = &Member> {
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
            ..self.stats.clone()
        }
    }

    /// The transport frame codec (its counters count dropped frames by reason).
    pub fn frame(&self) -> &FrameCodec {
        &self.frame
    }

    // ---- commands -----------------------------------------------------------------------------

    /// Joins the cluster through `seeds` (a full-state exchange with each, KV store included).
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) {
        if let Err(error) = self.swim.join(now, seeds) {
            tracing::warn!(%error, "join refused");
        }
        self.pump(now);
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

    /// Removes a watch; false if it did not exist.
    pub fn unwatch(&mut self, watch: rumour_gossip::WatchId) -> bool {
        self.gossip.unwatch(watch)
    }

    // ---- inputs -------------------------------------------------------------------------------

    /// A datagram arrived.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
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
        let Ok(body) = self.frame.decode_stream(bytes) else {
            return; // counted by the frame codec
        };
        match envelope::decode_stream(&body) {
            Ok(parts) => {
                for (channel, part) in parts {
                    let result = match channel {
                        Channel::Swim => self
                            .swim
                            .handle_stream(now, from, part)
                            .map_err(Error::from),
                        Channel::Gossip => self
                            .gossip
                            .handle_stream(now, from, part)
                            .map_err(Error::from),
                    };
                    if result.is_err() {
                        self.stats.messages_refused += 1;
                    }
                }
            }
            Err(_) => self.stats.messages_refused += 1,
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
        if self.next_gossip <= now {
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
        self.outbox.pop_front()
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
            Some(self.next_gossip),
            self.next_heartbeat,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals ----------------------------------------------------------------------------

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
            self.send_datagram(to, &parts);
            for large in self.gossip.fill_stream_broadcasts(members) {
                self.send_stream(to, &[(Channel::Gossip, large)]);
            }
        }
    }

    /// Moves what the layers produced into the node's outbox and events.
    fn pump(&mut self, now: Instant) {
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
                    if let Some(opening) = self.gossip.start_pullpush(now, t.to, join) {
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

    /// Tells the KV store which peers exist.
    /// Tells the KV store which peers exist: only members that answered this node themselves
    /// (confirmed), so a forged alive never makes a KV peer.
    fn membership_changed(&mut self, now: Instant, event: &SwimEvent) {
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

    /// Derives the KV peer set from the member table itself when the table changed since the
    /// last reconciliation (at most once per gossip tick): every confirmed member that is alive
    /// or suspect is a peer up, every other peer is down. Membership events keep the set current
    /// between ticks (so a join answer waiting for its peer goes out at once), but they travel
    /// through a bounded queue that drops under a mass join; this repairs whatever was dropped.
    fn reconcile_peers(&mut self, now: Instant) {
        let generation = self.swim.table_generation();
        if generation == self.peers_generation {
            return;
        }
        self.peers_generation = generation;
        let local = self.swim.local_name().clone();
        let up: BTreeSet<SocketAddr> = self
            .swim
            .members()
            .filter(|m| {
                m.name != local
                    && matches!(m.state, State::Alive | State::Suspect)
                    && self.swim.is_confirmed(m.name.as_str())
            })
            .map(|m| m.addr)
            .collect();
        let stale: Vec<SocketAddr> = self
            .gossip
            .peers()
            .filter(|(addr, state)| *state == rumour_gossip::PeerState::Alive && !up.contains(addr))
            .map(|(addr, _)| addr)
            .collect();
        for addr in stale {
            self.gossip.handle_peer_down(now, addr);
        }
        let known: BTreeSet<SocketAddr> = self
            .gossip
            .peers()
            .filter(|(_, state)| *state == rumour_gossip::PeerState::Alive)
            .map(|(addr, _)| addr)
            .collect();
        for addr in up.difference(&known) {
            self.gossip.handle_peer_up(now, *addr);
        }
    }

    fn push_event(&mut self, event: NodeEvent) {
        self.events.push(event);
    }

    /// Frames `parts` into as few datagrams as the packet budget allows.
    fn send_datagram(&mut self, to: SocketAddr, parts: &[(Channel, Bytes)]) {
        let budget = self.frame.packet_budget();
        let header = self.frame.header_len();
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut len = header;
        for (channel, message) in parts {
            let tagged = envelope::tag(*channel, message);
            let cost = FrameCodec::packed_len(tagged.len());
            if !batch.is_empty() && len + cost > budget {
                self.flush_datagram(to, &batch);
                batch.clear();
                len = header;
            }
            len += cost;
            batch.push(tagged);
        }
        if !batch.is_empty() {
            self.flush_datagram(to, &batch);
        }
    }

    fn flush_datagram(&mut self, to: SocketAddr, batch: &[Vec<u8>]) {
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let bytes = Bytes::from(self.frame.encode_packet(&refs));
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        self.outbox.push_back(Transmit {
            to,
            delivery: Delivery::Datagram,
            bytes,
        });
    }

    fn send_stream(&mut self, to: SocketAddr, parts: &[(Channel, Bytes)]) {
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
