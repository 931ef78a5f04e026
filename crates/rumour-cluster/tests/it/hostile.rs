//! Hostile packets against a 5-node cluster on real sockets (127.0.0.1, local profile, no
//! label): one crafted packet per attack class, sent by a plain transport that is not a member,
//! and the outcome asserted. Every wait is a polling loop under a generous deadline.

use crate::support::{eventually, throughout};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rumour_cluster::envelope::{self, Channel};
use rumour_cluster::gossip::{KeyChange, Marker, Message as KvMessage, Session};
use rumour_cluster::ring::{Instance, Mergeable, Ring, State as InstanceState, Timestamp, Tokens};
use rumour_cluster::swim::message::{Alive, Dead, Message as SwimMessage, Ping, Suspect};
use rumour_cluster::swim::{Incarnation, NodeName, State};
use rumour_cluster::transport::frame::{FrameCodec, FrameConfig};
use rumour_cluster::transport::{NetConfig, NetTransport, Transport};
use rumour_cluster::{Cluster, Error, Profile};

/// Five nodes on 127.0.0.1, joined through the first, converged.
async fn cluster() -> Vec<Cluster> {
    let mut nodes: Vec<Cluster> = Vec::new();
    for i in 0..5 {
        let seeds: Vec<SocketAddr> = nodes.first().map(Cluster::addr).into_iter().collect();
        let node = Cluster::builder(format!("node-{i}"))
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .profile(Profile::Local)
            .ring_instance(true)
            .join(seeds)
            .build()
            .await
            .expect("binds 127.0.0.1");
        nodes.push(node);
    }
    eventually(
        "every node sees five alive members and five ring instances",
        || {
            let nodes = nodes.clone();
            async move {
                for node in &nodes {
                    let instances = node.ring().await?.map_or(0, |r| r.instances().count());
                    if node.num_alive().await? != 5 || instances != 5 {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        },
    )
    .await;
    nodes
}

async fn shutdown(nodes: Vec<Cluster>) {
    for node in nodes {
        node.shutdown().await;
    }
}

/// A transport that is no member: the attacker, or a bystander counting what it receives.
async fn outsider() -> NetTransport {
    NetTransport::bind(NetConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))))
        .await
        .expect("binds 127.0.0.1")
}

fn name(s: &str) -> NodeName {
    NodeName::new(s).expect("valid name")
}

fn datagram(channel: Channel, message: &[u8]) -> Bytes {
    let frame = FrameCodec::new(FrameConfig::default());
    Bytes::from(frame.encode_packet(&[&envelope::tag(channel, message)]))
}

async fn state_of(node: &Cluster, member: &str) -> Result<Option<(State, u32)>, Error> {
    let members = node.members().await?;
    Ok(members
        .iter()
        .find(|m| m.name == member)
        .map(|m| (m.state, m.incarnation)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_forged_death_at_the_highest_incarnation_takes_nobody_out() {
    let nodes = cluster().await;
    let attacker = outsider().await;
    for forged in [
        SwimMessage::Dead(Dead {
            name: name("node-2"),
            incarnation: Incarnation(u32::MAX),
            from: name("node-3"),
        }),
        SwimMessage::Suspect(Suspect {
            name: name("node-2"),
            incarnation: Incarnation(u32::MAX),
            from: name("node-3"),
        }),
    ] {
        let packet = datagram(Channel::Swim, &forged.encode());
        attacker
            .send_datagram(nodes[1].addr(), packet)
            .await
            .expect("sent");
    }
    throughout(
        "every node lists node-2 alive",
        Duration::from_secs(3),
        || {
            let nodes = nodes.clone();
            async move {
                for node in &nodes {
                    match state_of(node, "node-2").await? {
                        Some((State::Alive | State::Suspect, incarnation)) => {
                            assert!(incarnation < u32::MAX, "incarnation pinned at the ceiling");
                        }
                        other => panic!("{} lists node-2 as {other:?}", node.name()),
                    }
                }
                Ok(true)
            }
        },
    )
    .await;
    eventually("every node lists node-2 alive", || {
        let nodes = nodes.clone();
        async move {
            for node in &nodes {
                if !matches!(state_of(node, "node-2").await?, Some((State::Alive, _))) {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await;
    attacker.shutdown().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflection_request_makes_no_node_send_a_bystander_more_than_the_attacker_sent() {
    let nodes = cluster().await;
    let attacker = outsider().await;
    let bystander = outsider().await;
    let mut sent = 0u64;
    let requests = [
        (
            Channel::Gossip,
            KvMessage::FullState {
                session: Session {
                    from: bystander.advertise_addr(),
                    id: 7,
                },
                request: true,
                entries: Vec::new(),
            }
            .encode(),
        ),
        (
            Channel::Swim,
            SwimMessage::Ping(Ping {
                seq: 1,
                target: name("node-1"),
                source: Alive {
                    name: name("bystander"),
                    addr: bystander.advertise_addr(),
                    incarnation: Incarnation(1),
                    meta: Bytes::new(),
                },
            })
            .encode(),
        ),
    ];
    for (channel, message) in &requests {
        let packet = datagram(*channel, message);
        // Sent twice: as a datagram, and over a stream.
        sent += 2 * packet.len() as u64;
        attacker
            .send_datagram(nodes[1].addr(), packet.clone())
            .await
            .expect("sent");
        attacker
            .send_reliable(nodes[2].addr(), packet)
            .await
            .expect("sent");
    }
    // Give every node time to answer wherever it would, then count what reached the bystander.
    throughout(
        "the bystander receives no more than the attacker sent",
        Duration::from_secs(3),
        || {
            let stats = bystander.stats();
            async move {
                assert!(
                    stats.bytes_in <= sent,
                    "sent {sent}, the bystander got {stats:?}"
                );
                Ok(true)
            }
        },
    )
    .await;
    attacker.shutdown().await;
    bystander.shutdown().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_deletion_of_the_ring_key_deletes_nothing() {
    let nodes = cluster().await;
    let attacker = outsider().await;
    let deletion = KvMessage::Change(KeyChange {
        key: "ring".into(),
        codec: Ring::CODEC_ID.into(),
        value: None,
        marker: Marker {
            updated: Timestamp(u64::MAX),
            deleted: true,
        },
    });
    attacker
        .send_datagram(
            nodes[0].addr(),
            datagram(Channel::Gossip, &deletion.encode()),
        )
        .await
        .expect("sent");
    throughout(
        "every node holds the ring with five instances",
        Duration::from_secs(3),
        || {
            let nodes = nodes.clone();
            async move {
                for node in &nodes {
                    let instances = node.ring().await?.map_or(0, |r| r.instances().count());
                    if instances != 5 {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        },
    )
    .await;
    attacker.shutdown().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_members_stays_within_the_table_limit() {
    let nodes = cluster().await;
    let attacker = outsider().await;
    let flood = 2_000u32;
    for i in 0..flood {
        let alive = SwimMessage::Alive(Alive {
            name: name(&format!("forged-{i}")),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            incarnation: Incarnation(1),
            meta: Bytes::new(),
        });
        attacker
            .send_datagram(nodes[0].addr(), datagram(Channel::Swim, &alive.encode()))
            .await
            .expect("sent");
    }
    let limit = nodes[0]
        .with_node(|node, _| node.swim().config().max_members().get())
        .await
        .expect("running");
    throughout(
        "no member table grows past its limit, and no real member fails",
        Duration::from_secs(3),
        || {
            let nodes = nodes.clone();
            async move {
                for node in &nodes {
                    let members = node.members().await?;
                    assert!(
                        members.len() <= limit,
                        "{} holds {}",
                        node.name(),
                        members.len()
                    );
                    for real in (0..5).map(|i| format!("node-{i}")) {
                        let state = members.iter().find(|m| m.name == real).map(|m| m.state);
                        assert!(
                            matches!(state, Some(State::Alive | State::Suspect)),
                            "{} lists {real} as {state:?}",
                            node.name()
                        );
                    }
                }
                Ok(true)
            }
        },
    )
    .await;
    attacker.shutdown().await;
    shutdown(nodes).await;
}

fn change(key: &str, value: Option<&Ring>, updated: Timestamp) -> Bytes {
    let change = KvMessage::Change(KeyChange {
        key: key.into(),
        codec: Ring::CODEC_ID.into(),
        value: value.map(|r| Bytes::from(Mergeable::encode(r))),
        marker: Marker {
            updated,
            deleted: false,
        },
    });
    datagram(Channel::Gossip, &change.encode())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_flood_stops_at_the_store_limit() {
    let nodes = cluster().await;
    let attacker = outsider().await;
    let limit = nodes[0]
        .with_node(|node, _| node.gossip().config().max_keys)
        .await
        .expect("running");
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64,
    );
    let mut ring = Ring::new();
    let instance = Instance::new("x", "", InstanceState::Active, Tokens::new(vec![1]), now);
    ring.set_instance("flood", instance).expect("valid id");
    // Batches of datagrams, each a fresh key, until the node refuses one. A loaded machine drops
    // datagrams in the socket buffer, so the flood goes on in batches (fresh keys each) until the
    // node reports a refusal, and never holds more keys than its limit meanwhile.
    let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
    let mut sent = 0usize;
    loop {
        for _ in 0..200 {
            attacker
                .send_datagram(
                    nodes[0].addr(),
                    change(&format!("flood-{sent}"), Some(&ring), now),
                )
                .await
                .expect("sent");
            sent += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        let stats = nodes[0].stats().await.expect("running").gossip;
        assert!(stats.keys <= limit, "{} keys, limit {limit}", stats.keys);
        if stats.keys_refused > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out flooding: {sent} keys sent, {} stored, none refused (limit {limit})",
            stats.keys
        );
    }
    attacker.shutdown().await;
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_value_with_more_tokens_than_allowed_is_refused_whole() {
    let nodes = cluster().await;
    let attacker = outsider().await;
    let mut bomb = Ring::new();
    let instance = Instance::new(
        "10.66.0.1:7946",
        "",
        InstanceState::Active,
        // Consecutive tokens cost about one bit each on the wire: 5,000 fit one datagram.
        Tokens::new((1..=5_000).collect()),
        Timestamp(1),
    );
    bomb.set_instance("bomb", instance).expect("valid id");
    let invalid_before = nodes[0].stats().await.expect("running").gossip.invalid;
    attacker
        .send_datagram(nodes[0].addr(), change("ring", Some(&bomb), Timestamp(1)))
        .await
        .expect("sent");
    eventually("the node refused the value", || {
        let node = nodes[0].clone();
        async move { Ok(node.stats().await?.gossip.invalid > invalid_before) }
    })
    .await;
    let ring = nodes[0].ring().await.expect("running").expect("a ring");
    assert!(ring.instance("bomb").is_none(), "the bomb was merged");
    assert_eq!(ring.instances().count(), 5);
    attacker.shutdown().await;
    shutdown(nodes).await;
}
