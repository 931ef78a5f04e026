//! Edge cases of the composed node (issue 13): lagging watches, healed partitions, the KV peer
//! set, resurrection, leave.

use std::time::Duration;

use rumour_cluster::ring::{Instance, Ring, State as InstanceState, Timestamp, Tokens};
use rumour_cluster::sim::{LinkConfig, NodeId, NodeSeed, Sim, node_addr};
use rumour_cluster::{Node, NodeConfig, NodeEvent, Profile};

const SEED: u64 = 13;

fn a_ring(id: &str) -> Ring {
    let mut ring = Ring::new();
    ring.set_instance(
        id,
        Instance::new(
            "10.9.9.9:1",
            "zone-x",
            InstanceState::Active,
            Tokens::new(vec![42]),
            Timestamp(1),
        ),
    )
    .expect("valid id");
    ring
}

/// A simulator whose nodes are built by `config` and do not join by themselves.
fn sim_of(config: impl Fn(&NodeSeed) -> NodeConfig + 'static) -> Sim<Node> {
    let mut sim = Sim::new(
        SEED,
        std::time::Instant::now(),
        LinkConfig::default(),
        Box::new(move |seed: NodeSeed| {
            Node::new(config(&seed), seed.rng, seed.now).expect("valid config")
        }),
    );
    sim.set_replay("cargo test -p rumour-cluster --test it edges");
    sim
}

#[test]
fn a_prefix_watch_past_its_buffer_reports_that_it_lagged() {
    let mut sim = sim_of(|seed| {
        let mut config = NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan);
        config.gossip.watch_buffer = 3;
        config
    });
    let a = sim.add_node();
    for i in 0..10 {
        sim.command(a, |node, now| {
            node.cas::<Ring>(now, &format!("k/{i}"), |_| Some(a_ring("x")))
        })
        .expect("running")
        .expect("written");
    }
    let b = sim.add_node();
    let watch = sim
        .command(b, |node, now| {
            let watch = node.watch_prefix("k/");
            node.join(now, &[node_addr(a)]);
            watch
        })
        .expect("running");
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = events.clone();
    sim.set_event_sink(Box::new(move |id, _, event| {
        if id == NodeId(1) {
            sink.borrow_mut().push(event);
        }
    }));
    let done = sim
        .run_until(Duration::from_secs(10), Duration::from_millis(50), |sim| {
            sim.node(b)
                .is_some_and(|n| n.gossip().list("k/").len() == 10)
        })
        .expect("no invariant");
    assert!(done.is_some(), "b never learned the 10 keys");
    let events = events.borrow();
    let lagged: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::WatchLagged { watch: w, dropped } if *w == watch => Some(*dropped),
            _ => None,
        })
        .collect();
    let changed = events
        .iter()
        .filter(|e| matches!(e, NodeEvent::KeyChanged { .. }))
        .count();
    assert_eq!(lagged.len(), 1, "events: {events:?}");
    assert_eq!(changed as u64 + lagged[0], 10, "events: {events:?}");
    // Unwatched, the prefix reports nothing more.
    drop(events);
    assert_eq!(sim.command(b, |node, _| node.unwatch(watch)), Some(true));
    assert_eq!(sim.command(b, |node, _| node.unwatch(watch)), Some(false));
}

/// A marker value for key `key` (a ring with one instance named after it).
fn write(sim: &mut Sim<Node>, id: NodeId, key: &str) {
    let instance = key.replace('/', "-");
    sim.command(id, |node, now| {
        node.cas::<Ring>(now, key, |_| Some(a_ring(&instance)))
    })
    .expect("running")
    .expect("written");
}

#[test]
fn both_halves_of_a_healed_split_catch_up_within_gossip_rounds_of_the_membership() {
    const N: usize = 8;
    let mut sim = sim_of(|seed| {
        let mut config = NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan);
        // No digest anti-entropy: only join exchanges and gossip may carry the stores across.
        config.gossip.pullpush_interval = None;
        config
    });
    for _ in 0..N {
        let id = sim.add_node();
        if id != NodeId(0) {
            sim.command(id, |node, now| node.join(now, &[node_addr(NodeId(0))]));
        }
    }
    let all_alive = |sim: &Sim<Node>| sim.running().all(|(_, n)| n.num_alive() == N);
    let joined = sim
        .run_until(
            Duration::from_secs(30),
            Duration::from_millis(100),
            all_alive,
        )
        .expect("no invariant");
    assert!(joined.is_some(), "the cluster never formed");
    let (left, right): (Vec<NodeId>, Vec<NodeId>) = (0..N).map(NodeId).partition(|id| id.0 < N / 2);
    sim.apply(rumour_cluster::sim::Fault::Partition(vec![left, right]));
    sim.run_for(Duration::from_secs(5)).expect("no invariant");
    write(&mut sim, NodeId(1), "left/key");
    write(&mut sim, NodeId(6), "right/key");
    sim.run_for(Duration::from_secs(120)).expect("no invariant");
    assert!(
        sim.running().all(|(_, n)| n.num_alive() == N / 2),
        "the halves did not split"
    );
    sim.apply(rumour_cluster::sim::Fault::Heal);
    let healed = sim
        .run_until(
            Duration::from_secs(300),
            Duration::from_millis(100),
            all_alive,
        )
        .expect("no invariant");
    assert!(healed.is_some(), "the membership never healed");
    let has_both = |sim: &Sim<Node>| {
        sim.running().all(|(_, n)| {
            n.gossip().entry("left/key").is_some() && n.gossip().entry("right/key").is_some()
        })
    };
    // A few gossip rounds (200 ms each) after the membership healed.
    let caught_up = sim
        .run_until(Duration::from_secs(2), Duration::from_millis(100), has_both)
        .expect("no invariant");
    let missing: Vec<String> = sim
        .running()
        .filter(|(_, n)| {
            n.gossip().entry("left/key").is_none() || n.gossip().entry("right/key").is_none()
        })
        .map(|(_, n)| n.name().to_owned())
        .collect();
    assert!(
        caught_up.is_some(),
        "still missing a side's key 2 s after the membership healed: {missing:?}"
    );
}

#[test]
fn a_node_leaving_in_keep_instance_mode_leaves_its_ring_instance_and_tokens_in_place() {
    const N: usize = 4;
    let mut sim = sim_of(|seed| {
        NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan).with_ring_instance()
    });
    for _ in 0..N {
        let id = sim.add_node();
        if id != NodeId(0) {
            sim.command(id, |node, now| node.join(now, &[node_addr(NodeId(0))]));
        }
    }
    let formed = sim
        .run_until(Duration::from_secs(30), Duration::from_millis(100), |sim| {
            sim.running()
                .all(|(_, n)| n.num_alive() == N && n.ring().is_some_and(|r| r.len() == N))
        })
        .expect("no invariant");
    assert!(formed.is_some(), "the cluster never formed");
    let tokens = |sim: &Sim<Node>, id: NodeId| {
        sim.node(id).and_then(|n| n.ring()).and_then(|r| {
            r.instance("node-2")
                .map(|i| (i.state(), i.tokens().clone()))
        })
    };
    let before = tokens(&sim, NodeId(0)).expect("node-2 registered");
    sim.command(NodeId(2), |node, now| {
        node.leave_with(now, rumour_cluster::LeaveMode::KeepInstance)
    })
    .expect("running")
    .expect("left");
    let left = sim
        .run_until(Duration::from_secs(5), Duration::from_millis(50), |sim| {
            sim.running()
                .filter(|(id, _)| *id != NodeId(2))
                .all(|(_, n)| n.member_state("node-2") == Some(rumour_cluster::swim::State::Left))
        })
        .expect("no invariant");
    assert!(left.is_some(), "the goodbye did not spread");
    let heartbeat = |sim: &Sim<Node>| {
        sim.node(NodeId(0))
            .and_then(|n| n.ring())
            .and_then(|r| r.heartbeat_of("node-2"))
    };
    let stopped_at = heartbeat(&sim);
    sim.run_for(Duration::from_secs(20)).expect("no invariant");
    for id in [NodeId(0), NodeId(1), NodeId(3)] {
        assert_eq!(tokens(&sim, id).as_ref(), Some(&before), "on {id:?}");
    }
    assert_eq!(heartbeat(&sim), stopped_at, "heartbeats stop");
}

fn alive_peers(node: &Node) -> Vec<std::net::SocketAddr> {
    node.gossip()
        .peers()
        .filter(|(_, state)| *state == rumour_cluster::gossip::PeerState::Alive)
        .map(|(addr, _)| addr)
        .collect()
}

#[test]
fn the_kv_peer_set_follows_the_member_table_even_when_membership_events_are_dropped() {
    const N: usize = 64;
    let mut sim = sim_of(|seed| {
        let mut config = NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan);
        // A one-event queue: a join answer's 63 MemberJoined events cannot all fit.
        config.swim = config
            .swim
            .to_builder()
            .event_queue_capacity(std::num::NonZeroUsize::MIN)
            .build()
            .expect("valid");
        config
    });
    for _ in 0..N {
        let id = sim.add_node();
        if id != NodeId(0) {
            sim.command(id, |node, now| node.join(now, &[node_addr(NodeId(0))]));
        }
    }
    let full = sim
        .run_until(Duration::from_secs(60), Duration::from_millis(200), |sim| {
            sim.running()
                .all(|(_, n)| n.num_alive() == N && alive_peers(n).len() == N - 1)
        })
        .expect("no invariant");
    let short: Vec<(String, usize)> = sim
        .running()
        .filter(|(_, n)| alive_peers(n).len() != N - 1)
        .map(|(_, n)| (n.name().to_owned(), alive_peers(n).len()))
        .collect();
    assert!(full.is_some(), "KV peer sets short: {short:?}");
    assert!(
        sim.running()
            .any(|(_, n)| n.swim().stats().events_dropped > 0),
        "the test needs dropped events"
    );
    let victim = NodeId(N - 1);
    let victim_addr = node_addr(victim);
    sim.apply(rumour_cluster::sim::Fault::Crash(victim));
    let gone = sim
        .run_until(
            Profile::Lan.detection_bound(N) + Duration::from_secs(1),
            Duration::from_millis(200),
            |sim| {
                sim.running()
                    .all(|(_, n)| !alive_peers(n).contains(&victim_addr))
            },
        )
        .expect("no invariant");
    assert!(gone.is_some(), "a failed member stayed a pull-push target");
}

#[test]
fn a_second_process_with_this_nodes_name_is_reported_as_a_conflict_not_refuted() {
    let mut sim = sim_of(|seed| {
        // Node 2 takes node 1's name.
        let name = if seed.id == NodeId(2) { 1 } else { seed.id.0 };
        NodeConfig::new(format!("node-{name}"), seed.addr, Profile::Lan)
    });
    for _ in 0..3 {
        let id = sim.add_node();
        if id != NodeId(0) {
            sim.command(id, |node, now| node.join(now, &[node_addr(NodeId(0))]));
        }
    }
    let conflicts = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = conflicts.clone();
    sim.set_event_sink(Box::new(move |id, _, event| {
        if let NodeEvent::AddressConflict {
            name,
            known,
            claimed,
        } = event
        {
            sink.borrow_mut().push((id, name, known, claimed));
        }
    }));
    sim.run_for(Duration::from_secs(30)).expect("no invariant");
    let conflicts = conflicts.borrow();
    assert!(
        conflicts
            .iter()
            .any(|(id, name, known, claimed)| *id == NodeId(2)
                && name == "node-1"
                && *known == node_addr(NodeId(2))
                && *claimed == node_addr(NodeId(1))),
        "node 2 did not report the conflict about itself: {conflicts:?}"
    );
    for id in [NodeId(1), NodeId(2)] {
        let node = sim.node(id).expect("running");
        assert_eq!(node.stats().refutations, 0, "{id:?} duelled");
    }
}
