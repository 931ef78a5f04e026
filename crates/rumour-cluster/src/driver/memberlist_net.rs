//! The network of the memberlist wire mode: raw UDP (no rumour frame: memberlist's packets as
//! they are) and memberlist's TCP stream contract, request then reply on the same connection.
//!
//! - A datagram is sent and received as is, from and to the one UDP socket bound to the
//!   advertised port (memberlist identifies a node's packets by that address).
//! - An inbound connection is read until [`Codec::decode_stream`] finds a whole message. A
//!   push/pull or a TCP ping waits, kept by the peer's (ephemeral) address, for the node's reply:
//!   the node addresses it to that address, and [`Transport::send_reliable`] writes it on the
//!   waiting connection and closes it. Other messages (user messages) close at once.
//! - An outbound message is written on a new connection, which is then read for a reply (a
//!   push/pull's or a TCP ping's) until a whole message, the peer's close or a timeout; a reply is
//!   delivered as a stream message from the address dialed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rumour_memberlist::{Codec, StreamMessage};
use rumour_transport::{Delivery, Incoming, Stats, Transport, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Deadline for connecting, and for reading one whole stream message.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an inbound connection waits for the node's reply.
const REPLY_WAIT: Duration = Duration::from_secs(10);
/// Largest stream message read (memberlist's push/pull cap, plus its header).
const MAX_STREAM: usize = (20 << 20) + 4096;
/// Messages received and not yet taken by the node.
const INBOX: usize = 4096;
/// Inbound connections waiting for a reply, at most.
const MAX_WAITING: usize = 1024;

type Waiting = Arc<Mutex<BTreeMap<SocketAddr, TcpStream>>>;

/// UDP and TCP on one port, in memberlist's formats (see the module documentation).
pub(crate) struct MemberlistNet {
    local: SocketAddr,
    advertise: SocketAddr,
    udp: Arc<UdpSocket>,
    inbox: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    sender: mpsc::Sender<Incoming>,
    waiting: Waiting,
    codec: Arc<Codec>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: tokio::sync::watch::Sender<bool>,
}

impl MemberlistNet {
    /// Binds UDP and TCP to `bind` (port 0: one free port for both), decoding stream
    /// boundaries with `codec`.
    pub(crate) async fn bind(
        bind: SocketAddr,
        advertise: Option<SocketAddr>,
        codec: Codec,
    ) -> Result<Arc<MemberlistNet>, TransportError> {
        let bind_error = |source| TransportError::Bind { addr: bind, source };
        let (listener, udp) = bind_both(bind).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let (sender, inbox) = mpsc::channel(INBOX);
        let net = Arc::new(MemberlistNet {
            local,
            advertise: advertise.unwrap_or(local),
            udp: Arc::new(udp),
            inbox: tokio::sync::Mutex::new(inbox),
            sender,
            waiting: Arc::default(),
            codec: Arc::new(codec),
            tasks: Mutex::default(),
            closed: tokio::sync::watch::channel(false).0,
        });
        let udp_task = tokio::spawn(receive_datagrams(net.udp.clone(), net.sender.clone()));
        let tcp_task = tokio::spawn(accept(
            listener,
            net.sender.clone(),
            net.waiting.clone(),
            net.codec.clone(),
        ));
        net.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([udp_task, tcp_task]);
        Ok(net)
    }
}

/// Binds TCP, then UDP on the same port (retrying when port 0 picked a TCP port whose UDP twin
/// is taken).
async fn bind_both(bind: SocketAddr) -> std::io::Result<(TcpListener, UdpSocket)> {
    let mut last = None;
    for _ in 0..16 {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        match UdpSocket::bind(addr).await {
            Ok(udp) => return Ok((listener, udp)),
            Err(error) if bind.port() == 0 => last = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

async fn receive_datagrams(udp: Arc<UdpSocket>, sender: mpsc::Sender<Incoming>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((len, from)) = udp.recv_from(&mut buf).await else {
            continue;
        };
        let incoming = Incoming {
            from,
            delivery: Delivery::Datagram,
            bytes: Bytes::copy_from_slice(&buf[..len]),
        };
        // A full inbox drops the datagram, as a full socket buffer would.
        let _ = sender.try_send(incoming);
    }
}

async fn accept(
    listener: TcpListener,
    sender: mpsc::Sender<Incoming>,
    waiting: Waiting,
    codec: Arc<Codec>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (sender, waiting, codec) = (sender.clone(), waiting.clone(), codec.clone());
        tokio::spawn(async move {
            let mut stream = stream;
            let Some((bytes, wants_reply)) = read_message(&mut stream, &codec).await else {
                return;
            };
            if wants_reply {
                {
                    let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                    if waiting.len() >= MAX_WAITING {
                        return;
                    }
                    waiting.insert(peer, stream);
                }
                let waiting = waiting.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(REPLY_WAIT).await;
                    waiting
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&peer);
                });
            }
            let _ = sender
                .send(Incoming {
                    from: peer,
                    delivery: Delivery::Stream,
                    bytes,
                })
                .await;
        });
    }
}

/// Reads one whole stream message: its bytes and whether it expects a reply on the connection.
/// `None` on a close, a timeout, an oversized or undecodable message.
async fn read_message(stream: &mut TcpStream, codec: &Codec) -> Option<(Bytes, bool)> {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            match codec.decode_stream(&buf) {
                Ok(Some(decoded)) => {
                    let wants_reply = matches!(
                        decoded.message,
                        StreamMessage::PushPull(_) | StreamMessage::Ping(_)
                    );
                    buf.truncate(decoded.consumed);
                    return Some((Bytes::from(buf), wants_reply));
                }
                Ok(None) if buf.len() < MAX_STREAM => {}
                _ => return None,
            }
        }
    };
    tokio::time::timeout(STREAM_TIMEOUT, read).await.ok()?
}

#[async_trait]
impl Transport for MemberlistNet {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn advertise_addr(&self) -> SocketAddr {
        self.advertise
    }

    async fn send_datagram(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError> {
        self.udp
            .send_to(&bytes, to)
            .await
            .map(drop)
            .map_err(|source| TransportError::Io {
                op: "send datagram to",
                addr: to,
                source,
            })
    }

    async fn send_reliable(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError> {
        let io = |op| {
            move |source| TransportError::Io {
                op,
                addr: to,
                source,
            }
        };
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&to);
        if let Some(mut stream) = waiting {
            // The reply to a request read from this connection.
            stream.write_all(&bytes).await.map_err(io("write to"))?;
            let _ = stream.shutdown().await;
            return Ok(());
        }
        let mut stream = tokio::time::timeout(STREAM_TIMEOUT, TcpStream::connect(to))
            .await
            .map_err(|_| TransportError::Timeout {
                op: "connect to",
                addr: to,
                after: STREAM_TIMEOUT,
            })?
            .map_err(io("connect to"))?;
        stream.write_all(&bytes).await.map_err(io("write to"))?;
        let (sender, codec) = (self.sender.clone(), self.codec.clone());
        tokio::spawn(async move {
            if let Some((bytes, _)) = read_message(&mut stream, &codec).await {
                let _ = sender
                    .send(Incoming {
                        from: to,
                        delivery: Delivery::Stream,
                        bytes,
                    })
                    .await;
            }
        });
        Ok(())
    }

    async fn recv(&self) -> Result<Incoming, TransportError> {
        let mut closed = self.closed.subscribe();
        if *closed.borrow() {
            return Err(TransportError::Shutdown);
        }
        let mut inbox = self.inbox.lock().await;
        tokio::select! {
            incoming = inbox.recv() => incoming.ok_or(TransportError::Shutdown),
            _ = closed.changed() => Err(TransportError::Shutdown),
        }
    }

    async fn shutdown(&self) {
        self.closed.send_replace(true);
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn stats(&self) -> Stats {
        // The adapter counts packets and streams itself (`Node::memberlist_stats`).
        Stats::default()
    }
}
