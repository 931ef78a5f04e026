//! Failure detection: the probe round, indirect probes, acks and nacks.

use std::time::Instant;

use rumour_wire::Delivery;

use super::Swim;
use crate::member::{NodeName, State};
use crate::message::{Ack, IndirectPing, Message, Nack, Ping, Suspect};
use crate::probe::{Probe, Relay};

/// Verification pings the lane sends one IP address per probe period, at most, and as many
/// more per member confirmed there.
const VERIFICATIONS_PER_IP: usize = 4;

/// What verification pings went where in the current probe period.
#[derive(Clone, Debug, Default)]
pub(super) struct VerifyBudget {
    /// Pings sent per IP address (at most `VERIFY_CAPACITY` entries).
    per_ip: std::collections::BTreeMap<std::net::IpAddr, usize>,
    /// Confirmed live members per IP address, counted when an address first reaches
    /// `VERIFICATIONS_PER_IP` in the period, and kept up to date by confirmations after that.
    proven: Option<std::collections::BTreeMap<std::net::IpAddr, usize>>,
    /// Pings sent at once to members just learned ([`Swim::verify_new`]).
    immediate: usize,
}

impl VerifyBudget {
    /// Counts a member confirmed at `ip` during the period.
    pub(super) fn note_confirmed(&mut self, ip: std::net::IpAddr) {
        if let Some(proven) = &mut self.proven {
            *proven.entry(ip).or_default() += 1;
        }
    }
}

impl Swim {
    /// The local node's alive message, carried by its pings.
    pub(super) fn source(&self) -> crate::message::Alive {
        let me = self.local_name().clone();
        self.members
            .alive_of(&me)
            .expect("the local node is stored")
    }

    /// Runs the probe round's timers: indirect probes, the verdict, the next probe.
    pub(super) fn run_probe_timers(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let indirect_due = self
            .probe
            .as_ref()
            .is_some_and(|p| p.indirect_at.is_some_and(|at| at <= now));
        if indirect_due {
            self.send_indirect_probes();
        }
        if self.probe.as_ref().is_some_and(|p| p.deadline <= now) {
            self.conclude_probe(now);
        }
        if self.probe.is_none() && self.timers.probe.is_some_and(|at| at <= now) {
            self.start_probe(now);
        }
    }

    /// Picks the next target (round-robin, skipping the local node and dead members; the
    /// order is reshuffled and expired members reaped at each wrap) and pings it.
    fn start_probe(&mut self, now: Instant) {
        let interval = self.awareness.scale(self.config.probe_interval());
        self.timers.probe = Some(now + interval);
        self.expire_unconfirmed(now);
        self.send_verifications();
        let recheck_after = self.suspicion_params().min / 2;
        let stale = self.members.stale_suspect(now, recheck_after);
        let Some(target) = stale.or_else(|| self.next_target(now)) else {
            return;
        };
        let Some(member) = self.members.get(&target) else {
            return;
        };
        let seq = self.next_seq();
        self.stats.probes += 1;
        let piggyback = self.members.is_confirmed_at(&target, member.addr);
        self.probe = Some(Probe {
            seq,
            target: target.clone(),
            addr: member.addr,
            sent_at: now,
            indirect_at: Some(now + self.config.probe_timeout()),
            deadline: now + interval,
            expected_nacks: 0,
            nacks: 0,
            postponed: false,
        });
        let mut messages = vec![Message::Ping(Ping {
            seq,
            target: target.clone(),
            source: self.source(),
        })];
        if member.state == State::Suspect {
            // Buddy system: tell a suspect it is suspected so that it can refute at once.
            messages.push(Message::Suspect(Suspect {
                name: target,
                incarnation: member.incarnation,
                from: self.local_name().clone(),
            }));
        }
        self.send_datagram(member.addr, &messages, piggyback);
    }

    /// Forgets the members that never answered a ping of this node within
    /// `unconfirmed_timeout` of being learned.
    fn expire_unconfirmed(&mut self, now: Instant) {
        let timeout = self.config.unconfirmed_timeout();
        for member in self.members.expire_unconfirmed(now, timeout) {
            self.stats.unconfirmed_expired += 1;
            self.emit(crate::Event::MemberReaped(member));
        }
    }

    /// The verification lane: beside the probe round, a bare ping to up to
    /// `verifications_per_probe` live members that never answered this node (more when many
    /// wait: enough for each to get its ping within `unconfirmed_timeout`, at most 1,024
    /// per probe period, and at most four per IP address): half the newest (a member that
    /// just joined is confirmed at once), half walked round-robin from the
    /// oldest (everyone gets a turn). An ack confirms the member and schedules it in the
    /// round-robin; silence costs nothing (the entry expires after `unconfirmed_timeout`).
    /// Forged members learned in bulk so wait here, off the round-robin, instead of diluting
    /// the probes of real ones.
    fn send_verifications(&mut self) {
        self.verifying.clear();
        self.verify_budget = VerifyBudget::default();
        let total = self.members.num_unconfirmed();
        let configured = self.config.verifications_per_probe();
        if configured == 0 || total == 0 {
            return;
        }
        // Enough for every entry to get its ping (one per announcement) before it expires: a
        // thousand members learned in one join are all confirmed well within
        // `unconfirmed_timeout`.
        let periods = (self.config.unconfirmed_timeout().as_secs_f64()
            / self.config.probe_interval().as_secs_f64())
        .max(1.0);
        let needed = (2.0 * total as f64 / periods).ceil() as usize; // twice what one round needs
        let per_probe = configured.max(needed).min(super::VERIFY_CAPACITY);
        let mut batch: Vec<(NodeName, std::net::SocketAddr)> = Vec::with_capacity(per_probe);
        let mut take =
            |swim: &mut Swim, candidates: Vec<(NodeName, std::net::SocketAddr)>, limit| {
                for entry in candidates {
                    if batch.len() >= limit {
                        break;
                    }
                    if !batch.contains(&entry) && swim.admit_verification(entry.1.ip()) {
                        batch.push(entry);
                    }
                }
            };
        let half = per_probe.div_ceil(2);
        let newest = self.members.newest_unconfirmed_live(4 * half);
        take(self, newest, half);
        if self.verify_cursor >= total {
            self.verify_cursor = 0;
        }
        let walk = 4 * (per_probe - half);
        let walked = self.members.unconfirmed_live(self.verify_cursor, walk);
        take(self, walked, per_probe);
        self.verify_cursor += walk;
        for (name, addr) in batch {
            self.members.note_verification(&name);
            self.verify(name, addr);
        }
    }

    /// Whether one more verification ping to `ip` fits this probe period's budget, and if so
    /// counts it: at most `VERIFICATIONS_PER_IP` per IP address and period, and as many more
    /// for each live member this node has confirmed at that address. Forged members that all
    /// name one victim draw a few small pings a period to it, whatever their number (as many
    /// as a member there would draw anyway), while a host that runs many real members
    /// (several instances on one machine, a cluster on loopback) gets its new members
    /// verified within a few periods.
    fn admit_verification(&mut self, ip: std::net::IpAddr) -> bool {
        if self.verifying.len() >= super::VERIFY_CAPACITY {
            return false;
        }
        let budget = &mut self.verify_budget;
        let sent = budget.per_ip.get(&ip).copied().unwrap_or(0);
        if sent >= VERIFICATIONS_PER_IP {
            // One pass over the table per period, and only once an address is busy.
            let members = &self.members;
            let proven = budget
                .proven
                .get_or_insert_with(|| members.confirmed_live_per_ip());
            if sent >= VERIFICATIONS_PER_IP * (1 + proven.get(&ip).copied().unwrap_or(0)) {
                return false;
            }
        }
        *budget.per_ip.entry(ip).or_default() += 1;
        true
    }

    /// Verifies a member just learned (new, or back from dead) at once rather than at the
    /// next probe period, when this period's budget allows: an alive is gossiped on only
    /// once its member is confirmed, so each hop of a new member's news would otherwise wait
    /// for a probe period. Otherwise the lane takes it in turn.
    pub(super) fn verify_new(&mut self, name: &NodeName) {
        let Some(addr) = self.members.awaiting_verification(name) else {
            return;
        };
        // At most `verifications_per_probe` a period this way (the lane's own batch, spent as
        // members are learned): a node that learns a thousand members in a second does not
        // send a thousand pings at once.
        if self.verify_budget.immediate >= self.config.verifications_per_probe() {
            return;
        }
        self.verify_budget.immediate += 1;
        if self.admit_verification(addr.ip()) {
            self.members.note_verification(name);
            self.verify(name.clone(), addr);
        }
    }

    /// Sends a bare verification ping to `name` at `addr` (no piggybacked gossip: the address
    /// is not yet known to be a member's).
    fn verify(&mut self, name: NodeName, addr: std::net::SocketAddr) {
        if let Some(ping) = self.verification_ping(name, addr) {
            self.send_datagram(addr, &[ping], false);
        }
    }

    /// A verification ping to `name` at `addr`, its sequence number awaited; `None` when
    /// `VERIFY_CAPACITY` pings are already in flight.
    fn verification_ping(&mut self, name: NodeName, addr: std::net::SocketAddr) -> Option<Message> {
        if self.verifying.len() >= super::VERIFY_CAPACITY {
            return None;
        }
        let seq = self.next_seq();
        self.stats.verifications += 1;
        self.verifying.insert(seq, (name.clone(), addr));
        Some(Message::Ping(Ping {
            seq,
            target: name,
            source: self.source(),
        }))
    }

    fn next_target(&mut self, now: Instant) -> Option<NodeName> {
        // Two passes at most: the rest of this cycle, then one full fresh cycle.
        let mut wraps = 0;
        loop {
            match self.members.next_in_order() {
                Some((name, live)) => {
                    if live {
                        return Some(name);
                    }
                }
                None => {
                    if wraps == 1 {
                        return None;
                    }
                    wraps += 1;
                    self.reap(now);
                    self.members.reshuffle(&mut self.rng);
                }
            }
        }
    }

    /// Forgets dead and left members after `gossip_to_the_dead_time`; failed ones go on the
    /// reconnect list.
    fn reap(&mut self, now: Instant) {
        let reaped = self
            .members
            .reap(now, self.config.gossip_to_the_dead_time());
        for (member, confirmed) in reaped {
            // Only members that once answered this node are retried: a forged entry must not
            // earn its address a state exchange.
            if confirmed
                && member.state == State::Dead
                && self.config.reconnect_interval().is_some()
            {
                let evicted = self.reconnect.insert(now, member.name.clone(), member.addr);
                self.stats.reconnect_evicted += evicted;
            }
            self.emit(crate::Event::MemberReaped(member));
        }
    }

    /// The direct ping went unanswered: ask `indirect_checks` alive members to try, and run a
    /// reliable ping beside them.
    fn send_indirect_probes(&mut self) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        probe.indirect_at = None;
        let (seq, target, addr) = (probe.seq, probe.target.clone(), probe.addr);
        let helpers = self.random_members(self.config.indirect_checks() as usize, |m| {
            m.state == State::Alive && m.name != target
        });
        if let Some(probe) = self.probe.as_mut() {
            probe.expected_nacks = helpers.len() as u32;
        }
        let source = self.source();
        for helper in helpers {
            // Helpers are confirmed members (see `random_members`).
            self.stats.indirect_probes += 1;
            let request = Message::IndirectPing(IndirectPing {
                seq,
                target: target.clone(),
                target_addr: addr,
                nack: true,
                source: source.clone(),
            });
            self.send_datagram(helper.addr, &[request], true);
        }
        if self.config.reliable_ping() {
            let ping = Message::Ping(Ping {
                seq,
                target,
                source,
            });
            self.send_stream(addr, &ping, None);
        }
    }

    /// Nothing answered before the deadline: lower the health, suspect the target.
    fn conclude_probe(&mut self, now: Instant) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        let limit = self.config.probe_timeout();
        if now.saturating_duration_since(probe.deadline) > limit && !probe.postponed {
            // The deadline fired late: this node was stalled and acks may be waiting unread.
            // A late ack is the local node's problem, not the target's: wait a little more.
            probe.postponed = true;
            probe.deadline = now + limit;
            self.timers.probe = Some(probe.deadline);
            self.note_stall();
            return;
        }
        let probe = self.probe.take().expect("checked above");
        let live = self
            .members
            .get(&probe.target)
            .is_some_and(|m| m.state.is_live());
        if !live {
            // The target left or was declared dead meanwhile: nothing to learn from silence.
            return;
        }
        self.stats.failed_probes += 1;
        let delta = if probe.expected_nacks > 0 {
            i64::from(probe.expected_nacks.saturating_sub(probe.nacks))
        } else {
            1
        };
        self.adjust_health(delta);
        self.suspect_after_probe(now, &probe.target);
    }

    /// A datagram ping is answered to the packet's source; a reliable ping (stream) to the
    /// address it names, only when that address is on the stream peer's host or is the
    /// source's confirmed address. The ack carries piggybacked gossip only when it goes to a
    /// confirmed member's address. A ping from a member not yet confirmed, sent from the
    /// address it announces, is answered with a bare verification ping as well.
    pub(super) fn on_ping(
        &mut self,
        now: Instant,
        from: std::net::SocketAddr,
        ping: Ping,
        delivery: Delivery,
    ) {
        if ping.target != *self.local_name() {
            // Meant for another member that used to live at this address.
            return;
        }
        let (source, seq) = (ping.source.name.clone(), ping.seq);
        let announced = ping.source.addr;
        let received = Message::Ping(ping.clone()).encode().len();
        // A new source is verified below, by a ping back.
        self.on_alive(now, ping.source, false);
        let ack = Message::Ack(Ack { seq });
        if delivery == Delivery::Stream {
            if from.ip() == announced.ip() || self.members.is_confirmed_at(&source, announced) {
                self.send_stream(announced, &ack, None);
            } else {
                self.stats.replies_refused += 1;
            }
            return;
        }
        let piggyback = self.members.is_confirmed_at(&source, from);
        let unconfirmed = self
            .members
            .get(&source)
            .is_some_and(|m| m.addr == from && m.state.is_live())
            && !self.members.is_confirmed(&source);
        // The ping back is never larger than the ping that caused it. It rides in the ack's
        // datagram (an unconfirmed source gets no piggybacked gossip): a pair of members
        // that verify each other exchange three datagrams, not four.
        let mut reply = vec![ack];
        if unconfirmed {
            let ours = Message::Ping(Ping {
                seq,
                target: source.clone(),
                source: self.source(),
            })
            .encode()
            .len();
            if ours <= received {
                reply.extend(self.verification_ping(source, from));
            }
        }
        self.send_datagram(from, &reply, piggyback);
    }

    /// Relays an indirect probe: the ping goes to the target named, but only when the target
    /// is a live member stored at that address (otherwise refused and counted), and the ack or
    /// nack goes back to the packet's source. Nothing bigger than the request goes to an
    /// address that is not a confirmed member's.
    pub(super) fn on_indirect_ping(
        &mut self,
        now: Instant,
        from: std::net::SocketAddr,
        req: IndirectPing,
    ) {
        let requester_name = req.source.name.clone();
        self.on_alive(now, req.source, true);
        let target_known = self
            .members
            .get(&req.target)
            .is_some_and(|m| m.addr == req.target_addr && m.state.is_live());
        if !target_known || req.target == *self.local_name() {
            self.stats.relays_refused += 1;
            return;
        }
        let seq = self.next_seq();
        let relay = Relay {
            requester: from,
            requester_name,
            seq: req.seq,
            nack: req.nack,
            deadline: now + self.config.probe_timeout(),
        };
        if !self.relays.insert(seq, relay) {
            self.stats.relays_dropped += 1;
            return;
        }
        self.stats.relayed_probes += 1;
        let piggyback = self.members.is_confirmed_at(&req.target, req.target_addr);
        let ping = Message::Ping(Ping {
            seq,
            target: req.target,
            source: self.source(),
        });
        self.send_datagram(req.target_addr, &[ping], piggyback);
    }

    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        from: std::net::SocketAddr,
        seq: u32,
        delivery: Delivery,
    ) {
        if let Some(probe) = self.probe.as_ref().filter(|p| p.seq == seq) {
            // The target answered itself (a relayed ack comes from a helper's host; a port
            // may differ behind a wildcard bind or a stream).
            if from.ip() == probe.addr.ip() {
                let (target, addr) = (probe.target.clone(), probe.addr);
                // A round-trip time only for the direct ping's datagram answer, before any
                // indirect probe went out (then it cannot be a relayed answer, whatever the
                // hosts share).
                if delivery == Delivery::Datagram && probe.indirect_at.is_some() {
                    let sample = now.saturating_duration_since(probe.sent_at);
                    self.stats.rtt.observe(sample);
                    self.members.record_rtt(&target, addr, sample);
                }
                self.confirm(&target, addr);
            }
            self.probe = None;
            if delivery == Delivery::Stream {
                self.stats.reliable_only_acks += 1;
            }
            self.adjust_health(-1);
            return;
        }
        if let Some((name, addr)) = self.verifying.remove(&seq) {
            if from.ip() == addr.ip() {
                self.confirm(&name, addr);
            }
            return;
        }
        if let Some(relay) = self.relays.take(seq) {
            let ack = Message::Ack(Ack { seq: relay.seq });
            let piggyback = self
                .members
                .is_confirmed_at(&relay.requester_name, relay.requester);
            self.send_datagram(relay.requester, &[ack], piggyback);
        }
    }

    pub(super) fn on_nack(&mut self, seq: u32) {
        if let Some(probe) = self.probe.as_mut().filter(|p| p.seq == seq) {
            probe.nacks += 1;
            self.stats.nacks_received += 1;
        }
    }

    /// Relays whose target stayed silent: nack the requester if it asked.
    pub(super) fn run_relay_timers(&mut self, now: Instant) {
        for relay in self.relays.expire(now) {
            if relay.nack {
                let nack = Message::Nack(Nack { seq: relay.seq });
                let piggyback = self
                    .members
                    .is_confirmed_at(&relay.requester_name, relay.requester);
                self.send_datagram(relay.requester, &[nack], piggyback);
            }
        }
    }
}
