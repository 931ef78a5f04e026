//! The KV commands on one machine: compare-and-swap, delete, watches.
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

use std::time::{Duration, Instant};

use crate::support::{GSet, LwwMap, addr, machine};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumour_gossip::{CasOutcome, Config, Error, Event, Gossip, Message, Version};

fn one(config: impl FnOnce(Config) -> Config) -> (Gossip, Instant) {
    let start = Instant::now();
    (machine(0, start, config(Config::lan(addr(0)))), start)
}

#[test]
fn cas_from_many_writers_on_one_node_keeps_every_write() {
    let (mut g, now) = one(|c| c);
    // Interleaved writers: each reads, then later writes against what it read, and retries on
    // conflict. A seeded scheduler picks who moves next.
    const WRITERS: usize = 8;
    let mut read: Vec<Option<(LwwMap, Version)>> = vec![None; WRITERS];
    let mut attempts = [0u32; WRITERS];
    let mut done = [false; WRITERS];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut conflicts = 0;
    while done.iter().any(|d| !d) {
        let w = rng.gen_range(0..WRITERS);
        if done[w] {
            continue;
        }
        match read[w].take() {
            None => {
                let v = g.read::<LwwMap>("ring").unwrap();
                read[w] = Some((v.value.unwrap_or_default(), v.version));
            }
            Some((value, version)) => {
                attempts[w] += 1;
                let desired = value.with(&format!("writer-{w}"), "here");
                match g.cas_versioned(now, "ring", version, desired) {
                    Ok(CasOutcome::Updated { .. }) => done[w] = true,
                    Err(Error::CasConflict { .. }) => conflicts += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }
    let map = g.get::<LwwMap>("ring").unwrap();
    for w in 0..WRITERS {
        assert_eq!(map.value(&format!("writer-{w}")), Some("here"));
    }
    assert!(conflicts > 0, "the interleaving produced conflicts");
    assert_eq!(g.stats().cas_conflicts, conflicts);
    assert_eq!(g.entry("ring").unwrap().version, Version(WRITERS as u64));

    // The closure form from many writers in turn: every write lands, one version each.
    for i in 0..100 {
        let outcome = g
            .cas(now, "ring", |cur: Option<&LwwMap>| {
                Some(cur.cloned().unwrap_or_default().with(&format!("n{i}"), "x"))
            })
            .unwrap();
        assert_eq!(
            outcome,
            CasOutcome::Updated {
                version: Version(WRITERS as u64 + i + 1)
            }
        );
    }
    assert_eq!(g.get::<LwwMap>("ring").unwrap().0.len(), WRITERS + 100);
}

#[test]
fn cas_conflict_is_reported_and_a_retry_sees_the_concurrent_change() {
    let (mut a, now) = one(|c| c);
    let b_start = now;
    let mut b = machine(1, b_start, Config::lan(addr(1)));
    a.cas(now, "k", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("a", "1"))
    })
    .unwrap();
    let seen = a.read::<LwwMap>("k").unwrap();

    // Meanwhile a change from another node lands.
    b.cas(now, "k", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("b", "2"))
    })
    .unwrap();
    for message in b.fill_broadcasts(2, 1384) {
        a.handle_packet(now, addr(1), &message).unwrap();
    }

    let desired = seen.value.clone().unwrap().with("c", "3");
    let err = a
        .cas_versioned(now, "k", seen.version, desired)
        .unwrap_err();
    assert_eq!(
        err,
        Error::CasConflict {
            key: "k".into(),
            expected: 1,
            found: 2
        }
    );
    assert_eq!(
        a.get::<LwwMap>("k").unwrap().value("c"),
        None,
        "nothing written"
    );

    let again = a.read::<LwwMap>("k").unwrap();
    let desired = again.value.unwrap().with("c", "3");
    a.cas_versioned(now, "k", again.version, desired).unwrap();
    let map = a.get::<LwwMap>("k").unwrap();
    assert_eq!(
        (map.value("a"), map.value("b"), map.value("c")),
        (Some("1"), Some("2"), Some("3"))
    );
}

#[test]
fn cas_on_a_key_of_another_type_is_refused() {
    let (mut g, now) = one(|c| c);
    g.cas(now, "k", |_: Option<&GSet>| Some(GSet::of(&["x"])))
        .unwrap();
    let err = g
        .cas(now, "k", |_: Option<&LwwMap>| {
            Some(LwwMap::default().with("a", "1"))
        })
        .unwrap_err();
    assert!(matches!(err, Error::CodecMismatch { .. }), "{err:?}");
    assert_eq!(g.get::<GSet>("k"), Some(GSet::of(&["x"])));
    assert_eq!(g.get::<LwwMap>("k"), None);
}

#[test]
fn cas_that_changes_nothing_queues_nothing() {
    let (mut g, now) = one(|c| c);
    let map = LwwMap::default().with("a", "1");
    g.cas(now, "k", |_: Option<&LwwMap>| Some(map.clone()))
        .unwrap();
    let queued = g.queued().count();
    let outcome = g
        .cas(now, "k", |cur: Option<&LwwMap>| cur.cloned())
        .unwrap();
    assert_eq!(outcome, CasOutcome::Unchanged);
    assert_eq!(
        g.cas(now, "k", |_: Option<&LwwMap>| None).unwrap(),
        CasOutcome::Unchanged
    );
    assert_eq!(g.queued().count(), queued);
    assert_eq!(g.entry("k").unwrap().version, Version(1));
}

#[test]
fn get_strips_tombstones_that_the_store_keeps() {
    let (mut g, now) = one(|c| c);
    g.cas(now, "k", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("a", "1").with("b", "2"))
    })
    .unwrap();
    g.cas(now, "k", |cur: Option<&LwwMap>| {
        Some(cur.unwrap().without("b"))
    })
    .unwrap();
    let visible = g.get::<LwwMap>("k").unwrap();
    assert_eq!(visible.content_names(), ["a"]);
    let raw = g
        .entry("k")
        .unwrap()
        .value
        .as_any()
        .downcast_ref::<LwwMap>()
        .unwrap()
        .clone();
    assert!(raw.0["b"].deleted, "the tombstone is kept for gossip");
}

trait Names {
    fn content_names(&self) -> Vec<String>;
}

impl Names for LwwMap {
    fn content_names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

#[test]
fn tombstones_are_swept_after_left_ingesters_timeout() {
    let (mut g, start) = one(|c| c);
    g.cas(start, "k", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("a", "1").with("b", "2"))
    })
    .unwrap();
    g.cas(start, "k", |cur: Option<&LwwMap>| {
        Some(cur.unwrap().without("b"))
    })
    .unwrap();
    let raw = |g: &Gossip| {
        g.entry("k")
            .unwrap()
            .value
            .as_any()
            .downcast_ref::<LwwMap>()
            .unwrap()
            .0
            .len()
    };
    g.handle_timeout(start + Duration::from_secs(299));
    assert_eq!(raw(&g), 2);
    g.handle_timeout(start + Duration::from_secs(301));
    assert_eq!(raw(&g), 1);
    assert_eq!(g.stats().tombstones_removed, 1);
}

#[test]
fn delete_hides_the_key_at_once_and_forgets_it_after_the_obsolete_timeout() {
    let (mut g, start) = one(|c| c);
    g.cas(start, "a/1", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("x", "1"))
    })
    .unwrap();
    g.cas(start, "a/2", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("x", "1"))
    })
    .unwrap();
    let before = g.queued().count();
    assert!(g.delete(start, "a/1"));
    assert!(!g.delete(start, "a/1"), "already deleted");
    assert!(!g.delete(start, "nope"));
    assert_eq!(g.get::<LwwMap>("a/1"), None);
    assert_eq!(g.list("a/"), ["a/2"]);
    let entry = g.entry("a/1").unwrap();
    assert!(entry.is_deleted());
    assert_eq!(entry.marker.updated.0, crate::support::EPOCH_MILLIS);

    // The deletion is gossiped as a marker without a value.
    assert_eq!(g.queued().count(), before + 1);
    let deletion = g.queued().find(|b| b.version() == Version(2)).unwrap();
    let Message::Change(change) = Message::decode(deletion.message()).unwrap() else {
        panic!("a change");
    };
    assert_eq!(
        (change.key.as_str(), change.value, change.marker.deleted),
        ("a/1", None, true)
    );

    g.handle_timeout(start + Duration::from_secs(29));
    assert!(
        g.entry("a/1").is_some(),
        "remembered for obsolete_entries_timeout"
    );
    g.handle_timeout(start + Duration::from_secs(31));
    assert!(g.entry("a/1").is_none());
    assert!(g.entry("a/2").is_some());
    assert_eq!(g.stats().keys_forgotten, 1);
}

#[test]
fn cas_after_delete_brings_the_key_back_with_only_the_new_entries() {
    let (mut g, start) = one(|c| c);
    g.cas(start, "k", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("old", "1"))
    })
    .unwrap();
    g.delete(start + Duration::from_millis(10), "k");
    let later = start + Duration::from_millis(20);
    g.cas(later, "k", |cur: Option<&LwwMap>| {
        assert!(cur.is_none(), "a deleted key reads as absent");
        Some(LwwMap::default().with("new", "2"))
    })
    .unwrap();
    let map = g.get::<LwwMap>("k").unwrap();
    assert_eq!(map.content_names(), ["new"]);
    assert!(!g.entry("k").unwrap().is_deleted());
}

#[test]
fn a_deletion_of_an_unknown_key_does_not_create_it() {
    let (mut a, now) = one(|c| c);
    let mut b = machine(1, now, Config::lan(addr(1)));
    b.cas(now, "k", |_: Option<&LwwMap>| {
        Some(LwwMap::default().with("x", "1"))
    })
    .unwrap();
    while b.has_broadcasts() {
        b.fill_broadcasts(2, 1384); // the creation is lost
    }
    b.delete(now, "k");
    for message in b.fill_broadcasts(2, 1384) {
        a.handle_packet(now, addr(1), &message).unwrap();
    }
    assert!(a.entry("k").is_none());
    assert_eq!(a.stats().merges_unchanged, 1);
}

#[test]
fn watch_key_coalesces_changes_made_before_the_watcher_polls() {
    let (mut g, now) = one(|c| c);
    let watch = g.watch_key("k");
    let other = g.watch_prefix("j/");
    for i in 0..5 {
        g.cas(now, "k", |cur: Option<&LwwMap>| {
            Some(cur.cloned().unwrap_or_default().with("n", &i.to_string()))
        })
        .unwrap();
    }
    let events: Vec<Event> = std::iter::from_fn(|| g.poll_event()).collect();
    assert_eq!(
        events,
        [Event::Changed {
            watch,
            key: "k".into()
        }]
    );
    // The watcher reads the latest value, never an intermediate one.
    assert_eq!(g.get::<LwwMap>("k").unwrap().value("n"), Some("4"));
    assert_eq!(g.stats().watch_coalesced, 4);

    g.delete(now, "k");
    assert_eq!(
        g.poll_event(),
        Some(Event::Changed {
            watch,
            key: "k".into()
        })
    );
    assert!(g.unwatch(other));
    assert_eq!(g.poll_event(), None);
}

#[test]
fn a_slow_prefix_watcher_loses_notifications_but_is_told_and_counted() {
    let (mut g, now) = one(|c| Config {
        watch_buffer: 3,
        ..c
    });
    let watch = g.watch_prefix("p/");
    for i in 0..10 {
        g.cas(now, &format!("p/{i}"), |_: Option<&GSet>| {
            Some(GSet::of(&["x"]))
        })
        .unwrap();
    }
    let events: Vec<Event> = std::iter::from_fn(|| g.poll_event()).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events[3], Event::Lagged { watch, dropped: 7 });
    assert_eq!(g.stats().watch_drops, 7);
    // Every key is still readable at its latest value.
    assert_eq!(g.list("p/").len(), 10);
}

#[test]
fn notify_interval_debounces_watch_notifications() {
    let (mut g, start) = one(|c| Config {
        notify_interval: Duration::from_millis(500),
        ..c
    });
    let watch = g.watch_prefix("");
    g.cas(start, "a", |_: Option<&GSet>| Some(GSet::of(&["1"])))
        .unwrap();
    g.cas(start, "a", |_: Option<&GSet>| Some(GSet::of(&["1", "2"])))
        .unwrap();
    assert_eq!(g.poll_event(), None);
    assert!(g.poll_timeout().unwrap() <= start + Duration::from_millis(500));
    g.handle_timeout(start + Duration::from_millis(500));
    assert_eq!(
        g.poll_event(),
        Some(Event::Changed {
            watch,
            key: "a".into()
        })
    );
    assert_eq!(g.poll_event(), None);
}

#[test]
fn the_machine_can_move_between_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Gossip>();
}

#[test]
fn an_empty_store_among_healthy_peers_has_no_timer_to_wake_for() {
    let (mut g, start) = one(|c| Config {
        pullpush_interval: None,
        cleanup_interval: Duration::from_secs(1),
        ..c
    });
    for i in 1..4 {
        g.handle_peer_up(start, addr(i));
    }
    assert_eq!(
        g.poll_timeout(),
        None,
        "nothing to sweep, no exchange to open"
    );
    // A key gives the sweep work: it runs every cleanup interval again.
    g.cas(start, "a", |_: Option<&GSet>| Some(GSet::of(&["1"])))
        .unwrap();
    assert!(g.poll_timeout().unwrap() <= start + Duration::from_secs(1));
}
