//! One repetition of a scenario: start a fresh cluster, wait until it converges, measure, stop.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumour_cluster::Cluster;
use rumour_cluster::NodeEvent;
use rumour_cluster::ring::{Instance, Ring, State as InstanceState, Timestamp, Tokens};
use rumour_cluster::swim::State;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::task::JoinSet;

use super::BenchError;
use super::harness::{BenchProfile, LocalCluster, first_true};
use super::report::{cpu_seconds, rss_bytes};

/// How often `broadcast` asks the nodes still without the value whether they have it.
const BROADCAST_POLL: Duration = Duration::from_millis(5);
/// How long `broadcast` waits for the value to reach every node.
const BROADCAST_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a survivor whose event receiver lagged is asked whether the victim is dead.
const DETECT_POLL: Duration = Duration::from_millis(10);
/// The size of the value `broadcast` writes: the address string of its one ring instance.
const PAYLOAD_BYTES: usize = 64;

/// What the benchmark measures (`--scenario`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Time from the first join until every node lists every member alive.
    Join,
    /// Time from an abrupt stop until the first and every survivor declares the node failed.
    Detect,
    /// Time from a KV write until every node holds the value.
    Broadcast,
    /// CPU and traffic of an idle, converged cluster.
    Steady,
}

impl Scenario {
    /// Every scenario, in the order `--scenario all` runs them.
    pub const ALL: [Scenario; 4] = [
        Scenario::Join,
        Scenario::Detect,
        Scenario::Broadcast,
        Scenario::Steady,
    ];

    /// The scenario's name (`join`, `detect`, `broadcast`, `steady`).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Join => "join",
            Scenario::Detect => "detect",
            Scenario::Broadcast => "broadcast",
            Scenario::Steady => "steady",
        }
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The settings shared by every repetition of a run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Cluster size (at least 2).
    pub nodes: usize,
    /// Every node's configuration.
    pub profile: BenchProfile,
    /// Picks the node seeds, the victim and the origin of each repetition.
    pub seed: u64,
    /// The idle window of `steady`.
    pub steady: Duration,
    /// How long `steady` lets the converged cluster settle before the window.
    pub steady_warmup: Duration,
    /// Whether every frame is sealed (XChaCha20-Poly1305, one key for the cluster).
    pub keys: bool,
    /// Whether every node binds 127.0.0.1 (else each binds a loopback IP of its own).
    pub shared_ip: bool,
    /// Whether the run is on the simulator instead of sockets.
    pub sim: bool,
    /// With `sim`: whether the simulated transport refuses connections past its inbound limit,
    /// as the real one did before it replaced idle connections.
    pub sim_refuse_past_limit: bool,
    /// Reads the heap bytes the process holds now, when the binary counts its allocations.
    pub heap: Option<fn() -> usize>,
}

/// What one repetition measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Seconds until every node saw the event (`join`, `detect`, `broadcast`).
    pub seconds: Option<f64>,
    /// Seconds until the first survivor declared the victim failed (`detect`).
    pub first_seconds: Option<f64>,
    /// The idle cost (`steady`).
    pub idle: Option<Idle>,
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(first) = self.first_seconds {
            write!(f, "first {first:.3} s, ")?;
        }
        if let Some(seconds) = self.seconds {
            write!(f, "all {seconds:.3} s")?;
        }
        if let Some(idle) = &self.idle {
            if let Some(cpu) = idle.cpu {
                write!(f, "{cpu:.5} cpu-s, ")?;
            }
            write!(
                f,
                "{:.0} B, {:.1} packets per node-second",
                idle.bytes, idle.packets
            )?;
        }
        Ok(())
    }
}

/// The cost of an idle cluster, per node and second.
#[derive(Clone, Debug, PartialEq)]
pub struct Idle {
    /// CPU seconds (user + system) of the whole process; `None` without `/proc`.
    pub cpu: Option<f64>,
    /// Payload bytes sent (datagrams and reliable messages).
    pub bytes: f64,
    /// Datagrams and reliable messages sent.
    pub packets: f64,
    /// Payload bytes sent by message kind, named like the simulator's `steady` report
    /// (`swim.<kind>`, `kv.<kind>`, and `framing` for the rest: channel tags, frame headers and
    /// checksums, compound and stream length prefixes); they add up to `bytes`.
    pub by_kind: BTreeMap<String, f64>,
    /// Heap bytes the process held at the end of the window (see [`Settings::heap`]).
    pub heap: Option<u64>,
    /// The process's resident set size at the end of the window; `None` without `/proc`.
    pub rss: Option<u64>,
}

/// Runs repetition `rep` of `scenario` on a fresh cluster, and stops the cluster afterwards
/// (also when the measurement fails).
///
/// # Errors
/// A node failed, or the cluster did not get where the scenario waits for in time.
pub async fn run(scenario: Scenario, settings: &Settings, rep: u64) -> Result<Sample, BenchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    rng.set_stream(rep);
    let (cluster, joins_started) = LocalCluster::start(
        settings.nodes,
        settings.profile,
        settings.keys,
        settings.shared_ip,
        &mut rng,
    )
    .await?;
    let sample = match cluster.converge().await {
        Err(error) => Err(error),
        Ok(converged) => match scenario {
            Scenario::Join => Ok(Sample {
                seconds: Some(secs(converged - joins_started)),
                ..Sample::default()
            }),
            Scenario::Detect => detect(&cluster, settings.profile, &mut rng).await,
            Scenario::Broadcast => broadcast(&cluster, &mut rng, rep).await,
            Scenario::Steady => steady(&cluster, settings).await,
        },
    };
    cluster.stop().await;
    sample
}

/// Stops a random node other than node 0 abruptly and times until the first and the last
/// survivor declare it failed, from each survivor's events (subscribed before the stop).
async fn detect(
    cluster: &LocalCluster,
    profile: BenchProfile,
    rng: &mut ChaCha8Rng,
) -> Result<Sample, BenchError> {
    let n = cluster.nodes.len();
    let victim = cluster.nodes[rng.gen_range(1..n)].clone();
    let timeout = profile.detection_bound(n) * 2 + Duration::from_secs(10);
    let mut waits = JoinSet::new();
    for node in cluster.nodes.iter().filter(|c| c.name() != victim.name()) {
        let events = node.events();
        waits.spawn(failed_at(
            node.clone(),
            events,
            victim.name().to_string(),
            timeout,
        ));
    }
    let crashed = Instant::now();
    victim.shutdown().await;
    let times = waits
        .join_all()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let first = times
        .iter()
        .min()
        .expect("a cluster of two or more has survivors");
    let last = times
        .iter()
        .max()
        .expect("a cluster of two or more has survivors");
    Ok(Sample {
        seconds: Some(secs(*last - crashed)),
        first_seconds: Some(secs(*first - crashed)),
        idle: None,
    })
}

/// The instant `node` declares `victim` failed: its `MemberFailed` event for it, or, if its
/// receiver lagged and may have lost that event, the first poll that finds the victim dead.
async fn failed_at(
    node: Cluster,
    mut events: Receiver<NodeEvent>,
    victim: String,
    timeout: Duration,
) -> Result<Instant, BenchError> {
    let what = format!("{} declares {victim} failed", node.name());
    let wait = async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::MemberFailed { name }) if name == victim => {
                    return Ok(Instant::now());
                }
                Ok(_) => {}
                Err(RecvError::Lagged(lost)) => {
                    eprintln!("  {}: lost {lost} events, polling instead", node.name());
                    break;
                }
                Err(RecvError::Closed) => {
                    let node = node.name().to_string();
                    return Err(BenchError::Stopped { node });
                }
            }
        }
        let dead = first_true(
            std::slice::from_ref(&node),
            DETECT_POLL,
            timeout,
            &what,
            |n| {
                let (n, victim) = (n.clone(), victim.clone());
                async move {
                    let members = n.members().await?;
                    // Absent means declared dead and already forgotten.
                    Ok(!members
                        .iter()
                        .any(|m| m.name == victim && m.state != State::Dead))
                }
            },
        )
        .await?;
        Ok(dead[0])
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| BenchError::Timeout {
            what: what.clone(),
            after: timeout,
        })?
}

/// Writes a 64-byte value under a fresh key at a random node and times until every node has
/// it, polling the nodes that do not yet.
async fn broadcast(
    cluster: &LocalCluster,
    rng: &mut ChaCha8Rng,
    rep: u64,
) -> Result<Sample, BenchError> {
    let origin = &cluster.nodes[rng.gen_range(0..cluster.nodes.len())];
    let key = format!("bench/broadcast-{rep}");
    let value = payload();
    let written = Instant::now();
    origin
        .kv_cas::<Ring>(&key, move |_| Some(value.clone()))
        .await?;
    let what = format!("every node holds {key}");
    let seen = first_true(
        &cluster.nodes,
        BROADCAST_POLL,
        BROADCAST_TIMEOUT,
        &what,
        |node| {
            let (node, key) = (node.clone(), key.clone());
            async move { Ok(node.kv_get::<Ring>(&key).await?.is_some()) }
        },
    )
    .await?;
    let last = seen.iter().max().expect("the cluster has nodes");
    Ok(Sample {
        seconds: Some(secs(*last - written)),
        ..Sample::default()
    })
}

/// A ring with one active instance whose address is [`PAYLOAD_BYTES`] long.
fn payload() -> Ring {
    let addr = format!("{:-<PAYLOAD_BYTES$}", "127.0.0.1:1");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let updated = Timestamp(u64::try_from(now.as_millis()).unwrap_or(u64::MAX));
    let instance = Instance::new(
        addr,
        "",
        InstanceState::Active,
        Tokens::new(vec![]),
        updated,
    );
    let mut ring = Ring::new();
    ring.set_instance("bench", instance)
        .expect("`bench` is a valid instance id");
    ring
}

/// Lets the converged cluster settle, then counts the process's CPU time and the nodes'
/// traffic over the idle window, and reads the process's memory at its end.
async fn steady(cluster: &LocalCluster, settings: &Settings) -> Result<Sample, BenchError> {
    let window = settings.steady;
    tokio::time::sleep(settings.steady_warmup).await;
    let cpu_before = cpu_seconds();
    let before = Traffic::of(cluster).await?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let cpu_after = cpu_seconds();
    let after = Traffic::of(cluster).await?;
    let node_seconds = cluster.nodes.len() as f64 * secs(started.elapsed());
    let per_node_s = |delta: u64| delta as f64 / node_seconds;
    let mut by_kind = BTreeMap::new();
    let mut layered = 0;
    for (kind, now) in &after.kinds {
        let delta = now.bytes - before.kinds.get(kind).copied().unwrap_or_default().bytes;
        layered += delta;
        by_kind.insert(kind.clone(), per_node_s(delta));
    }
    let bytes = after.bytes - before.bytes;
    by_kind.insert(
        "framing".to_string(),
        per_node_s(bytes.saturating_sub(layered)),
    );
    Ok(Sample {
        idle: Some(Idle {
            cpu: cpu_before
                .zip(cpu_after)
                .map(|(before, after)| (after - before) / node_seconds),
            bytes: per_node_s(bytes),
            packets: per_node_s(after.packets - before.packets),
            by_kind,
            heap: settings.heap.map(|heap| heap() as u64),
            rss: rss_bytes(),
        }),
        ..Sample::default()
    })
}

/// What every node has sent so far: payload bytes, messages (datagrams and reliable), and the
/// layers' encoded messages by kind.
#[derive(Default)]
struct Traffic {
    bytes: u64,
    packets: u64,
    kinds: BTreeMap<String, rumour_wire::Traffic>,
}

impl Traffic {
    async fn of(cluster: &LocalCluster) -> Result<Traffic, BenchError> {
        let mut traffic = Traffic::default();
        for node in &cluster.nodes {
            let stats = node.stats().await?;
            traffic.bytes += stats.transport.bytes_out;
            traffic.packets += stats.transport.datagrams_out + stats.transport.reliable_out;
            stats.swim.sent.add_to("swim", &mut traffic.kinds);
            stats.gossip.sent.add_to("kv", &mut traffic.kinds);
        }
        Ok(traffic)
    }
}

/// A duration in seconds.
fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_found_by_its_name() {
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::from_name(scenario.name()), Some(scenario));
        }
        assert_eq!(Scenario::from_name("crash"), None);
    }

    #[test]
    fn the_broadcast_value_carries_a_64_byte_address() {
        let ring = payload();
        assert_eq!(ring.instance("bench").unwrap().addr().len(), PAYLOAD_BYTES);
    }
}
