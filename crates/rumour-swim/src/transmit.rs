//! Outgoing messages and the bounded queue that holds them until the embedder polls.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;
use rumour_wire::Delivery;

use crate::pullpush::PullPush;

/// Something to send: one datagram or one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination (an advertised member address).
    pub to: SocketAddr,
    /// A datagram or a stream.
    pub delivery: Delivery,
    /// Postcard-encoded swim messages, not yet framed. In a datagram they fit the budget
    /// `Config::datagram_budget()` counting `Config::packed_len` per message.
    pub messages: Vec<Bytes>,
    /// Set when the stream is a full-state exchange.
    pub pullpush: Option<PullPush>,
}

impl Transmit {
    /// Bytes of the messages.
    #[must_use]
    pub fn len_bytes(&self) -> usize {
        self.messages.iter().map(Bytes::len).sum()
    }

    /// The messages decoded again: the seam for an embedder that re-encodes swim's output in
    /// another wire format (the memberlist adapter). The machine's own encodings always decode.
    ///
    /// # Errors
    /// Only for messages that were not produced by the machine.
    pub fn decode_messages(&self) -> Result<Vec<crate::message::Message>, crate::Error> {
        self.messages
            .iter()
            .map(|m| crate::message::Message::decode(m))
            .collect()
    }
}

/// Capacity kept once the queue drains; a burst beyond it is given back.
const RETAINED: usize = 64;

/// The machine's pending transmits, bounded by count and by bytes: past either bound the
/// oldest are dropped and counted.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
    items: VecDeque<Transmit>,
    dropped: u64,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Outbox {
        Outbox {
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            items: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Appends `transmit`, dropping the oldest while either bound is exceeded (a transmit
    /// larger than the byte bound on its own is dropped).
    pub(crate) fn push(&mut self, transmit: Transmit) {
        let len = transmit.len_bytes();
        if len > self.max_bytes {
            self.dropped += 1;
            return;
        }
        while self.items.len() >= self.capacity || self.bytes + len > self.max_bytes {
            let Some(old) = self.items.pop_front() else {
                break;
            };
            self.bytes -= old.len_bytes();
            self.dropped += 1;
        }
        self.bytes += len;
        self.items.push_back(transmit);
    }

    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        let item = self.items.pop_front();
        match &item {
            Some(t) => self.bytes -= t.len_bytes(),
            None if self.items.capacity() > RETAINED => self.items.shrink_to(RETAINED),
            None => {}
        }
        item
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transmit(len: usize) -> Transmit {
        Transmit {
            to: SocketAddr::from(([10, 0, 0, 1], 1)),
            delivery: Delivery::Datagram,
            messages: vec![Bytes::from(vec![0; len])],
            pullpush: None,
        }
    }

    #[test]
    fn the_outbox_is_bounded_by_count_and_by_bytes() {
        let mut outbox = Outbox::new(3, 100);
        for _ in 0..4 {
            outbox.push(transmit(10));
        }
        assert_eq!(outbox.dropped(), 1, "the count bound");
        outbox.push(transmit(90));
        assert_eq!(outbox.bytes(), 100, "the byte bound drops the oldest");
        assert_eq!(outbox.dropped(), 3);
        outbox.push(transmit(101));
        assert_eq!(outbox.dropped(), 4, "too large on its own");
        assert_eq!(outbox.pop().map(|t| t.len_bytes()), Some(10));
        assert_eq!(outbox.pop().map(|t| t.len_bytes()), Some(90));
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn transmits_decode_back_into_messages() {
        use crate::message::{Ack, Message, Nack};
        let messages = vec![Message::Ack(Ack { seq: 3 }), Message::Nack(Nack { seq: 4 })];
        let t = Transmit {
            to: SocketAddr::from(([10, 0, 0, 1], 1)),
            delivery: Delivery::Datagram,
            messages: messages.iter().map(Message::encode).collect(),
            pullpush: None,
        };
        assert_eq!(t.decode_messages().unwrap(), messages);
        let broken = Transmit {
            messages: vec![Bytes::from_static(&[0xff])],
            ..t
        };
        assert!(broken.decode_messages().is_err());
    }
}
