//! The digest-first periodic exchange on a few machines: an idle cluster sends digests only,
//! and a table that differs is still repaired by a full exchange.

use std::time::Duration;

use crate::harness::{Cluster, lan, name};
use rumour_swim::State;
use rumour_swim::message::{Message, MessageKind};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Full-state and digest messages sent, summed over the nodes.
fn exchanges(c: &Cluster) -> (u64, u64) {
    (0..c.len()).fold((0, 0), |(states, digests), i| {
        let sent = c.node(i).stats().sent;
        (
            states + sent.get(MessageKind::State).messages,
            digests + sent.get(MessageKind::Digest).messages,
        )
    })
}

/// A cluster of `n` machines whose first six joined node 0, converged and settled for a minute;
/// the others have not joined yet.
fn six_settled(n: usize, config: rumour_swim::Config, seed: u64) -> Cluster {
    let mut c = Cluster::new(n, config, seed);
    for i in 1..6 {
        c.join(i, 0);
    }
    c.run_until(secs(60), |c| {
        (0..6).all(|i| (0..6).all(|j| c.view(i, j) == Some(State::Alive)))
    })
    .expect("six members converge");
    c.run_for(secs(60));
    c
}

#[test]
fn an_idle_converged_cluster_exchanges_digests_and_no_full_state() {
    let mut c = Cluster::converged(8, lan(), 21);
    // Joins and their follow-ups settle first.
    c.run_for(secs(60));
    let (states, digests) = exchanges(&c);
    c.run_for(secs(300));
    let (states_after, digests_after) = exchanges(&c);
    assert_eq!(states_after, states, "no full state while the tables agree");
    // Eight members, one exchange per node per 30 s: about 80 in 300 s.
    assert!(digests_after - digests >= 60, "{}", digests_after - digests);
    let matched: u64 = (0..c.len())
        .map(|i| c.node(i).stats().digests_matched)
        .sum();
    assert!(matched >= 60, "{matched}");
}

#[test]
fn a_member_that_missed_a_joiner_learns_it_through_a_digest_that_differs() {
    let config = lan().to_builder().rejoin_interval(None).build().unwrap();
    let mut c = six_settled(7, config, 22);
    // Node 2 never hears of node 6 by gossip, piggyback or ping, nor from anything node 6
    // sends itself: only a full exchange with another member can tell it.
    c.rule = Box::new(|l| {
        let carries_joiner = match l.message {
            Message::Alive(a) => a.name == name(6),
            Message::Ping(p) => p.source.name == name(6),
            Message::IndirectPing(p) => p.source.name == name(6),
            Message::State(s) => s.source == name(6),
            Message::Digest(d) => d.source == name(6),
            _ => false,
        };
        let blocked = (l.to == 2 && carries_joiner) || (l.from == 2 && l.to == 6);
        !blocked
    });
    let (states, _) = exchanges(&c);
    c.join(6, 0);
    let took = c
        .run_until(secs(600), |c| c.view(2, 6) == Some(State::Alive))
        .expect("node 2 learns of the joiner");
    println!("node 2 learned of the joiner after {took:?}");
    let (states_after, _) = exchanges(&c);
    assert!(states_after > states);
    // One periodic exchange per member per 30 s: someone opens one with node 2, or node 2
    // with someone, within a few periods.
    assert!(took < secs(180), "{took:?}");
}

/// A member that joined after the joiner's first follow-up, whose news never reaches the
/// joiner by gossip, piggyback or ping: with no periodic exchange at all, the joiner's second
/// follow-up (a digest, which differs) is what tells it.
#[test]
fn a_joiner_that_missed_a_later_member_learns_it_at_its_second_follow_up() {
    let config = lan()
        .to_builder()
        .rejoin_interval(None)
        .reconnect_interval(None)
        .pullpush_interval(None)
        .build()
        .unwrap();
    let (joiner, late) = (6, 7);
    let mut c = six_settled(8, config, 23);
    // Datagrams never tell the joiner of the late member; full-state exchanges still do.
    c.rule = Box::new(move |l| {
        let about_late = match l.message {
            Message::Alive(a) => a.name == name(late),
            Message::Suspect(s) => s.name == name(late),
            Message::Ping(p) => p.source.name == name(late),
            Message::IndirectPing(p) => p.source.name == name(late),
            _ => false,
        };
        !(l.to == joiner && !l.reliable && (about_late || l.from == late))
    });
    c.join(joiner, 0);
    // The joiner's first follow-up leaves within a probe interval of its join's answer; the
    // late member joins after that.
    c.run_for(secs(1) + secs(1) / 10);
    c.join(late, 0);
    let took = c
        .run_until(secs(20), |c| c.view(joiner, late) == Some(State::Alive))
        .expect("the joiner learns of the late member without any periodic exchange");
    println!("the joiner learned of the late member after {took:?}");
    let digests: u64 = c
        .node(joiner)
        .stats()
        .sent
        .get(MessageKind::Digest)
        .messages;
    assert_eq!(digests, 1, "the second follow-up is a digest");
    // `gossip_interval * retransmit_limit` after the first follow-up, plus the round trips.
    assert!(took < secs(3), "{took:?}");
}
