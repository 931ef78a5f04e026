//! Sealed frames in the simulator: key rotation in a running cluster (also with one node a step
//! behind), clusters with different keys never merge, a node without the key learns nothing, and
//! no forged packet sent without the key has any effect. Deterministic: every failure names its
//! seed.

use std::time::Duration;

use bytes::Bytes;
use rumour_cluster::scenario::ScenarioView;
use rumour_cluster::sim::{LinkConfig, NodeId, NodeSeed, Sim, node_addr};
use rumour_cluster::swim::State;
use rumour_cluster::transport::frame::{FrameCodec, FrameConfig, Key, Keyring};
use rumour_cluster::{Delivery, Node, NodeConfig, Profile, Transmit};

const SEED: u64 = 11;

fn key(byte: u8) -> Key {
    Key::from_bytes([byte; 32])
}

/// One node of a simulated cluster: its keys and whom it joins.
#[derive(Clone)]
struct Plan {
    keys: Vec<u8>,
    join: Option<usize>,
}

fn sim(plans: Vec<Plan>) -> Sim<Node> {
    let n = plans.len();
    let mut sim = Sim::new(
        SEED,
        std::time::Instant::now(),
        LinkConfig::default(),
        Box::new(move |seed: NodeSeed| {
            let plan = &plans[seed.id.0];
            let mut config =
                NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan)
                    .with_ring_instance();
            config.frame = config
                .frame
                .with_keyring(Keyring::from_keys(plan.keys.iter().map(|&b| key(b))));
            let mut node = Node::new(config, seed.rng, seed.now).expect("valid config");
            if let Some(to) = plan.join {
                node.join(seed.now, &[node_addr(NodeId(to))]);
            }
            node
        }),
    );
    sim.set_replay("cargo test -p rumour-cluster --test encryption_sim");
    for _ in 0..n {
        sim.add_node();
    }
    sim
}

fn name(i: usize) -> String {
    format!("node-{i}")
}

/// Runs until every node of `group` sees exactly `group` alive and every marker in `markers`.
fn converge(sim: &mut Sim<Node>, group: &[usize], markers: &[String]) -> bool {
    sim.run_until(Duration::from_secs(60), Duration::from_millis(100), |sim| {
        group.iter().all(|&i| {
            let node = sim.node(NodeId(i)).expect("running");
            node.num_alive() == group.len()
                && group.iter().all(|&j| node.sees_alive(&name(j)))
                && markers.iter().all(|m| node.has_marker(m))
        })
    })
    .expect("no failed check")
    .is_some()
}

/// Fails the run as soon as any node of `group` sees any member of it other than alive.
fn check_all_alive(sim: &mut Sim<Node>, group: Vec<usize>) {
    sim.add_check(
        "every member stays alive",
        Duration::from_millis(50),
        Box::new(move |sim| {
            for &i in &group {
                let node = sim.node(NodeId(i)).expect("running");
                for &j in &group {
                    let state = node.member_state(&name(j));
                    if state != Some(State::Alive) {
                        return Err(format!("node-{i} holds node-{j} as {state:?}"));
                    }
                }
            }
            Ok(())
        }),
    );
}

fn suspicions(sim: &Sim<Node>) -> u64 {
    sim.running().map(|(_, n)| n.stats().suspicions).sum()
}

fn not_authentic(sim: &Sim<Node>) -> u64 {
    sim.running()
        .map(|(_, n)| n.frame().stats().dropped_not_authentic)
        .sum()
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Install,
    Use,
    Remove,
}

fn apply(sim: &mut Sim<Node>, i: usize, step: Step, old: &Key, new: &Key) {
    sim.command(NodeId(i), |node, _| match step {
        Step::Install => {
            node.frame().install_key(new.clone());
        }
        Step::Use => node.frame().use_key(new).expect("installed"),
        Step::Remove => node.frame().remove_key(old).expect("not primary"),
    })
    .expect("running");
}

/// Rotates the key of a converged 5-node cluster, step by step on every node, writing a marker
/// at every step; `lagging` does each step only after the others have done it and gossiped for
/// a while. Asserts no member lost, no suspicion, no update lost, no frame failing to open.
fn rotate(lagging: Option<usize>) {
    let n = 5;
    let plans = (0..n)
        .map(|i| Plan {
            keys: vec![1],
            join: (i > 0).then_some(0),
        })
        .collect();
    let mut sim = sim(plans);
    let group: Vec<usize> = (0..n).collect();
    assert!(
        converge(&mut sim, &group, &[]),
        "seed {SEED}: no convergence"
    );
    let suspicions_before = suspicions(&sim);
    check_all_alive(&mut sim, group.clone());
    let (old, new) = (key(1), key(2));
    let mut markers = Vec::new();
    for step in [Step::Install, Step::Use, Step::Remove] {
        for i in (0..n).filter(|&i| Some(i) != lagging) {
            apply(&mut sim, i, step, &old, &new);
            let marker = format!("marker-{step:?}-{i}");
            sim.command(NodeId(i), |node, now| node.put_marker(now, &marker));
            markers.push(marker);
            sim.run_for(Duration::from_millis(700)).expect("all alive");
        }
        if let Some(late) = lagging {
            // The others have done this step and gossiped for a while; now the laggard.
            sim.run_for(Duration::from_secs(5)).expect("all alive");
            let marker = format!("marker-{step:?}-late-before");
            sim.command(NodeId(late), |node, now| node.put_marker(now, &marker));
            markers.push(marker);
            sim.run_for(Duration::from_secs(2)).expect("all alive");
            apply(&mut sim, late, step, &old, &new);
        }
        sim.run_for(Duration::from_secs(3)).expect("all alive");
    }
    assert!(
        converge(&mut sim, &group, &markers),
        "seed {SEED}: not every marker reached every node"
    );
    sim.run_for(Duration::from_secs(20)).expect("all alive");
    assert_eq!(suspicions(&sim), suspicions_before, "seed {SEED}");
    assert_eq!(
        not_authentic(&sim),
        0,
        "seed {SEED}: a frame failed to open"
    );
    for (_, node) in sim.running() {
        let status = node.frame().keyring_status();
        assert_eq!(status.fingerprints, [new.fingerprint()]);
        assert!(node.frame().stats().packets_sealed > 0);
    }
}

#[test]
fn a_key_rotation_in_a_running_cluster_loses_no_member_and_no_update() {
    rotate(None);
}

#[test]
fn a_key_rotation_with_one_node_a_step_behind_loses_no_member_and_no_update() {
    rotate(Some(3));
}

#[test]
fn two_clusters_with_different_keys_never_merge() {
    // Nodes 0-2 share key 1; nodes 3-5 share key 2, and node 3 tries to join node 0.
    let plans = (0..6)
        .map(|i| Plan {
            keys: vec![if i < 3 { 1 } else { 2 }],
            join: match i {
                0 | 3 => None,
                1 | 2 => Some(0),
                _ => Some(3),
            },
        })
        .collect();
    let mut sim = sim(plans);
    assert!(converge(&mut sim, &[0, 1, 2], &[]));
    assert!(converge(&mut sim, &[3, 4, 5], &[]));
    sim.command(NodeId(3), |node, now| {
        node.join(now, &[node_addr(NodeId(0))])
    });
    sim.command(NodeId(0), |node, now| {
        node.join(now, &[node_addr(NodeId(4))])
    });
    sim.run_for(Duration::from_secs(60)).expect("no check");
    for i in 0..6 {
        let node = sim.node(NodeId(i)).unwrap();
        assert_eq!(node.members().count(), 3, "seed {SEED}: node-{i} merged");
    }
    let dropped = |i: usize| {
        sim.node(NodeId(i))
            .unwrap()
            .frame()
            .stats()
            .dropped_not_authentic
    };
    assert!(dropped(0) > 0 && dropped(4) > 0, "seed {SEED}");
}

#[test]
fn a_node_without_the_key_cannot_join_and_learns_nothing() {
    // Nodes 0-2 are encrypted; node 3 has no key and joins node 0.
    let plans = (0..4)
        .map(|i| Plan {
            keys: if i < 3 { vec![1] } else { vec![] },
            join: (i > 0).then_some(0),
        })
        .collect();
    let mut sim = sim(plans);
    sim.command(NodeId(0), |node, now| node.put_marker(now, "secret"));
    assert!(converge(&mut sim, &[0, 1, 2], &["secret".to_string()]));
    sim.run_for(Duration::from_secs(60)).expect("no check");
    let outsider = sim.node(NodeId(3)).unwrap();
    assert_eq!(outsider.members().count(), 1, "seed {SEED}");
    assert!(!outsider.has_marker("secret"));
    assert!(
        outsider
            .ring()
            .is_none_or(|r| r.instance("node-0").is_none())
    );
    // Nobody answered it: its join was dropped unread.
    let heard = outsider.frame().stats();
    assert_eq!(
        heard.packets_decoded + heard.streams_decoded,
        0,
        "seed {SEED}"
    );
    for i in 0..3 {
        let node = sim.node(NodeId(i)).unwrap();
        assert!(node.member_state("node-3").is_none(), "seed {SEED}");
        assert!(!node.ring_has_active("node-3"));
    }
    // The encrypted node ignored the plaintext one.
    assert!(
        sim.node(NodeId(0))
            .unwrap()
            .frame()
            .stats()
            .dropped_unsealed
            > 0
    );
}

#[test]
fn no_forged_packet_sent_without_the_key_has_any_effect() {
    // Nodes 0-4 are encrypted; node 5 is the attacker (no key, never joins); node 6 (no key,
    // never joins) is the third party that reflection requests name.
    let plans = (0..7)
        .map(|i| Plan {
            keys: if i < 5 { vec![1] } else { vec![] },
            join: (1..5).contains(&i).then_some(0),
        })
        .collect();
    let mut sim = sim(plans);
    let group: Vec<usize> = (0..5).collect();
    assert!(converge(&mut sim, &group, &[]));
    sim.run_until(Duration::from_secs(30), Duration::from_millis(100), |sim| {
        group
            .iter()
            .all(|&i| (0..5).all(|j| sim.node(NodeId(i)).unwrap().ring_has_active(&name(j))))
    })
    .expect("no check")
    .expect("ring converges");
    check_all_alive(&mut sim, group.clone());
    let third_party = node_addr(NodeId(6));
    let forged = crate::forge::forge("node-2", "node-1", third_party);
    let plain = FrameCodec::new(FrameConfig::default());
    let wrong_key = FrameCodec::new(FrameConfig::default().with_keyring(Keyring::new(key(9))));
    let before: Vec<_> = group
        .iter()
        .map(|&i| sim.node(NodeId(i)).unwrap().frame().stats())
        .collect();
    let third_before = sim.node(NodeId(6)).unwrap().frame().stats();
    let mut sent = (0, 0);
    for target in &group {
        let to = node_addr(NodeId(*target));
        for (codec, is_plain) in [(&plain, true), (&wrong_key, false)] {
            let (datagrams, streams) = crate::forge::frame(codec, &forged);
            let count = (datagrams.len() + streams.len()) as u64;
            if is_plain {
                sent.0 += count;
            } else {
                sent.1 += count;
            }
            for bytes in datagrams {
                sim.send_from(NodeId(5), transmit(to, false, bytes));
            }
            for bytes in streams {
                sim.send_from(NodeId(5), transmit(to, true, bytes));
            }
        }
    }
    sim.run_for(Duration::from_secs(30))
        .expect("every member stays alive");
    let mut dropped = (0, 0);
    for (&i, before) in group.iter().zip(&before) {
        let node = sim.node(NodeId(i)).unwrap();
        let after = node.frame().stats();
        dropped.0 += after.dropped_unsealed - before.dropped_unsealed;
        dropped.1 += after.dropped_not_authentic - before.dropped_not_authentic;
        assert_eq!(
            node.members().count(),
            5,
            "seed {SEED}: node-{i} took a member"
        );
        assert_eq!(
            node.member_state("node-2"),
            Some(State::Alive),
            "seed {SEED}"
        );
        assert!(
            node.swim()
                .member("node-2")
                .is_some_and(|m| m.incarnation.0 < 1000),
            "seed {SEED}: node-{i} took an incarnation from a forged packet"
        );
        assert!(!node.has_marker(crate::forge::PLANTED_KEY), "seed {SEED}");
        assert!(
            (0..5).all(|j| node.ring_has_active(&name(j))),
            "seed {SEED}"
        );
        assert!(
            node.ring()
                .is_some_and(|r| r.instance("intruder").is_none())
        );
    }
    // Every forged frame was dropped at the frame layer, and counted there.
    assert_eq!(dropped, sent, "seed {SEED}");
    // Nothing was reflected to the third party.
    let third = sim.node(NodeId(6)).unwrap().frame().stats();
    assert_eq!(third.dropped_total(), third_before.dropped_total());
    assert_eq!(third.packets_decoded, third_before.packets_decoded);
    assert_eq!(third.streams_decoded, third_before.streams_decoded);
}

fn transmit(to: std::net::SocketAddr, reliable: bool, bytes: Bytes) -> Transmit {
    let delivery = if reliable {
        Delivery::Stream
    } else {
        Delivery::Datagram
    };
    Transmit {
        to,
        delivery,
        bytes,
    }
}

/// Runs a small encrypted cluster for 20 s and returns its trace hash.
fn encrypted_run() -> u64 {
    let plans = (0..4)
        .map(|i| Plan {
            keys: vec![1],
            join: (i > 0).then_some(0),
        })
        .collect();
    let mut sim = sim(plans);
    sim.run_for(Duration::from_secs(20)).expect("no check");
    assert!(
        sim.running()
            .all(|(_, n)| n.frame().stats().frames_opened > 0)
    );
    sim.trace_hash()
}

#[test]
fn an_encrypted_simulation_replays_byte_for_byte() {
    assert_eq!(encrypted_run(), encrypted_run(), "seed {SEED}");
}

#[test]
fn nodes_seeded_on_different_streams_of_one_seed_never_share_nonces() {
    use rand::SeedableRng;
    let now = std::time::Instant::now();
    let first_nonce = |stream: u64| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
        rng.set_stream(stream);
        let mut config = NodeConfig::new(format!("n{stream}"), node_addr(NodeId(0)), Profile::Lan);
        config.frame = config.frame.with_keyring(Keyring::new(key(1)));
        let node = Node::new(config, rng, now).expect("valid config");
        node.frame().encode_packet(&[b"x"])[4..4 + 24].to_vec()
    };
    let nonces: Vec<Vec<u8>> = (0..8).map(first_nonce).collect();
    for (i, a) in nonces.iter().enumerate() {
        for b in &nonces[i + 1..] {
            assert_ne!(a, b, "two nodes drew the same nonce");
        }
    }
    assert_eq!(first_nonce(3), nonces[3], "the nonce replays with the seed");
}
