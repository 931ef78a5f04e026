//! The API memberlist users build on, in the deterministic simulator: round-trip times and
//! user broadcasts.

use std::time::Duration;

use rumour_cluster::sim::{LinkConfig, NodeId, NodeSeed, Sim, node_addr};
use rumour_cluster::{Node, NodeConfig, Profile};

const SEED: u64 = 13;

/// `n` nodes joined through node 0 over links with `link`, run until all see `n` alive.
fn cluster(n: usize, link: LinkConfig) -> Sim<Node> {
    let mut sim = Sim::new(
        SEED,
        std::time::Instant::now(),
        link,
        Box::new(|seed: NodeSeed| {
            let config = NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan);
            let mut node = Node::new(config, seed.rng, seed.now).expect("valid config");
            if seed.id != NodeId(0) {
                node.join(seed.now, &[node_addr(NodeId(0))]);
            }
            node
        }),
    );
    sim.set_replay("cargo test -p rumour-cluster --test it api_sim");
    for _ in 0..n {
        sim.add_node();
    }
    let converged = sim
        .run_until(Duration::from_secs(60), Duration::from_millis(100), |sim| {
            sim.running().all(|(_, node)| node.num_alive() == n)
        })
        .expect("no invariant is checked");
    assert!(
        converged.is_some(),
        "cluster of {n} did not converge (seed {SEED})"
    );
    sim
}

#[test]
fn the_round_trip_time_of_direct_probes_is_twice_the_link_latency() {
    let one_way = Duration::from_millis(40);
    let link = LinkConfig {
        latency: (one_way, one_way),
        ..LinkConfig::default()
    };
    let mut sim = cluster(5, link);
    sim.run_for(Duration::from_secs(20)).expect("no invariant");
    let (lo, hi) = (2 * one_way, 2 * one_way + Duration::from_millis(2));
    for (id, node) in sim.running() {
        let mut measured = 0;
        for member in node.members() {
            if member.name.as_str() == node.name() {
                assert_eq!(member.rtt, None, "no round trip to oneself");
                continue;
            }
            let rtt = member.rtt.expect("every peer was probed directly by now");
            assert!(
                (lo..=hi).contains(&rtt),
                "{id:?} measured {rtt:?} to {}, expected about {:?}",
                member.name.as_str(),
                2 * one_way
            );
            measured += 1;
        }
        assert_eq!(measured, 4);
        let histogram = node.swim().stats().rtt;
        assert!(
            histogram.count >= 4,
            "{id:?} counted {} samples",
            histogram.count
        );
        let mean = histogram.sum() / u32::try_from(histogram.count).unwrap();
        assert!((lo..=hi).contains(&mean), "{id:?} mean RTT {mean:?}");
        let below: u64 = histogram
            .cumulative()
            .find(|(bound, _)| *bound >= Duration::from_millis(100))
            .map(|(_, n)| n)
            .unwrap();
        assert_eq!(below, histogram.count, "every sample is at most 100 ms");
    }
}
