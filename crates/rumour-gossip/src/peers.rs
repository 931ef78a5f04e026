//! The peer set: every member the embedder reported alive, and those reported down not long
//! ago. One entry per cluster member, so it is stored compactly: an alive IPv4 peer is 8 bytes
//! in a set (its address and port packed into a `u64` that sorts as the address), about 13
//! bytes with the tree's nodes, where a map of `SocketAddr` to state took 70 and one of
//! [`PackedAddr`](rumour_wire::PackedAddr) to a tick 31 (see `docs/benchmarks.md`, "Memory per
//! member"). IPv6 peers and peers down (few at a time) are kept apart.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use crate::gossip::PeerState;

/// An IPv4 address and port as one number ordered as the address.
fn pack(addr: SocketAddrV4) -> u64 {
    u64::from(addr.ip().to_bits()) << 16 | u64::from(addr.port())
}

fn unpack(packed: u64) -> SocketAddr {
    // The shifts keep exactly the 32 and 16 bits `pack` put there.
    let ip = Ipv4Addr::from_bits((packed >> 16) as u32);
    SocketAddr::V4(SocketAddrV4::new(ip, packed as u16))
}

/// Peers by address.
#[derive(Clone, Debug)]
pub(crate) struct Peers {
    /// Down times are stored as nanoseconds since this instant (the machine's start; no time
    /// the embedder gives is earlier).
    start: Instant,
    /// Alive IPv4 peers, packed.
    alive_v4: BTreeSet<u64>,
    /// Alive IPv6 peers.
    alive_v6: BTreeSet<SocketAddrV6>,
    /// Peers down, to the tick they went down.
    down: BTreeMap<SocketAddr, u64>,
}

impl Peers {
    pub(crate) fn new(start: Instant) -> Peers {
        Peers {
            start,
            alive_v4: BTreeSet::new(),
            alive_v6: BTreeSet::new(),
            down: BTreeMap::new(),
        }
    }

    fn tick(&self, since: Instant) -> u64 {
        let nanos = since.saturating_duration_since(self.start).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    fn down_state(start: Instant, tick: u64) -> PeerState {
        PeerState::Down {
            since: start + Duration::from_nanos(tick),
        }
    }

    fn add_alive(&mut self, addr: SocketAddr) {
        match addr {
            SocketAddr::V4(v4) => self.alive_v4.insert(pack(v4)),
            SocketAddr::V6(v6) => self.alive_v6.insert(v6),
        };
    }

    fn remove_alive(&mut self, addr: SocketAddr) -> bool {
        match addr {
            SocketAddr::V4(v4) => self.alive_v4.remove(&pack(v4)),
            SocketAddr::V6(v6) => self.alive_v6.remove(&v6),
        }
    }

    fn is_alive(&self, addr: SocketAddr) -> bool {
        match addr {
            SocketAddr::V4(v4) => self.alive_v4.contains(&pack(v4)),
            SocketAddr::V6(v6) => self.alive_v6.contains(&v6),
        }
    }

    pub(crate) fn insert(&mut self, addr: SocketAddr, state: PeerState) {
        match state {
            PeerState::Alive => {
                self.down.remove(&addr);
                self.add_alive(addr);
            }
            PeerState::Down { since } => {
                self.remove_alive(addr);
                let tick = self.tick(since);
                self.down.insert(addr, tick);
            }
        }
    }

    pub(crate) fn get(&self, addr: SocketAddr) -> Option<PeerState> {
        if self.is_alive(addr) {
            return Some(PeerState::Alive);
        }
        let tick = *self.down.get(&addr)?;
        Some(Self::down_state(self.start, tick))
    }

    /// Marks `addr` down at `since` if it is known and alive; whether it did.
    pub(crate) fn mark_down(&mut self, addr: SocketAddr, since: Instant) -> bool {
        if !self.remove_alive(addr) {
            return false;
        }
        let tick = self.tick(since);
        self.down.insert(addr, tick);
        true
    }

    /// The alive peers in address order.
    pub(crate) fn alive(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let v4 = self.alive_v4.iter().map(|&packed| unpack(packed));
        v4.chain(self.alive_v6.iter().map(|&v6| SocketAddr::V6(v6)))
    }

    /// The peers down, in address order.
    pub(crate) fn down(&self) -> impl Iterator<Item = (SocketAddr, PeerState)> + '_ {
        let start = self.start;
        self.down
            .iter()
            .map(move |(&addr, &tick)| (addr, Self::down_state(start, tick)))
    }

    /// Every peer in address order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketAddr, PeerState)> + use<> {
        let mut all: Vec<(SocketAddr, PeerState)> = self
            .alive()
            .map(|addr| (addr, PeerState::Alive))
            .chain(self.down())
            .collect();
        all.sort_unstable_by_key(|&(addr, _)| addr);
        all.into_iter()
    }

    /// Keeps the peers for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(PeerState) -> bool) {
        if !keep(PeerState::Alive) {
            self.alive_v4.clear();
            self.alive_v6.clear();
        }
        let start = self.start;
        self.down
            .retain(|_, tick| keep(Self::down_state(start, *tick)));
    }

    pub(crate) fn len(&self) -> usize {
        self.alive_v4.len() + self.alive_v6.len() + self.down.len()
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
        let alive: Vec<SocketAddr> = peers.alive().collect();
        assert_eq!(alive, [b, c]);
        peers.insert(a, PeerState::Alive);
        assert_eq!(peers.get(a), Some(PeerState::Alive), "back up");
        peers.mark_down(a, since);
        peers.retain(|state| state == PeerState::Alive);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers.get(a), None);
    }

    #[test]
    fn packed_ipv4_addresses_round_trip_and_sort_as_addresses() {
        let mut addrs: Vec<SocketAddrV4> = ["10.0.0.2:1", "10.0.0.1:65535", "255.255.255.255:0"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let mut packed: Vec<u64> = addrs.iter().map(|&a| pack(a)).collect();
        addrs.sort();
        packed.sort();
        let back: Vec<SocketAddr> = packed.into_iter().map(unpack).collect();
        let want: Vec<SocketAddr> = addrs.into_iter().map(SocketAddr::V4).collect();
        assert_eq!(back, want);
    }
}
