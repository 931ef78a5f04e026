//! A socket address in 16 bytes instead of `SocketAddr`'s 32, for tables that hold one per
//! member (the SWIM member table, the KV store's peer set).

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

/// A socket address stored compactly: IPv4 inline (6 bytes), IPv6 (rare in a cluster) boxed.
///
/// Ordered exactly as the `SocketAddr` it stands for (every IPv4 address before every IPv6
/// one, then address, then port), so a map keyed by it iterates in the same order as one
/// keyed by `SocketAddr`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PackedAddr {
    /// An IPv4 address and port.
    V4(SocketAddrV4),
    /// An IPv6 address, port, flow and scope, boxed.
    V6(Box<SocketAddrV6>),
}

impl PackedAddr {
    /// Packs `addr`.
    #[must_use]
    pub fn new(addr: SocketAddr) -> PackedAddr {
        match addr {
            SocketAddr::V4(v4) => PackedAddr::V4(v4),
            SocketAddr::V6(v6) => PackedAddr::V6(Box::new(v6)),
        }
    }

    /// The address.
    #[must_use]
    pub fn get(&self) -> SocketAddr {
        match self {
            PackedAddr::V4(v4) => SocketAddr::V4(*v4),
            PackedAddr::V6(v6) => SocketAddr::V6(**v6),
        }
    }
}

impl From<SocketAddr> for PackedAddr {
    fn from(addr: SocketAddr) -> PackedAddr {
        PackedAddr::new(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_addresses_are_small_round_trip_and_sort_as_socket_addresses() {
        assert_eq!(std::mem::size_of::<PackedAddr>(), 16);
        let mut addrs: Vec<SocketAddr> = [
            "[::1]:1",
            "10.0.0.2:1",
            "10.0.0.1:2",
            "[::1]:0",
            "10.0.0.1:1",
            "[2001:db8::1]:7946",
            "9.255.255.255:65535",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let mut packed: Vec<PackedAddr> = addrs.iter().copied().map(PackedAddr::new).collect();
        addrs.sort();
        packed.sort();
        let back: Vec<SocketAddr> = packed.iter().map(PackedAddr::get).collect();
        assert_eq!(back, addrs);
    }
}
