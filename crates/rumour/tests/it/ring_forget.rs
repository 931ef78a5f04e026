//! The ring page's Forget action over real HTTP against real `rumour agent` processes: refused
//! (403, with how to enable it) by default, and with `--http-allow-forget` the instance leaves
//! the ring of every node. And `--join dns+localhost:PORT` with `--abort-if-join-fails`.

use std::net::SocketAddr;

use crate::support::{self, Processes, Response, poll};

/// The gossip and HTTP addresses of a started agent.
struct Agent {
    gossip: SocketAddr,
    http: SocketAddr,
}

fn start(agents: &mut Processes, name: &str, extra: &[&str]) -> Agent {
    let mut args = vec!["agent", "--name", name, "--profile", "local"];
    args.extend(["--bind-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]);
    args.extend(["--cluster-label", "forget-test"]);
    args.extend(extra);
    let line = agents.start(&args, "gossip on");
    let gossip = line
        .split("gossip on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|addr| addr.trim().parse().ok());
    match (gossip, support::http_addr(&line)) {
        (Some(gossip), Some(http)) => Agent { gossip, http },
        _ => panic!("unexpected banner: {line:?}"),
    }
}

fn ring_state(ring: &serde_json::Value, id: &str) -> Option<String> {
    let instances = ring["instances"].as_array()?;
    let instance = instances.iter().find(|i| i["id"] == id)?;
    instance["state"].as_str().map(str::to_string)
}

fn instance_count(r: &Response) -> usize {
    r.json()["instances"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn forget_is_refused_by_default_and_with_the_flag_the_instance_is_left_everywhere() {
    let mut agents = Processes::default();
    let allowing = start(&mut agents, "agent-1", &["--http-allow-forget"]);
    let seed = allowing.gossip.to_string();
    let plain = start(&mut agents, "agent-2", &["--join", &seed]);
    let doomed = start(&mut agents, "agent-3", &["--join", &seed]);
    for http in [doomed.http, allowing.http, plain.http] {
        poll(http, "/ring", true, |r| instance_count(r) == 3).await;
    }
    // agent-3 crashes; its instance stays in the ring.
    let process = agents.last_mut();
    process.kill().expect("killed");
    process.wait().expect("reaped");

    let page = support::get(plain.http, "/ring", None).await.unwrap();
    assert!(
        page.body.contains("--http-allow-forget"),
        "the page says how to enable Forget: {}",
        page.body
    );
    let refused = support::post_form(plain.http, "/ring/forget", "forget=agent-3")
        .await
        .unwrap();
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused.body.contains("--http-allow-forget"),
        "{}",
        refused.body
    );
    let still = support::get(plain.http, "/ring?format=json", None)
        .await
        .unwrap();
    assert_eq!(
        ring_state(&still.json(), "agent-3").as_deref(),
        Some("ACTIVE")
    );

    let unknown = support::post_form(allowing.http, "/ring/forget", "forget=nobody")
        .await
        .unwrap();
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let accepted = support::post_form(allowing.http, "/ring/forget", "forget=agent-3")
        .await
        .unwrap();
    assert_eq!(accepted.status, 303, "{accepted:?}");
    assert!(
        accepted
            .header("location")
            .is_some_and(|l| l.starts_with("/ring")),
        "{accepted:?}"
    );
    // The page, like `Cluster::ring`, hides `LEFT` tombstones: the instance is gone from it on
    // every node (the tombstone itself is checked in-process, in the binary's http tests).
    for http in [allowing.http, plain.http] {
        let gone = |r: &Response| {
            r.json()["present"] == true && ring_state(&r.json(), "agent-3").is_none()
        };
        poll(http, "/ring", true, gone).await;
    }
    let page = support::get(allowing.http, "/ring", None).await.unwrap();
    assert!(!page.body.contains("Forget is disabled"), "{}", page.body);
}

#[tokio::test]
async fn an_agent_joins_through_dns_localhost_and_aborts_when_nobody_answers() {
    let mut agents = Processes::default();
    let first = start(&mut agents, "dns-1", &[]);
    let seed = format!("dns+localhost:{}", first.gossip.port());
    let second = start(
        &mut agents,
        "dns-2",
        &["--join", &seed, "--abort-if-join-fails"],
    );
    poll(second.http, "/ready", false, |r| r.status == 200).await;
    poll(first.http, "/ring", true, |r| instance_count(r) == 2).await;

    // A port that never answers gossip: the join fails, and the agent exits with a failure.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let seed = format!("dns+localhost:{}", silent.local_addr().unwrap().port());
    let args = [
        "agent",
        "--name",
        "dns-3",
        "--profile",
        "local",
        "--bind-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--cluster-label",
        "forget-test",
        "--join",
        &seed,
        "--abort-if-join-fails",
        "--min-join-backoff",
        "50ms",
        "--max-join-backoff",
        "100ms",
        "--max-join-retries",
        "2",
    ]
    .map(String::from);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rumour"))
            .args(args)
            .output()
            .expect("the rumour binary runs")
    })
    .await
    .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("could not join"), "{stderr}");
}
