//! [`LocalCluster`]: N nodes on loopback IPs with one configuration, started, converged and
//! stopped by the benchmark.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rumour_cluster::Cluster;
use rumour_cluster::transport::frame::{Key, Keyring};
use rumour_cluster::{NodeConfig, Profile};
use tokio::task::JoinSet;

use super::BenchError;

/// How often [`LocalCluster::converge`] asks every node how many members it sees alive.
pub const JOIN_POLL: Duration = Duration::from_millis(10);
/// How long the benchmark waits for a cluster to converge before giving up.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often [`LocalCluster::converge`] says how far the nodes got while it waits.
const PROGRESS: Duration = Duration::from_secs(10);
/// How long to wait after stopping a cluster, so its sockets and tasks are gone before the
/// next one starts.
const SETTLE: Duration = Duration::from_millis(300);

/// The settings every node of the benchmark runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchProfile {
    /// memberlist's LAN defaults ([`Profile::Lan`]).
    Lan,
    /// LAN with 200 ms probes, a 100 ms probe timeout, 50 ms gossip and a 5 s pull-push
    /// (the KV store reconciling every sixth of that).
    Fast,
}

impl BenchProfile {
    /// The name printed in the report (`lan`, `fast`).
    pub fn name(self) -> &'static str {
        match self {
            BenchProfile::Lan => "lan",
            BenchProfile::Fast => "fast",
        }
    }

    /// Applies the profile to a node configuration built from [`Profile::Lan`].
    pub fn apply(self, config: &mut NodeConfig) {
        if self == BenchProfile::Fast {
            let pullpush = Duration::from_secs(5);
            config.swim = config
                .swim
                .to_builder()
                .probe_interval(Duration::from_millis(200))
                .probe_timeout(Duration::from_millis(100))
                .gossip_interval(Duration::from_millis(50))
                .pullpush_interval(Some(pullpush))
                .build()
                .expect("the fast profile is a valid SWIM configuration");
            config.gossip.pullpush_interval = Some(pullpush / 6);
        }
    }

    /// The SWIM settings of the profile.
    pub fn swim(self) -> rumour_cluster::swim::Config {
        let mut config =
            NodeConfig::new("probe", SocketAddr::from(([127, 0, 0, 1], 0)), Profile::Lan);
        self.apply(&mut config);
        config.swim
    }

    /// An upper bound on the time from a crash until every survivor of `n` members has
    /// declared the victim failed (as [`Profile::detection_bound`], with this profile's
    /// probe settings).
    pub fn detection_bound(self, n: usize) -> Duration {
        let swim = self.swim();
        let min = rumour_cluster::swim::suspicion_min(
            swim.suspicion_mult().get(),
            n,
            swim.probe_interval(),
        );
        let max = rumour_cluster::swim::suspicion_max(swim.suspicion_max_timeout_mult().get(), min);
        swim.probe_interval() * 2 + swim.probe_timeout() + max + Duration::from_secs(2)
    }
}

/// N running nodes on loopback IPs, named `node-000`, `node-001`, ...; node 0 is the seed
/// every other node joins through.
#[derive(Debug)]
pub struct LocalCluster {
    /// The nodes, node 0 first.
    pub nodes: Vec<Cluster>,
}

impl LocalCluster {
    /// Starts node 0, then nodes 1..n-1 back to back, each joining node 0, each on a loopback
    /// IP of its own (all on 127.0.0.1 with `shared_ip`). Returns the cluster and the instant
    /// just before the first join was started. Node seeds come from `rng`; with `keys`, every
    /// node seals its frames with one key drawn from it.
    ///
    /// # Errors
    /// A node could not bind or start.
    pub async fn start(
        n: usize,
        profile: BenchProfile,
        keys: bool,
        shared_ip: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<(LocalCluster, Instant), BenchError> {
        let keyring = if keys {
            Keyring::new(Key::generate(rng))
        } else {
            Keyring::default()
        };
        let first = start_node(0, shared_ip, profile, &keyring, rng.next_u64(), None).await?;
        let seed = first.addr();
        let mut nodes = vec![first];
        let joins_started = Instant::now();
        for i in 1..n {
            nodes.push(
                start_node(i, shared_ip, profile, &keyring, rng.next_u64(), Some(seed)).await?,
            );
        }
        Ok((LocalCluster { nodes }, joins_started))
    }

    /// Asks every node, every [`JOIN_POLL`], how many members it sees alive, and returns the
    /// instant at the end of the first round in which every node saw all of them.
    ///
    /// # Errors
    /// A node stopped, or the cluster did not converge within [`CONVERGE_TIMEOUT`].
    pub async fn converge(&self) -> Result<Instant, BenchError> {
        let n = self.nodes.len();
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        let mut report_at = Instant::now() + PROGRESS;
        loop {
            let mut all = true;
            for node in &self.nodes {
                if node.num_alive().await? < n {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(Instant::now());
            }
            if Instant::now() >= report_at {
                report_at += PROGRESS;
                eprintln!("{}", self.diagnose().await?);
            }
            if Instant::now() >= deadline {
                eprintln!("{}", self.diagnose().await?);
                return Err(BenchError::Timeout {
                    what: format!("all {n} nodes see {n} members alive"),
                    after: CONVERGE_TIMEOUT,
                });
            }
            tokio::time::sleep(JOIN_POLL).await;
        }
    }

    /// A line on what the nodes see and what their transports and drivers dropped, summed
    /// over the nodes: printed when a cluster does not converge.
    pub async fn diagnose(&self) -> Result<String, BenchError> {
        let (mut lo, mut hi) = (usize::MAX, 0);
        let mut sum = rumour_cluster::transport::Stats::default();
        let (mut sends_dropped, mut join_attempts) = (0, 0);
        let mut lagging = String::new();
        for node in &self.nodes {
            let alive = node.num_alive().await?;
            (lo, hi) = (lo.min(alive), hi.max(alive));
            let stats = node.stats().await?;
            if alive < self.nodes.len() && lagging.is_empty() {
                lagging = format!(
                    "; {} sees {:?}, {} dropped transmits, {} dropped broadcasts, {} events dropped",
                    node.name(),
                    stats.members,
                    stats.swim.transmits_dropped,
                    stats.swim.broadcasts_dropped,
                    stats.swim.events_dropped,
                );
            }
            let t = stats.transport;
            sum.streams_refused += t.streams_refused;
            sum.streams_refused_per_ip += t.streams_refused_per_ip;
            sum.connections_opened += t.connections_opened;
            sum.connections_accepted += t.connections_accepted;
            sum.send_errors += t.send_errors;
            sum.dropped_queue_full += t.dropped_queue_full;
            sum.dropped_timeout += t.dropped_timeout;
            sum.dropped_io += t.dropped_io;
            sends_dropped += stats.driver.sends_dropped;
            join_attempts += stats.driver.join_attempts;
        }
        Ok(format!(
            "  alive seen {lo}..={hi}; connections opened {} accepted {}, refused {} (per IP {}); \
             send errors {}; dropped: queue full {}, timeout {}, io {}; driver sends dropped {}; \
             join attempts {join_attempts}{lagging}",
            sum.connections_opened,
            sum.connections_accepted,
            sum.streams_refused,
            sum.streams_refused_per_ip,
            sum.send_errors,
            sum.dropped_queue_full,
            sum.dropped_timeout,
            sum.dropped_io,
            sends_dropped,
        ))
    }

    /// Stops every node at once (abruptly, without goodbyes) and waits a moment for the
    /// sockets to close.
    pub async fn stop(self) {
        let mut stops = JoinSet::new();
        for node in self.nodes {
            stops.spawn(async move { node.shutdown().await });
        }
        stops.join_all().await;
        tokio::time::sleep(SETTLE).await;
    }
}

/// The loopback IP node `i` binds: `127.0.0.1` for every node with `shared_ip`, else one of
/// its own, `127.1.x.y` (Linux routes all of 127/8 to the loopback interface).
fn node_ip(i: usize, shared_ip: bool) -> [u8; 4] {
    if shared_ip {
        return [127, 0, 0, 1];
    }
    let [.., hi, lo] = u32::try_from(i + 1).unwrap_or(u32::MAX).to_be_bytes();
    [127, 1, hi, lo]
}

/// Starts node `i` on a free port of its loopback IP, joining `seed` if given.
async fn start_node(
    i: usize,
    shared_ip: bool,
    profile: BenchProfile,
    keyring: &Keyring,
    rng_seed: u64,
    seed: Option<SocketAddr>,
) -> Result<Cluster, BenchError> {
    let node = Cluster::builder(format!("node-{i:03}"))
        .bind(SocketAddr::from((node_ip(i, shared_ip), 0)))
        .profile(Profile::Lan)
        .configure(move |config| profile.apply(config))
        .seed(rng_seed)
        .keyring(keyring.clone())
        .join(seed)
        .build()
        .await?;
    Ok(node)
}

/// Asks each node `check`, every `poll`, until it answers true (a node that said true is not
/// asked again); returns the instant each node first did, in the order of `nodes`.
///
/// # Errors
/// A node stopped, or some node did not answer true within `timeout` (`what` says of what).
pub async fn first_true<F, Fut>(
    nodes: &[Cluster],
    poll: Duration,
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<Vec<Instant>, BenchError>
where
    F: FnMut(&Cluster) -> Fut,
    Fut: Future<Output = Result<bool, rumour_cluster::Error>>,
{
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<Option<Instant>> = vec![None; nodes.len()];
    loop {
        for (node, seen) in nodes.iter().zip(&mut seen) {
            if seen.is_none() && check(node).await? {
                *seen = Some(Instant::now());
            }
        }
        if let Some(all) = seen.iter().copied().collect::<Option<Vec<_>>>() {
            return Ok(all);
        }
        if Instant::now() >= deadline {
            let missing = seen.iter().filter(|s| s.is_none()).count();
            return Err(BenchError::Timeout {
                what: format!("{what} ({missing} of {} nodes still waiting)", nodes.len()),
                after: timeout,
            });
        }
        tokio::time::sleep(poll).await;
    }
}
