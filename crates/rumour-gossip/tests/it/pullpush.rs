//! Pull-push between machines wired by hand on virtual time.

use std::time::Duration;

use crate::support::{GSet, LwwMap, Net, addr};
use rumour_gossip::{Config, Message, MessageKind};
use rumour_ring::Mergeable;

fn manual(config: Config) -> Config {
    Config {
        pullpush_interval: None,
        ..config
    }
}

/// Runs one pull-push opened by `from` with `to` to its end; returns the log index it began at.
fn pullpush(net: &mut Net, from: usize, to: usize, join: bool) -> usize {
    let begin = net.log.len();
    let now = net.now;
    let opening = net.nodes[from]
        .start_pullpush(now, addr(to), join)
        .expect("no exchange in progress");
    net.send(from, to, true, opening);
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        net.nodes[from].pullpush_in_flight(),
        None,
        "the exchange finished"
    );
    begin
}

fn bytes(delivered: &[crate::support::Delivered]) -> usize {
    delivered.iter().map(|d| d.bytes.len()).sum()
}

/// Two machines holding the same store: `keys` keys of `entries` entries each.
fn in_sync(keys: usize, entries: usize) -> Net {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    for k in 0..keys {
        net.nodes[0]
            .cas(now, &format!("key-{k}"), |_: Option<&LwwMap>| {
                Some(LwwMap::filled(entries))
            })
            .unwrap();
    }
    pullpush(&mut net, 0, 1, true);
    net
}

#[test]
fn a_change_reaches_every_machine_through_pullpush_alone() {
    let mut net = Net::new(6, |c| Config {
        pullpush_interval: Some(Duration::from_secs(1)),
        ..c
    })
    .without_gossip();
    let now = net.now;
    net.nodes[3]
        .cas(now, "ring", |_: Option<&LwwMap>| {
            Some(LwwMap::default().with("inst-3", "active"))
        })
        .unwrap();
    let took = net
        .run_until(Duration::from_secs(60), |net| {
            net.nodes.iter().all(|n| n.get::<LwwMap>("ring").is_some())
        })
        .expect("every machine got the change");
    assert!(
        net.log
            .iter()
            .all(|d| d.reliable && d.message().kind() != MessageKind::Change),
        "pull-push alone, no gossip"
    );
    assert!(took <= Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_digest_exchange_between_equal_stores_sends_no_values() {
    let mut net = in_sync(5, 1000);
    let begin = pullpush(&mut net, 0, 1, false);
    let exchange = net.since(begin);
    let kinds: Vec<_> = exchange.iter().map(|d| d.message().kind()).collect();
    assert_eq!(kinds, [MessageKind::Summary, MessageKind::Done]);
    let total = bytes(exchange);
    assert!(total < 100, "{total} bytes");
    println!(
        "in-sync pull-push, 5 keys x 1000 entries: {total} bytes in {} messages",
        kinds.len()
    );
    let stats = net.nodes[0].stats();
    assert_eq!(stats.pullpush_completed, 2);
    assert_eq!(stats.merges, 0);
}

#[test]
fn pullpush_sends_only_the_entries_that_differ_both_ways() {
    let mut net = in_sync(1, 1000);
    let now = net.now;
    net.nodes[0]
        .cas(now, "key-0", |cur: Option<&LwwMap>| {
            Some(cur.unwrap().with("e0001", "changed on 0"))
        })
        .unwrap();
    net.nodes[1]
        .cas(now, "key-0", |cur: Option<&LwwMap>| {
            Some(cur.unwrap().with("e0999", "changed on 1"))
        })
        .unwrap();
    let begin = pullpush(&mut net, 0, 1, false);
    for node in &net.nodes {
        let map = node.get::<LwwMap>("key-0").unwrap();
        assert_eq!(map.value("e0001"), Some("changed on 0"));
        assert_eq!(map.value("e0999"), Some("changed on 1"));
    }
    let exchange = net.since(begin);
    let kinds: Vec<_> = exchange.iter().map(|d| d.message().kind()).collect();
    assert_eq!(
        kinds,
        [
            MessageKind::Summary,
            MessageKind::KeyHashes,
            MessageKind::Digests,
            MessageKind::Entries,
            MessageKind::Entries
        ]
    );
    // The responder sends the two buckets that differ (of 32: about 62 of the 1,000 entries;
    // it cannot tell whose are newer); the opener then sends back only the entry the responder
    // still lacks.
    let entries: Vec<Vec<String>> = exchange
        .iter()
        .filter_map(|d| match d.message() {
            Message::Entries { values, .. } => {
                assert_eq!(values.len(), 1, "one key");
                let value = LwwMap::decode(values[0].value.as_ref().unwrap()).unwrap();
                Some(value.0.into_keys().collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(entries.len(), 2);
    let sent = &entries[0];
    assert!(sent.iter().any(|n| n == "e0001") && sent.iter().any(|n| n == "e0999"));
    assert!(
        sent.len() <= 2 * 1000 / 16,
        "{} entries: two buckets",
        sent.len()
    );
    assert_eq!(entries[1], ["e0001"]);
    let whole = LwwMap::filled(1000).encode().len();
    assert!(
        bytes(exchange) < whole,
        "{} bytes vs {whole} for the value",
        bytes(exchange)
    );
}

#[test]
fn keys_missing_on_either_side_are_exchanged() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    net.nodes[0]
        .cas(now, "only-0", |_: Option<&GSet>| Some(GSet::of(&["a"])))
        .unwrap();
    net.nodes[1]
        .cas(now, "only-1", |_: Option<&GSet>| Some(GSet::of(&["b"])))
        .unwrap();
    pullpush(&mut net, 0, 1, false);
    for node in &net.nodes {
        assert_eq!(node.list(""), ["only-0", "only-1"]);
    }
}

#[test]
fn a_type_without_entry_digests_falls_back_to_the_whole_value() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    net.nodes[0]
        .cas(now, "set", |_: Option<&GSet>| {
            Some(GSet::of(&["a", "shared"]))
        })
        .unwrap();
    net.nodes[1]
        .cas(now, "set", |_: Option<&GSet>| {
            Some(GSet::of(&["b", "shared"]))
        })
        .unwrap();
    let begin = pullpush(&mut net, 0, 1, false);
    for node in &net.nodes {
        assert_eq!(
            node.get::<GSet>("set"),
            Some(GSet::of(&["a", "b", "shared"]))
        );
    }
    let digests = net
        .since(begin)
        .iter()
        .find_map(|d| match d.message() {
            Message::Digests {
                push, want, keys, ..
            } => Some((push, want, keys)),
            _ => None,
        })
        .unwrap();
    assert_eq!(digests.0.len(), 1, "the whole value pushed");
    assert_eq!(digests.1, ["set"], "and the whole value wanted");
    assert!(digests.2.is_empty());
}

#[test]
fn a_deletion_reconciles_through_its_marker() {
    let mut net = in_sync(2, 10);
    let now = net.now + Duration::from_millis(5);
    assert!(net.nodes[0].delete(now, "key-1"));
    pullpush(&mut net, 1, 0, false);
    assert_eq!(net.nodes[1].get::<LwwMap>("key-1"), None);
    assert!(net.nodes[1].entry("key-1").unwrap().is_deleted());
    let begin = pullpush(&mut net, 0, 1, false);
    assert_eq!(net.since(begin).len(), 2, "in sync again");
}

#[test]
fn join_exchanges_the_whole_store_both_ways() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    net.nodes[0]
        .cas(now, "joiner", |_: Option<&LwwMap>| Some(LwwMap::filled(3)))
        .unwrap();
    net.nodes[1]
        .cas(now, "cluster", |_: Option<&LwwMap>| Some(LwwMap::filled(5)))
        .unwrap();
    let queued_before = net.nodes[0].queued().count();
    let begin = pullpush(&mut net, 0, 1, true);
    let kinds: Vec<_> = net
        .since(begin)
        .iter()
        .map(|d| d.message().kind())
        .collect();
    assert_eq!(kinds, [MessageKind::FullState, MessageKind::FullState]);
    for node in &net.nodes {
        assert_eq!(node.list(""), ["cluster", "joiner"]);
    }
    // The joiner does not re-gossip what the cluster told it; the cluster spreads the joiner's.
    assert_eq!(net.nodes[0].queued().count(), queued_before);
    assert!(net.nodes[1].queued().any(|b| b.content().len() == 3));
}

#[test]
fn only_one_outgoing_pullpush_at_a_time_and_a_lost_one_times_out() {
    let mut net = Net::new(3, manual).without_gossip();
    let now = net.now;
    assert!(net.nodes[0].start_pullpush(now, addr(1), false).is_some());
    assert!(net.nodes[0].start_pullpush(now, addr(2), true).is_none());
    assert_eq!(net.nodes[0].pullpush_in_flight(), Some(addr(1)));
    net.nodes[0].handle_timeout(now + Duration::from_millis(9_999));
    assert_eq!(net.nodes[0].pullpush_in_flight(), Some(addr(1)));
    let deadline = now + Duration::from_secs(10);
    net.nodes[0].handle_timeout(deadline);
    assert_eq!(net.nodes[0].pullpush_in_flight(), None);
    assert_eq!(net.nodes[0].stats().pullpush_timeouts, 1);
    assert!(
        net.nodes[0]
            .start_pullpush(deadline, addr(2), false)
            .is_some()
    );
}

#[test]
fn incoming_pullpush_exchanges_are_bounded() {
    let mut net = Net::new(3, |c| Config {
        max_incoming_pullpush: 1,
        ..manual(c)
    });
    let now = net.now;
    net.nodes[2]
        .cas(now, "k", |_: Option<&GSet>| Some(GSet::of(&["x"])))
        .unwrap();
    let first = net.nodes[0].start_pullpush(now, addr(2), false).unwrap();
    let second = net.nodes[1].start_pullpush(now, addr(2), false).unwrap();
    net.nodes[2].handle_stream(now, addr(0), &first).unwrap();
    net.nodes[2].handle_stream(now, addr(1), &second).unwrap();
    let replies: Vec<_> = std::iter::from_fn(|| net.nodes[2].poll_transmit()).collect();
    let kinds: Vec<_> = replies
        .iter()
        .map(|t| (t.to, Message::decode(&t.messages[0]).unwrap().kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            (addr(0), MessageKind::KeyHashes),
            (addr(1), MessageKind::Done)
        ]
    );
    assert_eq!(net.nodes[2].stats().pullpush_refused, 1);
    // The refused opener is released at once.
    net.nodes[1]
        .handle_stream(now, addr(2), &replies[1].messages[0])
        .unwrap();
    assert_eq!(net.nodes[1].pullpush_in_flight(), None);
}

#[test]
fn a_reply_to_no_exchange_in_progress_is_ignored_and_counted() {
    let mut net = Net::new(2, manual).without_gossip();
    let now = net.now;
    net.nodes[1]
        .cas(now, "k", |_: Option<&GSet>| Some(GSet::of(&["x"])))
        .unwrap();
    let opening = net.nodes[0].start_pullpush(now, addr(1), false).unwrap();
    net.nodes[1].handle_stream(now, addr(0), &opening).unwrap();
    let reply = net.nodes[1].poll_transmit().unwrap();
    net.nodes[0].handle_timeout(now + Duration::from_secs(11));
    net.nodes[0]
        .handle_stream(now, addr(1), &reply.messages[0])
        .unwrap();
    assert_eq!(net.nodes[0].stats().pullpush_unexpected, 1);
    assert!(net.nodes[0].poll_transmit().is_none());
}

#[test]
fn a_rejoin_with_other_live_peers_forwards_what_the_answer_changed() {
    let mut net = Net::new(3, manual).without_gossip();
    let now = net.now;
    net.nodes[1]
        .cas(now, "other-side", |_: Option<&LwwMap>| {
            Some(LwwMap::filled(5))
        })
        .unwrap();
    let queued_before = net.nodes[0].queued().count();
    pullpush(&mut net, 0, 1, true);
    assert_eq!(net.nodes[0].list(""), ["other-side"]);
    // Node 0 knows node 2 alive: its side lacks what node 1 told it, so it gossips it on.
    assert!(net.nodes[0].queued().count() > queued_before);
    assert!(net.nodes[0].queued().any(|b| b.content().len() == 5));
}

#[test]
fn a_join_across_a_healed_split_pushes_what_it_changed_to_both_sides_peers() {
    // Two sides, {0, 1} and {2, 3}, each knowing only its own half alive; no gossip rounds, so
    // nothing reaches a peer unless the exchange sends it there itself.
    let mut net = Net::new(4, manual).without_gossip();
    let now = net.now;
    for (i, j) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
        net.nodes[i].handle_peer_down(now, addr(j));
        net.nodes[j].handle_peer_down(now, addr(i));
    }
    net.nodes[1]
        .cas(now, "left", |_: Option<&LwwMap>| Some(LwwMap::filled(2)))
        .unwrap();
    net.nodes[2]
        .cas(now, "right", |_: Option<&LwwMap>| Some(LwwMap::filled(3)))
        .unwrap();
    // The split heals: node 1 reconnects to node 2.
    net.nodes[1].handle_peer_up(now, addr(2));
    net.nodes[2].handle_peer_up(now, addr(1));
    pullpush(&mut net, 1, 2, true);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.nodes[0].list(""), ["right"], "node 1's side heard it");
    assert_eq!(net.nodes[3].list(""), ["left"], "node 2's side heard it");
    assert_eq!(net.nodes[1].stats().rejoin_pushed, 1);
    assert_eq!(net.nodes[2].stats().rejoin_pushed, 1);
}

/// A ring of `n` instances of 128 tokens, every heartbeat at `at`.
fn big_ring(n: usize, at: u64) -> rumour_ring::Ring {
    let mut ring = rumour_ring::Ring::new();
    for i in 0..n {
        let id = format!("node-{i}");
        let tokens = (0..128u32).map(|t| (i as u32) << 12 | t).collect();
        let instance = rumour_ring::Instance::new(
            format!("10.0.{}.{}:7946", i / 256, i % 256),
            "",
            rumour_ring::State::Active,
            rumour_ring::Tokens::new(tokens),
            rumour_ring::Timestamp(at),
        );
        ring.set_instance(&id, instance).unwrap();
        ring.set_heartbeat(&id, rumour_ring::Timestamp(at)).unwrap();
    }
    ring
}

#[test]
fn rings_one_heartbeat_apart_exchange_one_bucket_of_heartbeats_not_a_digest_per_instance() {
    use rumour_ring::{Ring, Timestamp};
    let mut net = Net::new(2, manual).without_gossip();
    for node in &mut net.nodes {
        node.register::<Ring>();
    }
    let now = net.now;
    let at = crate::support::EPOCH_MILLIS - 10_000;
    net.nodes[0]
        .cas(now, "ring", |_: Option<&Ring>| Some(big_ring(1000, at)))
        .unwrap();
    pullpush(&mut net, 0, 1, true);
    assert_eq!(
        net.nodes[0].get::<Ring>("ring"),
        net.nodes[1].get::<Ring>("ring")
    );

    // One heartbeat on node 0, not gossiped: its gossip change is a few dozen bytes.
    let (version, change) = {
        let before = net.nodes[0].entry("ring").unwrap().version;
        net.nodes[0]
            .cas(now, "ring", |cur: Option<&Ring>| {
                let mut ring = cur.unwrap().clone();
                ring.set_heartbeat("node-7", Timestamp(at + 5_000)).unwrap();
                Some(ring)
            })
            .unwrap();
        let after = net.nodes[0].entry("ring").unwrap().version;
        let queued = net.nodes[0]
            .queued()
            .find(|b| b.version() == after)
            .unwrap()
            .clone();
        (before, queued)
    };
    assert!(net.nodes[0].entry("ring").unwrap().version > version);
    assert!(
        change.content() == [rumour_ring::content_hash("node-7 heartbeat")],
        "{} names",
        change.content().len()
    );
    assert!(
        change.message().len() <= 48,
        "a heartbeat's change is {} bytes",
        change.message().len()
    );

    for (opener, responder) in [(1, 0), (0, 1)] {
        let mut net = Net::new(2, manual).without_gossip();
        for node in &mut net.nodes {
            node.register::<Ring>();
        }
        let now = net.now;
        net.nodes[0]
            .cas(now, "ring", |_: Option<&Ring>| Some(big_ring(1000, at)))
            .unwrap();
        pullpush(&mut net, 0, 1, true);
        net.nodes[0]
            .cas(now, "ring", |cur: Option<&Ring>| {
                let mut ring = cur.unwrap().clone();
                ring.set_heartbeat("node-7", Timestamp(at + 5_000)).unwrap();
                Some(ring)
            })
            .unwrap();
        let begin = pullpush(&mut net, opener, responder, false);
        let a = net.nodes[0].get::<Ring>("ring").unwrap();
        let b = net.nodes[1].get::<Ring>("ring").unwrap();
        assert_eq!(a, b);
        assert_eq!(b.heartbeat_of("node-7"), Some(Timestamp(at + 5_000)));
        let exchange = net.since(begin);
        let total = bytes(exchange);
        let sizes: Vec<(MessageKind, usize)> = exchange
            .iter()
            .map(|d| (d.message().kind(), d.bytes.len()))
            .collect();
        // 1,000 per-instance digests alone were about 20 KB.
        assert!(total < 1_500, "{total} bytes: {sizes:?}");
    }
}

#[test]
fn the_periodic_exchange_waits_for_a_first_change_pauses_while_quiet_and_resumes_with_a_change() {
    let mut net = Net::new(4, |c| Config {
        pullpush_interval: Some(Duration::from_secs(1)),
        pullpush_quiet_periods: std::num::NonZeroU32::new(3),
        ..c
    })
    .without_gossip();
    let summaries = |net: &Net, from: usize| {
        net.log[from..]
            .iter()
            .filter(|d| d.message().kind() == MessageKind::Summary)
            .count()
    };
    let paused = |net: &Net| -> u64 { net.nodes.iter().map(|n| n.stats().pullpush_quiet).sum() };
    // Stores that never changed have nothing to reconcile: no exchange at all.
    net.run_for(Duration::from_secs(10));
    assert_eq!(summaries(&net, 0), 0, "none before the first change");
    assert!(paused(&net) >= 4 * 9, "{} paused", paused(&net));
    // A change starts them: the writer at once, the others as they merge it.
    let write = |net: &mut Net, key: &str| {
        let now = net.now;
        net.nodes[2]
            .cas(now, key, |_: Option<&LwwMap>| {
                Some(LwwMap::default().with("inst-2", "active"))
            })
            .unwrap();
    };
    write(&mut net, "ring");
    let changed_from = net.log.len();
    net.run_until(Duration::from_secs(20), |net| {
        net.nodes.iter().all(|n| n.get::<LwwMap>("ring").is_some())
    })
    .expect("the change reaches every machine through pull-push");
    assert!(summaries(&net, changed_from) > 0);
    // Three quiet intervals later every machine has paused again.
    net.run_for(Duration::from_secs(5));
    let quiet_from = net.log.len();
    let paused_before = paused(&net);
    net.run_for(Duration::from_secs(20));
    assert_eq!(summaries(&net, quiet_from), 0, "none while quiet");
    assert!(paused(&net) - paused_before >= 4 * 19);
    // The next change resumes them.
    write(&mut net, "other-ring");
    let resumed_from = net.log.len();
    net.run_for(Duration::from_secs(3));
    assert!(
        summaries(&net, resumed_from) > 0,
        "a change resumes the exchanges"
    );
}
