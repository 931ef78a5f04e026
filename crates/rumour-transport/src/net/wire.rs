//! The bytes [`NetTransport`](super::NetTransport) writes on a TCP connection around the
//! caller's messages: a preamble once per connection, then an envelope before each message.
//!
//! ```text
//! preamble: "RUC" | version 1 | family 4 or 6 | advertised IP (4 or 16) | advertised port u16 BE
//! envelope: kind (0 = datagram, 1 = reliable) | length u32 BE | message
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::Delivery;

/// First bytes of every connection.
pub(crate) const PREAMBLE_MAGIC: [u8; 3] = *b"RUC";
/// Version of the connection protocol.
pub(crate) const PREAMBLE_VERSION: u8 = 1;
/// Bytes of the preamble before the address: magic, version, family.
pub(crate) const PREAMBLE_HEAD: usize = 5;
/// Bytes of an envelope.
pub(crate) const ENVELOPE_LEN: usize = 5;

const KIND_DATAGRAM: u8 = 0;
const KIND_RELIABLE: u8 = 1;

/// The preamble announcing `advertise` as the sender's address.
pub(crate) fn preamble(advertise: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREAMBLE_HEAD + 18);
    out.extend_from_slice(&PREAMBLE_MAGIC);
    out.push(PREAMBLE_VERSION);
    match advertise.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&advertise.port().to_be_bytes());
    out
}

/// Checks the first [`PREAMBLE_HEAD`] bytes; returns how many bytes of address follow.
pub(crate) fn preamble_rest_len(head: &[u8; PREAMBLE_HEAD]) -> Option<usize> {
    if head[..3] != PREAMBLE_MAGIC || head[3] != PREAMBLE_VERSION {
        return None;
    }
    match head[4] {
        4 => Some(4 + 2),
        6 => Some(16 + 2),
        _ => None,
    }
}

/// Parses the address part of a preamble (IP then port).
pub(crate) fn preamble_addr(rest: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = rest.split_at_checked(rest.len().checked_sub(2)?)?;
    let ip = match ip.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])))
}

/// The envelope in front of a message of `len` bytes (callers check `len` fits in a u32).
pub(crate) fn envelope(delivery: Delivery, len: usize) -> [u8; ENVELOPE_LEN] {
    let kind = match delivery {
        Delivery::Datagram => KIND_DATAGRAM,
        Delivery::Stream => KIND_RELIABLE,
    };
    let len = (len as u32).to_be_bytes();
    [kind, len[0], len[1], len[2], len[3]]
}

/// Parses an envelope; `None` for an unknown kind.
pub(crate) fn parse_envelope(head: &[u8; ENVELOPE_LEN]) -> Option<(Delivery, usize)> {
    let kind = match head[0] {
        KIND_DATAGRAM => Delivery::Datagram,
        KIND_RELIABLE => Delivery::Stream,
        _ => return None,
    };
    Some((
        kind,
        u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(addr: SocketAddr) -> Option<SocketAddr> {
        let bytes = preamble(addr);
        let head: [u8; PREAMBLE_HEAD] = bytes[..PREAMBLE_HEAD].try_into().unwrap();
        let rest = preamble_rest_len(&head)?;
        assert_eq!(bytes.len(), PREAMBLE_HEAD + rest);
        preamble_addr(&bytes[PREAMBLE_HEAD..])
    }

    #[test]
    fn preambles_carry_ipv4_and_ipv6_addresses() {
        for addr in ["10.1.2.3:7946", "[2001:db8::1]:65535", "0.0.0.0:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(round_trip(addr), Some(addr));
        }
    }

    #[test]
    fn a_preamble_with_wrong_magic_version_or_family_is_refused() {
        for (at, value) in [(0, b'X'), (3, 2), (4, 5)] {
            let mut head: [u8; PREAMBLE_HEAD] = preamble("1.2.3.4:5".parse().unwrap())
                [..PREAMBLE_HEAD]
                .try_into()
                .unwrap();
            head[at] = value;
            assert_eq!(preamble_rest_len(&head), None);
        }
    }

    #[test]
    fn envelopes_round_trip_and_unknown_kinds_are_refused() {
        for (kind, len) in [
            (Delivery::Datagram, 0),
            (Delivery::Stream, u32::MAX as usize),
        ] {
            assert_eq!(parse_envelope(&envelope(kind, len)), Some((kind, len)));
        }
        assert_eq!(parse_envelope(&[2, 0, 0, 0, 1]), None);
    }
}
