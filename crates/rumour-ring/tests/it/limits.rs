//! Hostile rings: declared sizes past the limits, far-future timestamps, tombstones that try to
//! live forever or vanish early.

use rumour_ring::{
    Codec, Instance, Mergeable, Ring, RingCodec, RingLimits, State, Timestamp, Tokens,
};

const NOW: Timestamp = Timestamp(1_700_000_000_000);
const LATEST: Timestamp = Timestamp(1_700_000_000_000 + 300_000);

fn active(addr: &str, tokens: Vec<u32>, at: Timestamp) -> Instance {
    Instance::new(addr, "z", State::Active, Tokens::new(tokens), at)
}

/// One instance whose `n` consecutive tokens cost one bit each on the wire.
fn dense_ring(n: u32) -> Ring {
    let mut ring = Ring::new();
    ring.set_instance("dense", active("a:1", (0..n).collect(), NOW))
        .unwrap();
    ring
}

#[test]
fn a_ring_declaring_more_tokens_than_the_limit_is_refused_before_its_tokens_are_read() {
    // 1,000,000 one-bit tokens: 125 kB on the wire, 4 MB once decoded.
    let bytes = dense_ring(1_000_000).encode();
    assert!(bytes.len() < 130_000);
    let error = Ring::decode(&bytes).unwrap_err();
    assert!(
        error.to_string().contains("more tokens than the limit"),
        "{error}"
    );
    // That check runs on the declared count, before the token vector is reserved (the input
    // could hold them all: the other check, on the bits left, passes).
    // With the limit raised the same bytes decode, within 32 times their size in tokens.
    let limits = RingLimits {
        max_tokens_per_instance: 1_000_000,
        ..RingLimits::default()
    };
    let ring = Ring::decode_with(&bytes, limits).unwrap();
    let tokens = ring.instance("dense").unwrap().tokens().len();
    assert_eq!(tokens, 1_000_000);
    assert!(tokens * 4 <= 32 * bytes.len());
}

#[test]
fn a_ring_declaring_more_instances_than_the_limit_is_refused() {
    let mut ring = Ring::new();
    for i in 0..101 {
        ring.set_heartbeat(&format!("ghost-{i}"), NOW).unwrap();
    }
    let bytes = ring.encode();
    let codec = RingCodec::new(RingLimits {
        max_instances: 100,
        ..RingLimits::default()
    });
    let error = codec.decode(&bytes).unwrap_err();
    assert!(
        error.to_string().contains("more instances than the limit"),
        "{error}"
    );
    assert!(RingCodec::default().decode(&bytes).is_ok());
}

#[test]
fn a_merge_adds_no_new_instance_past_the_limit_but_still_updates_known_ones() {
    let limits = RingLimits {
        max_instances: 2,
        ..RingLimits::default()
    };
    let mut mine = Ring::new();
    mine.set_instance("a", active("a:1", vec![1], NOW)).unwrap();
    mine.set_instance("b", active("b:1", vec![2], NOW)).unwrap();
    let mut mine = Ring::decode_with(&mine.encode(), limits).unwrap();
    let mut theirs = Ring::new();
    let later = Timestamp(NOW.0 + 1);
    theirs
        .set_instance("a", active("a:2", vec![1], later))
        .unwrap();
    for i in 0..20 {
        theirs
            .set_instance(&format!("new-{i:02}"), active("n:1", vec![100 + i], NOW))
            .unwrap();
    }
    let change = mine.merge(&theirs, None).expect("a changed");
    assert_eq!(mine.instance("a").unwrap().addr(), "a:2");
    assert_eq!(mine.len(), 2);
    assert_eq!(change.len(), 1);
    assert_eq!(mine.refused_instances(), 20);
    // Small changes take the other merge path: same rule.
    let mut one = Ring::new();
    one.set_instance("late", active("l:1", vec![7], NOW))
        .unwrap();
    assert_eq!(mine.merge(&one, None), None);
    assert_eq!(mine.refused_instances(), 21);
}

#[test]
fn far_future_descriptions_and_heartbeats_are_dropped_on_receipt() {
    let mut received = Ring::new();
    received
        .set_instance("ok", active("o:1", vec![1], NOW))
        .unwrap();
    received.set_heartbeat("ok", Timestamp(u64::MAX)).unwrap();
    let forged_left = active("v:1", vec![], Timestamp(u64::MAX));
    received
        .set_instance(
            "victim",
            Instance {
                state: State::Left,
                ..forged_left
            },
        )
        .unwrap();
    let registered = Instance {
        registered_at: Timestamp(LATEST.0 + 1),
        ..active("r:1", vec![3], NOW)
    };
    received.set_instance("registered", registered).unwrap();
    assert_eq!(received.receive(NOW, LATEST), 3);
    assert_eq!(received.heartbeat_of("ok"), Some(Timestamp(0)));
    assert!(received.instance("ok").is_some());
    assert!(received.instance("victim").is_none());
    assert!(received.instance("registered").is_none());

    // The victim's real description survives the merge.
    let mut mine = Ring::new();
    mine.set_instance("victim", active("v:1", vec![9], NOW))
        .unwrap();
    mine.merge(&received, None);
    assert_eq!(mine.instance("victim").unwrap().state(), State::Active);
}

#[test]
fn tombstones_age_from_when_they_were_received_not_from_their_own_time() {
    let timeout = 300_000;
    // Written at the edge of the skew window (5 minutes ahead) and far in the past.
    for written in [LATEST, Timestamp(1)] {
        let mut incoming = Ring::new();
        incoming
            .set_instance(
                "gone",
                Instance {
                    state: State::Left,
                    ..active("g:1", vec![], written)
                },
            )
            .unwrap();
        assert_eq!(incoming.receive(NOW, LATEST), 0);
        let mut mine = Ring::new();
        mine.merge(&incoming, None);
        assert_eq!(mine.tombstone_count(), 1);
        // Just before the timeout counted from receipt: still held.
        let before = Timestamp(NOW.0 + timeout - 1);
        assert_eq!(
            mine.remove_tombstones(before.saturating_sub_millis(timeout))
                .removed,
            0
        );
        // At the timeout: forgotten, whatever time it carried.
        let after = Timestamp(NOW.0 + timeout + 1);
        assert_eq!(
            mine.remove_tombstones(after.saturating_sub_millis(timeout))
                .removed,
            1
        );
    }
}

#[test]
fn the_owner_outbids_a_stored_tombstone_at_the_edge_of_the_skew_window() {
    // A forged Left for "me" written 5 minutes ahead was accepted.
    let mut stored = Ring::new();
    stored
        .set_instance(
            "me",
            Instance {
                state: State::Left,
                ..active("m:1", vec![], LATEST)
            },
        )
        .unwrap();
    // The owner registers again at its own time, through a local compare-and-swap.
    let mut desired = Ring::new();
    desired
        .set_instance("me", active("m:1", vec![5], NOW))
        .unwrap();
    let change = stored.merge(&desired, Some(NOW)).expect("the owner wins");
    let me = stored.instance("me").unwrap();
    assert_eq!(me.state(), State::Active);
    assert_eq!(me.instance().updated_at, Timestamp(LATEST.0 + 1));
    assert_eq!(change.instance("me").unwrap().state(), State::Active);
}
