//! A ring instance forgotten while a node was away stays forgotten when that node returns, even
//! when it was away for longer than `left_ingesters_timeout` (the tombstone long swept).

use std::time::Duration;

use crate::support::{EPOCH_MILLIS, Net, addr};
use rumour_ring::{Instance, Ring, State, Timestamp, Tokens};

fn ring_of(n: usize) -> Ring {
    let mut ring = Ring::new();
    for i in 0..n {
        let id = format!("ingester-{i}");
        let tokens = Tokens::new((0..16).map(|t| t * 1_000_003 + i as u32 * 7).collect());
        let at = Timestamp(EPOCH_MILLIS);
        ring.set_instance(
            &id,
            Instance::new("10.0.0.1:9095", "z", State::Active, tokens, at),
        )
        .unwrap();
        ring.set_heartbeat(&id, at).unwrap();
    }
    ring
}

fn holds(net: &Net, i: usize, id: &str) -> bool {
    net.nodes[i]
        .get::<Ring>("ring")
        .is_some_and(|ring| ring.instance(id).is_some())
}

#[test]
fn a_node_away_longer_than_the_tombstone_timeout_does_not_bring_back_a_forgotten_instance() {
    let mut net = Net::new(3, |c| c);
    for node in &mut net.nodes {
        node.register::<Ring>();
    }
    let now = net.now;
    net.nodes[0]
        .cas(now, "ring", |_: Option<&Ring>| Some(ring_of(3)))
        .unwrap();
    net.run_for(Duration::from_secs(5));
    assert!((0..3).all(|i| holds(&net, i, "ingester-1")));

    // Node 2 drops out; the others forget ingester-1 and sweep its tombstone.
    let now = net.now;
    for i in 0..2 {
        net.nodes[i].handle_peer_down(now, addr(2));
    }
    net.run_for(Duration::from_secs(1));
    net.away.insert(2);
    let now = net.now;
    net.nodes[0]
        .cas(now, "ring", |current: Option<&Ring>| {
            let mut ring = current.cloned().unwrap_or_default();
            ring.remove("ingester-1");
            Some(ring)
        })
        .unwrap();
    net.run_for(Duration::from_secs(60 * 60));
    for i in 0..2 {
        let ring = net.nodes[i].get::<Ring>("ring").unwrap();
        assert!(ring.instance("ingester-1").is_none(), "node {i} forgot it");
        let entry = net.nodes[i].entry("ring").unwrap();
        let stored = entry.value.as_any().downcast_ref::<Ring>().unwrap();
        assert_eq!(stored.tombstone_count(), 0, "node {i} swept the tombstone");
    }

    // An hour later node 2 returns, still holding ingester-1 as active.
    net.away.clear();
    let now = net.now;
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                net.nodes[i].handle_peer_up(now, addr(j));
            }
        }
    }
    net.run_for(Duration::from_secs(3 * 60));
    for i in 0..3 {
        assert!(
            !holds(&net, i, "ingester-1"),
            "node {i} holds ingester-1 again"
        );
        assert!(holds(&net, i, "ingester-0") && holds(&net, i, "ingester-2"));
    }
}
