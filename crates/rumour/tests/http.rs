//! The status pages over real HTTP on 127.0.0.1, for nodes on an in-memory network.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumour::transport::{MemConfig, MemNetwork};
use rumour::{Cluster, Profile};
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep};

async fn node(net: &MemNetwork, name: &str, i: u8, seeds: &[SocketAddr]) -> Cluster {
    Cluster::builder(name)
        .transport(Arc::new(
            net.bind(SocketAddr::from(([10, 0, 0, i], 7946))).unwrap(),
        ))
        .profile(Profile::Local)
        .ring_instance(true)
        .join(seeds.iter().copied())
        .configure(|config| config.gossip.message_history_bytes = 16 * 1024)
        .build()
        .await
        .expect("node starts")
}

/// Serves the pages of `clusters` on a free port of 127.0.0.1.
async fn serve(clusters: Vec<Cluster>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(rumour::http::serve(
        listener,
        clusters,
        std::future::pending(),
    ));
    addr
}

/// Polls the nodes until each sees every other alive and every ring instance.
async fn converge(nodes: &[Cluster]) {
    let n = nodes.len();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut done = true;
        for node in nodes {
            let ring = node.ring().await.unwrap();
            done &= node.num_alive().await.unwrap() == n && ring.is_some_and(|r| r.len() == n);
        }
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "{n} nodes did not converge");
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_pages_show_members_ring_metrics_and_readiness() {
    let net = MemNetwork::new(MemConfig::new(9));
    let a = node(&net, "alpha", 1, &[]).await;
    let b = node(&net, "beta", 2, &[a.addr()]).await;
    let http = serve(vec![a.clone(), b.clone()]).await;

    converge(&[a.clone(), b.clone()]).await;
    let json = support::get(http, "/memberlist", Some("application/json")).await;
    let json: serde_json::Value = serde_json::from_str(&json.unwrap().body).unwrap();
    assert_eq!(json["alive"], 2);
    assert_eq!(json["node"], "alpha");
    assert_eq!(json["members"][1]["name"], "beta");
    assert_eq!(json["members"][1]["addr"], "10.0.0.2:7946");
    assert!(json["members"][1]["incarnation"].is_u64());
    assert_eq!(json["keys"][0]["key"], "ring");

    let html = support::get(http, "/memberlist?node=beta", None)
        .await
        .unwrap();
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.body.contains("Seen from <b>beta</b>"), "{}", html.body);
    assert!(html.body.contains("<td>alpha</td>") && html.body.contains(">alive<"));
    assert!(
        html.body.contains("changes"),
        "the message history is shown"
    );

    let ring = support::get(http, "/ring", Some("application/json"))
        .await
        .unwrap();
    let ring: serde_json::Value = serde_json::from_str(&ring.body).unwrap();
    let instances = ring["instances"].as_array().unwrap();
    let ids: Vec<&str> = instances
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);
    let ownership: f64 = instances
        .iter()
        .map(|i| i["ownership"].as_f64().unwrap())
        .sum();
    assert!(
        (ownership - 100.0).abs() < 0.01,
        "ownership adds up to {ownership}"
    );
    assert!(
        instances
            .iter()
            .all(|i| i["state"] == "ACTIVE" && i["tokens"].as_u64() > Some(0))
    );
    let ring_html = support::get(http, "/ring?node=beta", None).await.unwrap();
    assert!(ring_html.body.contains("<td>alpha</td>") && ring_html.body.contains("ACTIVE"));

    let metrics = support::get(http, "/metrics", None).await.unwrap();
    assert_eq!(metrics.status, 200);
    for name in [
        "rumour_members{node=\"alpha\",state=\"alive\"} 2",
        "rumour_health_score{node=\"beta\"} 0",
        "rumour_swim_messages_total{node=\"alpha\",direction=\"sent\",kind=\"state\"}",
        "rumour_transport_bytes_total{node=\"beta\",direction=\"received\"}",
        "rumour_dropped_total{node=\"alpha\",layer=\"frame\",reason=\"checksum\"} 0",
        "rumour_failure_detector_total{node=\"alpha\",event=\"suspicion\"}",
        "rumour_queue_depth{node=\"alpha\",queue=\"gossip_local\"}",
        "rumour_pullpush_total{node=\"beta\",layer=\"gossip\",outcome=\"completed\"}",
        "rumour_ring_instances{node=\"alpha\",state=\"ACTIVE\"} 2",
    ] {
        assert!(
            metrics.body.contains(name),
            "no {name} in\n{}",
            metrics.body
        );
    }

    let ready = support::get(http, "/ready", None).await.unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    let index = support::get(http, "/", None).await.unwrap();
    assert!(index.body.contains("/ring?node=beta"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn ready_answers_503_until_the_node_has_joined() {
    let net = MemNetwork::new(MemConfig::new(10));
    let nobody = SocketAddr::from(([10, 0, 0, 99], 7946));
    let lonely = node(&net, "lonely", 1, &[nobody]).await;
    let http = serve(vec![lonely.clone()]).await;
    let ready = support::get(http, "/ready", None).await.unwrap();
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("lonely"), "{}", ready.body);
    lonely.shutdown().await;
    let stopped = support::get(http, "/memberlist", None).await.unwrap();
    assert_eq!(stopped.status, 503, "a stopped node has no page");
}
