//! Writing to peers over TCP: one writer task per destination, owning at most one connection.
//!
//! Senders put messages on the peer's bounded queue; the writer connects on first use (writing
//! the preamble in front of the first message), writes messages in order, and closes the
//! connection and exits after `idle_timeout` without messages. Before reusing a connection it
//! checks that the peer has not closed it (a restarted peer leaves a dead connection behind)
//! and, if a write on a reused connection fails, tries once more on a fresh one. When a
//! connection attempt fails, everything already queued for that peer fails at once instead of
//! waiting for its own attempt.
//!
//! The table is bounded: at most `max_outbound_peers` writers at once (closed ones are
//! forgotten first), and at most `send_queue_bytes` bytes queued over all of them. A send past
//! either limit is refused at once and counted.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::{Shared, wire};
use crate::stats::{bump, incr};
use crate::{Delivery, TransportError};

/// A message waiting for its peer's writer.
#[derive(Debug)]
struct Outgoing {
    delivery: Delivery,
    bytes: Bytes,
    /// Where to report the outcome (reliable messages only).
    done: Option<oneshot::Sender<Result<(), TransportError>>>,
    /// The message's share of `send_queue_bytes`, given back once it is written or dropped.
    _bytes: OwnedSemaphorePermit,
}

#[derive(Debug)]
struct Peer {
    id: u64,
    tx: mpsc::Sender<Outgoing>,
}

/// The writers of one transport.
#[derive(Debug)]
struct Table {
    shared: Arc<Shared>,
    peers: Mutex<HashMap<SocketAddr, Peer>>,
    writers: Mutex<JoinSet<()>>,
    /// One permit per byte the send queues may still take.
    bytes: Arc<Semaphore>,
    next_id: AtomicU64,
    closed: AtomicBool,
}

/// Handle to the writers of one transport.
#[derive(Debug)]
pub(super) struct Peers(Arc<Table>);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Peers {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self(Arc::new(Table {
            shared: shared.clone(),
            peers: Mutex::new(HashMap::new()),
            writers: Mutex::new(JoinSet::new()),
            bytes: Arc::new(Semaphore::new(shared.config.send_queue_bytes)),
            next_id: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }))
    }

    /// The queue of `to`'s writer, starting a writer if there is none (or it is exiting).
    fn sender(&self, to: SocketAddr) -> Result<mpsc::Sender<Outgoing>, TransportError> {
        let table = &self.0;
        if table.closed.load(Ordering::Acquire) {
            return Err(TransportError::Shutdown);
        }
        let mut peers = lock(&table.peers);
        if let Some(peer) = peers.get(&to).filter(|p| !p.tx.is_closed()) {
            return Ok(peer.tx.clone());
        }
        let limit = table.shared.config.max_outbound_peers;
        if peers.len() >= limit {
            peers.retain(|_, peer| !peer.tx.is_closed());
        }
        if peers.len() >= limit && !peers.contains_key(&to) {
            let counters = &table.shared.counters;
            incr(&counters.sends_refused_peers);
            incr(&counters.send_errors);
            return Err(TransportError::PeerLimit { to });
        }
        let id = table.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(table.shared.config.peer_queue);
        let mut writers = lock(&table.writers);
        while writers.try_join_next().is_some() {}
        writers.spawn(run_writer(table.clone(), to, id, rx));
        peers.insert(to, Peer { id, tx: tx.clone() });
        Ok(tx)
    }

    /// The share of `send_queue_bytes` a message of `len` bytes holds while it waits, or
    /// [`TransportError::QueueFull`] (counted) if the queues hold too much already.
    fn take_bytes(
        &self,
        to: SocketAddr,
        len: usize,
    ) -> Result<OwnedSemaphorePermit, TransportError> {
        let table = &self.0;
        let total = table.shared.config.send_queue_bytes;
        super::take_bytes(&table.bytes, total, len).ok_or_else(|| {
            let counters = &table.shared.counters;
            incr(&counters.sends_refused_bytes);
            incr(&counters.send_errors);
            TransportError::QueueFull { to }
        })
    }

    /// Queues a datagram for `to` without waiting (TCP-only mode).
    pub(super) fn enqueue_datagram(
        &self,
        to: SocketAddr,
        bytes: Bytes,
    ) -> Result<(), TransportError> {
        let mut msg = Outgoing {
            delivery: Delivery::Datagram,
            _bytes: self.take_bytes(to, bytes.len())?,
            bytes,
            done: None,
        };
        // A writer may exit between our lookup and our send: then start a new one, once.
        for _ in 0..2 {
            match self.sender(to)?.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    incr(&self.0.shared.counters.send_errors);
                    return Err(TransportError::QueueFull { to });
                }
                Err(mpsc::error::TrySendError::Closed(back)) => msg = back,
            }
        }
        Err(TransportError::Shutdown)
    }

    /// Queues a reliable message for `to` and waits until it is written (or fails).
    pub(super) async fn send_reliable(
        &self,
        to: SocketAddr,
        bytes: Bytes,
    ) -> Result<(), TransportError> {
        let (done, outcome) = oneshot::channel();
        let mut msg = Outgoing {
            delivery: Delivery::Stream,
            _bytes: self.take_bytes(to, bytes.len())?,
            bytes,
            done: Some(done),
        };
        for _ in 0..2 {
            match self.sender(to)?.send(msg).await {
                Ok(()) => return outcome.await.unwrap_or(Err(TransportError::Shutdown)),
                Err(mpsc::error::SendError(back)) => msg = back,
            }
        }
        Err(TransportError::Shutdown)
    }

    /// Stops every writer without waiting (for `Drop`).
    pub(super) fn abort_all(&self) {
        self.0.closed.store(true, Ordering::Release);
        lock(&self.0.writers).abort_all();
    }

    /// Stops every writer and waits for them to end, closing their connections.
    pub(super) async fn shutdown(&self) {
        self.0.closed.store(true, Ordering::Release);
        let mut writers = std::mem::take(&mut *lock(&self.0.writers));
        writers.shutdown().await;
        lock(&self.0.peers).clear();
    }
}

impl Table {
    /// Removes writer `id`'s entry (not a newer writer's).
    fn forget(&self, to: SocketAddr, id: u64) {
        let mut peers = lock(&self.peers);
        if peers.get(&to).is_some_and(|p| p.id == id) {
            peers.remove(&to);
        }
    }
}

/// A failed write, and whether it failed while connecting.
struct Failure {
    error: TransportError,
    connecting: bool,
}

async fn run_writer(table: Arc<Table>, to: SocketAddr, id: u64, mut rx: mpsc::Receiver<Outgoing>) {
    let shared = &*table.shared;
    let mut conn: Option<TcpStream> = None;
    loop {
        let msg = match timeout(shared.config.idle_timeout, rx.recv()).await {
            Ok(Some(msg)) => msg,
            Ok(None) => return,
            Err(_idle) => {
                // Accept nothing more, close the connection, and write what is still queued.
                rx.close();
                table.forget(to, id);
                conn = None;
                continue;
            }
        };
        let result = deliver(shared, to, &mut conn, msg.delivery, &msg.bytes).await;
        let counters = &shared.counters;
        let result = match result {
            Ok(()) => {
                incr(match msg.delivery {
                    Delivery::Datagram => &counters.datagrams_out,
                    Delivery::Stream => &counters.reliable_out,
                });
                bump(&counters.bytes_out, msg.bytes.len() as u64);
                Ok(())
            }
            Err(failure) => {
                incr(&counters.send_errors);
                tracing::debug!(%to, error = %failure.error, "write to peer failed");
                if failure.connecting {
                    fail_queued(shared, to, &mut rx);
                }
                Err(failure.error)
            }
        };
        if let Some(done) = msg.done {
            let _ = done.send(result);
        }
    }
}

/// Fails everything queued for a peer we just could not connect to.
fn fail_queued(shared: &Shared, to: SocketAddr, rx: &mut mpsc::Receiver<Outgoing>) {
    while let Ok(msg) = rx.try_recv() {
        incr(&shared.counters.send_errors);
        if let Some(done) = msg.done {
            let _ = done.send(Err(TransportError::Unreachable { to }));
        }
    }
}

/// Writes one message, on the cached connection if it is still open, retrying once on a fresh
/// connection if writing on a reused one fails.
async fn deliver(
    shared: &Shared,
    to: SocketAddr,
    conn: &mut Option<TcpStream>,
    delivery: Delivery,
    bytes: &Bytes,
) -> Result<(), Failure> {
    let reused = conn.as_ref().is_some_and(peer_has_not_closed);
    if !reused {
        *conn = None;
    }
    match write(shared, to, conn, delivery, bytes).await {
        Err(failure) if reused => {
            tracing::debug!(%to, error = %failure.error, "cached connection failed, reconnecting");
            write(shared, to, conn, delivery, bytes).await
        }
        other => other,
    }
}

/// Our peers never write to us on these connections, so anything readable is an end of stream
/// (or an error): the connection is dead.
fn peer_has_not_closed(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

async fn write(
    shared: &Shared,
    to: SocketAddr,
    conn: &mut Option<TcpStream>,
    delivery: Delivery,
    bytes: &Bytes,
) -> Result<(), Failure> {
    let after = shared.config.stream_timeout;
    let mut head = Vec::with_capacity(32);
    let stream = match conn {
        Some(stream) => stream,
        None => {
            let stream = connect(shared, to).await.map_err(|error| Failure {
                error,
                connecting: true,
            })?;
            head.extend_from_slice(&wire::preamble(shared.advertise));
            conn.insert(stream)
        }
    };
    head.extend_from_slice(&wire::envelope(delivery, bytes.len()));
    let mut buf = (&head[..]).chain(&bytes[..]);
    let error = match timeout(after, stream.write_all_buf(&mut buf)).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(source)) => TransportError::Io {
            op: "write to",
            addr: to,
            source,
        },
        Err(_) => TransportError::Timeout {
            op: "write to",
            addr: to,
            after,
        },
    };
    *conn = None;
    Err(Failure {
        error,
        connecting: false,
    })
}

/// Connects to `to` from `local` when it is a specific IP of the same family (so a member
/// bound to one of several addresses of a host connects from the address it advertises, as
/// `verify_stream_source` expects), else from whatever address the system picks.
async fn connect_from(local: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    if local.is_unspecified() || local.is_ipv4() != to.is_ipv4() {
        return TcpStream::connect(to).await;
    }
    let socket = if local.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(to).await
}

async fn connect(shared: &Shared, to: SocketAddr) -> Result<TcpStream, TransportError> {
    let after = shared.config.stream_timeout;
    let stream = match timeout(after, connect_from(shared.local.ip(), to)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            return Err(TransportError::Io {
                op: "connect to",
                addr: to,
                source,
            });
        }
        Err(_) => {
            return Err(TransportError::Timeout {
                op: "connect to",
                addr: to,
                after,
            });
        }
    };
    let _ = stream.set_nodelay(true);
    incr(&shared.counters.connections_opened);
    Ok(stream)
}
