//! The reconnect list: failed members that were reaped, retried at a low, jittered rate.
//!
//! When a cluster splits, each half declares the other dead and, after
//! `gossip_to_the_dead_time`, forgets it. memberlist then never talks to the other half
//! again. rumour keeps the reaped failed members (not those that left) on a bounded list for
//! `reconnect_timeout` and every `reconnect_interval` (jittered) starts a full-state exchange
//! with one of them: once the network heals, that exchange merges the two halves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::member::NodeName;

#[derive(Clone, Debug)]
struct Failed {
    addr: SocketAddr,
    since: Instant,
}

/// Bounded list of recently failed, reaped members.
#[derive(Clone, Debug)]
pub(crate) struct ReconnectList {
    capacity: usize,
    timeout: Duration,
    failed: BTreeMap<NodeName, Failed>,
}

impl ReconnectList {
    pub(crate) fn new(capacity: usize, timeout: Duration) -> ReconnectList {
        ReconnectList {
            capacity,
            timeout,
            failed: BTreeMap::new(),
        }
    }

    /// Adds a reaped failed member; returns how many entries were evicted to make room.
    pub(crate) fn insert(&mut self, now: Instant, name: NodeName, addr: SocketAddr) -> u64 {
        if self.capacity == 0 {
            return 1;
        }
        self.failed.insert(name, Failed { addr, since: now });
        let mut evicted = 0;
        while self.failed.len() > self.capacity {
            let oldest = self
                .failed
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(n, _)| n.clone())
                .expect("list is not empty");
            self.failed.remove(&oldest);
            evicted += 1;
        }
        evicted
    }

    /// Forgets `name` (it is back).
    pub(crate) fn remove(&mut self, name: &NodeName) {
        self.failed.remove(name);
    }

    /// Drops expired entries; returns how many are left.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let timeout = self.timeout;
        self.failed
            .retain(|_, f| now.saturating_duration_since(f.since) < timeout);
        self.failed.len()
    }

    /// Drops expired entries and picks one random address to try.
    pub(crate) fn pick(&mut self, now: Instant, rng: &mut impl Rng) -> Option<SocketAddr> {
        if self.expire(now) == 0 {
            return None;
        }
        let at = rng.gen_range(0..self.failed.len());
        self.failed.values().nth(at).map(|f| f.addr)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_list_is_bounded_and_entries_expire() {
        let now = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut list = ReconnectList::new(2, Duration::from_secs(60));
        let addr = |p| SocketAddr::from(([10, 0, 0, 1], p));
        let name = |s: &str| NodeName::new(s).unwrap();
        assert_eq!(list.insert(now, name("a"), addr(1)), 0);
        assert_eq!(
            list.insert(now + Duration::from_secs(1), name("b"), addr(2)),
            0
        );
        assert_eq!(
            list.insert(now + Duration::from_secs(2), name("c"), addr(3)),
            1
        );
        assert_eq!(list.expire(now), 2);
        for _ in 0..10 {
            assert_ne!(
                list.pick(now, &mut rng),
                Some(addr(1)),
                "the oldest was evicted"
            );
        }
        assert_eq!(list.pick(now + Duration::from_secs(62), &mut rng), None);
    }
}
