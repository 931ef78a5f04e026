//! Sending what the node produced without making the node wait: datagrams go through one
//! queue and one sender task, reliable messages through one queue and task per peer (a slow or
//! unreachable peer delays only its own messages, and each peer's messages stay in order).
//! Closing waits a little for the queues to drain, so a goodbye sent just before a shutdown
//! still leaves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumour_transport::Transport;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
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

/// The driver's live counters, shared by the node task, the sender tasks and the handles.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) send_errors: AtomicU64,
    pub(super) sends_dropped: AtomicU64,
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
    datagrams: mpsc::Sender<(SocketAddr, Bytes)>,
    peers: HashMap<SocketAddr, mpsc::Sender<Bytes>>,
    tasks: JoinSet<()>,
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

    /// Queues one framed message; never waits.
    pub(super) fn send(&mut self, transmit: Transmit) {
        if transmit.delivery == Delivery::Stream {
            self.send_reliable(transmit.to, transmit.bytes);
        } else if self
            .datagrams
            .try_send((transmit.to, transmit.bytes))
            .is_err()
        {
            Counters::incr(&self.counters.sends_dropped);
        }
    }

    fn send_reliable(&mut self, to: SocketAddr, bytes: Bytes) {
        let mut bytes = bytes;
        // A peer's task may have exited for idleness: then start another, once.
        for _ in 0..2 {
            let queue = self.peer_queue(to);
            match queue.try_send(bytes) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => break,
                Err(TrySendError::Closed(back)) => {
                    self.peers.remove(&to);
                    bytes = back;
                }
            }
        }
        Counters::incr(&self.counters.sends_dropped);
    }

    fn peer_queue(&mut self, to: SocketAddr) -> &mpsc::Sender<Bytes> {
        if self.peers.len() >= PEER_PRUNE {
            self.peers.retain(|_, queue| !queue.is_closed());
        }
        let tasks = &mut self.tasks;
        self.peers.entry(to).or_insert_with(|| {
            while tasks.try_join_next().is_some() {}
            let (queue, rx) = mpsc::channel(PEER_QUEUE);
            let (transport, counters) = (self.transport.clone(), self.counters.clone());
            tasks.spawn(send_reliable(transport, counters, to, rx));
            queue
        })
    }
}

async fn send_datagrams(
    transport: Arc<dyn Transport>,
    counters: Arc<Counters>,
    mut rx: mpsc::Receiver<(SocketAddr, Bytes)>,
) {
    while let Some((to, bytes)) = rx.recv().await {
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
    mut rx: mpsc::Receiver<Bytes>,
) {
    loop {
        match tokio::time::timeout(PEER_IDLE, rx.recv()).await {
            Ok(Some(bytes)) => {
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
