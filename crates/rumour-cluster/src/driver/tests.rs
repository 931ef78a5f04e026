//! The driver on real sockets (127.0.0.1) against a hostile sender, and its bounded send side.
//! Every wait polls under a generous deadline; no sleep is an assertion.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rumour_transport::frame::{FLAG_LABEL, FLAG_STREAM, FrameCodec, FrameConfig};
use rumour_transport::{Cidr, Incoming, Stats, Transport, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, sleep};

use super::outbound::{Counters, MAX_PEERS, Outbound, QUEUE_BYTES};
use super::{Cluster, ClusterStats};
use crate::transmit::{Delivery, Transmit};
use crate::{Error, Profile};

const DEADLINE: Duration = Duration::from_secs(15);

/// Polls the node's counters until `done` holds, failing with `what` after [`DEADLINE`].
async fn until_stats(
    node: &Cluster,
    what: &str,
    done: impl Fn(&ClusterStats) -> bool,
) -> ClusterStats {
    eventually(what, || async {
        let stats = node.stats().await?;
        Ok(done(&stats).then_some(stats))
    })
    .await
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(done) = check().await.expect("node running") {
            return done;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

async fn node(name: &str, configure: impl FnOnce(super::Builder) -> super::Builder) -> Cluster {
    let builder = Cluster::builder(name)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .profile(Profile::Local);
    configure(builder).build().await.expect("node starts")
}

/// Waits until the server closes `stream`.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
        .await
        .expect("server closed the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "server sent data: {read:?}");
}

#[tokio::test]
async fn a_datagram_with_more_messages_than_the_cap_is_dropped_whole() {
    let a = node("a", |b| b).await;
    let codec = FrameCodec::new(FrameConfig::default());
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let many: Vec<&[u8]> = vec![b"x"; 256];
    raw.send_to(&codec.encode_packet(&many), a.addr())
        .await
        .unwrap();
    let stats = until_stats(&a, "the over-limit drop", |s| {
        s.frame.dropped_over_limit == 1
    })
    .await;
    assert_eq!(stats.frame.messages_decoded, 0);
    a.shutdown().await;
}

#[tokio::test]
async fn a_source_outside_the_allowed_networks_is_refused_through_the_builder() {
    let only: Cidr = "10.0.0.0/8".parse().unwrap();
    let a = node("a", |b| b.allowed_cidrs([only])).await;
    let codec = FrameCodec::new(FrameConfig::default());
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    raw.send_to(&codec.encode_packet(&[b"x"]), a.addr())
        .await
        .unwrap();
    let mut stream = TcpStream::connect(a.addr()).await.unwrap();
    closed_by_server(&mut stream).await;
    let stats = until_stats(&a, "two refusals", |s| s.transport.refused_source == 2).await;
    assert_eq!(stats.transport.datagrams_in, 0);
    assert_eq!(
        stats.frame.dropped_total(),
        0,
        "nothing reached the decoder"
    );
    a.shutdown().await;
}

#[tokio::test]
async fn a_stream_with_a_foreign_label_is_dropped_before_its_body_by_a_labelled_node() {
    let a = node("a", |b| b.label("prod")).await;
    let mut raw = TcpStream::connect(a.addr()).await.unwrap();
    let mut msg = b"RUC\x01\x04\x7f\x00\x00\x01\x00\x01".to_vec(); // preamble: 127.0.0.1:1
    let body: u32 = 30 << 20;
    let mut head = vec![b'R', b'U', 1, FLAG_STREAM | FLAG_LABEL, 7];
    head.extend_from_slice(b"staging");
    head.extend_from_slice(&body.to_be_bytes());
    let total = head.len() as u32 + 4 + body;
    msg.push(1);
    msg.extend_from_slice(&total.to_be_bytes());
    msg.extend_from_slice(&head);
    raw.write_all(&msg).await.unwrap();
    closed_by_server(&mut raw).await;
    let stats = until_stats(&a, "the label drop", |s| s.transport.dropped_label == 1).await;
    assert_eq!(stats.transport.bytes_in, 0);
    a.shutdown().await;
}

#[tokio::test]
async fn a_labelled_cluster_still_exchanges_state_over_streams() {
    let a = node("a", |b| b.label("prod").ring_instance(true)).await;
    let b = node("b", |b| b.label("prod").join([a.addr()])).await;
    eventually("b learns a's ring", || async {
        Ok(b.ring().await?.and_then(|r| r.instance("a").map(drop)))
    })
    .await;
    // The join's state exchange went over a stream, through the header check.
    let streams = |s: &ClusterStats| s.transport.reliable_in;
    let (sa, sb) = (a.stats().await.unwrap(), b.stats().await.unwrap());
    assert!(streams(&sa) + streams(&sb) > 0, "{sa:?} {sb:?}");
    assert_eq!(
        sa.transport.dropped_total() + sb.transport.dropped_total(),
        0
    );
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn status_copies_are_shared_while_young() {
    let a = node("a", |b| b.ring_instance(true)).await;
    let first = a.status().await.unwrap();
    let second = a.status().await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second)
            || second.taken.duration_since(first.taken) >= super::snapshot::STATUS_MAX_AGE
    );
    assert_eq!(first.name, "a");
    assert!(first.members.iter().any(|m| m.local && m.name == "a"));
    a.shutdown().await;
}

/// A transport whose reliable sends never complete and that receives nothing.
#[derive(Debug)]
struct Stuck;

type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// `Transport` is an `async_trait`: its async methods are written out by hand here.
impl Transport for Stuck {
    fn local_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }
    fn advertise_addr(&self) -> SocketAddr {
        self.local_addr()
    }
    fn send_datagram<'a, 'b>(
        &'a self,
        _: SocketAddr,
        _: Bytes,
    ) -> Pending<'b, Result<(), TransportError>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(std::future::pending())
    }
    fn send_reliable<'a, 'b>(
        &'a self,
        _: SocketAddr,
        _: Bytes,
    ) -> Pending<'b, Result<(), TransportError>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(std::future::pending())
    }
    fn recv<'a, 'b>(&'a self) -> Pending<'b, Result<Incoming, TransportError>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(std::future::pending())
    }
    fn shutdown<'a, 'b>(&'a self) -> Pending<'b, ()>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async {})
    }
    fn stats(&self) -> Stats {
        Stats::default()
    }
}

fn stream_to(port: u32, len: usize) -> Transmit {
    Transmit {
        to: SocketAddr::from((
            [10, (port >> 16) as u8, (port >> 8) as u8, port as u8],
            7946,
        )),
        delivery: Delivery::Stream,
        bytes: Bytes::from(vec![0; len]),
    }
}

#[tokio::test]
async fn the_peer_table_is_bounded_by_count() {
    let counters = Arc::new(Counters::default());
    let mut out = Outbound::new(Arc::new(Stuck), counters.clone());
    for peer in 0..(MAX_PEERS as u32 + 10) {
        out.send(stream_to(peer, 1));
    }
    let stats = counters.snapshot();
    assert_eq!(stats.sends_dropped_peers, 10);
    assert_eq!(stats.sends_dropped, 10);
    // A peer already in the table still gets its messages queued.
    out.send(stream_to(0, 1));
    assert_eq!(counters.sends_dropped.load(Ordering::Relaxed), 10);
}

#[tokio::test]
async fn the_send_queues_are_bounded_by_bytes() {
    let counters = Arc::new(Counters::default());
    let mut out = Outbound::new(Arc::new(Stuck), counters.clone());
    let chunk = QUEUE_BYTES / 4;
    for peer in 0..6 {
        out.send(stream_to(peer, chunk));
    }
    let stats = counters.snapshot();
    assert_eq!((stats.sends_dropped_bytes, stats.sends_dropped), (2, 2));
    // Small messages are refused too while the budget is spent.
    out.send(stream_to(9, 1));
    assert_eq!(counters.snapshot().sends_dropped_bytes, 3);
}

/// The memberlist wire mode on real sockets, without Go: two rumour nodes speaking memberlist's
/// protocol (AES-GCM, LZW) join each other over loopback, see each other alive, and exchange a
/// reliable user message (a stream with no reply) and a push/pull (a stream answered on its
/// connection).
#[tokio::test]
async fn two_nodes_in_memberlist_mode_join_each_other_encrypted() {
    let wire = || {
        crate::Wire::Memberlist(
            crate::MemberlistOptions::new()
                .with_compression(true)
                .with_key(&[3; 32])
                .unwrap(),
        )
    };
    let a = node("a", |b| b.wire(wire())).await;
    let b = node("b", |b| b.wire(wire()).join([a.addr()])).await;
    for n in [&a, &b] {
        eventually("both see both alive", || async {
            Ok((n.num_alive().await? == 2).then_some(()))
        })
        .await;
    }
    let mut received = a.user_messages();
    eventually("b confirmed a", || async {
        Ok(b.send_reliable("a", Bytes::from_static(b"over memberlist"))
            .await
            .ok())
    })
    .await;
    let message = tokio::time::timeout(DEADLINE, received.recv())
        .await
        .expect("in time")
        .expect("a message");
    assert_eq!(&message.bytes[..], b"over memberlist");
    // Probes go over memberlist's packets (the join was a push/pull on one connection).
    let stats = eventually("b received packets", || async {
        let stats = b.with_node(|node, _| node.memberlist_stats()).await?;
        Ok(stats.filter(|s| s.packets_received > 0))
    })
    .await;
    assert_eq!(stats.decode_errors, 0);
    assert!(stats.streams_received > 0, "the join's reply: {stats:?}");
    a.shutdown().await;
    b.shutdown().await;
}

/// A node task over an in-memory network, and a raw endpoint beside it.
fn task_with_raw_peer() -> (super::task::Task, rumour_transport::MemTransport) {
    use rand::SeedableRng;
    let network = rumour_transport::MemNetwork::new(rumour_transport::MemConfig::new(1));
    let transport = network
        .bind(SocketAddr::from(([10, 0, 0, 1], 7946)))
        .expect("bind");
    let raw = network
        .bind(SocketAddr::from(([10, 0, 0, 2], 7946)))
        .expect("bind");
    let config = crate::NodeConfig::new("node", transport.local_addr(), Profile::Local);
    let node = crate::Node::new(
        config,
        rand_chacha::ChaCha8Rng::seed_from_u64(1),
        std::time::Instant::now(),
    )
    .expect("valid config");
    let (_commands_tx, commands) = tokio::sync::mpsc::channel(1);
    let task = super::task::Task {
        node,
        transport: Arc::new(transport),
        commands,
        events: tokio::sync::broadcast::channel(16).0,
        counters: Arc::new(Counters::default()),
        ready: tokio::sync::watch::channel(false).0,
        joined: false,
    };
    (task, raw)
}

#[tokio::test]
async fn messages_already_received_reach_the_node_before_a_timer_but_only_so_many() {
    let (mut task, raw) = task_with_raw_peer();
    let to = task.transport.local_addr();
    // Not frames of this cluster: each one the node is handed counts as a dropped frame.
    for _ in 0..100 {
        raw.send_datagram(to, Bytes::from_static(b"not a frame"))
            .await
            .unwrap();
    }
    let now = std::time::Instant::now();
    assert!(task.drain_received(now).await, "the transport is open");
    assert_eq!(
        task.node.stats().frames_dropped,
        super::task::BEFORE_TIMER as u64
    );
    assert!(task.drain_received(now).await);
    assert_eq!(task.node.stats().frames_dropped, 100);
    // Nothing waits: the drain returns at once.
    assert!(task.drain_received(now).await);
    assert_eq!(task.node.stats().frames_dropped, 100);
    task.transport.shutdown().await;
    assert!(
        !task.drain_received(now).await,
        "a shut transport ends the task"
    );
}
