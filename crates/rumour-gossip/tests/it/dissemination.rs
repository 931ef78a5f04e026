//! Gossip between machines wired by hand on virtual time.

use std::time::Duration;

use crate::support::{EPOCH_MILLIS, GSet, LwwMap, Net};
use bytes::Bytes;
use rumour_gossip::{Config, KeyChange, Marker, Message, MessageKind, Version};
use rumour_ring::{Mergeable, Timestamp};

/// No pull-push timer (and the nets built with it no gossip tick): the test moves every
/// message itself.
fn manual(config: Config) -> Config {
    Config {
        pullpush_interval: None,
        ..config
    }
}

fn change_message(key: &str, value: &LwwMap, updated: u64) -> Bytes {
    Message::Change(KeyChange {
        key: key.into(),
        codec: LwwMap::CODEC_ID.into(),
        value: Some(Bytes::from(value.encode())),
        marker: Marker {
            updated: Timestamp(updated),
            deleted: false,
        },
    })
    .encode()
}

fn decoded_value(message: &Bytes) -> (String, LwwMap) {
    let Message::Change(change) = Message::decode(message).unwrap() else {
        panic!("not a change");
    };
    let value = LwwMap::decode(&change.value.unwrap()).unwrap();
    (change.key, value)
}

#[test]
fn a_change_reaches_every_machine_through_gossip_alone() {
    let mut net = Net::new(8, |c| Config {
        pullpush_interval: None,
        ..c
    });
    let now = net.now;
    net.nodes[0]
        .cas(now, "ring", |_: Option<&LwwMap>| {
            Some(LwwMap::default().with("inst-0", "active"))
        })
        .unwrap();
    net.flush(0);
    let took = net
        .run_until(Duration::from_secs(10), |net| {
            net.nodes.iter().all(|n| {
                n.get::<LwwMap>("ring")
                    .is_some_and(|m| m.value("inst-0") == Some("active"))
            })
        })
        .expect("every machine got the change");
    assert!(took <= Duration::from_secs(2), "took {took:?}");
    assert!(
        net.log
            .iter()
            .all(|d| d.message().kind() == MessageKind::Change),
        "gossip alone, no pull-push"
    );
}

#[test]
fn forwarded_changes_are_the_locally_computed_ones() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    // B already knows a newer `a`; A sends an older `a` and a new `b`.
    net.nodes[1]
        .cas(now, "k", |_: Option<&LwwMap>| {
            Some(LwwMap::default().with("a", "x").with("a", "newer"))
        })
        .unwrap();
    while net.nodes[1].has_broadcasts() {
        net.nodes[1].fill_broadcasts(2, 1384);
    }
    let sent = LwwMap::default().with("a", "older").with("b", "new");
    let message = change_message("k", &sent, EPOCH_MILLIS);
    net.nodes[1]
        .handle_packet(now, crate::support::addr(0), &message)
        .unwrap();

    let queued: Vec<_> = net.nodes[1].queued().collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].content(), [rumour_ring::content_hash("b")]);
    let (key, value) = decoded_value(queued[0].message());
    assert_eq!(key, "k");
    assert_eq!(
        value.0.keys().collect::<Vec<_>>(),
        ["b"],
        "only what changed here"
    );
    assert_ne!(queued[0].message(), &message, "not the received bytes");
    let map = net.nodes[1].get::<LwwMap>("k").unwrap();
    assert_eq!(
        (map.value("a"), map.value("b")),
        (Some("newer"), Some("new"))
    );

    // The same message again changes nothing and is not forwarded again.
    let before = net.nodes[1].stats().forwarded_queue.enqueued;
    net.nodes[1]
        .handle_packet(now, crate::support::addr(0), &message)
        .unwrap();
    assert_eq!(net.nodes[1].stats().forwarded_queue.enqueued, before);
    assert_eq!(net.nodes[1].stats().merges_unchanged, 1);
}

#[test]
fn old_tombstones_are_neither_applied_nor_forwarded() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now + Duration::from_secs(600);
    let wall = EPOCH_MILLIS + 600_000;
    let b = &mut net.nodes[1];
    b.cas(now, "k", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("x", "alive"))
    })
    .unwrap();
    while b.has_broadcasts() {
        b.fill_broadcasts(2, 1384);
    }
    let six_minutes_old = LwwMap::tombstone("x", 5, wall - 6 * 60_000);
    b.handle_packet(
        now,
        crate::support::addr(0),
        &change_message("k", &six_minutes_old, wall),
    )
    .unwrap();
    assert_eq!(
        b.get::<LwwMap>("k").unwrap().value("x"),
        Some("alive"),
        "not applied"
    );
    assert!(!b.has_broadcasts(), "not forwarded");
    // Nor does an old tombstone create a key.
    b.handle_packet(
        now,
        crate::support::addr(0),
        &change_message("other", &six_minutes_old, wall),
    )
    .unwrap();
    assert!(b.entry("other").is_none());

    let one_minute_old = LwwMap::tombstone("x", 5, wall - 60_000);
    b.handle_packet(
        now,
        crate::support::addr(0),
        &change_message("k", &one_minute_old, wall),
    )
    .unwrap();
    assert_eq!(b.get::<LwwMap>("k").unwrap().value("x"), None, "applied");
    let queued: Vec<_> = b.queued().collect();
    assert_eq!(queued.len(), 1, "forwarded");
    assert!(decoded_value(queued[0].message()).1.0["x"].deleted);
}

#[test]
fn the_local_queue_goes_first() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    let forwarded = LwwMap::default().with("remote", &"r".repeat(600));
    net.nodes[1]
        .handle_packet(
            now,
            crate::support::addr(0),
            &change_message("remote-key", &forwarded, EPOCH_MILLIS),
        )
        .unwrap();
    net.nodes[1]
        .cas(now, "local-key", |_: Option<&LwwMap>| {
            Some(LwwMap::default().with("local", &"l".repeat(600)))
        })
        .unwrap();
    // Room for one of the two: the local change is taken, though the forwarded one is older.
    let first = net.nodes[1].fill_broadcasts(2, 900);
    assert_eq!(first.len(), 1);
    assert_eq!(decoded_value(&first[0]).0, "local-key");
    let stats = net.nodes[1].stats();
    assert_eq!((stats.local_queued, stats.forwarded_queued), (1, 1));
    // With room for both, local still comes first.
    let both = net.nodes[1].fill_broadcasts(2, 1384 * 2);
    let keys: Vec<_> = both.iter().map(|m| decoded_value(m).0).collect();
    assert_eq!(keys, ["local-key", "remote-key"]);
}

#[test]
fn a_newer_change_to_the_same_entries_replaces_the_queued_one() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    for beat in 0..5 {
        net.nodes[0]
            .cas(now, "ring", |cur: Option<&LwwMap>| {
                Some(
                    cur.cloned()
                        .unwrap_or_default()
                        .with("me", &format!("beat {beat}")),
                )
            })
            .unwrap();
    }
    let queued: Vec<_> = net.nodes[0].queued().collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].version(), Version(5));
    assert_eq!(net.nodes[0].stats().local_queue.invalidated, 4);
}

#[test]
fn a_change_larger_than_a_datagram_goes_over_a_stream_whole() {
    let mut net = Net::new(4, |c| Config {
        pullpush_interval: None,
        ..c
    });
    let now = net.now;
    let big = (0..2000).fold(LwwMap::default(), |m, i| {
        m.with(
            &format!("instance-{i:05}"),
            "a value of some thirty bytes!!",
        )
    });
    net.nodes[0]
        .cas(now, "ring", |_: Option<&LwwMap>| Some(big.clone()))
        .unwrap();
    net.flush(0);
    net.run_until(Duration::from_secs(10), |net| {
        net.nodes
            .iter()
            .all(|n| n.get::<LwwMap>("ring").as_ref() == Some(&big))
    })
    .expect("every machine got the whole value");
    let streamed: Vec<_> = net.log.iter().filter(|d| d.reliable).collect();
    assert!(!streamed.is_empty());
    assert!(
        streamed.iter().all(|d| d.bytes.len() > 60_000),
        "sent whole, not cut"
    );
    assert!(
        net.log
            .iter()
            .filter(|d| !d.reliable)
            .all(|d| d.bytes.len() <= 1384)
    );
    assert!(net.nodes[0].stats().streamed_changes > 0);
}

#[test]
fn each_change_is_sent_at_most_the_retransmit_limit() {
    let mut net = Net::new(3, |c| Config {
        pullpush_interval: None,
        ..c
    });
    // Only node 0 talks: the others' transmits are not delivered (their packets are cut).
    for to in 0..3 {
        net.cut.insert((1, to));
        net.cut.insert((2, to));
    }
    let now = net.now;
    net.nodes[0]
        .cas(now, "k", |_: Option<&GSet>| Some(GSet::of(&["x"])))
        .unwrap();
    net.run_for(Duration::from_secs(5));
    let from_zero = net.log.iter().filter(|d| d.from == 0).count();
    // 3 members: 4 * ceil(log10(4)) = 4 transmits.
    assert_eq!(from_zero, 4);
    assert_eq!(
        net.nodes[0].stats().sent.get(MessageKind::Change).messages,
        4
    );
}

#[test]
fn peers_reported_down_are_gossiped_to_for_gossip_to_the_dead_time() {
    let mut net = Net::new(2, |c| Config {
        pullpush_interval: None,
        ..c
    });
    let start = net.now;
    net.nodes[0].handle_peer_down(start, crate::support::addr(1));
    net.nodes[0]
        .cas(start, "k", |_: Option<&GSet>| Some(GSet::of(&["1"])))
        .unwrap();
    net.run_for(Duration::from_secs(1));
    assert!(
        net.nodes[1].get::<GSet>("k").is_some(),
        "a down peer still hears gossip"
    );

    net.run_for(Duration::from_secs(30));
    let before = net.log.len();
    let now = net.now;
    net.nodes[0]
        .cas(now, "k", |_: Option<&GSet>| Some(GSet::of(&["1", "2"])))
        .unwrap();
    net.run_for(Duration::from_secs(2));
    assert!(
        net.since(before).iter().all(|d| d.from != 0),
        "forgotten after 30 s"
    );
    assert_eq!(net.nodes[0].peers().count(), 0);
}

#[test]
fn unknown_codecs_are_skipped_and_counted() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    let message = Message::Change(KeyChange {
        key: "k".into(),
        codec: "nobody-knows".into(),
        value: Some(Bytes::from_static(b"\x01\x02")),
        marker: Marker::default(),
    })
    .encode();
    net.nodes[1]
        .handle_packet(now, crate::support::addr(0), &message)
        .unwrap();
    assert!(net.nodes[1].entry("k").is_none());
    assert_eq!(net.nodes[1].stats().unknown_codec, 1);
    assert_eq!(net.nodes[1].stats().invalid, 0);
}

#[test]
fn full_queues_drop_the_most_sent_change_and_count_it() {
    let mut net = Net::new(2, |c| Config {
        queue_capacity: 4,
        ..manual(c)
    });
    let now = net.now;
    for i in 0..10 {
        net.nodes[0]
            .cas(now, &format!("k{i}"), |_: Option<&GSet>| {
                Some(GSet::of(&["x"]))
            })
            .unwrap();
    }
    let stats = net.nodes[0].stats();
    assert_eq!(stats.local_queued, 4);
    assert_eq!(stats.local_queue.dropped, 6);
}

#[test]
fn the_history_keeps_sent_and_received_changes_within_its_budget() {
    let mut net = Net::new(2, |c| Config {
        message_history_bytes: 4096,
        ..manual(c)
    });
    let now = net.now;
    net.nodes[0]
        .cas(now, "k", |_: Option<&GSet>| Some(GSet::of(&["x"])))
        .unwrap();
    for message in net.nodes[0].fill_broadcasts(2, 1384) {
        net.nodes[1]
            .handle_packet(now, crate::support::addr(0), &message)
            .unwrap();
        net.nodes[1]
            .handle_packet(now, crate::support::addr(0), &message)
            .unwrap();
    }
    let sent: Vec<_> = net.nodes[0].history().sent().collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].key.as_str(), sent[0].changes.as_slice()),
        ("k", &["x".to_owned()][..])
    );
    let received: Vec<_> = net.nodes[1].history().received().collect();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].version_after, Version(1));
    assert_eq!(
        received[1].version_after,
        Version(0),
        "the duplicate changed nothing"
    );
    net.nodes[1].clear_history();
    assert_eq!(net.nodes[1].history().received().count(), 0);
}

#[test]
fn the_same_seeds_give_the_same_traffic() {
    let run = || {
        let mut net = Net::new(5, |c| Config {
            pullpush_interval: Some(Duration::from_secs(2)),
            ..c
        });
        for i in 0..5 {
            let now = net.now;
            net.nodes[i]
                .cas(now, &format!("k{i}"), |_: Option<&LwwMap>| {
                    Some(LwwMap::filled(i + 1))
                })
                .unwrap();
            net.flush(i);
        }
        net.run_for(Duration::from_secs(10));
        let start = net.start;
        net.log
            .iter()
            .map(|d| (d.at - start, d.from, d.to, d.reliable, d.bytes.clone()))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert!(first.len() > 20);
    assert_eq!(first, run());
}
