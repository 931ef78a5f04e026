//! [`MemNetwork`]: an in-memory network for tests of async code, with seeded loss, delay,
//! duplication and partitions. Endpoints ([`MemTransport`]) implement [`Transport`].
//!
//! Faults are drawn from one `ChaCha8Rng` seeded from [`MemConfig::seed`], in the order sends
//! happen. Delays use tokio's clock, so tests under `#[tokio::test(start_paused = true)]` run
//! them in virtual time.
//!
//! - Datagrams may be lost (`loss`), duplicated (`duplicate`), and delayed by a uniform draw in
//!   `min_delay..=max_delay`, so they may be reordered.
//! - Reliable messages are never lost, duplicated or reordered between one pair of endpoints;
//!   they are delayed like datagrams. Sending one to an address with no endpoint, or across a
//!   partition, fails with [`TransportError::Unreachable`].
//! - Partitions are checked when a message is sent.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::stats::{Counters, bump, incr};
use crate::{Delivery, Incoming, Stats, Transport, TransportError};

/// Settings of a [`MemNetwork`]. Loss and duplication are probabilities in `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MemConfig {
    /// Seed of the network's random faults.
    pub seed: u64,
    /// Probability that a datagram is lost. Default 0.
    pub loss: f64,
    /// Probability that a datagram is delivered twice. Default 0.
    pub duplicate: f64,
    /// Shortest delivery delay. Default zero.
    pub min_delay: Duration,
    /// Longest delivery delay. Default zero.
    pub max_delay: Duration,
    /// Capacity of each endpoint's receive queue. Default 1024.
    pub recv_queue: usize,
    /// Largest datagram. Default 65,507.
    pub max_datagram: usize,
    /// Largest reliable message. Default 32 MiB.
    pub max_message: usize,
}

impl MemConfig {
    /// A perfect network (no loss, no delay) with the given seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            loss: 0.0,
            duplicate: 0.0,
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            recv_queue: 1024,
            max_datagram: crate::net::MAX_UDP_PAYLOAD,
            max_message: crate::frame::DEFAULT_MAX_MESSAGE,
        }
    }

    /// Sets the datagram loss probability.
    #[must_use]
    pub fn with_loss(mut self, loss: f64) -> Self {
        self.loss = loss;
        self
    }

    /// Sets the datagram duplication probability.
    #[must_use]
    pub fn with_duplicate(mut self, duplicate: f64) -> Self {
        self.duplicate = duplicate;
        self
    }

    /// Sets the delay range (`max` is raised to `min` if lower).
    #[must_use]
    pub fn with_delay(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max.max(min);
        self
    }
}

#[derive(Debug)]
struct Endpoint {
    id: u64,
    queue: mpsc::Sender<Incoming>,
    counters: Arc<Counters>,
}

type Link = (SocketAddr, SocketAddr);

#[derive(Debug)]
struct State {
    config: MemConfig,
    rng: ChaCha8Rng,
    endpoints: HashMap<SocketAddr, Endpoint>,
    blocked: HashSet<Link>,
    /// Per (from, to) queue of reliable messages, so they arrive in order.
    links: HashMap<Link, mpsc::UnboundedSender<(Instant, Incoming)>>,
    next_id: u64,
    next_port: u16,
}

impl State {
    fn delay(&mut self) -> Duration {
        let (min, max) = (self.config.min_delay, self.config.max_delay);
        if max <= min {
            return min;
        }
        min + (max - min).mul_f64(self.rng.r#gen::<f64>())
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.rng.r#gen::<f64>() < probability
    }
}

#[derive(Debug)]
struct Hub {
    state: Mutex<State>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a message in `to`'s queue, if `to` still exists; counts it there.
    fn deliver(&self, to: SocketAddr, incoming: Incoming) {
        let state = self.lock();
        let Some(endpoint) = state.endpoints.get(&to) else {
            return;
        };
        let counters = &endpoint.counters;
        let (kind, len) = (incoming.delivery, incoming.bytes.len() as u64);
        match endpoint.queue.try_send(incoming) {
            Ok(()) => {
                incr(match kind {
                    Delivery::Datagram => &counters.datagrams_in,
                    Delivery::Stream => &counters.reliable_in,
                });
                bump(&counters.bytes_in, len);
            }
            Err(_) => incr(&counters.dropped_queue_full),
        }
    }

    fn unbind(&self, addr: SocketAddr, id: u64) {
        let mut state = self.lock();
        if state.endpoints.get(&addr).is_some_and(|e| e.id == id) {
            state.endpoints.remove(&addr);
            state
                .links
                .retain(|(from, to), _| *from != addr && *to != addr);
        }
    }
}

/// An in-memory network. Cheap to clone: clones share the same network.
///
/// ```
/// use std::time::Duration;
/// use rumour_transport::{MemConfig, MemNetwork, Transport};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rumour_transport::TransportError> {
/// let net = MemNetwork::new(MemConfig::new(7).with_delay(Duration::ZERO, Duration::from_millis(5)));
/// let a = net.bind("10.0.0.1:7946".parse().unwrap())?;
/// let b = net.bind("10.0.0.2:7946".parse().unwrap())?;
/// a.send_reliable(b.local_addr(), "hello".into()).await?;
/// assert_eq!(b.recv().await?.bytes, "hello");
/// net.partition(&[a.local_addr()], &[b.local_addr()]);
/// assert!(a.send_reliable(b.local_addr(), "lost".into()).await.is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemNetwork(Arc<Hub>);

impl MemNetwork {
    /// A network with these settings.
    pub fn new(config: MemConfig) -> Self {
        let state = State {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            endpoints: HashMap::new(),
            blocked: HashSet::new(),
            links: HashMap::new(),
            next_id: 0,
            next_port: 49_152,
        };
        Self(Arc::new(Hub {
            state: Mutex::new(state),
        }))
    }

    /// Creates an endpoint at `addr`. Port 0 picks a free port. Fails if `addr` is taken.
    pub fn bind(&self, mut addr: SocketAddr) -> Result<MemTransport, TransportError> {
        let mut state = self.0.lock();
        if addr.port() == 0 {
            addr.set_port(free_port(&mut state, addr)?);
        }
        if state.endpoints.contains_key(&addr) {
            let source = io::Error::from(io::ErrorKind::AddrInUse);
            return Err(TransportError::Bind { addr, source });
        }
        let (queue, rx) = mpsc::channel(state.config.recv_queue.max(1));
        let id = state.next_id;
        state.next_id += 1;
        let counters = Arc::new(Counters::default());
        state.endpoints.insert(
            addr,
            Endpoint {
                id,
                queue,
                counters: counters.clone(),
            },
        );
        Ok(MemTransport {
            net: self.clone(),
            addr,
            id,
            counters,
            rx: tokio::sync::Mutex::new(rx),
            closed: watch::Sender::new(false),
        })
    }

    /// Sets the datagram loss probability from now on.
    pub fn set_loss(&self, loss: f64) {
        self.0.lock().config.loss = loss;
    }

    /// Sets the datagram duplication probability from now on.
    pub fn set_duplicate(&self, duplicate: f64) {
        self.0.lock().config.duplicate = duplicate;
    }

    /// Sets the delay range from now on.
    pub fn set_delay(&self, min: Duration, max: Duration) {
        let mut state = self.0.lock();
        state.config.min_delay = min;
        state.config.max_delay = max.max(min);
    }

    /// Cuts every link between a member of `a` and a member of `b`, both ways.
    pub fn partition(&self, a: &[SocketAddr], b: &[SocketAddr]) {
        self.partition_one_way(a, b);
        self.partition_one_way(b, a);
    }

    /// Cuts the links from each member of `from` to each member of `to`, one way only.
    pub fn partition_one_way(&self, from: &[SocketAddr], to: &[SocketAddr]) {
        let mut state = self.0.lock();
        for &f in from {
            state.blocked.extend(to.iter().map(|&t| (f, t)));
        }
    }

    /// Removes every partition.
    pub fn heal(&self) {
        self.0.lock().blocked.clear();
    }
}

fn free_port(state: &mut State, addr: SocketAddr) -> Result<u16, TransportError> {
    for _ in 0..=u16::MAX {
        let port = state.next_port;
        state.next_port = state.next_port.checked_add(1).unwrap_or(49_152);
        if port != 0
            && !state
                .endpoints
                .contains_key(&SocketAddr::new(addr.ip(), port))
        {
            return Ok(port);
        }
    }
    let source = io::Error::from(io::ErrorKind::AddrInUse);
    Err(TransportError::Bind { addr, source })
}

/// One endpoint of a [`MemNetwork`]. Dropping it (or shutting it down) frees its address.
#[derive(Debug)]
pub struct MemTransport {
    net: MemNetwork,
    addr: SocketAddr,
    id: u64,
    counters: Arc<Counters>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    closed: watch::Sender<bool>,
}

impl MemTransport {
    /// The network this endpoint belongs to.
    pub fn network(&self) -> &MemNetwork {
        &self.net
    }

    fn count_out(&self, delivery: Delivery, len: usize) {
        incr(match delivery {
            Delivery::Datagram => &self.counters.datagrams_out,
            Delivery::Stream => &self.counters.reliable_out,
        });
        bump(&self.counters.bytes_out, len as u64);
    }
}

impl Drop for MemTransport {
    fn drop(&mut self) {
        self.net.0.unbind(self.addr, self.id);
    }
}

#[async_trait]
impl Transport for MemTransport {
    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn advertise_addr(&self) -> SocketAddr {
        self.addr
    }

    async fn send_datagram(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError> {
        crate::stats::check_open(&self.closed)?;
        let delays = {
            let mut state = self.net.0.lock();
            crate::stats::check_len(
                &self.counters.send_errors,
                "datagram",
                bytes.len(),
                state.config.max_datagram,
            )?;
            self.count_out(Delivery::Datagram, bytes.len());
            let counters = &self.counters;
            if !state.endpoints.contains_key(&to) {
                incr(&counters.dropped_no_route);
                return Ok(());
            }
            if state.blocked.contains(&(self.addr, to)) {
                incr(&counters.dropped_partition);
                return Ok(());
            }
            let (loss, duplicate) = (state.config.loss, state.config.duplicate);
            if state.chance(loss) {
                incr(&counters.dropped_loss);
                return Ok(());
            }
            let copies = if state.chance(duplicate) { 2 } else { 1 };
            (0..copies).map(|_| state.delay()).collect::<Vec<_>>()
        };
        let incoming = Incoming {
            from: self.addr,
            delivery: Delivery::Datagram,
            bytes,
        };
        for delay in delays {
            let incoming = incoming.clone();
            if delay.is_zero() {
                self.net.0.deliver(to, incoming);
                continue;
            }
            let hub = Arc::downgrade(&self.net.0);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(hub) = hub.upgrade() {
                    hub.deliver(to, incoming);
                }
            });
        }
        Ok(())
    }

    async fn send_reliable(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError> {
        crate::stats::check_open(&self.closed)?;
        let mut state = self.net.0.lock();
        crate::stats::check_len(
            &self.counters.send_errors,
            "reliable message",
            bytes.len(),
            state.config.max_message,
        )?;
        if !state.endpoints.contains_key(&to) {
            incr(&self.counters.send_errors);
            return Err(TransportError::Unreachable { to });
        }
        if state.blocked.contains(&(self.addr, to)) {
            incr(&self.counters.dropped_partition);
            incr(&self.counters.send_errors);
            return Err(TransportError::Unreachable { to });
        }
        self.count_out(Delivery::Stream, bytes.len());
        let at = Instant::now() + state.delay();
        let incoming = Incoming {
            from: self.addr,
            delivery: Delivery::Stream,
            bytes,
        };
        let hub = Arc::downgrade(&self.net.0);
        let link = state.links.entry((self.addr, to)).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run_link(hub, to, rx));
            tx
        });
        // The link task ends only when its sender is dropped, and we hold it under the lock.
        let _ = link.send((at, incoming));
        Ok(())
    }

    async fn recv(&self) -> Result<Incoming, TransportError> {
        let mut closed = self.closed.subscribe();
        let mut rx = self.rx.lock().await;
        tokio::select! {
            biased;
            _ = closed.wait_for(|closed| *closed) => Err(TransportError::Shutdown),
            incoming = rx.recv() => incoming.ok_or(TransportError::Shutdown),
        }
    }

    async fn shutdown(&self) {
        self.closed.send_replace(true);
        self.net.0.unbind(self.addr, self.id);
    }

    fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

/// Delivers one link's reliable messages in order, each no earlier than its time.
async fn run_link(
    hub: Weak<Hub>,
    to: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<(Instant, Incoming)>,
) {
    while let Some((at, incoming)) = rx.recv().await {
        tokio::time::sleep_until(at).await;
        let Some(hub) = hub.upgrade() else { return };
        hub.deliver(to, incoming);
    }
}
