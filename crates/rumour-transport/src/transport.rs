//! The [`Transport`] trait: what the cluster driver needs from a network.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
pub use rumour_wire::Delivery;

use crate::{Stats, TransportError};

/// A message received from the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Who sent it. For UDP the datagram's source address; for messages over TCP the address
    /// the sender advertised when it opened the connection (its TCP source port is ephemeral);
    /// for the in-memory network the sender's bound address.
    pub from: SocketAddr,
    /// Datagram or reliable message.
    pub delivery: Delivery,
    /// The message, exactly as the sender passed it (already framed by the caller).
    pub bytes: Bytes,
}

/// What [`Transport::try_send_datagram`] did with a datagram.
#[derive(Debug)]
pub enum TrySend {
    /// Handed to the network (which may still lose it), as `send_datagram` would have.
    Sent,
    /// It could not go without waiting: here it is back, for
    /// [`send_datagram`](Transport::send_datagram).
    WouldBlock(Bytes),
    /// It failed, as `send_datagram` would have.
    Failed(TransportError),
}

/// A network for rumour nodes: best-effort datagrams and reliable messages to socket
/// addresses, and one queue of everything received.
///
/// The transport moves bytes only; framing (label, checksum, compound packing) is the caller's,
/// with [`frame`](crate::frame). Implement it to run rumour over TLS, QUIC or anything else;
/// [`NetTransport`](crate::NetTransport) is UDP + TCP, [`MemTransport`](crate::MemTransport) is
/// in memory.
///
/// A reliable message is delivered as one [`Incoming`]; the receiver cannot answer on the same
/// connection. Protocols answer with their own `send_reliable` to the address the request
/// carries.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// The address the sockets are bound to.
    fn local_addr(&self) -> SocketAddr;

    /// The address peers should use to reach this node (differs from
    /// [`local_addr`](Self::local_addr) behind NAT or when bound to `0.0.0.0`).
    fn advertise_addr(&self) -> SocketAddr;

    /// Sends one datagram, best effort. Errors say why this send failed and are informational:
    /// a datagram that was sent may still be lost.
    async fn send_datagram(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError>;

    /// Sends one datagram now if that needs no waiting (a UDP socket with room in its send
    /// buffer), so that a caller that must not wait can skip a queue and a task switch; gives
    /// it back as [`TrySend::WouldBlock`] otherwise. The default never sends.
    fn try_send_datagram(&self, to: SocketAddr, bytes: Bytes) -> TrySend {
        let _ = to;
        TrySend::WouldBlock(bytes)
    }

    /// Sends one message reliably, returning once it is written to the connection (not once
    /// the peer has processed it).
    async fn send_reliable(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError>;

    /// Waits for the next message. Returns [`TransportError::Shutdown`] once shut down.
    ///
    /// Must be cancel safe: the driver races it against timers in `tokio::select!`, so a
    /// future dropped before it completes must not lose a message (both implementations here
    /// read from a channel, which is).
    async fn recv(&self) -> Result<Incoming, TransportError>;

    /// Stops receiving and sending, closes the sockets and ends background tasks. Idempotent.
    async fn shutdown(&self);

    /// The counters.
    fn stats(&self) -> Stats;
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn local_addr(&self) -> SocketAddr {
        (**self).local_addr()
    }

    fn advertise_addr(&self) -> SocketAddr {
        (**self).advertise_addr()
    }

    async fn send_datagram(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError> {
        (**self).send_datagram(to, bytes).await
    }

    fn try_send_datagram(&self, to: SocketAddr, bytes: Bytes) -> TrySend {
        (**self).try_send_datagram(to, bytes)
    }

    async fn send_reliable(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError> {
        (**self).send_reliable(to, bytes).await
    }

    async fn recv(&self) -> Result<Incoming, TransportError> {
        (**self).recv().await
    }

    async fn shutdown(&self) {
        (**self).shutdown().await;
    }

    fn stats(&self) -> Stats {
        (**self).stats()
    }
}
