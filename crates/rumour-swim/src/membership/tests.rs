//! One test per state rule: every claim against every stored state, with lower, equal and
//! higher incarnations, about other members and about the local node. Compiled only under
//! `#[cfg(test)]` (see `membership.rs`).
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

use super::*;

const STORED: Incarnation = Incarnation(5);

fn name(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn params() -> SuspicionParams {
    SuspicionParams {
        k: 2,
        min: Duration::from_secs(4),
        max: Duration::from_secs(24),
    }
}

fn member(n: &str, port: u16, inc: Incarnation, state: State, at: Instant) -> Member {
    Member {
        name: name(n),
        addr: addr(port),
        meta: Bytes::new(),
        incarnation: inc,
        state,
        state_changed_at: at,
        rtt: None,
    }
}

/// A table holding `self` (alive at 5) and `m` in `state` at incarnation 5.
fn table(state: State, now: Instant) -> Membership {
    let mut t = Membership::new(
        member("self", 1, STORED, State::Alive, now),
        Duration::from_secs(1),
        None,
        (1, 2),
    );
    let mut m = member("m", 2, STORED, state, now);
    m.state = state;
    t.insert(m, now);
    if state == State::Suspect {
        let timer = Suspicion::new(now, name("x"), 2, params().min, params().max);
        t.record_mut(&name("m")).unwrap().set_suspicion(Some(timer));
    }
    t
}

fn alive(n: &str, inc: u32) -> Alive {
    Alive {
        name: name(n),
        addr: addr(if n == "self" { 1 } else { 2 }),
        incarnation: Incarnation(inc),
        meta: Bytes::new(),
    }
}

fn suspect(n: &str, inc: u32, from: &str) -> Suspect {
    Suspect {
        name: name(n),
        incarnation: Incarnation(inc),
        from: name(from),
    }
}

fn dead(n: &str, inc: u32, from: &str) -> Dead {
    Dead {
        name: name(n),
        incarnation: Incarnation(inc),
        from: name(from),
    }
}

fn stored(t: &Membership) -> (State, Incarnation) {
    let m = t.get(&name("m")).unwrap();
    (m.state, m.incarnation)
}

const ALL: [State; 4] = [State::Alive, State::Suspect, State::Dead, State::Left];

#[test]
fn alive_with_higher_incarnation_makes_any_member_alive() {
    let now = Instant::now();
    for state in ALL {
        let mut t = table(state, now);
        let outcome = t.alive(now, &alive("m", 6));
        let expected = match state {
            State::Alive => Outcome::Refreshed { changed: false },
            State::Suspect => Outcome::Refreshed { changed: true },
            State::Dead | State::Left => Outcome::Joined { new: false },
        };
        assert_eq!(outcome, expected, "from {state}");
        assert_eq!(stored(&t), (State::Alive, Incarnation(6)), "from {state}");
        assert!(t.record(&name("m")).unwrap().suspicion().is_none());
    }
}

#[test]
fn alive_with_equal_or_lower_incarnation_changes_nothing() {
    let now = Instant::now();
    for state in ALL {
        for inc in [4, 5] {
            let mut t = table(state, now);
            let outcome = t.alive(now, &alive("m", inc));
            assert_eq!(stored(&t), (state, STORED), "{state} at {inc}");
            match state {
                State::Alive => assert_eq!(outcome, Outcome::Ignored),
                _ => assert!(
                    matches!(outcome, Outcome::Accuse { to, .. } if to == addr(2)),
                    "a stale alive about a {state} member is answered with the accusation"
                ),
            }
        }
    }
}

#[test]
fn stale_alive_cannot_resurrect_a_dead_member() {
    let now = Instant::now();
    let mut t = table(State::Dead, now);
    // An alive at or below the incarnation the member was declared dead at changes nothing...
    assert!(matches!(
        t.alive(now, &alive("m", 5)),
        Outcome::Accuse { .. }
    ));
    assert_eq!(stored(&t), (State::Dead, STORED));
    // ...a newer one (the member refuting) brings it back.
    assert_eq!(t.alive(now, &alive("m", 6)), Outcome::Joined { new: false });
}

#[test]
fn accusations_sent_to_a_stale_claimant_are_spaced() {
    let now = Instant::now();
    let mut t = table(State::Dead, now);
    let first = t.alive(now, &alive("m", 1));
    let Outcome::Accuse {
        message: Message::Dead(d),
        ..
    } = first
    else {
        panic!("expected an accusation, got {first:?}");
    };
    assert_eq!((d.incarnation, d.from), (STORED, name("self")));
    assert_eq!(
        t.alive(now + Duration::from_millis(10), &alive("m", 1)),
        Outcome::Ignored
    );
    assert!(matches!(
        t.alive(now + Duration::from_secs(2), &alive("m", 1)),
        Outcome::Accuse { .. }
    ));
}

#[test]
fn alive_about_an_unknown_member_inserts_it() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    assert_eq!(
        t.alive(now, &alive("new", 1)),
        Outcome::Joined { new: true }
    );
    assert_eq!(t.get(&name("new")).unwrap().state, State::Alive);
    assert_eq!(t.len(), 3);
}

#[test]
fn alive_with_new_metadata_is_a_change() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    let mut a = alive("m", 6);
    a.meta = Bytes::from_static(b"zone-b");
    assert_eq!(t.alive(now, &a), Outcome::Refreshed { changed: true });
    assert_eq!(t.get(&name("m")).unwrap().meta, a.meta);
}

#[test]
fn alive_from_another_address_is_a_conflict_unless_reclaimable() {
    let now = Instant::now();
    let later = now + Duration::from_secs(100);
    for state in [State::Alive, State::Suspect, State::Dead] {
        let mut t = table(state, now);
        let mut a = alive("m", 9);
        a.addr = addr(3);
        assert_eq!(
            t.alive(later, &a),
            Outcome::Conflict {
                known: addr(2),
                claimed: addr(3)
            },
            "{state}"
        );
        assert_eq!(stored(&t), (state, STORED));
    }
    // A left member's name may be claimed from anywhere.
    let mut t = table(State::Left, now);
    let mut a = alive("m", 9);
    a.addr = addr(3);
    assert_eq!(t.alive(later, &a), Outcome::Joined { new: false });
    assert_eq!(t.get(&name("m")).unwrap().addr, addr(3));
    // A dead one only after dead_node_reclaim_time.
    let mut t = table(State::Dead, now);
    t.reclaim_time = Some(Duration::from_secs(60));
    assert!(matches!(
        t.alive(now + Duration::from_secs(30), &a),
        Outcome::Conflict { .. }
    ));
    assert_eq!(t.alive(later, &a), Outcome::Joined { new: false });
}

#[test]
fn reclaimed_address_with_a_low_incarnation_is_told_its_accusation() {
    let now = Instant::now();
    let mut t = table(State::Left, now);
    let mut a = alive("m", 1);
    a.addr = addr(3);
    assert!(matches!(t.alive(now, &a), Outcome::Accuse { to, .. } if to == addr(3)));
    assert_eq!(t.get(&name("m")).unwrap().addr, addr(3));
    assert_eq!(stored(&t), (State::Left, STORED));
}

#[test]
fn suspect_with_equal_or_higher_incarnation_suspects_an_alive_member() {
    let now = Instant::now();
    for inc in [5, 6] {
        let mut t = table(State::Alive, now);
        let s = suspect("m", inc, "x");
        assert_eq!(
            t.suspect(now, &s, Evidence::Accuser(&name("x")), params()),
            Outcome::Suspected
        );
        assert_eq!(stored(&t), (State::Suspect, STORED), "never raised");
        assert!(t.record(&name("m")).unwrap().suspicion().is_some());
    }
}

#[test]
fn suspect_with_lower_incarnation_changes_nothing() {
    let now = Instant::now();
    for state in ALL {
        let mut t = table(state, now);
        let s = suspect("m", 4, "y");
        assert_eq!(
            t.suspect(now, &s, Evidence::Accuser(&name("y")), params()),
            Outcome::Ignored
        );
        assert_eq!(stored(&t), (state, STORED));
    }
}

#[test]
fn suspect_of_a_suspect_confirms_only_from_new_accusers() {
    let now = Instant::now();
    let mut t = table(State::Suspect, now);
    let by = |from: &str| suspect("m", 5, from);
    let x = name("x");
    assert_eq!(
        t.suspect(now, &by("x"), Evidence::Accuser(&x), params()),
        Outcome::Ignored
    );
    let y = name("y");
    assert_eq!(
        t.suspect(now, &by("y"), Evidence::Accuser(&y), params()),
        Outcome::Confirmed
    );
    assert_eq!(
        t.suspect(now, &by("y"), Evidence::Accuser(&y), params()),
        Outcome::Ignored
    );
    assert_eq!(
        t.suspect(now, &by("self"), Evidence::FullState, params()),
        Outcome::Ignored
    );
    assert_eq!(stored(&t), (State::Suspect, STORED));
}

#[test]
fn accusations_never_raise_a_stored_incarnation() {
    let now = Instant::now();
    for state in [State::Dead, State::Left] {
        let mut t = table(state, now);
        let x = name("x");
        for inc in [5, 8, u32::MAX] {
            assert_eq!(
                t.suspect(
                    now,
                    &suspect("m", inc, "x"),
                    Evidence::Accuser(&x),
                    params()
                ),
                Outcome::Ignored
            );
            assert_eq!(t.dead(now, &dead("m", inc, "x")), Outcome::Ignored);
        }
        assert_eq!(stored(&t), (state, STORED));
    }
}

#[test]
fn a_claim_beyond_the_stored_incarnation_is_credited_only_up_to_it() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    t.set_limits(Limits {
        max_members: 100,
        max_incarnation_jump: 10,
    });
    // A third party's death at u32::MAX is a suspicion at the stored incarnation.
    assert_eq!(
        t.credible(Message::Dead(dead("m", u32::MAX, "x"))),
        Message::Suspect(suspect("m", 5, "x"))
    );
    // A suspicion is taken at the stored incarnation, a goodbye too.
    assert_eq!(
        t.credible(Message::Suspect(suspect("m", u32::MAX, "x"))),
        Message::Suspect(suspect("m", 5, "x"))
    );
    assert_eq!(
        t.credible(Message::Dead(dead("m", u32::MAX, "m"))),
        Message::Dead(dead("m", 5, "m"))
    );
    // An alive raises the incarnation by at most the jump.
    assert_eq!(
        t.credible(Message::Alive(alive("m", u32::MAX))),
        Message::Alive(alive("m", 15))
    );
    // Claims at or below what is stored, about the local node, or about unknown members are
    // untouched.
    for claim in [
        Message::Dead(dead("m", 5, "x")),
        Message::Alive(alive("m", 15)),
        Message::Dead(dead("self", u32::MAX, "x")),
        Message::Alive(alive("zz", u32::MAX)),
    ] {
        assert_eq!(t.credible(claim.clone()), claim);
    }
    assert_eq!(t.counts.clamped, 4);
}

#[test]
fn a_refutation_climbs_at_most_the_jump_above_the_local_incarnation() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    t.set_limits(Limits {
        max_members: 100,
        max_incarnation_jump: 10,
    });
    assert_eq!(
        t.dead(now, &dead("self", u32::MAX, "x")),
        Outcome::Refute {
            accused: Incarnation(15)
        }
    );
    assert_eq!(
        t.alive(now, &alive("self", u32::MAX)),
        Outcome::Refute {
            accused: Incarnation(15)
        }
    );
}

#[test]
fn a_full_table_evicts_the_oldest_unconfirmed_member_and_then_refuses() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    t.set_limits(Limits {
        max_members: 3,
        max_incarnation_jump: 10,
    });
    assert_eq!(t.alive(now, &alive("n", 1)), Outcome::Joined { new: true });
    let later = now + Duration::from_secs(1);
    assert_eq!(
        t.alive(later, &alive("o", 1)),
        Outcome::Joined { new: true }
    );
    assert_eq!(t.len(), 3);
    let evicted: Vec<_> = t.take_evicted().into_iter().map(|m| m.name).collect();
    assert_eq!(evicted, [name("m")], "the oldest unconfirmed goes");
    assert!(t.confirm(&name("n"), addr(2)));
    assert!(t.confirm(&name("o"), addr(2)));
    assert_eq!(t.alive(later, &alive("p", 1)), Outcome::Refused);
    assert_eq!(t.len(), 3);
    assert_eq!(t.num_alive(), scanned_alive(&t));
}

#[test]
fn unconfirmed_members_expire_and_confirmed_ones_stay() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    t.alive(now, &alive("n", 1));
    assert!(t.confirm(&name("n"), addr(2)));
    assert!(!t.confirm(&name("n"), addr(2)), "once");
    let timeout = Duration::from_secs(60);
    assert!(t.expire_unconfirmed(now + timeout / 2, timeout).is_empty());
    let expired: Vec<_> = t
        .expire_unconfirmed(now + timeout, timeout)
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(expired, [name("m")]);
    assert_eq!(t.len(), 2);
    assert_eq!(t.num_alive(), scanned_alive(&t));
}

#[test]
fn dead_with_equal_or_higher_incarnation_kills_a_live_member() {
    let now = Instant::now();
    for state in [State::Alive, State::Suspect] {
        for inc in [5, 6] {
            let mut t = table(state, now);
            assert_eq!(
                t.dead(now, &dead("m", inc, "x")),
                Outcome::Failed,
                "{state} {inc}"
            );
            assert_eq!(stored(&t), (State::Dead, STORED), "never raised");
            assert!(t.record(&name("m")).unwrap().suspicion().is_none());
        }
    }
}

#[test]
fn dead_from_the_member_itself_means_left() {
    let now = Instant::now();
    for state in [State::Alive, State::Suspect, State::Dead] {
        let mut t = table(state, now);
        assert_eq!(t.dead(now, &dead("m", 5, "m")), Outcome::Left, "{state}");
        assert_eq!(stored(&t), (State::Left, STORED));
    }
}

#[test]
fn dead_with_lower_incarnation_changes_nothing() {
    let now = Instant::now();
    for state in ALL {
        let mut t = table(state, now);
        assert_eq!(t.dead(now, &dead("m", 4, "x")), Outcome::Ignored);
        assert_eq!(t.dead(now, &dead("m", 4, "m")), Outcome::Ignored);
        assert_eq!(stored(&t), (state, STORED));
    }
}

#[test]
fn claims_about_unknown_members_are_ignored() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    let x = name("x");
    assert_eq!(
        t.suspect(
            now,
            &suspect("ghost", 1, "x"),
            Evidence::Accuser(&x),
            params()
        ),
        Outcome::Ignored
    );
    assert_eq!(t.dead(now, &dead("ghost", 1, "x")), Outcome::Ignored);
    assert!(t.get(&name("ghost")).is_none());
}

#[test]
fn accusations_about_self_at_equal_or_higher_incarnation_are_refuted() {
    let now = Instant::now();
    let x = name("x");
    for inc in [5, 7] {
        let mut t = table(State::Alive, now);
        let accused = Incarnation(inc);
        let s = suspect("self", inc, "x");
        assert_eq!(
            t.suspect(now, &s, Evidence::Accuser(&x), params()),
            Outcome::Refute { accused }
        );
        assert_eq!(
            t.dead(now, &dead("self", inc, "x")),
            Outcome::Refute { accused }
        );
        assert_eq!(
            t.dead(now, &dead("self", inc, "self")),
            Outcome::Refute { accused }
        );
    }
}

#[test]
fn accusations_about_self_at_lower_incarnation_are_ignored() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    let x = name("x");
    assert_eq!(
        t.suspect(
            now,
            &suspect("self", 4, "x"),
            Evidence::Accuser(&x),
            params()
        ),
        Outcome::Ignored
    );
    assert_eq!(t.dead(now, &dead("self", 4, "x")), Outcome::Ignored);
    assert_eq!(t.local().state, State::Alive);
}

#[test]
fn alive_about_self_is_refuted_only_when_newer_or_different() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    assert_eq!(t.alive(now, &alive("self", 4)), Outcome::Ignored);
    assert_eq!(t.alive(now, &alive("self", 5)), Outcome::Ignored);
    assert_eq!(
        t.alive(now, &alive("self", 6)),
        Outcome::Refute {
            accused: Incarnation(6)
        }
    );
    let mut other_meta = alive("self", 5);
    other_meta.meta = Bytes::from_static(b"old life");
    assert_eq!(
        t.alive(now, &other_meta),
        Outcome::Refute { accused: STORED }
    );
}

#[test]
fn alive_about_self_from_another_address_is_a_conflict_not_a_refutation() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    for inc in [4, 5, 9] {
        let mut other = alive("self", inc);
        other.addr = addr(99);
        assert_eq!(
            t.alive(now, &other),
            Outcome::Conflict {
                known: addr(1),
                claimed: addr(99)
            }
        );
    }
    assert_eq!(t.local().incarnation, STORED);
}

#[test]
fn a_stale_alive_does_not_resurrect_a_reaped_member_but_a_newer_one_does() {
    let now = Instant::now();
    let mut t = table(State::Dead, now);
    let later = now + Duration::from_secs(30);
    assert_eq!(t.reap(later, Duration::from_secs(30)).len(), 1);
    assert!(t.get("m").is_none());
    // The same incarnation (a stale alive still gossiped): refused, the member is accused.
    match t.alive(later, &alive("m", 5)) {
        Outcome::Accuse {
            to,
            message: Message::Dead(d),
        } => {
            assert_eq!(to, addr(2));
            assert_eq!(d.incarnation, STORED);
        }
        other => panic!("expected an accusation, got {other:?}"),
    }
    assert!(t.get("m").is_none());
    // Within the spacing, silence.
    assert_eq!(t.alive(later, &alive("m", 4)), Outcome::Ignored);
    assert_eq!(t.counts.stale_after_reap, 2);
    // The member refuted: it is taken back.
    assert_eq!(
        t.alive(later, &alive("m", 6)),
        Outcome::Joined { new: true }
    );
}

#[test]
fn reaped_members_are_remembered_for_a_bounded_time_and_count() {
    let now = Instant::now();
    let mut t = table(State::Dead, now);
    t.set_reaped_memory(Duration::from_secs(60), 1);
    let later = now + Duration::from_secs(30);
    t.reap(later, Duration::from_secs(30));
    assert!(matches!(
        t.alive(later, &alive("m", 5)),
        Outcome::Accuse { .. }
    ));
    // Past the memory, a stale alive is a new member again.
    let much_later = later + Duration::from_secs(60);
    assert_eq!(
        t.alive(much_later, &alive("m", 5)),
        Outcome::Joined { new: true }
    );
}

#[test]
fn remote_dead_in_a_full_state_is_taken_as_suspect() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    let remote = MemberState {
        name: name("m"),
        addr: addr(2),
        incarnation: STORED,
        meta: Bytes::new(),
        state: State::Dead,
    };
    let (outcome, _) = t.merge(now, &remote, params());
    assert_eq!(outcome, Outcome::Suspected);
    assert_eq!(stored(&t), (State::Suspect, STORED));
    let left = MemberState {
        state: State::Left,
        ..remote
    };
    assert_eq!(t.merge(now, &left, params()).0, Outcome::Left);
}

#[test]
fn reaping_removes_only_expired_dead_and_left_members() {
    let now = Instant::now();
    let mut t = table(State::Dead, now);
    t.insert(member("l", 3, STORED, State::Left, now), now);
    t.insert(member("a", 4, STORED, State::Alive, now), now);
    assert!(
        t.reap(now + Duration::from_secs(10), Duration::from_secs(30))
            .is_empty()
    );
    let reaped = t.reap(now + Duration::from_secs(30), Duration::from_secs(30));
    let names: Vec<_> = reaped.iter().map(|(m, _)| m.name.as_str()).collect();
    assert_eq!(names, ["l", "m"]);
    assert_eq!(t.len(), 2);
}

#[test]
fn the_suspicion_index_follows_every_transition() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    let x = name("x");
    let max = now + params().max;
    t.suspect(now, &suspect("m", 5, "x"), Evidence::Accuser(&x), params());
    assert_eq!(t.next_suspicion_deadline(), Some(max));
    assert!(
        t.expired_suspicions(max - Duration::from_millis(1))
            .is_empty()
    );
    assert_eq!(t.expired_suspicions(max), [name("m")]);
    // A second accuser shortens the timer; the index follows.
    let y = name("y");
    t.suspect(now, &suspect("m", 5, "y"), Evidence::Accuser(&y), params());
    let shortened = t.next_suspicion_deadline().expect("still suspected");
    assert!(shortened < max);
    assert_eq!(t.suspicion(&name("m")).unwrap().1.deadline(), shortened);
    assert_eq!(t.expired_suspicions(shortened), [name("m")]);
    t.postpone_suspicion(&name("m"), max + Duration::from_secs(1));
    assert_eq!(
        t.next_suspicion_deadline(),
        Some(max + Duration::from_secs(1))
    );
    assert!(t.expired_suspicions(max).is_empty(), "postponed");
    t.alive(now, &alive("m", 6));
    assert_eq!(t.next_suspicion_deadline(), None, "a refutation clears it");
    t.suspect(now, &suspect("m", 6, "x"), Evidence::Accuser(&x), params());
    assert!(t.next_suspicion_deadline().is_some());
    t.dead(now, &dead("m", 6, "x"));
    assert_eq!(t.next_suspicion_deadline(), None, "a death clears it");
    assert!(t.expired_suspicions(max + params().max).is_empty());
    t.alive(now, &alive("m", 7));
    t.suspect(now, &suspect("m", 7, "x"), Evidence::Accuser(&x), params());
    t.remove(&name("m"));
    assert_eq!(t.next_suspicion_deadline(), None, "a removal clears it");
}

fn scanned_alive(t: &Membership) -> usize {
    assert_eq!(
        t.index.len(),
        t.len(),
        "the name index holds every member once"
    );
    t.members().filter(|m| m.state == State::Alive).count()
}

#[test]
fn alive_count_follows_every_transition() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    let check =
        |t: &Membership, step: &str| assert_eq!(t.num_alive(), scanned_alive(t), "after {step}");
    check(&t, "start");
    t.alive(now, &alive("n", 1));
    check(&t, "a new member");
    let suspect = Suspect {
        name: name("m"),
        incarnation: STORED,
        from: name("n"),
    };
    t.suspect(now, &suspect, Evidence::Accuser(&name("n")), params());
    check(&t, "a suspicion");
    t.alive(now, &alive("m", 6));
    check(&t, "a refutation");
    t.dead(
        now,
        &Dead {
            name: name("m"),
            incarnation: Incarnation(6),
            from: name("n"),
        },
    );
    check(&t, "a death");
    t.alive(now, &alive("m", 7));
    check(&t, "a comeback");
    t.dead(
        now,
        &Dead {
            name: name("n"),
            incarnation: Incarnation(1),
            from: name("n"),
        },
    );
    check(&t, "a leave");
    t.reap(now + Duration::from_secs(60), Duration::from_secs(30));
    check(&t, "a reap");
    t.leave_local(now);
    check(&t, "the local leave");
    assert_eq!(t.num_alive(), 1, "only m is alive at the end");
}

#[test]
fn round_trip_times_are_smoothed_and_forgotten_when_the_member_moves() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    let m = name("m");
    let rtt = |t: &Membership| t.get(&m).unwrap().rtt;
    assert_eq!(rtt(&t), None);
    t.record_rtt(&m, addr(9), Duration::from_millis(10));
    assert_eq!(
        rtt(&t),
        None,
        "a sample to another address is not the member's"
    );
    t.record_rtt(&m, addr(2), Duration::from_millis(80));
    assert_eq!(
        rtt(&t),
        Some(Duration::from_millis(80)),
        "the first sample sets it"
    );
    t.record_rtt(&m, addr(2), Duration::from_millis(40));
    assert_eq!(
        rtt(&t),
        Some(Duration::from_millis(70)),
        "a quarter of the way"
    );
    // A member that left may come back at another address (an alive one may not: conflict).
    let mut t = table(State::Left, now);
    t.record_rtt(&m, addr(2), Duration::from_millis(80));
    let mut moved = alive("m", STORED.0 + 1);
    moved.addr = addr(3);
    t.alive(now, &moved);
    assert_eq!(rtt(&t), None, "measured to the old address");
}

#[test]
fn a_removal_moves_the_last_record_without_losing_it_from_the_index_or_the_probe_order() {
    let now = Instant::now();
    let mut t = table(State::Alive, now);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
    for (i, n) in ["a", "b", "c", "d"].into_iter().enumerate() {
        t.alive(now, &alive(n, 1));
        let port = t.get(n).unwrap().addr;
        assert!(t.confirm(&name(n), port), "{i}");
        t.schedule(&name(n), &mut rng);
    }
    // "b" sits mid-table: removing it moves "d" (the last record) into its slot.
    t.dead(now, &dead("b", 1, "x"));
    let reaped = t.reap(now + Duration::from_secs(60), Duration::from_secs(30));
    assert_eq!(reaped.len(), 1);
    assert!(reaped[0].1, "b was in the probe order");
    assert_eq!(
        t.get("d").unwrap().name,
        name("d"),
        "the index follows the move"
    );
    t.reshuffle(&mut rng);
    let mut cycle: Vec<String> = std::iter::from_fn(|| t.next_in_order())
        .map(|(n, _)| n.to_string())
        .collect();
    cycle.sort();
    assert_eq!(cycle, ["a", "c", "d"], "each remaining member once, b gone");
    let order: Vec<String> = (0..t.len())
        .map(|i| t.nth_random(i).unwrap().name.to_string())
        .collect();
    assert_eq!(
        order,
        ["self", "m", "a", "d", "c"],
        "swap-remove order for random picks"
    );
}

mod index {
    //! The name index against a `BTreeMap` model: any sequence of inserts and removals (each
    //! removal moving the last record into the freed slot) leaves every name found at its
    //! record's slot, every removed name gone, and iteration in name order.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Inserts (`true`) or removes (`false`) member `n` of a small name space, so that names
    /// come back after removal and runs of buckets form and break up.
    fn ops() -> impl Strategy<Value = Vec<(bool, u16)>> {
        proptest::collection::vec((any::<bool>(), 0u16..300), 0..600)
    }

    fn check(t: &Membership, model: &BTreeMap<String, ()>) {
        assert_eq!(t.len(), model.len() + 1);
        for (slot, record) in t.records.iter().enumerate() {
            assert_eq!(t.slot(record.name.as_str()), Some(slot), "{}", record.name);
            assert_eq!(t.slot(&record.name), Some(slot), "{}", record.name);
        }
        for n in 0..300 {
            let n = format!("node-{n}");
            assert_eq!(t.get(n.as_str()).is_some(), model.contains_key(&n), "{n}");
            // An interned name (compared by identity) finds what its text finds.
            assert_eq!(t.get(&name(&n)).is_some(), model.contains_key(&n), "{n}");
        }
        let names: Vec<String> = t.members().map(|m| m.name.to_string()).collect();
        let mut expected: Vec<String> = model.keys().cloned().collect();
        expected.push("self".to_string());
        expected.sort();
        assert_eq!(names, expected);
    }

    proptest! {
        #[test]
        fn index_finds_every_record_after_inserts_and_removals(ops in ops(), key in any::<(u64, u64)>()) {
            let now = Instant::now();
            let mut t = Membership::new(
                member("self", 1, STORED, State::Alive, now),
                Duration::from_secs(1),
                None,
                key,
            );
            let mut model = BTreeMap::new();
            for (insert, n) in ops {
                let n = format!("node-{n}");
                if insert {
                    if model.insert(n.clone(), ()).is_none() {
                        t.insert(member(&n, 2, STORED, State::Alive, now), now);
                    }
                } else {
                    let removed = t.remove(&name(&n)).is_some();
                    prop_assert_eq!(removed, model.remove(&n).is_some());
                }
            }
            check(&t, &model);
        }
    }

    #[test]
    fn index_stays_small() {
        let now = Instant::now();
        let mut t = table(State::Alive, now);
        for n in 0..1000 {
            t.insert(
                member(&format!("node-{n}"), 3, STORED, State::Alive, now),
                now,
            );
        }
        // At most four buckets per member even right after a doubling: 4 bytes each.
        assert!(
            t.index.buckets() <= 4 * t.len(),
            "{} buckets",
            t.index.buckets()
        );
        assert!(t.index.buckets() >= t.len() * 4 / 3);
    }
}
