//! What a node hands its driver to send.

use std::net::SocketAddr;

use bytes::Bytes;
pub use rumour_wire::Delivery;

/// One framed message a machine wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// A datagram or a stream message.
    pub delivery: Delivery,
    /// The bytes, framed exactly as they go on the network.
    pub bytes: Bytes,
}
