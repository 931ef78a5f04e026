//! Full-state exchanges: join, periodic pull-push, seed re-join, reconnection, and the
//! follow-up exchange soon after a join.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::Swim;
use super::dissemination::next_tick;
use crate::member::State;
use crate::message::{Exchange, Message, StateDigest, StateExchange};
use rumour_wire::{pullpush_scale, retransmit_limit};

use crate::pullpush::PullPush;

/// Follow-up exchanges after a join, at most this many (see [`Followups`]).
pub(crate) const MAX_FOLLOWUPS: u8 = 2;

/// The follow-up exchanges of a join in progress.
///
/// In a mass join the news of the members that joined the seed late runs out of gossip
/// retransmits before it reaches everyone: on sockets, 512 nodes joining at once left a few
/// nodes each missing one or two late members for seconds after the first follow-up (a third of
/// the joins took 6 to 10 s instead of 4.5). So when members arrived after the first follow-up was
/// scheduled, a second one follows once gossip has sent what it holds as often as it will
/// (`gossip_interval * retransmit_limit` after the first), as a digest request
/// when digests are on: where the two tables already agree it costs a few dozen bytes, where
/// they do not it becomes the full exchange that brings the missing members. A lone join costs
/// one follow-up, as before.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Followups {
    /// Follow-ups still allowed, the scheduled one included.
    pub(crate) left: u8,
    /// When the scheduled one was scheduled.
    pub(crate) since: Instant,
}

impl Followups {
    /// None scheduled.
    pub(crate) fn none(now: Instant) -> Followups {
        Followups {
            left: 0,
            since: now,
        }
    }
}

impl Swim {
    /// Starts a full-state exchange with `to`.
    pub(super) fn send_exchange_request(&mut self, to: SocketAddr, join: bool) {
        self.stats.pullpushes += 1;
        let message = self.state_message(Exchange::Request, join);
        self.send_stream(to, &message, Some(PullPush::Request { join }));
    }

    /// Starts a periodic anti-entropy exchange with `to`, digest first: `to` answers with a
    /// full-state exchange only when its member table differs (see [`Swim::on_digest`]). The
    /// stream still opens the KV store's pull-push (it has its own digests).
    fn send_digest_request(&mut self, to: SocketAddr) {
        self.stats.pullpushes += 1;
        let me = self.members.local();
        let (members, hash) = self.members.digest();
        let message = Message::Digest(StateDigest {
            source: me.name.clone(),
            source_addr: me.addr,
            members,
            hash,
        });
        self.send_stream(to, &message, Some(PullPush::Request { join: false }));
    }

    /// A peer's digest: nothing to do when the tables agree; otherwise a full-state exchange
    /// with the peer, under the rule of [`Swim::on_state`]'s replies (only to the stream's peer
    /// host or to a confirmed member's address).
    pub(super) fn on_digest(&mut self, from: SocketAddr, digest: StateDigest) {
        if digest.source == *self.local_name() {
            return;
        }
        let from_its_host = from.ip() == digest.source_addr.ip();
        if from_its_host {
            self.members.forget_reaped(&digest.source);
            self.confirm(&digest.source, digest.source_addr);
        }
        if self.members.digest() == (digest.members, digest.hash) {
            self.stats.digests_matched += 1;
            return;
        }
        if from_its_host
            || self
                .members
                .is_confirmed_at(&digest.source, digest.source_addr)
        {
            self.stats.pullpushes += 1;
            let request = self.state_message(Exchange::Request, false);
            self.send_stream(digest.source_addr, &request, None);
        } else {
            self.stats.replies_refused += 1;
        }
    }

    fn state_message(&self, exchange: Exchange, join: bool) -> Message {
        let me = self.members.local();
        Message::State(StateExchange {
            exchange,
            join,
            source: me.name.clone(),
            source_addr: me.addr,
            members: self.members.snapshot(),
        })
    }

    pub(super) fn on_state(&mut self, now: Instant, from: SocketAddr, state: StateExchange) {
        if state.source == *self.local_name() {
            return;
        }
        // The stream's peer is who it claims to be only if it connects from the host of the
        // address it names (a stream's source cannot be spoofed without a handshake).
        let from_its_host = from.ip() == state.source_addr.ip();
        if state.exchange == Exchange::Request {
            // Answer with the state as it was before the merge, like memberlist, and only to
            // the stream's peer host or to a confirmed member's address: never a whole table
            // to an address a message merely names.
            if from_its_host
                || self
                    .members
                    .is_confirmed_at(&state.source, state.source_addr)
            {
                let reply = self.state_message(Exchange::Reply, state.join);
                self.send_stream(state.source_addr, &reply, Some(PullPush::Reply));
            } else {
                self.stats.replies_refused += 1;
            }
        }
        if from_its_host {
            // The peer's own entry, from its own host, is first-hand: it is alive now, whatever
            // this node remembers of a reaped life of it (a member back from a partition).
            self.members.forget_reaped(&state.source);
        }
        self.merge(now, &state);
        if from_its_host {
            self.confirm(&state.source, state.source_addr);
        }
        if state.exchange == Exchange::Reply && state.join && self.followup_wanted {
            // One more exchange soon, with another member: the joiner's view is then checked
            // against a second one, and that member learns of the joiner at once. Half a
            // probe interval and up to as much again: in a mass join the members that joined
            // the seed after this node reach it by gossip, except a few whose news ran out
            // of retransmits first, and this exchange brings those (64 nodes joined in
            // 1.0 s simulated with a whole probe interval, 0.9 with half; 256 nodes 1.5 and
            // 1.2 s, seeds 1-5). More follow while members keep arriving (see `Followups`).
            self.followup_wanted = false;
            let p = self.config.probe_interval() / 2;
            self.followups = Followups {
                left: MAX_FOLLOWUPS,
                since: now,
            };
            self.timers.followup = Some(now + p + self.stagger(p));
        }
    }

    fn merge(&mut self, now: Instant, state: &StateExchange) {
        let params = self.suspicion_params();
        for remote in &state.members {
            if remote.state == State::Alive {
                let alive = crate::message::Alive {
                    name: remote.name.clone(),
                    addr: remote.addr,
                    incarnation: remote.incarnation,
                    meta: remote.meta.clone(),
                };
                if !self.admits(&alive) {
                    continue;
                }
            }
            // Members learned here, in bulk, wait for the verification lane: pinging them all
            // at once is a burst of N² datagrams in a mass join (on sockets, 256 nodes took
            // 8 to 12 s instead of 2, with receive queues overflowing).
            let (outcome, message) = self.members.merge(now, remote, params);
            self.apply(&remote.name, outcome, message);
        }
    }

    /// Periodic exchanges: anti-entropy, seed re-join, reconnection, the join follow-ups.
    pub(super) fn run_exchange_timers(&mut self, now: Instant) {
        if self.left {
            return;
        }
        if self.timers.pullpush.is_some_and(|at| at <= now) {
            let base = self
                .config
                .pullpush_interval()
                .expect("timer runs only when on");
            let period = pullpush_scale(base, self.members.len());
            let at = self.timers.pullpush.expect("checked");
            self.timers.pullpush = Some(next_tick(at, now, period));
            let target = self.random_members(1, |m| m.state == State::Alive);
            // Digest first only once the table has settled: no member event for as long as
            // gossip retransmits an update. While members come and go, tables differ anyway
            // and a digest would only delay the full exchange by a round trip.
            let window = self.config.gossip_interval()
                * retransmit_limit(self.config.retransmit_mult().get(), self.members.len());
            let settled = now.saturating_duration_since(self.last_member_change) >= window;
            if let Some(member) = target.first() {
                if self.config.pullpush_digest() && settled {
                    self.send_digest_request(member.addr);
                } else {
                    self.send_exchange_request(member.addr, false);
                }
            }
        }
        if self.timers.followup.is_some_and(|at| at <= now) {
            self.timers.followup = None;
            // After the first, most tables agree: a digest costs a full exchange only where not.
            let first = self.followups.left >= MAX_FOLLOWUPS;
            self.open_with_random_member(!first && self.config.pullpush_digest());
            let f = &mut self.followups;
            f.left = f.left.saturating_sub(1);
            if f.left > 0 && self.last_member_change > f.since {
                f.since = now;
                // Once gossip has sent the news it holds now as often as it will.
                let p = self.config.gossip_interval()
                    * retransmit_limit(self.config.retransmit_mult().get(), self.members.len());
                // No random stagger: the first follow-up's stagger already spread the joiners, and
                // an extra draw would change every later random choice of the node.
                self.timers.followup = Some(now + p);
            }
        }
        if self.timers.rejoin.is_some_and(|at| at <= now) {
            let period = self
                .config
                .rejoin_interval()
                .expect("timer runs only when on");
            self.timers.rejoin = Some(now + self.jitter(period));
            self.rejoin_seeds();
        }
        if self.timers.reconnect.is_some_and(|at| at <= now) {
            let period = self
                .config
                .reconnect_interval()
                .expect("timer runs only when on");
            self.timers.reconnect = Some(now + self.jitter(period));
            if let Some((addr, join)) = self.reconnect_target(now) {
                self.stats.reconnect_attempts += 1;
                self.send_exchange_request(addr, join);
            }
        }
    }

    /// Whom the reconnect tick exchanges state with, and whether as a join: one failed member,
    /// a confirmed member the table holds dead (a periodic exchange: the KV stores compare
    /// digests first) or a reaped one from the reconnect list (a join: both sides send all).
    ///
    /// A member declared dead stays in the table until the probe order wraps (`n` probe
    /// periods: minutes in a cluster of hundreds) before it is reaped. If it is alive after
    /// all (a healed partition) and its refutation's gossip ran out before it reached this
    /// node (its own half held this half dead, so it gossiped there), only an exchange
    /// repairs the view: a pull-push (its period grows with the cluster) or this.
    fn reconnect_target(&mut self, now: Instant) -> Option<(SocketAddr, bool)> {
        let listed = self.reconnect.expire(now);
        let not_alive = self.members.len() - self.members.num_alive();
        let in_table = if not_alive == 0 {
            None
        } else {
            self.random_members(1, |m| m.state == State::Dead).pop()
        };
        // A member drawn from the table is one candidate beside each listed one, so neither
        // source starves the other.
        match in_table {
            Some(member) if listed == 0 || self.rng.gen_range(0..=listed) == 0 => {
                Some((member.addr, false))
            }
            _ => self
                .reconnect
                .pick(now, &mut self.rng)
                .map(|addr| (addr, true)),
        }
    }

    /// Opens an exchange with a random alive member: a digest request if `digest`, else full
    /// state.
    fn open_with_random_member(&mut self, digest: bool) {
        let target = self.random_members(1, |m| m.state == State::Alive);
        if let Some(member) = target.first() {
            if digest {
                self.send_digest_request(member.addr);
            } else {
                self.send_exchange_request(member.addr, false);
            }
        }
    }

    /// Re-joins the seeds that are not alive members: a seed cut off in another half of a
    /// split cluster is brought back; seeds already in view cost nothing.
    fn rejoin_seeds(&mut self) {
        let seeds: Vec<SocketAddr> = self
            .seeds
            .iter()
            .copied()
            .filter(|&seed| {
                !self
                    .members
                    .members()
                    .any(|m| m.addr == seed && m.state == State::Alive)
            })
            .collect();
        for seed in seeds {
            self.send_exchange_request(seed, true);
        }
    }
}
