//! `rumour agent`: one node and its status page, until SIGINT or SIGTERM (then it leaves
//! gracefully and exits). Flags are named like memberlist's and dskit's.

use std::net::SocketAddr;
use std::time::Duration;

use rumour::{Cluster, NodeEvent};
use tokio::sync::broadcast::error::RecvError;

use crate::ProfileFlag;
use crate::error::Error;
use crate::{http, keyring_file};

/// How long a leaving node waits for its goodbye to be gossiped.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The flags of `rumour agent`.
#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// Member name, unique in the cluster (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Address to bind UDP and TCP to (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7946")]
    bind_addr: SocketAddr,
    /// Address other members reach this node at (default: the bound one).
    #[arg(long)]
    advertise_addr: Option<SocketAddr>,
    /// A member to join through, as `host:port`, `dns+host:port` (every A/AAAA address) or
    /// `dnssrv+_service._proto.name` (every SRV target); repeat for several. Names are
    /// resolved again on every rejoin (dskit's `-memberlist.join`).
    #[arg(long = "join", value_name = "SEED")]
    join: Vec<rumour::Seed>,
    /// Fail if the join fails after its retries (dskit's `-memberlist.abort-if-join-fails`).
    #[arg(long)]
    abort_if_join_fails: bool,
    /// First wait between two join attempts, as `500ms`, `1s`, `1m` or seconds.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    min_join_backoff: Duration,
    /// Longest wait between two join attempts.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    max_join_backoff: Duration,
    /// Join attempts after the first before the join counts as failed.
    #[arg(long, default_value_t = 10)]
    max_join_retries: u32,
    /// Enable the Forget button of the ring page (`POST /ring/forget`). Off by default:
    /// anyone who reaches the page could use it.
    #[arg(long)]
    http_allow_forget: bool,
    /// Cluster label: packets of other clusters are dropped.
    #[arg(long)]
    cluster_label: Option<String>,
    /// Address of the status page (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Configuration profile.
    #[arg(long, value_enum, default_value = "lan")]
    profile: ProfileFlag,
    /// Register this node as a ring instance (the default).
    #[arg(long, overrides_with = "no_ring_instance")]
    ring_instance: bool,
    /// Do not register this node as a ring instance.
    #[arg(long, overrides_with = "ring_instance")]
    no_ring_instance: bool,
    /// Carry datagrams over TCP too (for networks that drop UDP).
    #[arg(long)]
    tcp_only: bool,
    /// Accept packets and connections only from these networks (`10.0.0.0/8`, `::1/128`);
    /// repeat for several. Default: from anywhere (memberlist's `CIDRsAllowed`).
    #[arg(long = "allowed-cidr", value_name = "CIDR")]
    allowed_cidrs: Vec<rumour::transport::Cidr>,
    /// Seal every packet with the keys in this file (one per line, base64 or hex, the first
    /// primary; see `docs/security.md`). Re-read on SIGHUP.
    #[arg(long, value_name = "PATH")]
    keyring_file: Option<std::path::PathBuf>,
    /// With keys: drop packets that are not sealed (off during a rollout).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    gossip_verify_incoming: bool,
    /// With keys: seal packets sent (off during a rollout).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    gossip_verify_outgoing: bool,
    /// Wire format: rumour's own, or hashicorp/memberlist's to join a Go memberlist cluster
    /// (Consul, Serf, dskit rings; see `docs/protocol-memberlist.md`).
    #[arg(long, value_enum, default_value = "rumour")]
    wire: WireFlag,
    /// With `--wire memberlist`: the AES key in standard base64 (16, 24 or 32 bytes, as
    /// `consul keygen` prints it; memberlist's `SecretKey`).
    #[arg(long, value_name = "BASE64", value_parser = parse_memberlist_key)]
    memberlist_key: Option<Vec<u8>>,
    /// With `--wire memberlist`: LZW-compress packets and streams (memberlist's
    /// `EnableCompression`).
    #[arg(long)]
    memberlist_compression: bool,
}

/// The `--wire` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFlag {
    /// rumour's frames (the default).
    Rumour,
    /// hashicorp/memberlist's protocol.
    Memberlist,
}

impl AgentArgs {
    /// The node these flags describe; not started yet.
    fn builder(&self, name: &str) -> Result<rumour::Builder, Error> {
        let join = rumour::JoinSettings {
            min_backoff: self.min_join_backoff,
            max_backoff: self.max_join_backoff.max(self.min_join_backoff),
            max_retries: self.max_join_retries,
            abort_if_join_fails: self.abort_if_join_fails,
            ..rumour::JoinSettings::default()
        };
        let mut builder = Cluster::builder(name)
            .bind(self.bind_addr)
            .join_seeds(self.join.iter().cloned())
            .join_settings(join)
            .profile(self.profile.into())
            .ring_instance(!self.no_ring_instance)
            .tcp_only(self.tcp_only);
        if let Some(addr) = self.advertise_addr {
            builder = builder.advertise(addr);
        }
        if let Some(label) = &self.cluster_label {
            builder = builder.label(label.as_str());
        }
        let keyring = match &self.keyring_file {
            Some(path) => {
                let keyring = keyring_file::read(path)?;
                keyring_file::check_permissions(path);
                keyring_file::log_keyring("keyring loaded", path, &keyring);
                keyring
            }
            None => Default::default(),
        };
        if let Some(warning) = keyring_file::exposure_warning(self.bind_addr, !keyring.is_empty()) {
            tracing::warn!("{warning}");
        }
        if self.wire == WireFlag::Memberlist {
            let mut options =
                rumour::MemberlistOptions::new().with_compression(self.memberlist_compression);
            if let Some(key) = &self.memberlist_key {
                options = options
                    .with_key(key)
                    .expect("checked when the flag was parsed");
            }
            builder = builder.wire(rumour::Wire::Memberlist(options));
        }
        Ok(builder
            .allowed_cidrs(self.allowed_cidrs.clone())
            .keyring(keyring)
            .gossip_verify_incoming(self.gossip_verify_incoming)
            .gossip_verify_outgoing(self.gossip_verify_outgoing))
    }
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

/// A duration flag: `250ms`, `1s`, `2m`, `1h`, or a number of seconds.
/// A memberlist key: standard base64 of 16, 24 or 32 bytes.
fn parse_memberlist_key(text: &str) -> Result<Vec<u8>, String> {
    let bytes = decode_base64(text.trim()).ok_or("not standard base64")?;
    match bytes.len() {
        16 | 24 | 32 => Ok(bytes),
        n => Err(format!("{n} bytes: an AES key is 16, 24 or 32 bytes")),
    }
}

/// Decodes standard base64 (with or without padding).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 6).then_some(out)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 500ms, 1s or 1m, got {text:?}"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("{text:?}: {error}"))
}

fn default_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "rumour".to_string())
}

/// Runs `rumour agent` until SIGINT or SIGTERM, then leaves.
pub async fn run(args: AgentArgs) -> Result<(), Error> {
    let name = args.name.clone().unwrap_or_else(default_name);
    let cluster = args
        .builder(&name)?
        .build()
        .await
        .map_err(|source| Error::Build {
            name: name.clone(),
            source,
        })?;
    #[cfg(unix)]
    if let Some(path) = args.keyring_file.clone() {
        keyring_file::spawn_reloader(cluster.clone(), path).map_err(Error::Signal)?;
    }
    let page = http::StatusPage::bind(args.http_addr, false)
        .await?
        .allow_forget(args.http_allow_forget);
    println!(
        "rumour agent {name}: gossip on {}, status page on http://{}/memberlist",
        cluster.addr(),
        page.addr()
    );
    tokio::spawn(log_events(cluster.clone()));
    let server = page.serve(vec![cluster.clone()]);
    shutdown_signal().await;
    tracing::info!("leaving the cluster");
    if let Err(error) = cluster.leave(LEAVE_TIMEOUT).await {
        tracing::warn!(%error, "leave incomplete");
    }
    cluster.shutdown().await;
    server.stop().await
}

/// Logs every membership event of the node.
async fn log_events(cluster: Cluster) {
    let mut events = cluster.events();
    loop {
        match events.recv().await {
            Ok(NodeEvent::HealthScoreChanged { score }) => tracing::info!(score, "health score"),
            Ok(event) => tracing::info!(?event, "membership"),
            Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "events lost"),
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberlist_keys_are_read_from_base64() {
        // `consul keygen`'s form: 32 bytes in 44 characters.
        let key = parse_memberlist_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        assert_eq!(key, (0..32).collect::<Vec<u8>>());
        assert_eq!(
            parse_memberlist_key("AAECAwQFBgcICQoLDA0ODw==")
                .unwrap()
                .len(),
            16
        );
        assert!(
            parse_memberlist_key("AAECAwQFBgcICQ==").is_err(),
            "10 bytes"
        );
        assert!(parse_memberlist_key("not base64!").is_err());
    }

    #[test]
    fn durations_are_read_with_or_without_a_unit() {
        let ok = |s| parse_duration(s).unwrap();
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
