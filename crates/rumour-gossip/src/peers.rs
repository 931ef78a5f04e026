//! The peer set: every member the embedder reported alive, and those reported down not long
//! ago. One entry per cluster member, so it is stored compactly: a 16-byte address
//! ([`PackedAddr`]) and the down time as 8 bytes of nanoseconds since the machine's start,
//! about 35 bytes a peer in the map instead of 70 (see `docs/benchmarks.md`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rumour_wire::PackedAddr;

use crate::gossip::PeerState;

/// Stands for [`PeerState::Alive`].
const ALIVE: u64 = u64::MAX;

/// Peers by address, in address order.
#[derive(Debug)]
pub(crate) struct Peers {
    /// Times are stored as nanoseconds since this instant (the machine's start; no time the
    /// embedder gives is earlier).
    start: Instant,
    /// Address to [`ALIVE`] or the tick it went down.
    peers: BTreeMap<PackedAddr, u64>,
}

impl Peers {
    pub(crate) fn new(start: Instant) -> Peers {
        Peers {
            start,
            peers: BTreeMap::new(),
        }
    }

    fn encode(&self, state: PeerState) -> u64 {
        match state {
            PeerState::Alive => ALIVE,
            PeerState::Down { since } => {
                let nanos = since.saturating_duration_since(self.start).as_nanos();
                u64::try_from(nanos).map_or(ALIVE - 1, |n| n.min(ALIVE - 1))
            }
        }
    }

    fn decode(start: Instant, tick: u64) -> PeerState {
        if tick == ALIVE {
            PeerState::Alive
        } else {
            PeerState::Down {
                since: start + Duration::from_nanos(tick),
            }
        }
    }

    pub(crate) fn insert(&mut self, addr: SocketAddr, state: PeerState) {
        let tick = self.encode(state);
        self.peers.insert(PackedAddr::new(addr), tick);
    }

    pub(crate) fn get(&self, addr: SocketAddr) -> Option<PeerState> {
        let tick = *self.peers.get(&PackedAddr::new(addr))?;
        Some(Self::decode(self.start, tick))
    }

    /// Marks `addr` down at `since` if it is known and alive; whether it did.
    pub(crate) fn mark_down(&mut self, addr: SocketAddr, since: Instant) -> bool {
        let tick = self.encode(PeerState::Down { since });
        match self.peers.get_mut(&PackedAddr::new(addr)) {
            Some(state) if *state == ALIVE => {
                *state = tick;
                true
            }
            _ => false,
        }
    }

    /// Every peer in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketAddr, PeerState)> + '_ {
        let start = self.start;
        self.peers
            .iter()
            .map(move |(addr, &tick)| (addr.get(), Self::decode(start, tick)))
    }

    /// Keeps the peers for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(PeerState) -> bool) {
        let start = self.start;
        self.peers
            .retain(|_, tick| keep(Self::decode(start, *tick)));
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
    use super::*;

    #[test]
    fn peers_keep_their_state_exactly_and_iterate_in_address_order() {
        let start = Instant::now();
        let mut peers = Peers::new(start);
        let a: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:9".parse().unwrap();
        let c: SocketAddr = "[::1]:1".parse().unwrap();
        for addr in [a, b, c] {
            peers.insert(addr, PeerState::Alive);
        }
        let since = start + Duration::from_nanos(1_234_567_891);
        peers.mark_down(a, since);
        peers.mark_down(a, since + Duration::from_secs(1));
        assert_eq!(peers.get(a), Some(PeerState::Down { since }), "down once");
        let listed: Vec<SocketAddr> = peers.iter().map(|(addr, _)| addr).collect();
        assert_eq!(listed, [b, a, c]);
        peers.retain(|state| state == PeerState::Alive);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers.get(a), None);
    }
}
