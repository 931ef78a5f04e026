//! The same scenarios on the deterministic simulator (`--sim`), measured the way the socket
//! runs measure them, for the fidelity check of `docs/benchmarks.md`: every node started at
//! once, joining node 0; join time until every node sees all alive; detection times of the
//! first and the last survivor after a crash; payload bytes sent per node and second by a
//! converged cluster over the `steady` window after the same warm-up. Virtual time: the figures
//! do not depend on the machine's load, and the seed fixes them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumour_cluster::sim::{Hosts, LinkConfig, NodeId, NodeSeed, Sim, StreamConfig};
use rumour_cluster::{Node, NodeConfig, NodeEvent, Profile};
use rumour_wire::Traffic;

use super::BenchError;
use super::harness::{BenchProfile, CONVERGE_TIMEOUT};
use super::scenario::{Idle, Sample, Scenario, Settings};

/// How often the simulated run checks whether every node sees every member.
const POLL: Duration = Duration::from_millis(10);
/// How long `steady` lets a converged cluster settle before it starts counting (as on
/// sockets).
const STEADY_WARMUP: Duration = Duration::from_secs(2);

/// Failure declarations: `(observer, subject) -> first virtual time`.
type Failures = Rc<RefCell<BTreeMap<(NodeId, String), Duration>>>;

/// Runs repetition `rep` of `scenario` on the simulator.
///
/// # Errors
/// The simulated cluster did not get where the scenario waits for in time.
pub fn run(scenario: Scenario, settings: &Settings, rep: u64) -> Result<Sample, BenchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    rng.set_stream(rep);
    let profile = settings.profile;
    let hosts = if settings.shared_ip {
        Hosts::Shared
    } else {
        Hosts::Own
    };
    let seed_addr = hosts.addr(NodeId(0));
    let factory = Box::new(move |seed: NodeSeed| {
        let mut config = NodeConfig::new(format!("node-{:03}", seed.id.0), seed.addr, Profile::Lan);
        profile.apply(&mut config);
        let mut node =
            Node::new(config, seed.rng, seed.now).expect("bench configurations are valid");
        if seed.id != NodeId(0) {
            node.join(seed.now, &[seed_addr]);
        }
        node
    });
    let mut sim = Sim::new(rng.r#gen(), Instant::now(), LinkConfig::default(), factory);
    sim.set_hosts(hosts);
    sim.network_mut().set_streams(StreamConfig {
        refuse_past_limit: settings.sim_refuse_past_limit,
        ..StreamConfig::default()
    });
    let failures: Failures = Rc::default();
    let sink = failures.clone();
    sim.set_event_sink(Box::new(move |id, at, event| {
        if let NodeEvent::MemberFailed { name } = event {
            sink.borrow_mut().entry((id, name)).or_insert(at);
        }
    }));
    let n = settings.nodes;
    for _ in 0..n {
        sim.add_node();
    }
    let joined = sim
        .run_until(CONVERGE_TIMEOUT, POLL, |sim| {
            sim.running().all(|(_, node)| node.num_alive() == n)
        })
        .map_err(sim_error)?
        .ok_or_else(|| BenchError::Timeout {
            what: format!("all {n} simulated nodes see {n} members alive"),
            after: CONVERGE_TIMEOUT,
        })?;
    match scenario {
        Scenario::Join => Ok(Sample {
            seconds: Some(joined.as_secs_f64()),
            ..Sample::default()
        }),
        Scenario::Detect => detect(&mut sim, &failures, profile, &mut rng),
        Scenario::Steady => steady(&mut sim, settings),
        Scenario::Broadcast => Err(BenchError::NotSimulated("broadcast")),
    }
}

/// Crashes a random node other than node 0 and times until the first and the last survivor
/// declared it failed.
fn detect(
    sim: &mut Sim<Node>,
    failures: &Failures,
    profile: BenchProfile,
    rng: &mut ChaCha8Rng,
) -> Result<Sample, BenchError> {
    let n = sim.len();
    let victim = NodeId(rng.gen_range(1..n));
    let name = format!("node-{:03}", victim.0);
    let crashed = sim.elapsed();
    sim.apply(rumour_cluster::sim::Fault::Crash(victim));
    let timeout = profile.detection_bound(n) * 2 + Duration::from_secs(10);
    let declared = |failures: &Failures| {
        failures
            .borrow()
            .iter()
            .filter(|((_, s), _)| *s == name)
            .map(|(_, at)| *at)
            .collect::<Vec<_>>()
    };
    sim.run_until(timeout, POLL, |_| declared(failures).len() >= n - 1)
        .map_err(sim_error)?
        .ok_or_else(|| BenchError::Timeout {
            what: format!("every simulated survivor declares {name} failed"),
            after: timeout,
        })?;
    let times = declared(failures);
    let first = times.iter().min().expect("survivors declared it");
    let last = times.iter().max().expect("survivors declared it");
    Ok(Sample {
        seconds: Some((*last - crashed).as_secs_f64()),
        first_seconds: Some((*first - crashed).as_secs_f64()),
        idle: None,
    })
}

/// Bytes and messages sent per node and second over the idle window after the warm-up, and
/// the process's memory at its end.
fn steady(sim: &mut Sim<Node>, settings: &Settings) -> Result<Sample, BenchError> {
    let window = settings.steady;
    sim.run_for(STEADY_WARMUP).map_err(sim_error)?;
    let before = sim.stats().clone();
    let kinds_before = bytes_by_kind(sim);
    sim.run_for(window).map_err(sim_error)?;
    let after = sim.stats();
    let node_seconds = sim.len() as f64 * window.as_secs_f64();
    let per_node_s = |delta: u64| delta as f64 / node_seconds;
    let sent = |s: &rumour_cluster::sim::SimStats| s.datagrams_sent + s.streams_sent;
    let bytes = after.bytes_sent - before.bytes_sent;
    let mut by_kind = BTreeMap::new();
    let mut layered = 0;
    for (kind, total) in bytes_by_kind(sim) {
        let delta = total.bytes - kinds_before.get(&kind).copied().unwrap_or_default().bytes;
        layered += delta;
        by_kind.insert(kind, per_node_s(delta));
    }
    by_kind.insert(
        "framing".to_string(),
        per_node_s(bytes.saturating_sub(layered)),
    );
    Ok(Sample {
        idle: Some(Idle {
            cpu: None,
            bytes: per_node_s(bytes),
            packets: per_node_s(sent(after) - sent(&before)),
            by_kind,
            // The nodes' heap is the simulation's; the process's resident set (the
            // allocator's history, the runtime's threads) is not.
            heap: settings.heap.map(|heap| heap() as u64),
            rss: None,
        }),
        ..Sample::default()
    })
}

/// Bytes the running nodes' layers have sent, by kind (named as on sockets: `swim.<kind>`,
/// `kv.<kind>`).
fn bytes_by_kind(sim: &Sim<Node>) -> BTreeMap<String, Traffic> {
    let mut kinds = BTreeMap::new();
    for (_, node) in sim.running() {
        node.swim().stats().sent.add_to("swim", &mut kinds);
        node.gossip().stats().sent.add_to("kv", &mut kinds);
    }
    kinds
}

fn sim_error(error: rumour_cluster::sim::SimError) -> BenchError {
    BenchError::Sim(Box::new(error))
}
