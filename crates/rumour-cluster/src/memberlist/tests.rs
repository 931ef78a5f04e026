//! The adapter: the mapping both ways, and two nodes in memberlist mode joining each other
//! through memberlist's packets and request/reply streams, with encryption and compression.
#![allow(clippy::disallowed_methods, reason = "tests need a start time")]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_memberlist::StreamMessage;
use rumour_swim::message::{self as sm, Message as SwimMessage};
use rumour_swim::{Incarnation, NodeName, State};

use super::map;
use crate::config::{MemberlistOptions, NodeConfig, Wire};
use crate::transmit::Delivery;
use crate::{Node, NodeEvent, Profile};

const KEY: [u8; 16] = [7; 16];

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], port))
}

fn node(name: &str, at: SocketAddr, now: Instant) -> Node {
    let mut config = NodeConfig::new(name, at, Profile::Local);
    config.wire = Wire::Memberlist(
        MemberlistOptions::new()
            .with_compression(true)
            .with_key(&KEY)
            .unwrap(),
    );
    Node::new(config, ChaCha8Rng::seed_from_u64(u64::from(at.port())), now).unwrap()
}

#[test]
fn addresses_map_both_ways() {
    let v4 = addr(1, 7946);
    assert_eq!(map::socket_addr(&map::ip_bytes(v4), 7946), Some(v4));
    let mapped = std::net::Ipv4Addr::new(10, 0, 0, 1)
        .to_ipv6_mapped()
        .octets();
    assert_eq!(
        map::socket_addr(&mapped, 7946),
        Some(v4),
        "IPv4-mapped is IPv4"
    );
    assert_eq!(map::socket_addr(&[1, 2, 3], 1), None);
}

#[test]
fn gossip_messages_map_both_ways() {
    let alive = SwimMessage::Alive(sm::Alive {
        name: NodeName::new("a").unwrap(),
        addr: addr(1, 7946),
        incarnation: Incarnation(4),
        meta: Bytes::from_static(b"zone=1"),
    });
    let suspect = SwimMessage::Suspect(sm::Suspect {
        name: NodeName::new("a").unwrap(),
        incarnation: Incarnation(4),
        from: NodeName::new("b").unwrap(),
    });
    let dead = SwimMessage::Dead(sm::Dead {
        name: NodeName::new("a").unwrap(),
        incarnation: Incarnation(4),
        from: NodeName::new("a").unwrap(),
    });
    let now = Instant::now();
    let n = node("local", addr(9, 7946), now);
    for message in [
        alive,
        suspect,
        dead,
        SwimMessage::Ack(sm::Ack { seq: 3 }),
        SwimMessage::Nack(sm::Nack { seq: 4 }),
    ] {
        let ml = map::from_swim(
            "local",
            addr(9, 7946),
            rumour_memberlist::Vsn::MEMBERLIST_DEFAULT,
            message.clone(),
        )
        .unwrap();
        // Through memberlist's bytes and back.
        let bytes = ml.encode();
        let decoded = rumour_memberlist::Packet::decode(&bytes, &Default::default())
            .unwrap()
            .into_messages();
        assert_eq!(decoded, vec![ml]);
        let back = map::to_swim(n.swim(), addr(1, 7946), decoded[0].clone()).unwrap();
        assert_eq!(back, message);
    }
}

#[test]
fn a_ping_names_its_source_from_the_member_table() {
    let now = Instant::now();
    let n = node("local", addr(9, 7946), now);
    let ping = rumour_memberlist::Message::Ping(rumour_memberlist::Ping {
        seq_no: 5,
        node: "local".into(),
        source_addr: vec![10, 0, 0, 2],
        source_port: 7946,
        source_node: "go-1".into(),
    });
    // Unknown to the table: announced at incarnation 0, overridden by its own alive later.
    let SwimMessage::Ping(mapped) = map::to_swim(n.swim(), addr(2, 7946), ping).unwrap() else {
        panic!("a ping");
    };
    assert_eq!(mapped.seq, 5);
    assert_eq!(mapped.source.name.as_str(), "go-1");
    assert_eq!(mapped.source.addr, addr(2, 7946));
    assert_eq!(mapped.source.incarnation, Incarnation(0));
}

/// A dialed stream: the dialer's ephemeral address, the dialer, the address dialed.
type Dialed = (SocketAddr, SocketAddr, SocketAddr);

/// Delivers every transmit of the nodes, emulating memberlist's transport: datagrams as they
/// are; a dialed stream arrives from an ephemeral port, and a stream addressed to such a port is
/// the reply on that connection, delivered to the dialer from the address it dialed.
fn shuttle(nodes: &mut [(SocketAddr, Node)], now: Instant, dialed: &mut Vec<Dialed>) {
    for i in 0..nodes.len() {
        let from = nodes[i].0;
        while let Some(t) = nodes[i].1.poll_transmit() {
            let (to, source) = match t.delivery {
                Delivery::Datagram => (t.to, from),
                Delivery::Stream => match dialed.iter().find(|d| d.0 == t.to) {
                    Some(&(_, dialer, target)) => (dialer, target),
                    None => {
                        let port = 40_000 + u16::try_from(dialed.len()).unwrap();
                        let ephemeral = SocketAddr::new(from.ip(), port);
                        dialed.push((ephemeral, from, t.to));
                        (t.to, ephemeral)
                    }
                },
            };
            let delivery = t.delivery;
            if let Some((_, node)) = nodes.iter_mut().find(|(a, _)| *a == to) {
                match delivery {
                    Delivery::Datagram => node.handle_packet(now, source, &t.bytes),
                    Delivery::Stream => node.handle_stream(now, source, &t.bytes),
                }
            }
            // Replies a delivery produced wait in the other node's outbox: the loop over
            // the nodes picks them up on the next round.
            let _ = &nodes[i];
        }
    }
}

#[test]
fn two_nodes_join_through_memberlist_packets_and_streams() {
    let start = Instant::now();
    let (a_addr, b_addr) = (addr(1, 7946), addr(2, 7946));
    let mut nodes = vec![
        (a_addr, node("a", a_addr, start)),
        (b_addr, node("b", b_addr, start)),
    ];
    nodes[1].1.join(start, &[a_addr]);
    let mut dialed = Vec::new();
    let mut now = start;
    for _ in 0..400 {
        shuttle(&mut nodes, now, &mut dialed);
        now += Duration::from_millis(25);
        for (_, n) in &mut nodes {
            n.handle_timeout(now);
        }
    }
    for (_, n) in &nodes {
        assert_eq!(n.num_alive(), 2, "{} sees both alive", n.name());
        let stats = n.memberlist_stats().unwrap();
        assert_eq!(stats.decode_errors, 0);
        assert!(stats.packets_received > 0);
        assert!(
            n.swim()
                .is_confirmed(if n.name() == "a" { "b" } else { "a" })
        );
    }
    assert!(nodes[0].1.memberlist_stats().unwrap().pushpulls_answered >= 1);
    // Bytes that do not open with the key are dropped and counted.
    let before = nodes[0].1.memberlist_stats().unwrap().decode_errors;
    nodes[0].1.handle_packet(now, b_addr, &[1, 2, 3, 4]);
    assert_eq!(
        nodes[0].1.memberlist_stats().unwrap().decode_errors,
        before + 1
    );
}

#[test]
fn a_pushpull_request_is_answered_with_the_state_before_the_merge() {
    let now = Instant::now();
    let mut a = node("a", addr(1, 7946), now);
    let codec = a.memberlist_codec().unwrap().clone();
    // A Go joiner's push/pull, sealed with the cluster key.
    let request = StreamMessage::PushPull(rumour_memberlist::PushPull {
        join: true,
        nodes: vec![rumour_memberlist::PushNodeState {
            name: "go-1".into(),
            addr: vec![10, 0, 0, 2],
            port: 7946,
            meta: b"m".to_vec(),
            incarnation: 1,
            state: rumour_memberlist::NodeState::Alive,
            vsn: rumour_memberlist::Vsn::MEMBERLIST_DEFAULT,
        }],
        user_state: Vec::new(),
    });
    let key = rumour_memberlist::Key::new(&KEY).unwrap();
    let bytes = rumour_memberlist::encode_stream(
        &request,
        &rumour_memberlist::StreamOptions {
            compress: false,
            seal: Some(rumour_memberlist::Seal {
                version: rumour_memberlist::EncryptionVersion::for_protocol(2),
                key: &key,
                nonce: [1; 12],
            }),
            label: &[],
        },
    )
    .unwrap();
    let ephemeral = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 50_000);
    a.handle_stream(now, ephemeral, &bytes);
    let reply = a.poll_transmit().expect("a reply");
    assert_eq!((reply.to, reply.delivery), (ephemeral, Delivery::Stream));
    let decoded = codec.decode_stream(&reply.bytes).unwrap().unwrap();
    let StreamMessage::PushPull(state) = decoded.message else {
        panic!("a push/pull reply");
    };
    assert!(state.join);
    let names: Vec<&str> = state.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["a"], "the state before the merge");
    // Merged, unconfirmed until it answers a ping.
    assert_eq!(a.member_state("go-1"), Some(State::Alive));
    assert!(!a.swim().is_confirmed("go-1"));
    let events: Vec<NodeEvent> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::MemberJoined { name, .. } if name == "go-1"))
    );
}
