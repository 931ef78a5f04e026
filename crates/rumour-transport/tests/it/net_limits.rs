//! Limits on everything read from the wire: lengths checked before memory is reserved, read
//! deadlines, concurrent inbound streams, the receive queue. Each rejection is counted.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use rumour_transport::{NetConfig, Transport, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn config() -> NetConfig {
    NetConfig::new(addr("127.0.0.1:0"))
}

#[tokio::test]
async fn an_oversized_stream_length_is_rejected_before_the_body_arrives() {
    let mut c = config();
    c.max_stream_message = 1 << 20;
    c.read_deadline = Duration::from_secs(60); // rejection must not wait for the body
    let b = bind(c).await;
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut head = preamble_v4(addr("127.0.0.1:1"));
    head.extend(envelope(1, u32::MAX));
    raw.write_all(&head).await.unwrap();
    closed_by_server(&mut raw).await;
    let stats = until(&b, "over-limit drop", |s| s.dropped_over_limit == 1).await;
    assert_eq!(stats.reliable_in, 0);
}

#[tokio::test]
async fn a_datagram_over_tcp_is_held_to_the_datagram_limit() {
    let mut c = config();
    c.max_datagram = 100;
    let b = bind(c).await;
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.1:1"));
    msg.extend(envelope(0, 100));
    msg.extend([7u8; 100]);
    msg.extend(envelope(0, 101));
    raw.write_all(&msg).await.unwrap();
    assert_eq!(recv(&b).await.bytes.len(), 100);
    closed_by_server(&mut raw).await;
    until(&b, "over-limit drop", |s| s.dropped_over_limit == 1).await;
}

#[tokio::test]
async fn an_oversized_udp_datagram_is_dropped_and_counted() {
    let mut c = config();
    c.max_datagram = 100;
    let b = bind(c).await;
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    raw.send_to(&[1u8; 101], b.local_addr()).await.unwrap();
    raw.send_to(&[2u8; 100], b.local_addr()).await.unwrap();
    assert_eq!(recv(&b).await.bytes, Bytes::from(vec![2u8; 100]));
    let stats = until(&b, "over-limit drop", |s| s.dropped_over_limit == 1).await;
    assert_eq!(stats.datagrams_in, 1);
}

#[tokio::test]
async fn sending_over_a_limit_is_refused_with_a_typed_error() {
    let mut c = config();
    c.max_datagram = 10;
    c.max_stream_message = 20;
    let a = bind(c).await;
    let to = addr("127.0.0.1:9");
    let err = a
        .send_datagram(to, Bytes::from(vec![0; 11]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::OverLimit {
                what: "datagram",
                len: 11,
                limit: 10
            }
        ),
        "{err}"
    );
    let err = a
        .send_reliable(to, Bytes::from(vec![0; 21]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::OverLimit {
                len: 21,
                limit: 20,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(a.stats().send_errors, 2);
}

#[tokio::test]
async fn streams_past_the_concurrency_limit_are_refused_and_counted() {
    let mut c = config();
    c.max_inbound_streams = 2;
    let b = bind(c).await;
    let first = TcpStream::connect(b.local_addr()).await.unwrap();
    let _second = TcpStream::connect(b.local_addr()).await.unwrap();
    until(&b, "two accepted", |s| s.connections_accepted == 2).await;
    let mut third = TcpStream::connect(b.local_addr()).await.unwrap();
    closed_by_server(&mut third).await;
    assert_eq!(b.stats().streams_refused, 1);

    // Closing one frees its place for the next (once the server has seen it close).
    drop(first);
    let retry = async {
        loop {
            let mut stream = TcpStream::connect(b.local_addr()).await.unwrap();
            let mut msg = preamble_v4(addr("127.0.0.1:1"));
            msg.extend(envelope(1, 2));
            msg.extend(b"ok");
            stream.write_all(&msg).await.unwrap();
            let mut buf = [0u8; 1];
            tokio::select! {
                got = b.recv() => break got.unwrap(),
                _ = stream.read(&mut buf) => {} // refused: the server had not freed the place yet
            }
        }
    };
    let got = tokio::time::timeout(WAIT, retry)
        .await
        .expect("a place was freed");
    assert_eq!(&got.bytes[..], b"ok");
    assert_eq!(b.stats().connections_accepted, 3);
}

#[tokio::test]
async fn a_message_that_stalls_is_dropped_at_the_read_deadline() {
    let mut c = config();
    c.read_deadline = Duration::from_millis(200);
    let b = bind(c).await;
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.1:1"));
    msg.extend(envelope(1, 10));
    msg.extend(b"abc");
    raw.write_all(&msg).await.unwrap();
    closed_by_server(&mut raw).await;
    let stats = until(&b, "timeout drop", |s| s.dropped_timeout == 1).await;
    assert_eq!(stats.reliable_in, 0);
}

#[tokio::test]
async fn a_connection_that_closes_mid_message_is_counted() {
    let b = bind(config()).await;
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.1:1"));
    msg.extend(envelope(1, 10));
    msg.extend(b"abc");
    raw.write_all(&msg).await.unwrap();
    drop(raw);
    until(&b, "io drop", |s| s.dropped_io == 1).await;
}

#[tokio::test]
async fn a_connection_that_is_not_rumour_is_closed_and_counted() {
    let b = bind(config()).await;
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    closed_by_server(&mut raw).await;
    until(&b, "malformed drop", |s| s.dropped_malformed == 1).await;

    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.1:1"));
    msg.extend([9, 0, 0, 0, 1]); // unknown envelope kind
    raw.write_all(&msg).await.unwrap();
    closed_by_server(&mut raw).await;
    until(&b, "malformed drop", |s| s.dropped_malformed == 2).await;
}

#[tokio::test]
async fn a_full_receive_queue_drops_and_counts_instead_of_blocking() {
    let mut c = config();
    c.recv_queue = 1;
    let b = bind(c).await;
    let a = bind_local().await;
    for i in 0..5u8 {
        a.send_reliable(b.local_addr(), Bytes::from(vec![i]))
            .await
            .unwrap();
    }
    let stats = until(&b, "queue drops", |s| {
        s.reliable_in + s.dropped_queue_full == 5
    })
    .await;
    assert_eq!((stats.reliable_in, stats.dropped_queue_full), (1, 4));
    assert_eq!(&recv(&b).await.bytes[..], &[0]);
    // The reader was never blocked: the next message gets through.
    a.send_reliable(b.local_addr(), Bytes::from_static(b"next"))
        .await
        .unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"next");
}

#[tokio::test]
async fn an_idle_inbound_connection_is_closed_and_its_place_freed() {
    let mut c = config();
    c.inbound_idle_timeout = Duration::from_millis(100);
    c.max_inbound_streams = 1;
    let b = bind(c).await;
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.1:1"));
    msg.extend(envelope(1, 2));
    msg.extend(b"hi");
    raw.write_all(&msg).await.unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"hi");
    closed_by_server(&mut raw).await;
    assert_eq!(
        b.stats().dropped_total(),
        0,
        "closing an idle connection loses nothing"
    );
    // The sender's cached connection is gone; a new one is opened and accepted.
    let a = bind_local().await;
    a.send_reliable(b.local_addr(), Bytes::from_static(b"after idle"))
        .await
        .unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"after idle");
}
