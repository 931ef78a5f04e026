//! `rumour demo`: a local cluster in one process. N nodes on 127.0.0.1 register in the ring
//! and join the first; the status page shows any node's view; membership events print as the
//! first node sees them; optionally one node crashes to show failure detection.

use std::net::SocketAddr;
use std::time::Duration;

use rumour::swim::State;
use rumour::{Cluster, NodeEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::ProfileFlag;
use crate::agent::{LEAVE_TIMEOUT, shutdown_signal};
use crate::error::Error;
use crate::http;

/// How often the demo checks whether the nodes agree.
const POLL: Duration = Duration::from_millis(100);
/// Message history kept by each node, for the status page.
const HISTORY_BYTES: usize = 64 * 1024;

/// The flags of `rumour demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// How many nodes to start.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=200))]
    nodes: u16,
    /// Address of the status page; a free port is used if it is taken.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Crash the last node (no goodbye) after this many seconds, to show failure detection.
    #[arg(long, value_name = "SECS")]
    kill_after: Option<u64>,
    /// Configuration profile.
    #[arg(long, value_enum, default_value = "local")]
    profile: ProfileFlag,
    /// Cluster label carried by every packet.
    #[arg(long)]
    cluster_label: Option<String>,
}

/// Prints a line stamped with the seconds since `start`.
fn say(start: Instant, line: impl std::fmt::Display) {
    println!("[{:>6.1}s] {line}", start.elapsed().as_secs_f64());
}

async fn start_node(
    args: &DemoArgs,
    index: u16,
    seed: Option<SocketAddr>,
) -> Result<Cluster, Error> {
    let name = format!("node-{index}");
    let mut builder = Cluster::builder(name.as_str())
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .profile(args.profile.into())
        .ring_instance(true)
        .join(seed)
        .configure(|config| config.gossip.message_history_bytes = HISTORY_BYTES);
    if let Some(label) = &args.cluster_label {
        builder = builder.label(label.as_str());
    }
    builder
        .build()
        .await
        .map_err(|source| Error::Build { name, source })
}

/// Runs `rumour demo` for `--duration` or until SIGINT or SIGTERM, then every node leaves.
pub async fn run(args: DemoArgs) -> Result<(), Error> {
    let start = Instant::now();
    let first = start_node(&args, 0, None).await?;
    let printer = tokio::spawn(print_events(first.clone(), start));
    let mut nodes = vec![first.clone()];
    for index in 1..args.nodes {
        nodes.push(start_node(&args, index, Some(first.addr())).await?);
    }
    for node in &nodes {
        say(
            start,
            format_args!("started {} on {}", node.name(), node.addr()),
        );
    }
    let page = http::StatusPage::bind(args.http_addr, true).await?;
    let url = format!("http://{}", page.addr());
    println!("status page: {url}/memberlist  (ring: {url}/ring, metrics: {url}/metrics)");
    let server = page.serve(nodes.clone());
    tokio::select! {
        result = story(&args, &nodes, start) => result?,
        () = shutdown_signal() => say(start, "interrupted"),
    }
    say(start, "every node leaves");
    leave_all(&nodes).await;
    let stopped = server.stop().await;
    let _ = printer.await;
    stopped
}

/// Convergence, the optional crash, then waiting for the end.
async fn story(args: &DemoArgs, nodes: &[Cluster], start: Instant) -> Result<(), Error> {
    let n = nodes.len();
    converge(nodes, |node| async move {
        Ok(node.num_alive().await? == n && node.ring().await?.is_some_and(|r| r.len() == n))
    })
    .await?;
    say(
        start,
        format_args!("converged: every node sees {n} alive members and {n} ring instances"),
    );
    if let (Some(after), Some((victim, survivors))) = (args.kill_after, nodes.split_last()) {
        if !survivors.is_empty() {
            tokio::time::sleep_until(start + Duration::from_secs(after)).await;
            crash(victim, survivors, start).await?;
        }
    }
    match args.duration {
        Some(secs) => tokio::time::sleep_until(start + Duration::from_secs(secs)).await,
        None => std::future::pending().await,
    }
    Ok(())
}

/// Crashes `victim` and waits until every survivor has declared it failed.
async fn crash(victim: &Cluster, survivors: &[Cluster], start: Instant) -> Result<(), Error> {
    say(
        start,
        format_args!("crashing {} (no goodbye)", victim.name()),
    );
    victim.shutdown().await;
    let crashed = Instant::now();
    let name = victim.name().to_string();
    converge(survivors, |node| {
        let name = name.clone();
        async move {
            let members = node.members().await?;
            Ok(members
                .iter()
                .all(|m| m.name != name || m.state == State::Dead))
        }
    })
    .await?;
    say(
        start,
        format_args!(
            "every survivor declared {name} failed, {:.1}s after the crash",
            crashed.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

/// Waits until `agrees` holds for every node.
async fn converge<F, Fut>(nodes: &[Cluster], agrees: F) -> Result<(), Error>
where
    F: Fn(Cluster) -> Fut,
    Fut: std::future::Future<Output = Result<bool, rumour::Error>>,
{
    loop {
        let mut all = true;
        for node in nodes {
            all &= agrees(node.clone()).await.map_err(|source| Error::Node {
                name: node.name().to_string(),
                source,
            })?;
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every node but the first leaves at once, then the first (so it reports the others' leaves);
/// each stops after its leave.
async fn leave_all(nodes: &[Cluster]) {
    let Some((first, others)) = nodes.split_first() else {
        return;
    };
    let leaves: Vec<_> = others
        .iter()
        .filter(|node| node.is_running())
        .map(|node| tokio::spawn(leave(node.clone())))
        .collect();
    for handle in leaves {
        let _ = handle.await;
    }
    // Let the first node hear the goodbyes (so it reports them) before it leaves too.
    let heard = converge(std::slice::from_ref(first), |node| async move {
        Ok(node.num_alive().await? <= 1)
    });
    let _ = tokio::time::timeout(Duration::from_secs(2), heard).await;
    leave(first.clone()).await;
}

async fn leave(node: Cluster) {
    if let Err(error) = node.leave(LEAVE_TIMEOUT).await {
        tracing::warn!(node = node.name(), %error, "leave incomplete");
    }
    node.shutdown().await;
}

/// Prints the membership events of `observer` until it stops.
async fn print_events(observer: Cluster, start: Instant) {
    let mut events = observer.events();
    let me = observer.name().to_string();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(lost)) => {
                say(start, format_args!("({lost} events not shown)"));
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let line = match event {
            NodeEvent::MemberJoined { name, .. } if name != me => format!("{name} joined"),
            NodeEvent::MemberSuspected { name } => format!("{name} is suspected"),
            NodeEvent::MemberFailed { name } => format!("{name} failed"),
            NodeEvent::MemberLeft { name } if name != me => format!("{name} left"),
            NodeEvent::RefutedSelf => "refuted a suspicion of itself".to_string(),
            _ => continue,
        };
        say(start, format_args!("{line}  (seen by {me})"));
    }
}
