//! The KV store over memberlist's channels (`Wire::Memberlist`, as grafana/dskit's memberlist
//! KV), in the deterministic simulator: changes spread as user messages holding dskit
//! `KeyValuePair`s, and a node that joins after every broadcast has run out catches up through
//! the push/pull's user state alone.

use std::collections::BTreeSet;
use std::time::Duration;

use rumour_cluster::sim::{LinkConfig, NodeId, NodeSeed, Sim};
use rumour_cluster::{MemberlistOptions, Node, NodeConfig, Wire};
use rumour_gossip::MessageKind;
use rumour_ring::{Mergeable, Timestamp, Tombstones};

use crate::support;

const SEED: u64 = 15;
const REPLAY: &str = "cargo test -p rumour-cluster --test it memberlist_kv";

/// A grow-only set of names.
#[derive(Clone, Debug, Default, PartialEq)]
struct Names(BTreeSet<String>);

impl Mergeable for Names {
    const CODEC_ID: &'static str = "names";

    fn merge(&mut self, other: &Self, _: Option<Timestamp>) -> Option<Self> {
        let new: BTreeSet<String> = other.0.difference(&self.0).cloned().collect();
        self.0.extend(new.iter().cloned());
        (!new.is_empty()).then_some(Names(new))
    }

    fn content(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }

    fn remove_tombstones(&mut self, _: Timestamp) -> Tombstones {
        Tombstones::default()
    }

    fn encode(&self) -> Vec<u8> {
        let names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        names.join("\n").into_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<Self, rumour_ring::Error> {
        let text = std::str::from_utf8(bytes).map_err(|_| rumour_ring::Error::Decode {
            what: "names",
            offset: 0,
            reason: "not UTF-8",
        })?;
        Ok(Names(
            text.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

/// A LAN node in memberlist mode.
fn memberlist_config(seed: &NodeSeed) -> NodeConfig {
    let mut config = support::lan_config(seed);
    config.wire = Wire::Memberlist(MemberlistOptions::new().with_compression(true));
    config
}

/// `n` memberlist-mode nodes joined through node 0, each registering [`Names`] at start and,
/// with `ring`, holding a ring instance.
fn cluster(n: usize, ring: bool) -> Sim<Node> {
    cluster_on(n, ring, LinkConfig::default())
}

/// [`cluster`] over links with `link`.
fn cluster_on(n: usize, ring: bool, link: LinkConfig) -> Sim<Node> {
    let config = move |seed: &NodeSeed| {
        let config = memberlist_config(seed);
        if ring {
            config.with_ring_instance()
        } else {
            config
        }
    };
    let mut sim = support::joining_node_0(SEED, link, config);
    sim.set_replay(REPLAY);
    support::add_nodes(&mut sim, n);
    for id in 0..n {
        sim.command(NodeId(id), |node, _| node.register::<Names>());
    }
    let joined = sim
        .run_until(Duration::from_secs(60), Duration::from_millis(100), |sim| {
            sim.running().all(|(_, node)| node.num_alive() == n)
        })
        .expect("no invariant is checked");
    assert!(
        joined.is_some(),
        "{n} memberlist-mode nodes did not join (seed {SEED}; replay: {REPLAY})"
    );
    sim
}

fn names(node: &Node) -> BTreeSet<String> {
    node.gossip()
        .get::<Names>("names")
        .map(|n| n.0)
        .unwrap_or_default()
}

/// Each of the first `n` nodes adds its own name to the `names` key; returns every name.
fn every_node_writes_its_name(sim: &mut Sim<Node>, n: usize) -> BTreeSet<String> {
    for id in 0..n {
        sim.command(NodeId(id), |node, now| {
            node.cas(now, "names", |current: Option<&Names>| {
                let mut names = current.cloned().unwrap_or_default();
                names.0.insert(format!("node-{id}"));
                Some(names)
            })
            .expect("a write")
        });
    }
    (0..n).map(|i| format!("node-{i}")).collect()
}

#[test]
fn kv_writes_of_memberlist_mode_nodes_reach_every_node_through_user_messages() {
    println!("seed {SEED}; replay: {REPLAY}");
    let n = 5;
    let mut sim = cluster(n, true);
    let all = every_node_writes_its_name(&mut sim, n);
    let converged = sim
        .run_until(Duration::from_secs(30), Duration::from_millis(100), |sim| {
            sim.running().all(|(_, node)| names(node) == all)
        })
        .expect("no invariant is checked");
    assert!(
        converged.is_some(),
        "the writes did not converge (seed {SEED}; replay: {REPLAY})"
    );
    for (id, node) in sim.running() {
        // Every ring instance too.
        let ring = node.ring().expect("a ring");
        assert_eq!(ring.len(), n, "{id} sees {} ring instances", ring.len());
        let stats = node.memberlist_stats().expect("memberlist mode");
        assert!(
            stats.kv_sent > 0 && stats.kv_received > 0,
            "{id}: {stats:?}"
        );
        assert_eq!(stats.kv_refused, 0, "{id}: {stats:?}");
        assert_eq!(
            stats.user_received, 0,
            "{id}: KV pairs are not user messages"
        );
        assert_eq!(stats.decode_errors, 0, "{id}: {stats:?}");
    }
}

#[test]
fn a_node_that_joins_after_the_broadcasts_ran_out_catches_up_through_push_pull_user_state() {
    println!("seed {SEED}; replay: {REPLAY}");
    // No ring: its heartbeats would keep gossiping.
    let mut sim = cluster(3, false);
    sim.command(NodeId(1), |node, now| {
        node.cas(now, "names", |_: Option<&Names>| {
            Some(Names(["written-early".to_owned()].into()))
        })
        .expect("a write")
    });
    // Long enough for every transmit of the write to run out.
    let quiet = sim
        .run_until(Duration::from_secs(30), Duration::from_millis(100), |sim| {
            sim.running().all(|(_, node)| {
                names(node).contains("written-early") && !node.gossip().has_broadcasts()
            })
        })
        .expect("no invariant is checked");
    assert!(quiet.is_some(), "the write did not settle (seed {SEED})");
    let late = sim.add_node();
    sim.command(late, |node, _| node.register::<Names>());
    let caught_up = sim
        .run_until(Duration::from_secs(30), Duration::from_millis(100), |sim| {
            sim.node(late)
                .is_some_and(|node| names(node).contains("written-early"))
        })
        .expect("no invariant is checked");
    assert!(
        caught_up.is_some(),
        "the late node never got the write (seed {SEED}; replay: {REPLAY})"
    );
    let node = sim.node(late).expect("running");
    let stats = node.memberlist_stats().expect("memberlist mode");
    assert!(stats.kv_states_received >= 1, "{stats:?}");
    let gossip = node.gossip().stats();
    assert!(gossip.received.get(MessageKind::FullState).messages >= 1);
    assert_eq!(
        gossip.received.get(MessageKind::Change).messages,
        0,
        "nothing came by gossip"
    );
}

#[test]
fn kv_writes_converge_over_links_that_lose_a_fifth_of_the_packets() {
    println!("seed {SEED}; replay: {REPLAY}");
    let n = 6;
    let link = LinkConfig {
        latency: (Duration::from_millis(1), Duration::from_millis(20)),
        loss: 0.2,
        duplicate: 0.05,
        ..LinkConfig::default()
    };
    let mut sim = cluster_on(n, false, link);
    let all = every_node_writes_its_name(&mut sim, n);
    let converged = sim
        .run_until(
            Duration::from_secs(120),
            Duration::from_millis(100),
            |sim| sim.running().all(|(_, node)| names(node) == all),
        )
        .expect("no invariant is checked");
    assert!(
        converged.is_some(),
        "the writes did not converge over lossy links (seed {SEED}; replay: {REPLAY})"
    );
    for (id, node) in sim.running() {
        let stats = node.memberlist_stats().expect("memberlist mode");
        assert_eq!(
            (stats.kv_refused, stats.user_received),
            (0, 0),
            "{id}: {stats:?}"
        );
    }
}
