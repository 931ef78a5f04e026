//! [`Cidr`]: an IP network such as `10.0.0.0/8` or `::1/128`, for the allow-list of sources
//! ([`NetConfig::allowed_cidrs`](crate::NetConfig::allowed_cidrs)).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::TransportError;

/// An IP network: an address and a prefix length. Bits of the address past the prefix are
/// cleared, so `10.1.2.3/8` is `10.0.0.0/8`.
///
/// ```
/// use rumour_transport::Cidr;
/// let net: Cidr = "10.0.0.0/8".parse()?;
/// assert!(net.contains("10.200.0.1".parse()?));
/// assert!(!net.contains("11.0.0.1".parse()?));
/// // An IPv4 address seen through an IPv6 socket (`::ffff:10.0.0.1`) is still matched.
/// assert!(net.contains("::ffff:10.0.0.1".parse()?));
/// let one: Cidr = "::1".parse()?; // no prefix: one address
/// assert_eq!(one.to_string(), "::1/128");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network of `addr` with the first `prefix` bits significant (at most 32 for IPv4,
    /// 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, TransportError> {
        let addr = addr.to_canonical();
        let max = max_prefix(addr);
        if prefix > max {
            return Err(TransportError::Config {
                field: "allowed_cidrs",
                reason: "prefix length is longer than the address",
            });
        }
        let addr = match addr {
            IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from(u32::from(ip) & mask32(prefix))),
            IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from(u128::from(ip) & mask128(prefix))),
        };
        Ok(Cidr { addr, prefix })
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// Whether `ip` is allowed by `allowed`: an empty list allows everyone.
pub(crate) fn allowed(allowed: &[Cidr], ip: IpAddr) -> bool {
    allowed.is_empty() || allowed.iter().any(|net| net.contains(ip))
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = TransportError;

    /// Parses `ADDR/PREFIX`, or a bare address (the network of that one address).
    fn from_str(s: &str) -> Result<Cidr, TransportError> {
        let bad = |reason| TransportError::Config {
            field: "allowed_cidrs",
            reason,
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("is not an IP address"))?;
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse()
                .map_err(|_| bad("prefix length is not a small number"))?,
            Some(_) => return Err(bad("prefix length is not a number")),
            None => max_prefix(addr.to_canonical()),
        };
        Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_normalise_and_match() {
        let net: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.255.255.255")));
        assert!(!net.contains(ip("9.255.255.255")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let one: Cidr = "::1/128".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
    }

    #[test]
    fn bad_networks_are_refused() {
        for s in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x/1",
        ] {
            assert!(s.parse::<Cidr>().is_err(), "{s}");
        }
    }

    #[test]
    fn an_empty_list_allows_everyone() {
        assert!(allowed(&[], ip("192.0.2.1")));
        let list = ["127.0.0.0/8".parse().unwrap()];
        assert!(allowed(&list, ip("::ffff:127.0.0.1")));
        assert!(!allowed(&list, ip("192.0.2.1")));
    }
}
