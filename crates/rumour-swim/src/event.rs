//! What the machine reports: membership changes and the local health score.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::member::{Incarnation, Member, NodeName};

/// A change the embedder may want to act on. Events queue inside the machine (bounded; the
/// oldest is dropped and counted in [`Stats::events_dropped`](crate::Stats)) and are read with
/// [`Swim::poll_event`](crate::Swim::poll_event); the machine never waits for a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member was learned of, or came back after being dead or left.
    MemberJoined(Member),
    /// A live member changed its metadata or address, or cleared a suspicion.
    MemberUpdated(Member),
    /// A member is suspected of having failed.
    MemberSuspected(Member),
    /// A member was declared dead.
    MemberFailed(Member),
    /// A member left gracefully.
    MemberLeft(Member),
    /// A dead or left member was forgotten after `gossip_to_the_dead_time`.
    MemberReaped(Member),
    /// The local node refuted an accusation against itself by raising its incarnation.
    RefutedSelf {
        /// The new incarnation.
        incarnation: Incarnation,
    },
    /// The local health score changed (0 is healthy).
    HealthScoreChanged {
        /// The new score.
        score: u32,
    },
    /// Another address claimed a known member's name and was refused.
    AddressConflict {
        /// The name.
        name: NodeName,
        /// The address on record.
        known: SocketAddr,
        /// The address that claimed the name.
        claimed: SocketAddr,
    },
}

/// A bounded FIFO of events that drops the oldest when full.
#[derive(Debug)]
pub(crate) struct EventQueue {
    capacity: usize,
    events: VecDeque<Event>,
    dropped: u64,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize) -> EventQueue {
        EventQueue {
            capacity: capacity.max(1),
            events: VecDeque::new(),
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, event: Event) {
        if self.events.len() >= self.capacity {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let mut q = EventQueue::new(2);
        for score in 0..3 {
            q.push(Event::HealthScoreChanged { score });
        }
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.pop(), Some(Event::HealthScoreChanged { score: 1 }));
        assert_eq!(q.pop(), Some(Event::HealthScoreChanged { score: 2 }));
        assert_eq!(q.pop(), None);
    }
}
