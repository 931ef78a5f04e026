//! Three real `rumour agent` processes on 127.0.0.1 find each other. Each agent binds free
//! ports (port 0) and prints them.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::{self, Processes, Response, poll, wait_for_exit};

/// The addresses an agent printed on its first stdout line.
struct Started {
    gossip: SocketAddr,
    http: SocketAddr,
}

/// Parses `rumour agent NAME: gossip on ADDR, status page on http://ADDR/memberlist`.
fn parse_banner(line: &str) -> Option<Started> {
    let gossip = line.split("gossip on ").nth(1)?.split(',').next()?;
    Some(Started {
        gossip: gossip.trim().parse().ok()?,
        http: support::http_addr(line)?,
    })
}

/// Starts `rumour agent NAME --join SEEDS...` on free ports and reads its banner.
fn start(agents: &mut Processes, name: &str, seeds: &[SocketAddr]) -> Started {
    let mut args = vec!["agent", "--name", name, "--profile", "local"];
    args.extend(["--bind-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]);
    args.extend(["--cluster-label", "agent-test"]);
    let seeds: Vec<String> = seeds.iter().map(SocketAddr::to_string).collect();
    for seed in &seeds {
        args.extend(["--join", seed.as_str()]);
    }
    let line = agents.start(&args, "gossip on");
    parse_banner(&line).unwrap_or_else(|| panic!("unexpected banner: {line:?}"))
}

fn alive_members(json: &serde_json::Value) -> usize {
    json["members"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["state"] == "alive").count())
}

fn state_of(json: &serde_json::Value, name: &str) -> Option<String> {
    let members = json["members"].as_array()?;
    let member = members.iter().find(|m| m["name"] == name)?;
    member["state"].as_str().map(str::to_string)
}

#[tokio::test]
async fn three_agent_processes_find_each_other_and_one_leaves_on_sigterm() {
    let mut agents = Processes::default();
    let first = start(&mut agents, "agent-1", &[]);
    let _second = start(&mut agents, "agent-2", &[first.gossip]);
    let third = start(&mut agents, "agent-3", &[first.gossip]);

    poll(first.http, "/memberlist", true, |r| {
        alive_members(&r.json()) == 3
    })
    .await;
    poll(third.http, "/ready", false, |r| r.status == 200).await;

    // SIGTERM: the agent leaves gracefully and exits with success.
    let child = agents.last_mut();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(term.is_ok_and(|s| s.success()), "kill -TERM ran");
    let exited = wait_for_exit(child, Duration::from_secs(20)).await;
    assert!(
        exited.is_some_and(|s| s.success()),
        "agent-3 exited cleanly: {exited:?}"
    );
    let left = |r: &Response| state_of(&r.json(), "agent-3").as_deref() == Some("left");
    poll(first.http, "/memberlist", true, left).await;
}

#[tokio::test]
async fn an_agent_whose_seed_never_answers_is_not_ready() {
    // A TCP port that is bound but never accepts; the label keeps any stray node out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let seed = silent.local_addr().unwrap();
    let mut agents = Processes::default();
    let lonely = start(&mut agents, "lonely", &[seed]);
    let ready = support::get(lonely.http, "/ready", None).await.unwrap();
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("lonely"), "{}", ready.body);
}

#[test]
fn the_banner_names_both_addresses() {
    let line =
        "rumour agent a: gossip on 127.0.0.1:5, status page on http://127.0.0.1:6/memberlist";
    let started = parse_banner(line).unwrap();
    assert_eq!(started.gossip.port(), 5);
    assert_eq!(started.http.port(), 6);
}
