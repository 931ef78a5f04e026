//! Stories told with two to eight machines wired by hand on virtual time.

use std::time::Duration;

use crate::harness::{Cluster, lan, name};
use rumour_swim::message::Message;
use rumour_swim::{Event, State, suspicion_max, suspicion_min, suspicion_timeout};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn members_joining_through_one_seed_all_see_each_other_alive() {
    let mut c = Cluster::new(5, lan(), 1);
    for i in 1..5 {
        c.join(i, 0);
    }
    let took = c
        .run_until(secs(10), Cluster::all_alive)
        .expect("converges");
    println!("5 members converged in {took:?}");
    assert!(took < secs(3), "took {took:?}");
    for i in 0..5 {
        let joined = c
            .events_of(i, |e| matches!(e, Event::MemberJoined(_)))
            .count();
        assert_eq!(joined, 4, "node {i} reports each other member joining once");
    }
}

#[test]
fn two_members_join_and_probe_each_other_without_suspicion() {
    let mut c = Cluster::new(2, lan(), 2);
    c.join(1, 0);
    c.run_for(secs(30));
    assert!(c.all_alive());
    for i in 0..2 {
        let stats = c.node(i).stats();
        assert!(stats.probes >= 20, "node {i} probed {} times", stats.probes);
        assert_eq!(stats.failed_probes, 0);
        assert_eq!(stats.suspicions, 0);
        assert_eq!(c.node(i).health_score(), 0);
    }
}

#[test]
fn a_crashed_member_is_declared_dead_within_the_formula_bound() {
    let n = 5;
    let mut c = Cluster::converged(n, lan(), 3);
    c.crash(4);
    let took = c
        .run_until(secs(120), |c| c.all_see(4, State::Dead))
        .expect("the crash is detected");
    // Bound: the first prober reaches the victim within two probe cycles of the round-robin,
    // the probe takes one interval, then the suspicion timeout (max without confirmations),
    // then dissemination.
    let p = lan().probe_interval();
    let min = suspicion_min(4, n, p);
    let bound = p * (2 * (n as u32 - 1)) + p + suspicion_max(6, min) + secs(1);
    println!("crash detected everywhere in {took:?} (bound {bound:?})");
    assert!(took <= bound, "{took:?} > {bound:?}");
    for i in 0..4 {
        let failed = c.events_of(
            i,
            |e| matches!(e, Event::MemberFailed(m) if m.name == name(4)),
        );
        assert_eq!(failed.count(), 1, "node {i} reports the failure once");
    }
}

#[test]
fn a_suspect_confirmed_by_several_members_is_declared_dead_sooner() {
    let n = 5;
    let mut c = Cluster::converged(n, lan(), 4);
    c.crash(4);
    c.run_until(secs(120), |c| c.all_see(4, State::Dead))
        .expect("the crash is detected");
    let p = lan().probe_interval();
    let min = suspicion_min(4, n, p);
    let max = suspicion_max(6, min);
    let confirmations: u64 = (0..4).map(|i| c.node(i).stats().confirmations).sum();
    assert!(
        confirmations >= 2,
        "survivors confirmed each other's suspicion"
    );
    // The first member to suspect the victim, and how long its suspicion lasted.
    let (first, suspected_at) = (0..4)
        .filter_map(|i| {
            c.events_of(
                i,
                |e| matches!(e, Event::MemberSuspected(m) if m.name == name(4)),
            )
            .next()
            .map(|(t, _)| (i, *t))
        })
        .min_by_key(|&(_, t)| t)
        .expect("someone suspected the victim");
    let (failed_at, _) = c
        .events_of(first, |e| matches!(e, Event::MemberFailed(_)))
        .next()
        .expect("it declared the victim failed");
    let lasted = *failed_at - suspected_at;
    let after_one = suspicion_timeout(1, 2, min, max);
    println!(
        "suspicion lasted {lasted:?}: min {min:?}, after one confirmation {after_one:?}, max {max:?}"
    );
    assert!(lasted <= after_one, "{lasted:?} > {after_one:?}");
    assert!(lasted < max);
}

#[test]
fn a_false_suspicion_is_refuted_and_nobody_declares_the_member_dead() {
    let mut c = Cluster::converged(4, lan(), 5);
    let before = c.incarnation(0, 3).unwrap();
    // Node 3 is unreachable for a few seconds: long enough to be suspected, shorter than the
    // suspicion timeout.
    c.rule = Box::new(|l| l.from != 3 && l.to != 3);
    c.run_until(secs(30), |c| {
        (0..3).any(|i| c.view(i, 3) == Some(State::Suspect))
    })
    .expect("node 3 is suspected");
    c.heal();
    c.run_until(secs(30), Cluster::all_alive)
        .expect("the suspicion is refuted");
    assert!(
        c.incarnation(0, 3).unwrap() > before,
        "refuted with a higher incarnation"
    );
    assert!(c.node(3).stats().refutations >= 1);
    assert!(
        c.events_of(3, |e| matches!(e, Event::RefutedSelf { .. }))
            .count()
            >= 1
    );
    for i in 0..3 {
        let failed = c
            .events_of(i, |e| matches!(e, Event::MemberFailed(_)))
            .count();
        assert_eq!(failed, 0, "node {i} declared nobody dead");
    }
}

#[test]
fn a_member_that_leaves_is_seen_as_left_quickly_everywhere() {
    let mut c = Cluster::converged(5, lan(), 6);
    c.leave(4);
    let took = c
        .run_until(secs(10), |c| c.all_see(4, State::Left))
        .expect("the goodbye spreads");
    println!("leave seen everywhere in {took:?}");
    assert!(
        took < Duration::from_millis(100),
        "sent directly, not gossiped: {took:?}"
    );
    for i in 0..4 {
        let left = c.events_of(
            i,
            |e| matches!(e, Event::MemberLeft(m) if m.name == name(4)),
        );
        assert_eq!(left.count(), 1);
        assert!(
            c.events_of(i, |e| matches!(e, Event::MemberFailed(_)))
                .next()
                .is_none()
        );
    }
    // The others stop probing the member that left, and forget it after the dead time.
    c.run_for(lan().gossip_to_the_dead_time() + secs(10));
    assert!((0..4).all(|i| c.view(i, 4).is_none()), "left member reaped");
}

#[test]
fn a_restarted_member_ends_up_alive_everywhere() {
    let mut c = Cluster::converged(4, lan(), 7);
    // Node 3 lives a while and raises its incarnation (metadata updates) before it crashes.
    for round in 0..4u8 {
        let now = c.now;
        c.node_mut(3).set_meta(now, vec![round]).unwrap();
        c.flush(3);
        c.run_for(secs(1));
    }
    let old = c.incarnation(0, 3).unwrap();
    c.crash(3);
    c.run_until(secs(120), |c| c.all_see(3, State::Dead))
        .expect("crash detected");
    // It comes back with a fresh machine: incarnation 1, far below what the others hold.
    c.restart(3, 0);
    let took = c
        .run_until(secs(30), Cluster::all_alive)
        .expect("the restarted member is alive everywhere");
    println!("restarted member alive everywhere after {took:?}");
    for i in 0..3 {
        assert!(
            c.incarnation(i, 3).unwrap() > old,
            "node {i} holds a newer incarnation"
        );
    }
}

#[test]
fn a_member_restarted_before_it_was_declared_dead_recovers_too() {
    let mut c = Cluster::converged(4, lan(), 8);
    c.crash(2);
    c.run_until(secs(60), |c| {
        (0..4).any(|i| c.view(i, 2) == Some(State::Suspect))
    })
    .expect("suspected");
    c.restart(2, 1);
    c.run_until(secs(60), Cluster::all_alive)
        .expect("alive everywhere");
    c.run_for(secs(60));
    assert!(c.all_alive(), "and stays alive");
}

#[test]
fn a_split_cluster_heals_by_itself() {
    // Only the reconnect list can heal this split: no seed re-join, no periodic exchange.
    let config = lan()
        .to_builder()
        .rejoin_interval(None)
        .pullpush_interval(None)
        .build()
        .unwrap();
    let mut c = Cluster::converged(6, config.clone(), 9);
    c.partition(vec![0, 1, 2]);
    // Each half declares the other dead, then reaps it.
    let forget = c.run_until(secs(300), |c| {
        (0..3).all(|i| (3..6).all(|j| c.view(i, j).is_none() && c.view(j, i).is_none()))
    });
    println!("halves forgot each other after {forget:?}");
    assert!(forget.is_some(), "each half reaps the other");
    c.heal();
    let took = c
        .run_until(secs(600), Cluster::all_alive)
        .expect("the halves find each other again");
    println!("healed {took:?} after the network came back");
    let reconnects: u64 = (0..6).map(|i| c.node(i).stats().reconnect_attempts).sum();
    assert!(reconnects > 0);
    assert!(took <= config.reconnect_interval().unwrap() * 3, "{took:?}");
}

#[test]
fn a_split_cluster_heals_through_the_seed_rejoin() {
    let config = lan()
        .to_builder()
        .reconnect_interval(None)
        .pullpush_interval(None)
        .build()
        .unwrap();
    let mut c = Cluster::converged(4, config.clone(), 10);
    c.partition(vec![0, 1]);
    c.run_until(secs(300), |c| (2..4).all(|j| c.view(j, 0).is_none()))
        .expect("the seed is forgotten by the other half");
    c.heal();
    let took = c.run_until(secs(600), Cluster::all_alive).expect("healed");
    println!("healed by re-joining the seed {took:?} after the network came back");
    assert!(took <= config.rejoin_interval().unwrap() * 2, "{took:?}");
}

#[test]
fn a_joiner_missed_by_one_member_is_learned_without_a_periodic_exchange() {
    let config = lan()
        .to_builder()
        .pullpush_interval(None)
        .rejoin_interval(None)
        .build()
        .unwrap();
    let mut c = Cluster::new(6, config, 11);
    for i in 1..5 {
        c.join(i, 0);
    }
    c.run_until(secs(30), |c| {
        (0..5).all(|i| (0..5).all(|j| c.view(i, j) == Some(State::Alive)))
    })
    .expect("five members converge");
    // Node 2 misses every gossiped update about the joiner (node 5), and every full-state
    // exchange, for longer than the whole retransmit budget takes.
    let until = c.now + secs(10);
    c.rule = Box::new(move |l| {
        let about_joiner = match l.message {
            Message::Alive(a) => a.name == name(5),
            Message::State(_) => true,
            _ => false,
        };
        !(l.to == 2 && about_joiner && l.now < until)
    });
    c.join(5, 0);
    let took = c
        .run_until(secs(60), |c| c.view(2, 5) == Some(State::Alive))
        .expect("node 2 learns of the joiner");
    println!("node 2 learned of the joiner after {took:?}");
    assert!(took < secs(20), "{took:?}");
    c.run_until(secs(10), Cluster::all_alive)
        .expect("converged");
}

#[test]
fn a_stalled_member_does_not_suspect_members_whose_acks_wait_unread() {
    let mut c = Cluster::converged(4, lan(), 12);
    for round in 0..20 {
        // Node 0 freezes for 3 s at a time; acks to its probes sit in its socket buffer and
        // its timers fire late, before it reads them.
        let until = c.now + secs(3);
        c.pause(0, until);
        c.run_for(secs(4));
        assert!(c.all_alive(), "round {round}: nobody suspected");
    }
    let stats = c.node(0).stats();
    assert!(stats.stalls > 0, "the stalls were noticed");
    assert_eq!(stats.suspicions, 0);
}

#[test]
fn a_burst_of_joins_causes_no_suspicion_or_refutation() {
    let mut c = Cluster::new(8, lan(), 13);
    for i in 1..8 {
        c.join(i, 0);
    }
    c.run_for(secs(60));
    assert!(c.all_alive());
    for i in 0..8 {
        let s = c.node(i).stats();
        assert_eq!((s.suspicions, s.refutations), (0, 0), "node {i}");
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let mut c = Cluster::converged(5, lan(), seed);
        c.crash(1);
        c.run_for(secs(40));
        (0..5)
            .filter(|&i| c.is_up(i))
            .map(|i| (c.node(i).stats(), c.events[i].len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(14), run(14));
    assert_ne!(run(14), run(15));
}

#[test]
fn ten_percent_datagram_loss_declares_nobody_dead() {
    use rand::{Rng, SeedableRng};
    for reliable_ping in [true, false] {
        let config = lan()
            .to_builder()
            .reliable_ping(reliable_ping)
            .build()
            .unwrap();
        let mut c = Cluster::converged(8, config, 16);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
        c.rule = Box::new(move |l| l.reliable || rng.gen_range(0..10) != 0);
        c.run_for(secs(300));
        let failed: usize = (0..8)
            .map(|i| {
                c.events_of(i, |e| matches!(e, Event::MemberFailed(_)))
                    .count()
            })
            .sum();
        let suspicions: u64 = (0..8).map(|i| c.node(i).stats().suspicions).sum();
        let refutations: u64 = (0..8).map(|i| c.node(i).stats().refutations).sum();
        println!(
            "reliable ping {reliable_ping}: {suspicions} suspicions, {refutations} refutations, {failed} deaths"
        );
        assert_eq!(failed, 0);
        assert!(c.all_alive());
    }
}

#[test]
fn thirty_two_members_converge_and_detect_a_crash_without_false_positives() {
    let n = 32;
    let mut c = Cluster::new(n, lan(), 17);
    for i in 1..n {
        c.join(i, 0);
    }
    let took = c
        .run_until(secs(60), Cluster::all_alive)
        .expect("converges");
    println!("{n} members converged in {took:?}");
    c.crash(7);
    let detected = c
        .run_until(secs(180), |c| c.all_see(7, State::Dead))
        .expect("crash detected");
    println!("crash detected everywhere in {detected:?}");
    c.run_for(secs(60));
    for i in (0..n).filter(|&i| i != 7) {
        let failed: Vec<_> = c
            .events_of(
                i,
                |e| matches!(e, Event::MemberFailed(m) if m.name != name(7)),
            )
            .collect();
        assert!(
            failed.is_empty(),
            "node {i} declared a live member dead: {failed:?}"
        );
    }
}
