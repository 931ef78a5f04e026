//! The API memberlist users build on, in the deterministic simulator: round-trip times and
//! user broadcasts.

use std::time::Duration;

use crate::support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rumour_cluster::sim::{LinkConfig, NodeId, Sim, node_addr};
use rumour_cluster::{Delivery, Error, Node, NodeEvent, Profile};

/// `(receiver, from, bytes, broadcast)` of every user message reported.
type Received = Rc<RefCell<Vec<(NodeId, String, Vec<u8>, bool)>>>;

fn record_user_messages(sim: &mut Sim<Node>) -> Received {
    let received: Received = Rc::default();
    let sink = received.clone();
    sim.set_event_sink(Box::new(move |id, _, event| {
        if let NodeEvent::UserMessage {
            from,
            bytes,
            broadcast,
        } = event
        {
            sink.borrow_mut()
                .push((id, from, bytes.to_vec(), broadcast));
        }
    }));
    received
}

const SEED: u64 = 13;

/// `n` nodes joined through node 0 over links with `link`, run until all see `n` alive.
fn cluster(n: usize, link: LinkConfig) -> Sim<Node> {
    let mut sim = support::joining_node_0(SEED, link, support::lan_config);
    sim.set_replay("cargo test -p rumour-cluster --test it api_sim");
    support::add_nodes(&mut sim, n);
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

#[test]
fn a_user_broadcast_reaches_every_one_of_32_nodes_exactly_once() {
    let mut sim = cluster(32, LinkConfig::default());
    let received = record_user_messages(&mut sim);
    sim.command(NodeId(5), |node, _| node.broadcast_user(b"deploy v2"))
        .expect("node 5 runs")
        .expect("fits a datagram");
    let gossip = Profile::Lan.swim().gossip_interval();
    let done = sim
        .run_until(gossip * 40, Duration::from_millis(50), |_| {
            received.borrow().len() >= 31
        })
        .expect("no invariant");
    assert!(
        done.is_some(),
        "only {} of 31 nodes got the broadcast",
        received.borrow().len()
    );
    // Let every retransmission run out, then count: no node reports it twice, the origin never.
    sim.run_for(Duration::from_secs(10)).expect("no invariant");
    let mut per_node: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (id, from, bytes, broadcast) in received.borrow().iter() {
        assert_eq!(
            (from.as_str(), &bytes[..], *broadcast),
            ("node-5", &b"deploy v2"[..], true)
        );
        *per_node.entry(*id).or_default() += 1;
    }
    assert_eq!(per_node.len(), 31);
    assert!(
        !per_node.contains_key(&NodeId(5)),
        "the origin does not report its own"
    );
    assert!(per_node.values().all(|&n| n == 1), "{per_node:?}");
    assert!(
        sim.running()
            .all(|(_, node)| node.pending_user_broadcasts() == 0)
    );
}

#[test]
fn direct_user_messages_reach_a_member_by_name_or_address_and_bad_sends_are_refused() {
    let mut sim = cluster(3, LinkConfig::default());
    let received = record_user_messages(&mut sim);
    let to_addr = node_addr(NodeId(2)).to_string();
    sim.command(NodeId(0), |node, now| {
        node.send_user_message(now, "node-1", b"by datagram", Delivery::Datagram)?;
        node.send_user_message(now, &to_addr, b"by stream", Delivery::Stream)
    })
    .expect("node 0 runs")
    .expect("both targets are confirmed members");
    sim.run_for(Duration::from_secs(1)).expect("no invariant");
    let got = received.borrow().clone();
    assert!(
        got.contains(&(NodeId(1), "node-0".into(), b"by datagram".to_vec(), false)),
        "{got:?}"
    );
    assert!(
        got.contains(&(NodeId(2), "node-0".into(), b"by stream".to_vec(), false)),
        "{got:?}"
    );

    let refusals = sim
        .command(NodeId(0), |node, now| {
            let unknown = node.send_user_message(now, "node-9", b"x", Delivery::Stream);
            let myself = node.send_user_message(now, "node-0", b"x", Delivery::Datagram);
            let big = vec![0u8; 2000];
            let datagram = node.send_user_message(now, "node-1", &big, Delivery::Datagram);
            let broadcast = node.broadcast_user(&big);
            let huge = vec![0u8; 33 << 20];
            let stream = node.send_user_message(now, "node-1", &huge, Delivery::Stream);
            (
                unknown,
                myself,
                datagram,
                broadcast,
                stream,
                node.stats().user,
            )
        })
        .expect("node 0 runs");
    let (unknown, myself, datagram, broadcast, stream, stats) = refusals;
    assert!(
        matches!(unknown, Err(Error::UnknownMember { .. })),
        "{unknown:?}"
    );
    assert!(
        matches!(myself, Err(Error::UnknownMember { .. })),
        "{myself:?}"
    );
    for (result, kind) in [
        (datagram, "datagram"),
        (broadcast, "broadcast"),
        (stream, "stream"),
    ] {
        match result {
            Err(Error::UserMessageTooLarge { delivery, max, .. }) => {
                assert_eq!(delivery, kind);
                assert!(max > 0);
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
    assert_eq!((stats.sent, stats.refused), (2, 5));
}
