//! Stories of an outsider's packets against a cluster: forged deaths at extreme incarnations,
//! member floods, reflection attempts. Each asserts the outcome, on the virtual-time harness.
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_swim::message::{
    Alive, Dead, Exchange, IndirectPing, MemberState, Message, Ping, StateExchange, Suspect,
};
use rumour_swim::{
    Config, Event, Incarnation, NodeName, State, Swim, suspicion_max, suspicion_min,
};

use crate::harness::{Cluster, addr, lan, name};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// An address no member uses: the attacker's (or a victim's, when spoofed).
fn outsider(i: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, (i % 250) as u8 + 1], 10_000 + i))
}

fn failures_of(c: &Cluster, victim: usize) -> usize {
    (0..c.len())
        .map(|i| {
            c.events_of(
                i,
                |e| matches!(e, Event::MemberFailed(m) if m.name == name(victim)),
            )
            .count()
        })
        .sum()
}

fn own_incarnation(c: &Cluster, i: usize) -> u32 {
    c.node(i).local_member().incarnation.0
}

#[test]
fn a_forged_death_at_the_largest_incarnation_takes_nobody_out() {
    let mut c = Cluster::converged(5, lan(), 31);
    let victim = 4;
    let jump = lan().max_incarnation_jump().get();
    // Every two seconds for a minute, one datagram "from node 2" declaring the victim dead at
    // u32::MAX, to a different node each time.
    for round in 0..30 {
        let forged = Message::Dead(Dead {
            name: name(victim),
            incarnation: Incarnation(u32::MAX),
            from: name(2),
        });
        c.inject(round % 4, addr(2), &forged);
        assert_ne!(
            c.view(round % 4, victim),
            Some(State::Dead),
            "not applied as stated"
        );
        c.run_for(secs(2));
    }
    assert_eq!(
        failures_of(&c, victim),
        0,
        "nobody ever declared the victim dead"
    );
    let took = c.run_until(secs(5), Cluster::all_alive);
    assert!(took.is_some(), "everyone alive again");
    let own = own_incarnation(&c, victim);
    assert!(
        own < 30 * (jump + 1),
        "the victim refuted in small steps: {own}"
    );
    for i in 0..4 {
        let held = c.incarnation(i, victim).unwrap().0;
        assert!(
            held <= own,
            "node {i} holds {held}, above the victim's own {own}"
        );
    }
    assert!(c.node(0).stats().incarnations_clamped + c.node(1).stats().incarnations_clamped > 0);
}

#[test]
fn after_forged_deaths_a_real_crash_is_still_detected_within_the_formula_bound() {
    let n = 5;
    let mut c = Cluster::converged(n, lan(), 32);
    let victim = 4;
    for round in 0..5 {
        let forged = Message::Dead(Dead {
            name: name(victim),
            incarnation: Incarnation(u32::MAX),
            from: name(1),
        });
        c.inject(round % 4, addr(1), &forged);
        c.run_for(secs(2));
    }
    c.run_until(secs(5), Cluster::all_alive)
        .expect("everyone alive");
    c.crash(victim);
    let took = c
        .run_until(secs(120), |c| c.all_see(victim, State::Dead))
        .expect("the crash is detected");
    // The bound of `a_crashed_member_is_declared_dead_within_the_formula_bound`.
    let p = lan().probe_interval();
    let min = suspicion_min(4, n, p);
    let bound = p * (2 * (n as u32 - 1)) + p + suspicion_max(6, min) + secs(1);
    println!("crash detected everywhere in {took:?} (bound {bound:?})");
    assert!(took <= bound, "{took:?} > {bound:?}");
}

#[test]
fn forged_claims_cannot_pin_an_incarnation_at_the_ceiling() {
    let mut c = Cluster::converged(4, lan(), 33);
    let victim = 3;
    let jump = lan().max_incarnation_jump().get();
    let before = own_incarnation(&c, victim);
    // An accusation about the victim sent to the victim itself, at u32::MAX.
    let suspect = Message::Suspect(Suspect {
        name: name(victim),
        incarnation: Incarnation(u32::MAX),
        from: name(0),
    });
    c.inject(victim, outsider(1), &suspect);
    let after = own_incarnation(&c, victim);
    assert_eq!(
        after,
        before + jump + 1,
        "refuted one jump above, not at the ceiling"
    );
    // An alive about the victim at u32::MAX, sent to another member.
    let alive = Message::Alive(Alive {
        name: name(victim),
        addr: addr(victim),
        incarnation: Incarnation(u32::MAX),
        meta: Bytes::new(),
    });
    c.inject(0, outsider(2), &alive);
    let held = c.incarnation(0, victim).unwrap().0;
    assert!(held <= after + jump, "held {held}");
    c.run_for(secs(5));
    // The victim can still refute anything: a current accusation makes it climb by one.
    let current = c.incarnation(0, victim).unwrap();
    let suspect = Message::Suspect(Suspect {
        name: name(victim),
        incarnation: current,
        from: name(0),
    });
    c.inject(0, addr(0), &suspect);
    c.run_until(secs(10), Cluster::all_alive)
        .expect("the victim refutes");
    assert!(own_incarnation(&c, victim) < 4 * (jump + 1));
    assert_eq!(failures_of(&c, victim), 0);
}

/// The table's name index keeps 24-bit slots: a larger table is a configuration error, not a
/// silent cap.
#[test]
fn a_table_over_max_members_is_refused_at_build() {
    let build = |n: usize| {
        lan()
            .to_builder()
            .max_members(NonZeroUsize::new(n).unwrap())
            .build()
    };
    assert!(build(rumour_swim::MAX_MEMBERS).is_ok());
    let error = build(rumour_swim::MAX_MEMBERS + 1).unwrap_err();
    assert!(error.to_string().contains("max_members"), "{error}");
}

/// A configuration with a small table, so that a flood fills it quickly.
fn small_table() -> Config {
    lan()
        .to_builder()
        .max_members(NonZeroUsize::new(500).unwrap())
        .build()
        .unwrap()
}

fn forged_alive(i: u32) -> Message {
    Message::Alive(Alive {
        name: NodeName::new(format!("forged-{i:06}")).unwrap(),
        addr: SocketAddr::from(([198, 51, (i / 250 % 250) as u8, (i % 250) as u8 + 1], 7946)),
        incarnation: Incarnation(1),
        meta: Bytes::new(),
    })
}

#[test]
fn a_member_flood_stays_within_the_table_and_starves_no_real_work() {
    let config = small_table();
    let mut c = Cluster::new(6, config.clone(), 34);
    for i in 1..5 {
        c.join(i, 0);
    }
    c.run_until(secs(60), |c| {
        (0..5).all(|i| (0..5).all(|j| c.view(i, j) == Some(State::Alive)))
    })
    .expect("five converge");
    c.run_for(secs(5));
    let probes_before: Vec<u64> = (0..5).map(|i| c.node(i).stats().probes).collect();
    let flood_start = c.now;
    // 10,000 forged alives, 100 every 100 ms, to node 0 and node 1.
    for batch in 0..100u32 {
        for k in 0..100u32 {
            let i = batch * 100 + k;
            c.inject((i % 2) as usize, outsider(i as u16), &forged_alive(i));
        }
        c.run_for(Duration::from_millis(100));
        for node in 0..5 {
            let held = c.node(node).members().count();
            assert!(held <= 500, "node {node} holds {held} members");
        }
        if batch == 50 {
            // A real newcomer joins in the middle of the flood.
            c.join(5, 0);
        }
    }
    let flood = c.now - flood_start;
    for (i, before) in probes_before.iter().enumerate() {
        let stats = c.node(i).stats();
        assert_eq!(stats.suspicions, 0, "node {i} suspected nobody");
        assert_eq!(stats.failed_probes, 0, "node {i} probed only real members");
        let probes = stats.probes - before;
        let expected = flood.as_secs() - 1;
        assert!(probes >= expected, "node {i}: {probes} probes in {flood:?}");
    }
    let evicted: u64 = (0..5).map(|i| c.node(i).stats().members_evicted).sum();
    assert!(evicted > 0, "the table filled and evicted forged entries");
    // The newcomer is in.
    c.run_until(secs(30), Cluster::all_alive)
        .expect("the newcomer is seen alive everywhere");
    // The forged entries leave within unconfirmed_timeout of being learned.
    c.run_for(config.unconfirmed_timeout() + config.probe_interval() * 2);
    for i in 0..6 {
        let held: Vec<_> = c.node(i).members().map(|m| m.name.clone()).collect();
        assert_eq!(held.len(), 6, "node {i} holds {held:?}");
    }
    assert_eq!(failures_of(&c, 0) + failures_of(&c, 5), 0);
}

#[test]
fn forged_members_draw_only_bounded_bare_pings_to_the_addresses_they_name() {
    let mut c = Cluster::converged(3, lan(), 35);
    let mut received = 0u64;
    for i in 0..2_000u32 {
        let alive = forged_alive(i);
        received += alive.encode().len() as u64;
        c.inject(0, outsider(i as u16), &alive);
    }
    let stray_before = c.stray_bytes;
    c.run_for(secs(60));
    let stray = c.stray_bytes - stray_before;
    println!("{received} forged bytes received; {stray} bytes sent to forged addresses in 60 s");
    // Verification pings only, bare: at most two per forged entry, and here (every forged
    // address on its own IP) the bytes stay a small multiple of what the attacker sent.
    assert!(stray <= 2 * 2_000 * 40, "{stray}");
    assert!(stray <= received * 3, "{stray} vs {received}");
    // Forged entries that all name one victim's IP draw at most four pings a probe period.
    let (received, stray) = flood_one_host(36, SocketAddr::from(([203, 0, 113, 9], 1)));
    println!("one victim: {received} forged bytes received; {stray} bytes sent to it in 60 s");
    assert!(stray <= 4 * 62 * 40, "{stray}");
    assert!(stray < received, "{stray} vs {received}");
    // Forged entries naming the host of a real member (other ports of its IP): the host has
    // proven one member to node 0, so it may draw four more pings a period, no more.
    let (received, stray) = flood_one_host(37, SocketAddr::new(addr(1).ip(), 10_000));
    println!("a member's host: {received} forged bytes received; {stray} bytes sent to it in 60 s");
    assert!(stray <= 2 * 4 * 62 * 40, "{stray}");
    assert!(stray < received, "{stray} vs {received}");
}

/// Injects 2,000 forged members at node 0 of a converged 3-node cluster, all on `first`'s IP
/// (ports counting up from it), and runs a minute: the forged bytes received and the bytes
/// sent to the forged addresses.
fn flood_one_host(seed: u64, first: SocketAddr) -> (u64, u64) {
    let mut c = Cluster::converged(3, lan(), seed);
    let mut received = 0u64;
    for i in 0..2_000u16 {
        let alive = Message::Alive(Alive {
            name: NodeName::new(format!("forged-{i:06}")).unwrap(),
            addr: SocketAddr::new(first.ip(), first.port() + i),
            incarnation: Incarnation(1),
            meta: Bytes::new(),
        });
        received += alive.encode().len() as u64;
        c.inject(0, outsider(i), &alive);
    }
    let stray_before = c.stray_bytes;
    c.run_for(secs(60));
    (received, c.stray_bytes - stray_before)
}

#[test]
fn the_admission_hook_refuses_members_from_gossip_pings_and_state_exchanges() {
    let now = Instant::now();
    let rng = ChaCha8Rng::seed_from_u64(1);
    let mut swim = Swim::new(lan(), name(0), addr(0), &b""[..], rng, now).unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    swim.set_admission(Some(std::sync::Arc::new(move |m| {
        counter.fetch_add(1, Ordering::Relaxed);
        !m.name.as_str().starts_with("forged")
    })));
    swim.handle_packet(now, outsider(1), &forged_alive(1).encode())
        .unwrap();
    let Message::Alive(source) = forged_alive(2) else {
        unreachable!()
    };
    let ping = Message::Ping(Ping {
        seq: 1,
        target: name(0),
        source,
    });
    swim.handle_packet(now, outsider(2), &ping.encode())
        .unwrap();
    let entry = |n: &str, i: u8| MemberState {
        name: NodeName::new(n).unwrap(),
        addr: SocketAddr::from(([10, 9, 0, i], 1)),
        incarnation: Incarnation(1),
        meta: Bytes::new(),
        state: State::Alive,
    };
    let state = Message::State(StateExchange {
        exchange: Exchange::Reply,
        join: false,
        source: name(1),
        source_addr: addr(1),
        members: vec![entry("forged-x", 1), entry("real", 2)],
    });
    swim.handle_stream(now, addr(1), &state.encode()).unwrap();
    assert_eq!(swim.stats().admission_refused, 3);
    assert!(
        swim.members()
            .all(|m| !m.name.as_str().starts_with("forged"))
    );
    assert!(swim.member("real").is_some());
    assert_eq!(asked.load(Ordering::Relaxed), 4);
    swim.set_admission(None);
    swim.handle_packet(now, outsider(1), &forged_alive(1).encode())
        .unwrap();
    assert!(swim.member("forged-000001").is_some());
}

fn drain(swim: &mut Swim) -> Vec<rumour_swim::Transmit> {
    std::iter::from_fn(|| swim.poll_transmit()).collect()
}

#[test]
fn no_reply_goes_to_an_address_a_message_merely_names() {
    let now = Instant::now();
    let rng = ChaCha8Rng::seed_from_u64(2);
    let mut swim = Swim::new(lan(), name(0), addr(0), &b""[..], rng, now).unwrap();
    drain(&mut swim);
    let victim = outsider(7);
    let attacker = outsider(8);
    let named = |n: &str| Alive {
        name: NodeName::new(n).unwrap(),
        addr: victim,
        incarnation: Incarnation(1),
        meta: Bytes::from(vec![0; 200]),
    };
    // A ping naming the victim as its source: the ack goes to the packet's source, bare.
    let ping = Message::Ping(Ping {
        seq: 1,
        target: name(0),
        source: named("p"),
    });
    swim.handle_packet(now, attacker, &ping.encode()).unwrap();
    let out = drain(&mut swim);
    assert!(out.iter().all(|t| t.to == attacker), "{out:?}");
    assert!(out.iter().map(|t| t.len_bytes()).sum::<usize>() < ping.encode().len());
    // A reliable ping over a stream from another host naming the victim: no answer.
    swim.handle_stream(now, attacker, &ping.encode()).unwrap();
    assert!(drain(&mut swim).is_empty());
    // A state request over a stream from another host naming the victim: no reply.
    let request = Message::State(StateExchange {
        exchange: Exchange::Request,
        join: true,
        source: NodeName::new("s").unwrap(),
        source_addr: victim,
        members: Vec::new(),
    });
    swim.handle_stream(now, attacker, &request.encode())
        .unwrap();
    assert!(drain(&mut swim).is_empty());
    // An indirect ping naming a target that is no member at that address: refused.
    let indirect = Message::IndirectPing(IndirectPing {
        seq: 2,
        target: NodeName::new("t").unwrap(),
        target_addr: victim,
        nack: true,
        source: named("q"),
    });
    swim.handle_packet(now, attacker, &indirect.encode())
        .unwrap();
    swim.handle_timeout(now + lan().probe_timeout());
    let out = drain(&mut swim);
    assert!(
        out.iter().all(|t| t.to != victim || t.len_bytes() < 200),
        "{out:?}"
    );
    let stats = swim.stats();
    assert_eq!((stats.replies_refused, stats.relays_refused), (2, 1));
}

#[test]
fn a_state_exchange_over_the_configured_size_is_refused_whole() {
    let now = Instant::now();
    let rng = ChaCha8Rng::seed_from_u64(3);
    let config = lan()
        .to_builder()
        .max_state_members(NonZeroUsize::new(10).unwrap())
        .build()
        .unwrap();
    let mut swim = Swim::new(config, name(0), addr(0), &b""[..], rng, now).unwrap();
    let members = (0..11u8)
        .map(|i| MemberState {
            name: NodeName::new(format!("m{i}")).unwrap(),
            addr: SocketAddr::from(([10, 9, 0, i], 1)),
            incarnation: Incarnation(1),
            meta: Bytes::new(),
            state: State::Alive,
        })
        .collect();
    let state = Message::State(StateExchange {
        exchange: Exchange::Request,
        join: true,
        source: name(1),
        source_addr: addr(1),
        members,
    });
    assert!(swim.handle_stream(now, addr(1), &state.encode()).is_err());
    assert_eq!(swim.members().count(), 1);
    assert_eq!(swim.stats().states_refused, 1);
}

#[test]
fn the_broadcast_queue_is_bounded_in_bytes() {
    let now = Instant::now();
    let rng = ChaCha8Rng::seed_from_u64(4);
    let config = lan()
        .to_builder()
        .broadcast_queue_bytes(NonZeroUsize::new(10_000).unwrap())
        .build()
        .unwrap();
    let mut swim = Swim::new(config, name(0), addr(0), &b""[..], rng, now).unwrap();
    for i in 0..1_000u32 {
        // A member with a long name learns of and then hears the goodbye of: the goodbye is
        // queued for gossip (an alive about a member never confirmed is not).
        let long = NodeName::new(format!("{i:06}-{}", "x".repeat(200))).unwrap();
        let alive = Message::Alive(Alive {
            name: long.clone(),
            addr: outsider(i as u16),
            incarnation: Incarnation(1),
            meta: Bytes::new(),
        });
        swim.handle_packet(now, outsider(1), &alive.encode())
            .unwrap();
        let left = Message::Dead(Dead {
            name: long.clone(),
            incarnation: Incarnation(1),
            from: long,
        });
        swim.handle_packet(now, outsider(1), &left.encode())
            .unwrap();
        assert!(swim.pending_broadcast_bytes() <= 10_000 + 2 * swim.pending_broadcasts());
    }
    assert!(swim.stats().broadcasts_dropped > 900);
}
