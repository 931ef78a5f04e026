//! A hostile peer on loopback: what it can no longer do. Stream frames with a foreign label, an
//! over-limit or inconsistent length are dropped from their header, before the body is read;
//! a connection that sends a preamble and then nothing is closed at the read deadline; one IP
//! cannot hold every connection slot; sources outside the allow-list are refused before
//! anything is read; the receive queue and the send side are bounded in bytes and peers.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use rumour_transport::frame::{FLAG_LABEL, FLAG_STREAM, FrameCodec, FrameConfig};
use rumour_transport::{Cidr, Label, NetConfig, Transport, TransportError};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

fn config() -> NetConfig {
    NetConfig::new(addr("127.0.0.1:0"))
}

fn prod() -> FrameConfig {
    FrameConfig::default().with_label(Label::new("prod").unwrap())
}

/// The header of a stream frame labelled `label` that declares a message of `len` bytes.
fn stream_head(label: &str, len: u32) -> Vec<u8> {
    let mut head = vec![b'R', b'U', 1, FLAG_STREAM | FLAG_LABEL, label.len() as u8];
    head.extend_from_slice(label.as_bytes());
    head.extend_from_slice(&len.to_be_bytes());
    head
}

/// Connects, writes a preamble, an envelope for a reliable message of `envelope_len` bytes and
/// `first` (its first bytes), and nothing more.
async fn start_message(to: std::net::SocketAddr, envelope_len: u32, first: &[u8]) -> TcpStream {
    let mut raw = TcpStream::connect(to).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.1:1"));
    msg.extend(envelope(1, envelope_len));
    msg.extend_from_slice(first);
    raw.write_all(&msg).await.unwrap();
    raw
}

#[tokio::test]
async fn a_stream_with_a_foreign_label_is_dropped_before_its_body_is_read() {
    let mut c = config().with_frame(prod());
    c.read_deadline = Duration::from_secs(60); // the drop must not wait for the body
    let b = bind(c).await;
    // 20 MiB announced, within every length limit; only the header is ever sent.
    let body = 20 << 20;
    let head = stream_head("staging", body);
    let mut raw = start_message(b.local_addr(), head.len() as u32 + 4 + body, &head).await;
    closed_by_server(&mut raw).await;
    let stats = until(&b, "label drop", |s| s.dropped_label == 1).await;
    assert_eq!((stats.reliable_in, stats.bytes_in), (0, 0));

    // A frame without a label, when ours has one, too.
    let bare = [b'R', b'U', 1, FLAG_STREAM, 0, 0, 0, 9];
    let mut raw = start_message(b.local_addr(), 8 + 4 + 9, &bare).await;
    closed_by_server(&mut raw).await;
    until(&b, "missing label drop", |s| s.dropped_label == 2).await;
}

#[tokio::test]
async fn a_stream_whose_frame_declares_too_much_or_another_length_is_dropped_from_its_header() {
    let mut c = config().with_frame(prod().with_max_message(1 << 20));
    c.read_deadline = Duration::from_secs(60);
    let b = bind(c).await;
    // Within the transport's 32 MiB, over the frame's 1 MiB.
    let head = stream_head("prod", 2 << 20);
    let mut raw = start_message(b.local_addr(), head.len() as u32 + 4 + (2 << 20), &head).await;
    closed_by_server(&mut raw).await;
    until(&b, "over-limit drop", |s| s.dropped_over_limit == 1).await;

    // The frame says 100 bytes, the envelope a megabyte.
    let head = stream_head("prod", 100);
    let mut raw = start_message(b.local_addr(), 1 << 20, &head).await;
    closed_by_server(&mut raw).await;
    let stats = until(&b, "malformed drop", |s| s.dropped_malformed == 1).await;
    assert_eq!(stats.reliable_in, 0);
}

#[tokio::test]
async fn frames_of_our_cluster_still_get_through_the_header_check() {
    let b = bind(config().with_frame(prod())).await;
    let a = bind_local().await;
    let codec = FrameCodec::new(prod());
    for len in [0, 1, 300, 100_000] {
        let frame = codec.encode_stream(&vec![7; len]).unwrap();
        a.send_reliable(b.local_addr(), frame.into()).await.unwrap();
        let got = recv(&b).await;
        assert_eq!(codec.decode_stream(&got.bytes).unwrap().len(), len);
    }
    // A frame shorter than the longest header is read whole and checked.
    let mut raw = start_message(b.local_addr(), 3, b"RU\x01").await;
    closed_by_server(&mut raw).await;
    until(&b, "short frame", |s| s.dropped_malformed == 1).await;
    assert_eq!(b.stats().reliable_in, 4);
}

#[tokio::test]
async fn a_connection_that_sends_a_preamble_and_then_nothing_is_closed_at_the_read_deadline() {
    let mut c = config();
    c.read_deadline = Duration::from_millis(300);
    c.inbound_idle_timeout = Duration::from_secs(3600);
    c.max_inbound_streams = 1;
    let b = bind(c).await;
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    raw.write_all(&preamble_v4(addr("127.0.0.1:1")))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    closed_by_server(&mut raw).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "held for {:?}",
        started.elapsed()
    );
    until(&b, "timeout drop", |s| s.dropped_timeout == 1).await;
    // Its slot is free again for a real sender.
    let a = bind_local().await;
    a.send_reliable(b.local_addr(), Bytes::from_static(b"real"))
        .await
        .unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"real");
}

#[tokio::test]
async fn one_ip_cannot_hold_more_than_its_share_of_connections() {
    let mut c = config();
    c.max_streams_per_ip = 2;
    let b = bind(c).await;
    let first = TcpStream::connect(b.local_addr()).await.unwrap();
    let _second = TcpStream::connect(b.local_addr()).await.unwrap();
    until(&b, "two accepted", |s| s.connections_accepted == 2).await;
    // Two more may wait for a place (none of the open ones is idle), no more.
    let _third = TcpStream::connect(b.local_addr()).await.unwrap();
    let _fourth = TcpStream::connect(b.local_addr()).await.unwrap();
    until(&b, "two waiting", |s| s.streams_waited == 2).await;
    let mut fifth = TcpStream::connect(b.local_addr()).await.unwrap();
    closed_by_server(&mut fifth).await;
    let stats = until(&b, "per-IP refusal", |s| s.streams_refused_per_ip == 1).await;
    assert_eq!(stats.streams_refused, 0, "the global limit was not reached");

    // Once one closes, a waiting connection from that IP takes its place.
    drop(first);
    until(&b, "a waiting one accepted", |s| {
        s.connections_accepted == 3
    })
    .await;
}

#[tokio::test]
async fn sources_outside_the_allow_list_are_refused_before_anything_is_read() {
    let only: Cidr = "10.0.0.0/8".parse().unwrap();
    let b = bind(config().with_allowed_cidrs([only])).await;
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    raw.send_to(b"anything", b.local_addr()).await.unwrap();
    // Datagrams are read by `recv`: it runs while the counter is watched, and must not
    // deliver the refused one.
    tokio::select! {
        incoming = b.recv() => panic!("a refused datagram was delivered: {incoming:?}"),
        _ = until(&b, "datagram refused", |s| s.refused_source == 1) => {}
    }
    let mut stream = TcpStream::connect(b.local_addr()).await.unwrap();
    closed_by_server(&mut stream).await;
    let stats = until(&b, "stream refused", |s| s.refused_source == 2).await;
    assert_eq!(
        (
            stats.datagrams_in,
            stats.connections_accepted,
            stats.bytes_in
        ),
        (0, 0, 0)
    );

    // Loopback allowed: the same traffic gets through.
    let lo: Cidr = "127.0.0.0/8".parse().unwrap();
    let b = bind(config().with_allowed_cidrs([only, lo])).await;
    raw.send_to(b"hello", b.local_addr()).await.unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"hello");
    assert_eq!(b.stats().refused_source, 0);
}

#[tokio::test]
async fn the_receive_queue_is_bounded_in_bytes() {
    // The queue holds reliable messages (datagrams wait in the socket's own buffer).
    let mut c = config();
    c.recv_queue_bytes = 100;
    let b = bind(c).await;
    let a = bind(config()).await;
    for fill in 0..3u8 {
        a.send_reliable(b.local_addr(), Bytes::from(vec![fill; 60]))
            .await
            .unwrap();
    }
    let stats = until(&b, "byte drops", |s| {
        s.reliable_in + s.dropped_queue_bytes == 3
    })
    .await;
    assert_eq!((stats.reliable_in, stats.dropped_queue_bytes), (1, 2));
    assert_eq!(recv(&b).await.bytes[0], 0);
    // Taking the message gave its bytes back.
    a.send_reliable(b.local_addr(), Bytes::from(vec![9; 60]))
        .await
        .unwrap();
    assert_eq!(recv(&b).await.bytes[0], 9);
}

#[tokio::test]
async fn the_outbound_peer_table_is_bounded() {
    let mut c = config();
    c.tcp_only = true;
    c.max_outbound_peers = 1;
    c.idle_timeout = Duration::from_secs(60);
    let a = bind(c).await;
    let b = bind_local().await;
    let d = bind_local().await;
    a.send_datagram(b.local_addr(), Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"one");
    let err = a
        .send_datagram(d.local_addr(), Bytes::from_static(b"two"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::PeerLimit { .. }), "{err}");
    assert_eq!(a.stats().sends_refused_peers, 1);
    // The peer already in the table is still served.
    a.send_datagram(b.local_addr(), Bytes::from_static(b"three"))
        .await
        .unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"three");
}

#[tokio::test]
async fn the_send_queues_are_bounded_in_bytes() {
    let mut c = config();
    c.send_queue_bytes = 1 << 20;
    c.stream_timeout = Duration::from_secs(60);
    let a = std::sync::Arc::new(bind(c).await);
    // A peer that accepts connections and never reads: a large message to it stays queued.
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stuck = sink.local_addr().unwrap();
    let big = a.clone();
    let _writing = tokio::spawn(async move {
        big.send_reliable(stuck, Bytes::from(vec![0; 32 << 20]))
            .await
    });
    // Once it is being written, it holds the whole byte budget.
    until(&*a, "the big message connected", |s| {
        s.connections_opened == 1
    })
    .await;
    let other = bind_local().await;
    let err = a
        .send_reliable(other.local_addr(), Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::QueueFull { .. }), "{err}");
    let stats = a.stats();
    assert_eq!((stats.sends_refused_bytes, stats.reliable_out), (1, 0));
    drop(sink);
}

#[tokio::test]
async fn a_stream_that_advertises_another_ip_is_dropped_before_its_messages_are_read() {
    let b = bind(config()).await;
    // Connects from 127.0.0.1 but names 127.0.0.2: replies would go to a third party.
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.2:7946"));
    msg.extend(envelope(1, 4));
    msg.extend_from_slice(b"ping");
    raw.write_all(&msg).await.unwrap();
    closed_by_server(&mut raw).await;
    until(&b, "source mismatch", |s| s.dropped_source_mismatch == 1).await;
    assert_eq!(b.stats().reliable_in, 0);
    // The same from the IP it advertises gets through.
    let mut honest = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.1:7946"));
    msg.extend(envelope(1, 4));
    msg.extend_from_slice(b"ping");
    honest.write_all(&msg).await.unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"ping");
}
