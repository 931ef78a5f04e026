//! How a node shares one datagram or one stream between its layers.
//!
//! Every message inside a transport frame starts with a one-byte [`Channel`] tag saying which
//! layer it is for. A datagram is a (compound) frame of such messages. A stream carries one
//! frame whose body is a sequence of `channel (1 byte) | length (LEB128) | bytes` parts, so a
//! pull-push opening can carry SWIM's member table and the KV store's digests together.

use rumour_wire::varint;

use crate::error::Error;

/// Bytes the channel tag adds in front of every message.
pub const TAG_LEN: usize = 1;

/// Which layer a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// SWIM membership (`rumour-swim`).
    Swim = 0,
    /// The replicated KV store (`rumour-gossip`).
    Gossip = 1,
    /// The application's own messages (see `docs/protocol.md`, "User messages").
    User = 2,
}

impl Channel {
    /// The tag as the byte slice written in front of the channel's messages.
    pub fn tag(self) -> &'static [u8] {
        match self {
            Channel::Swim => &[Channel::Swim as u8],
            Channel::Gossip => &[Channel::Gossip as u8],
            Channel::User => &[Channel::User as u8],
        }
    }

    fn from_tag(tag: u8) -> Option<Channel> {
        match tag {
            0 => Some(Channel::Swim),
            1 => Some(Channel::Gossip),
            2 => Some(Channel::User),
            _ => None,
        }
    }
}

/// A datagram message: the channel tag, then the layer's bytes.
pub fn tag(channel: Channel, message: &[u8]) -> Vec<u8> {
    [channel.tag(), message].concat()
}

/// Splits a datagram message into its channel and the layer's bytes.
pub fn untag(message: &[u8]) -> Result<(Channel, &[u8]), Error> {
    let (&first, rest) = message.split_first().ok_or(Error::Envelope {
        offset: 0,
        reason: "empty message",
    })?;
    let channel = Channel::from_tag(first).ok_or(Error::Envelope {
        offset: 0,
        reason: "unknown channel",
    })?;
    Ok((channel, rest))
}

/// Encodes the parts of one stream message.
pub fn encode_stream(parts: &[(Channel, &[u8])]) -> Vec<u8> {
    let len: usize = parts.iter().map(|(_, p)| p.len() + 11).sum();
    let mut out = Vec::with_capacity(len);
    for (channel, part) in parts {
        out.push(*channel as u8);
        varint::put(&mut out, part.len() as u64);
        out.extend_from_slice(part);
    }
    out
}

/// Decodes the parts of one stream message; every length is checked against what is left.
pub fn decode_stream(mut bytes: &[u8]) -> Result<Vec<(Channel, &[u8])>, Error> {
    let total = bytes.len();
    let mut parts = Vec::new();
    while !bytes.is_empty() {
        let offset = total - bytes.len();
        let (channel, rest) = untag(bytes).map_err(|_| Error::Envelope {
            offset,
            reason: "unknown channel",
        })?;
        let (len, used) = varint::get(rest).map_err(|_| Error::Envelope {
            offset: offset + 1,
            reason: "bad length",
        })?;
        let rest = &rest[used..];
        if len > rest.len() as u64 {
            return Err(Error::Envelope {
                offset: offset + 1,
                reason: "length past the end",
            });
        }
        let (part, tail) = rest.split_at(len as usize);
        parts.push((channel, part));
        bytes = tail;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stream_parts_round_trip() {
        let big = vec![7u8; 300];
        let parts = [
            (Channel::Swim, &b"abc"[..]),
            (Channel::Gossip, &big[..]),
            (Channel::Swim, &b""[..]),
        ];
        let bytes = encode_stream(&parts);
        assert_eq!(decode_stream(&bytes).unwrap(), parts.to_vec());
    }

    #[test]
    fn unknown_channel_and_overlong_length_are_errors() {
        assert!(untag(&[9, 1, 2]).is_err());
        assert_eq!(untag(&[2, 1]).unwrap(), (Channel::User, &[1u8][..]));
        assert!(untag(&[]).is_err());
        assert!(decode_stream(&[0, 5, 1, 2]).is_err());
        assert!(
            decode_stream(&[
                0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
        // An over-long length (1 written in two bytes) is refused, as the frame decoder does.
        assert!(decode_stream(&[0, 0x81, 0x00, 7]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_stream(&bytes);
            let _ = untag(&bytes);
        }
    }
}
