//! Dissemination: the broadcast queue, piggybacking, and the gossip tick.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rumour_wire::{Broadcast, Delivery};

use super::Swim;
use crate::member::{NodeName, State};
use crate::message::{Message, MessageKind};
use crate::transmit::Transmit;

/// A queued membership update: the encoded alive / suspect / dead message about one member.
/// One update per member is pending at a time; a newer one replaces it.
#[derive(Clone, Debug)]
pub struct MemberUpdate {
    name: NameKey,
    kind: MessageKind,
    bytes: Bytes,
}

/// A member's name as the broadcast queue's key: ordered by the address of the name's interned
/// allocation, so finding a member's pending update compares integers, not names. The queue
/// only searches its keys, never lists them, so their order (which differs from run to run)
/// changes nothing it sends.
#[derive(Clone, Debug)]
pub struct NameKey(NodeName);

impl PartialEq for NameKey {
    fn eq(&self, other: &NameKey) -> bool {
        self.0 == other.0
    }
}

impl Eq for NameKey {}

impl Ord for NameKey {
    fn cmp(&self, other: &NameKey) -> std::cmp::Ordering {
        self.0.identity().cmp(&other.0.identity())
    }
}

impl PartialOrd for NameKey {
    fn partial_cmp(&self, other: &NameKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl MemberUpdate {
    /// The member the update is about.
    #[must_use]
    pub fn name(&self) -> &NodeName {
        &self.name.0
    }

    /// The message type.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        self.kind
    }
}

impl Broadcast for MemberUpdate {
    type Key = NameKey;
    fn key(&self) -> &NameKey {
        &self.name
    }
    fn payload(&self) -> &[u8] {
        &self.bytes
    }
}

impl Swim {
    /// Random confirmed members to gossip to: alive and suspect ones, and dead ones for
    /// `gossip_to_the_dead_time` after they died (so they can hear they were declared dead
    /// and refute), excluding the local node; at most `count`. Members that never answered a
    /// ping of this node are not gossiped to.
    pub fn gossip_targets(&mut self, now: Instant, count: usize) -> Vec<SocketAddr> {
        let dead_time = self.config.gossip_to_the_dead_time();
        self.random_members(count, |m| match m.state {
            State::Alive | State::Suspect => true,
            State::Dead => now.saturating_duration_since(m.state_changed_at) < dead_time,
            State::Left => false,
        })
        .into_iter()
        .map(|m| m.addr)
        .collect()
    }

    /// Takes queued membership updates that fit `budget` bytes of a datagram (each costing
    /// [`Config::packed_len`](crate::Config::packed_len) of its length), fewest transmits first. Each update
    /// taken counts one transmit.
    pub fn fill_broadcasts(&mut self, budget: usize) -> Vec<Bytes> {
        let n = self.members.len();
        let overhead = self.config.message_overhead();
        // The kind and bytes alone: cloning the update would touch its name's shared count.
        let batch = self.queue.fill_with(
            n,
            budget,
            |len| rumour_wire::varint::packed_len(len, overhead),
            |update| (update.kind, update.bytes.clone()),
        );
        batch
            .into_iter()
            .map(|(kind, bytes)| {
                self.stats.sent.count(kind, bytes.len());
                bytes
            })
            .collect()
    }

    /// Queues `message` (about one member) for dissemination, replacing the pending update
    /// about the same member.
    pub(super) fn enqueue(&mut self, message: &Message) {
        let name = match message {
            Message::Alive(a) => a.name.clone(),
            Message::Suspect(s) => s.name.clone(),
            Message::Dead(d) => d.name.clone(),
            _ => return,
        };
        self.queue.enqueue(MemberUpdate {
            name: NameKey(name),
            kind: message.kind(),
            bytes: message.encode(),
        });
        let max_bytes = self.config.broadcast_queue_bytes().get();
        while self.queue.payload_bytes() > max_bytes && self.queue.len() > 1 {
            // The most-sent go first, as when the count bound is reached (counted as drops).
            self.queue.prune(self.queue.len() - 1);
        }
    }

    /// Queues the local node's alive message.
    pub(super) fn broadcast_local_alive(&mut self) {
        let me = self.local_name().clone();
        if let Some(alive) = self.members.alive_of(&me) {
            self.enqueue(&Message::Alive(alive));
        }
    }

    /// Sends `messages` in one datagram to `to`, topped up with queued updates when
    /// `piggyback` is set. Callers set it only when `to` is the address of a confirmed member:
    /// an address a message merely names (a forged member's, a spoofed source) gets no more
    /// than the answer itself, never a full datagram of gossip.
    pub(super) fn send_datagram(&mut self, to: SocketAddr, messages: &[Message], piggyback: bool) {
        let mut encoded = Vec::with_capacity(messages.len() + 4);
        let mut used = 0;
        for message in messages {
            let bytes = message.encode();
            self.stats.sent.count(message.kind(), bytes.len());
            used += self.cost(bytes.len());
            encoded.push(bytes);
        }
        if piggyback {
            let room = self.config.datagram_budget().saturating_sub(used);
            encoded.extend(self.fill_broadcasts(room));
        }
        self.outbox.push(Transmit {
            to,
            delivery: Delivery::Datagram,
            messages: encoded,
            pullpush: None,
        });
    }

    /// Sends one message over a stream.
    pub(super) fn send_stream(
        &mut self,
        to: SocketAddr,
        message: &Message,
        pullpush: Option<crate::PullPush>,
    ) {
        let bytes = message.encode();
        self.stats.sent.count(message.kind(), bytes.len());
        self.outbox.push(Transmit {
            to,
            delivery: Delivery::Stream,
            messages: vec![bytes],
            pullpush,
        });
    }
}

/// The tick after `at` for a timer of `period`, skipping ticks missed while stalled.
pub(super) fn next_tick(at: Instant, now: Instant, period: std::time::Duration) -> Instant {
    let next = at + period;
    if next > now { next } else { now + period }
}
