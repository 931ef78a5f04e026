//! The wire: every message the gossip machine sends or accepts, postcard-encoded.
//!
//! One [`Message`] is one unit handed to [`Gossip::handle_packet`](crate::Gossip::handle_packet)
//! or [`Gossip::handle_stream`](crate::Gossip::handle_stream); the embedder adds its own framing
//! (inside a datagram, a one-byte channel tag and a LEB128 length, see [`packed_len`]).
//! `docs/protocol.md` describes every byte.

use std::net::SocketAddr;

use bytes::Bytes;
use rumour_ring::{BucketDigest, MAX_DIGEST_BUCKETS, Timestamp, valid_bucket_count};
use rumour_wire::CountedKind;
use serde::{Deserialize, Serialize};

/// The deletion state of a key: a last-writer-wins register ordered by `(updated, deleted)`, so
/// on equal times a deletion wins. Every change carries it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Marker {
    /// Wall time of the last local write (CAS or delete) that this state includes.
    pub updated: Timestamp,
    /// Whether the key is deleted.
    pub deleted: bool,
}

/// One key's change (or whole value): what gossip carries and pull-push exchanges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChange {
    /// The key (never empty).
    pub key: String,
    /// The codec id of `value`.
    pub codec: String,
    /// The value or change, encoded with its codec; `None` when only the marker changed.
    pub value: Option<Bytes>,
    /// The key's deletion marker.
    pub marker: Marker,
}

impl KeyChange {
    /// The change a broadcast from [`Gossip::fill_broadcasts`](crate::Gossip::fill_broadcasts)
    /// or [`Gossip::fill_stream_broadcasts`](crate::Gossip::fill_stream_broadcasts) encodes,
    /// for an embedder that sends it in another wire's envelope (the memberlist wire mode's
    /// dskit `KeyValuePair`); `None` if `message` is not an encoded [`Message::Change`].
    #[must_use]
    pub fn decode_broadcast(message: &[u8]) -> Option<KeyChange> {
        match Message::decode(message) {
            Ok(Message::Change(change)) => Some(change),
            _ => None,
        }
    }
}

/// Names one pull-push exchange: the sender's advertised address and a random id chosen by the
/// side that opened it. Every pull-push message carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Session {
    /// The advertised address of the node sending this message.
    pub from: SocketAddr,
    /// The exchange's id.
    pub id: u64,
}

/// A key and the hash of its canonical encoding (see the `pullpush` module).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHash {
    /// The key.
    pub key: String,
    /// Its hash.
    pub hash: u64,
}

/// A key's bucketed digests, offered by the side that opened a pull-push (see `docs/ring.md`,
/// "Digests").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDigests {
    /// The key.
    pub key: String,
    /// The codec of the opener's value.
    pub codec: String,
    /// The opener's marker for the key.
    pub marker: Marker,
    /// The opener's bucket digests, salted with the exchange's id: a power of two of them, at
    /// most [`MAX_DIGEST_BUCKETS`].
    pub buckets: Vec<BucketDigest>,
}

/// Buckets of one key's entries that the sender wants from the receiver (what differs in
/// them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    /// The key.
    pub key: String,
    /// The number of buckets the entries were split into (that of the opener's digests).
    pub buckets: u32,
    /// Buckets wanted whole (their descriptions differ).
    pub whole: Vec<u32>,
    /// Buckets of which only heartbeats are wanted (only their heartbeats differ).
    pub heartbeats: Vec<u32>,
}

/// Every message of the gossip protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A change to one key, gossiped (in a datagram, or over a stream when too large).
    Change(KeyChange),
    /// The whole store: a join request (`request: true`) or its answer.
    FullState {
        /// The exchange.
        session: Session,
        /// Whether this opens the exchange (the receiver answers with its own whole store).
        request: bool,
        /// Every key the sender holds, deleted ones included.
        entries: Vec<KeyChange>,
    },
    /// Opens a periodic pull-push: a hash of the whole store.
    Summary {
        /// The exchange.
        session: Session,
        /// Hash over every key and its hash, in key order.
        root: u64,
        /// Number of keys held.
        keys: u64,
    },
    /// Closes an exchange: the stores were equal, or nothing is left to send.
    Done {
        /// The exchange.
        session: Session,
    },
    /// The responder's hash of every key it holds (the root hashes differed).
    KeyHashes {
        /// The exchange.
        session: Session,
        /// Every key and its hash, in key order.
        keys: Vec<KeyHash>,
    },
    /// The opener's answer to [`Message::KeyHashes`].
    Digests {
        /// The exchange.
        session: Session,
        /// Whole values: keys the responder lacks, and differing keys whose type has no entry
        /// digests.
        push: Vec<KeyChange>,
        /// Keys whose whole value the opener wants (it lacks them, or their type has no entry
        /// digests).
        want: Vec<String>,
        /// Per-entry digests of the other differing keys.
        keys: Vec<KeyDigests>,
    },
    /// Entries that differ, and the entries the sender wants back (empty in the last message).
    Entries {
        /// The exchange.
        session: Session,
        /// Sub-values holding the differing entries, or whole values.
        values: Vec<KeyChange>,
        /// Entries wanted from the receiver.
        want: Vec<Wanted>,
    },
}

/// The kind of a [`Message`], for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// [`Message::Change`].
    Change,
    /// [`Message::FullState`].
    FullState,
    /// [`Message::Summary`].
    Summary,
    /// [`Message::Done`].
    Done,
    /// [`Message::KeyHashes`].
    KeyHashes,
    /// [`Message::Digests`].
    Digests,
    /// [`Message::Entries`].
    Entries,
}

impl CountedKind for MessageKind {
    const ALL: &'static [MessageKind] = &[
        MessageKind::Change,
        MessageKind::FullState,
        MessageKind::Summary,
        MessageKind::Done,
        MessageKind::KeyHashes,
        MessageKind::Digests,
        MessageKind::Entries,
    ];

    fn as_str(self) -> &'static str {
        match self {
            MessageKind::Change => "change",
            MessageKind::FullState => "full_state",
            MessageKind::Summary => "summary",
            MessageKind::Done => "done",
            MessageKind::KeyHashes => "key_hashes",
            MessageKind::Digests => "digests",
            MessageKind::Entries => "entries",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What of a message is over a configured limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OverLimit {
    pub(crate) what: &'static str,
    pub(crate) len: usize,
    pub(crate) max: usize,
}

/// The limits a received message is checked against (from the [`Config`](crate::Config)).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_keys: usize,
    pub(crate) max_key_len: usize,
    pub(crate) max_value_bytes: usize,
    pub(crate) max_entry_names: usize,
}

impl Limits {
    fn count(what: &'static str, len: usize, max: usize) -> Result<(), OverLimit> {
        if len > max {
            Err(OverLimit { what, len, max })
        } else {
            Ok(())
        }
    }

    fn key(&self, key: &str) -> Result<(), OverLimit> {
        Limits::count("key bytes", key.len(), self.max_key_len)
    }

    fn keys(&self, len: usize) -> Result<(), OverLimit> {
        Limits::count("keys", len, self.max_keys)
    }

    /// A bucket count: a power of two, at most [`MAX_DIGEST_BUCKETS`] and `max_entry_names`.
    fn buckets(&self, count: usize) -> Result<(), OverLimit> {
        Limits::count("digest buckets", count, MAX_DIGEST_BUCKETS)?;
        Limits::count("digest buckets", count, self.max_entry_names)?;
        if valid_bucket_count(count) {
            Ok(())
        } else {
            Err(OverLimit {
                what: "digest buckets (not a power of two)",
                len: count,
                max: MAX_DIGEST_BUCKETS,
            })
        }
    }

    /// Wanted buckets: a valid count, each index below it, no more indices than buckets.
    fn wanted(&self, wanted: &Wanted) -> Result<(), OverLimit> {
        self.key(&wanted.key)?;
        let count = wanted.buckets as usize;
        self.buckets(count)?;
        let listed = wanted.whole.len() + wanted.heartbeats.len();
        Limits::count("wanted buckets", listed, count)?;
        match wanted.whole.iter().chain(&wanted.heartbeats).max() {
            Some(&top) if top as usize >= count => Err(OverLimit {
                what: "wanted bucket index",
                len: top as usize,
                max: count - 1,
            }),
            _ => Ok(()),
        }
    }

    fn change(&self, change: &KeyChange) -> Result<(), OverLimit> {
        self.key(&change.key)?;
        let value = change.value.as_ref().map_or(0, Bytes::len);
        Limits::count("value bytes", value, self.max_value_bytes)
    }

    fn changes(&self, changes: &[KeyChange]) -> Result<(), OverLimit> {
        self.keys(changes.len())?;
        changes.iter().try_for_each(|c| self.change(c))
    }

    /// Checks every count and size of `message`, before anything of it is decoded further or
    /// merged.
    pub(crate) fn check(&self, message: &Message) -> Result<(), OverLimit> {
        match message {
            Message::Change(change) => self.change(change),
            Message::FullState { entries, .. } => self.changes(entries),
            Message::Summary { .. } | Message::Done { .. } => Ok(()),
            Message::KeyHashes { keys, .. } => {
                self.keys(keys.len())?;
                keys.iter().try_for_each(|k| self.key(&k.key))
            }
            Message::Digests {
                push, want, keys, ..
            } => {
                self.changes(push)?;
                self.keys(want.len())?;
                want.iter().try_for_each(|k| self.key(k))?;
                self.keys(keys.len())?;
                keys.iter().try_for_each(|k| {
                    self.key(&k.key)?;
                    self.buckets(k.buckets.len())
                })
            }
            Message::Entries { values, want, .. } => {
                self.changes(values)?;
                self.keys(want.len())?;
                want.iter().try_for_each(|w| self.wanted(w))
            }
        }
    }
}

impl Message {
    /// The session of a pull-push message; `None` for a [`Message::Change`].
    #[must_use]
    pub fn session(&self) -> Option<Session> {
        match self {
            Message::Change(_) => None,
            Message::FullState { session, .. }
            | Message::Summary { session, .. }
            | Message::Done { session }
            | Message::KeyHashes { session, .. }
            | Message::Digests { session, .. }
            | Message::Entries { session, .. } => Some(*session),
        }
    }

    /// The message's kind.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Change(_) => MessageKind::Change,
            Message::FullState { .. } => MessageKind::FullState,
            Message::Summary { .. } => MessageKind::Summary,
            Message::Done { .. } => MessageKind::Done,
            Message::KeyHashes { .. } => MessageKind::KeyHashes,
            Message::Digests { .. } => MessageKind::Digests,
            Message::Entries { .. } => MessageKind::Entries,
        }
    }

    /// The postcard encoding of the message.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("postcard encodes plain data into a Vec"))
    }

    /// Decodes one message that fills `bytes` exactly. Arbitrary bytes give an error, never a
    /// panic; no allocation exceeds what the input's length justifies.
    pub fn decode(bytes: &[u8]) -> Result<Message, postcard::Error> {
        let (message, rest) = postcard::take_from_bytes::<Message>(bytes)?;
        if rest.is_empty() {
            Ok(message)
        } else {
            Err(postcard::Error::DeserializeUnexpectedEnd)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_reject_trailing_bytes() {
        let message = Message::Change(KeyChange {
            key: "ring".into(),
            codec: "test".into(),
            value: Some(Bytes::from_static(b"abc")),
            marker: Marker {
                updated: Timestamp(1_700_000_000_000),
                deleted: false,
            },
        });
        let bytes = message.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), message);
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Message::decode(&longer).is_err());
        assert!(Message::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn sessions_are_encoded_as_docs_protocol_says() {
        let done = |from: &str| {
            Message::Done {
                session: Session {
                    from: from.parse().unwrap(),
                    id: 1,
                },
            }
            .encode()
        };
        // Tag 3, address V4 (0) + 4 octets + LEB128 port 7946, id 1.
        assert_eq!(
            &done("127.0.0.1:7946")[..],
            [3, 0, 127, 0, 0, 1, 0x8a, 0x3e, 1]
        );
        // V6 (1) + 16 octets.
        let v6 = done("[::1]:7946");
        assert_eq!((v6.len(), v6[1], v6[17]), (21, 1, 1));
    }

    #[test]
    fn message_kinds_follow_wire_order() {
        for (i, kind) in MessageKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
        let done = Message::Done {
            session: Session {
                from: "127.0.0.1:1".parse().unwrap(),
                id: 7,
            },
        };
        // The variant index is the first byte on the wire.
        assert_eq!(done.encode()[0] as usize, done.kind().index());
    }
}
