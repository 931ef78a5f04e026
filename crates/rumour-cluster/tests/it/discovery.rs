//! Seeds by name (dskit's `dns+` and `dnssrv+` join addresses): resolved through a resolver the
//! test controls, again on every rejoin; join back-off, `abort_if_join_fails` and `min_joins`;
//! and one real-socket join through `localhost`. Every wait polls under a deadline.

use crate::support::{DEADLINE, eventually};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rumour_cluster::transport::{MemConfig, MemNetwork};
use rumour_cluster::{
    Builder, Cluster, Error, JoinSettings, Profile, Seed, SrvRecord, StaticResolver,
};

fn ip(i: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, i])
}

fn seed(s: &str) -> Seed {
    s.parse().expect("a valid seed")
}

/// Quick join retries, for tests.
fn quick(max_retries: u32) -> JoinSettings {
    JoinSettings {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        max_retries,
        ..JoinSettings::default()
    }
}

/// A node on `net` at 10.0.0.`i`, rejoining every 200 ms.
fn mem_builder(net: &MemNetwork, i: u8) -> Builder {
    let transport = net
        .bind(SocketAddr::new(ip(i), 7946))
        .expect("address free");
    Cluster::builder(format!("node-{i}"))
        .transport(Arc::new(transport))
        .profile(Profile::Local)
        .seed(u64::from(i))
        .configure(|config| {
            config.swim = config
                .swim
                .to_builder()
                .rejoin_interval(Some(Duration::from_millis(200)))
                .build()
                .expect("valid swim settings");
        })
}

async fn sees(node: &Cluster, name: &str) -> Result<bool, Error> {
    Ok(node
        .members()
        .await?
        .iter()
        .any(|m| m.name == name && m.state == rumour_cluster::swim::State::Alive))
}

#[tokio::test]
async fn a_name_that_resolves_elsewhere_over_time_heals_the_cluster_after_every_seed_restarted() {
    let net = MemNetwork::new(MemConfig::new(11));
    let resolver = StaticResolver::new();
    resolver.set_host("rumour.svc", [ip(1)]);
    let first = mem_builder(&net, 1).build().await.expect("starts");
    let follower = mem_builder(&net, 3)
        .join_seeds([seed("dns+rumour.svc:7946")])
        .resolver(Arc::new(resolver.clone()))
        .build()
        .await
        .expect("starts");
    tokio::time::timeout(DEADLINE, follower.ready())
        .await
        .expect("joined through the name")
        .expect("running");

    // Every seed pod restarts with a new address; the name follows it.
    first.shutdown().await;
    let restarted = mem_builder(&net, 4).build().await.expect("starts");
    let lookups = resolver.lookups();
    resolver.set_host("rumour.svc", [ip(4)]);
    eventually("the restarted seed and the follower see each other", || {
        let (restarted, follower) = (restarted.clone(), follower.clone());
        async move { Ok(sees(&restarted, "node-3").await? && sees(&follower, "node-4").await?) }
    })
    .await;
    assert!(resolver.lookups() > lookups, "the name was resolved again");
    follower.shutdown().await;
    restarted.shutdown().await;
}

#[tokio::test]
async fn an_srv_name_joins_every_target_on_its_port() {
    let net = MemNetwork::new(MemConfig::new(12));
    let resolver = StaticResolver::new();
    resolver.set_host("pod-1", [ip(1)]);
    resolver.set_host("pod-2", [ip(2)]);
    resolver.set_srv(
        "_gossip._tcp.rumour.svc",
        ["pod-1", "pod-2"].map(|target| SrvRecord {
            target: target.into(),
            port: 7946,
        }),
    );
    let a = mem_builder(&net, 1).build().await.expect("starts");
    let b = mem_builder(&net, 2).build().await.expect("starts");
    let c = mem_builder(&net, 3)
        .join_seeds([seed("dnssrv+_gossip._tcp.rumour.svc")])
        .resolver(Arc::new(resolver))
        .join_settings(JoinSettings {
            min_joins: 2,
            abort_if_join_fails: true,
            ..quick(20)
        })
        .build()
        .await
        .expect("joined both targets");
    assert!(sees(&c, "node-1").await.unwrap() && sees(&c, "node-2").await.unwrap());
    for node in [a, b, c] {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn abort_if_join_fails_fails_the_build_after_the_last_retry() {
    let net = MemNetwork::new(MemConfig::new(13));
    let resolver = Arc::new(StaticResolver::new());
    // One name that never resolves, one address nobody answers at.
    let seeds = [seed("dns+nowhere.svc:7946"), seed("10.0.0.9:7946")];
    let error = mem_builder(&net, 1)
        .join_seeds(seeds.clone())
        .resolver(resolver.clone())
        .join_settings(JoinSettings {
            abort_if_join_fails: true,
            ..quick(2)
        })
        .build()
        .await
        .expect_err("nobody answers");
    match error {
        Error::JoinFailed {
            name,
            attempts,
            seen,
        } => {
            assert_eq!((name.as_str(), attempts, seen), ("node-1", 3, 0));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(
        resolver.lookups() >= 3,
        "the name was resolved on every attempt"
    );

    // Without the option the node runs, not ready, and keeps trying.
    let patient = mem_builder(&net, 2)
        .join_seeds(seeds)
        .resolver(resolver)
        .join_settings(quick(2))
        .build()
        .await
        .expect("starts anyway");
    assert!(!patient.is_ready());
    patient.shutdown().await;
}

#[tokio::test]
async fn min_joins_is_not_met_by_fewer_members() {
    let net = MemNetwork::new(MemConfig::new(14));
    let a = mem_builder(&net, 1).build().await.expect("starts");
    let error = mem_builder(&net, 2)
        .join([SocketAddr::new(ip(1), 7946)])
        .join_settings(JoinSettings {
            min_joins: 2,
            abort_if_join_fails: true,
            ..quick(2)
        })
        .build()
        .await
        .expect_err("only one other member exists");
    assert!(
        matches!(error, Error::JoinFailed { seen: 1, .. }),
        "{error}"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_a_node_joins_through_dns_localhost() {
    let net_node = |name: &str| {
        Cluster::builder(name)
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .profile(Profile::Local)
    };
    let a = net_node("dns-a").build().await.expect("binds");
    let b = net_node("dns-b")
        .join_seeds([seed(&format!("dns+localhost:{}", a.addr().port()))])
        .join_settings(JoinSettings {
            abort_if_join_fails: true,
            ..quick(20)
        })
        .build()
        .await
        .expect("joined through localhost");
    assert!(b.is_ready());
    eventually("a sees b", || {
        let a = a.clone();
        async move { sees(&a, "dns-b").await }
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}
