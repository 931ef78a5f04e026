//! Outgoing messages and the bounded queue that holds them until the embedder polls.

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

/// The machine's pending transmits.
pub(crate) type Outbox = crate::bounded::BoundedQueue<Transmit>;
