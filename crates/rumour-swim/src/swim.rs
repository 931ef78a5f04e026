//! The membership machine.

mod dissemination;
mod exchange;
mod probing;
mod rules;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use rumour_wire::{BroadcastQueue, Delivery};

use crate::awareness::Awareness;
use crate::config::Config;
use crate::error::Error;
use crate::event::{Event, EventQueue};
use crate::member::{Member, NodeName, State};
use crate::membership::Membership;
use crate::message::Message;
use crate::probe::{Probe, Relays};
use crate::reconnect::ReconnectList;
use crate::stats::Stats;
use crate::transmit::{Outbox, Transmit};

pub use dissemination::MemberUpdate;

/// Seed addresses remembered for the periodic re-join, at most (the most recent are kept).
const MAX_SEEDS: usize = 64;

/// Indirect probes run for others at once, at most.
const RELAY_CAPACITY: usize = 256;

/// Verification pings awaiting an ack, at most (the lane's batch and ping-backs), and the most
/// the lane sends in one probe period.
const VERIFY_CAPACITY: usize = 1024;

/// Decides whether a member learned from an alive message or a state exchange may enter the
/// table (or change its address or metadata): memberlist's alive / merge delegate. It gets the
/// record as it would be stored; `false` refuses the claim (counted in
/// [`Stats::admission_refused`]).
pub type Admission = std::sync::Arc<dyn Fn(&Member) -> bool + Send + Sync>;

/// A SWIM + Lifeguard member: failure detection, dissemination and full-state exchange, as a
/// deterministic state machine that does no I/O.
///
/// # Driving it
///
/// Vocabulary (quinn-proto's): getters on `&self`; inputs [`handle_packet`](Self::handle_packet),
/// [`handle_stream`](Self::handle_stream), [`handle_timeout`](Self::handle_timeout); commands
/// [`join`](Self::join), [`leave`](Self::leave), [`set_meta`](Self::set_meta); outputs
/// [`poll_transmit`](Self::poll_transmit), [`poll_timeout`](Self::poll_timeout),
/// [`poll_event`](Self::poll_event).
///
/// Call order: after construction and after **every** input or command, drain
/// `poll_transmit` until `None` and send what it gives, drain `poll_event`, then read
/// `poll_timeout` and call `handle_timeout(now)` once that instant has passed (calling it
/// early is harmless). Feed every received swim message to `handle_packet` (datagram) or
/// `handle_stream` (stream), one message per call, with the current time.
///
/// The machine's clocks start at the `now` given to [`new`](Self::new). Time only moves
/// forward: a `now` earlier than one already given is taken as that one.
///
/// Outputs never block the machine: transmits and events wait in bounded queues whose drops
/// are counted in [`Stats`].
#[derive(Clone)]
pub struct Swim {
    config: Config,
    rng: ChaCha8Rng,
    members: Membership,
    probe: Option<Probe>,
    relays: Relays,
    awareness: Awareness,
    queue: BroadcastQueue<MemberUpdate>,
    outbox: Outbox,
    events: EventQueue,
    /// Bumped with every event, delivered or dropped: see [`Swim::table_generation`].
    generation: u64,
    /// When the last event about a member (not a health or conflict notice) was emitted: the
    /// periodic exchange opens with a digest only once the table has settled.
    last_member_change: Instant,
    stats: Stats,
    seq: u32,
    timers: Timers,
    seeds: Vec<SocketAddr>,
    reconnect: ReconnectList,
    /// A follow-up exchange is wanted after the next join reply.
    followup_wanted: bool,
    /// The follow-ups of the current join: see [`exchange::Followups`].
    followups: exchange::Followups,
    left: bool,
    /// The latest time given to the machine; inputs never move it backwards.
    clock: Instant,
    /// The admission hook, if any.
    admission: Option<Admission>,
    /// Verification pings in flight: sequence number to member and address.
    verifying: std::collections::BTreeMap<u32, (NodeName, SocketAddr)>,
    /// Where the verification lane resumes among the never-confirmed members.
    verify_cursor: usize,
    /// The verification pings of the current probe period, per IP address.
    verify_budget: probing::VerifyBudget,
}

/// The periodic timers; `None` when off.
#[derive(Clone, Debug, Default)]
struct Timers {
    probe: Option<Instant>,
    pullpush: Option<Instant>,
    rejoin: Option<Instant>,
    reconnect: Option<Instant>,
    followup: Option<Instant>,
}

impl Swim {
    /// A machine for the member `name`, advertised at `addr`, with metadata `meta`, whose
    /// clocks start at `now`. Fails if the metadata is over `config.meta_max_size()`.
    pub fn new(
        config: Config,
        name: NodeName,
        addr: SocketAddr,
        meta: impl Into<Bytes>,
        rng: ChaCha8Rng,
        now: Instant,
    ) -> Result<Swim, Error> {
        let meta = meta.into();
        check_meta(&config, &meta)?;
        let local = Member {
            name,
            addr,
            meta,
            incarnation: crate::Incarnation(1),
            state: State::Alive,
            state_changed_at: now,
            rtt: None,
        };
        let mut members = Membership::new(
            local,
            config.probe_interval(),
            config.dead_node_reclaim_time(),
            index_key(&rng),
        );
        members.set_limits(crate::membership::Limits {
            max_members: config.max_members().get(),
            max_incarnation_jump: config.max_incarnation_jump().get(),
        });
        // A reaped member is remembered as long as it may be reconnected to (at least an hour).
        members.set_reaped_memory(
            config.reconnect_timeout().max(Duration::from_secs(3600)),
            crate::membership::REAPED_CAPACITY,
        );
        let mut swim = Swim {
            rng,
            members,
            probe: None,
            relays: Relays::new(RELAY_CAPACITY),
            awareness: Awareness::new(config.awareness_max_multiplier().get()),
            queue: BroadcastQueue::new(
                config.retransmit_mult().get(),
                config.broadcast_queue_capacity().get(),
            ),
            outbox: Outbox::new(
                config.transmit_queue_capacity().get(),
                config.transmit_queue_bytes().get(),
            ),
            events: EventQueue::new(config.event_queue_capacity().get()),
            generation: 0,
            last_member_change: now,
            stats: Stats::default(),
            seq: 0,
            timers: Timers::default(),
            seeds: Vec::new(),
            reconnect: ReconnectList::new(config.reconnect_capacity(), config.reconnect_timeout()),
            followup_wanted: false,
            followups: exchange::Followups::none(now),
            left: false,
            clock: now,
            admission: None,
            verifying: std::collections::BTreeMap::new(),
            verify_cursor: 0,
            verify_budget: probing::VerifyBudget::default(),
            config,
        };
        swim.start_clocks(now);
        swim.broadcast_local_alive();
        Ok(swim)
    }

    // ----- getters -----

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The local member's name.
    #[must_use]
    pub fn local_name(&self) -> &NodeName {
        &self.members.local().name
    }

    /// The local member as others should see it.
    #[must_use]
    pub fn local_member(&self) -> &Member {
        self.members.local()
    }

    /// Every known member (the local one and unreaped dead ones included), sorted by name.
    ///
    /// Each is built from the table's compact record as it is read (the name and metadata are
    /// shared, not copied).
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.members.members()
    }

    /// A counter that moves whenever the member table changed in a way an [`Event`] reports
    /// (join, update, suspicion, failure, leave, reap, confirmation), whether or not the event
    /// itself fit the bounded event queue. An embedder that derives state from the table (the
    /// node's KV peer set) compares it with the value it last saw and re-reads
    /// [`Swim::members`] when it moved, so dropped events cost it nothing.
    #[must_use]
    pub fn table_generation(&self) -> u64 {
        self.generation
    }

    /// One member by name.
    #[must_use]
    pub fn member(&self, name: &str) -> Option<Member> {
        self.members.get(name)
    }

    /// Members in state Alive, the local node included (unless it left).
    #[must_use]
    pub fn num_alive(&self) -> usize {
        self.members.num_alive()
    }

    /// Lifeguard's local health score: 0 is healthy, up to `awareness_max_multiplier - 1`.
    #[must_use]
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// Whether [`leave`](Self::leave) was called.
    #[must_use]
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Broadcasts waiting to be sent (a leaving node may wait for this to reach 0).
    #[must_use]
    pub fn pending_broadcasts(&self) -> usize {
        self.queue.len()
    }

    /// Datagram bytes the queued broadcasts would take, each counted with its
    /// [`Config::packed_len`] (an embedder sharing a datagram uses it to reserve room for them).
    #[must_use]
    pub fn pending_broadcast_bytes(&self) -> usize {
        let count = self.queue.len();
        // A varint length (two bytes below 16 KiB) and the embedder's overhead per message.
        self.queue.payload_bytes() + (2 + self.config.message_overhead()) * count
    }

    /// Counters, with the current queue depths.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.queue_depth = self.queue.len() as u64;
        stats.broadcasts_dropped = self.queue.stats().dropped;
        stats.events_dropped = self.events.dropped();
        stats.event_queue_depth = self.events.len() as u64;
        stats.transmits_dropped = self.outbox.dropped();
        stats.transmit_queue_bytes = self.outbox.bytes() as u64;
        stats.incarnations_clamped = self.members.counts.clamped;
        stats.stale_alives_after_reap = self.members.counts.stale_after_reap;
        stats
    }

    /// Whether `name` answered a ping of this node at its current address (members learned
    /// only second-hand are not probed in the round-robin, gossiped to or exchanged with
    /// until they do).
    #[must_use]
    pub fn is_confirmed(&self, name: &str) -> bool {
        self.members.is_confirmed(name)
    }

    /// The addresses of the members other layers may talk to: confirmed (each answered this
    /// node at its address) and alive or suspected, the local node excluded. In no particular
    /// order; cheaper than filtering [`Swim::members`].
    pub fn confirmed_live_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.members.confirmed_live_addrs()
    }

    // ----- settings -----

    /// Installs (or, with `None`, removes) the admission hook: every alive claim that would add
    /// a member or change a member's address or metadata, from gossip, pings or state
    /// exchanges, is first shown to it.
    pub fn set_admission(&mut self, admission: Option<Admission>) {
        self.admission = admission;
    }

    /// Room left in `transmit` for more messages: the datagram budget less what its messages
    /// take (0 for streams, which have no budget to top up).
    #[must_use]
    pub fn remaining_budget(&self, transmit: &Transmit) -> usize {
        match transmit.delivery {
            Delivery::Stream => 0,
            Delivery::Datagram => {
                let used: usize = transmit
                    .messages
                    .iter()
                    .map(|m| self.config.packed_len(m.len()))
                    .sum();
                self.config.datagram_budget().saturating_sub(used)
            }
        }
    }

    // ----- outputs -----

    /// The next thing to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = &self.timers;
        let probe = match &self.probe {
            Some(p) => Some(p.indirect_at.map_or(p.deadline, |at| at.min(p.deadline))),
            None => t.probe,
        };
        [
            probe,
            t.pullpush,
            t.rejoin,
            t.reconnect,
            t.followup,
            self.relays.next_deadline(),
            self.members.next_suspicion_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- inputs -----

    /// Handles one swim message received in a datagram from `from`. Bad bytes return an
    /// error and change nothing.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.receive(now, from, bytes, Delivery::Datagram)
    }

    /// Handles one swim message received over a stream (`from` is the peer's address, its
    /// port ephemeral; replies go to the address the message carries only when that address
    /// is on the peer's host or is a confirmed member's). Bad bytes return an error and change
    /// nothing.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.receive(now, from, bytes, Delivery::Stream)
    }

    /// Handles one already-decoded swim message from `from`, as if it had arrived over
    /// `delivery`: the seam for an embedder that speaks another wire format (the memberlist
    /// adapter decodes memberlist's messages, maps them onto swim's and feeds them here). The
    /// same checks apply as to encoded input (metadata and member-count limits, kinds that do
    /// not belong on the channel); a refused message changes nothing.
    pub fn handle_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: Message,
        delivery: Delivery,
    ) -> Result<(), Error> {
        let message = self.check(message)?;
        let len = message.encode().len();
        self.accept(now, from, message, delivery, len)
    }

    /// Decodes and dispatches one message, refusing kinds that do not belong on its channel
    /// (full state only over streams; indirect pings and nacks only in datagrams).
    fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        delivery: Delivery,
    ) -> Result<(), Error> {
        let message = self.decode(bytes)?;
        self.accept(now, from, message, delivery, bytes.len())
    }

    fn accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: Message,
        delivery: Delivery,
        len: usize,
    ) -> Result<(), Error> {
        let now = self.tick(now);
        let misplaced = match delivery {
            Delivery::Stream => matches!(message, Message::IndirectPing(_) | Message::Nack(_)),
            Delivery::Datagram => matches!(message, Message::State(_) | Message::Digest(_)),
        };
        if misplaced {
            self.stats.decode_errors += 1;
            return Err(Error::WrongChannel {
                kind: message.kind(),
                channel: match delivery {
                    Delivery::Stream => "stream",
                    Delivery::Datagram => "datagram",
                },
            });
        }
        self.stats.received.count(message.kind(), len);
        self.dispatch(now, from, message, delivery);
        Ok(())
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        self.run_probe_timers(now);
        self.run_relay_timers(now);
        self.run_suspicion_timers(now);
        self.run_exchange_timers(now);
    }

    // ----- commands -----

    /// Joins the cluster through `seeds`: a full-state exchange with each (the local address
    /// is skipped). The seeds are remembered (the latest 64) and re-joined every
    /// `rejoin_interval`.
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) -> Result<(), Error> {
        if self.left {
            return Err(Error::Left);
        }
        self.tick(now);
        let own = self.members.local().addr;
        for &seed in seeds {
            if seed != own && !self.seeds.contains(&seed) {
                // Seeds given by name are re-resolved and joined again as pods come and go:
                // keep the latest `MAX_SEEDS`, forgetting the oldest.
                if self.seeds.len() >= MAX_SEEDS {
                    self.seeds.remove(0);
                }
                self.seeds.push(seed);
            }
        }
        self.followup_wanted = true;
        for &seed in seeds.iter().filter(|&&s| s != own) {
            self.send_exchange_request(seed, true);
        }
        Ok(())
    }

    /// Leaves the cluster: the local node becomes Left, and a dead message from itself is sent
    /// at once to up to `leave_fanout` members and queued for gossip. Probing and exchanges
    /// stop; keep driving the machine for a while (until [`pending_broadcasts`] is 0 or a
    /// timeout) so that gossip carries the goodbye further. Idempotent.
    ///
    /// [`pending_broadcasts`]: Self::pending_broadcasts
    pub fn leave(&mut self, now: Instant) -> Result<(), Error> {
        if self.left {
            return Ok(());
        }
        let now = self.tick(now);
        self.left = true;
        let me = self.members.leave_local(now);
        let dead = Message::Dead(crate::message::Dead {
            name: me.name.clone(),
            incarnation: me.incarnation,
            from: me.name.clone(),
        });
        self.enqueue(&dead);
        let mut targets: Vec<(SocketAddr, bool)> = self
            .members
            .members()
            .filter(|m| m.state.is_live() && m.name != *self.local_name())
            .map(|m| (m.addr, self.members.is_confirmed(&m.name)))
            .collect();
        targets.shuffle(&mut self.rng);
        // Confirmed members first; the goodbye is small and rides alone to the others.
        targets.sort_by_key(|&(_, confirmed)| !confirmed);
        targets.truncate(self.config.leave_fanout().get());
        for (to, confirmed) in targets {
            self.send_datagram(to, std::slice::from_ref(&dead), confirmed);
        }
        self.probe = None;
        let t = &mut self.timers;
        t.probe = None;
        t.pullpush = None;
        t.rejoin = None;
        t.reconnect = None;
        t.followup = None;
        Ok(())
    }

    /// Replaces the local metadata and announces it with a new incarnation. Metadata over
    /// `meta_max_size` is an error (nothing changes).
    pub fn set_meta(&mut self, now: Instant, meta: impl Into<Bytes>) -> Result<(), Error> {
        let meta = meta.into();
        check_meta(&self.config, &meta)?;
        if self.left {
            return Err(Error::Left);
        }
        self.tick(now);
        self.members.set_local_meta(meta);
        self.broadcast_local_alive();
        Ok(())
    }

    // ----- internals shared by the submodules -----

    fn decode(&mut self, bytes: &[u8]) -> Result<Message, Error> {
        match Message::decode(bytes) {
            Ok(message) => self.check(message),
            Err(error) => {
                self.stats.decode_errors += 1;
                Err(error)
            }
        }
    }

    /// The configured limits a decoded message must meet.
    fn check(&mut self, message: Message) -> Result<Message, Error> {
        let checked = message.check_limits().and_then(|()| {
            let max = self.config.meta_max_size();
            if message.largest_meta() > max {
                return Err(Error::Invalid {
                    kind: message.kind(),
                    reason: "metadata is over the configured meta_max_size",
                });
            }
            if let Message::State(state) = &message {
                if state.members.len() > self.config.max_state_members().get() {
                    self.stats.states_refused += 1;
                    return Err(Error::Invalid {
                        kind: message.kind(),
                        reason: "more members than the configured max_state_members",
                    });
                }
            }
            Ok(())
        });
        match checked {
            Ok(()) => Ok(message),
            Err(error) => {
                self.stats.decode_errors += 1;
                Err(error)
            }
        }
    }

    fn dispatch(&mut self, now: Instant, from: SocketAddr, message: Message, delivery: Delivery) {
        match message {
            Message::Ping(ping) => self.on_ping(now, from, ping, delivery),
            Message::IndirectPing(req) => self.on_indirect_ping(now, from, req),
            Message::Ack(ack) => self.on_ack(now, from, ack.seq, delivery),
            Message::Nack(nack) => self.on_nack(nack.seq),
            Message::Alive(alive) => self.on_alive(now, alive, true),
            Message::Suspect(suspect) => self.on_suspect(now, suspect),
            Message::Dead(dead) => self.on_dead(now, dead),
            Message::State(state) => self.on_state(now, from, state),
            Message::Digest(digest) => self.on_digest(from, digest),
        }
    }

    /// Arms the periodic timers, each with a random initial stagger.
    fn start_clocks(&mut self, now: Instant) {
        let c = &self.config;
        let (probe, pullpush) = (c.probe_interval(), c.pullpush_interval());
        let (rejoin, reconnect) = (c.rejoin_interval(), c.reconnect_interval());
        self.timers.probe = Some(now + self.stagger(probe));
        self.timers.pullpush = pullpush.map(|p| now + self.stagger(p));
        self.timers.rejoin = rejoin.map(|p| now + self.jitter(p));
        self.timers.reconnect = reconnect.map(|p| now + self.jitter(p));
    }

    /// A uniformly random duration in `[0, period)`.
    fn stagger(&mut self, period: Duration) -> Duration {
        period.mul_f64(self.rng.gen_range(0.0..1.0))
    }

    /// A uniformly random duration in `[period / 2, 3 * period / 2)`.
    fn jitter(&mut self, period: Duration) -> Duration {
        period.mul_f64(self.rng.gen_range(0.5..1.5))
    }

    /// Moves the machine's clock to `now` (never backwards) and returns the time to use.
    fn tick(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        self.clock
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn emit(&mut self, event: Event) {
        self.generation = self.generation.wrapping_add(1);
        if !matches!(
            event,
            Event::HealthScoreChanged { .. } | Event::AddressConflict { .. }
        ) {
            self.last_member_change = self.clock;
        }
        self.events.push(event);
    }

    fn adjust_health(&mut self, delta: i64) {
        if let Some(score) = self.awareness.apply(delta) {
            self.emit(Event::HealthScoreChanged { score });
        }
    }

    /// Random confirmed members matching `keep`, excluding the local node, at most `count`:
    /// gossip, helpers and exchanges go only to members that answered this node, so that
    /// forged entries neither draw traffic to addresses they name nor dilute real work.
    fn random_members(&mut self, count: usize, keep: impl Fn(&Member) -> bool) -> Vec<Member> {
        let local = self.members.local();
        let (local_addr, local_name) = (local.addr, local.name.clone());
        let members = &self.members;
        let eligible = |m: &Member| {
            (m.addr != local_addr || m.name != local_name)
                && keep(m)
                && members.is_confirmed(&m.name)
        };
        let total = self.members.len();
        // In a large table, draw random members and keep the eligible ones: a few lookups
        // instead of a scan of every member on every gossip tick and probe.
        if count > 0 && total > 8 * count {
            let mut chosen: Vec<Member> = Vec::with_capacity(count);
            for _ in 0..8 * count {
                let index = self.rng.gen_range(0..total);
                let Some(m) = self.members.nth_random(index) else {
                    continue;
                };
                if eligible(&m) && !chosen.iter().any(|c| c.name == m.name) {
                    chosen.push(m);
                    if chosen.len() == count {
                        return chosen;
                    }
                }
            }
        }
        // Small tables, or few eligible members: scan and shuffle.
        let mut candidates: Vec<Member> = self.members.members().filter(|m| eligible(m)).collect();
        let (chosen, _) = candidates.partial_shuffle(&mut self.rng, count);
        chosen.to_vec()
    }

    /// Datagram bytes a message of `len` bytes takes.
    fn cost(&self, len: usize) -> usize {
        self.config.packed_len(len)
    }
}

/// The key the member table hashes names under: drawn from a stream of the machine's generator
/// that nothing else reads, so the machine's own draws are the same with or without it.
fn index_key(rng: &ChaCha8Rng) -> (u64, u64) {
    let mut keys = rng.clone();
    keys.set_stream(rng.get_stream() ^ INDEX_KEY_STREAM);
    (keys.next_u64(), keys.next_u64())
}

/// The stream (XORed into the generator's own) the member table's hash key is drawn from.
const INDEX_KEY_STREAM: u64 = 0x6e61_6d65_2d69_6478; // "name-idx"

impl std::fmt::Debug for Swim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swim")
            .field("name", self.local_name())
            .field("members", &self.members.len())
            .field("health_score", &self.awareness.score())
            .field("queue", &self.queue)
            .field("admission", &self.admission.is_some())
            .finish_non_exhaustive()
    }
}

fn check_meta(config: &Config, meta: &Bytes) -> Result<(), Error> {
    if meta.len() > config.meta_max_size() {
        return Err(Error::MetaTooLarge {
            len: meta.len(),
            max: config.meta_max_size(),
        });
    }
    Ok(())
}
