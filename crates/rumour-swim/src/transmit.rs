//! Outgoing messages and the bounded queue that holds them until the embedder polls.

use std::net::SocketAddr;

use bytes::Bytes;
use rumour_wire::{BoundedQueue, Delivery};

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

/// The machine's pending transmits.
pub(crate) type Outbox = BoundedQueue<Transmit>;
