//! Reading the sockets: the UDP reader, the TCP accept loop, and one task per inbound
//! connection. Sources outside the allow-list are dropped before anything is read from them;
//! every length (and, if configured, every stream frame header) is checked before memory is
//! reserved for the body, every read after the first byte of a message runs against the read
//! deadline, the first message must start within the read deadline of the preamble, and every
//! drop is counted.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use super::{IdleTicket, IpSlot, Shared, wire};
use crate::frame::FrameCodec;
use crate::stats::{bump, incr};
use crate::{Delivery, FrameErrorKind, Incoming, Label};

/// A buffer for [`read_datagram`]: one byte larger than `max_datagram`, so that an oversized
/// datagram is seen as such rather than silently cut.
pub(super) fn datagram_buffer(shared: &Shared) -> Vec<u8> {
    vec![0u8; (shared.config.max_datagram + 1).min(1 << 16)]
}

/// Reads one UDP datagram into `buf` (from [`datagram_buffer`]): the message, or `None` when
/// it was dropped (from outside the allow-list, or over `max_datagram`: counted) or the read
/// failed. Cancel safe: a datagram is taken from the socket only when it is returned.
pub(super) async fn read_datagram(
    shared: &Shared,
    socket: &UdpSocket,
    buf: &mut [u8],
) -> Option<Incoming> {
    match socket.recv_from(buf).await {
        Ok((_, from)) if !shared.source_allowed(from.ip()) => None,
        Ok((len, _)) if len > shared.config.max_datagram => {
            incr(&shared.counters.dropped_over_limit);
            None
        }
        Ok((len, from)) => {
            incr(&shared.counters.datagrams_in);
            bump(&shared.counters.bytes_in, len as u64);
            Some(Incoming {
                from,
                delivery: Delivery::Datagram,
                bytes: Bytes::copy_from_slice(&buf[..len]),
            })
        }
        // ICMP errors from earlier sends (port unreachable) surface here on some systems:
        // they concern no datagram of ours to read.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
            ) =>
        {
            None
        }
        Err(e) => {
            // Anything else may repeat: count it and do not spin.
            incr(&shared.counters.dropped_io);
            tracing::warn!(error = %e, "UDP receive failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

/// Accepts TCP connections, refusing (closing at once, before reading anything) those from
/// outside the allow-list; each other connection gets its places (see [`places`]) in a task of
/// its own, then is served.
pub(super) async fn accept_streams(
    shared: Arc<Shared>,
    listener: TcpListener,
    conns: Arc<Mutex<JoinSet<()>>>,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_inbound_streams));
    let waiting = Arc::new(Semaphore::new(shared.config.max_inbound_streams));
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Typically out of file descriptors: wait before trying again.
                tracing::warn!(error = %e, ?backoff, "TCP accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(5);
        if !shared.source_allowed(peer.ip()) {
            tracing::debug!(%peer, "refused inbound stream: source not allowed");
            continue;
        }
        let (shared, permits, waiting) = (shared.clone(), permits.clone(), waiting.clone());
        let mut conns = conns.lock().unwrap_or_else(PoisonError::into_inner);
        while conns.try_join_next().is_some() {}
        conns.spawn(async move {
            let Some(slots) = places(&shared, peer, &permits, &waiting).await else {
                return;
            };
            incr(&shared.counters.connections_accepted);
            serve_stream(shared, stream, peer, slots).await;
        });
    }
}

/// A connection's places: one of `max_streams_per_ip` for its IP and one of
/// `max_inbound_streams`. Past a limit it takes the place of the connection idle longest (of
/// its IP for the per-IP limit), which is closed; if none is idle, it waits (one of as many
/// waiting places, per IP and in all) up to `read_deadline` for a place to be given back or a
/// connection to turn idle. `None` (counted) if it could not wait or waited in vain.
async fn places(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    permits: &Arc<Semaphore>,
    waiting: &Arc<Semaphore>,
) -> Option<(OwnedSemaphorePermit, IpSlot)> {
    let ip = peer.ip();
    let deadline = Instant::now() + shared.config.read_deadline;
    let mut slot = None;
    let mut permit = None;
    let mut wait_places = None;
    loop {
        let freed = shared.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        if slot.is_none() {
            slot = shared.ip_slot(ip);
        }
        if slot.is_some() && permit.is_none() {
            permit = permits.clone().try_acquire_owned().ok();
        }
        if let (Some(_), Some(_)) = (&slot, &permit) {
            return permit.zip(slot);
        }
        // Make room by closing an idle connection, or wait for one.
        let evicted = shared.evict_idle(slot.is_none().then_some(ip));
        if !evicted && wait_places.is_none() {
            let place = waiting.clone().try_acquire_owned().ok();
            wait_places = place.zip(shared.waiting_slot(ip));
            if wait_places.is_some() {
                incr(&shared.counters.streams_waited);
            }
        }
        let gave_up = if evicted || wait_places.is_some() {
            timeout_at(deadline, freed).await.is_err()
        } else {
            true
        };
        if gave_up {
            if slot.is_none() {
                incr(&shared.counters.streams_refused_per_ip);
            } else {
                incr(&shared.counters.streams_refused);
            }
            tracing::debug!(%peer, "refused inbound stream: no place freed");
            return None;
        }
    }
}

/// Why an inbound connection was given up.
enum End {
    /// The peer closed it between messages, or it was idle too long: nothing lost.
    Closed,
    OverLimit,
    /// A stream frame header carried a foreign label, or none when one is required.
    Label,
    Timeout,
    Malformed,
    /// The preamble advertised an address on another IP than the connection's.
    SourceMismatch,
    Io,
}

/// Reads the preamble, then messages until the connection closes or misbehaves.
async fn serve_stream(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    _slots: (OwnedSemaphorePermit, IpSlot),
) {
    let _ = stream.set_nodelay(true);
    let outcome = match read_preamble(&shared, &mut stream).await {
        Ok(from) if shared.config.verify_stream_source && !same_ip(from, peer) => {
            End::SourceMismatch
        }
        Ok(from) => read_messages(&shared, &mut stream, from, peer.ip()).await,
        Err(end) => end,
    };
    let counters = &shared.counters;
    let counter = match outcome {
        End::Closed => return,
        End::OverLimit => &counters.dropped_over_limit,
        End::Label => &counters.dropped_label,
        End::Timeout => &counters.dropped_timeout,
        End::Malformed => &counters.dropped_malformed,
        End::SourceMismatch => &counters.dropped_source_mismatch,
        End::Io => &counters.dropped_io,
    };
    incr(counter);
    tracing::debug!(%peer, "inbound stream dropped");
}

/// Whether two addresses are on one IP (an IPv4-mapped IPv6 address counts as its IPv4).
fn same_ip(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip().to_canonical() == b.ip().to_canonical()
}

async fn read_preamble(shared: &Shared, stream: &mut TcpStream) -> Result<SocketAddr, End> {
    let deadline = Instant::now() + shared.config.read_deadline;
    let mut head = [0u8; wire::PREAMBLE_HEAD];
    // A connection closed before its first byte lost nothing.
    match timeout_at(deadline, stream.read(&mut head[..1])).await {
        Ok(Ok(0)) => return Err(End::Closed),
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Err(End::Io),
        Err(_) => return Err(End::Timeout),
    }
    read_exact_by(stream, &mut head[1..], deadline).await?;
    let rest_len = wire::preamble_rest_len(&head).ok_or(End::Malformed)?;
    let mut rest = [0u8; 18];
    let rest = &mut rest[..rest_len];
    read_exact_by(stream, rest, deadline).await?;
    wire::preamble_addr(rest).ok_or(End::Malformed)
}

async fn read_messages(
    shared: &Shared,
    stream: &mut TcpStream,
    from: SocketAddr,
    ip: std::net::IpAddr,
) -> End {
    // The first message must start within the read deadline of the preamble: a connection
    // that opens and then says nothing does not hold a slot for long.
    let mut first = true;
    loop {
        let message = if first {
            read_message(shared, stream, shared.config.read_deadline, None).await
        } else {
            // Between messages the connection is idle: a new connection past a limit may
            // take its place.
            let ticket = shared.idle(ip);
            let wait = shared.config.inbound_idle_timeout;
            let message = read_message(shared, stream, wait, Some(&ticket)).await;
            shared.busy(&ticket);
            message
        };
        first = false;
        match message {
            Ok((delivery, bytes)) => shared.deliver(Incoming {
                from,
                delivery,
                bytes,
            }),
            Err(end) => return end,
        }
    }
}

/// Bytes of the longest stream frame header: magic, version, flags, label length, label,
/// length field.
const FRAME_HEAD_MAX: usize = 4 + 1 + Label::MAX_LEN + 4;

/// Reads one envelope and its message. Waits up to `wait` for the first byte (a timeout is a
/// drop for the connection's first message, a quiet close for the next ones, which wait
/// `idle` and close quietly, too, when evicted), then up to `read_deadline` for the rest.
async fn read_message(
    shared: &Shared,
    stream: &mut TcpStream,
    wait: Duration,
    idle: Option<&IdleTicket>,
) -> Result<(Delivery, Bytes), End> {
    let config = &shared.config;
    let mut head = [0u8; wire::ENVELOPE_LEN];
    let evicted = async {
        match idle {
            Some(ticket) => ticket.evicted.notified().await,
            None => std::future::pending().await,
        }
    };
    let first_byte = tokio::select! {
        read = timeout(wait, stream.read(&mut head[..1])) => read,
        () = evicted => return Err(End::Closed),
    };
    match first_byte {
        Err(_) if idle.is_none() => return Err(End::Timeout),
        Ok(Ok(0)) | Err(_) => return Err(End::Closed),
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Err(End::Io),
    }
    let deadline = Instant::now() + config.read_deadline;
    read_exact_by(stream, &mut head[1..], deadline).await?;
    let (kind, len) = wire::parse_envelope(&head).ok_or(End::Malformed)?;
    let limit = match kind {
        Delivery::Datagram => config.max_datagram,
        Delivery::Stream => config.max_stream_message,
    };
    if len > limit {
        return Err(End::OverLimit);
    }
    // With a frame configuration, read the frame header of a reliable message first and
    // check it before anything of the body.
    let mut frame_head = [0u8; FRAME_HEAD_MAX];
    let codec = shared
        .codec
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let checked = match (&codec, kind) {
        (Some(codec), Delivery::Stream) => {
            let seen = read_frame_head(
                codec,
                stream,
                &mut frame_head[..len.min(FRAME_HEAD_MAX)],
                deadline,
            )
            .await?;
            check_frame_head(codec, &frame_head[..seen], len)?;
            &frame_head[..seen]
        }
        _ => &[],
    };
    // Memory grows with the bytes that actually arrive, from a small start, so a peer that
    // announces a large message and sends nothing costs almost nothing.
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    buf.extend_from_slice(checked);
    let rest = len - checked.len();
    let mut body = (&mut *stream).take(rest as u64);
    match timeout_at(deadline, body.read_to_end(&mut buf)).await {
        Err(_) => Err(End::Timeout),
        Ok(Err(_)) => Err(End::Io),
        Ok(Ok(read)) if read < rest => Err(End::Io),
        Ok(Ok(_)) => Ok((kind, Bytes::from(buf))),
    }
}

/// Reads the first bytes of a reliable message into `head` (as long as the longest header, or
/// the whole message if shorter) only until the frame header and its length field are in, or
/// the header is found wrong: returns how many bytes were read. Never waits for bytes past the
/// header, so a sender that stops after a bad header is dropped at once.
async fn read_frame_head<R: AsyncRead + Unpin>(
    codec: &FrameCodec,
    reader: &mut R,
    head: &mut [u8],
    deadline: Instant,
) -> Result<usize, End> {
    let mut seen = 0;
    while seen < head.len() {
        match timeout_at(deadline, reader.read(&mut head[seen..])).await {
            Err(_) => return Err(End::Timeout),
            Ok(Err(_) | Ok(0)) => return Err(End::Io),
            Ok(Ok(n)) => seen += n,
        }
        if !matches!(codec.stream_frame_len(&head[..seen]), Ok(None)) {
            break;
        }
    }
    Ok(seen)
}

/// Checks the first bytes of a reliable message of `len` bytes (`seen` holds them all if the
/// message is shorter than the longest header) as the header of a stream frame.
fn check_frame_head(codec: &FrameCodec, seen: &[u8], len: usize) -> Result<(), End> {
    match codec.stream_frame_len(seen) {
        Ok(Some(declared)) if declared == len => Ok(()),
        // The frame says another length than the envelope, or the message is shorter than
        // its own header.
        Ok(_) => Err(End::Malformed),
        Err(e) => Err(match e.kind {
            FrameErrorKind::LabelMismatch | FrameErrorKind::MissingLabel => End::Label,
            FrameErrorKind::OverLimit { .. } => End::OverLimit,
            _ => End::Malformed,
        }),
    }
}

async fn read_exact_by<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), End> {
    match timeout_at(deadline, reader.read_exact(buf)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(End::Io),
        Err(_) => Err(End::Timeout),
    }
}
