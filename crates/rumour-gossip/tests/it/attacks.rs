//! One crafted message per attack class, and what the node does (or does not do) about it.
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumour_gossip::{
    Config, Error, Gossip, KeyChange, KeyHash, Marker, Message, Session, Transmit,
};
use rumour_ring::{Instance, Mergeable, Ring, RingCodec, RingLimits, State, Timestamp, Tokens};
use rumour_wire::Delivery;

use crate::support::{EPOCH_MILLIS, LwwMap, Net, addr, machine};

/// The attacker's address: never a member.
fn attacker() -> SocketAddr {
    addr(9)
}

/// The victim of reflection: not a member either.
fn victim() -> SocketAddr {
    addr(8)
}

fn ring_of(n: usize, at: u64) -> Ring {
    let mut ring = Ring::new();
    for i in 0..n {
        let id = format!("ingester-{i}");
        let tokens = Tokens::new((0..128).map(|t| t * 1_000_003 + i as u32 * 7).collect());
        ring.set_instance(
            &id,
            Instance::new("10.0.0.1:9095", "z", State::Active, tokens, Timestamp(at)),
        )
        .unwrap();
        ring.set_heartbeat(&id, Timestamp(at)).unwrap();
    }
    ring
}

/// A machine holding a five-instance ring, with two alive peers.
fn target(config: impl FnOnce(Config) -> Config) -> (Gossip, Instant) {
    let start = Instant::now();
    let mut g = machine(0, start, config(Config::lan(addr(0))));
    g.register::<Ring>();
    g.handle_peer_up(start, addr(1));
    g.handle_peer_up(start, addr(2));
    g.cas(start, "ring", |_: Option<&Ring>| {
        Some(ring_of(5, EPOCH_MILLIS))
    })
    .unwrap();
    (g, start)
}

fn drain(g: &mut Gossip) -> Vec<Transmit> {
    std::iter::from_fn(|| g.poll_transmit()).collect()
}

fn bytes_to(sent: &[Transmit], to: SocketAddr) -> usize {
    sent.iter()
        .filter(|t| t.to == to)
        .flat_map(|t| t.messages.iter())
        .map(Bytes::len)
        .sum()
}

fn session(from: SocketAddr) -> Session {
    Session { from, id: 42 }
}

/// Every pull-push message, each naming `from` as its sender.
fn every_pullpush_message(from: SocketAddr) -> Vec<Message> {
    let s = session(from);
    vec![
        Message::FullState {
            session: s,
            request: true,
            entries: Vec::new(),
        },
        Message::FullState {
            session: s,
            request: false,
            entries: Vec::new(),
        },
        Message::Summary {
            session: s,
            root: 1,
            keys: 1,
        },
        Message::Done { session: s },
        Message::KeyHashes {
            session: s,
            keys: vec![KeyHash {
                key: "ring".into(),
                hash: 1,
            }],
        },
        Message::Digests {
            session: s,
            push: Vec::new(),
            want: vec!["ring".into()],
            keys: Vec::new(),
        },
        Message::Entries {
            session: s,
            values: Vec::new(),
            want: Vec::new(),
        },
    ]
}

/// Tombstones in the ring stored under `ring`.
fn ring_tombstones(g: &Gossip) -> usize {
    let entry = g.entry("ring").unwrap();
    entry
        .value
        .as_any()
        .downcast_ref::<Ring>()
        .unwrap()
        .tombstone_count()
}

fn change(key: &str, value: Option<Vec<u8>>, codec: &str, updated: u64, deleted: bool) -> Message {
    Message::Change(KeyChange {
        key: key.into(),
        codec: codec.into(),
        value: value.map(Bytes::from),
        marker: Marker {
            updated: Timestamp(updated),
            deleted,
        },
    })
}

// ---- reflection ----------------------------------------------------------------------------

#[test]
fn a_full_state_request_in_a_datagram_naming_a_third_party_makes_the_node_send_nothing() {
    let (mut g, now) = target(|c| c);
    drain(&mut g);
    let request = Message::FullState {
        session: session(victim()),
        request: true,
        entries: Vec::new(),
    };
    let error = g
        .handle_packet(now, attacker(), &request.encode())
        .unwrap_err();
    assert!(matches!(error, Error::PullPushOnDatagram { .. }));
    assert!(drain(&mut g).is_empty());
    assert_eq!(g.stats().pullpush_on_datagram, 1);
}

#[test]
fn no_pullpush_message_in_a_datagram_gets_an_answer_whoever_it_names() {
    let (mut g, now) = target(|c| c);
    drain(&mut g);
    // Even naming the datagram's own source, or an alive peer.
    for named in [victim(), attacker(), addr(1)] {
        for message in every_pullpush_message(named) {
            assert!(g.handle_packet(now, named, &message.encode()).is_err());
        }
    }
    assert!(drain(&mut g).is_empty());
    assert_eq!(g.stats().pullpush_on_datagram, 21);
    assert_eq!(g.stats().pullpush_served, 0);
}

#[test]
fn a_stream_message_naming_another_sender_than_the_stream_is_refused_and_answered_by_nothing() {
    let (mut g, now) = target(|c| c);
    drain(&mut g);
    for message in every_pullpush_message(victim()) {
        let error = g
            .handle_stream(now, attacker(), &message.encode())
            .unwrap_err();
        assert!(matches!(error, Error::SessionMismatch { .. }), "{error}");
    }
    assert!(drain(&mut g).is_empty());
    assert_eq!(g.stats().session_mismatch, 7);
}

#[test]
fn no_message_makes_the_node_send_more_to_anyone_but_its_sender_than_it_received() {
    // Streams from the attacker naming itself: answers may go to the attacker (it asked), to
    // nobody else; and what goes to the attacker without it being a member is no bigger than
    // what it sent.
    let (mut g, now) = target(|c| c);
    drain(&mut g);
    let mut received = 0;
    for message in every_pullpush_message(attacker()) {
        let bytes = message.encode();
        received += bytes.len();
        let _ = g.handle_stream(now, attacker(), &bytes);
        let _ = g.handle_packet(now, attacker(), &bytes);
    }
    let sent = drain(&mut g);
    assert!(sent.iter().all(|t| t.to == attacker()), "{sent:?}");
    assert!(bytes_to(&sent, attacker()) <= received);
    // The join request waits for the attacker to become a member; it never does.
    assert_eq!(g.stats().pullpush_deferred, 1);
    g.handle_timeout(now + Duration::from_secs(11));
    assert!(drain(&mut g).is_empty());
    assert_eq!(g.stats().pullpush_deferred_dropped, 1);
}

#[test]
fn a_join_from_a_peer_not_yet_known_is_answered_once_it_is_reported_up() {
    let (mut g, now) = target(|c| c);
    drain(&mut g);
    let joiner = addr(5);
    let request = Message::FullState {
        session: session(joiner),
        request: true,
        entries: Vec::new(),
    };
    g.handle_stream(now, joiner, &request.encode()).unwrap();
    assert!(drain(&mut g).is_empty());
    g.handle_peer_up(now, joiner);
    let sent = drain(&mut g);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to, sent[0].delivery), (joiner, Delivery::Stream));
    let answer = Message::decode(&sent[0].messages[0]).unwrap();
    assert!(
        matches!(answer, Message::FullState { request: false, ref entries, .. } if entries.len() == 1)
    );
}

#[test]
fn a_summary_from_a_stranger_gets_a_done_no_bigger_than_itself() {
    let (mut g, now) = target(|c| c);
    drain(&mut g);
    let summary = Message::Summary {
        session: session(attacker()),
        root: 1,
        keys: 1,
    }
    .encode();
    g.handle_stream(now, attacker(), &summary).unwrap();
    let sent = drain(&mut g);
    assert_eq!(sent.len(), 1);
    assert!(matches!(
        Message::decode(&sent[0].messages[0]).unwrap(),
        Message::Done { .. }
    ));
    assert!(bytes_to(&sent, attacker()) <= summary.len());
}

#[test]
fn an_answer_to_an_exchange_from_another_peer_than_its_own_is_refused() {
    let (mut g, now) = target(|c| c);
    drain(&mut g);
    let opening = g.start_pullpush(now, addr(1), false).unwrap();
    let id = Message::decode(&opening).unwrap().session().unwrap().id;
    // The attacker learnt the id and answers in its own name.
    let keys = Message::KeyHashes {
        session: Session {
            from: attacker(),
            id,
        },
        keys: Vec::new(),
    };
    g.handle_stream(now, attacker(), &keys.encode()).unwrap();
    assert!(drain(&mut g).is_empty());
    assert_eq!(g.stats().session_mismatch, 1);
    assert_eq!(g.pullpush_in_flight(), Some(addr(1)));
}

// ---- bounded state ---------------------------------------------------------------------------

#[test]
fn messages_past_the_per_stream_limit_are_refused_unread() {
    let (mut g, now) = target(|c| Config {
        max_stream_messages: 3,
        ..c
    });
    let messages: Vec<Bytes> = (0..5)
        .map(|i| {
            let value = LwwMap::filled(1).encode();
            change(&format!("k{i}"), Some(value), "lww", EPOCH_MILLIS, false).encode()
        })
        .collect();
    let result = g.handle_stream_messages(now, attacker(), messages.iter().map(|m| &m[..]));
    assert!(matches!(
        result,
        Err(Error::Limit {
            what: "stream messages",
            ..
        })
    ));
    assert_eq!(g.stats().stream_messages_refused, 2);
    assert_eq!(g.list("k").len(), 3);
}

#[test]
fn keys_past_the_store_limit_are_refused_but_local_writes_still_land() {
    let (mut g, now) = target(|c| Config { max_keys: 3, ..c });
    for i in 0..5 {
        let value = LwwMap::filled(1).encode();
        let _ = g.handle_packet(
            now,
            attacker(),
            &change(&format!("k{i}"), Some(value), "lww", EPOCH_MILLIS, false).encode(),
        );
    }
    // "ring" and two of the attacker's keys.
    assert_eq!(g.stats().keys, 3);
    assert_eq!(g.stats().keys_refused, 3);
    // Changes to keys already held still merge.
    let newer = LwwMap::filled(2).encode();
    g.handle_packet(
        now,
        attacker(),
        &change("k0", Some(newer), "lww", EPOCH_MILLIS, false).encode(),
    )
    .unwrap();
    assert_eq!(g.get::<LwwMap>("k0").unwrap().0.len(), 2);
    g.cas(now, "mine", |_: Option<&LwwMap>| Some(LwwMap::filled(1)))
        .unwrap();
    assert_eq!(g.stats().keys, 4);
}

#[test]
fn long_keys_large_values_and_oversized_pullpush_messages_are_refused_before_merging() {
    let (mut g, now) = target(|c| Config {
        max_key_len: 16,
        max_value_bytes: 64,
        max_keys: 4,
        max_entry_names: 8,
        ..c
    });
    drain(&mut g);
    let small = LwwMap::filled(1).encode();
    let long_key = change(
        &"k".repeat(17),
        Some(small.clone()),
        "lww",
        EPOCH_MILLIS,
        false,
    );
    assert!(
        g.handle_packet(now, attacker(), &long_key.encode())
            .is_err()
    );
    let big = LwwMap::filled(10).encode();
    assert!(big.len() > 64);
    let large = change("big", Some(big), "lww", EPOCH_MILLIS, false);
    assert!(g.handle_stream(now, attacker(), &large.encode()).is_err());
    let Message::Change(one) = change("x", Some(small), "lww", EPOCH_MILLIS, false) else {
        unreachable!()
    };
    let many = Message::FullState {
        session: session(addr(1)),
        request: true,
        entries: (0..5)
            .map(|i| KeyChange {
                key: format!("x{i}"),
                ..one.clone()
            })
            .collect(),
    };
    assert!(g.handle_stream(now, addr(1), &many.encode()).is_err());
    let names = Message::Entries {
        session: session(addr(1)),
        values: Vec::new(),
        want: vec![rumour_gossip::Wanted {
            key: "ring".into(),
            buckets: 16,
            whole: (0..9).collect(),
            heartbeats: Vec::new(),
        }],
    };
    assert!(g.handle_stream(now, addr(1), &names.encode()).is_err());
    let stats = g.stats();
    assert_eq!(
        (
            stats.key_too_long,
            stats.value_too_large,
            stats.too_many_items
        ),
        (1, 1, 2)
    );
    assert_eq!(stats.keys, 1);
    assert!(
        drain(&mut g).is_empty(),
        "a refused join request is not answered"
    );
}

#[test]
fn a_ring_past_the_configured_ring_limits_is_refused_by_the_codec() {
    let (mut g, now) = target(|c| c);
    g.register_codec(Box::new(RingCodec::new(RingLimits {
        max_instances: 10,
        ..RingLimits::default()
    })));
    let eleven = ring_of(11, EPOCH_MILLIS);
    let message = change("ring", Some(eleven.encode()), "ring", EPOCH_MILLIS, false);
    let error = g
        .handle_stream(now, attacker(), &message.encode())
        .unwrap_err();
    assert!(matches!(error, Error::Value { .. }), "{error}");
    assert_eq!(g.get::<Ring>("ring").unwrap().len(), 5);
}

#[test]
fn only_the_configured_number_of_outgoing_exchanges_open_at_once() {
    let (mut g, now) = target(|c| c);
    assert!(g.start_pullpush(now, addr(1), false).is_some());
    assert!(g.start_pullpush(now, addr(2), true).is_none());
    assert_eq!(g.stats().pullpush_busy, 1);
    let (mut g, now) = target(|c| Config {
        max_outgoing_pullpush: 2,
        ..c
    });
    assert!(g.start_pullpush(now, addr(1), false).is_some());
    assert!(g.start_pullpush(now, addr(2), true).is_some());
    assert!(g.start_pullpush(now, addr(2), true).is_none());
}

// ---- clocks -----------------------------------------------------------------------------------

#[test]
fn a_far_future_deletion_of_the_ring_key_is_refused() {
    let (mut g, now) = target(|c| c);
    let forged = change("ring", None, "ring", u64::MAX, true);
    let error = g
        .handle_packet(now, attacker(), &forged.encode())
        .unwrap_err();
    assert!(matches!(error, Error::FutureTimestamp { .. }));
    assert_eq!(g.stats().clock_refused, 1);
    assert_eq!(g.get::<Ring>("ring").unwrap().len(), 5);
}

#[test]
fn a_far_future_tombstone_or_heartbeat_for_an_instance_is_dropped() {
    let (mut g, now) = target(|c| c);
    let mut forged = Ring::new();
    forged
        .set_instance(
            "ingester-1",
            Instance::new("x", "z", State::Left, Tokens::empty(), Timestamp(u64::MAX)),
        )
        .unwrap();
    forged
        .set_heartbeat("ingester-2", Timestamp(u64::MAX))
        .unwrap();
    let message = change("ring", Some(forged.encode()), "ring", EPOCH_MILLIS, false);
    g.handle_packet(now, attacker(), &message.encode()).unwrap();
    assert_eq!(g.stats().clock_refused, 2);
    let ring = g.get::<Ring>("ring").unwrap();
    assert_eq!(ring.instance("ingester-1").unwrap().state(), State::Active);
    assert_eq!(
        ring.heartbeat_of("ingester-2"),
        Some(Timestamp(EPOCH_MILLIS))
    );
}

#[test]
fn a_deleted_key_is_forgotten_by_local_time_whatever_its_marker_says() {
    let (mut g, start) = target(|c| c);
    g.cas(start, "doomed", |_: Option<&LwwMap>| {
        Some(LwwMap::filled(1))
    })
    .unwrap();
    // A deletion stamped four minutes ahead (inside the skew) arrives at `start`.
    let ahead = EPOCH_MILLIS + 4 * 60_000;
    g.handle_packet(
        start,
        attacker(),
        &change("doomed", None, "lww", ahead, true).encode(),
    )
    .unwrap();
    assert!(g.entry("doomed").unwrap().is_deleted());
    // obsolete_entries_timeout (30 s) after it arrived, not 4.5 minutes: forgotten.
    g.handle_timeout(start + Duration::from_secs(29));
    assert!(g.entry("doomed").is_some());
    g.handle_timeout(start + Duration::from_secs(32));
    assert!(g.entry("doomed").is_none());
}

#[test]
fn a_tombstone_stamped_ahead_lives_left_ingesters_timeout_from_its_arrival() {
    let (mut g, start) = target(|c| c);
    let ahead = EPOCH_MILLIS + 4 * 60_000;
    let mut forged = Ring::new();
    forged
        .set_instance(
            "ingester-3",
            Instance::new("x", "z", State::Left, Tokens::empty(), Timestamp(ahead)),
        )
        .unwrap();
    let message = change("ring", Some(forged.encode()), "ring", EPOCH_MILLIS, false);
    g.handle_packet(start, attacker(), &message.encode())
        .unwrap();
    assert_eq!(ring_tombstones(&g), 1);
    g.handle_timeout(start + Duration::from_secs(299));
    assert_eq!(ring_tombstones(&g), 1);
    g.handle_timeout(start + Duration::from_secs(301));
    assert_eq!(ring_tombstones(&g), 0, "gone 5 min after arrival, not 9");
}

#[test]
fn a_tombstone_arriving_after_sweeps_found_nothing_to_forget_is_still_forgotten_on_time() {
    // The sweeps skip a value while it has nothing to forget (`tombstones_quiet_until`); a
    // change must bring it back into the sweeps.
    let (mut g, start) = target(|c| c);
    for s in 1..=10 {
        g.handle_timeout(start + Duration::from_secs(s));
    }
    let mut left = Ring::new();
    left.set_instance(
        "ingester-3",
        Instance::new(
            "x",
            "z",
            State::Left,
            Tokens::empty(),
            Timestamp(EPOCH_MILLIS + 10_000),
        ),
    )
    .unwrap();
    let message = change("ring", Some(left.encode()), "ring", EPOCH_MILLIS, false);
    let arrival = start + Duration::from_secs(10);
    g.handle_packet(arrival, attacker(), &message.encode())
        .unwrap();
    assert_eq!(ring_tombstones(&g), 1);
    for s in (20..=299).step_by(10) {
        g.handle_timeout(arrival + Duration::from_secs(s));
    }
    assert_eq!(ring_tombstones(&g), 1);
    g.handle_timeout(arrival + Duration::from_secs(301));
    assert_eq!(
        ring_tombstones(&g),
        0,
        "forgotten left_ingesters_timeout after its arrival"
    );
}

#[test]
fn an_owner_re_registers_over_a_forged_tombstone_and_its_peers_accept_it() {
    let mut net = Net::new(2, |c| Config {
        pullpush_interval: None,
        ..c
    });
    net.nodes[0].register::<Ring>();
    net.nodes[1].register::<Ring>();
    let now = net.now;
    net.nodes[0]
        .cas(now, "ring", |_: Option<&Ring>| {
            Some(ring_of(3, EPOCH_MILLIS))
        })
        .unwrap();
    net.run_for(Duration::from_secs(2));
    // The attacker tombstones ingester-0 at the edge of the skew window, on both nodes.
    let edge = EPOCH_MILLIS + 2_000 + 5 * 60_000;
    let mut forged = Ring::new();
    forged
        .set_instance(
            "ingester-0",
            Instance::new("x", "z", State::Left, Tokens::empty(), Timestamp(edge)),
        )
        .unwrap();
    let message = change("ring", Some(forged.encode()), "ring", EPOCH_MILLIS, false).encode();
    let now = net.now;
    for node in &mut net.nodes {
        node.handle_packet(now, attacker(), &message).unwrap();
    }
    assert!(
        net.nodes[1]
            .get::<Ring>("ring")
            .unwrap()
            .instance("ingester-0")
            .is_none()
    );
    // The owner (node 0) registers again at its own time: its CAS outbids the tombstone.
    let wall = net.nodes[0].wall_time(now);
    let mine = ring_of(1, wall.0);
    net.nodes[0]
        .cas(now, "ring", |current: Option<&Ring>| {
            let mut ring = current.cloned().unwrap_or_default();
            let me = mine.instance("ingester-0").unwrap();
            ring.set_instance("ingester-0", me.instance().clone())
                .unwrap();
            Some(ring)
        })
        .unwrap();
    net.run_for(Duration::from_secs(5));
    for node in &net.nodes {
        let ring = node.get::<Ring>("ring").unwrap();
        assert_eq!(ring.instance("ingester-0").unwrap().state(), State::Active);
    }
}

#[test]
fn a_message_declaring_a_huge_entry_count_is_refused_without_reserving_for_it() {
    let (mut g, now) = target(|c| c);
    drain(&mut g);
    let head = Message::FullState {
        session: session(addr(1)),
        request: true,
        entries: Vec::new(),
    }
    .encode();
    // Replace the empty entry count (the last byte) with 2^63 entries, then a few bytes.
    let mut bytes = head[..head.len() - 1].to_vec();
    bytes.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    bytes.extend_from_slice(&[0; 16]);
    // Reserving room for them would abort the process; the decoder reserves by what it reads.
    let error = g.handle_stream(now, addr(1), &bytes).unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error}");
    assert!(drain(&mut g).is_empty());
    assert_eq!(g.stats().invalid, 1);
}

#[test]
fn a_forged_deletion_inside_the_skew_window_does_not_stop_the_next_local_write() {
    let (mut g, now) = target(|c| c);
    let ahead = EPOCH_MILLIS + 5 * 60_000;
    g.handle_packet(
        now,
        attacker(),
        &change("ring", None, "ring", ahead, true).encode(),
    )
    .unwrap();
    assert!(g.get::<Ring>("ring").is_none());
    // The owner's next write (a heartbeat, say) brings the key back at once.
    g.cas(now, "ring", |_: Option<&Ring>| {
        Some(ring_of(5, EPOCH_MILLIS + 1))
    })
    .unwrap();
    assert_eq!(g.get::<Ring>("ring").unwrap().len(), 5);
    assert_eq!(
        g.entry("ring").unwrap().marker.updated,
        Timestamp(ahead + 1)
    );
}
