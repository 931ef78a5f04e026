//! [`NetTransport`]: one UDP socket and one TCP listener on the same port, on tokio.
//!
//! - Datagrams go out as UDP datagrams (or, in TCP-only mode, over TCP).
//! - Reliable messages go over TCP. Each peer has one writer task that owns at most one
//!   outbound connection, opened on first use and closed after `idle_timeout` without traffic;
//!   messages to one peer are written in order. A connection opens with a preamble carrying our
//!   advertised address, so the receiver knows who sent what arrives on it.
//! - Every message on a connection is preceded by an envelope: kind and length. The receiver
//!   checks the length against `max_datagram` or `max_stream_message` before reserving memory
//!   and, given a [`FrameConfig`] in `frame`, reads only the frame header of a reliable message
//!   first and drops the connection if its label is not ours or its declared length is over the
//!   limit or disagrees with the envelope. It reads the message within `read_deadline`, and
//!   hands it to [`Transport::recv`]'s queue, bounded by count and by bytes (dropping and
//!   counting it if the queue is full).
//! - Datagrams take no task and no queue: [`Transport::recv`] reads the UDP socket itself,
//!   and [`Transport::try_send_datagram`] writes it from the caller's task when the socket has
//!   room. Datagrams that arrive while the caller is busy wait in the socket's receive buffer
//!   (`udp_recv_buffer`, 2 MiB as memberlist's). On a loaded machine every task switch between
//!   the socket and the node is a wait in the runtime's queue, and a probe's round trip took
//!   six of them; now it takes two.
//! - Datagrams and connections from outside `allowed_cidrs` are dropped before anything is
//!   read. At most `max_inbound_streams` inbound connections are open at once, and at most
//!   `max_streams_per_ip` from one IP. A connection past either limit takes the place of the
//!   connection that has been idle longest (one that delivered a message and waits for the
//!   next; of the same IP for the per-IP limit), which is closed: idle connections are only a
//!   cache of senders' connections, and a sender whose cached connection was closed opens
//!   another. When every place is busy (a message or a first message still being read), the
//!   new connection waits, unread, up to `read_deadline` for one to be given back or to turn
//!   idle; at most as many connections wait as may be open (per IP and in all). A connection
//!   that cannot wait, or waits in vain, is closed unread and counted. The first message must start within
//!   `read_deadline` of the preamble; after that, an inbound connection idle for
//!   `inbound_idle_timeout` is closed.
//! - At most `max_outbound_peers` peers have a writer at once, and at most `send_queue_bytes`
//!   bytes wait in their queues; sends past either are refused and counted.

mod inbound;
mod outbound;
pub(crate) mod wire;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::frame::{FrameCodec, FrameConfig};
use crate::stats::{Counters, bump, incr};
use crate::{Cidr, Delivery, Incoming, Stats, Transport, TransportError, TrySend};
use outbound::Peers;

/// Largest UDP payload over IPv4, the default `max_datagram`.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// How a [`NetTransport`] binds and what it accepts. Build with [`NetConfig::new`] and adjust
/// the public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetConfig {
    /// Address for both the UDP socket and the TCP listener. Port 0 picks a free port
    /// (the same one for both).
    pub bind: SocketAddr,
    /// The address peers should use to reach us. `None` means the bound address, which must
    /// then be a specific IP (not `0.0.0.0` or `::`). Port 0 means the bound port.
    pub advertise: Option<SocketAddr>,
    /// Carry datagrams over TCP too, for networks that drop UDP. UDP is still bound and read,
    /// so a node in this mode still hears peers that are not.
    pub tcp_only: bool,
    /// Largest datagram sent or accepted. Default 65 507, the largest UDP payload over IPv4.
    pub max_datagram: usize,
    /// Largest reliable message sent or accepted. Default 32 MiB; at most `u32::MAX`.
    pub max_stream_message: usize,
    /// Time allowed to read one inbound message (or preamble) once its first byte arrived.
    /// Default 10 s.
    pub read_deadline: Duration,
    /// Time allowed to connect to a peer, and to write one message. Default 10 s.
    pub stream_timeout: Duration,
    /// An outbound connection unused this long is closed. Default 10 s.
    pub idle_timeout: Duration,
    /// An inbound connection that brings nothing this long is closed. Default 60 s (longer
    /// than a sender's `idle_timeout`, so the sender closes first).
    pub inbound_idle_timeout: Duration,
    /// Most inbound TCP connections open at once. Default 128. Past it, a new connection
    /// replaces the one idle longest, or is refused if none is idle.
    pub max_inbound_streams: usize,
    /// Bytes the kernel may hold of datagrams not yet read (`SO_RCVBUF`; Linux caps it at
    /// `net.core.rmem_max`). [`Transport::recv`] reads the UDP socket itself, so datagrams
    /// that arrive while the node is busy wait here; past it the kernel drops them (counted
    /// in the system's UDP `RcvbufErrors`, not in [`Stats`]). Default 2 MiB, memberlist's
    /// `udpRecvBufSize`; halved until the kernel takes it (below 64 KiB, 0 included, the
    /// kernel's default stays).
    pub udp_recv_buffer: usize,
    /// Capacity of the queue of reliable messages behind [`Transport::recv`]. Default 1024.
    pub recv_queue: usize,
    /// Capacity of each peer's queue of messages waiting to be written. Default 256.
    pub peer_queue: usize,
    /// Bytes the queue of reliable messages behind [`Transport::recv`] may hold (a message
    /// larger than this is accepted only into an empty queue). Default 64 MiB.
    pub recv_queue_bytes: usize,
    /// Bytes all peers' queues may hold together, waiting to be written (a message larger
    /// than this is accepted only when nothing else waits). Default 64 MiB.
    pub send_queue_bytes: usize,
    /// Most peers with a writer (and so a cached outbound connection) at once. Default 1024.
    pub max_outbound_peers: usize,
    /// Most inbound TCP connections open at once from one source IP. Default 16. Past it, a
    /// new connection replaces the one from that IP idle longest, or is refused if none is.
    pub max_streams_per_ip: usize,
    /// Require the address a connection's preamble advertises (where replies to its messages
    /// go, and the `from` of every message it carries) to be on the connection's own IP;
    /// otherwise the connection is dropped before any message is read. Turn off only for
    /// members that connect from another IP than the one they advertise (NAT, multi-homed
    /// hosts). Default `true`.
    pub verify_stream_source: bool,
    /// Sources allowed to reach us: datagrams and connections from any other IP are dropped
    /// before anything is read. Empty (the default) allows every source.
    pub allowed_cidrs: Vec<Cidr>,
    /// The frames the caller sends and accepts. When set, the first bytes of every reliable
    /// message are checked as the header of a stream frame of this configuration (magic,
    /// version, flags, cluster label, declared length within `max_message` and equal to the
    /// envelope's) before its body is read; on any fault the connection is dropped. `None`
    /// (the default) moves reliable messages unchecked.
    pub frame: Option<FrameConfig>,
}

impl NetConfig {
    /// Defaults for binding `bind`.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            advertise: None,
            tcp_only: false,
            max_datagram: MAX_UDP_PAYLOAD,
            max_stream_message: crate::frame::DEFAULT_MAX_MESSAGE,
            read_deadline: Duration::from_secs(10),
            stream_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            inbound_idle_timeout: Duration::from_secs(60),
            max_inbound_streams: 128,
            udp_recv_buffer: 2 << 20,
            recv_queue: 1024,
            peer_queue: 256,
            recv_queue_bytes: 64 << 20,
            send_queue_bytes: 64 << 20,
            max_outbound_peers: 1024,
            max_streams_per_ip: 16,
            verify_stream_source: true,
            allowed_cidrs: Vec::new(),
            frame: None,
        }
    }

    /// Sets the allow-list of source networks (empty allows all).
    #[must_use]
    pub fn with_allowed_cidrs(mut self, cidrs: impl IntoIterator<Item = Cidr>) -> Self {
        self.allowed_cidrs = cidrs.into_iter().collect();
        self
    }

    /// Checks the frame header of every reliable message against `frame` before reading its
    /// body.
    #[must_use]
    pub fn with_frame(mut self, frame: FrameConfig) -> Self {
        self.frame = Some(frame);
        self
    }

    fn validate(&self) -> Result<(), TransportError> {
        let bad = |field, reason| Err(TransportError::Config { field, reason });
        let durations = [
            ("read_deadline", self.read_deadline),
            ("stream_timeout", self.stream_timeout),
            ("idle_timeout", self.idle_timeout),
            ("inbound_idle_timeout", self.inbound_idle_timeout),
        ];
        if let Some((field, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return bad(field, "must be more than zero");
        }
        let counts = [
            ("max_datagram", self.max_datagram),
            ("max_stream_message", self.max_stream_message),
            ("max_inbound_streams", self.max_inbound_streams),
            ("recv_queue", self.recv_queue),
            ("peer_queue", self.peer_queue),
            ("recv_queue_bytes", self.recv_queue_bytes),
            ("send_queue_bytes", self.send_queue_bytes),
            ("max_outbound_peers", self.max_outbound_peers),
            ("max_streams_per_ip", self.max_streams_per_ip),
        ];
        if let Some((field, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return bad(field, "must be more than zero");
        }
        if let Some((field, _)) = counts[..2].iter().find(|(_, n)| *n > u32::MAX as usize) {
            return bad(field, "must fit in 32 bits");
        }
        if let Some((field, _)) = counts[5..7]
            .iter()
            .find(|(_, n)| *n > Semaphore::MAX_PERMITS)
        {
            return bad(field, "is too large");
        }
        // Refuse an unusable advertise address before binding anything.
        advertise_addr(self.advertise, self.bind).map(drop)
    }
}

/// What the background tasks share with the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: NetConfig,
    pub(crate) local: SocketAddr,
    pub(crate) advertise: SocketAddr,
    pub(crate) counters: Counters,
    /// Checks the frame headers of reliable messages, if configured.
    pub(crate) codec: RwLock<Option<Arc<FrameCodec>>>,
    queue: mpsc::Sender<Queued>,
    /// One permit per byte the receive queue may still take.
    queue_bytes: Arc<Semaphore>,
    /// Open inbound connections per source IP.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Inbound connections waiting for a place, per source IP.
    waiting_per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Inbound connections waiting for their next message, oldest wait first.
    idle: Mutex<IdleConnections>,
    /// Signalled when a connection gives its place back or becomes idle.
    pub(crate) freed: Notify,
}

/// Inbound connections that delivered a message and wait for the next: the ones a new
/// connection past a limit may replace.
#[derive(Debug, Default)]
pub(crate) struct IdleConnections {
    /// By the order in which they became idle: the source IP and the signal that closes it.
    waiting: BTreeMap<u64, (IpAddr, Arc<Notify>)>,
    next: u64,
}

/// A connection's place among the idle ones while it waits; [`Shared::evict_idle`] signals
/// `evicted` to close it.
pub(crate) struct IdleTicket {
    id: u64,
    pub(crate) evicted: Arc<Notify>,
}

/// A received message and the bytes of the receive queue it holds until `recv` takes it.
type Queued = (Incoming, Option<OwnedSemaphorePermit>);

/// Takes permits for `len` bytes from a byte budget of `total`: a message larger than the
/// whole budget takes all of it. `None` when the budget has not that much left.
pub(crate) fn take_bytes(
    budget: &Arc<Semaphore>,
    total: usize,
    len: usize,
) -> Option<OwnedSemaphorePermit> {
    let want = u32::try_from(len.min(total)).unwrap_or(u32::MAX);
    budget.clone().try_acquire_many_owned(want).ok()
}

/// One inbound connection's place in a per-IP count (of open connections, or of connections
/// waiting for a place); gives it back when dropped.
pub(crate) struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
    waiting: bool,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let map = if self.waiting {
            &self.shared.waiting_per_ip
        } else {
            &self.shared.per_ip
        };
        let mut counts = map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = counts.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.ip);
            }
        }
        drop(counts);
        if !self.waiting {
            self.shared.freed.notify_waiters();
        }
    }
}

impl Shared {
    /// Whether `ip` may reach us (counts a refusal).
    pub(crate) fn source_allowed(&self, ip: IpAddr) -> bool {
        let allowed = crate::cidr::allowed(&self.config.allowed_cidrs, ip);
        if !allowed {
            incr(&self.counters.refused_source);
        }
        allowed
    }

    /// A slot for one more inbound connection from `ip`, unless `max_streams_per_ip` are
    /// already open from it.
    pub(crate) fn ip_slot(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        self.count_slot(ip, false)
    }

    /// A slot for one more connection from `ip` waiting for a place, unless
    /// `max_streams_per_ip` from it already wait.
    pub(crate) fn waiting_slot(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        self.count_slot(ip, true)
    }

    fn count_slot(self: &Arc<Self>, ip: IpAddr, waiting: bool) -> Option<IpSlot> {
        let ip = ip.to_canonical();
        let map = if waiting {
            &self.waiting_per_ip
        } else {
            &self.per_ip
        };
        let mut counts = map.lock().unwrap_or_else(PoisonError::into_inner);
        let open = counts.entry(ip).or_insert(0);
        if *open >= self.config.max_streams_per_ip {
            return None;
        }
        *open += 1;
        Some(IpSlot {
            shared: self.clone(),
            ip,
            waiting,
        })
    }

    /// Marks an inbound connection from `ip` idle until the ticket is given back with
    /// [`Shared::busy`].
    pub(crate) fn idle(&self, ip: IpAddr) -> IdleTicket {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let id = idle.next;
        idle.next += 1;
        let evicted = Arc::new(Notify::new());
        idle.waiting
            .insert(id, (ip.to_canonical(), evicted.clone()));
        drop(idle);
        // A connection waiting for a place may take this one's.
        self.freed.notify_waiters();
        IdleTicket { id, evicted }
    }

    /// The connection of `ticket` is busy again (or closing).
    pub(crate) fn busy(&self, ticket: &IdleTicket) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.waiting.remove(&ticket.id);
    }

    /// Signals the connection idle longest (from `ip`, if given) to close, and counts it;
    /// false if there is none.
    pub(crate) fn evict_idle(&self, ip: Option<IpAddr>) -> bool {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let ip = ip.map(|ip| ip.to_canonical());
        let found = idle
            .waiting
            .iter()
            .find(|(_, (from, _))| ip.is_none_or(|ip| ip == *from))
            .map(|(&id, _)| id);
        let Some((_, evicted)) = found.and_then(|id| idle.waiting.remove(&id)) else {
            return false;
        };
        evicted.notify_one();
        incr(&self.counters.streams_evicted);
        true
    }

    /// Hands a message to `recv`'s queue, or drops and counts it if the queue is full (by
    /// count or by bytes).
    pub(crate) fn deliver(&self, incoming: Incoming) {
        let (kind, len) = (incoming.delivery, incoming.bytes.len() as u64);
        let total = self.config.recv_queue_bytes;
        let Some(permit) = take_bytes(&self.queue_bytes, total, incoming.bytes.len()) else {
            incr(&self.counters.dropped_queue_bytes);
            return;
        };
        match self.queue.try_send((incoming, Some(permit))) {
            Ok(()) => {
                incr(match kind {
                    Delivery::Datagram => &self.counters.datagrams_in,
                    Delivery::Stream => &self.counters.reliable_in,
                });
                bump(&self.counters.bytes_in, len);
            }
            Err(mpsc::error::TrySendError::Full(_)) => incr(&self.counters.dropped_queue_full),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// What [`Transport::recv`] reads: the queue the stream tasks fill, and the UDP socket itself
/// (into `buf`), so a datagram reaches the node without a task switch.
#[derive(Debug)]
struct Inbox {
    streams: mpsc::Receiver<Queued>,
    buf: Vec<u8>,
}

/// UDP + TCP transport on tokio: one UDP socket and one TCP listener on the same port.
///
/// Datagrams go out as UDP datagrams (or over TCP in TCP-only mode); reliable messages over
/// TCP, one writer and at most one connection per peer, each connection opened with a
/// preamble carrying our advertised address. Everything read is bounded and every drop is
/// counted in [`Stats`]; see [`NetConfig`] for the limits.
///
/// Dropping it without [`shutdown`](Transport::shutdown) also stops its tasks, but does not
/// wait for them.
#[derive(Debug)]
pub struct NetTransport {
    shared: Arc<Shared>,
    udp: RwLock<Option<Arc<UdpSocket>>>,
    inbox: tokio::sync::Mutex<Inbox>,
    closed: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    conns: Arc<Mutex<JoinSet<()>>>,
    peers: Peers,
}

impl NetTransport {
    /// Binds the UDP socket and the TCP listener and starts reading them.
    pub async fn bind(config: NetConfig) -> Result<Self, TransportError> {
        config.validate()?;
        let (udp, tcp) = bind_pair(config.bind).await?;
        let local = udp.local_addr().map_err(|source| TransportError::Bind {
            addr: config.bind,
            source,
        })?;
        let advertise = advertise_addr(config.advertise, local)?;
        set_recv_buffer(&udp, config.udp_recv_buffer);
        let (queue, rx) = mpsc::channel(config.recv_queue);
        let shared = Arc::new(Shared {
            codec: RwLock::new(config.frame.clone().map(|f| Arc::new(FrameCodec::new(f)))),
            queue_bytes: Arc::new(Semaphore::new(config.recv_queue_bytes)),
            per_ip: Mutex::new(HashMap::new()),
            waiting_per_ip: Mutex::new(HashMap::new()),
            idle: Mutex::new(IdleConnections::default()),
            freed: Notify::new(),
            config,
            local,
            advertise,
            counters: Counters::default(),
            queue,
        });
        let udp = Arc::new(udp);
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let tasks = vec![tokio::spawn(inbound::accept_streams(
            shared.clone(),
            tcp,
            conns.clone(),
        ))];
        tracing::debug!(%local, %advertise, "transport bound");
        let inbox = Inbox {
            buf: inbound::datagram_buffer(&shared),
            streams: rx,
        };
        Ok(Self {
            peers: Peers::new(shared.clone()),
            shared,
            udp: RwLock::new(Some(udp)),
            inbox: tokio::sync::Mutex::new(inbox),
            closed: watch::Sender::new(false),
            tasks: Mutex::new(tasks),
            conns,
        })
    }

    /// The configuration it was bound with (`frame` as at bind time).
    pub fn config(&self) -> &NetConfig {
        &self.shared.config
    }

    /// From now on, checks the first bytes of every reliable message as the header of a stream
    /// frame of `frame` before reading its body, as if bound with [`NetConfig::frame`] set (for
    /// callers that learn their frame configuration after binding, like the cluster driver).
    pub fn check_stream_frames(&self, frame: FrameConfig) {
        *self
            .shared
            .codec
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(FrameCodec::new(frame)));
    }

    fn abort_all(&self) -> Vec<JoinHandle<()>> {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        tasks.iter().for_each(JoinHandle::abort);
        tasks
    }

    /// Refuses a datagram once shut down or past `max_datagram` (counted).
    fn check_datagram(&self, bytes: &Bytes) -> Result<(), TransportError> {
        crate::stats::check_open(&self.closed)?;
        crate::stats::check_len(
            &self.shared.counters.send_errors,
            "datagram",
            bytes.len(),
            self.shared.config.max_datagram,
        )
    }

    /// Counts the outcome of handing `len` bytes to the UDP socket for `to`.
    fn count_sent(
        &self,
        sent: std::io::Result<usize>,
        to: SocketAddr,
        len: usize,
    ) -> Result<(), TransportError> {
        let counters = &self.shared.counters;
        match sent {
            Ok(_) => {
                incr(&counters.datagrams_out);
                bump(&counters.bytes_out, len as u64);
                Ok(())
            }
            Err(source) => {
                incr(&counters.send_errors);
                Err(TransportError::Io {
                    op: "send datagram to",
                    addr: to,
                    source,
                })
            }
        }
    }
}

impl Drop for NetTransport {
    fn drop(&mut self) {
        self.abort_all();
        self.peers.abort_all();
        // Dropping the JoinSet of connections aborts them.
    }
}

#[async_trait]
impl Transport for NetTransport {
    fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    fn advertise_addr(&self) -> SocketAddr {
        self.shared.advertise
    }

    async fn send_datagram(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError> {
        self.check_datagram(&bytes)?;
        if self.shared.config.tcp_only {
            return self.peers.enqueue_datagram(to, bytes);
        }
        let socket = self
            .udp
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let socket = socket.ok_or(TransportError::Shutdown)?;
        let sent = socket.send_to(&bytes, to).await;
        self.count_sent(sent, to, bytes.len())
    }

    fn try_send_datagram(&self, to: SocketAddr, bytes: Bytes) -> TrySend {
        if let Err(error) = self.check_datagram(&bytes) {
            return TrySend::Failed(error);
        }
        if self.shared.config.tcp_only {
            return TrySend::WouldBlock(bytes);
        }
        let udp = self.udp.read().unwrap_or_else(PoisonError::into_inner);
        let Some(socket) = udp.as_ref() else {
            return TrySend::Failed(TransportError::Shutdown);
        };
        match socket.try_send_to(&bytes, to) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => TrySend::WouldBlock(bytes),
            sent => match self.count_sent(sent, to, bytes.len()) {
                Ok(()) => TrySend::Sent,
                Err(error) => TrySend::Failed(error),
            },
        }
    }

    async fn send_reliable(&self, to: SocketAddr, bytes: Bytes) -> Result<(), TransportError> {
        crate::stats::check_open(&self.closed)?;
        crate::stats::check_len(
            &self.shared.counters.send_errors,
            "reliable message",
            bytes.len(),
            self.shared.config.max_stream_message,
        )?;
        self.peers.send_reliable(to, bytes).await
    }

    async fn recv(&self) -> Result<Incoming, TransportError> {
        let mut closed = self.closed.subscribe();
        let mut inbox = self.inbox.lock().await;
        let Inbox { streams, buf } = &mut *inbox;
        let socket = self
            .udp
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        loop {
            let datagram = async {
                match &socket {
                    Some(socket) => inbound::read_datagram(&self.shared, socket, buf).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = closed.wait_for(|closed| *closed) => return Err(TransportError::Shutdown),
                // Dropping the permit gives the message's bytes back to the queue.
                queued = streams.recv() => {
                    return queued.map(|(incoming, _permit)| incoming).ok_or(TransportError::Shutdown);
                }
                incoming = datagram => if let Some(incoming) = incoming {
                    return Ok(incoming);
                },
            }
        }
    }

    async fn shutdown(&self) {
        self.closed.send_replace(true);
        self.udp
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        for task in self.abort_all() {
            let _ = task.await;
        }
        let mut conns =
            std::mem::take(&mut *self.conns.lock().unwrap_or_else(PoisonError::into_inner));
        conns.shutdown().await;
        self.peers.shutdown().await;
        tracing::debug!(local = %self.shared.local, "transport shut down");
    }

    fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }
}

/// Asks for a receive buffer of `bytes`, halving down to 64 KiB until the kernel takes it (as
/// memberlist's `setUDPRecvBuf`); the kernel's default stays if none is taken.
fn set_recv_buffer(udp: &UdpSocket, bytes: usize) {
    let socket = socket2::SockRef::from(udp);
    let mut want = bytes;
    while want >= 64 << 10 {
        match socket.set_recv_buffer_size(want) {
            Ok(()) => return,
            Err(error) => tracing::debug!(want, %error, "UDP receive buffer refused"),
        }
        want /= 2;
    }
}

/// Binds UDP, then TCP on the same port. With port 0 the kernel picks UDP's port, which TCP may
/// find taken: then both are dropped and the pair is tried again, a few times.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), TransportError> {
    const ATTEMPTS: usize = 10;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| TransportError::Bind { addr, source })?;
        let port = udp
            .local_addr()
            .map_err(|source| TransportError::Bind { addr, source })?
            .port();
        let tcp_addr = SocketAddr::new(addr.ip(), port);
        match TcpListener::bind(tcp_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e)
                if addr.port() == 0
                    && attempt < ATTEMPTS
                    && e.kind() == std::io::ErrorKind::AddrInUse =>
            {
                tracing::debug!(port, "TCP port taken, picking another");
            }
            Err(source) => {
                return Err(TransportError::Bind {
                    addr: tcp_addr,
                    source,
                });
            }
        }
    }
}

fn advertise_addr(
    advertise: Option<SocketAddr>,
    local: SocketAddr,
) -> Result<SocketAddr, TransportError> {
    let mut addr = match advertise {
        Some(addr) => addr,
        None if local.ip().is_unspecified() => {
            return Err(TransportError::Config {
                field: "advertise",
                reason: "must be set when binding an unspecified address (0.0.0.0 or ::)",
            });
        }
        None => local,
    };
    if addr.ip().is_unspecified() {
        return Err(TransportError::Config {
            field: "advertise",
            reason: "must be a specific IP",
        });
    }
    if addr.port() == 0 {
        addr.set_port(local.port());
    }
    Ok(addr)
}
