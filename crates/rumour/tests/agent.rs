//! Three real `rumour agent` processes on 127.0.0.1 find each other. Each agent binds free
//! ports (port 0) and prints them; a guard kills every child, even when the test fails.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills and reaps its children when dropped.
struct Agents(Vec<Child>);

impl Drop for Agents {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The addresses an agent printed on its first stdout line.
struct Started {
    gossip: SocketAddr,
    http: SocketAddr,
}

/// Parses `rumour agent NAME: gossip on ADDR, status page on http://ADDR/memberlist`.
fn parse_banner(line: &str) -> Option<Started> {
    let gossip = line.split("gossip on ").nth(1)?.split(',').next()?;
    let http = line.split("http://").nth(1)?.split('/').next()?;
    Some(Started {
        gossip: gossip.trim().parse().ok()?,
        http: http.trim().parse().ok()?,
    })
}

/// Starts `rumour agent NAME --join SEEDS...` and reads its banner (within 20 s).
fn start(agents: &mut Agents, name: &str, seeds: &[SocketAddr]) -> Started {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rumour"));
    command.args(["agent", "--name", name, "--profile", "local"]);
    command.args(["--bind-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]);
    command.args(["--cluster-label", "agent-test"]);
    for seed in seeds {
        command.arg("--join").arg(seed.to_string());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the rumour binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    agents.0.push(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent printed its addresses");
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

/// Polls `GET path` on `http` (as JSON when `json`) until `done` holds for the response,
/// failing after 30 s with the last response.
async fn poll(http: SocketAddr, path: &str, json: bool, done: impl Fn(&support::Response) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let accept = json.then_some("application/json");
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(response) = support::get(http, path, accept).await {
            if done(&response) {
                return;
            }
            last = Some(response);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GET {path} never gave the expected answer; last: {last:?}");
}

fn parsed(response: &support::Response) -> serde_json::Value {
    serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn three_agent_processes_find_each_other_and_one_leaves_on_sigterm() {
    let mut agents = Agents(Vec::new());
    let first = start(&mut agents, "agent-1", &[]);
    let _second = start(&mut agents, "agent-2", &[first.gossip]);
    let third = start(&mut agents, "agent-3", &[first.gossip]);

    poll(first.http, "/memberlist", true, |r| {
        alive_members(&parsed(r)) == 3
    })
    .await;
    poll(third.http, "/ready", false, |r| r.status == 200).await;

    // SIGTERM: the agent leaves gracefully and exits with success.
    let child = agents.0.last_mut().expect("three agents");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(term.is_ok_and(|s| s.success()), "kill -TERM ran");
    let exited = wait_for_exit(child, Duration::from_secs(20)).await;
    assert!(
        exited.is_some_and(|s| s.success()),
        "agent-3 exited cleanly: {exited:?}"
    );
    let left = |r: &support::Response| state_of(&parsed(r), "agent-3").as_deref() == Some("left");
    poll(first.http, "/memberlist", true, left).await;
}

/// Polls `child` until it exits or `timeout` passes.
async fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[test]
fn the_banner_names_both_addresses() {
    let line =
        "rumour agent a: gossip on 127.0.0.1:5, status page on http://127.0.0.1:6/memberlist";
    let started = parse_banner(line).unwrap();
    assert_eq!(started.gossip.port(), 5);
    assert_eq!(started.http.port(), 6);
}
