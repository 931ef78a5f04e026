//! Sealed frames over real sockets on 127.0.0.1: key rotation in a running 5-node cluster (also
//! with one node a step behind), the plaintext-to-encrypted rollout with the two switches and
//! back, clusters with different keys never merge, and forged packets sent without the key have
//! no effect. Every wait is a polling loop under a generous deadline; no sleep is an assertion.

use crate::support::eventually;
use std::net::SocketAddr;

use rumour_cluster::Cluster;
use rumour_cluster::scenario::ScenarioView;
use rumour_cluster::swim::State;
use rumour_cluster::transport::frame::{FrameCodec, FrameConfig, Key, Keyring};
use rumour_cluster::transport::{NetConfig, NetTransport, Transport};
use rumour_cluster::{NodeEvent, Profile};
use tokio::sync::broadcast;

fn key(byte: u8) -> Key {
    Key::from_bytes([byte; 32])
}

async fn node(name: String, seeds: &[SocketAddr], keys: Keyring, verify: (bool, bool)) -> Cluster {
    Cluster::builder(name)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .profile(Profile::Local)
        .keyring(keys)
        .gossip_verify_incoming(verify.0)
        .gossip_verify_outgoing(verify.1)
        .join(seeds.iter().copied())
        .build()
        .await
        .expect("binds 127.0.0.1")
}

/// Starts `n` nodes named `{prefix}-{i}` that join the first.
async fn cluster(prefix: &str, n: usize, keys: &Keyring, verify: (bool, bool)) -> Vec<Cluster> {
    let first = node(format!("{prefix}-0"), &[], keys.clone(), verify).await;
    let mut nodes = vec![first.clone()];
    for i in 1..n {
        nodes.push(
            node(
                format!("{prefix}-{i}"),
                &[first.addr()],
                keys.clone(),
                verify,
            )
            .await,
        );
    }
    let all = nodes.clone();
    eventually("every node sees every member alive", || {
        let all = all.clone();
        async move {
            for node in &all {
                if node.num_alive().await? != all.len() {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await;
    nodes
}

/// Writes marker `key` on `node` and waits until every node holds it.
async fn write_and_spread(nodes: &[Cluster], on: usize, key: String) {
    let k = key.clone();
    nodes[on]
        .with_node(move |node, now| node.put_marker(now, &k))
        .await
        .expect("running");
    let all = nodes.to_vec();
    eventually(&format!("{key} reaches every node"), || {
        let (all, key) = (all.clone(), key.clone());
        async move {
            for node in &all {
                let k = key.clone();
                if !node.with_node(move |n, _| n.has_marker(&k)).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await;
}

/// Subscribes to every node's events, to check afterwards that nobody was suspected.
fn watch(nodes: &[Cluster]) -> Vec<broadcast::Receiver<NodeEvent>> {
    nodes.iter().map(Cluster::events).collect()
}

fn assert_no_suspicion(watchers: &mut [broadcast::Receiver<NodeEvent>]) {
    for (i, events) in watchers.iter_mut().enumerate() {
        loop {
            match events.try_recv() {
                Ok(
                    event @ (NodeEvent::MemberSuspected { .. }
                    | NodeEvent::MemberFailed { .. }
                    | NodeEvent::MemberLeft { .. }),
                ) => panic!("node {i} reported {event:?}"),
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(error) => panic!("node {i}: {error}"),
            }
        }
    }
}

async fn all_alive(nodes: &[Cluster]) {
    for (i, node) in nodes.iter().enumerate() {
        let members = node.members().await.expect("running");
        assert_eq!(members.len(), nodes.len(), "node {i}: {members:?}");
        assert!(
            members.iter().all(|m| m.state == State::Alive),
            "{members:?}"
        );
    }
}

async fn shutdown(nodes: &[Cluster]) {
    for node in nodes {
        node.shutdown().await;
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Install,
    Use,
    Remove,
}

async fn apply(node: &Cluster, step: Step, old: &Key, new: &Key) {
    match step {
        Step::Install => {
            node.install_key(new.clone()).await.expect("running");
        }
        Step::Use => node.use_key(new).await.expect("installed"),
        Step::Remove => node.remove_key(old).await.expect("not primary"),
    }
}

async fn rotate(prefix: &str, lagging: Option<usize>) {
    let (old, new) = (key(1), key(2));
    let nodes = cluster(prefix, 5, &Keyring::new(old.clone()), (true, true)).await;
    let mut watchers = watch(&nodes);
    for step in [Step::Install, Step::Use, Step::Remove] {
        for (i, node) in nodes.iter().enumerate() {
            if Some(i) != lagging {
                apply(node, step, &old, &new).await;
                write_and_spread(&nodes, i, format!("{step:?}-{i}")).await;
            }
        }
        if let Some(late) = lagging {
            write_and_spread(&nodes, late, format!("{step:?}-late")).await;
            apply(&nodes[late], step, &old, &new).await;
            write_and_spread(&nodes, late, format!("{step:?}-{late}")).await;
        }
    }
    write_and_spread(&nodes, 0, "after".to_string()).await;
    all_alive(&nodes).await;
    assert_no_suspicion(&mut watchers);
    for node in &nodes {
        let status = node.keys().await.expect("running");
        assert_eq!(status.fingerprints, [new.fingerprint()]);
        let stats = node.stats().await.expect("running");
        assert_eq!(stats.frame.dropped_not_authentic, 0, "{:?}", stats.frame);
        assert_eq!(stats.frame.dropped_unsealed, 0);
    }
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_a_key_rotation_of_five_nodes_loses_no_member_and_no_update() {
    rotate("rot", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_a_rotation_with_a_node_a_step_behind_loses_nothing() {
    rotate("lag", Some(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_a_plaintext_cluster_moves_to_encryption_and_back_without_a_split() {
    let nodes = cluster("roll", 4, &Keyring::default(), (true, true)).await;
    let mut watchers = watch(&nodes);
    let secret = key(7);
    write_and_spread(&nodes, 0, "plain".to_string()).await;
    // 1. Every node learns the key, checking and sealing nothing yet.
    for (i, node) in nodes.iter().enumerate() {
        node.set_gossip_verify_incoming(false).await.unwrap();
        node.set_gossip_verify_outgoing(false).await.unwrap();
        node.install_key(secret.clone()).await.unwrap();
        write_and_spread(&nodes, i, format!("installed-{i}")).await;
    }
    // 2. Every node seals what it sends; all still read plaintext.
    for (i, node) in nodes.iter().enumerate() {
        node.set_gossip_verify_outgoing(true).await.unwrap();
        write_and_spread(&nodes, i, format!("sealing-{i}")).await;
    }
    // 3. Every node refuses plaintext.
    for (i, node) in nodes.iter().enumerate() {
        node.set_gossip_verify_incoming(true).await.unwrap();
        write_and_spread(&nodes, i, format!("verifying-{i}")).await;
    }
    all_alive(&nodes).await;
    // Every node seals, and reads only sealed frames: the markers above travelled sealed.
    for node in &nodes {
        let stats = node.stats().await.unwrap().frame;
        assert!(
            stats.packets_sealed > 0 && stats.frames_opened > 0,
            "{stats:?}"
        );
    }
    // Encrypted now: a plaintext node cannot join.
    let outsider = node(
        "roll-outsider".to_string(),
        &[nodes[0].addr()],
        Keyring::default(),
        (true, true),
    )
    .await;
    eventually("the outsider's join is dropped unread", || {
        let first = nodes[0].clone();
        async move { Ok(first.stats().await?.frame.dropped_unsealed > 0) }
    })
    .await;
    assert_eq!(outsider.num_alive().await.unwrap(), 1);
    outsider.shutdown().await;
    write_and_spread(&nodes, 1, "encrypted".to_string()).await;
    // And back: accept plaintext, send plaintext, forget the key.
    for (i, node) in nodes.iter().enumerate() {
        node.set_gossip_verify_incoming(false).await.unwrap();
        write_and_spread(&nodes, i, format!("lenient-{i}")).await;
    }
    for (i, node) in nodes.iter().enumerate() {
        node.set_gossip_verify_outgoing(false).await.unwrap();
        write_and_spread(&nodes, i, format!("plain-again-{i}")).await;
    }
    for (i, node) in nodes.iter().enumerate() {
        node.set_keyring(Keyring::default()).await.unwrap();
        write_and_spread(&nodes, i, format!("keyless-{i}")).await;
    }
    all_alive(&nodes).await;
    assert_no_suspicion(&mut watchers);
    for node in &nodes {
        let stats = node.stats().await.unwrap().frame;
        assert_eq!(
            stats.dropped_not_authentic + stats.dropped_sealed,
            0,
            "{stats:?}"
        );
    }
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_two_clusters_with_different_keys_never_merge() {
    let blue = cluster("blue", 2, &Keyring::new(key(1)), (true, true)).await;
    let green = cluster("green", 2, &Keyring::new(key(2)), (true, true)).await;
    // A green node started with blue's address as its seed keeps trying to join.
    let stray = node(
        "green-stray".to_string(),
        &[blue[0].addr()],
        Keyring::new(key(2)),
        (true, true),
    )
    .await;
    blue[1]
        .with_node({
            let to = green[0].addr();
            move |node, now| node.join(now, &[to])
        })
        .await
        .unwrap();
    eventually("both sides dropped the other's frames", || {
        let (b, g) = (blue[0].clone(), green[0].clone());
        async move {
            Ok(b.stats().await?.frame.dropped_not_authentic >= 2
                && g.stats().await?.frame.dropped_not_authentic >= 1)
        }
    })
    .await;
    for node in blue.iter().chain(&green) {
        assert_eq!(
            node.members().await.unwrap().len(),
            2,
            "{} merged",
            node.name()
        );
    }
    assert_eq!(stray.members().await.unwrap().len(), 1);
    stray.shutdown().await;
    shutdown(&blue).await;
    shutdown(&green).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_forged_packets_without_the_key_have_no_effect() {
    let nodes = cluster("forge", 3, &Keyring::new(key(1)), (true, true)).await;
    let mut watchers = watch(&nodes);
    write_and_spread(&nodes, 0, "before".to_string()).await;
    let bind = || NetConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    let attacker = NetTransport::bind(bind()).await.unwrap();
    let third_party = NetTransport::bind(bind()).await.unwrap();
    let incarnation_of = |members: &[rumour_cluster::MemberInfo]| {
        members
            .iter()
            .find(|m| m.name == "forge-2")
            .map(|m| m.incarnation)
    };
    let before = incarnation_of(&nodes[0].members().await.unwrap());
    let forged = crate::forge::forge("forge-2", "forge-1", third_party.advertise_addr());
    let plain = FrameCodec::new(FrameConfig::default());
    let wrong_key = FrameCodec::new(FrameConfig::default().with_keyring(Keyring::new(key(9))));
    let mut sent = 0;
    for codec in [&plain, &wrong_key] {
        let (datagrams, streams) = crate::forge::frame(codec, &forged);
        for target in &nodes {
            for bytes in &datagrams {
                attacker
                    .send_datagram(target.addr(), bytes.clone())
                    .await
                    .unwrap();
            }
            for bytes in &streams {
                attacker
                    .send_reliable(target.addr(), bytes.clone())
                    .await
                    .unwrap();
            }
        }
        sent += (datagrams.len() + streams.len()) as u64;
    }
    // UDP may lose a datagram on loopback under load: wait for the streams and most datagrams.
    eventually("every node dropped the forged frames", || {
        let nodes = nodes.clone();
        async move {
            for node in &nodes {
                let f = node.stats().await?.frame;
                if f.dropped_unsealed + f.dropped_not_authentic < sent * 9 / 10 {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await;
    write_and_spread(&nodes, 1, "after".to_string()).await;
    for node in &nodes {
        let stats = node.stats().await.unwrap();
        assert!(stats.frame.dropped_unsealed >= 2, "{:?}", stats.frame);
        assert!(stats.frame.dropped_not_authentic >= 2, "{:?}", stats.frame);
        assert_eq!(stats.node.messages_refused, 0, "nothing reached a layer");
        let members = node.members().await.unwrap();
        assert_eq!(members.len(), 3, "{members:?}");
        assert!(members.iter().all(|m| m.state == State::Alive));
        assert_eq!(incarnation_of(&members), before);
        assert!(
            !node
                .with_node(|n, _| n.has_marker(crate::forge::PLANTED_KEY))
                .await
                .unwrap()
        );
        let ring_intact = node
            .with_node(|n, _| n.ring().is_none_or(|r| r.instance("intruder").is_none()))
            .await
            .unwrap();
        assert!(ring_intact);
    }
    assert_no_suspicion(&mut watchers);
    // Every forged frame was dropped before decoding, so no reply could go to the third party.
    let third = third_party.stats();
    assert_eq!(third.datagrams_in + third.reliable_in, 0, "{third:?}");
    attacker.shutdown().await;
    third_party.shutdown().await;
    shutdown(&nodes).await;
}
