//! The API memberlist users build on: node metadata, round-trip times, user messages.
//! Every wait is a polling loop under a generous deadline; no sleep is an assertion.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumour_cluster::transport::{MemConfig, MemNetwork};
use rumour_cluster::{Cluster, Error, NodeEvent, Profile};
use tokio::time::{Instant, sleep};

const DEADLINE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it holds, failing the test with `what` after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if check().await.expect("node running") {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(POLL).await;
    }
}

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
