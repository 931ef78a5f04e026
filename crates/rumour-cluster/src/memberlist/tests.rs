//! The adapter: the mapping both ways, two nodes in memberlist mode joining each other through
//! memberlist's packets and request/reply streams, with encryption and compression, and the KV
//! store over memberlist's user and local-state channels (dskit's `KeyValuePair`).
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

/// A grow-only set of tags: the KV value of these tests.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tags(std::collections::BTreeSet<String>);

impl Tags {
    fn of(items: &[&str]) -> Tags {
        Tags(items.iter().map(|s| (*s).to_owned()).collect())
    }
}

impl rumour_ring::Mergeable for Tags {
    const CODEC_ID: &'static str = "tags";

    fn merge(&mut self, other: &Self, _: Option<rumour_ring::Timestamp>) -> Option<Self> {
        let new: std::collections::BTreeSet<String> =
            other.0.difference(&self.0).cloned().collect();
        self.0.extend(new.iter().cloned());
        (!new.is_empty()).then_some(Tags(new))
    }

    fn content(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }

    fn remove_tombstones(&mut self, _: rumour_ring::Timestamp) -> rumour_ring::Tombstones {
        rumour_ring::Tombstones::default()
    }

    fn encode(&self) -> Vec<u8> {
        self.0
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<Self, rumour_ring::Error> {
        let text = std::str::from_utf8(bytes).map_err(|_| rumour_ring::Error::Decode {
            what: "tags",
            offset: 0,
            reason: "not UTF-8",
        })?;
        Ok(Tags(
            text.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

fn sealed_packet(message: &rumour_memberlist::Message) -> Vec<u8> {
    let key = rumour_memberlist::Key::new(&KEY).unwrap();
    rumour_memberlist::encode_packet(
        &message.encode(),
        &rumour_memberlist::PacketOptions {
            compress: false,
            crc: false,
            seal: Some(rumour_memberlist::Seal {
                version: rumour_memberlist::EncryptionVersion::for_protocol(2),
                key: &key,
                nonce: [2; 12],
            }),
            label: &[],
        },
    )
    .unwrap()
}

fn sealed_stream(message: &StreamMessage) -> Vec<u8> {
    let key = rumour_memberlist::Key::new(&KEY).unwrap();
    rumour_memberlist::encode_stream(
        message,
        &rumour_memberlist::StreamOptions {
            compress: false,
            seal: Some(rumour_memberlist::Seal {
                version: rumour_memberlist::EncryptionVersion::for_protocol(2),
                key: &key,
                nonce: [3; 12],
            }),
            label: &[],
        },
    )
    .unwrap()
}

fn tags_pair(key: &str, tags: &[&str], at: i64) -> rumour_memberlist::KeyValuePair {
    rumour_memberlist::KeyValuePair {
        key: key.into(),
        value: rumour_ring::Mergeable::encode(&Tags::of(tags)),
        codec: "tags".into(),
        deleted: false,
        update_time_millis: at,
    }
}

/// The wall time of a node started at `start` in these tests (the simulator's epoch).
fn wall(n: &Node, now: Instant) -> i64 {
    i64::try_from(n.gossip().wall_time(now).0).unwrap()
}

#[test]
fn kv_changes_map_to_dskit_pairs_and_back() {
    use rumour_gossip::{KeyChange, Marker};
    for (value, deleted) in [(Some(Bytes::from_static(b"abc")), false), (None, true)] {
        let change = KeyChange {
            key: "ring".into(),
            codec: "ring".into(),
            value,
            marker: Marker {
                updated: rumour_ring::Timestamp(1_700_000_000_000),
                deleted,
            },
        };
        let pair = super::kv::to_pair(change.clone());
        assert_eq!(
            (pair.deleted, pair.update_time_millis),
            (deleted, 1_700_000_000_000)
        );
        let bytes = pair.to_bytes();
        let back = rumour_memberlist::KeyValuePair::decode(&bytes, &Default::default()).unwrap();
        assert_eq!(super::kv::to_change(back), change);
    }
    // A time before 1970 is time 0.
    let old = super::kv::to_change(tags_pair("k", &["a"], -5));
    assert_eq!(old.marker.updated, rumour_ring::Timestamp(0));
}

/// Two memberlist-mode nodes joined through [`shuttle`], both knowing [`Tags`].
fn joined_pair() -> (Vec<(SocketAddr, Node)>, Vec<Dialed>, Instant) {
    let start = Instant::now();
    let (a_addr, b_addr) = (addr(1, 7946), addr(2, 7946));
    let mut nodes = vec![
        (a_addr, node("a", a_addr, start)),
        (b_addr, node("b", b_addr, start)),
    ];
    for (_, n) in &mut nodes {
        n.register::<Tags>();
    }
    nodes[1].1.join(start, &[a_addr]);
    let mut dialed = Vec::new();
    let mut now = start;
    for _ in 0..200 {
        shuttle(&mut nodes, now, &mut dialed);
        now += Duration::from_millis(25);
        for (_, n) in &mut nodes {
            n.handle_timeout(now);
        }
    }
    assert!(nodes.iter().all(|(_, n)| n.num_alive() == 2));
    (nodes, dialed, now)
}

#[test]
fn a_kv_write_leaves_as_a_user_message_holding_a_key_value_pair_and_merges_at_the_peer() {
    let (mut nodes, _, mut now) = joined_pair();
    let codec = nodes[0].1.memberlist_codec().unwrap().clone();
    nodes[0]
        .1
        .cas(now, "tags", |_: Option<&Tags>| Some(Tags::of(&["x"])))
        .unwrap();
    let mut pairs = Vec::new();
    for _ in 0..40 {
        now += Duration::from_millis(25);
        nodes[0].1.handle_timeout(now);
        while let Some(t) = nodes[0].1.poll_transmit() {
            if t.delivery == Delivery::Datagram {
                let decoded = codec.decode_packet(&t.bytes).unwrap();
                assert!(t.bytes.len() <= super::UDP_BUFFER_SIZE);
                for m in decoded.packet.into_messages() {
                    if let rumour_memberlist::Message::User(payload) = m {
                        pairs.push(
                            rumour_memberlist::KeyValuePair::decode(&payload, &Default::default())
                                .unwrap(),
                        );
                    }
                }
                nodes[1].1.handle_packet(now, t.to, &t.bytes);
            }
        }
    }
    let pair = pairs
        .first()
        .expect("the change went out as a user message");
    assert_eq!(
        (pair.key.as_str(), pair.codec.as_str(), pair.deleted),
        ("tags", "tags", false)
    );
    assert_eq!(pair.value, b"x");
    assert_eq!(pair.update_time_millis, wall(&nodes[0].1, now) - 1000);
    assert_eq!(
        nodes[1].1.gossip().get::<Tags>("tags"),
        Some(Tags::of(&["x"]))
    );
    let a = nodes[0].1.memberlist_stats().unwrap();
    let b = nodes[1].1.memberlist_stats().unwrap();
    assert_eq!(a.kv_sent, pairs.len() as u64);
    assert!(b.kv_received >= 1);
    assert_eq!((b.user_received, b.kv_refused), (0, 0));
    let events: Vec<NodeEvent> = std::iter::from_fn(|| nodes[1].1.poll_event()).collect();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, NodeEvent::UserMessage { .. })),
        "a KV pair is not an application message"
    );
    assert_eq!(nodes[1].1.gossip().stats().merges, 1);
}

#[test]
fn only_pairs_of_a_registered_codec_are_the_stores_and_other_user_messages_the_applications() {
    let now = Instant::now();
    let mut a = node("a", addr(1, 7946), now);
    a.register::<Tags>();
    let from = addr(2, 7946);
    let at = wall(&a, now);
    let user = |payload: Vec<u8>| sealed_packet(&rumour_memberlist::Message::User(payload));
    // A pair of a registered codec: merged, not reported.
    a.handle_packet(now, from, &user(tags_pair("t", &["x"], at).to_bytes()));
    // A pair of a codec nobody registered (a dskit `ringDesc`), and plain bytes: the
    // application's.
    let mut other = tags_pair("ring", &["x"], at);
    other.codec = "ringDesc".into();
    a.handle_packet(now, from, &user(other.to_bytes()));
    a.handle_packet(now, from, &user(b"hello".to_vec()));
    // Over a stream too.
    a.handle_stream(
        now,
        from,
        &sealed_stream(&StreamMessage::User(tags_pair("s", &["y"], at).to_bytes())),
    );
    // A registered pair the store refuses (stamped an hour ahead): dropped and counted.
    a.handle_packet(
        now,
        from,
        &user(tags_pair("f", &["z"], at + 3_600_000).to_bytes()),
    );
    assert_eq!(a.gossip().get::<Tags>("t"), Some(Tags::of(&["x"])));
    assert_eq!(a.gossip().get::<Tags>("s"), Some(Tags::of(&["y"])));
    assert_eq!(a.gossip().get::<Tags>("f"), None);
    let stats = a.memberlist_stats().unwrap();
    assert_eq!(
        (stats.kv_received, stats.kv_refused, stats.user_received),
        (3, 1, 2)
    );
    assert_eq!(a.gossip().stats().clock_refused, 1);
    let app: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_event())
        .filter_map(|e| match e {
            NodeEvent::UserMessage { bytes, .. } => Some(bytes.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(app, vec![other.to_bytes(), b"hello".to_vec()]);
}

#[test]
fn a_pushpull_carries_the_kv_store_and_a_received_one_is_merged() {
    use rumour_memberlist::kv::{KvLimits, decode_full_state, encode_full_state};
    let now = Instant::now();
    let mut a = node("a", addr(1, 7946), now);
    a.register::<Tags>();
    a.cas(now, "mine", |_: Option<&Tags>| Some(Tags::of(&["a"])))
        .unwrap();
    while a.poll_transmit().is_some() {}
    let at = wall(&a, now);
    let go_node = rumour_memberlist::PushNodeState {
        name: "go-1".into(),
        addr: vec![10, 0, 0, 2],
        port: 7946,
        meta: Vec::new(),
        incarnation: 1,
        state: rumour_memberlist::NodeState::Alive,
        vsn: rumour_memberlist::Vsn::MEMBERLIST_DEFAULT,
    };
    let mut user_state = Vec::new();
    encode_full_state(
        &mut user_state,
        &[
            tags_pair("theirs", &["b"], at),
            tags_pair("mine", &["c"], at),
        ],
    )
    .unwrap();
    let request = StreamMessage::PushPull(rumour_memberlist::PushPull {
        join: true,
        nodes: vec![go_node.clone()],
        user_state,
    });
    let codec = a.memberlist_codec().unwrap().clone();
    let ephemeral = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 50_000);
    a.handle_stream(now, ephemeral, &sealed_stream(&request));
    let reply = a.poll_transmit().expect("a reply");
    let StreamMessage::PushPull(state) =
        codec.decode_stream(&reply.bytes).unwrap().unwrap().message
    else {
        panic!("a push/pull reply");
    };
    // The reply carries the store before the merge, in dskit's framing.
    let pairs: Vec<_> = decode_full_state(&state.user_state, &KvLimits::default())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(
        (pairs[0].key.as_str(), &pairs[0].value[..]),
        ("mine", &b"a"[..])
    );
    // Then the remote store is merged, and what it changed is gossiped on.
    assert_eq!(a.gossip().get::<Tags>("theirs"), Some(Tags::of(&["b"])));
    assert_eq!(a.gossip().get::<Tags>("mine"), Some(Tags::of(&["a", "c"])));
    assert!(a.gossip().has_broadcasts());
    let stats = a.memberlist_stats().unwrap();
    assert_eq!(
        (
            stats.kv_states_sent,
            stats.kv_states_received,
            stats.kv_received
        ),
        (1, 1, 2)
    );

    // A state cut short: the pairs before the break merge, the break is counted.
    let mut broken = Vec::new();
    encode_full_state(&mut broken, &[tags_pair("more", &["m"], at)]).unwrap();
    broken.extend_from_slice(&[0, 0, 9, 0, 1]);
    let request = StreamMessage::PushPull(rumour_memberlist::PushPull {
        join: false,
        nodes: vec![go_node],
        user_state: broken,
    });
    let other = SocketAddr::new(Ipv4Addr::new(10, 0, 0, 2).into(), 50_001);
    a.handle_stream(now, other, &sealed_stream(&request));
    assert_eq!(a.gossip().get::<Tags>("more"), Some(Tags::of(&["m"])));
    assert_eq!(a.memberlist_stats().unwrap().kv_states_refused, 1);
}

#[test]
fn a_kv_change_too_large_for_a_packet_goes_whole_as_a_stream_user_message() {
    let (mut nodes, _, mut now) = joined_pair();
    let codec = nodes[0].1.memberlist_codec().unwrap().clone();
    let big = "b".repeat(3000);
    nodes[0]
        .1
        .cas(now, "big", |_: Option<&Tags>| {
            Some(Tags::of(&[big.as_str()]))
        })
        .unwrap();
    let mut streamed = 0;
    for _ in 0..40 {
        now += Duration::from_millis(25);
        nodes[0].1.handle_timeout(now);
        while let Some(t) = nodes[0].1.poll_transmit() {
            match t.delivery {
                Delivery::Datagram => {
                    assert!(t.bytes.len() <= super::UDP_BUFFER_SIZE, "{}", t.bytes.len());
                }
                Delivery::Stream => {
                    let decoded = codec.decode_stream(&t.bytes).unwrap().unwrap();
                    if let StreamMessage::User(payload) = decoded.message {
                        let pair =
                            rumour_memberlist::KeyValuePair::decode(&payload, &Default::default())
                                .unwrap();
                        assert_eq!((pair.key.as_str(), pair.value.len()), ("big", 3000));
                        streamed += 1;
                        // memberlist's transport: a stream arrives from the dialer's
                        // ephemeral port.
                        let ephemeral = SocketAddr::new(addr(1, 7946).ip(), 50_000);
                        nodes[1].1.handle_stream(now, ephemeral, &t.bytes);
                    }
                }
            }
        }
    }
    assert!(streamed >= 1, "the change went over a stream");
    assert_eq!(
        nodes[1].1.gossip().get::<Tags>("big"),
        Some(Tags::of(&[big.as_str()]))
    );
    let stats = nodes[1].1.memberlist_stats().unwrap();
    assert_eq!((stats.user_received, stats.kv_refused), (0, 0));
}

#[test]
fn many_kv_changes_pack_into_compounds_within_memberlists_buffer() {
    let (mut nodes, _, mut now) = joined_pair();
    let codec = nodes[0].1.memberlist_codec().unwrap().clone();
    let tag = |i: usize| format!("{i:03}-{}", "t".repeat(60));
    for i in 0..80 {
        let key = format!("key-{i:03}");
        nodes[0]
            .1
            .cas(now, &key, |_: Option<&Tags>| {
                Some(Tags::of(&[tag(i).as_str()]))
            })
            .unwrap();
    }
    let mut largest_compound = 0;
    for _ in 0..80 {
        now += Duration::from_millis(25);
        nodes[0].1.handle_timeout(now);
        while let Some(t) = nodes[0].1.poll_transmit() {
            if t.delivery != Delivery::Datagram {
                continue;
            }
            assert!(t.bytes.len() <= super::UDP_BUFFER_SIZE, "{}", t.bytes.len());
            let messages = codec
                .decode_packet(&t.bytes)
                .unwrap()
                .packet
                .into_messages();
            largest_compound = largest_compound.max(messages.len());
            nodes[1].1.handle_packet(now, addr(1, 7946), &t.bytes);
        }
    }
    assert!(
        largest_compound > 10,
        "changes share packets: {largest_compound}"
    );
    for i in 0..80 {
        assert_eq!(
            nodes[1].1.gossip().get::<Tags>(&format!("key-{i:03}")),
            Some(Tags::of(&[tag(i).as_str()])),
            "key {i}"
        );
    }
}
