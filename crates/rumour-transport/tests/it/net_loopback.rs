//! Round trips over real loopback sockets, IPv4 and (where the machine has it) IPv6.

use crate::support::*;
use bytes::Bytes;
use rumour_transport::{Delivery, NetConfig, NetTransport, Transport, TransportError, TrySend};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

async fn datagram_round_trip(a: &NetTransport, b: &NetTransport) {
    a.send_datagram(b.local_addr(), Bytes::from_static(b"ping"))
        .await
        .unwrap();
    let got = recv(b).await;
    assert_eq!(
        (got.from, got.delivery, &got.bytes[..]),
        (a.local_addr(), Delivery::Datagram, &b"ping"[..])
    );
}

async fn reliable_round_trip(a: &NetTransport, b: &NetTransport) {
    let big = Bytes::from((0..1_000_000u32).map(|i| i as u8).collect::<Vec<_>>());
    let msgs = [
        Bytes::from_static(b"first"),
        big,
        Bytes::new(),
        Bytes::from_static(b"last"),
    ];
    for msg in &msgs {
        a.send_reliable(b.local_addr(), msg.clone()).await.unwrap();
    }
    for msg in &msgs {
        let got = recv(b).await;
        assert_eq!(
            (got.from, got.delivery),
            (a.advertise_addr(), Delivery::Stream)
        );
        assert_eq!(got.bytes, msg);
    }
    assert_eq!(
        a.stats().connections_opened,
        1,
        "one connection carries all four messages"
    );
}

#[tokio::test]
async fn udp_datagrams_round_trip_over_ipv4_loopback() {
    let (a, b) = (bind_local().await, bind_local().await);
    datagram_round_trip(&a, &b).await;
    datagram_round_trip(&b, &a).await;
    let stats = a.stats();
    assert_eq!(
        (stats.datagrams_out, stats.datagrams_in, stats.bytes_out),
        (1, 1, 4)
    );
}

#[tokio::test]
async fn reliable_messages_round_trip_in_order_over_ipv4_loopback() {
    let (a, b) = (bind_local().await, bind_local().await);
    reliable_round_trip(&a, &b).await;
    assert_eq!(b.stats().reliable_in, 4);
    assert_eq!(b.stats().connections_accepted, 1);
}

#[tokio::test]
async fn datagrams_and_reliable_messages_round_trip_over_ipv6_loopback() {
    let Some(a) = bind_v6(NetConfig::new(addr("[::1]:0"))).await else {
        return;
    };
    let Some(b) = bind_v6(NetConfig::new(addr("[::1]:0"))).await else {
        return;
    };
    assert!(a.local_addr().is_ipv6());
    datagram_round_trip(&a, &b).await;
    reliable_round_trip(&a, &b).await;
    let mut tcp_only = NetConfig::new(addr("[::1]:0"));
    tcp_only.tcp_only = true;
    let Some(c) = bind_v6(tcp_only).await else {
        return;
    };
    c.send_datagram(b.local_addr(), Bytes::from_static(b"v6 over tcp"))
        .await
        .unwrap();
    let got = recv(&b).await;
    assert_eq!(
        (got.from, got.delivery),
        (c.advertise_addr(), Delivery::Datagram)
    );
}

#[tokio::test]
async fn port_zero_binds_udp_and_tcp_on_the_same_free_port() {
    let t = bind_local().await;
    let port = t.local_addr().port();
    assert_ne!(port, 0);
    assert_eq!(t.advertise_addr(), t.local_addr());
    // Both sockets answer on that port.
    TcpStream::connect(t.local_addr())
        .await
        .expect("TCP listener on the same port");
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    raw.send_to(b"raw", t.local_addr()).await.unwrap();
    assert_eq!(recv(&t).await.from, raw.local_addr().unwrap());
}

#[tokio::test]
async fn try_send_datagram_sends_at_once_over_udp_and_gives_back_what_must_wait() {
    let a = bind_local().await;
    let b = bind_local().await;
    // The runtime learns that a new socket is writable from its first wait: until then a try
    // gives the datagram back, and the caller sends it the waiting way.
    datagram_round_trip(&a, &b).await;
    assert!(matches!(
        a.try_send_datagram(b.local_addr(), Bytes::from_static(b"now")),
        TrySend::Sent
    ));
    // Sent and counted before the call returned.
    assert_eq!(a.stats().datagrams_out, 2);
    let got = recv(&b).await;
    assert_eq!((got.from, &got.bytes[..]), (a.local_addr(), &b"now"[..]));

    let huge = Bytes::from(vec![0; a.config().max_datagram + 1]);
    assert!(matches!(
        a.try_send_datagram(b.local_addr(), huge),
        TrySend::Failed(TransportError::OverLimit { .. })
    ));

    // Over TCP a datagram may wait for a connection: it comes back, untouched.
    let mut config = NetConfig::new(addr("127.0.0.1:0"));
    config.tcp_only = true;
    let t = bind(config).await;
    match t.try_send_datagram(b.local_addr(), Bytes::from_static(b"later")) {
        TrySend::WouldBlock(bytes) => assert_eq!(&bytes[..], b"later"),
        other => panic!("a TCP-only datagram was not given back: {other:?}"),
    }
    assert_eq!(t.stats().datagrams_out, 0);

    a.shutdown().await;
    assert!(matches!(
        a.try_send_datagram(b.local_addr(), Bytes::from_static(b"late")),
        TrySend::Failed(TransportError::Shutdown)
    ));
}

#[tokio::test]
async fn datagrams_that_arrive_before_recv_is_called_wait_for_it_in_order() {
    let a = bind_local().await;
    let b = bind_local().await;
    for i in 0..100u8 {
        a.send_datagram(b.local_addr(), Bytes::from(vec![i; 100]))
            .await
            .unwrap();
    }
    for i in 0..100u8 {
        assert_eq!(recv(&b).await.bytes.to_vec(), vec![i; 100]);
    }
    assert_eq!(b.stats().datagrams_in, 100);
}

#[tokio::test]
async fn tcp_only_mode_carries_datagrams_over_tcp() {
    let mut config = NetConfig::new(addr("127.0.0.1:0"));
    config.tcp_only = true;
    let a = bind(config).await;
    let b = bind_local().await;
    for i in 0..20u8 {
        a.send_datagram(b.local_addr(), Bytes::from(vec![i; 3]))
            .await
            .unwrap();
    }
    for i in 0..20u8 {
        let got = recv(&b).await;
        assert_eq!(
            (got.from, got.delivery, got.bytes.to_vec()),
            (a.advertise_addr(), Delivery::Datagram, vec![i; 3])
        );
    }
    let stats = until(&a, "datagrams counted out", |s| s.datagrams_out == 20).await;
    assert_eq!(stats.connections_opened, 1);
    assert_eq!(b.stats().datagrams_in, 20);
}

#[tokio::test]
async fn the_advertised_address_is_reported_and_carried_to_peers() {
    let mut config = NetConfig::new(addr("127.0.0.1:0"));
    config.advertise = Some(addr("127.0.0.9:7946"));
    let a = bind(config).await;
    assert_eq!(a.advertise_addr(), addr("127.0.0.9:7946"));
    assert_ne!(a.local_addr(), a.advertise_addr());
    // a connects from 127.0.0.1 but advertises 127.0.0.9 (as behind a NAT): a receiver
    // verifying stream sources (the default) drops it; one that does not carries it.
    let mut lenient = NetConfig::new(addr("127.0.0.1:0"));
    lenient.verify_stream_source = false;
    let b = bind(lenient).await;
    a.send_reliable(b.local_addr(), Bytes::from_static(b"hi"))
        .await
        .unwrap();
    assert_eq!(recv(&b).await.from, addr("127.0.0.9:7946"));

    let mut config = NetConfig::new(addr("127.0.0.1:0"));
    config.advertise = Some(addr("127.0.0.1:0"));
    let c = bind(config).await;
    assert_eq!(
        c.advertise_addr(),
        c.local_addr(),
        "advertise port 0 means the bound port"
    );
}

#[tokio::test]
async fn an_unspecified_bind_address_needs_an_advertise_address() {
    let err = NetTransport::bind(NetConfig::new(addr("0.0.0.0:0")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Config {
                field: "advertise",
                ..
            }
        ),
        "{err}"
    );
    let mut config = NetConfig::new(addr("127.0.0.1:0"));
    config.max_inbound_streams = 0;
    let err = NetTransport::bind(config).await.unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Config {
                field: "max_inbound_streams",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_restarted_peer_gets_messages_on_a_fresh_connection() {
    let a = bind_local().await;
    let b1 = bind_local().await;
    let b_addr = b1.local_addr();
    a.send_reliable(b_addr, Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert_eq!(&recv(&b1).await.bytes[..], b"one");
    b1.shutdown().await;
    drop(b1);
    let b2 = bind(NetConfig::new(b_addr)).await;
    a.send_reliable(b_addr, Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(&recv(&b2).await.bytes[..], b"two");
    assert_eq!(a.stats().connections_opened, 2);
}

#[tokio::test]
async fn a_reliable_send_to_a_closed_port_fails() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let a = bind_local().await;
    let result =
        tokio::time::timeout(WAIT, a.send_reliable(closed, Bytes::from_static(b"x"))).await;
    let err = result.expect("refused quickly").unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Io {
                op: "connect to",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(a.stats().send_errors, 1);
}

#[tokio::test]
async fn many_concurrent_reliable_sends_all_arrive() {
    let a = std::sync::Arc::new(bind_local().await);
    let b = bind_local().await;
    let to = b.local_addr();
    let sends: Vec<_> = (0..64u32)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                a.send_reliable(to, Bytes::from(i.to_be_bytes().to_vec()))
                    .await
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap().unwrap();
    }
    let mut seen: Vec<u32> = Vec::new();
    for _ in 0..64 {
        seen.push(u32::from_be_bytes(
            recv(&b).await.bytes[..].try_into().unwrap(),
        ));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..64).collect::<Vec<_>>());
}

#[tokio::test]
async fn after_shutdown_recv_and_send_fail_and_the_port_is_free() {
    let a = bind_local().await;
    let port_addr = a.local_addr();
    a.shutdown().await;
    assert!(matches!(a.recv().await, Err(TransportError::Shutdown)));
    let sent = a.send_datagram(port_addr, Bytes::from_static(b"x")).await;
    assert!(matches!(sent, Err(TransportError::Shutdown)));
    a.shutdown().await; // idempotent
    drop(a);
    bind(NetConfig::new(port_addr)).await;
}

#[tokio::test]
async fn a_pending_recv_returns_when_the_transport_shuts_down() {
    let a = std::sync::Arc::new(bind_local().await);
    let waiting = tokio::spawn({
        let a = a.clone();
        async move { a.recv().await }
    });
    tokio::task::yield_now().await;
    a.shutdown().await;
    let result = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("recv returned")
        .unwrap();
    assert!(matches!(result, Err(TransportError::Shutdown)));
}

#[tokio::test]
async fn tcp_only_datagrams_to_a_closed_port_are_counted_as_send_errors() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = NetConfig::new(addr("127.0.0.1:0"));
    config.tcp_only = true;
    let a = bind(config).await;
    for _ in 0..5 {
        // Queued without waiting for the connection attempt.
        a.send_datagram(closed, Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    let stats = until(&a, "five failed sends", |s| s.send_errors == 5).await;
    assert_eq!(stats.datagrams_out, 0);
}

#[tokio::test]
async fn a_node_bound_to_one_ip_of_the_host_connects_from_that_ip() {
    // Two members on two loopback IPs of one host: the sender's connection comes from its own
    // bound IP, so the receiver (checking that the preamble's address is the connection's IP)
    // accepts it.
    let b = bind_local().await;
    let a = bind(NetConfig::new(addr("127.1.0.5:0"))).await;
    assert!(b.config().verify_stream_source);
    a.send_reliable(b.local_addr(), Bytes::from_static(b"from 127.1.0.5"))
        .await
        .unwrap();
    let got = recv(&b).await;
    assert_eq!(got.from, a.advertise_addr());
    assert_eq!(&got.bytes[..], b"from 127.1.0.5");
    assert_eq!(b.stats().dropped_source_mismatch, 0);
}
