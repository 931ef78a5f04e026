//! Changes and whole stores handed in through another wire's envelope (the memberlist wire
//! mode's dskit `KeyValuePair`s): merged, limited and counted as the native messages are.
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

use std::time::{Duration, Instant};

use bytes::Bytes;
use rumour_gossip::{CasOutcome, Config, Error, Gossip, KeyChange, Marker, MessageKind};
use rumour_ring::Timestamp;

use crate::support::{EPOCH_MILLIS, GSet, addr, machine};

fn three(config: impl Fn(Config) -> Config) -> (Gossip, Gossip, Gossip, Instant) {
    let start = Instant::now();
    let m = |i| machine(i, start, config(Config::lan(addr(i))));
    (m(0), m(1), m(2), start)
}

/// The changes `g` would put in one datagram.
fn broadcasts(g: &mut Gossip) -> Vec<Bytes> {
    let budget = g.config().datagram_budget();
    g.fill_broadcasts(3, budget)
}

#[test]
fn a_change_handed_in_merges_counts_and_forwards_as_the_same_change_received_natively() {
    let (mut a, mut native, mut enveloped, now) = three(|c| c);
    let outcome = a.cas(now, "set", |_: Option<&GSet>| Some(GSet::of(&["x", "y"])));
    assert!(matches!(outcome, Ok(CasOutcome::Updated { .. })));
    let messages = broadcasts(&mut a);
    assert_eq!(messages.len(), 1);
    let change = KeyChange::decode_broadcast(&messages[0]).expect("a change");
    assert_eq!(change.key, "set");
    assert_eq!(change.codec, "gset");
    native.handle_packet(now, addr(0), &messages[0]).unwrap();
    enveloped
        .handle_change(now, addr(0), change.clone(), messages[0].len())
        .unwrap();
    for g in [&native, &enveloped] {
        assert_eq!(g.get::<GSet>("set"), Some(GSet::of(&["x", "y"])));
        let stats = g.stats();
        assert_eq!(stats.merges, 1);
        assert_eq!(
            stats.received.get(MessageKind::Change).messages,
            1,
            "counted as a change received"
        );
        assert_eq!(stats.forwarded_queued, 1, "what it changed is forwarded");
    }
    // Again: nothing changes, nothing more is forwarded.
    enveloped
        .handle_change(now, addr(0), change, messages[0].len())
        .unwrap();
    let stats = enveloped.stats();
    assert_eq!((stats.merges, stats.merges_unchanged), (1, 1));
    assert_eq!(stats.forwarded_queue.enqueued, 1);
    // What it forwards is again a change an embedder can decode.
    let forwarded = broadcasts(&mut enveloped);
    assert_eq!(
        KeyChange::decode_broadcast(&forwarded[0]).map(|c| c.key),
        Some("set".to_owned())
    );
    assert_eq!(KeyChange::decode_broadcast(b"\x03junk"), None);
}

#[test]
fn a_change_handed_in_is_held_to_the_limits_and_the_clock_of_a_native_one() {
    let (_, mut b, _, now) = three(|c| Config {
        max_key_len: 8,
        max_value_bytes: 64,
        ..c
    });
    let change = |key: &str, value: Vec<u8>, at: u64| KeyChange {
        key: key.to_owned(),
        codec: "gset".into(),
        value: Some(Bytes::from(value)),
        marker: Marker {
            updated: Timestamp(at),
            deleted: false,
        },
    };
    let value = rumour_ring::Mergeable::encode(&GSet::of(&["x"]));
    let long = change("a-key-too-long", value.clone(), EPOCH_MILLIS);
    assert!(matches!(
        b.handle_change(now, addr(0), long, 30),
        Err(Error::Limit {
            what: "key bytes",
            ..
        })
    ));
    let large = change("k", vec![0; 65], EPOCH_MILLIS);
    assert!(b.handle_change(now, addr(0), large, 80).is_err());
    let future = change("k", value.clone(), EPOCH_MILLIS + 3_600_000);
    assert!(matches!(
        b.handle_change(now, addr(0), future, 30),
        Err(Error::FutureTimestamp { .. })
    ));
    let unknown = KeyChange {
        codec: "nobody".into(),
        ..change("k", value.clone(), EPOCH_MILLIS)
    };
    assert!(b.handle_change(now, addr(0), unknown, 30).is_ok());
    let huge = change("k", value, EPOCH_MILLIS);
    assert!(matches!(
        b.handle_change(now, addr(0), huge, 65 << 20),
        Err(Error::TooLarge { .. })
    ));
    let stats = b.stats();
    assert_eq!(stats.key_too_long, 1);
    assert_eq!(stats.value_too_large, 1);
    assert_eq!(stats.clock_refused, 1);
    assert_eq!(stats.unknown_codec, 1);
    assert_eq!(stats.invalid, 1);
    assert_eq!(stats.keys, 0, "nothing was stored");
    assert!(!b.has_broadcasts());
    assert!(b.has_codec("gset") && !b.has_codec("nobody"));
}

#[test]
fn a_full_state_handed_in_merges_every_entry_and_a_bad_entry_only_itself() {
    let (mut a, mut b, mut c, now) = three(|c| Config {
        max_keys: 3,
        max_key_len: 16,
        ..c
    });
    for key in ["one", "two", "three"] {
        a.cas(now, key, |_: Option<&GSet>| Some(GSet::of(&[key])))
            .unwrap();
    }
    assert!(a.delete(now + Duration::from_millis(1), "three"));
    let state = a.full_state();
    assert_eq!(
        state.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["one", "three", "two"]
    );
    assert!(state[1].marker.deleted && state[1].value.is_some());
    let later = now + Duration::from_millis(5);
    assert_eq!(
        b.handle_full_state(later, addr(0), state.clone(), 100),
        Ok(0)
    );
    assert_eq!(b.get::<GSet>("one"), Some(GSet::of(&["one"])));
    assert_eq!(b.get::<GSet>("two"), Some(GSet::of(&["two"])));
    // A deleted key this node never held is not brought back.
    assert_eq!(b.get::<GSet>("three"), None);
    let stats = b.stats();
    assert_eq!(stats.received.get(MessageKind::FullState).messages, 1);
    assert_eq!(stats.merges, 2);
    assert_eq!(
        stats.forwarded_queued, 2,
        "what the state changed is forwarded"
    );

    // One entry over a limit is refused; the others merge.
    let mut bad = state.clone();
    bad[0].key = "a-key-much-too-long".into();
    assert_eq!(c.handle_full_state(later, addr(0), bad, 100), Ok(1));
    assert_eq!(c.get::<GSet>("two"), Some(GSet::of(&["two"])));
    assert_eq!(c.stats().key_too_long, 1);
    // More entries than max_keys: refused whole, before anything merges.
    let (_, mut d, _, _) = three(|c| Config { max_keys: 2, ..c });
    assert!(matches!(
        d.handle_full_state(later, addr(0), state.clone(), 100),
        Err(Error::Limit { what: "keys", .. })
    ));
    assert_eq!(d.stats().keys, 0);
    assert!(matches!(
        d.handle_full_state(later, addr(0), Vec::new(), 65 << 20),
        Err(Error::TooLarge { .. })
    ));
}
