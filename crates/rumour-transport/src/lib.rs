//! The network under a rumour node: datagrams and reliable messages between socket addresses,
//! the frame format every message travels in, and an in-memory network for tests.
//!
//! # Contract
//!
//! - [`Transport`] moves bytes the caller has already framed: best-effort
//!   [`send_datagram`](Transport::send_datagram), ordered per-peer
//!   [`send_reliable`](Transport::send_reliable), and one [`recv`](Transport::recv) queue of
//!   [`Incoming`] messages. Implement it to carry rumour over TLS, QUIC or anything else.
//! - [`frame`] is pure (no I/O, no clock): magic and version, flags, optional cluster
//!   [`Label`], CRC-32, and compound packing of many messages into one datagram up to the packet
//!   budget. The simulator and the real network frame packets with the same code. A frame with
//!   a wrong checksum or label is rejected and counted, never delivered. With a
//!   [`Keyring`](frame::Keyring), frames are sealed with XChaCha20-Poly1305 and a frame that no
//!   installed key opens is dropped and counted before any decoding.
//! - [`NetTransport`] is UDP + TCP on one port, on tokio, IPv4 or IPv6, with an advertise
//!   address and a TCP-only mode. Everything read from the wire is bounded: datagram size,
//!   stream message size and (given a [`FrameConfig`](frame::FrameConfig)) the frame header
//!   and label, all checked before any memory is reserved; read deadlines, including for the
//!   first message after a preamble; concurrent inbound streams, in all and per source IP; an
//!   allow-list of source networks ([`Cidr`]); the receive queue by count and by bytes; the
//!   outbound peer table and send queues by count and by bytes. Each rejection is counted in
//!   [`Stats`].
//! - [`MemNetwork`] hands out [`MemTransport`] endpoints with seeded loss, delay, duplication
//!   and partitions, for tests of async code.
//! - Nothing read from the wire can make this crate panic; decoders return [`FrameError`]
//!   (what, byte offset, kind), transports return [`TransportError`].
//!
//! # Example
//!
//! Two nodes on loopback: frame, send, receive, unframe.
//!
//! ```
//! use rumour_transport::frame::{FrameCodec, FrameConfig};
//! use rumour_transport::{Label, NetConfig, NetTransport, Transport};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let codec = FrameCodec::new(FrameConfig::default().with_label(Label::new("demo")?));
//! let a = NetTransport::bind(NetConfig::new("127.0.0.1:0".parse()?)).await?;
//! let b = NetTransport::bind(NetConfig::new("127.0.0.1:0".parse()?)).await?;
//!
//! // Pack as many messages as the budget allows into one datagram.
//! let msgs: [&[u8]; 2] = [b"ping", b"alive n1"];
//! assert!(codec.packet_len(&msgs) <= codec.packet_budget());
//! a.send_datagram(b.advertise_addr(), codec.encode_packet(&msgs).into()).await?;
//!
//! let incoming = b.recv().await?;
//! assert_eq!(incoming.from, a.local_addr());
//! let packet = codec.decode_packet(&incoming.bytes)?;
//! let got: Vec<&[u8]> = packet.iter().collect();
//! assert_eq!(got, msgs);
//!
//! // Larger state goes over a stream, as one length-prefixed frame.
//! a.send_reliable(b.advertise_addr(), codec.encode_stream(&[7; 100_000])?.into()).await?;
//! let incoming = b.recv().await?;
//! assert_eq!(codec.decode_stream(&incoming.bytes)?.len(), 100_000);
//!
//! a.shutdown().await;
//! b.shutdown().await;
//! # Ok(()) }
//! ```

mod cidr;
mod error;
pub mod frame;
mod label;
mod mem;
mod net;
mod stats;
mod transport;

pub use cidr::Cidr;
pub use error::{FrameError, FrameErrorKind, TransportError};
pub use label::Label;
pub use mem::{MemConfig, MemNetwork, MemTransport};
pub use net::{NetConfig, NetTransport};
pub use stats::Stats;
pub use transport::{Delivery, Incoming, Transport, TrySend};
