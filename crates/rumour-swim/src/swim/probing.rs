//! Failure detection: the probe round, indirect probes, acks and nacks.

use std::time::Instant;

use rumour_wire::Delivery;

use super::Swim;
use crate::member::{NodeName, State};
use crate::message::{Ack, IndirectPing, Message, Nack, Ping, Suspect};
use crate::probe::{Probe, Relay};

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
        let recheck_after = self.suspicion_params().min / 2;
        let stale = self.members.stale_suspect(now, recheck_after);
        let Some(target) = stale.or_else(|| self.next_target(now)) else {
            return;
        };
        let Some(member) = self.members.get(&target).cloned() else {
            return;
        };
        let seq = self.next_seq();
        self.stats.probes += 1;
        self.probe = Some(Probe {
            seq,
            target: target.clone(),
            addr: member.addr,
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
        self.send_datagram(member.addr, &messages);
    }

    fn next_target(&mut self, now: Instant) -> Option<NodeName> {
        // Two passes at most: the rest of this cycle, then one full fresh cycle.
        let mut wraps = 0;
        loop {
            match self.order.advance() {
                Some(name) => {
                    let live = self.members.get(&name).is_some_and(|m| m.state.is_live());
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
                    self.order.reshuffle(&mut self.rng);
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
        for member in reaped {
            self.order.remove(&member.name);
            if member.state == State::Dead && self.config.reconnect_interval().is_some() {
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
            self.stats.indirect_probes += 1;
            let request = Message::IndirectPing(IndirectPing {
                seq,
                target: target.clone(),
                target_addr: addr,
                nack: true,
                source: source.clone(),
            });
            self.send_datagram(helper.addr, &[request]);
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

    pub(super) fn on_ping(&mut self, now: Instant, ping: Ping, delivery: Delivery) {
        if ping.target != *self.local_name() {
            // Meant for another member that used to live at this address.
            return;
        }
        let reply_to = ping.source.addr;
        self.on_alive(now, ping.source);
        let ack = Message::Ack(Ack { seq: ping.seq });
        if delivery == Delivery::Stream {
            self.send_stream(reply_to, &ack, None);
        } else {
            self.send_datagram(reply_to, &[ack]);
        }
    }

    pub(super) fn on_indirect_ping(&mut self, now: Instant, req: IndirectPing) {
        let requester = req.source.addr;
        self.on_alive(now, req.source);
        let seq = self.next_seq();
        let relay = Relay {
            requester,
            seq: req.seq,
            nack: req.nack,
            deadline: now + self.config.probe_timeout(),
        };
        if !self.relays.insert(seq, relay) {
            self.stats.relays_dropped += 1;
            return;
        }
        self.stats.relayed_probes += 1;
        let ping = Message::Ping(Ping {
            seq,
            target: req.target,
            source: self.source(),
        });
        self.send_datagram(req.target_addr, &[ping]);
    }

    pub(super) fn on_ack(&mut self, seq: u32, delivery: Delivery) {
        if self.probe.as_ref().is_some_and(|p| p.seq == seq) {
            self.probe = None;
            if delivery == Delivery::Stream {
                self.stats.reliable_only_acks += 1;
            }
            self.adjust_health(-1);
            return;
        }
        if let Some(relay) = self.relays.take(seq) {
            let ack = Message::Ack(Ack { seq: relay.seq });
            self.send_datagram(relay.requester, &[ack]);
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
                self.send_datagram(relay.requester, &[nack]);
            }
        }
    }
}
