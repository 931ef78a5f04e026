//! Arbitrary bytes into every `handle_*` never panic, and leave the machine usable.
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{GSet, LwwMap, Net, addr};
use bytes::Bytes;
use proptest::prelude::*;
use rumour_gossip::{Config, Gossip};
use rumour_wire::CountedKind;

/// Real messages of every kind, recorded from machines that gossip and reconcile.
fn corpus() -> &'static [Bytes] {
    static CORPUS: OnceLock<Vec<Bytes>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        // Gossip starts late, so that the first exchanges find stores that differ.
        let mut net = Net::new(3, |c| Config {
            pullpush_interval: Some(Duration::from_secs(1)),
            ..c
        })
        .without_gossip();
        let now = net.now;
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            net.nodes[i]
                .cas(now, key, |_: Option<&LwwMap>| Some(LwwMap::filled(3 + i)))
                .unwrap();
            net.nodes[i]
                .cas(now, "shared", |_: Option<&LwwMap>| {
                    Some(LwwMap::default().with(&format!("n{i}"), "x"))
                })
                .unwrap();
            net.nodes[i]
                .cas(now, "set", |_: Option<&GSet>| Some(GSet::of(&[key])))
                .unwrap();
            net.flush(i);
        }
        net.nodes[0].delete(now, "a");
        let join = net.nodes[1].start_pullpush(now, addr(2), true).unwrap();
        net.send(1, 2, true, join);
        net.run_for(Duration::from_secs(5));
        net.gossip = Some((
            crate::support::GOSSIP_INTERVAL,
            crate::support::GOSSIP_NODES,
        ));
        let now = net.now;
        net.nodes[2]
            .cas(now, "late", |_: Option<&GSet>| Some(GSet::of(&["late"])))
            .unwrap();
        net.flush(2);
        net.run_for(Duration::from_secs(5));
        let mut corpus: Vec<Bytes> = net.log.iter().map(|d| d.bytes.clone()).collect();
        corpus.sort();
        corpus.dedup();
        corpus
    })
}

/// A machine holding a little of everything.
fn target() -> Gossip {
    let start = std::time::Instant::now();
    let mut g = crate::support::machine(9, start, Config::lan(addr(9)));
    for i in 0..3 {
        g.handle_peer_up(start, addr(i));
    }
    g.cas(start, "shared", |_: Option<&LwwMap>| {
        Some(LwwMap::filled(4))
    })
    .unwrap();
    g.cas(start, "set", |_: Option<&GSet>| Some(GSet::of(&["z"])))
        .unwrap();
    let _ = g.start_pullpush(start, addr(0), false);
    g
}

/// Feeds `bytes` to every entry point and drains every output.
fn feed(g: &mut Gossip, bytes: &[u8], step_millis: u64) {
    let base = std::time::Instant::now();
    let refused = g.stats().refusals();
    let packet = g.handle_packet(base, addr(0), bytes);
    let stream = g.handle_stream(base, addr(1), bytes);
    if packet.is_err() || stream.is_err() {
        assert!(g.stats().refusals() > refused, "errors are counted");
    }
    g.handle_timeout(base + Duration::from_millis(step_millis));
    while g.poll_transmit().is_some() {}
    while g.poll_event().is_some() {}
    let _ = g.poll_timeout();
    let _ = g.stats();
    // Still usable.
    let _ = g.get::<LwwMap>("shared");
    let _ = g.fill_broadcasts(3, 1384);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), step in 0u64..100_000) {
        let mut g = target();
        feed(&mut g, &bytes, step);
    }

    #[test]
    fn mutated_real_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        step in 0u64..100_000,
    ) {
        let corpus = corpus();
        let mut bytes = corpus[pick.index(corpus.len())].to_vec();
        for (at, byte) in edits {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len().saturating_sub(3)));
        let mut g = target();
        feed(&mut g, &bytes, step);
    }

    #[test]
    fn membership_and_timer_input_in_any_order_never_panics(
        ops in proptest::collection::vec((0u8..4, 0usize..5, 0u64..120_000), 0..40),
    ) {
        let mut g = target();
        let base = std::time::Instant::now();
        for (op, peer, at) in ops {
            let now = base + Duration::from_millis(at);
            match op {
                0 => g.handle_peer_up(now, addr(peer)),
                1 => g.handle_peer_down(now, addr(peer)),
                2 => g.handle_timeout(now),
                _ => {
                    let _ = g.start_pullpush(now, addr(peer), at % 2 == 0);
                }
            }
            while g.poll_transmit().is_some() {}
        }
    }
}

#[test]
fn the_corpus_holds_every_message_kind() {
    use rumour_gossip::{Message, MessageKind};
    let kinds: std::collections::BTreeSet<MessageKind> = corpus()
        .iter()
        .map(|b| Message::decode(b).unwrap().kind())
        .collect();
    assert_eq!(
        kinds.len(),
        <MessageKind as CountedKind>::ALL.len(),
        "{kinds:?}"
    );
}

#[test]
fn an_oversized_message_is_refused_unread() {
    let mut g = target();
    let limit = g.config().max_message_bytes;
    let err = g
        .handle_stream(std::time::Instant::now(), addr(0), &vec![0u8; limit + 1])
        .unwrap_err();
    assert!(matches!(err, rumour_gossip::Error::TooLarge { .. }));
}
