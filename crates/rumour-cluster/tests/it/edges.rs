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
        let mut config =
            NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan);
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
            sim.node(b).is_some_and(|n| n.gossip().list("k/").len() == 10)
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
