//! Wire messages: serde types encoded with postcard, one message per call.
//!
//! The transport frames messages (and packs several into one datagram); this module only
//! encodes and decodes one message. Decoding never panics and bounds every length: a name is
//! at most [`MAX_NAME_LEN`] bytes, metadata at most [`MAX_META_LEN`], a full state at most
//! [`MAX_STATE_MEMBERS`] members. `docs/protocol.md` gives the byte layout.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use bytes::Bytes;
use rumour_wire::CountedKind;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::member::{Incarnation, MAX_NAME_LEN, NodeName, State};

/// The most metadata bytes any message may carry (the configured limit is usually lower).
pub const MAX_META_LEN: usize = 16 * 1024;

/// The most members one full-state exchange may carry (the protocol limit, checked from the
/// declared count before any element is decoded; `Config::max_state_members` is usually lower).
pub const MAX_STATE_MEMBERS: usize = 1 << 16;

/// Elements reserved up front when decoding a member list: the vector then grows with what
/// the input really holds, never with what its count declares.
const PREALLOCATED_MEMBERS: usize = 64;

/// One swim message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A probe: "are you there?" Answered with an [`Ack`].
    Ping(Ping),
    /// "Probe `target` for me": sent to helpers after a direct probe went unanswered.
    IndirectPing(IndirectPing),
    /// Answer to a ping (or relayed by a helper).
    Ack(Ack),
    /// A helper's "I asked, the target did not answer in time".
    Nack(Nack),
    /// A member is alive at an incarnation, with its address and metadata.
    Alive(Alive),
    /// A member is suspected of having failed.
    Suspect(Suspect),
    /// A member is declared dead (`from == name`: it left).
    Dead(Dead),
    /// A full-state exchange (join, anti-entropy), on streams only.
    State(StateExchange),
    /// The opening of a periodic anti-entropy exchange, on streams only: a digest of the
    /// sender's member table. A receiver whose table hashes the same sends nothing; one whose
    /// table differs starts a full [`StateExchange`] with the sender.
    Digest(StateDigest),
}

/// The type of a [`Message`], for errors and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    /// [`Message::Ping`].
    Ping,
    /// [`Message::IndirectPing`].
    IndirectPing,
    /// [`Message::Ack`].
    Ack,
    /// [`Message::Nack`].
    Nack,
    /// [`Message::Alive`].
    Alive,
    /// [`Message::Suspect`].
    Suspect,
    /// [`Message::Dead`].
    Dead,
    /// [`Message::State`].
    State,
    /// [`Message::Digest`].
    Digest,
}

impl CountedKind for MessageKind {
    const ALL: &'static [MessageKind] = &[
        MessageKind::Ping,
        MessageKind::IndirectPing,
        MessageKind::Ack,
        MessageKind::Nack,
        MessageKind::Alive,
        MessageKind::Suspect,
        MessageKind::Dead,
        MessageKind::State,
        MessageKind::Digest,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn as_str(self) -> &'static str {
        match self {
            MessageKind::Ping => "ping",
            MessageKind::IndirectPing => "indirect_ping",
            MessageKind::Ack => "ack",
            MessageKind::Nack => "nack",
            MessageKind::Alive => "alive",
            MessageKind::Suspect => "suspect",
            MessageKind::Dead => "dead",
            MessageKind::State => "state",
            MessageKind::Digest => "digest",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A direct probe. It carries the sender's own [`Alive`], so the target learns of a member it
/// missed, or tells a restarted member that it is held dead at a higher incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Sequence number echoed by the ack.
    pub seq: u32,
    /// Name of the member the sender means to probe (a different member at that address
    /// ignores the ping).
    pub target: NodeName,
    /// The sender, as it announces itself; acks go to `source.addr`.
    pub source: Alive,
}

/// A request to probe `target` on the sender's behalf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndirectPing {
    /// The requester's sequence number, echoed in the relayed ack or nack.
    pub seq: u32,
    /// Name of the member to probe.
    pub target: NodeName,
    /// Its address.
    pub target_addr: SocketAddr,
    /// Whether the requester wants a nack when the target stays silent.
    pub nack: bool,
    /// The requester; the ack or nack goes to `source.addr`.
    pub source: Alive,
}

/// A probe answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The ping's sequence number.
    pub seq: u32,
}

/// A helper's report that the target of an indirect probe did not answer within the probe
/// timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// The indirect ping's sequence number.
    pub seq: u32,
}

/// "`name` is alive at `incarnation`", with its address and metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alive {
    /// The member.
    pub name: NodeName,
    /// Its advertised address.
    pub addr: SocketAddr,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// Its metadata.
    pub meta: Bytes,
}

/// "`from` suspects `name` at `incarnation`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspect {
    /// The suspected member.
    pub name: NodeName,
    /// The incarnation it is suspected at.
    pub incarnation: Incarnation,
    /// The accuser (each distinct accuser is one confirmation).
    pub from: NodeName,
}

/// "`from` declares `name` dead at `incarnation`"; `from == name` means `name` left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dead {
    /// The member.
    pub name: NodeName,
    /// The incarnation it is declared dead at.
    pub incarnation: Incarnation,
    /// Who declares it.
    pub from: NodeName,
}

/// Whether a full-state exchange asks or answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exchange {
    /// Sent first; the receiver answers with its own state.
    Request,
    /// The answer; nothing follows.
    Reply,
}

/// A member table, sent over a stream for a join or a periodic pull-push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateExchange {
    /// Request or reply.
    pub exchange: Exchange,
    /// Whether the exchange is a join (the reply echoes it).
    pub join: bool,
    /// The sender's name.
    pub source: NodeName,
    /// Where to send the reply (streams arrive from ephemeral ports).
    pub source_addr: SocketAddr,
    /// Every member the sender holds, itself and dead members not yet reaped included.
    #[serde(deserialize_with = "bounded_members")]
    pub members: Vec<MemberState>,
}

/// One entry of a [`StateExchange`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState {
    /// The member.
    pub name: NodeName,
    /// Its address.
    pub addr: SocketAddr,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// Its metadata.
    pub meta: Bytes,
    /// The sender's view of its state.
    pub state: State,
}

/// Decodes a member list: a declared count over [`MAX_STATE_MEMBERS`] is refused before any
/// element is read, and memory is reserved only as elements actually decode (each takes at
/// least 11 input bytes), so a decode never allocates more than a small multiple of its input.
/// A digest of the sender's member table ([`Message::Digest`]): what a full-state exchange
/// would carry, hashed (`docs/protocol-swim.md` gives the hash's input).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDigest {
    /// The sender.
    pub source: NodeName,
    /// The sender's address (a table that differs is exchanged with it).
    pub source_addr: SocketAddr,
    /// How many members the sender's full state would carry.
    pub members: u32,
    /// The stable hash of those members, in name order.
    pub hash: u64,
}

fn bounded_members<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<MemberState>, D::Error> {
    struct Members;
    impl<'de> serde::de::Visitor<'de> for Members {
        type Value = Vec<MemberState>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "at most {MAX_STATE_MEMBERS} members")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let declared = seq.size_hint().unwrap_or(0);
            if declared > MAX_STATE_MEMBERS {
                return Err(serde::de::Error::invalid_length(declared, &self));
            }
            let mut members = Vec::with_capacity(declared.min(PREALLOCATED_MEMBERS));
            while let Some(member) = seq.next_element()? {
                if members.len() == MAX_STATE_MEMBERS {
                    return Err(serde::de::Error::invalid_length(members.len() + 1, &self));
                }
                members.push(member);
            }
            Ok(members)
        }
    }
    deserializer.deserialize_seq(Members)
}

impl Message {
    /// The message's type.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Ping(_) => MessageKind::Ping,
            Message::IndirectPing(_) => MessageKind::IndirectPing,
            Message::Ack(_) => MessageKind::Ack,
            Message::Nack(_) => MessageKind::Nack,
            Message::Alive(_) => MessageKind::Alive,
            Message::Suspect(_) => MessageKind::Suspect,
            Message::Dead(_) => MessageKind::Dead,
            Message::State(_) => MessageKind::State,
            Message::Digest(_) => MessageKind::Digest,
        }
    }

    /// Postcard encoding of the message.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        // Sized first: one allocation of the exact length, where growing a `Vec` as postcard
        // writes takes four or five for a 50-byte ping, and a queued broadcast keeps no slack.
        let len = postcard::experimental::serialized_size(self).expect("swim messages serialize");
        let out = postcard::to_extend(self, Vec::with_capacity(len));
        Bytes::from(out.expect("swim messages always serialize"))
    }

    /// Decodes exactly one message from `bytes`, checking every protocol limit.
    pub fn decode(bytes: &[u8]) -> Result<Message, Error> {
        let (message, rest) =
            postcard::take_from_bytes::<Message>(bytes).map_err(|source| Error::Decode {
                len: bytes.len(),
                source,
            })?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes {
                kind: message.kind(),
                trailing: rest.len(),
            });
        }
        message.check_limits()?;
        Ok(message)
    }

    /// Length of the largest metadata the message carries (0 if none).
    #[must_use]
    pub fn largest_meta(&self) -> usize {
        match self {
            Message::Ping(Ping { source, .. })
            | Message::IndirectPing(IndirectPing { source, .. }) => source.meta.len(),
            Message::Alive(alive) => alive.meta.len(),
            Message::State(state) => state
                .members
                .iter()
                .map(|m| m.meta.len())
                .max()
                .unwrap_or(0),
            Message::Ack(_)
            | Message::Nack(_)
            | Message::Suspect(_)
            | Message::Dead(_)
            | Message::Digest(_) => 0,
        }
    }

    pub(crate) fn check_limits(&self) -> Result<(), Error> {
        let invalid = |reason| {
            Err(Error::Invalid {
                kind: self.kind(),
                reason,
            })
        };
        match self {
            Message::State(state) if state.members.len() > MAX_STATE_MEMBERS => {
                invalid("too many members")
            }
            _ if self.largest_meta() > MAX_META_LEN => {
                invalid("metadata is over the protocol limit")
            }
            _ => Ok(()),
        }
    }
}

/// Encoded length of the largest ping a node with `meta_max_size` bytes of metadata can send
/// (longest names, IPv6 address, largest sequence and incarnation numbers).
#[must_use]
pub fn largest_ping_len(meta_max_size: usize) -> usize {
    let name = NodeName::new("n".repeat(MAX_NAME_LEN)).expect("longest valid name");
    let addr = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, u16::MAX, 0, 0));
    let ping = Message::Ping(Ping {
        seq: u32::MAX,
        target: name.clone(),
        source: Alive {
            name,
            addr,
            incarnation: Incarnation(u32::MAX),
            meta: Bytes::from(vec![0; meta_max_size]),
        },
    });
    ping.encode().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    #[test]
    fn every_message_round_trips() {
        let addr: SocketAddr = "10.0.0.1:7946".parse().unwrap();
        let alive = Alive {
            name: name("a"),
            addr,
            incarnation: Incarnation(3),
            meta: Bytes::from_static(b"zone=1"),
        };
        let messages = [
            Message::Ping(Ping {
                seq: 9,
                target: name("b"),
                source: alive.clone(),
            }),
            Message::IndirectPing(IndirectPing {
                seq: 1,
                target: name("c"),
                target_addr: addr,
                nack: true,
                source: alive.clone(),
            }),
            Message::Ack(Ack { seq: 7 }),
            Message::Nack(Nack { seq: 8 }),
            Message::Alive(alive),
            Message::Suspect(Suspect {
                name: name("a"),
                incarnation: Incarnation(2),
                from: name("b"),
            }),
            Message::Dead(Dead {
                name: name("a"),
                incarnation: Incarnation(2),
                from: name("a"),
            }),
            Message::State(StateExchange {
                exchange: Exchange::Reply,
                join: true,
                source: name("a"),
                source_addr: addr,
                members: vec![MemberState {
                    name: name("a"),
                    addr,
                    incarnation: Incarnation(1),
                    meta: Bytes::new(),
                    state: State::Left,
                }],
            }),
        ];
        for message in messages {
            let bytes = message.encode();
            assert_eq!(Message::decode(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = Message::Ack(Ack { seq: 1 }).encode().to_vec();
        bytes.push(0);
        assert!(matches!(
            Message::decode(&bytes),
            Err(Error::TrailingBytes { trailing: 1, .. })
        ));
    }

    #[test]
    fn empty_names_are_rejected_on_decode() {
        let bytes = Message::Suspect(Suspect {
            name: name("a"),
            incarnation: Incarnation(1),
            from: name("b"),
        })
        .encode();
        // Layout: variant, name length, name, incarnation, from length, from.
        let mut broken = bytes.to_vec();
        broken[1] = 0;
        broken.remove(2);
        assert!(Message::decode(&broken).is_err());
    }

    #[test]
    fn a_declared_member_count_over_the_limit_is_refused_before_decoding_members() {
        let state = |count: usize| {
            let members = vec![
                MemberState {
                    name: name("m"),
                    addr: "10.0.0.1:1".parse().unwrap(),
                    incarnation: Incarnation(1),
                    meta: Bytes::new(),
                    state: State::Alive,
                };
                count
            ];
            Message::State(StateExchange {
                exchange: Exchange::Request,
                join: false,
                source: name("a"),
                source_addr: "10.0.0.1:1".parse().unwrap(),
                members,
            })
            .encode()
        };
        assert!(Message::decode(&state(MAX_STATE_MEMBERS)).is_ok());
        assert!(matches!(
            Message::decode(&state(MAX_STATE_MEMBERS + 1)),
            Err(Error::Decode { .. })
        ));
        // A small input declaring a huge count fails at once, whatever follows.
        let mut forged = state(1).to_vec();
        // Layout: variant, exchange, join, source ("a"), source_addr (v4, 4 bytes, port 1),
        // then the member count at offset 10.
        assert_eq!(forged[10], 1);
        forged.splice(10..11, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(Message::decode(&forged).is_err());
    }

    #[test]
    fn largest_ping_fits_the_default_budget() {
        let config = crate::Config::lan();
        assert!(
            config.packed_len(largest_ping_len(config.meta_max_size())) <= config.datagram_budget()
        );
    }
}
