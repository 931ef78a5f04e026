//! One machine driven by hand: inputs crafted in the test, outputs inspected.
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_swim::message::{
    Ack, Alive, Dead, Exchange, IndirectPing, MemberState, Message, MessageKind, Nack, Ping,
    StateDigest, StateExchange, Suspect,
};
use rumour_swim::{Config, Error, Event, Incarnation, NodeName, PullPush, State, Swim, Transmit};
use rumour_wire::Delivery;

fn name(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 7946))
}

fn machine(config: Config) -> (Swim, Instant) {
    let now = Instant::now();
    let rng = ChaCha8Rng::seed_from_u64(42);
    let swim = Swim::new(config, name("a"), addr(1), Bytes::new(), rng, now).unwrap();
    (swim, now)
}

fn alive(n: &str, last: u8, inc: u32) -> Alive {
    Alive {
        name: name(n),
        addr: addr(last),
        incarnation: Incarnation(inc),
        meta: Bytes::new(),
    }
}

fn feed(swim: &mut Swim, now: Instant, message: Message) {
    swim.handle_packet(now, addr(200), &message.encode())
        .unwrap();
}

fn drain(swim: &mut Swim) -> Vec<Transmit> {
    std::iter::from_fn(|| swim.poll_transmit()).collect()
}

fn decoded(t: &Transmit) -> Vec<Message> {
    t.messages
        .iter()
        .map(|m| Message::decode(m).unwrap())
        .collect()
}

/// Runs the machine's timers up to `until`, collecting what it sends.
fn run(swim: &mut Swim, until: Instant) -> Vec<Transmit> {
    let mut out = Vec::new();
    while let Some(at) = swim.poll_timeout().filter(|&at| at <= until) {
        swim.handle_timeout(at);
        out.extend(drain(swim));
    }
    out
}

/// Like [`run`], and also the embedder's gossip tick every `gossip_interval` from `from`:
/// queued updates to `gossip_nodes` random members, as the node drives it.
fn run_with_gossip(
    swim: &mut Swim,
    config: &Config,
    from: Instant,
    until: Instant,
) -> Vec<Transmit> {
    let mut out = Vec::new();
    let mut next_gossip = from + config.gossip_interval();
    loop {
        let timer = swim.poll_timeout().filter(|&at| at <= until);
        let tick = Some(next_gossip).filter(|&at| at <= until);
        match (timer, tick) {
            (Some(at), None) => swim.handle_timeout(at),
            (Some(at), Some(g)) if at <= g => swim.handle_timeout(at),
            (_, Some(at)) => {
                next_gossip = at + config.gossip_interval();
                for to in swim.gossip_targets(at, config.gossip_nodes().get()) {
                    let messages = swim.fill_broadcasts(config.datagram_budget());
                    if messages.is_empty() {
                        break;
                    }
                    out.push(Transmit {
                        to,
                        delivery: Delivery::Datagram,
                        messages,
                        pullpush: None,
                    });
                }
            }
            (None, None) => return out,
        }
        out.extend(drain(swim));
    }
}

/// Member `n` (at 10.0.0.`last`, incarnation `inc`) pings the machine from its own address
/// and answers the verification ping that follows: it is then confirmed. Queues drained.
fn confirm(swim: &mut Swim, now: Instant, n: &str, last: u8, inc: u32) {
    let ping = Message::Ping(Ping {
        seq: 1,
        target: swim.local_name().clone(),
        source: alive(n, last, inc),
    });
    swim.handle_packet(now, addr(last), &ping.encode()).unwrap();
    let verification = drain(swim)
        .iter()
        .filter(|t| t.to == addr(last))
        .flat_map(decoded)
        .find_map(|m| match m {
            Message::Ping(p) if p.target == name(n) => Some(p.seq),
            _ => None,
        })
        .expect("a verification ping");
    let ack = Message::Ack(Ack { seq: verification });
    swim.handle_packet(now, addr(last), &ack.encode()).unwrap();
    assert!(swim.is_confirmed(n));
    drain(swim);
}

/// A machine that knows members b, c, d (at 10.0.0.2-4), all confirmed, with queues drained.
fn with_peers(config: Config) -> (Swim, Instant) {
    let (mut swim, now) = machine(config);
    for (n, last) in [("b", 2), ("c", 3), ("d", 4)] {
        feed(&mut swim, now, Message::Alive(alive(n, last, 1)));
    }
    for (n, last) in [("b", 2), ("c", 3), ("d", 4)] {
        confirm(&mut swim, now, n, last, 1);
    }
    drain(&mut swim);
    while swim.poll_event().is_some() {}
    (swim, now)
}

#[test]
fn metadata_over_the_limit_is_an_error_and_changes_nothing() {
    let (mut swim, now) = machine(Config::lan());
    let err = swim.set_meta(now, vec![0u8; 513]).unwrap_err();
    assert!(
        matches!(err, Error::MetaTooLarge { len: 513, max: 512 }),
        "{err}"
    );
    assert_eq!(swim.local_member().incarnation, Incarnation(1));
    swim.set_meta(now, vec![0u8; 512]).unwrap();
    assert_eq!(swim.local_member().incarnation, Incarnation(2));
    let rng = ChaCha8Rng::seed_from_u64(1);
    let too_big = Swim::new(Config::lan(), name("x"), addr(9), vec![0u8; 600], rng, now);
    assert!(matches!(too_big, Err(Error::MetaTooLarge { .. })));
}

#[test]
fn received_metadata_over_the_configured_limit_is_refused() {
    let (mut swim, now) = machine(Config::lan());
    let mut big = alive("b", 2, 1);
    big.meta = Bytes::from(vec![1u8; 513]);
    let err = swim
        .handle_packet(now, addr(2), &Message::Alive(big).encode())
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(swim.member("b").is_none());
}

#[test]
fn bad_bytes_return_an_error_and_change_nothing() {
    let (mut swim, now) = with_peers(Config::lan());
    let members: Vec<_> = swim.members().collect();
    let timeout = swim.poll_timeout();
    for bytes in [&b""[..], &[0xff; 3], &[7, 1, 2, 3, 4, 5]] {
        assert!(swim.handle_packet(now, addr(2), bytes).is_err());
        assert!(swim.handle_stream(now, addr(2), bytes).is_err());
    }
    assert_eq!(swim.members().collect::<Vec<_>>(), members);
    assert_eq!(swim.poll_timeout(), timeout);
    assert!(swim.poll_transmit().is_none());
    assert!(swim.poll_event().is_none());
    assert_eq!(swim.stats().decode_errors, 6);
}

#[test]
fn messages_on_the_wrong_channel_are_refused() {
    let (mut swim, now) = machine(Config::lan());
    let state = Message::State(StateExchange {
        exchange: Exchange::Request,
        join: true,
        source: name("b"),
        source_addr: addr(2),
        members: vec![],
    });
    let err = swim
        .handle_packet(now, addr(2), &state.encode())
        .unwrap_err();
    assert!(matches!(err, Error::WrongChannel { .. }), "{err}");
    let nack = Message::Nack(Nack { seq: 1 });
    assert!(swim.handle_stream(now, addr(2), &nack.encode()).is_err());
}

#[test]
fn a_ping_is_answered_to_the_packet_source_with_gossip_only_for_a_confirmed_member() {
    let (mut swim, now) = machine(Config::lan());
    let ping = Message::Ping(Ping {
        seq: 77,
        target: name("a"),
        source: alive("b", 2, 1),
    });
    // A ping naming b's address from elsewhere: the bare ack goes to the packet's source.
    swim.handle_packet(now, addr(99), &ping.encode()).unwrap();
    let out = drain(&mut swim);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].to,
        addr(99),
        "to the packet source, not the named address"
    );
    assert_eq!(decoded(&out[0]), [Message::Ack(Ack { seq: 77 })], "bare");
    assert_eq!(
        swim.member("b").unwrap().state,
        State::Alive,
        "the ping taught us b"
    );
    // Once b answered a ping of ours, its acks carry the queued gossip.
    while swim.poll_event().is_some() {}
    confirm(&mut swim, now, "b", 2, 1);
    let events: Vec<_> = std::iter::from_fn(|| swim.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::MemberConfirmed(m) if m.name == name("b"))),
        "{events:?}"
    );
    swim.handle_packet(now, addr(2), &ping.encode()).unwrap();
    let out = drain(&mut swim);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, addr(2));
    let messages = decoded(&out[0]);
    assert_eq!(messages[0], Message::Ack(Ack { seq: 77 }));
    assert!(
        messages.len() >= 2,
        "the queued alives ride along: {messages:?}"
    );
}

#[test]
fn a_ping_meant_for_another_member_is_ignored() {
    let (mut swim, now) = machine(Config::lan());
    feed(
        &mut swim,
        now,
        Message::Ping(Ping {
            seq: 1,
            target: name("previous-owner-of-this-address"),
            source: alive("b", 2, 1),
        }),
    );
    assert!(drain(&mut swim).is_empty());
}

#[test]
fn a_reliable_ping_is_answered_over_a_stream() {
    let (mut swim, now) = machine(Config::lan());
    let ping = Message::Ping(Ping {
        seq: 5,
        target: name("a"),
        source: alive("b", 2, 1),
    });
    swim.handle_stream(now, addr(2), &ping.encode()).unwrap();
    let out = drain(&mut swim);
    assert_eq!(out.len(), 1);
    assert!(out[0].delivery == Delivery::Stream);
    assert_eq!(decoded(&out[0]), [Message::Ack(Ack { seq: 5 })]);
}

#[test]
fn an_unanswered_probe_goes_indirect_then_suspects_the_target() {
    let config = Config::lan();
    let (mut swim, now) = with_peers(config.clone());
    // Find the first probe and its target.
    let first = run(&mut swim, now + config.probe_interval());
    let ping = first.iter().find_map(|t| match decoded(t).first() {
        Some(Message::Ping(p)) => Some((t.to, p.clone())),
        _ => None,
    });
    let (target_addr, ping) = ping.expect("a probe was sent");
    let started = swim.poll_timeout().unwrap() - config.probe_timeout();
    let indirect = run(&mut swim, started + config.probe_timeout());
    let requests: Vec<_> = indirect
        .iter()
        .filter(|t| matches!(decoded(t).first(), Some(Message::IndirectPing(_))))
        .collect();
    assert_eq!(requests.len(), 2, "the two other members are asked");
    assert!(requests.iter().all(|t| t.to != target_addr));
    let reliable: Vec<_> = indirect
        .iter()
        .filter(|t| t.delivery == Delivery::Stream)
        .collect();
    assert_eq!(reliable.len(), 1, "a reliable ping runs beside them");
    assert_eq!(reliable[0].to, target_addr);
    // One helper answers with a nack, the other stays silent.
    feed(&mut swim, started, Message::Nack(Nack { seq: ping.seq }));
    run(&mut swim, started + config.probe_interval());
    assert_eq!(
        swim.member(ping.target.as_str()).unwrap().state,
        State::Suspect
    );
    assert_eq!(swim.health_score(), 1, "one missing nack");
    let stats = swim.stats();
    assert_eq!(
        (stats.failed_probes, stats.indirect_probes, stats.suspicions),
        (1, 2, 1)
    );
}

#[test]
fn an_ack_ends_the_probe_and_keeps_the_target_alive() {
    let config = Config::lan();
    let (mut swim, now) = with_peers(config.clone());
    let first = run(&mut swim, now + config.probe_interval());
    let seq = first
        .iter()
        .find_map(|t| match decoded(t).first() {
            Some(Message::Ping(p)) => Some(p.seq),
            _ => None,
        })
        .unwrap();
    feed(&mut swim, now, Message::Ack(Ack { seq }));
    let later = run(&mut swim, now + config.probe_interval() * 3 / 2);
    assert!(
        later
            .iter()
            .all(|t| !matches!(decoded(t).first(), Some(Message::IndirectPing(_))))
    );
    assert!(swim.members().all(|m| m.state == State::Alive));
}

#[test]
fn a_suspect_is_pinged_together_with_its_suspicion() {
    let config = Config::lan();
    let (mut swim, now) = machine(config.clone());
    feed(&mut swim, now, Message::Alive(alive("b", 2, 3)));
    confirm(&mut swim, now, "b", 2, 3);
    let suspect = Suspect {
        name: name("b"),
        incarnation: Incarnation(3),
        from: name("c"),
    };
    feed(&mut swim, now, Message::Suspect(suspect));
    drain(&mut swim);
    let out = run(&mut swim, now + config.probe_interval());
    let to_b: Vec<_> = out
        .iter()
        .filter(|t| t.to == addr(2))
        .map(decoded)
        .collect();
    let buddy = to_b
        .iter()
        .find(|ms| matches!(ms.first(), Some(Message::Ping(_))));
    let buddy = buddy.expect("b was probed");
    assert!(buddy[1..].iter().any(|m| matches!(m,
        Message::Suspect(s) if s.name == name("b") && s.from == name("a"))));
}

#[test]
fn an_indirect_ping_is_relayed_and_the_ack_forwarded() {
    let config = Config::lan();
    let (mut swim, now) = machine(config);
    feed(&mut swim, now, Message::Alive(alive("c", 3, 1)));
    drain(&mut swim);
    let request = IndirectPing {
        seq: 900,
        target: name("c"),
        target_addr: addr(3),
        nack: true,
        source: alive("b", 2, 1),
    };
    let bytes = Message::IndirectPing(request).encode();
    swim.handle_packet(now, addr(2), &bytes).unwrap();
    let out = drain(&mut swim);
    // The requester, new to this node, gets a verification ping; c gets the relayed one.
    let to_c = out.iter().find(|t| t.to == addr(3)).expect("a ping to c");
    let relayed = match decoded(to_c).first() {
        Some(Message::Ping(p)) => p.clone(),
        other => panic!("expected a ping to c, got {other:?}"),
    };
    assert_eq!(relayed.target, name("c"));
    assert!(
        out.iter().any(|t| t.to == addr(2)
            && matches!(decoded(t).first(), Some(Message::Ping(p)) if p.target == name("b"))),
        "the requester is verified"
    );
    let ack = Message::Ack(Ack { seq: relayed.seq }).encode();
    swim.handle_packet(now, addr(3), &ack).unwrap();
    let out = drain(&mut swim);
    assert_eq!(out[0].to, addr(2), "to the request's source");
    assert_eq!(decoded(&out[0])[0], Message::Ack(Ack { seq: 900 }));
}

#[test]
fn an_indirect_ping_whose_target_stays_silent_is_nacked() {
    let config = Config::lan();
    let (mut swim, now) = machine(config.clone());
    feed(&mut swim, now, Message::Alive(alive("c", 3, 1)));
    let request = IndirectPing {
        seq: 901,
        target: name("c"),
        target_addr: addr(3),
        nack: true,
        source: alive("b", 2, 1),
    };
    let bytes = Message::IndirectPing(request).encode();
    swim.handle_packet(now, addr(2), &bytes).unwrap();
    drain(&mut swim);
    swim.handle_timeout(now + config.probe_timeout());
    let out = drain(&mut swim);
    let nack = out
        .iter()
        .find(|t| t.to == addr(2))
        .expect("a nack to the requester");
    assert_eq!(decoded(nack)[0], Message::Nack(Nack { seq: 901 }));
}

#[test]
fn an_accusation_is_refuted_with_a_higher_incarnation_and_costs_health() {
    let (mut swim, now) = with_peers(Config::lan());
    let accusation = Dead {
        name: name("a"),
        incarnation: Incarnation(7),
        from: name("b"),
    };
    feed(&mut swim, now, Message::Dead(accusation));
    assert_eq!(swim.local_member().incarnation, Incarnation(8));
    assert_eq!(swim.local_member().state, State::Alive);
    assert_eq!(swim.health_score(), 1);
    let events: Vec<_> = std::iter::from_fn(|| swim.poll_event()).collect();
    assert!(events.contains(&Event::RefutedSelf {
        incarnation: Incarnation(8)
    }));
    assert!(events.contains(&Event::HealthScoreChanged { score: 1 }));
    let gossip = swim.fill_broadcasts(1400);
    let refutation = gossip.iter().map(|b| Message::decode(b).unwrap()).find(|m| {
        matches!(m, Message::Alive(a) if a.name == name("a") && a.incarnation == Incarnation(8))
    });
    assert!(refutation.is_some(), "the refutation is gossiped");
}

#[test]
fn an_accuser_that_missed_the_refutation_is_sent_the_current_alive_directly() {
    let (mut swim, now) = with_peers(Config::lan());
    let first = Suspect {
        name: name("a"),
        incarnation: Incarnation(1),
        from: name("b"),
    };
    feed(&mut swim, now, Message::Suspect(first.clone()));
    let refuted = swim.local_member().incarnation;
    assert!(refuted > Incarnation(1), "the first accusation is refuted");
    drain(&mut swim);
    // c never heard the refutation and still suspects `a` at the old incarnation.
    let stale = Suspect {
        from: name("c"),
        ..first
    };
    feed(&mut swim, now, Message::Suspect(stale));
    assert_eq!(
        swim.local_member().incarnation,
        refuted,
        "no second refutation"
    );
    let answers: Vec<Message> = drain(&mut swim)
        .iter()
        .filter(|t| t.to == addr(3) && t.delivery == Delivery::Datagram)
        .flat_map(decoded)
        .collect();
    assert!(
        answers.iter().any(
            |m| matches!(m, Message::Alive(a) if a.name == name("a") && a.incarnation == refuted)
        ),
        "c gets a's current alive directly: {answers:?}"
    );
}

#[test]
fn a_join_sends_a_state_request_and_a_request_is_answered() {
    let (mut swim, now) = machine(Config::lan());
    swim.join(now, &[addr(2), addr(1)]).unwrap();
    let out = drain(&mut swim);
    assert_eq!(out.len(), 1, "the local address is skipped");
    assert!(out[0].delivery == Delivery::Stream);
    assert_eq!(out[0].pullpush, Some(PullPush::Request { join: true }));
    let request = Message::State(StateExchange {
        exchange: Exchange::Request,
        join: true,
        source: name("b"),
        source_addr: addr(2),
        members: vec![MemberState {
            name: name("b"),
            addr: addr(2),
            incarnation: Incarnation(1),
            meta: Bytes::new(),
            state: State::Alive,
        }],
    });
    swim.handle_stream(
        now,
        SocketAddr::from(([10, 0, 0, 2], 50_000)),
        &request.encode(),
    )
    .unwrap();
    let out = drain(&mut swim);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].to,
        addr(2),
        "the reply goes to the advertised address"
    );
    assert_eq!(out[0].pullpush, Some(PullPush::Reply));
    assert_eq!(swim.member("b").unwrap().state, State::Alive);
}

#[test]
fn leave_sends_the_goodbye_directly_and_refuses_later_commands() {
    let (mut swim, now) = with_peers(Config::lan());
    swim.leave(now).unwrap();
    let out = drain(&mut swim);
    let goodbyes: Vec<_> = out
        .iter()
        .filter(|t| {
            decoded(t).iter().any(
                |m| matches!(m, Message::Dead(d) if d.name == name("a") && d.from == name("a")),
            )
        })
        .map(|t| t.to)
        .collect();
    assert_eq!(goodbyes.len(), 3, "every member, at once");
    assert_eq!(swim.local_member().state, State::Left);
    assert!(matches!(swim.join(now, &[addr(2)]), Err(Error::Left)));
    assert!(matches!(swim.set_meta(now, Bytes::new()), Err(Error::Left)));
    // A stale goodbye is not refuted after leaving.
    feed(
        &mut swim,
        now,
        Message::Dead(Dead {
            name: name("a"),
            incarnation: Incarnation(1),
            from: name("b"),
        }),
    );
    assert_eq!(swim.local_member().incarnation, Incarnation(1));
}

#[test]
fn datagrams_never_exceed_the_budget_however_full_the_queue() {
    let config = Config::lan();
    let (mut swim, now) = machine(config.clone());
    let mut members: Vec<MemberState> = (0..400u16)
        .map(|i| MemberState {
            name: name(&format!(
                "member-{i:04}-{}",
                "x".repeat(usize::from(i % 200))
            )),
            addr: SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8], 7946)),
            incarnation: Incarnation(1),
            meta: Bytes::from(vec![b'm'; usize::from(i % 200)]),
            state: State::Alive,
        })
        .collect();
    members.push(MemberState {
        name: name("b"),
        addr: addr(2),
        incarnation: Incarnation(1),
        meta: Bytes::new(),
        state: State::Alive,
    });
    let state = Message::State(StateExchange {
        exchange: Exchange::Reply,
        join: true,
        source: name("b"),
        source_addr: addr(2),
        members,
    });
    swim.handle_stream(now, addr(2), &state.encode()).unwrap();
    // b vouches for them; this node passes on no alive about members it has not confirmed,
    // but it passes on their goodbyes (sizes vary with the names).
    for i in 0..400u16 {
        let member = name(&format!(
            "member-{i:04}-{}",
            "x".repeat(usize::from(i % 200))
        ));
        let left = Message::Dead(Dead {
            name: member.clone(),
            incarnation: Incarnation(1),
            from: member,
        });
        swim.handle_packet(now, addr(2), &left.encode()).unwrap();
    }
    assert!(swim.pending_broadcasts() > 300);
    let out = run_with_gossip(&mut swim, &config, now, now + Duration::from_secs(5));
    // Gossip goes to b, the one confirmed member (the others only get bare verification
    // pings until they answer).
    let datagrams: Vec<_> = out
        .iter()
        .filter(|t| t.delivery == Delivery::Datagram && t.to == addr(2))
        .collect();
    assert!(datagrams.len() > 10);
    for t in datagrams {
        let used: usize = t.messages.iter().map(|m| config.packed_len(m.len())).sum();
        assert!(used <= config.datagram_budget());
        assert!(
            // Less room left than the largest goodbye takes (two 211-byte names).
            swim.remaining_budget(t) < 440,
            "datagrams are filled: {}",
            swim.remaining_budget(t)
        );
    }
    for budget in [0, 1, 2, 50, 700, 1384] {
        let batch = swim.fill_broadcasts(budget);
        assert!(
            batch
                .iter()
                .map(|b| config.packed_len(b.len()))
                .sum::<usize>()
                <= budget
        );
    }
}

#[test]
fn the_machine_keeps_no_gossip_timer_and_the_embedder_drives_gossip() {
    let (mut swim, now) = with_peers(Config::lan());
    swim.handle_timeout(now + Duration::from_millis(250));
    let timers_only = drain(&mut swim);
    assert!(
        timers_only.iter().all(|t| t.delivery == Delivery::Stream
            || matches!(decoded(t).first(), Some(Message::Ping(_))))
    );
    let targets = swim.gossip_targets(now, 2);
    assert_eq!(targets.len(), 2);
    assert!(!targets.contains(&addr(1)), "never the local node");
    let batch = swim.fill_broadcasts(1384);
    assert!(!batch.is_empty(), "queued alives come out");
}

#[test]
fn gossip_targets_include_recently_dead_members_but_not_left_ones() {
    let config = Config::lan();
    let (mut swim, now) = with_peers(config.clone());
    feed(
        &mut swim,
        now,
        Message::Dead(Dead {
            name: name("b"),
            incarnation: Incarnation(1),
            from: name("c"),
        }),
    );
    feed(
        &mut swim,
        now,
        Message::Dead(Dead {
            name: name("c"),
            incarnation: Incarnation(1),
            from: name("c"),
        }),
    );
    let targets = swim.gossip_targets(now, 10);
    assert!(targets.contains(&addr(2)) && targets.contains(&addr(4)));
    assert!(
        !targets.contains(&addr(3)),
        "left members are not gossiped to"
    );
    let later = now + config.gossip_to_the_dead_time();
    assert_eq!(swim.gossip_targets(later, 10), [addr(4)]);
}

#[test]
fn a_full_event_queue_drops_and_counts() {
    let config = Config::lan()
        .to_builder()
        .event_queue_capacity(std::num::NonZeroUsize::new(3).unwrap())
        .build()
        .unwrap();
    let (mut swim, now) = machine(config);
    for i in 0..10u8 {
        feed(
            &mut swim,
            now,
            Message::Alive(alive(&format!("m{i}"), 10 + i, 1)),
        );
    }
    assert_eq!(swim.stats().events_dropped, 7);
    assert_eq!(std::iter::from_fn(|| swim.poll_event()).count(), 3);
}

#[test]
fn an_address_conflict_is_refused_and_reported() {
    let (mut swim, now) = with_peers(Config::lan());
    let mut impostor = alive("b", 9, 5);
    impostor.meta = Bytes::from_static(b"impostor");
    feed(&mut swim, now, Message::Alive(impostor));
    assert_eq!(swim.member("b").unwrap().addr, addr(2));
    assert_eq!(swim.stats().conflicts, 1);
    let event = swim.poll_event().unwrap();
    assert_eq!(
        event,
        Event::AddressConflict {
            name: name("b"),
            known: addr(2),
            claimed: addr(9)
        }
    );
}

#[test]
fn stats_count_messages_by_type() {
    let (mut swim, now) = machine(Config::lan());
    let ping = Message::Ping(Ping {
        seq: 1,
        target: name("a"),
        source: alive("b", 2, 1),
    });
    let bytes = ping.encode();
    swim.handle_packet(now, addr(2), &bytes).unwrap();
    let stats = swim.stats();
    assert_eq!(stats.received.get(MessageKind::Ping).messages, 1);
    assert_eq!(
        stats.received.get(MessageKind::Ping).bytes,
        bytes.len() as u64
    );
    assert_eq!(stats.sent.get(MessageKind::Ack).messages, 1);
    assert_eq!(
        stats.sent.get(MessageKind::Ping).messages,
        1,
        "the verification ping back to b"
    );
    assert_eq!(stats.received.total().messages, 1);
}

#[test]
fn a_restarted_member_held_dead_is_sent_its_accusation_and_refutes() {
    // Machine "a" holds b dead at incarnation 6.
    let (mut swim, now) = with_peers(Config::lan());
    feed(&mut swim, now, Message::Alive(alive("b", 2, 6)));
    feed(
        &mut swim,
        now,
        Message::Dead(Dead {
            name: name("b"),
            incarnation: Incarnation(6),
            from: name("c"),
        }),
    );
    drain(&mut swim);
    // b restarted (incarnation 1) and pings a.
    let ping = Message::Ping(Ping {
        seq: 1,
        target: name("a"),
        source: alive("b", 2, 1),
    });
    feed(&mut swim, now, ping);
    let out = drain(&mut swim);
    assert_eq!(
        swim.member("b").unwrap().state,
        State::Dead,
        "a stale alive changes nothing"
    );
    let accusation = out
        .iter()
        .filter(|t| t.to == addr(2))
        .flat_map(decoded)
        .find(|m| matches!(m, Message::Dead(d) if d.name == name("b")));
    assert_eq!(
        accusation,
        Some(Message::Dead(Dead {
            name: name("b"),
            incarnation: Incarnation(6),
            from: name("a")
        }))
    );
    // The restarted b, fed that accusation, refutes above it; a accepts the refutation.
    let rng = ChaCha8Rng::seed_from_u64(9);
    let mut b = Swim::new(Config::lan(), name("b"), addr(2), Bytes::new(), rng, now).unwrap();
    b.handle_packet(now, addr(1), &accusation.unwrap().encode())
        .unwrap();
    assert_eq!(b.local_member().incarnation, Incarnation(7));
    let refutation = b.local_member().clone();
    feed(
        &mut swim,
        now,
        Message::Alive(Alive {
            name: refutation.name,
            addr: refutation.addr,
            incarnation: refutation.incarnation,
            meta: refutation.meta,
        }),
    );
    assert_eq!(swim.member("b").unwrap().state, State::Alive);
}

#[test]
fn a_leaving_member_keeps_gossiping_its_goodbye() {
    let config = Config::lan();
    let (mut swim, now) = with_peers(config.clone());
    swim.leave(now).unwrap();
    drain(&mut swim);
    assert!(
        swim.pending_broadcasts() >= 1,
        "the goodbye is queued for gossip"
    );
    let out = run_with_gossip(&mut swim, &config, now, now + Duration::from_secs(5));
    let goodbyes = out
        .iter()
        .flat_map(decoded)
        .filter(|m| matches!(m, Message::Dead(d) if d.name == name("a")))
        .count();
    assert!(goodbyes >= 1, "gossip carries the goodbye further");
    assert!(
        out.iter()
            .all(|t| !matches!(decoded(t).first(), Some(Message::Ping(_)))),
        "no probes"
    );
}

#[test]
fn the_machine_can_move_between_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Swim>();
    assert_send::<Event>();
}

#[test]
fn a_node_remembers_at_most_64_seeds_for_the_periodic_rejoin() {
    let (mut swim, now) = machine(Config::lan());
    let seed = |i: u16| SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 7946));
    // Seeds given by name are resolved again and again as pods come and go.
    for round in 0..10u16 {
        let seeds: Vec<SocketAddr> = (0..10).map(|i| seed(round * 10 + i)).collect();
        swim.join(now, &seeds).unwrap();
    }
    drain(&mut swim);
    // The periodic rejoin (every 60 to 180 s at LAN settings) contacts the remembered seeds.
    let out = run(&mut swim, now + Duration::from_secs(200));
    let rejoined: std::collections::BTreeSet<SocketAddr> = out
        .iter()
        .filter(|t| t.delivery == Delivery::Stream && t.to.ip().to_string().starts_with("10.1."))
        .map(|t| t.to)
        .collect();
    assert!(!rejoined.is_empty(), "the seeds are re-joined");
    assert!(rejoined.len() <= 64, "{} seeds re-joined", rejoined.len());
    assert!(rejoined.contains(&seed(99)), "the latest seeds are kept");
    assert!(!rejoined.contains(&seed(0)), "the oldest are forgotten");
}

/// LAN with a 2 s periodic exchange, a table that settles 4 s after a change (1 s gossip,
/// 4 retransmits) and probes rare enough that no peer (they never answer here) is suspected
/// before the exchanges come due.
fn exchange_config(digest: bool) -> Config {
    Config::lan()
        .to_builder()
        .probe_interval(Duration::from_secs(60))
        .gossip_interval(Duration::from_secs(1))
        .pullpush_interval(Some(Duration::from_secs(2)))
        .pullpush_digest(digest)
        .build()
        .unwrap()
}

/// The digest the machine sends when a periodic exchange comes due with its table settled
/// (exchanges right after a change send full state), and that transmit.
fn periodic_digest(swim: &mut Swim, now: Instant) -> (Transmit, StateDigest) {
    let out = run(swim, now + Duration::from_secs(10));
    out.into_iter()
        .filter(|t| t.delivery == Delivery::Stream)
        .find_map(|t| match decoded(&t).pop() {
            Some(Message::Digest(d)) => Some((t, d)),
            _ => None,
        })
        .expect("a periodic exchange opens with a digest")
}

#[test]
fn periodic_exchanges_send_full_state_while_the_table_changes_and_digests_once_it_settled() {
    let (mut swim, now) = with_peers(exchange_config(true));
    let kinds = |out: Vec<Transmit>| -> Vec<MessageKind> {
        out.iter()
            .filter(|t| t.delivery == Delivery::Stream)
            .flat_map(decoded)
            .map(|m| m.kind())
            .collect()
    };
    // Full state for the exchanges within 4 s of the change, digests after.
    let full_then_digests = |kinds: &[MessageKind]| {
        let full = kinds
            .iter()
            .take_while(|&&k| k == MessageKind::State)
            .count();
        full >= 1 && full < kinds.len() && kinds[full..].iter().all(|&k| k == MessageKind::Digest)
    };
    let out = kinds(run(&mut swim, now + Duration::from_secs(10)));
    assert!(full_then_digests(&out), "{out:?}");
    // A new member changes the table: the next exchanges send full state again.
    let later = now + Duration::from_secs(10);
    confirm(&mut swim, later, "e", 5, 1);
    let out = kinds(run(&mut swim, later + Duration::from_secs(10)));
    assert!(full_then_digests(&out), "{out:?}");
}

#[test]
fn the_periodic_exchange_opens_with_a_digest_that_bundles_the_kv_opening() {
    let (mut swim, now) = with_peers(exchange_config(true));
    let (t, digest) = periodic_digest(&mut swim, now);
    assert_eq!(t.pullpush, Some(PullPush::Request { join: false }));
    assert_eq!(digest.source, name("a"));
    assert_eq!(digest.members, 4, "a, b, c and d are confirmed");
    assert!(t.len_bytes() < 40, "{} bytes", t.len_bytes());
}

#[test]
fn a_digest_equal_to_the_local_table_draws_nothing_and_one_that_differs_draws_full_state() {
    let (mut swim, now) = with_peers(exchange_config(true));
    let (_, mine) = periodic_digest(&mut swim, now);
    let later = now + Duration::from_secs(10);
    let from_b = SocketAddr::from(([10, 0, 0, 2], 50_000));
    let same = Message::Digest(StateDigest {
        source: name("b"),
        source_addr: addr(2),
        ..mine.clone()
    });
    swim.handle_stream(later, from_b, &same.encode()).unwrap();
    assert!(drain(&mut swim).is_empty(), "equal tables: nothing to send");
    assert_eq!(swim.stats().digests_matched, 1);

    let differs = Message::Digest(StateDigest {
        source: name("b"),
        source_addr: addr(2),
        hash: mine.hash ^ 1,
        ..mine
    });
    swim.handle_stream(later, from_b, &differs.encode())
        .unwrap();
    let out = drain(&mut swim);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].to, addr(2), "to the advertised address");
    assert_eq!(
        out[0].pullpush, None,
        "the KV store already had its opening"
    );
    match decoded(&out[0]).pop() {
        Some(Message::State(state)) => {
            assert_eq!(state.exchange, Exchange::Request);
            assert!(!state.join);
            assert_eq!(state.members.len(), 4);
        }
        other => panic!("expected a full state request, got {other:?}"),
    }
}

#[test]
fn a_digest_naming_another_host_draws_no_state_and_a_datagram_digest_is_refused() {
    let (mut swim, now) = machine(Config::lan());
    let digest = Message::Digest(StateDigest {
        source: name("s"),
        source_addr: SocketAddr::from(([192, 0, 2, 7], 7946)),
        members: 1,
        hash: 1,
    });
    swim.handle_stream(now, addr(9), &digest.encode()).unwrap();
    assert!(drain(&mut swim).is_empty());
    assert_eq!(swim.stats().replies_refused, 1);
    assert!(matches!(
        swim.handle_packet(now, addr(9), &digest.encode()),
        Err(Error::WrongChannel {
            kind: MessageKind::Digest,
            ..
        })
    ));
}

#[test]
fn with_digests_off_the_periodic_exchange_sends_full_state() {
    let (mut swim, now) = with_peers(exchange_config(false));
    let out = run(&mut swim, now + Duration::from_secs(10));
    let kinds: Vec<MessageKind> = out
        .iter()
        .filter(|t| t.delivery == Delivery::Stream)
        .flat_map(decoded)
        .map(|m| m.kind())
        .collect();
    assert!(kinds.contains(&MessageKind::State), "{kinds:?}");
    assert!(!kinds.contains(&MessageKind::Digest), "{kinds:?}");
}

#[test]
fn a_member_learned_from_gossip_is_verified_at_once_and_one_from_a_state_exchange_by_the_lane() {
    let config = Config::lan();
    let (mut swim, now) = machine(config.clone());
    drain(&mut swim);
    let pings_to = |out: &[Transmit], last: u8| {
        out.iter()
            .filter(|t| t.to == addr(last))
            .filter(|t| matches!(decoded(t).first(), Some(Message::Ping(_))))
            .count()
    };
    // Gossip: a bare verification ping before any probe period passes, and only one for two
    // announcements while it is in flight.
    feed(&mut swim, now, Message::Alive(alive("c", 3, 1)));
    feed(&mut swim, now, Message::Alive(alive("c", 3, 1)));
    let out = drain(&mut swim);
    assert_eq!(pings_to(&out, 3), 1, "{out:?}");
    // A state exchange: its members wait for the lane (the next probe period).
    let member = |n: &str, last: u8| MemberState {
        name: name(n),
        addr: addr(last),
        incarnation: Incarnation(1),
        meta: Bytes::new(),
        state: State::Alive,
    };
    let state = Message::State(StateExchange {
        exchange: Exchange::Reply,
        join: false,
        source: name("b"),
        source_addr: addr(2),
        members: vec![member("b", 2), member("d", 4), member("e", 5)],
    });
    swim.handle_stream(now, addr(2), &state.encode()).unwrap();
    let out = drain(&mut swim);
    assert_eq!(pings_to(&out, 4) + pings_to(&out, 5), 0, "{out:?}");
    let out = run(&mut swim, now + config.probe_interval() * 2);
    assert_eq!(pings_to(&out, 4), 1, "{out:?}");
    assert_eq!(pings_to(&out, 5), 1, "{out:?}");
}

#[test]
fn a_ping_from_an_unknown_member_is_answered_by_one_datagram_with_the_ack_and_a_ping_back() {
    let (mut a, now) = machine(Config::lan());
    drain(&mut a);
    let ping = Message::Ping(Ping {
        seq: 7,
        target: name("a"),
        source: alive("b", 2, 1),
    });
    let received = ping.encode().len();
    a.handle_packet(now, addr(2), &ping.encode()).unwrap();
    let out = drain(&mut a);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].to, addr(2));
    let messages = decoded(&out[0]);
    assert_eq!(messages[0], Message::Ack(Ack { seq: 7 }));
    let Some(Message::Ping(back)) = messages.get(1) else {
        panic!("expected a ping back, got {messages:?}");
    };
    assert_eq!(back.target, name("b"));
    assert!(
        out[0].messages[1].len() <= received,
        "no larger than the ping"
    );
    assert_eq!(messages.len(), 2, "no gossip to an unconfirmed member");
    // b's ack confirms b: a now counts it, and a second ping from b gets a bare ack.
    let ack = Message::Ack(Ack { seq: back.seq });
    a.handle_packet(now, addr(2), &ack.encode()).unwrap();
    assert!(a.is_confirmed("b"));
    a.handle_packet(now, addr(2), &ping.encode()).unwrap();
    let out = drain(&mut a);
    assert!(
        out.iter()
            .all(|t| decoded(t).iter().all(|m| !matches!(m, Message::Ping(_)))),
        "{out:?}"
    );
}

/// Lan timing with no periodic exchange and no seed re-join (only the reconnect tick exchanges
/// state), and dead members kept in the table for an hour (never reaped during the test).
fn reconnect_config() -> Config {
    Config::lan()
        .to_builder()
        .pullpush_interval(None)
        .rejoin_interval(None)
        .gossip_to_the_dead_time(Duration::from_secs(3600))
        .build()
        .unwrap()
}

fn declare_dead(swim: &mut Swim, now: Instant, n: &str) {
    let incarnation = swim.member(n).unwrap().incarnation;
    feed(
        swim,
        now,
        Message::Dead(Dead {
            name: name(n),
            incarnation,
            from: name("d"),
        }),
    );
    assert_eq!(swim.member(n).unwrap().state, State::Dead);
    drain(swim);
}

/// Stream exchanges the machine opened to `to`: whether each was a join.
fn exchanges_to(out: &[Transmit], to: SocketAddr) -> Vec<bool> {
    out.iter()
        .filter(|t| t.to == to)
        .filter_map(|t| match t.pullpush {
            Some(PullPush::Request { join }) => Some(join),
            _ => None,
        })
        .collect()
}

#[test]
fn the_reconnect_tick_tries_a_confirmed_member_the_table_holds_dead_before_it_is_reaped() {
    // A healed partition: b is alive but this machine holds it dead, and no gossip about its
    // refutation arrives. Without pull-push or re-join only the reconnect tick can repair
    // the view, and b is not reaped (so not on the reconnect list) for an hour.
    let config = reconnect_config();
    let (mut swim, now) = with_peers(config.clone());
    declare_dead(&mut swim, now, "b");
    let period = config.reconnect_interval().unwrap();
    let out = run(&mut swim, now + period * 2);
    assert_eq!(swim.member("b").unwrap().state, State::Dead, "not reaped");
    let tried = exchanges_to(&out, addr(2));
    assert!(!tried.is_empty(), "no exchange with the member held dead");
    // A plain exchange, not a join: the KV stores compare digests first.
    assert!(tried.iter().all(|&join| !join), "{tried:?}");
    // Live members are probed, not reconnected.
    assert!(exchanges_to(&out, addr(3)).is_empty());
    assert!(swim.stats().reconnect_attempts >= 1);
}

#[test]
fn a_member_held_dead_coming_back_brings_the_next_reconnect_within_a_probe_interval() {
    let config = reconnect_config();
    let (mut swim, now) = with_peers(config.clone());
    declare_dead(&mut swim, now, "b");
    declare_dead(&mut swim, now, "c");
    // The first reconnect tick comes up to 1.5 reconnect intervals from the start; by a
    // probe interval after b's refutation, c is tried, long before that.
    let later = now + Duration::from_secs(1);
    run(&mut swim, later);
    feed(&mut swim, later, Message::Alive(alive("b", 2, 2)));
    assert_eq!(swim.member("b").unwrap().state, State::Alive);
    drain(&mut swim);
    let within = config.probe_interval() * 3 / 2;
    let out = run(&mut swim, later + within);
    assert_eq!(
        exchanges_to(&out, addr(3)),
        vec![false],
        "c, still held dead, is tried within {within:?} of b's return"
    );
}
