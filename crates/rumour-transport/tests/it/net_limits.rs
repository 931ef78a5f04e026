//! Limits on everything read from the wire: lengths checked before memory is reserved, read
//! deadlines, concurrent inbound streams, the receive queue. Each rejection is counted.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use rumour_transport::{NetConfig, Transport, TransportError};
use tokio::io::AsyncWriteExt;
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
async fn streams_past_the_concurrency_limit_wait_and_past_the_waiting_places_are_refused() {
    let mut c = config();
    c.max_inbound_streams = 2;
    let b = bind(c).await;
    let first = TcpStream::connect(b.local_addr()).await.unwrap();
    let _second = TcpStream::connect(b.local_addr()).await.unwrap();
    until(&b, "two accepted", |s| s.connections_accepted == 2).await;
    // Neither has delivered a message (so neither is idle): two more wait for a place...
    let mut third = TcpStream::connect(b.local_addr()).await.unwrap();
    let _fourth = TcpStream::connect(b.local_addr()).await.unwrap();
    until(&b, "two waiting", |s| s.streams_waited == 2).await;
    // ...and the fifth finds no place to wait in: refused at once.
    let mut fifth = TcpStream::connect(b.local_addr()).await.unwrap();
    closed_by_server(&mut fifth).await;
    assert_eq!(b.stats().streams_refused, 1);

    // Closing one gives its place to a waiting connection, which is then read.
    drop(first);
    until(&b, "a waiting one accepted", |s| {
        s.connections_accepted == 3
    })
    .await;
    let mut msg = preamble_v4(addr("127.0.0.1:1"));
    msg.extend(envelope(1, 2));
    msg.extend(b"ok");
    third.write_all(&msg).await.unwrap();
    let got = recv(&b).await;
    assert_eq!(&got.bytes[..], b"ok");
    assert_eq!(b.stats().streams_refused, 1);
}

#[tokio::test]
async fn a_new_connection_past_the_limit_takes_the_place_of_an_idle_one() {
    let mut c = config();
    c.max_inbound_streams = 1;
    let b = bind(c).await;
    // A sender's cached connection: idle once its message is read.
    let a = bind_local().await;
    a.send_reliable(b.local_addr(), Bytes::from_static(b"cached"))
        .await
        .unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"cached");
    // A new connection is not refused: the idle one is closed for it.
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut msg = preamble_v4(addr("127.0.0.1:1"));
    msg.extend(envelope(1, 3));
    msg.extend(b"new");
    raw.write_all(&msg).await.unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"new");
    let stats = b.stats();
    assert_eq!((stats.streams_evicted, stats.streams_refused), (1, 0));
    assert_eq!(
        stats.dropped_total(),
        0,
        "closing an idle connection loses nothing"
    );
    // The first sender notices its connection closed and opens another, which in turn takes
    // the place of the now idle raw connection.
    a.send_reliable(b.local_addr(), Bytes::from_static(b"again"))
        .await
        .unwrap();
    assert_eq!(&recv(&b).await.bytes[..], b"again");
    closed_by_server(&mut raw).await;
    assert_eq!(b.stats().streams_evicted, 2);
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
