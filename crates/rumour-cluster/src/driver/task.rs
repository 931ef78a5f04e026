//! The node task: the one place a running [`Node`] lives. It waits for a message, a timer or a
//! command, hands it to the node, then sends what the node produced and publishes its events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumour_transport::{Delivery, Incoming, Transport, TransportError};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::Instrument;

use super::outbound::{Counters, Outbound};
use super::snapshot::{STATUS_MAX_AGE, Status};
use crate::{Node, NodeEvent};

/// How long the task sleeps when the node has no timer at all.
const IDLE: Duration = Duration::from_secs(3600);
/// Most messages already received that the task hands over before a timer (see
/// [`Task::drain_received`]).
pub(super) const BEFORE_TIMER: usize = 64;
/// How long a stopping node waits for its queued messages (a goodbye, say) to be sent.
const SEND_GRACE: Duration = Duration::from_secs(1);

/// The node's clock: tokio's, so that the node and the runtime agree on time.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A closure run on the node task with the node and the current time.
pub(super) type Call = Box<dyn FnOnce(&mut Node, Instant) + Send>;

/// A request from a handle.
pub(super) enum Command {
    /// Run a closure on the node (reads and commands alike).
    Call(Call),
    /// Answer with a [`Status`] no older than `STATUS_MAX_AGE`.
    Status(oneshot::Sender<Arc<Status>>),
    /// Stop the task, shut the transport down, then answer.
    Shutdown(oneshot::Sender<()>),
}

/// What woke the task up.
enum Input {
    Net(Result<Incoming, TransportError>),
    Timer,
    Command(Option<Command>),
}

/// Everything the node task owns.
pub(super) struct Task {
    pub(super) node: Node,
    pub(super) transport: Arc<dyn Transport>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) counters: Arc<Counters>,
    pub(super) ready: watch::Sender<bool>,
    /// Whether the node has heard from another member (or had no seeds).
    pub(super) joined: bool,
}

impl Task {
    /// Runs the node until a shutdown command, the last handle dropped, or the transport shut.
    pub(super) async fn run(self) {
        let span = tracing::info_span!("node", name = %self.node.name());
        self.run_loop().instrument(span).await;
    }

    async fn run_loop(mut self) {
        let mut outbound = Outbound::new(self.transport.clone(), self.counters.clone());
        self.flush(&mut outbound);
        let mut status: Option<Arc<Status>> = None;
        // One timer, moved when the node's deadline moves (not one registered and dropped
        // per message).
        let timer = tokio::time::sleep(IDLE);
        tokio::pin!(timer);
        let ack = loop {
            let deadline = self
                .node
                .poll_timeout()
                .unwrap_or_else(|| now() + IDLE)
                .into();
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            let input = tokio::select! {
                incoming = self.transport.recv() => Input::Net(incoming),
                () = &mut timer => Input::Timer,
                command = self.commands.recv() => Input::Command(command),
            };
            let now = now();
            match input {
                Input::Net(received) => {
                    if !self.handle_received(now, received) {
                        break None;
                    }
                }
                Input::Timer => {
                    if !self.drain_received(now).await {
                        break None;
                    }
                    self.node.handle_timeout(now);
                }
                Input::Command(Some(Command::Call(f))) => f(&mut self.node, now),
                Input::Command(Some(Command::Status(reply))) => {
                    let _ = reply.send(self.status(&mut status, now));
                }
                Input::Command(Some(Command::Shutdown(ack))) => break Some(ack),
                Input::Command(None) => break None,
            }
            self.flush(&mut outbound);
        };
        self.ready.send_replace(false);
        outbound.close(SEND_GRACE).await;
        self.transport.shutdown().await;
        tracing::debug!("node stopped");
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }

    /// Hands the node up to [`BEFORE_TIMER`] messages that have already arrived, before a
    /// timer that fired while they waited: an ack that came in before its probe's deadline
    /// then ends the probe instead of failing it (`select!` picks at random among ready
    /// branches, and on a loaded machine the ack and the deadline are often ready together).
    /// Bounded, so that a flood cannot hold the timers back.
    /// Returns `false` once the transport is shut down.
    pub(super) async fn drain_received(&mut self, now: Instant) -> bool {
        for _ in 0..BEFORE_TIMER {
            let received = tokio::select! {
                biased;
                received = self.transport.recv() => received,
                () = std::future::ready(()) => return true,
            };
            if !self.handle_received(now, received) {
                return false;
            }
        }
        true
    }

    /// Hands a received message to the node, or counts a receive error; `false` once the
    /// transport is shut down.
    fn handle_received(
        &mut self,
        now: Instant,
        received: Result<Incoming, TransportError>,
    ) -> bool {
        match received {
            Ok(incoming) => self.receive(now, incoming),
            Err(TransportError::Shutdown) => return false,
            Err(error) => {
                tracing::warn!(%error, "receive failed");
                Counters::incr(&self.counters.recv_errors);
            }
        }
        true
    }

    /// The last status if it is recent enough, else a new one (kept for the next callers).
    fn status(&self, last: &mut Option<Arc<Status>>, now: Instant) -> Arc<Status> {
        match last {
            Some(status) if now.saturating_duration_since(status.taken) < STATUS_MAX_AGE => {
                status.clone()
            }
            _ => last.insert(Arc::new(Status::of(&self.node, now))).clone(),
        }
    }

    fn receive(&mut self, now: Instant, incoming: Incoming) {
        match incoming.delivery {
            Delivery::Datagram => self.node.handle_packet(now, incoming.from, &incoming.bytes),
            Delivery::Stream => self.node.handle_stream(now, incoming.from, &incoming.bytes),
        }
    }

    /// Sends what the node produced, publishes its events, and updates readiness.
    fn flush(&mut self, outbound: &mut Outbound) {
        while let Some(transmit) = self.node.poll_transmit() {
            outbound.send(transmit);
        }
        while let Some(event) = self.node.poll_event() {
            Counters::incr(&self.counters.events);
            // No subscriber is not an error; a lagging one loses the oldest events.
            let _ = self.events.send(event);
        }
        self.joined = self.joined || self.node.num_alive() > 1;
        let ready = self.joined && !self.node.swim().has_left();
        self.ready.send_if_modified(|current| {
            let changed = *current != ready;
            *current = ready;
            changed
        });
    }
}
