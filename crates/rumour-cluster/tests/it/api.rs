//! The API memberlist users build on: node metadata, round-trip times, user messages.
//! Every wait is a polling loop under a generous deadline; no sleep is an assertion.

use crate::support::{DEADLINE, eventually};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rumour_cluster::transport::{MemConfig, MemNetwork};
use rumour_cluster::{Cluster, Error, NodeEvent, Profile};
use tokio::time::Instant;

fn mem_addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 1, i], 7946))
}

async fn mem_node(net: &MemNetwork, i: u8, seeds: &[SocketAddr]) -> Cluster {
    let transport = net.bind(mem_addr(i)).expect("address free");
    Cluster::builder(format!("node-{i}"))
        .transport(Arc::new(transport))
        .profile(Profile::Local)
        .seed(u64::from(i))
        .meta(format!("zone-{i}"))
        .join(seeds.iter().copied())
        .build()
        .await
        .expect("node starts")
}

/// The metadata `observer` holds for `name`.
async fn meta_of(observer: &Cluster, name: &str) -> Result<Option<Bytes>, Error> {
    let members = observer.members().await?;
    Ok(members.into_iter().find(|m| m.name == name).map(|m| m.meta))
}

async fn all_see_meta(nodes: &[Cluster], name: &str, meta: &[u8]) -> Result<bool, Error> {
    for node in nodes {
        if meta_of(node, name).await?.as_deref() != Some(meta) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[tokio::test]
async fn metadata_set_at_build_and_updated_at_runtime_is_seen_by_every_node() {
    let net = MemNetwork::new(MemConfig::new(11));
    let a = mem_node(&net, 1, &[]).await;
    let b = mem_node(&net, 2, &[a.addr()]).await;
    let c = mem_node(&net, 3, &[a.addr()]).await;
    let nodes = [a.clone(), b.clone(), c.clone()];
    let mut events = a.events();

    eventually("every node sees the build-time metadata of c", || {
        let nodes = nodes.clone();
        async move { all_see_meta(&nodes, "node-3", b"zone-3").await }
    })
    .await;

    c.set_meta("zone-9")
        .await
        .expect("metadata within the limit");
    eventually("every node sees the updated metadata of c", || {
        let nodes = nodes.clone();
        async move { all_see_meta(&nodes, "node-3", b"zone-9").await }
    })
    .await;

    let deadline = Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("an update event before the deadline")
            .expect("events flowing");
        if let NodeEvent::MemberUpdated { name, meta } = event {
            if name == "node-3" && &meta[..] == b"zone-9" {
                break;
            }
        }
    }

    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn metadata_over_the_limit_is_refused_and_changes_nothing() {
    let net = MemNetwork::new(MemConfig::new(12));
    let a = mem_node(&net, 1, &[]).await;
    let too_big = vec![7u8; 4096];
    let error = a.set_meta(too_big).await.expect_err("over meta_max_size");
    assert!(error.to_string().contains("metadata"), "{error}");
    assert_eq!(
        meta_of(&a, "node-1").await.expect("running").as_deref(),
        Some(&b"zone-1"[..])
    );

    let refused = Cluster::builder("big")
        .transport(Arc::new(net.bind(mem_addr(9)).expect("address free")))
        .profile(Profile::Local)
        .meta(vec![1u8; 4096])
        .build()
        .await;
    assert!(refused.is_err(), "a builder with oversized metadata fails");
    a.shutdown().await;
}

async fn net_node(i: u8, seeds: &[SocketAddr]) -> Cluster {
    Cluster::builder(format!("net-{i}"))
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .profile(Profile::Local)
        .label("api-test")
        .meta(format!("rack-{i}"))
        .join(seeds.iter().copied())
        .build()
        .await
        .expect("binds 127.0.0.1")
}

/// Receives user messages until one satisfies `wanted`, failing after [`DEADLINE`].
async fn receive(
    messages: &mut rumour_cluster::UserMessages,
    what: &str,
    wanted: impl Fn(&rumour_cluster::UserMessage) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let message = tokio::time::timeout_at(deadline, messages.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("node running");
        if wanted(&message) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_user_messages_arrive_reliably_best_effort_and_by_broadcast() {
    let a = net_node(1, &[]).await;
    let b = net_node(2, &[a.addr()]).await;
    let c = net_node(3, &[a.addr()]).await;
    let (mut at_b, mut at_c) = (b.user_messages(), c.user_messages());

    // A direct message is taken only from a member the receiver knows at the sender's
    // address (the rest are counted as unverified): one sent before the receiver has merged
    // a's answer to its join would be dropped, so the sends wait for the membership.
    eventually("every node knows all three", || {
        let nodes = [a.clone(), b.clone(), c.clone()];
        async move {
            for node in &nodes {
                if node.num_alive().await? < 3 {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await;

    // A member becomes a target once it answered a ping of the sender.
    eventually("a can send reliably to b", || {
        let a = a.clone();
        async move {
            match a.send_reliable("net-2", "over tcp").await {
                Ok(()) => Ok(true),
                Err(Error::UnknownMember { .. }) => Ok(false),
                Err(error) => Err(error),
            }
        }
    })
    .await;
    receive(&mut at_b, "the reliable message at b", |m| {
        m.from == "net-1" && &m.bytes[..] == b"over tcp" && !m.broadcast
    })
    .await;

    let c_addr = c.addr().to_string();
    eventually("a can send a datagram to c by address", || {
        let (a, c_addr) = (a.clone(), c_addr.clone());
        async move {
            match a.send_best_effort(&c_addr, "over udp").await {
                Ok(()) => Ok(true),
                Err(Error::UnknownMember { .. }) => Ok(false),
                Err(error) => Err(error),
            }
        }
    })
    .await;
    receive(&mut at_c, "the datagram at c", |m| {
        &m.bytes[..] == b"over udp"
    })
    .await;

    a.broadcast("to everyone").await.expect("fits a datagram");
    for (at, name) in [(&mut at_b, "b"), (&mut at_c, "c")] {
        receive(at, &format!("the broadcast at {name}"), |m| {
            m.from == "net-1" && &m.bytes[..] == b"to everyone" && m.broadcast
        })
        .await;
    }
    assert!(
        a.send_best_effort("net-2", vec![0u8; 64 * 1024])
            .await
            .is_err(),
        "a datagram over the packet budget is refused"
    );

    // Probes measured round trips on the way, and members carry the build-time metadata.
    eventually("a measured a round trip to b and c", || {
        let a = a.clone();
        async move {
            let members = a.members().await?;
            Ok(members.iter().filter(|m| !m.local).all(|m| m.rtt.is_some()))
        }
    })
    .await;
    assert_eq!(
        meta_of(&b, "net-3").await.unwrap().as_deref(),
        Some(&b"rack-3"[..])
    );

    for node in [a, b, c] {
        node.shutdown().await;
    }
}
