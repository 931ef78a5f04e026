//! The tokio driver: nodes over an in-memory network and over real sockets on 127.0.0.1.
//! Every wait is a polling loop under a generous deadline; no sleep is an assertion.

use crate::support::{DEADLINE, eventually};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumour_cluster::Cluster;
use rumour_cluster::ring::{Instance, Ring, State as InstanceState, Timestamp, Tokens};
use rumour_cluster::swim::State;
use rumour_cluster::transport::{MemConfig, MemNetwork};
use rumour_cluster::{Error, NodeEvent, Profile};

fn mem_addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

async fn mem_node(net: &MemNetwork, i: u8, seeds: &[SocketAddr]) -> Cluster {
    let transport = net.bind(mem_addr(i)).expect("address free");
    Cluster::builder(format!("node-{i}"))
        .transport(Arc::new(transport))
        .profile(Profile::Local)
        .ring_instance(true)
        .seed(u64::from(i))
        .join(seeds.iter().copied())
        .build()
        .await
        .expect("node starts")
}

async fn state_of(cluster: &Cluster, name: &str) -> Result<Option<State>, Error> {
    let members = cluster.members().await?;
    Ok(members.iter().find(|m| m.name == name).map(|m| m.state))
}

fn extra_instance() -> Instance {
    Instance::new(
        "10.9.9.9:1",
        "zone-x",
        InstanceState::Active,
        Tokens::new(vec![42, 4242]),
        Timestamp(1),
    )
}

#[tokio::test]
async fn three_nodes_in_memory_converge_share_a_ring_write_and_see_a_leave() {
    let net = MemNetwork::new(MemConfig::new(1));
    let a = mem_node(&net, 1, &[]).await;
    let b = mem_node(&net, 2, &[a.addr()]).await;
    let c = mem_node(&net, 3, &[a.addr()]).await;
    let mut events = a.events();
    let nodes = [a.clone(), b.clone(), c.clone()];

    eventually(
        "every node sees three alive members and three ring instances",
        || {
            let nodes = nodes.clone();
            async move {
                for node in &nodes {
                    let ring = node.ring().await?;
                    if node.num_alive().await? != 3 || ring.is_none_or(|r| r.len() != 3) {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        },
    )
    .await;
    assert!(nodes.iter().all(Cluster::is_ready));

    a.cas_ring(|ring| {
        let mut ring = ring.cloned().unwrap_or_else(Ring::new);
        ring.set_instance("extra", extra_instance()).ok()?;
        Some(ring)
    })
    .await
    .expect("ring write accepted");
    eventually("the ring write reaches b and c", || {
        let (b, c) = (b.clone(), c.clone());
        async move {
            let seen = |ring: Option<Ring>| ring.is_some_and(|r| r.instance("extra").is_some());
            Ok(seen(b.ring().await?) && seen(c.ring().await?))
        }
    })
    .await;
    let extra = c.ring().await.unwrap().unwrap();
    assert_eq!(
        extra.instance("extra").unwrap().tokens().as_slice(),
        [42, 4242]
    );

    c.leave(Duration::from_secs(5))
        .await
        .expect("goodbye gossiped");
    assert!(!c.is_ready(), "a node that left is not ready");
    eventually("a and b see c as left", || {
        let (a, b) = (a.clone(), b.clone());
        async move {
            let left = Some(State::Left);
            Ok(state_of(&a, "node-3").await? == left && state_of(&b, "node-3").await? == left)
        }
    })
    .await;
    let left = loop {
        match events.recv().await.expect("a is running") {
            NodeEvent::MemberLeft { name } => break name,
            _ => continue,
        }
    };
    assert_eq!(left, "node-3");
    eventually("c's ring instance is gone from a's ring", || {
        let a = a.clone();
        async move {
            Ok(a.ring()
                .await?
                .is_some_and(|r| r.instance("node-3").is_none()))
        }
    })
    .await;
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn a_node_started_before_its_seed_joins_once_the_seed_appears() {
    let net = MemNetwork::new(MemConfig::new(2));
    let early = mem_node(&net, 2, &[mem_addr(1)]).await;
    eventually("the early node tried its seed once", || {
        let early = early.clone();
        async move { Ok(early.stats().await?.driver.join_attempts >= 1) }
    })
    .await;
    assert!(!early.is_ready(), "nobody answered yet");
    let seed = mem_node(&net, 1, &[]).await;
    tokio::time::timeout(DEADLINE, early.ready())
        .await
        .expect("joined before the deadline")
        .expect("still running");
    eventually("the seed sees the early node", || {
        let seed = seed.clone();
        async move { Ok(seed.num_alive().await? == 2) }
    })
    .await;
    let stats = early.stats().await.unwrap();
    assert!(
        stats.driver.join_attempts >= 2,
        "the driver retried: {stats:?}"
    );
    early.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test]
async fn a_stopped_node_says_so_and_shutdown_is_idempotent() {
    let net = MemNetwork::new(MemConfig::new(3));
    let node = mem_node(&net, 1, &[]).await;
    assert!(node.is_ready(), "a node without seeds is ready at once");
    let mut events = node.events();
    node.shutdown().await;
    node.shutdown().await;
    assert!(!node.is_running());
    assert!(!node.is_ready());
    assert!(matches!(node.members().await, Err(Error::Stopped { .. })));
    let end = loop {
        if let Err(error) = events.recv().await {
            break error;
        }
    };
    assert_eq!(end, tokio::sync::broadcast::error::RecvError::Closed);
}

#[tokio::test]
async fn kv_writes_reach_other_nodes_and_deletes_follow() {
    let net = MemNetwork::new(MemConfig::new(4));
    let a = mem_node(&net, 1, &[]).await;
    let b = mem_node(&net, 2, &[a.addr()]).await;
    b.watch_key("services").await.unwrap();
    let mut events = b.events();
    a.kv_cas::<Ring>("services", |_| {
        let mut ring = Ring::new();
        ring.set_instance("svc", extra_instance()).ok()?;
        Some(ring)
    })
    .await
    .expect("write accepted");
    eventually("b lists and reads the key", || {
        let b = b.clone();
        async move {
            let listed = b.kv_list("serv").await? == ["services"];
            Ok(listed && b.kv_get::<Ring>("services").await?.is_some())
        }
    })
    .await;
    let changed = loop {
        if let NodeEvent::KeyChanged { key } = events.recv().await.expect("b running") {
            break key;
        }
    };
    assert_eq!(changed, "services");
    assert!(a.kv_delete("services").await.unwrap());
    eventually("the delete reaches b", || {
        let b = b.clone();
        async move { Ok(b.kv_get::<Ring>("services").await?.is_none()) }
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

async fn net_node(i: u8, seeds: &[SocketAddr]) -> Cluster {
    Cluster::builder(format!("net-{i}"))
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .profile(Profile::Local)
        .label("driver-test")
        .join(seeds.iter().copied())
        .configure(|config| {
            config.swim = config
                .swim
                .to_builder()
                .probe_interval(Duration::from_millis(200))
                .probe_timeout(Duration::from_millis(100))
                .build()
                .expect("valid swim settings");
        })
        .build()
        .await
        .expect("binds 127.0.0.1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_three_nodes_converge_and_a_crash_is_detected() {
    let a = net_node(1, &[]).await;
    let b = net_node(2, &[a.addr()]).await;
    let c = net_node(3, &[a.addr()]).await;
    let nodes = [a.clone(), b.clone(), c.clone()];
    eventually("every node sees three alive members", || {
        let nodes = nodes.clone();
        async move {
            for node in &nodes {
                if node.num_alive().await? != 3 {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await;

    c.shutdown().await;
    eventually("a and b declare the crashed node failed", || {
        let (a, b) = (a.clone(), b.clone());
        async move {
            let dead = Some(State::Dead);
            Ok(state_of(&a, "net-3").await? == dead && state_of(&b, "net-3").await? == dead)
        }
    })
    .await;
    let stats = a.stats().await.unwrap();
    assert!(stats.transport.datagrams_in > 0 && stats.transport.datagrams_out > 0);
    assert!(
        stats.swim.failed_probes > 0 || stats.swim.suspicions > 0,
        "{stats:?}"
    );
    assert_eq!(stats.frame.dropped_label_mismatch, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_only_nodes_converge_over_real_sockets() {
    let start = |i: u8, seeds: Vec<SocketAddr>| {
        Cluster::builder(format!("tcp-{i}"))
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .profile(Profile::Local)
            .tcp_only(true)
            .join(seeds)
            .build()
    };
    let a = start(1, vec![]).await.expect("binds");
    let b = start(2, vec![a.addr()]).await.expect("binds");
    eventually("both tcp-only nodes see each other", || {
        let (a, b) = (a.clone(), b.clone());
        async move { Ok(a.num_alive().await? == 2 && b.num_alive().await? == 2) }
    })
    .await;
    let stats = a.stats().await.unwrap();
    assert!(stats.transport.connections_accepted > 0, "{stats:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_node_with_another_cluster_label_is_never_admitted() {
    let net = MemNetwork::new(MemConfig::new(5));
    let start = |i: u8, label: &str, seeds: Vec<SocketAddr>| {
        Cluster::builder(format!("node-{i}"))
            .transport(Arc::new(net.bind(mem_addr(i)).expect("address free")))
            .profile(Profile::Local)
            .label(label)
            .join(seeds)
            .build()
    };
    let blue = start(1, "blue", vec![]).await.expect("starts");
    let green = start(2, "green", vec![blue.addr()]).await.expect("starts");
    eventually("blue drops green's frames for their label", || {
        let blue = blue.clone();
        async move { Ok(blue.stats().await?.frame.dropped_label_mismatch > 0) }
    })
    .await;
    assert_eq!(blue.num_alive().await.unwrap(), 1);
    assert_eq!(green.num_alive().await.unwrap(), 1);
    assert!(!green.is_ready());
    blue.shutdown().await;
    green.shutdown().await;
}
