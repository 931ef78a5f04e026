//! Applying the state rules: turning an [`Outcome`] into broadcasts, events and timers.

use std::time::Instant;

use super::Swim;
use crate::event::Event;
use crate::member::{Member, NodeName, State};
use crate::membership::{Evidence, Outcome, SuspicionParams};
use crate::message::{Alive, Dead, Message, Suspect};
use crate::suspicion::{expected_confirmations, suspicion_max, suspicion_min};

impl Swim {
    /// Suspicion timer parameters for the current cluster size.
    pub(super) fn suspicion_params(&self) -> SuspicionParams {
        let n = self.members.len();
        let c = &self.config;
        let min = suspicion_min(c.suspicion_mult().get(), n, c.probe_interval());
        SuspicionParams {
            k: expected_confirmations(c.suspicion_mult().get(), n),
            min,
            max: suspicion_max(c.suspicion_max_timeout_mult().get(), min),
        }
    }

    /// Applies an alive claim; with `verify`, a member it adds is verified at once
    /// ([`Swim::verify_new`]).
    pub(super) fn on_alive(&mut self, now: Instant, alive: Alive, verify: bool) {
        let Message::Alive(alive) = self.members.credible(Message::Alive(alive)) else {
            unreachable!("an alive stays an alive");
        };
        if !self.admits(&alive) {
            return;
        }
        let outcome = self.members.alive(now, &alive);
        let name = alive.name.clone();
        let joined = matches!(outcome, Outcome::Joined { .. });
        self.apply(&name, outcome, Some(Message::Alive(alive)));
        if verify && joined {
            self.verify_new(&name);
        }
    }

    /// Asks the admission hook about an alive claim that would add a member or change a
    /// member's address or metadata; claims about the local node and claims that change
    /// neither are always admitted.
    pub(super) fn admits(&mut self, alive: &Alive) -> bool {
        let Some(hook) = &self.admission else {
            return true;
        };
        if alive.name == *self.local_name() {
            return true;
        }
        let (state, at) = match self.members.get(&alive.name) {
            Some(m) if m.addr == alive.addr && m.meta == alive.meta => return true,
            Some(m) => (m.state, m.state_changed_at),
            None => (State::Alive, self.clock),
        };
        let candidate = Member {
            name: alive.name.clone(),
            addr: alive.addr,
            meta: alive.meta.clone(),
            incarnation: alive.incarnation,
            state,
            state_changed_at: at,
            rtt: None,
        };
        let admitted = hook(&candidate);
        if !admitted {
            self.stats.admission_refused += 1;
        }
        admitted
    }

    pub(super) fn on_suspect(&mut self, now: Instant, suspect: Suspect) {
        let suspect = match self.members.credible(Message::Suspect(suspect)) {
            Message::Suspect(s) => s,
            _ => unreachable!("a suspicion stays a suspicion"),
        };
        let params = self.suspicion_params();
        let from = suspect.from.clone();
        if suspect.name == *self.local_name() && from != suspect.name && !self.left {
            self.answer_stale_accusation(&suspect);
        }
        let outcome = self
            .members
            .suspect(now, &suspect, Evidence::Accuser(&from), params);
        self.apply(
            &suspect.name.clone(),
            outcome,
            Some(Message::Suspect(suspect)),
        );
    }

    /// An accuser still suspects the local node at an incarnation it already refuted: it
    /// missed the refutation (gossip lets one in tens of thousands slip). Its suspicion would
    /// expire into a false death, so it gets the current alive directly.
    fn answer_stale_accusation(&mut self, suspect: &Suspect) {
        if suspect.incarnation >= self.members.local().incarnation {
            return; // a current accusation: refuted the usual way
        }
        if let Some(addr) = self.members.get(&suspect.from).map(|m| m.addr) {
            let alive = Message::Alive(self.source());
            let piggyback = self.members.is_confirmed_at(&suspect.from, addr);
            self.send_datagram(addr, &[alive], piggyback);
        }
    }

    pub(super) fn on_dead(&mut self, now: Instant, dead: Dead) {
        match self.members.credible(Message::Dead(dead)) {
            Message::Dead(dead) => {
                let outcome = self.members.dead(now, &dead);
                self.apply(&dead.name.clone(), outcome, Some(Message::Dead(dead)));
            }
            // A death above the stored incarnation, declared by a third party.
            Message::Suspect(suspect) => self.on_suspect(now, suspect),
            _ => unreachable!("a death stays a death or becomes a suspicion"),
        }
    }

    /// Suspects `name` after a failed probe (the local node is the accuser).
    pub(super) fn suspect_after_probe(&mut self, now: Instant, name: &NodeName) {
        let Some(m) = self.members.get(name) else {
            return;
        };
        if !m.state.is_live() {
            return;
        }
        let suspect = Suspect {
            name: name.clone(),
            incarnation: m.incarnation,
            from: self.local_name().clone(),
        };
        self.on_suspect(now, suspect);
    }

    /// Carries out what a rule decided about `name`; `message` is the claim, re-gossiped when
    /// it changed something.
    pub(super) fn apply(&mut self, name: &NodeName, outcome: Outcome, message: Option<Message>) {
        let regossip = !matches!(
            outcome,
            Outcome::Ignored
                | Outcome::Refute { .. }
                | Outcome::Conflict { .. }
                | Outcome::Accuse { .. }
                | Outcome::Refused
        );
        // An alive is passed on only about a member this node confirmed: a forged member
        // reaches no further than the node it was sent to (a real one is passed on once it
        // answers the verification ping, see `confirm`).
        let vouched =
            |m: &Message| !matches!(m, Message::Alive(_)) || self.members.is_confirmed(name);
        if regossip {
            if let Some(message) = message.as_ref().filter(|m| vouched(m)) {
                self.enqueue(message);
            }
        }
        let member = || self.members.get(name);
        let event = match outcome {
            Outcome::Ignored => None,
            Outcome::Refused => {
                self.stats.members_refused += 1;
                None
            }
            Outcome::Joined { new } => {
                // Probed in the round-robin once confirmed (see `confirm`).
                self.reconnect.remove(name);
                let joined = member().map(Event::MemberJoined);
                if !new {
                    self.hasten_reconnect();
                }
                joined
            }
            Outcome::Refreshed { changed } => {
                member().filter(|_| changed).map(Event::MemberUpdated)
            }
            Outcome::Suspected => {
                self.stats.suspicions += 1;
                member().map(Event::MemberSuspected)
            }
            Outcome::Confirmed => {
                self.stats.confirmations += 1;
                None
            }
            Outcome::Failed => member().map(Event::MemberFailed),
            Outcome::Left => member().map(Event::MemberLeft),
            Outcome::Refute { accused } => {
                self.refute(accused);
                None
            }
            Outcome::Conflict { known, claimed } => {
                self.stats.conflicts += 1;
                Some(Event::AddressConflict {
                    name: name.clone(),
                    known,
                    claimed,
                })
            }
            Outcome::Accuse { to, message } => {
                self.stats.accusations_sent += 1;
                let piggyback = self.members.is_confirmed_at(name, to);
                self.send_datagram(to, &[message], piggyback);
                None
            }
        };
        if let Some(event) = event {
            self.emit(event);
        }
        self.settle_table();
    }

    /// Reports members evicted to make room (the table takes members whose new address is
    /// not yet confirmed out of the probe order itself).
    fn settle_table(&mut self) {
        for member in self.members.take_evicted() {
            // Never confirmed, so never in the round-robin.
            self.stats.members_evicted += 1;
            self.emit(Event::MemberReaped(member));
        }
    }

    /// Marks `name` confirmed (it answered a ping at `addr`) and schedules it in the
    /// round-robin.
    pub(super) fn confirm(&mut self, name: &NodeName, addr: std::net::SocketAddr) {
        if self.members.confirm(name, addr) {
            self.stats.members_confirmed += 1;
            self.verify_budget.note_confirmed(addr.ip());
            self.members.schedule(name, &mut self.rng);
            if let Some(alive) = self.members.alive_of(name) {
                self.enqueue(&Message::Alive(alive));
            }
            if let Some(member) = self.members.get(name) {
                self.emit(Event::MemberConfirmed(member));
            }
        }
    }

    /// A member held failed is back: the network between it and this node probably healed,
    /// and more of the members held failed may be alive too. The next reconnect exchange
    /// comes within a probe interval instead of up to `reconnect_interval` later, so a healed
    /// partition merges in a few exchanges, one probe interval apart at most, rather than
    /// waiting for the refutations' gossip (which each half mostly spent on itself).
    fn hasten_reconnect(&mut self) {
        let Some(at) = self.timers.reconnect else {
            return;
        };
        let soon = self.clock + self.jitter(self.config.probe_interval());
        if soon < at {
            self.timers.reconnect = Some(soon);
        }
    }

    /// Answers an accusation against the local node with a higher incarnation.
    fn refute(&mut self, accused: crate::Incarnation) {
        if self.left {
            return;
        }
        let incarnation = self.members.refute_local(accused);
        self.stats.refutations += 1;
        self.adjust_health(1);
        self.broadcast_local_alive();
        self.emit(Event::RefutedSelf { incarnation });
    }

    /// Declares the suspects whose timer expired dead (the local node is the declarer).
    pub(super) fn run_suspicion_timers(&mut self, now: Instant) {
        let stall_limit = self.config.probe_timeout();
        let grace = self.config.probe_timeout();
        let mut due = Vec::new();
        let mut stalled = false;
        for name in self.members.expired_suspicions(now) {
            let Some((incarnation, timer)) = self.members.suspicion(&name) else {
                continue;
            };
            if now.saturating_duration_since(timer.deadline()) > stall_limit && !timer.postponed {
                // The timer fired late: this node was stalled, and refutations may be waiting
                // unread. Give them one more chance before declaring anyone dead.
                self.members.postpone_suspicion(&name, now + grace);
                stalled = true;
                continue;
            }
            let degraded = timer.confirmations() < timer.expected();
            due.push((name, incarnation, degraded));
        }
        if stalled {
            self.note_stall();
        }
        for (name, incarnation, degraded) in due {
            self.declare_dead(now, name, incarnation, degraded);
        }
    }

    fn declare_dead(
        &mut self,
        now: Instant,
        name: NodeName,
        incarnation: crate::Incarnation,
        degraded: bool,
    ) {
        if degraded {
            self.stats.degraded_suspicions += 1;
        }
        self.stats.deaths_declared += 1;
        let dead = Dead {
            name,
            incarnation,
            from: self.local_name().clone(),
        };
        self.on_dead(now, dead);
    }

    /// Records that timers ran late: local overload is the local node's problem.
    pub(super) fn note_stall(&mut self) {
        self.stats.stalls += 1;
        self.adjust_health(1);
    }
}
