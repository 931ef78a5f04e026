//! `rumour agent`: one node and its status page, until SIGINT or SIGTERM (then it leaves
//! gracefully and exits). Flags are named like memberlist's and dskit's.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use rumour_cluster::{Cluster, NodeEvent, Profile};

use crate::{http, keyring_file};

/// How long a leaving node waits for its goodbye to be gossiped.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The configuration profile flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileFlag {
    /// A data-centre network (memberlist's `DefaultLANConfig`).
    Lan,
    /// Across regions (memberlist's `DefaultWANConfig`).
    Wan,
    /// One host (memberlist's `DefaultLocalConfig`).
    Local,
}

impl From<ProfileFlag> for Profile {
    fn from(flag: ProfileFlag) -> Profile {
        match flag {
            ProfileFlag::Lan => Profile::Lan,
            ProfileFlag::Wan => Profile::Wan,
            ProfileFlag::Local => Profile::Local,
        }
    }
}

/// The flags of `rumour agent`.
#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// Member name, unique in the cluster (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Address to bind UDP and TCP to (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7946")]
    pub bind_addr: SocketAddr,
    /// Address other members reach this node at (default: the bound one).
    #[arg(long)]
    pub advertise_addr: Option<SocketAddr>,
    /// A member to join through, as host:port; repeat for several.
    #[arg(long = "join", value_name = "HOST:PORT")]
    pub join: Vec<String>,
    /// Cluster label: packets of other clusters are dropped.
    #[arg(long)]
    pub cluster_label: Option<String>,
    /// Address of the status page (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Configuration profile.
    #[arg(long, value_enum, default_value = "lan")]
    pub profile: ProfileFlag,
    /// Register this node as a ring instance (the default).
    #[arg(long, overrides_with = "no_ring_instance")]
    pub ring_instance: bool,
    /// Do not register this node as a ring instance.
    #[arg(long, overrides_with = "ring_instance")]
    pub no_ring_instance: bool,
    /// Carry datagrams over TCP too (for networks that drop UDP).
    #[arg(long)]
    pub tcp_only: bool,
    /// Seal every packet with the keys in this file (one per line, base64 or hex, the first
    /// primary; see `docs/security.md`). Re-read on SIGHUP.
    #[arg(long, value_name = "PATH")]
    pub keyring_file: Option<std::path::PathBuf>,
    /// With keys: drop packets that are not sealed (off during a rollout).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub gossip_verify_incoming: bool,
    /// With keys: seal packets sent (off during a rollout).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub gossip_verify_outgoing: bool,
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Waits for Ctrl-C, or SIGTERM on Unix.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `rumour agent` to completion.
pub fn run(args: AgentArgs) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rumour agent: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(agent(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rumour agent: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves `host:port` seeds, keeping the first address of each.
async fn resolve(seeds: &[String]) -> Result<Vec<SocketAddr>, BoxError> {
    let mut addrs = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let mut found = tokio::net::lookup_host(seed.as_str())
            .await
            .map_err(|e| format!("cannot resolve --join {seed}: {e}"))?;
        addrs.push(
            found
                .next()
                .ok_or(format!("--join {seed} has no address"))?,
        );
    }
    Ok(addrs)
}

fn default_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "rumour".to_string())
}

async fn agent(args: AgentArgs) -> Result<(), BoxError> {
    let name = args.name.clone().unwrap_or_else(default_name);
    let mut builder = Cluster::builder(name.as_str())
        .bind(args.bind_addr)
        .join(resolve(&args.join).await?)
        .profile(args.profile.into())
        .ring_instance(!args.no_ring_instance)
        .tcp_only(args.tcp_only);
    if let Some(addr) = args.advertise_addr {
        builder = builder.advertise(addr);
    }
    if let Some(label) = &args.cluster_label {
        builder = builder.label(label.as_str());
    }
    let keyring = match &args.keyring_file {
        Some(path) => {
            let keyring = keyring_file::read(path)?;
            keyring_file::check_permissions(path);
            keyring_file::log_keyring("keyring loaded", path, &keyring);
            keyring
        }
        None => Default::default(),
    };
    if let Some(warning) = keyring_file::exposure_warning(args.bind_addr, !keyring.is_empty()) {
        tracing::warn!("{warning}");
    }
    let builder = builder
        .keyring(keyring)
        .gossip_verify_incoming(args.gossip_verify_incoming)
        .gossip_verify_outgoing(args.gossip_verify_outgoing);
    let cluster = builder.build().await?;
    #[cfg(unix)]
    if let Some(path) = args.keyring_file.clone() {
        keyring_file::spawn_reloader(cluster.clone(), path)?;
    }
    let listener = http::bind(args.http_addr, false).await?;
    println!(
        "rumour agent {name}: gossip on {}, status page on http://{}/memberlist",
        cluster.addr(),
        listener.local_addr()?
    );
    tokio::spawn(log_events(cluster.clone()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(listener, vec![cluster.clone()], async {
        let _ = stopped.await;
    }));
    shutdown_signal().await;
    tracing::info!("leaving the cluster");
    if let Err(error) = cluster.leave(LEAVE_TIMEOUT).await {
        tracing::warn!(%error, "leave incomplete");
    }
    cluster.shutdown().await;
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Logs every membership event of the node.
async fn log_events(cluster: Cluster) {
    let mut events = cluster.events();
    loop {
        match events.recv().await {
            Ok(NodeEvent::HealthScoreChanged { score }) => tracing::info!(score, "health score"),
            Ok(event) => tracing::info!(?event, "membership"),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(lost = n, "events lost");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
