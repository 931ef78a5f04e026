//! Sending what the node produced without making the node wait: datagrams go straight to the
//! socket when it has room and nothing waits before them, else through one queue and one
//! sender task; reliable messages through one queue and task per peer (a slow or
//! unreachable peer delays only its own messages, and each peer's messages stay in order).
//! Closing waits a little for the queues to drain, so a goodbye sent just before a shutdown
//! still leaves.
//!
//! Everything here is bounded, so that no input can make the driver hold without limit what the
//! node asked it to send: [`DATAGRAM_QUEUE`] datagrams, [`MAX_PEERS`] peer queues and tasks of
//! [`PEER_QUEUE`] messages each, and [`QUEUE_BYTES`] bytes over all queues together. Past any
//! of them a message is dropped and counted ([`DriverStats`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumour_transport::{Transport, TrySend};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::snapshot::DriverStats;
use crate::transmit::{Delivery, Transmit};

/// Datagrams waiting for the sender task; past it they are dropped and counted.
const DATAGRAM_QUEUE: usize = 1024;
/// Reliable messages waiting for one peer; past it they are dropped and counted.
const PEER_QUEUE: usize = 64;
/// A peer's sender task exits after this long without messages.
const PEER_IDLE: Duration = Duration::from_secs(30);
/// Past this many peer queues, closed ones are forgotten.
const PEER_PRUNE: usize = 256;
/// Most peers with a queue and a sender task at once; messages to more are dropped.
pub(super) const MAX_PEERS: usize = 1024;
/// Most bytes waiting in all send queues together (a message larger than this is sent only
/// when nothing else waits).
pub(super) const QUEUE_BYTES: usize = 64 << 20;

/// A message and its share of [`QUEUE_BYTES`], given back once it has been handed to the
/// transport.
type Queued = (Bytes, OwnedSemaphorePermit);

/// The driver's live counters, shared by the node task, the sender tasks and the handles.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) send_errors: AtomicU64,
    pub(super) sends_dropped: AtomicU64,
    pub(super) sends_dropped_peers: AtomicU64,
    pub(super) sends_dropped_bytes: AtomicU64,
    pub(super) recv_errors: AtomicU64,
    pub(super) events: AtomicU64,
    pub(super) join_attempts: AtomicU64,
}

impl Counters {
    pub(super) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> DriverStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DriverStats {
            send_errors: get(&self.send_errors),
            sends_dropped: get(&self.sends_dropped),
            sends_dropped_peers: get(&self.sends_dropped_peers),
            sends_dropped_bytes: get(&self.sends_dropped_bytes),
            recv_errors: get(&self.recv_errors),
            events: get(&self.events),
            join_attempts: get(&self.join_attempts),
        }
    }
}

/// The send side of the driver. Dropping it aborts the sender tasks; [`Outbound::close`]
/// lets them drain first.
pub(super) struct Outbound {
    transport: Arc<dyn Transport>,
    counters: Arc<Counters>,
    datagrams: mpsc::Sender<(SocketAddr, Queued)>,
    peers: HashMap<SocketAddr, mpsc::Sender<Queued>>,
    tasks: JoinSet<()>,
    /// One permit per byte the queues may still take.
    bytes: Arc<Semaphore>,
}

impl Outbound {
    pub(super) fn new(transport: Arc<dyn Transport>, counters: Arc<Counters>) -> Outbound {
        let (datagrams, rx) = mpsc::channel(DATAGRAM_QUEUE);
        let mut tasks = JoinSet::new();
        tasks.spawn(send_datagrams(transport.clone(), counters.clone(), rx));
        Outbound {
            transport,
            counters,
            datagrams,
            peers: HashMap::new(),
            tasks,
            bytes: Arc::new(Semaphore::new(QUEUE_BYTES)),
        }
    }

    /// Stops taking messages and waits up to `grace` for the queued ones to be sent.
    pub(super) async fn close(self, grace: Duration) {
        let Outbound {
            datagrams,
            peers,
            mut tasks,
            ..
        } = self;
        drop((datagrams, peers));
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} });
        if drained.await.is_err() {
            tracing::debug!("sends still queued at shutdown were dropped");
        }
    }

    /// Sends one framed message, or queues it; never waits. A datagram goes out at once when
    /// no other waits before it and the transport can send it without waiting (a task switch
    /// and a queue saved on every datagram: on a loaded machine each adds to a probe's round
    /// trip); otherwise it is queued for the sender task.
    pub(super) fn send(&mut self, mut transmit: Transmit) {
        if transmit.delivery != Delivery::Stream
            && self.datagrams.capacity() == self.datagrams.max_capacity()
        {
            match self
                .transport
                .try_send_datagram(transmit.to, transmit.bytes)
            {
                TrySend::Sent => return,
                TrySend::Failed(error) => {
                    tracing::trace!(to = %transmit.to, %error, "datagram not sent");
                    Counters::incr(&self.counters.send_errors);
                    return;
                }
                TrySend::WouldBlock(bytes) => transmit.bytes = bytes,
            }
        }
        let want = u32::try_from(transmit.bytes.len().min(QUEUE_BYTES)).unwrap_or(u32::MAX);
        let Ok(permit) = self.bytes.clone().try_acquire_many_owned(want) else {
            self.dropped(&self.counters.sends_dropped_bytes);
            return;
        };
        let msg = (transmit.bytes, permit);
        if transmit.delivery == Delivery::Stream {
            self.send_reliable(transmit.to, msg);
        } else if self.datagrams.try_send((transmit.to, msg)).is_err() {
            Counters::incr(&self.counters.sends_dropped);
        }
    }

    /// Counts a dropped message under `reason` and in the total.
    fn dropped(&self, reason: &AtomicU64) {
        Counters::incr(reason);
        Counters::incr(&self.counters.sends_dropped);
    }

    fn send_reliable(&mut self, to: SocketAddr, msg: Queued) {
        let mut msg = msg;
        // A peer's task may have exited for idleness: then start another, once.
        for _ in 0..2 {
            let Some(queue) = self.peer_queue(to) else {
                self.dropped(&self.counters.sends_dropped_peers);
                return;
            };
            match queue.try_send(msg) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => break,
                Err(TrySendError::Closed(back)) => {
                    self.peers.remove(&to);
                    msg = back;
                }
            }
        }
        Counters::incr(&self.counters.sends_dropped);
    }

    /// The queue of `to`'s sender task, started if needed; `None` if [`MAX_PEERS`] peers
    /// already have one.
    fn peer_queue(&mut self, to: SocketAddr) -> Option<&mpsc::Sender<Queued>> {
        if self.peers.len() >= PEER_PRUNE && !self.peers.contains_key(&to) {
            self.peers.retain(|_, queue| !queue.is_closed());
        }
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&to) {
            return None;
        }
        let tasks = &mut self.tasks;
        Some(self.peers.entry(to).or_insert_with(|| {
            while tasks.try_join_next().is_some() {}
            let (queue, rx) = mpsc::channel(PEER_QUEUE);
            let (transport, counters) = (self.transport.clone(), self.counters.clone());
            tasks.spawn(send_reliable(transport, counters, to, rx));
            queue
        }))
    }
}

async fn send_datagrams(
    transport: Arc<dyn Transport>,
    counters: Arc<Counters>,
    mut rx: mpsc::Receiver<(SocketAddr, Queued)>,
) {
    while let Some((to, (bytes, _permit))) = rx.recv().await {
        if let Err(error) = transport.send_datagram(to, bytes).await {
            tracing::trace!(%to, %error, "datagram not sent");
            Counters::incr(&counters.send_errors);
        }
    }
}

async fn send_reliable(
    transport: Arc<dyn Transport>,
    counters: Arc<Counters>,
    to: SocketAddr,
    mut rx: mpsc::Receiver<Queued>,
) {
    loop {
        match tokio::time::timeout(PEER_IDLE, rx.recv()).await {
            Ok(Some((bytes, _permit))) => {
                if let Err(error) = transport.send_reliable(to, bytes).await {
                    tracing::debug!(%to, %error, "reliable message not sent");
                    Counters::incr(&counters.send_errors);
                }
            }
            Ok(None) => return,
            // Idle: refuse new messages (the node starts another task for them), send what
            // is already queued, then end.
            Err(_) => rx.close(),
        }
    }
}
