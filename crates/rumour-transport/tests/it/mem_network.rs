//! The in-memory network: delivery, seeded loss, delay, duplication, partitions.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rumour_transport::{
    Delivery, Incoming, MemConfig, MemNetwork, MemTransport, Transport, TransportError,
};

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

fn pair(config: MemConfig) -> (MemNetwork, MemTransport, MemTransport) {
    let net = MemNetwork::new(config);
    let a = net.bind(addr(1)).unwrap();
    let b = net.bind(addr(2)).unwrap();
    (net, a, b)
}

/// Everything that arrives within `window` of virtual time.
async fn drain(t: &MemTransport, window: Duration) -> Vec<Incoming> {
    let mut got = Vec::new();
    while let Ok(incoming) = tokio::time::timeout(window, t.recv()).await {
        got.push(incoming.unwrap());
    }
    got
}

fn byte(i: usize) -> Bytes {
    Bytes::from(vec![i as u8])
}

#[tokio::test(start_paused = true)]
async fn datagrams_and_reliable_messages_are_delivered_with_the_sender_address() {
    let (_net, a, b) = pair(MemConfig::new(1));
    a.send_datagram(b.local_addr(), Bytes::from_static(b"d"))
        .await
        .unwrap();
    a.send_reliable(b.local_addr(), Bytes::from_static(b"r"))
        .await
        .unwrap();
    let got = drain(&b, Duration::from_millis(10)).await;
    let got: Vec<_> = got
        .iter()
        .map(|i| (i.from, i.delivery, &i.bytes[..]))
        .collect();
    assert_eq!(
        got,
        [
            (addr(1), Delivery::Datagram, &b"d"[..]),
            (addr(1), Delivery::Stream, &b"r"[..])
        ]
    );
    assert_eq!((a.stats().datagrams_out, a.stats().reliable_out), (1, 1));
    assert_eq!(
        (
            b.stats().datagrams_in,
            b.stats().reliable_in,
            b.stats().bytes_in
        ),
        (1, 1, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn total_loss_drops_every_datagram_but_no_reliable_message() {
    let (_net, a, b) = pair(MemConfig::new(2).with_loss(1.0));
    for i in 0..10 {
        a.send_datagram(b.local_addr(), byte(i)).await.unwrap();
        a.send_reliable(b.local_addr(), byte(i)).await.unwrap();
    }
    let got = drain(&b, Duration::from_millis(10)).await;
    assert!(got.iter().all(|i| i.delivery == Delivery::Stream));
    assert_eq!(got.len(), 10);
    assert_eq!(a.stats().dropped_loss, 10);
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_loses_the_same_datagrams() {
    async fn survivors(seed: u64) -> Vec<u8> {
        let (_net, a, b) = pair(MemConfig::new(seed).with_loss(0.5));
        for i in 0..64 {
            a.send_datagram(b.local_addr(), byte(i)).await.unwrap();
        }
        drain(&b, Duration::from_millis(10))
            .await
            .iter()
            .map(|i| i.bytes[0])
            .collect()
    }
    let first = survivors(42).await;
    assert_eq!(first, survivors(42).await);
    assert_ne!(first, survivors(43).await);
    assert!(
        (10..54).contains(&first.len()),
        "about half survive: {}",
        first.len()
    );
}

#[tokio::test(start_paused = true)]
async fn messages_wait_out_their_delay() {
    let delay = Duration::from_millis(100);
    let (_net, a, b) = pair(MemConfig::new(3).with_delay(delay, delay));
    let sent = tokio::time::Instant::now();
    a.send_datagram(b.local_addr(), byte(1)).await.unwrap();
    a.send_reliable(b.local_addr(), byte(2)).await.unwrap();
    for _ in 0..2 {
        b.recv().await.unwrap();
        assert_eq!(sent.elapsed(), delay);
    }
}

#[tokio::test(start_paused = true)]
async fn random_delays_reorder_datagrams_but_never_reliable_messages() {
    let config = MemConfig::new(4).with_delay(Duration::ZERO, Duration::from_millis(50));
    let (_net, a, b) = pair(config);
    for i in 0..50 {
        a.send_reliable(b.local_addr(), byte(i)).await.unwrap();
    }
    let reliable: Vec<u8> = drain(&b, Duration::from_secs(1))
        .await
        .iter()
        .map(|i| i.bytes[0])
        .collect();
    assert_eq!(reliable, (0..50).collect::<Vec<u8>>());
    for i in 0..50 {
        a.send_datagram(b.local_addr(), byte(i)).await.unwrap();
    }
    let datagrams: Vec<u8> = drain(&b, Duration::from_secs(1))
        .await
        .iter()
        .map(|i| i.bytes[0])
        .collect();
    assert_eq!(datagrams.len(), 50);
    assert_ne!(
        datagrams,
        (0..50).collect::<Vec<u8>>(),
        "some datagrams overtake others"
    );
}

#[tokio::test(start_paused = true)]
async fn duplication_delivers_datagrams_twice_and_reliable_messages_once() {
    let (_net, a, b) = pair(MemConfig::new(5).with_duplicate(1.0));
    a.send_datagram(b.local_addr(), byte(1)).await.unwrap();
    a.send_reliable(b.local_addr(), byte(2)).await.unwrap();
    let got: Vec<(Delivery, u8)> = drain(&b, Duration::from_millis(10))
        .await
        .iter()
        .map(|i| (i.delivery, i.bytes[0]))
        .collect();
    assert_eq!(
        got,
        [
            (Delivery::Datagram, 1),
            (Delivery::Datagram, 1),
            (Delivery::Stream, 2)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_partition_cuts_both_ways_until_healed() {
    let (net, a, b) = pair(MemConfig::new(6));
    let c = net.bind(addr(3)).unwrap();
    net.partition(&[a.local_addr()], &[b.local_addr()]);
    a.send_datagram(b.local_addr(), byte(1)).await.unwrap();
    b.send_datagram(a.local_addr(), byte(2)).await.unwrap();
    let err = a.send_reliable(b.local_addr(), byte(3)).await.unwrap_err();
    assert!(matches!(err, TransportError::Unreachable { to } if to == addr(2)));
    // Links outside the partition still work.
    a.send_datagram(c.local_addr(), byte(4)).await.unwrap();
    assert_eq!(drain(&c, Duration::from_millis(10)).await.len(), 1);
    assert!(drain(&a, Duration::from_millis(10)).await.is_empty());
    assert!(drain(&b, Duration::from_millis(10)).await.is_empty());
    assert_eq!(a.stats().dropped_partition, 2);

    net.heal();
    a.send_reliable(b.local_addr(), byte(5)).await.unwrap();
    assert_eq!(drain(&b, Duration::from_millis(10)).await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_one_way_partition_cuts_one_direction_only() {
    let (net, a, b) = pair(MemConfig::new(7));
    net.partition_one_way(&[a.local_addr()], &[b.local_addr()]);
    a.send_datagram(b.local_addr(), byte(1)).await.unwrap();
    b.send_datagram(a.local_addr(), byte(2)).await.unwrap();
    assert!(drain(&b, Duration::from_millis(10)).await.is_empty());
    assert_eq!(drain(&a, Duration::from_millis(10)).await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn sends_to_nobody_and_over_the_limits_are_handled_like_a_real_network() {
    let (net, a, _b) = pair(MemConfig::new(8));
    a.send_datagram(addr(9), byte(1)).await.unwrap();
    assert_eq!(a.stats().dropped_no_route, 1);
    let err = a.send_reliable(addr(9), byte(1)).await.unwrap_err();
    assert!(matches!(err, TransportError::Unreachable { .. }));
    let err = a
        .send_datagram(addr(2), Bytes::from(vec![0; 70_000]))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TransportError::OverLimit {
            what: "datagram",
            ..
        }
    ));
    let err = net.bind(addr(1)).unwrap_err();
    assert!(matches!(err, TransportError::Bind { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_and_counts() {
    let mut config = MemConfig::new(9);
    config.recv_queue = 2;
    let (_net, a, b) = pair(config);
    for i in 0..5 {
        a.send_datagram(b.local_addr(), byte(i)).await.unwrap();
    }
    assert_eq!(b.stats().dropped_queue_full, 3);
    assert_eq!(drain(&b, Duration::from_millis(10)).await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn shutting_down_frees_the_address_and_ends_recv() {
    let (net, a, b) = pair(MemConfig::new(10));
    b.shutdown().await;
    assert!(matches!(b.recv().await, Err(TransportError::Shutdown)));
    assert!(matches!(
        b.send_datagram(addr(1), byte(1)).await,
        Err(TransportError::Shutdown)
    ));
    assert!(a.send_reliable(addr(2), byte(1)).await.is_err());
    let b2 = net.bind(addr(2)).unwrap();
    a.send_reliable(b2.local_addr(), byte(2)).await.unwrap();
    assert_eq!(b2.recv().await.unwrap().bytes, byte(2));
    drop(b2);
    net.bind(addr(2))
        .expect("dropping an endpoint frees its address");
}

#[tokio::test(start_paused = true)]
async fn port_zero_picks_distinct_free_ports() {
    let net = MemNetwork::new(MemConfig::new(11));
    let a = net.bind("10.0.0.1:0".parse().unwrap()).unwrap();
    let b = net.bind("10.0.0.1:0".parse().unwrap()).unwrap();
    assert_ne!(a.local_addr().port(), 0);
    assert_ne!(a.local_addr(), b.local_addr());
    assert_eq!(a.advertise_addr(), a.local_addr());
}
