//! User messages: the application's own bytes between nodes (memberlist's `SendReliable`,
//! `SendBestEffort`, `NotifyMsg` and `GetBroadcasts`).
//!
//! A user message travels on envelope channel 2 ([`Channel::User`](crate::envelope::Channel)).
//! Its body is a kind byte, then:
//!
//! - `0` (direct): `sender name (LEB128 length + bytes) | payload`;
//! - `1` (broadcast): `origin name (LEB128 length + bytes) | sequence (LEB128) | payload`.
//!
//! Broadcasts piggyback on the node's gossip ticks from their own bounded, transmit-limited
//! queue, and every node that receives one for the first time reports it and queues it again,
//! so it spreads epidemically like a membership update. `(origin, sequence)` names a broadcast;
//! a node remembers the last [`SEEN_CAPACITY`] names to drop duplicates.

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;
use rumour_wire::{Broadcast, BroadcastQueue, varint};

use crate::error::Error;

/// Most user broadcasts a node holds to send; past it the most-transmitted one is dropped.
pub const QUEUE_CAPACITY: usize = 1024;
/// Broadcast names remembered to drop duplicates.
pub const SEEN_CAPACITY: usize = 8192;

const DIRECT: u8 = 0;
const BROADCAST: u8 = 1;

/// Counters of user messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserStats {
    /// Direct messages sent.
    pub sent: u64,
    /// Broadcasts started here.
    pub broadcasts: u64,
    /// Direct messages and first copies of broadcasts received and reported.
    pub received: u64,
    /// Copies of broadcasts already seen, dropped.
    pub duplicates: u64,
    /// Sends refused: an unknown or unconfirmed member, or a message over the size limit.
    pub refused: u64,
    /// Malformed user messages received.
    pub malformed: u64,
    /// Direct messages dropped because they did not come from the advertised address of the
    /// member they name as their sender (a forged or stale sender name).
    pub unverified: u64,
}

/// One queued broadcast: its name and its encoded body.
#[derive(Clone, Debug)]
pub(crate) struct UserBroadcast {
    id: (String, u64),
    body: Bytes,
}

impl UserBroadcast {
    /// The encoded body (what goes on channel 2).
    pub(crate) fn body(&self) -> Bytes {
        self.body.clone()
    }
}

impl Broadcast for UserBroadcast {
    type Key = (String, u64);
    fn key(&self) -> &(String, u64) {
        &self.id
    }
    fn payload(&self) -> &[u8] {
        &self.body
    }
}

/// A decoded user message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    Direct {
        from: &'a str,
        payload: &'a [u8],
    },
    Broadcast {
        origin: &'a str,
        seq: u64,
        payload: &'a [u8],
    },
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    varint::put(out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
}

fn bad(reason: &'static str) -> Error {
    Error::Envelope { offset: 0, reason }
}

fn get_name(bytes: &[u8]) -> Result<(&str, &[u8]), Error> {
    let (len, used) = varint::get(bytes).map_err(|_| bad("bad user name length"))?;
    let rest = &bytes[used..];
    if len > rest.len() as u64 {
        return Err(bad("user name past the end"));
    }
    let (name, rest) = rest.split_at(len as usize);
    let name = std::str::from_utf8(name).map_err(|_| bad("user name not UTF-8"))?;
    Ok((name, rest))
}

/// The body of a direct message from `from`.
pub(crate) fn encode_direct(from: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + from.len() + 4);
    out.push(DIRECT);
    put_name(&mut out, from);
    out.extend_from_slice(payload);
    out
}

/// Decodes a user message body.
pub(crate) fn decode(body: &[u8]) -> Result<Decoded<'_>, Error> {
    let (&kind, rest) = body.split_first().ok_or(bad("empty user message"))?;
    let (name, rest) = get_name(rest)?;
    match kind {
        DIRECT => Ok(Decoded::Direct {
            from: name,
            payload: rest,
        }),
        BROADCAST => {
            let (seq, used) = varint::get(rest).map_err(|_| bad("bad user sequence"))?;
            Ok(Decoded::Broadcast {
                origin: name,
                seq,
                payload: &rest[used..],
            })
        }
        _ => Err(bad("unknown user message kind")),
    }
}

/// The node's user-message state: the broadcast queue, the names seen, the counters.
#[derive(Clone)]
pub(crate) struct UserMessages {
    pub(crate) queue: BroadcastQueue<UserBroadcast>,
    seen: BTreeSet<(String, u64)>,
    seen_order: VecDeque<(String, u64)>,
    next_seq: u64,
    pub(crate) stats: UserStats,
}

impl UserMessages {
    /// Sequences start at `first_seq` (the node's start in wall-clock microseconds, so a
    /// restarted node never reuses a name its peers remember).
    pub(crate) fn new(retransmit_mult: u32, first_seq: u64) -> UserMessages {
        UserMessages {
            queue: BroadcastQueue::new(retransmit_mult, QUEUE_CAPACITY),
            seen: BTreeSet::new(),
            seen_order: VecDeque::new(),
            next_seq: first_seq,
            stats: UserStats::default(),
        }
    }

    /// Remembers `id`; false if it was already seen.
    fn remember(&mut self, id: &(String, u64)) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.seen_order.len() >= SEEN_CAPACITY {
            if let Some(oldest) = self.seen_order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(id.clone());
        self.seen_order.push_back(id.clone());
        true
    }

    /// The body of a new broadcast from `origin` (not yet queued).
    pub(crate) fn new_broadcast(&mut self, origin: &str, payload: &[u8]) -> UserBroadcast {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut body = Vec::with_capacity(payload.len() + origin.len() + 12);
        body.push(BROADCAST);
        put_name(&mut body, origin);
        varint::put(&mut body, seq);
        body.extend_from_slice(payload);
        UserBroadcast {
            id: (origin.to_string(), seq),
            body: Bytes::from(body),
        }
    }

    /// Queues a broadcast started here.
    pub(crate) fn start(&mut self, broadcast: UserBroadcast) {
        self.remember(&broadcast.id);
        self.stats.broadcasts += 1;
        self.queue.enqueue(broadcast);
    }

    /// A received broadcast: true (and queued to forward) if it is new.
    pub(crate) fn receive_broadcast(&mut self, origin: &str, seq: u64, body: &[u8]) -> bool {
        let id = (origin.to_string(), seq);
        if !self.remember(&id) {
            self.stats.duplicates += 1;
            return false;
        }
        self.stats.received += 1;
        self.queue.enqueue(UserBroadcast {
            id,
            body: Bytes::copy_from_slice(body),
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn direct_and_broadcast_bodies_round_trip() {
        let body = encode_direct("node-1", b"hello");
        assert_eq!(
            decode(&body).unwrap(),
            Decoded::Direct {
                from: "node-1",
                payload: b"hello"
            }
        );
        let mut user = UserMessages::new(4, 77);
        let b = user.new_broadcast("node-2", b"news");
        assert_eq!(
            decode(&b.body).unwrap(),
            Decoded::Broadcast {
                origin: "node-2",
                seq: 77,
                payload: b"news"
            }
        );
    }

    #[test]
    fn a_broadcast_is_reported_once_and_its_own_echo_is_a_duplicate() {
        let mut user = UserMessages::new(4, 1);
        let b = user.new_broadcast("me", b"x");
        let body = b.body.clone();
        user.start(b);
        assert!(!user.receive_broadcast("me", 1, &body), "our own echo");
        assert!(user.receive_broadcast("other", 5, b"..."));
        assert!(!user.receive_broadcast("other", 5, b"..."));
        assert_eq!((user.stats.received, user.stats.duplicates), (1, 2));
    }

    #[test]
    fn bad_bodies_are_errors() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 0]).is_err());
        assert!(decode(&[0, 5, b'a']).is_err());
        assert!(decode(&[1, 1, b'a']).is_err(), "no sequence");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
