//! Pull-push: reconciling the whole store with one peer, coarse to fine.
//!
//! On join, both sides exchange their whole store ([`Message::FullState`]). The periodic
//! exchange compares digests and sends only what differs:
//!
//! 1. opener → responder: [`Message::Summary`], one hash over every key's hash. Equal stores stop
//!    here: the responder answers [`Message::Done`] (two messages of a few dozen bytes, whatever
//!    the store holds);
//! 2. responder → opener: [`Message::KeyHashes`], the hash of every key's canonical encoding;
//! 3. opener → responder: [`Message::Digests`]: whole values for keys the responder lacks (and for
//!    differing keys whose type offers no bucketed digests), the keys it wants whole, and the
//!    bucket digests of the other differing keys: the value's entries split into a power of two
//!    of buckets by a hash of their name salted with the exchange id, two 32-bit hashes per
//!    bucket, one over names and descriptions and one over heartbeats (32 buckets for a ring of
//!    1,000 instances);
//! 4. responder → opener: [`Message::Entries`]: for each bucket that differs, its entries (whole
//!    where descriptions differ, heartbeats alone where only heartbeats do), and the same
//!    buckets wanted back;
//! 5. opener → responder: [`Message::Entries`] with what it holds of the wanted buckets that is
//!    newer than what the responder sent (only if anything is).
//!
//! So replicas one heartbeat apart exchange the bucket digests, one bucket's heartbeats and the
//! missing heartbeat, not a digest per entry; `docs/ring.md` ("Digests") gives the figures.
//!
//! Received values are merged like gossiped changes, and what they changed is forwarded by
//! gossip, except what a node that knew no live peer learns from its join answer (the cluster
//! already has it, and it has nobody to tell). A node that rejoins with live peers (a seed rejoin
//! or a reconnect after a partition heals) forwards what the answer changed: its side of the
//! split lacks it, and should not wait for digest anti-entropy.
//! A node runs at most `max_outgoing_pullpush` exchanges it opened at a time and serves at most
//! `max_incoming_pullpush` at once; both kinds are abandoned after `pullpush_timeout`.
//!
//! Every message here travels over a stream and is answered only to the stream's sender, whose
//! address the session must name; a join answer waits until its sender is a peer reported
//! alive.
//! `docs/protocol-gossip.md` (3.4) gives the rules.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use rumour_wire::Delivery;

use crate::error::Error;
use crate::gossip::{Gossip, Transmit};
use rumour_ring::{BucketSelection, Value};

use crate::message::{KeyChange, KeyDigests, KeyHash, Message, MessageKind, Session, Wanted};
use crate::store::change_message;

#[derive(Clone)]
struct Outgoing {
    peer: SocketAddr,
    /// Whether what a `FullState` answer changes is forwarded: not for the first join of a node
    /// that knows no live peer (the cluster already has it, and there is nobody to tell), but
    /// for a rejoin of a node with other live peers (after a partition heals, its side lacks it).
    forward: bool,
    /// The peers a join answer's changes are pushed to directly: up to `rejoin_push_peers` of
    /// the live peers other than `peer` when the exchange started (this node's side).
    side: Vec<SocketAddr>,
    deadline: Instant,
}

/// A join request from a peer not yet known alive: answered when the peer is reported up.
#[derive(Clone)]
struct Deferred {
    id: u64,
    deadline: Instant,
}

/// The exchanges in progress: a bounded number opened here, a bounded number served, and a
/// bounded number of join answers waiting for their peer to be reported up.
#[derive(Clone)]
pub(crate) struct Sessions {
    outgoing: BTreeMap<u64, Outgoing>,
    incoming: BTreeMap<(SocketAddr, u64), Instant>,
    deferred: BTreeMap<SocketAddr, Deferred>,
    max_outgoing: usize,
    max_incoming: usize,
    timeout: Duration,
}

impl Sessions {
    pub(crate) fn new(max_outgoing: usize, max_incoming: usize, timeout: Duration) -> Self {
        Sessions {
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            deferred: BTreeMap::new(),
            max_outgoing: max_outgoing.max(1),
            max_incoming,
            timeout,
        }
    }

    /// Whether `max_outgoing` exchanges opened here are in progress.
    pub(crate) fn busy(&self) -> bool {
        self.outgoing.len() >= self.max_outgoing
    }

    /// The peer of an exchange opened here, if one is in progress.
    pub(crate) fn outgoing_peer(&self) -> Option<SocketAddr> {
        self.outgoing.values().next().map(|out| out.peer)
    }

    /// The peers of this node's side the join answer of exchange `id` is pushed to.
    fn side(&self, id: u64) -> Vec<SocketAddr> {
        self.outgoing
            .get(&id)
            .map(|out| out.side.clone())
            .unwrap_or_default()
    }

    /// The outgoing exchange `id`: its peer and whether what its answer changes is forwarded.
    fn outgoing(&self, id: u64) -> Option<(SocketAddr, bool)> {
        self.outgoing.get(&id).map(|out| (out.peer, out.forward))
    }

    fn open_incoming(&mut self, now: Instant, session: Session) -> bool {
        if self.incoming.len() >= self.max_incoming {
            return false;
        }
        self.incoming
            .insert((session.from, session.id), now + self.timeout);
        true
    }

    fn has_incoming(&self, session: Session) -> bool {
        self.incoming.contains_key(&(session.from, session.id))
    }

    fn close_incoming(&mut self, session: Session) {
        self.incoming.remove(&(session.from, session.id));
    }

    /// Keeps a join answer for `peer` until it is reported up; false if `max_incoming` are
    /// already waiting.
    fn defer(&mut self, now: Instant, peer: SocketAddr, id: u64) -> bool {
        if self.deferred.len() >= self.max_incoming && !self.deferred.contains_key(&peer) {
            return false;
        }
        let deadline = now + self.timeout;
        self.deferred.insert(peer, Deferred { id, deadline });
        true
    }

    /// The exchange id of the join answer waiting for `peer`, if any (it stops waiting).
    fn take_deferred(&mut self, now: Instant, peer: SocketAddr) -> Option<u64> {
        let deferred = self.deferred.remove(&peer)?;
        (deferred.deadline > now).then_some(deferred.id)
    }

    /// Abandons exchanges past their deadline; returns how many, and how many deferred join
    /// answers were dropped.
    pub(crate) fn expire(&mut self, now: Instant) -> (u64, u64) {
        let before = self.incoming.len() + self.outgoing.len();
        self.incoming.retain(|_, deadline| *deadline > now);
        self.outgoing.retain(|_, out| out.deadline > now);
        let expired = (before - self.incoming.len() - self.outgoing.len()) as u64;
        let waiting = self.deferred.len();
        self.deferred.retain(|_, d| d.deadline > now);
        (expired, (waiting - self.deferred.len()) as u64)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let incoming = self.incoming.values().min().copied();
        let outgoing = self.outgoing.values().map(|out| out.deadline).min();
        let deferred = self.deferred.values().map(|d| d.deadline).min();
        [incoming, outgoing, deferred].into_iter().flatten().min()
    }
}

/// What the opener sends after comparing key hashes.
#[derive(Default)]
struct Plan {
    push: Vec<KeyChange>,
    want: Vec<String>,
    keys: Vec<KeyDigests>,
}

impl Gossip {
    /// Opens a pull-push with `peer` and returns its first message, for the embedder to send
    /// reliably (possibly bundled with the membership table); `None` if an exchange opened here
    /// is still in progress. With `join`, the whole store is sent and the peer answers with its
    /// own; otherwise the digest exchange of the module documentation starts. The answers come
    /// back through [`Gossip::handle_stream`], further messages leave through
    /// [`Gossip::poll_transmit`]; an exchange that does not finish within `pullpush_timeout` is
    /// abandoned.
    pub fn start_pullpush(&mut self, now: Instant, peer: SocketAddr, join: bool) -> Option<Bytes> {
        if self.sessions.busy() {
            self.stats.pullpush_busy += 1;
            return None;
        }
        let id = self.rng.r#gen::<u64>();
        let forward = !join || self.has_other_alive_peer(peer);
        let side = if join { self.side_of(peer) } else { Vec::new() };
        self.sessions.outgoing.insert(
            id,
            Outgoing {
                peer,
                forward,
                side,
                deadline: now + self.config.pullpush_timeout,
            },
        );
        self.stats.pullpush_started += 1;
        let session = self.session(id);
        let message = if join {
            Message::FullState {
                session,
                request: true,
                entries: self.store.all(),
            }
        } else {
            let (root, keys) = self.store.root_hash();
            Message::Summary {
                session,
                root,
                keys,
            }
        };
        Some(self.encode_sent(&message))
    }

    /// Up to `rejoin_push_peers` random live peers other than `peer`: this node's side of a
    /// join exchange with `peer`.
    fn side_of(&mut self, peer: SocketAddr) -> Vec<SocketAddr> {
        let others = self
            .alive_peers()
            .into_iter()
            .filter(|addr| *addr != peer)
            .collect();
        self.pick(others, self.config.rejoin_push_peers)
    }

    /// Merges the values of a join message (a request, or the answer to one this node opened)
    /// and forwards what they changed: by gossip, and straight to the peers of `side` over
    /// streams. A join brings the other side's state: the peers gossip picks are as likely to
    /// be on that side (which holds it already, and so does not relay it) as on this one, and
    /// with `retransmit_mult * ceil(log10(n + 1))` transmits (4 up to 9 members) every copy can
    /// land there; `side` makes sure this node's side hears it.
    fn merge_join(
        &mut self,
        now: Instant,
        from: SocketAddr,
        values: Vec<KeyChange>,
        side: &[SocketAddr],
    ) -> Result<(), Error> {
        let mut first = Ok(());
        let mut changed = Vec::new();
        for change in values {
            match self.merge_change(now, from, change, true, None) {
                Ok(Some(message)) => changed.push(message),
                Ok(None) => {}
                Err(e) => first = first.and(Err(e)),
            }
        }
        if changed.is_empty() {
            return first;
        }
        // A receiver handles at most `max_stream_messages` messages of one stream.
        let per_stream = self.config.max_stream_messages.max(1);
        for &to in side {
            for chunk in changed.chunks(per_stream) {
                for message in chunk {
                    self.stats.sent.count(MessageKind::Change, message.len());
                }
                self.stats.rejoin_pushed += chunk.len() as u64;
                self.transmits.push_back(Transmit {
                    to,
                    delivery: Delivery::Stream,
                    messages: chunk.to_vec(),
                });
            }
        }
        first
    }

    /// Answers the join request of exchange `id` from `to` with the whole store.
    fn answer_join(&mut self, to: SocketAddr, id: u64) {
        self.stats.pullpush_served += 1;
        let answer = Message::FullState {
            session: self.session(id),
            request: false,
            entries: self.store.all(),
        };
        self.reply(to, &answer);
    }

    /// `peer` was reported up: answer its join request if one is waiting.
    pub(crate) fn release_deferred(&mut self, now: Instant, peer: SocketAddr) {
        if let Some(id) = self.sessions.take_deferred(now, peer) {
            self.answer_join(peer, id);
        }
    }

    fn session(&self, id: u64) -> Session {
        Session {
            from: self.config.advertise_addr,
            id,
        }
    }

    fn reply(&mut self, to: SocketAddr, message: &Message) {
        let bytes = self.encode_sent(message);
        self.transmits.push_back(Transmit {
            to,
            delivery: Delivery::Stream,
            messages: vec![bytes],
        });
    }

    fn complete_outgoing(&mut self, id: u64) {
        self.sessions.outgoing.remove(&id);
        self.stats.pullpush_completed += 1;
    }

    /// Whether the outgoing exchange `session.id` is in progress with `from`: `Some(forward)`,
    /// whether what its answer changes is forwarded.
    /// An answer from another peer than the exchange's is refused and counted.
    fn outgoing_from(&mut self, from: SocketAddr, session: Session) -> Option<bool> {
        let (peer, forward) = self.sessions.outgoing(session.id)?;
        if peer == from {
            Some(forward)
        } else {
            self.stats.session_mismatch += 1;
            None
        }
    }

    /// Merges every value of a pull-push message; returns the first error after trying all.
    fn merge_all(
        &mut self,
        now: Instant,
        from: SocketAddr,
        values: Vec<KeyChange>,
        forward: bool,
    ) -> Result<(), Error> {
        let mut first = Ok(());
        for change in values {
            if let Err(e) = self.receive_change(now, from, change, forward, None) {
                first = first.and(Err(e));
            }
        }
        first
    }

    /// Handles one pull-push message (anything but a [`Message::Change`]) received over a
    /// stream from `from`, whose session names `from` (the caller checked). Every answer goes
    /// to `from`; a join answer only once `from` is known alive.
    pub(crate) fn handle_pullpush(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: Message,
    ) -> Result<(), Error> {
        match message {
            Message::Change(change) => self.receive_change(now, from, change, true, None),
            Message::FullState {
                session,
                request: true,
                entries,
            } => {
                if self.is_alive(from) {
                    self.answer_join(from, session.id);
                } else if self.sessions.defer(now, from, session.id) {
                    self.stats.pullpush_deferred += 1;
                } else {
                    self.stats.pullpush_deferred_dropped += 1;
                }
                let side = self.side_of(from);
                self.merge_join(now, from, entries, &side)
            }
            Message::FullState {
                session,
                request: false,
                entries,
            } => match self.outgoing_from(from, session) {
                Some(true) => {
                    let side = self.sessions.side(session.id);
                    self.complete_outgoing(session.id);
                    self.merge_join(now, from, entries, &side)
                }
                Some(false) => {
                    self.complete_outgoing(session.id);
                    self.merge_all(now, from, entries, false)
                }
                None => self.unexpected(),
            },
            Message::Summary { session, root, .. } => {
                self.answer_summary(now, from, session, root);
                Ok(())
            }
            Message::KeyHashes { session, keys } => {
                if self.outgoing_from(from, session).is_none() {
                    return self.unexpected();
                }
                self.answer_key_hashes(from, session, keys);
                Ok(())
            }
            Message::Digests {
                session,
                push,
                want,
                keys,
            } => {
                if !self.sessions.has_incoming(session) {
                    return self.unexpected();
                }
                let merged = self.merge_all(now, from, push, true);
                self.answer_digests(now, from, session, &want, &keys);
                merged
            }
            Message::Entries {
                session,
                values,
                want,
            } => self.handle_entries(now, from, session, values, &want),
            Message::Done { session } => {
                if self.outgoing_from(from, session).is_some() {
                    self.complete_outgoing(session.id);
                    Ok(())
                } else if self.sessions.has_incoming(session) {
                    self.sessions.close_incoming(session);
                    Ok(())
                } else {
                    self.unexpected()
                }
            }
        }
    }

    fn unexpected(&mut self) -> Result<(), Error> {
        self.stats.pullpush_unexpected += 1;
        Ok(())
    }

    /// Step 2: equal root hashes end the exchange; otherwise send every key's hash. An opener
    /// not known alive, or one past `max_incoming_pullpush`, gets a `Done` (no bigger than its
    /// `Summary`).
    fn answer_summary(&mut self, now: Instant, from: SocketAddr, session: Session, root: u64) {
        let me = self.session(session.id);
        let (mine, _) = self.store.root_hash();
        if mine == root {
            self.stats.pullpush_served += 1;
            self.reply(from, &Message::Done { session: me });
        } else if self.is_alive(from) && self.sessions.open_incoming(now, session) {
            self.stats.pullpush_served += 1;
            let keys = self.store.key_hashes();
            self.reply(from, &Message::KeyHashes { session: me, keys });
        } else {
            // Busy or unknown: end the exchange at once rather than let the opener wait.
            self.stats.pullpush_refused += 1;
            self.reply(from, &Message::Done { session: me });
        }
    }

    /// Step 3: compare key hashes and send what differs.
    fn answer_key_hashes(&mut self, from: SocketAddr, session: Session, theirs: Vec<KeyHash>) {
        let plan = self.plan(theirs, session.id);
        let me = self.session(session.id);
        if plan.push.is_empty() && plan.want.is_empty() && plan.keys.is_empty() {
            self.complete_outgoing(session.id);
            self.reply(from, &Message::Done { session: me });
            return;
        }
        let message = Message::Digests {
            session: me,
            push: plan.push,
            want: plan.want,
            keys: plan.keys,
        };
        self.reply(from, &message);
    }

    /// What the opener sends: `seed` (the exchange id) salts the bucket digests.
    fn plan(&mut self, theirs: Vec<KeyHash>, seed: u64) -> Plan {
        let theirs: BTreeMap<String, u64> =
            theirs.into_iter().map(|kh| (kh.key, kh.hash)).collect();
        let mine = self.store.key_hashes();
        let mut plan = Plan::default();
        for KeyHash { key, hash } in &mine {
            let deleted = self.store.marker(key).is_some_and(|m| m.deleted);
            match theirs.get(key) {
                // A peer ignores deletions of keys it does not hold: do not send them.
                None if deleted => {}
                None => plan.push.extend(self.store.whole(key)),
                Some(their_hash) if their_hash == hash => {}
                Some(_) => match self.store.entry(key).and_then(|entry| {
                    let count = entry.value.digest_buckets();
                    Some((entry, entry.value.bucket_digests(count, seed)?))
                }) {
                    Some((entry, buckets)) => plan.keys.push(KeyDigests {
                        key: key.clone(),
                        codec: entry.codec().to_owned(),
                        marker: entry.marker,
                        buckets,
                    }),
                    _ => {
                        plan.push.extend(self.store.whole(key));
                        plan.want.push(key.clone());
                    }
                },
            }
        }
        let mine: BTreeSet<&str> = mine.iter().map(|kh| kh.key.as_str()).collect();
        plan.want.extend(
            theirs
                .into_keys()
                .filter(|key| !mine.contains(key.as_str())),
        );
        plan
    }

    /// Step 4: send what the differing buckets hold and want the same buckets back.
    fn answer_digests(
        &mut self,
        now: Instant,
        from: SocketAddr,
        session: Session,
        want: &[String],
        keys: &[KeyDigests],
    ) {
        let mut values: Vec<KeyChange> = want.iter().filter_map(|k| self.store.whole(k)).collect();
        let mut wanted = Vec::new();
        for digests in keys {
            // Take the opener's marker first; send ours back only if it is newer.
            let marker_only = change_message(&digests.key, &digests.codec, None, digests.marker);
            let _ = self.receive_change(now, from, marker_only, true, None);
            let count = digests.buckets.len();
            let mine = self
                .store
                .entry(&digests.key)
                .and_then(|entry| entry.value.bucket_digests(count, session.id));
            let Some(mine) = mine else {
                values.extend(self.store.whole(&digests.key));
                wanted.push(Wanted {
                    key: digests.key.clone(),
                    buckets: count as u32,
                    whole: (0..count as u32).collect(),
                    heartbeats: Vec::new(),
                });
                continue;
            };
            let (mut whole, mut heartbeats) = (Vec::new(), Vec::new());
            for (b, (m, t)) in (0u32..).zip(mine.iter().zip(&digests.buckets)) {
                if m.descriptions != t.descriptions {
                    whole.push(b);
                } else if m.heartbeats != t.heartbeats {
                    heartbeats.push(b);
                }
            }
            let selection = BucketSelection {
                count,
                seed: session.id,
                whole: &whole,
                heartbeats: &heartbeats,
            };
            let part = self.selected_buckets(&digests.key, &selection, None);
            if let Some(part) = part {
                values.push(part);
            } else if let Some(entry) = self.store.entry(&digests.key) {
                if entry.marker > digests.marker {
                    values.push(change_message(
                        &digests.key,
                        entry.codec(),
                        None,
                        entry.marker,
                    ));
                }
            }
            if !whole.is_empty() || !heartbeats.is_empty() {
                wanted.push(Wanted {
                    key: digests.key.clone(),
                    buckets: count as u32,
                    whole,
                    heartbeats,
                });
            }
        }
        let me = self.session(session.id);
        if wanted.is_empty() {
            self.sessions.close_incoming(session);
            if values.is_empty() {
                self.reply(from, &Message::Done { session: me });
                return;
            }
        }
        let message = Message::Entries {
            session: me,
            values,
            want: wanted,
        };
        self.reply(from, &message);
    }

    /// What `key` holds of the selected buckets, less what `except` holds as new or newer, as a
    /// change message; `None` if that is nothing (or the key is absent). A type that cannot be
    /// split is sent whole.
    fn selected_buckets(
        &self,
        key: &str,
        selection: &BucketSelection<'_>,
        except: Option<&dyn Value>,
    ) -> Option<KeyChange> {
        if selection.whole.is_empty() && selection.heartbeats.is_empty() {
            return None;
        }
        let entry = self.store.entry(key)?;
        match entry.value.select_buckets(selection, except) {
            Some(part) if !part.has_content() => None,
            Some(part) => Some(change_message(
                key,
                entry.codec(),
                Some(part.as_ref()),
                entry.marker,
            )),
            None => self.store.whole(key),
        }
    }

    /// Steps 5 and 6: merge the entries; the opener answers what was wanted.
    fn handle_entries(
        &mut self,
        now: Instant,
        from: SocketAddr,
        session: Session,
        values: Vec<KeyChange>,
        want: &[Wanted],
    ) -> Result<(), Error> {
        if self.outgoing_from(from, session).is_some() {
            self.complete_outgoing(session.id);
            let theirs = self.received_values(&values, want);
            let merged = self.merge_all(now, from, values, true);
            if !want.is_empty() {
                let values = want
                    .iter()
                    .filter_map(|w| {
                        let selection = BucketSelection {
                            count: w.buckets as usize,
                            seed: session.id,
                            whole: &w.whole,
                            heartbeats: &w.heartbeats,
                        };
                        let except = theirs.get(w.key.as_str()).map(|v| v.as_ref());
                        self.selected_buckets(&w.key, &selection, except)
                    })
                    .collect::<Vec<_>>();
                if !values.is_empty() {
                    let message = Message::Entries {
                        session: self.session(session.id),
                        values,
                        want: Vec::new(),
                    };
                    self.reply(from, &message);
                }
            }
            merged
        } else if self.sessions.has_incoming(session) {
            self.sessions.close_incoming(session);
            self.merge_all(now, from, values, true)
        } else {
            self.unexpected()
        }
    }
}

impl Gossip {
    /// The values a peer sent for the keys it wants buckets of, decoded (to leave out of the
    /// answer what the peer already holds).
    fn received_values(
        &self,
        values: &[KeyChange],
        want: &[Wanted],
    ) -> BTreeMap<String, Box<dyn Value>> {
        let mut decoded = BTreeMap::new();
        for change in values {
            if !want.iter().any(|w| w.key == change.key) {
                continue;
            }
            let Some(bytes) = &change.value else { continue };
            if let Ok(Some(value)) = self.store.decode(&change.key, &change.codec, bytes) {
                decoded.insert(change.key.clone(), value);
            }
        }
        decoded
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
    use super::*;

    #[test]
    fn only_one_outgoing_exchange_and_a_bounded_number_incoming() {
        let now = Instant::now();
        let mut sessions = Sessions::new(1, 1, Duration::from_secs(10));
        let a = Session {
            from: "127.0.0.1:1".parse().unwrap(),
            id: 1,
        };
        let b = Session { id: 2, ..a };
        assert!(sessions.open_incoming(now, a));
        assert!(!sessions.open_incoming(now, b));
        sessions.outgoing.insert(
            9,
            Outgoing {
                peer: a.from,
                forward: true,
                side: Vec::new(),
                deadline: now + Duration::from_secs(5),
            },
        );
        assert!(sessions.busy());
        assert_eq!(sessions.poll_timeout(), Some(now + Duration::from_secs(5)));
        assert_eq!(sessions.expire(now + Duration::from_secs(5)), (1, 0));
        assert!(!sessions.busy());
        assert_eq!(sessions.expire(now + Duration::from_secs(10)), (1, 0));
        assert!(sessions.open_incoming(now, b));
    }

    #[test]
    fn deferred_join_answers_are_bounded_and_expire() {
        let now = Instant::now();
        let mut sessions = Sessions::new(1, 1, Duration::from_secs(10));
        let (x, y) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        assert!(sessions.defer(now, x, 7));
        assert!(!sessions.defer(now, y, 8));
        assert_eq!(sessions.take_deferred(now, x), Some(7));
        assert_eq!(sessions.take_deferred(now, x), None);
        assert!(sessions.defer(now, y, 8));
        assert_eq!(sessions.expire(now + Duration::from_secs(10)), (0, 1));
        assert_eq!(sessions.take_deferred(now, y), None);
    }
}
