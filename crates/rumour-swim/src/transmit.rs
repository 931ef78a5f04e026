//! Outgoing messages and the bounded queue that holds them until the embedder polls.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::message::packed_len;
use crate::pullpush::PullPush;

/// Something to send: one datagram or one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination (an advertised member address).
    pub to: SocketAddr,
    /// Stream (true) or datagram (false).
    pub reliable: bool,
    /// Postcard-encoded swim messages, not yet framed. In a datagram they fit the budget
    /// `Config::datagram_budget()` counting [`packed_len`] per message.
    pub messages: Vec<Bytes>,
    /// Set when the stream is a full-state exchange.
    pub pullpush: Option<PullPush>,
}

impl Transmit {
    /// Bytes the messages take in a datagram: the sum of their [`packed_len`].
    #[must_use]
    pub fn packed_len(&self) -> usize {
        self.messages.iter().map(|m| packed_len(m.len())).sum()
    }
}

/// Room left in `transmit` for more messages under a datagram budget (0 for streams, which
/// have no budget to top up).
#[must_use]
pub fn remaining_budget(transmit: &Transmit, datagram_budget: usize) -> usize {
    if transmit.reliable {
        return 0;
    }
    datagram_budget.saturating_sub(transmit.packed_len())
}

/// A bounded FIFO of transmits that drops the oldest when full.
#[derive(Debug)]
pub(crate) struct Outbox {
    capacity: usize,
    queue: VecDeque<Transmit>,
    dropped: u64,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Outbox {
        Outbox {
            capacity: capacity.max(1),
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, transmit: Transmit) {
        if self.queue.len() >= self.capacity {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(transmit);
    }

    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        self.queue.pop_front()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}
