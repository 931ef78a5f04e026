//! Failure-detector bookkeeping: the probe order, the probe in flight, and the indirect probes
//! run on other members' behalf.
//!
//! Members are probed round-robin over a shuffled list, reshuffled at every wrap, with new
//! members inserted at a random position: each live member is probed once per cycle (SWIM's
//! time-bounded completeness), in a fresh order each cycle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::member::NodeName;

/// The round-robin probe order, as slots of the member table (4 bytes a member; the table
/// keeps it in step when a member moves to another slot).
#[derive(Clone, Debug, Default)]
pub(crate) struct ProbeOrder {
    slots: Vec<u32>,
    next: usize,
}

impl ProbeOrder {
    /// Inserts `slot` (not yet in the order: the table keeps a flag) at a random position.
    pub(crate) fn insert(&mut self, slot: u32, rng: &mut impl Rng) {
        let at = rng.gen_range(0..=self.slots.len());
        if at < self.next {
            self.next += 1;
        }
        self.slots.insert(at, slot);
    }

    /// Removes `slot`; false if it was not in the order.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        let Some(at) = self.slots.iter().position(|&s| s == slot) else {
            return false;
        };
        self.slots.remove(at);
        if at < self.next {
            self.next -= 1;
        }
        true
    }

    /// The member at slot `from` moved to slot `to`.
    pub(crate) fn rename(&mut self, from: u32, to: u32) {
        if let Some(s) = self.slots.iter_mut().find(|s| **s == from) {
            *s = to;
        }
    }

    /// The next slot in this cycle, or `None` at the end of the cycle.
    pub(crate) fn advance(&mut self) -> Option<u32> {
        let slot = self.slots.get(self.next).copied();
        if slot.is_some() {
            self.next += 1;
        }
        slot
    }

    /// Starts a new cycle in a fresh random order.
    pub(crate) fn reshuffle(&mut self, rng: &mut impl Rng) {
        self.slots.shuffle(rng);
        self.next = 0;
    }

    /// Slots in the order.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

/// The probe in flight.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    pub(crate) seq: u32,
    pub(crate) target: NodeName,
    pub(crate) addr: SocketAddr,
    /// When the direct ping went out (the start of a round-trip time).
    pub(crate) sent_at: Instant,
    /// When the indirect probes go out; `None` once sent.
    pub(crate) indirect_at: Option<Instant>,
    /// When the probe fails if nothing answered.
    pub(crate) deadline: Instant,
    pub(crate) expected_nacks: u32,
    pub(crate) nacks: u32,
    /// Whether the deadline was already pushed back once because the machine was stalled.
    pub(crate) postponed: bool,
}

/// An indirect probe run for another member.
#[derive(Clone, Debug)]
pub(crate) struct Relay {
    /// Where the ack or nack goes: the request's packet source.
    pub(crate) requester: SocketAddr,
    /// The name the requester gave (piggybacked gossip only if confirmed at `requester`).
    pub(crate) requester_name: NodeName,
    /// The requester's sequence number.
    pub(crate) seq: u32,
    /// Whether the requester wants a nack.
    pub(crate) nack: bool,
    /// When to give up (and nack).
    pub(crate) deadline: Instant,
}

/// Indirect probes in progress, keyed by the local sequence number of the relayed ping.
#[derive(Clone, Debug)]
pub(crate) struct Relays {
    capacity: usize,
    relays: BTreeMap<u32, Relay>,
}

impl Relays {
    pub(crate) fn new(capacity: usize) -> Relays {
        Relays {
            capacity,
            relays: BTreeMap::new(),
        }
    }

    /// Records a relay; false when full.
    pub(crate) fn insert(&mut self, seq: u32, relay: Relay) -> bool {
        if self.relays.len() >= self.capacity {
            return false;
        }
        self.relays.insert(seq, relay);
        true
    }

    pub(crate) fn take(&mut self, seq: u32) -> Option<Relay> {
        self.relays.remove(&seq)
    }

    /// Removes and returns the relays whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Relay> {
        let due: Vec<u32> = self
            .relays
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(&seq, _)| seq)
            .collect();
        due.iter()
            .filter_map(|seq| self.relays.remove(seq))
            .collect()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.relays.values().map(|r| r.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn name(i: usize) -> NodeName {
        NodeName::new(format!("n{i}")).unwrap()
    }

    fn slot(i: u32) -> u32 {
        i
    }

    #[test]
    fn every_member_is_probed_once_per_cycle_in_a_fresh_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut order = ProbeOrder::default();
        for i in 0..10 {
            order.insert(slot(i), &mut rng);
        }
        let mut cycles = Vec::new();
        for _ in 0..3 {
            order.reshuffle(&mut rng);
            let cycle: Vec<_> = std::iter::from_fn(|| order.advance()).collect();
            let mut sorted = cycle.clone();
            sorted.sort();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
            cycles.push(cycle);
        }
        assert!(
            cycles[0] != cycles[1] || cycles[1] != cycles[2],
            "orders are reshuffled"
        );
    }

    #[test]
    fn members_inserted_or_removed_mid_cycle_keep_the_cycle_complete() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut order = ProbeOrder::default();
        for i in 0..5 {
            order.insert(slot(i), &mut rng);
        }
        let first = order.advance().unwrap();
        let second = order.advance().unwrap();
        order.remove(first);
        order.insert(slot(9), &mut rng);
        let rest: Vec<_> = std::iter::from_fn(|| order.advance()).collect();
        assert!(!rest.contains(&first) && !rest.contains(&second));
        for n in 0..5 {
            if n != first && n != second {
                let times = rest.iter().filter(|r| **r == n).count();
                assert_eq!(times, 1, "{n} is probed exactly once in the cycle");
            }
        }
        assert_eq!(order.len(), 5);
        order.reshuffle(&mut rng);
        let next_cycle: Vec<_> = std::iter::from_fn(|| order.advance()).collect();
        assert!(
            next_cycle.contains(&slot(9)),
            "the new member is in the next cycle"
        );
    }

    #[test]
    fn a_full_relay_table_refuses_more() {
        let now = Instant::now();
        let relay = Relay {
            requester: "10.0.0.1:1".parse().unwrap(),
            requester_name: name(1),
            seq: 1,
            nack: true,
            deadline: now,
        };
        let mut relays = Relays::new(1);
        assert!(relays.insert(1, relay.clone()));
        assert!(!relays.insert(2, relay));
        assert_eq!(relays.expire(now).len(), 1);
        assert_eq!(relays.next_deadline(), None);
    }
}
