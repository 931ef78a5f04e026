//! The status pages of `rumour demo` over real HTTP on 127.0.0.1: members, ring, metrics,
//! readiness and the index, for two nodes.

use std::net::SocketAddr;

use crate::support::{self, Processes, Response, poll};

fn instance_ids(ring: &serde_json::Value) -> Vec<&str> {
    ring["instances"].as_array().map_or_else(Vec::new, |all| {
        all.iter().filter_map(|i| i["id"].as_str()).collect()
    })
}

/// Starts a two-node demo on free ports and waits until each node sees both alive and both in
/// its ring.
async fn two_node_demo(demo: &mut Processes) -> SocketAddr {
    let args = [
        "demo",
        "--nodes",
        "2",
        "--profile",
        "local",
        "--http-addr",
        "127.0.0.1:0",
        "--cluster-label",
        "http-test",
    ];
    let line = demo.start(&args, "status page:");
    let http = support::http_addr(&line).unwrap_or_else(|| panic!("no address in {line:?}"));
    for node in ["node-0", "node-1"] {
        let alive = |r: &Response| r.json()["alive"] == 2;
        poll(http, &format!("/memberlist?node={node}"), true, alive).await;
        let ring = |r: &Response| instance_ids(&r.json()).len() == 2;
        poll(http, &format!("/ring?node={node}"), true, ring).await;
    }
    http
}

#[tokio::test]
async fn the_status_pages_show_members_ring_metrics_and_readiness() {
    let mut demo = Processes::default();
    let http = two_node_demo(&mut demo).await;

    let json = support::get(http, "/memberlist", Some("application/json"))
        .await
        .unwrap()
        .json();
    assert_eq!(json["alive"], 2);
    assert_eq!(json["node"], "node-0");
    assert_eq!(json["members"][1]["name"], "node-1");
    let addr = json["members"][1]["addr"].as_str().unwrap_or_default();
    assert!(
        addr.parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback()),
        "node-1 is at {addr:?}"
    );
    assert!(json["members"][1]["incarnation"].is_u64());
    // The round-trip time appears once node-0 has probed node-1.
    let measured = |r: &Response| {
        r.json()["members"][1]["rtt_ms"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0)
    };
    poll(http, "/memberlist", true, measured).await;
    assert_eq!(json["keys"][0]["key"], "ring");

    let html = support::get(http, "/memberlist?node=node-1", None)
        .await
        .unwrap();
    assert_eq!(html.status, 200);
    let content_type = html.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        html.body.contains("Seen from <b>node-1</b>"),
        "{}",
        html.body
    );
    assert!(html.body.contains("<td>node-0</td>") && html.body.contains(">alive<"));
    assert!(html.body.contains("<th>rtt (ms)</th>"), "{}", html.body);
    assert!(
        html.body.contains("Received changes"),
        "the message history is shown"
    );

    let ring = support::get(http, "/ring?format=json", None)
        .await
        .unwrap()
        .json();
    assert_eq!(instance_ids(&ring), ["node-0", "node-1"]);
    let instances = ring["instances"].as_array().unwrap();
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
    let ring_html = support::get(http, "/ring?node=node-1", None).await.unwrap();
    assert!(ring_html.body.contains("<td>node-0</td>") && ring_html.body.contains("ACTIVE"));

    let metrics = support::get(http, "/metrics", None).await.unwrap();
    assert_eq!(metrics.status, 200);
    for name in [
        "rumour_members{node=\"node-0\",state=\"alive\"} 2",
        "rumour_health_score{node=\"node-1\"}",
        "rumour_swim_messages_total{node=\"node-0\",direction=\"sent\",kind=\"state\"}",
        "rumour_transport_bytes_total{node=\"node-1\",direction=\"received\"}",
        "rumour_dropped_total{node=\"node-0\",layer=\"frame\",reason=\"checksum\"} 0",
        "rumour_failure_detector_total{node=\"node-0\",event=\"suspicion\"}",
        "rumour_queue_depth{node=\"node-0\",queue=\"gossip_local\"}",
        "rumour_pullpush_total{node=\"node-1\",layer=\"gossip\",outcome=\"completed\"}",
        "rumour_ring_instances{node=\"node-0\",state=\"ACTIVE\"} 2",
        "# TYPE rumour_probe_rtt_seconds histogram",
        "rumour_probe_rtt_seconds_bucket{le=\"+Inf\",node=\"node-0\"}",
        "rumour_probe_rtt_seconds_count{node=\"node-1\"}",
        "rumour_user_messages_total{node=\"node-0\",outcome=\"refused\"} 0",
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
    assert!(index.body.contains("/ring?node=node-1"));
}
