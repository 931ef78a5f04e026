//! The scenario runner.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::view::{ScenarioView, topology};
use super::{IdleTraffic, KindRate, Report, Scenario, ScenarioConfig, Spread};
use crate::sim::{
    Check, EventSink, Factory, Fault, Hosts, LinkConfig, NodeId, NodeSeed, Sim, SimError,
};
use crate::{Node, NodeConfig, NodeEvent};

/// Failure declarations seen during a run: `(observer, subject) -> first time`.
type Failures = Rc<RefCell<BTreeMap<(NodeId, String), Duration>>>;

/// What the incarnation invariant last saw: per watched observer and generation, each member's
/// incarnation.
type Seen = Rc<RefCell<HashMap<(NodeId, u32), HashMap<rumour_swim::NodeName, u32>>>>;

pub(super) struct Cluster {
    pub(super) sim: Sim<Node>,
    pub(super) failures: Failures,
    pub(super) config: ScenarioConfig,
    /// Whether every node registers in the ring.
    ring: bool,
    seen: Seen,
    started: Instant,
}

/// The wall-clock time `elapsed` after the start of a simulation.
fn sim_wall(elapsed: Duration) -> rumour_ring::Timestamp {
    rumour_ring::Timestamp(crate::config::SIM_EPOCH.0 + elapsed.as_millis() as u64)
}

/// The name of node `id` in scenario clusters.
pub(super) fn name_of(id: NodeId) -> String {
    format!("node-{}", id.0)
}

/// The instant `elapsed` of wall time ago: where a report counts from when a cluster took
/// that long to build before its scenario had it.
fn started_before(elapsed: Duration) -> Instant {
    let now = Instant::now();
    now.checked_sub(elapsed).unwrap_or(now)
}

/// Where a scenario's nodes live.
fn hosts(config: &ScenarioConfig) -> Hosts {
    if config.shared_ip {
        Hosts::Shared
    } else {
        Hosts::Own
    }
}

/// Builds the nodes of a scenario cluster: all but node 0 join node 0 at once, node 0 joins
/// node 1 when it restarts; with `ring`, every node registers itself in the ring.
fn factory(config: &ScenarioConfig, ring: bool) -> Factory<Node> {
    let profile = config.profile;
    let hosts = hosts(config);
    let seed_addr = hosts.addr(NodeId(0));
    let other_seed = hosts.addr(NodeId(1));
    Box::new(move |seed: NodeSeed| {
        let mut node_config = NodeConfig::new(name_of(seed.id), seed.addr, profile);
        if ring {
            node_config = node_config.with_ring_instance();
        }
        node_config.wall_epoch = Some((seed.now, sim_wall(seed.elapsed)));
        let mut node =
            Node::new(node_config, seed.rng, seed.now).expect("scenario configurations are valid");
        let join = if seed.id == NodeId(0) {
            other_seed
        } else {
            seed_addr
        };
        if seed.id != NodeId(0) || seed.generation > 0 {
            node.join(seed.now, &[join]);
        }
        node
    })
}

/// Records every failure declaration in `failures`.
fn failure_sink(failures: &Failures) -> EventSink<NodeEvent> {
    let sink = failures.clone();
    Box::new(move |id, at, event| {
        if let NodeEvent::MemberFailed { name } = event {
            sink.borrow_mut().entry((id, name)).or_insert(at);
        }
    })
}

impl Cluster {
    /// `config.nodes` nodes; all but node 0 join node 0 at once. With `ring`, every node
    /// registers itself in the ring.
    fn new(config: &ScenarioConfig, ring: bool) -> Cluster {
        let mut sim = Sim::new(
            config.seed,
            Instant::now(),
            LinkConfig::default(),
            factory(config, ring),
        );
        sim.set_hosts(hosts(config));
        sim.set_replay(config.replay());
        let failures: Failures = Rc::default();
        sim.set_event_sink(failure_sink(&failures));
        for _ in 0..config.nodes {
            sim.add_node();
        }
        let seen = Seen::default();
        for name in INVARIANTS {
            sim.add_check(name, Duration::from_secs(1), invariant(name, &seen));
        }
        Cluster {
            sim,
            failures,
            config: *config,
            ring,
            seen,
            started: Instant::now(),
        }
    }

    /// A copy of this cluster in its current state that runs on apart as `config`'s scenario
    /// ([`Sim::fork`]), or `None` if the simulation cannot be copied. Its report's wall time
    /// counts from `built_in` before now: the time this cluster took to reach this state.
    fn fork(&self, config: &ScenarioConfig, built_in: Duration) -> Option<Cluster> {
        let seen: Seen = Rc::new(RefCell::new(self.seen.borrow().clone()));
        let mut sim = self
            .sim
            .fork(factory(config, self.ring), |name| invariant(name, &seen))?;
        sim.set_replay(config.replay());
        let failures: Failures = Rc::new(RefCell::new(self.failures.borrow().clone()));
        sim.set_event_sink(failure_sink(&failures));
        Some(Cluster {
            sim,
            failures,
            config: *config,
            ring: self.ring,
            seen,
            started: started_before(built_in),
        })
    }

    /// Whether every running node lists `expected` members alive.
    fn one_view(sim: &Sim<Node>, expected: usize) -> bool {
        sim.running().all(|(_, node)| node.num_alive() == expected)
    }

    /// Runs until every node lists every node alive; the virtual time it took.
    fn converge(&mut self, limit: Duration) -> Result<Option<Duration>, SimError> {
        let n = self.config.nodes;
        let limit = self.config.join_limit.unwrap_or(limit);
        self.sim.run_until(limit, Duration::from_millis(50), |sim| {
            Cluster::one_view(sim, n)
        })
    }

    fn set_loss(&mut self, loss: f64) {
        self.sim.apply(Fault::SetLink(LinkConfig {
            loss,
            ..LinkConfig::default()
        }));
    }

    /// A seeded pick of a node other than node 0 (the seed).
    fn pick(&self, salt: u64) -> NodeId {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ salt);
        NodeId(rng.gen_range(1..self.config.nodes))
    }

    /// Distinct healthy members declared failed, and all such declarations.
    pub(super) fn false_positives(&self, healthy: impl Fn(&str) -> bool) -> (u64, u64) {
        let failures = self.failures.borrow();
        let declarations: Vec<&String> = failures
            .keys()
            .map(|(_, s)| s)
            .filter(|s| healthy(s))
            .collect();
        let subjects: std::collections::BTreeSet<&String> = declarations.iter().copied().collect();
        (subjects.len() as u64, declarations.len() as u64)
    }

    pub(super) fn report(&self, converged: bool) -> Report {
        let simulated = self.sim.elapsed().as_secs_f64();
        let wall = self.started.elapsed().as_secs_f64();
        let n = self.config.nodes as f64;
        let stats = self.sim.stats();
        let (suspicions, refutations) = self.sim.running().fold((0, 0), |(s, r), (_, node)| {
            let st = node.stats();
            (s + st.suspicions, r + st.refutations)
        });
        Report {
            scenario: self.config.scenario.name().to_string(),
            nodes: self.config.nodes,
            seed: self.config.seed,
            profile: self.config.profile.name().to_string(),
            loss: self.config.loss.unwrap_or(0.0),
            converged,
            suspicions,
            refutations,
            messages_per_node_s: (stats.datagrams_sent + stats.streams_sent) as f64
                / n
                / simulated.max(1e-9),
            bytes_per_node_s: stats.bytes_sent as f64 / n / simulated.max(1e-9),
            simulated_seconds: simulated,
            wall_seconds: wall,
            node_seconds_per_wall_second: simulated * n / wall.max(1e-9),
            replay: self.config.replay(),
            ..Report::default()
        }
    }
}

/// Observers whose member tables the incarnation invariant follows (a sample keeps the check
/// cheap at thousands of nodes).
const WATCHED_OBSERVERS: usize = 16;

/// The invariant that no running node is convinced it is dead.
const SELF_ALIVE: &str = "every running node lists itself alive";
/// The invariant that stored incarnations never go backwards.
const INCARNATIONS: &str = "stored incarnations never go backwards";

/// The invariants every scenario run checks once per virtual second:
/// - every running node lists itself alive (nobody ever convinces a live node it is dead);
/// - the incarnation a node stores for a member never goes backwards while the member stays in
///   its table (memberlist lets a stale alive resurrect a dead node; rumour must not).
const INVARIANTS: [&str; 2] = [SELF_ALIVE, INCARNATIONS];

/// The check of the invariant `name`; the incarnation check keeps what it saw in `seen`.
fn invariant(name: &str, seen: &Seen) -> Check<Node> {
    if name == SELF_ALIVE {
        return Box::new(|sim: &Sim<Node>| {
            match sim
                .running()
                .find(|(_, node)| !node.sees_alive(node.name()))
            {
                Some((id, node)) => Err(format!(
                    "{id} holds itself as {:?}",
                    node.member_state(node.name())
                )),
                None => Ok(()),
            }
        });
    }
    debug_assert_eq!(name, INCARNATIONS);
    // Each member's incarnation at the last check is found by the name's hash: reading 16
    // tables of 1,000 members a virtual second compares no text (an ordered map by name was
    // 7 % of a 1,000-node `steady`).
    let seen = seen.clone();
    Box::new(move |sim: &Sim<Node>| {
        let mut seen = seen.borrow_mut();
        let mut now_seen = HashMap::with_capacity(seen.len());
        for (id, node) in sim.running().take(WATCHED_OBSERVERS) {
            let observer = (id, sim.generation(id));
            let before = seen.remove(&observer).unwrap_or_default();
            let mut now = HashMap::with_capacity(before.len());
            for member in node.members() {
                let incarnation = member.incarnation.0;
                if let Some(&earlier) = before.get(&member.name) {
                    if incarnation < earlier {
                        return Err(format!(
                            "{id} lowered {}'s incarnation from {earlier} to {incarnation}",
                            member.name.as_str()
                        ));
                    }
                }
                now.insert(member.name, incarnation);
            }
            now_seen.insert(observer, now);
        }
        *seen = now_seen;
        Ok(())
    })
}

/// Runs one scenario. `progress` is told the share done, from 0 to 1, now and then.
pub fn run(config: &ScenarioConfig, progress: &mut dyn FnMut(f64)) -> Result<Report, SimError> {
    Runner::new().run(config, progress)
}

/// Runs scenarios one after another (`rumour sim --scenario all`). Given the plan
/// ([`Runner::sharing`]), scenarios that start from the same cluster share it: `join` and
/// `steady` run the same join of `N` nodes (with no loss), `update`, `crash`, `loss` and `slow`
/// start where it converged and settled for 5 s, `partition`, `churn` and `attack` from the
/// same with the ring. Each starts from a copy ([`Sim::fork`]) of the cluster the first of
/// them built (the last of them from that cluster itself) rather than running the same join
/// again. The simulation is deterministic, so a copy goes on exactly as a fresh build would:
/// every report is the one the scenario gives when run alone (its wall time includes the
/// shared join's).
///
/// The runner keeps one start at a time: a scenario that cannot use it drops it, and the last
/// scenario of the plan that can takes it. So scenarios starting alike should run back to back
/// ([`Scenario::ALL`] is in that order). While it is kept the process holds two clusters.
#[derive(Default)]
pub struct Runner {
    /// The scenarios still to run, when sharing.
    plan: Vec<Scenario>,
    start: Option<Start>,
}

/// A converged cluster kept for the scenarios that start from it.
struct Start {
    /// The configuration it was built for, its scenario and loss aside.
    key: ScenarioConfig,
    ring: bool,
    cluster: Cluster,
    /// The virtual time the join took to converge, `None` if it did not within `limit`.
    took: Option<Duration>,
    /// The longest the join was given.
    limit: Duration,
    /// Whether the 5 s after the join have run.
    settled: bool,
    /// The wall time it took to build.
    built_in: Duration,
}

/// Where a scenario starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Where every node first lists every node alive.
    Converged,
    /// 5 simulated seconds later.
    Settled,
}

impl Runner {
    /// A runner that builds every scenario's cluster from scratch.
    #[must_use]
    pub fn new() -> Runner {
        Runner::default()
    }

    /// A runner for `plan`, the scenarios to run in order (all with the same size, seed,
    /// profile, join limit and hosts), that shares clusters between those that start alike.
    #[must_use]
    pub fn sharing(plan: &[Scenario]) -> Runner {
        Runner {
            plan: plan.to_vec(),
            start: None,
        }
    }

    /// Runs `config`'s scenario. `progress` is told the share done, from 0 to 1, now and then.
    ///
    /// # Panics
    /// If `config.nodes` is below 3.
    pub fn run(
        &mut self,
        config: &ScenarioConfig,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Report, SimError> {
        assert!(config.nodes >= 3, "scenarios need at least 3 nodes");
        if let Some(i) = self.plan.iter().position(|s| *s == config.scenario) {
            self.plan.remove(i);
        }
        let usable = start_of(config).is_some_and(|(ring, _)| {
            self.start
                .as_ref()
                .is_some_and(|s| s.key == start_key(config) && s.ring == ring)
        });
        if !usable {
            self.start = None;
        }
        progress(0.0);
        let report = match config.scenario {
            Scenario::Join => join(config, self),
            Scenario::Update => update(config, self),
            Scenario::Crash => crash(config, self),
            Scenario::Loss => loss(config, self, progress),
            Scenario::Slow => slow(config, self),
            Scenario::Partition => partition(config, self),
            Scenario::Churn => churn(config, self, progress),
            Scenario::Ring => ring(config),
            Scenario::Steady => steady(config, self, progress),
            Scenario::Attack => super::attack::attack(config, self, progress),
        };
        progress(1.0);
        report
    }

    /// A cluster for `config`'s scenario, with or without the `ring`, at `phase` of a join
    /// given `limit` (unless `config.join_limit` says otherwise), and the virtual time the join
    /// took: the kept start (a copy of it while a later scenario of the plan can use it too)
    /// when it was built alike, else a new one (kept when a later scenario can use it).
    fn joined(
        &mut self,
        config: &ScenarioConfig,
        ring: bool,
        phase: Phase,
        limit: Duration,
    ) -> Result<(Cluster, Option<Duration>), SimError> {
        let key = start_key(config);
        let limit = config.join_limit.unwrap_or(limit);
        // A join given another limit went the same way if it converged within both.
        let fits = |s: &Start| {
            s.key == key
                && s.ring == ring
                && (s.limit == limit || s.took.is_some_and(|t| t <= limit.min(s.limit)))
                && (phase == Phase::Settled || !s.settled)
        };
        let mut start = match self.start.take() {
            Some(start) if fits(&start) => start,
            _ => {
                let began = Instant::now();
                let mut cluster = Cluster::new(config, ring);
                let took = cluster.converge(limit)?;
                Start {
                    key,
                    ring,
                    cluster,
                    took,
                    limit,
                    settled: false,
                    built_in: began.elapsed(),
                }
            }
        };
        let later = |p: Phase| {
            self.plan.iter().any(|s| {
                start_of(&ScenarioConfig {
                    scenario: *s,
                    ..*config
                }) == Some((ring, p))
            })
        };
        let converged_later = later(Phase::Converged);
        let keep = later(Phase::Settled) || (!start.settled && converged_later);
        // Settle the start itself unless a later scenario needs it unsettled.
        if phase == Phase::Settled && !start.settled && !converged_later {
            let began = Instant::now();
            start.cluster.sim.run_for(SETTLE)?;
            start.settled = true;
            start.built_in += began.elapsed();
        }
        let took = start.took;
        let settled = start.settled;
        let fork = if keep {
            start.cluster.fork(config, start.built_in)
        } else {
            None
        };
        let mut cluster = match fork {
            Some(fork) => {
                self.start = Some(start);
                fork
            }
            None => {
                let mut cluster = start.cluster;
                cluster.config = *config;
                cluster.sim.set_replay(config.replay());
                cluster.started = started_before(start.built_in);
                cluster
            }
        };
        if phase == Phase::Settled && !settled {
            // Let the join traffic settle before measuring.
            cluster.sim.run_for(SETTLE)?;
        }
        Ok((cluster, took))
    }
}

/// How long scenarios that measure after the join let its traffic settle first.
const SETTLE: Duration = Duration::from_secs(5);

/// The start `config`'s scenario can share: with or without the ring, and at which phase.
/// `join` and `steady` share theirs only when no loss slows the join itself.
fn start_of(config: &ScenarioConfig) -> Option<(bool, Phase)> {
    let lossless = config.loss.is_none_or(|l| l == 0.0);
    match config.scenario {
        Scenario::Join | Scenario::Steady if lossless => Some((false, Phase::Converged)),
        Scenario::Update | Scenario::Crash | Scenario::Loss | Scenario::Slow => {
            Some((false, Phase::Settled))
        }
        Scenario::Partition | Scenario::Churn | Scenario::Attack => Some((true, Phase::Settled)),
        Scenario::Join | Scenario::Steady | Scenario::Ring => None,
    }
}

/// What a start depends on: the configuration but its scenario and loss (set once the
/// cluster has converged, or, for `join` and `steady`, shared only without loss).
fn start_key(config: &ScenarioConfig) -> ScenarioConfig {
    ScenarioConfig {
        scenario: Scenario::Join,
        loss: None,
        ..*config
    }
}

const JOIN_LIMIT: Duration = Duration::from_secs(300);

/// A cluster of `config.nodes` joining with `config.loss` on every link, where every node
/// first lists every node alive or `limit` has passed; and the virtual time that took. Without
/// loss, the join `runner` kept, if any.
fn joined(
    config: &ScenarioConfig,
    runner: &mut Runner,
    limit: Duration,
) -> Result<(Cluster, Option<Duration>), SimError> {
    if start_of(config).is_some() {
        return runner.joined(config, false, Phase::Converged, limit);
    }
    let mut cluster = Cluster::new(config, false);
    cluster.set_loss(config.loss.unwrap_or(0.0));
    let took = cluster.converge(limit)?;
    Ok((cluster, took))
}

fn join(config: &ScenarioConfig, runner: &mut Runner) -> Result<Report, SimError> {
    let (cluster, took) = joined(config, runner, JOIN_LIMIT)?;
    let mut report = cluster.report(took.is_some());
    report.join_seconds = took.map(|d| d.as_secs_f64());
    Ok(report)
}

/// A converged cluster, 5 s after its join (one `runner` kept, if it did), with `loss` set
/// afterwards; and whether it converged.
pub(super) fn converged(
    config: &ScenarioConfig,
    ring: bool,
    runner: &mut Runner,
) -> Result<(Cluster, bool), SimError> {
    let (mut cluster, took) = runner.joined(config, ring, Phase::Settled, JOIN_LIMIT)?;
    cluster.set_loss(config.loss.unwrap_or(0.0));
    Ok((cluster, took.is_some()))
}

const UPDATE_KEY: &str = "scenario-update";

fn update(config: &ScenarioConfig, runner: &mut Runner) -> Result<Report, SimError> {
    let (mut cluster, joined) = converged(config, false, runner)?;
    let origin = cluster.pick(0);
    let start = cluster.sim.elapsed();
    cluster
        .sim
        .command(origin, |node, now| node.put_marker(now, UPDATE_KEY));
    let mut seen: BTreeMap<NodeId, f64> = BTreeMap::new();
    let n = config.nodes;
    let limit = start + Duration::from_secs(60);
    while seen.len() < n && cluster.sim.elapsed() < limit {
        cluster.sim.run_for(Duration::from_millis(5))?;
        let at = (cluster.sim.elapsed() - start).as_secs_f64();
        for (id, node) in cluster.sim.running() {
            if !seen.contains_key(&id) && node.has_marker(UPDATE_KEY) {
                seen.insert(id, at);
            }
        }
    }
    let mut times: Vec<f64> = seen.into_values().collect();
    let round = config.profile.gossip_interval().as_secs_f64();
    let spread = Spread::of(&mut times, n, round);
    let mut report = cluster.report(joined && spread.is_some());
    report.dissemination = spread;
    Ok(report)
}

fn crash(config: &ScenarioConfig, runner: &mut Runner) -> Result<Report, SimError> {
    let (mut cluster, joined) = converged(config, false, runner)?;
    let victim = cluster.pick(0xc4a5);
    let victim_name = name_of(victim);
    let start = cluster.sim.elapsed();
    cluster.sim.apply(Fault::Crash(victim));
    let survivors = config.nodes - 1;
    let failures = cluster.failures.clone();
    let detected = |name: &str| failures.borrow().keys().filter(|(_, s)| s == name).count();
    let bound = config.profile.detection_bound(config.nodes);
    let took = cluster
        .sim
        .run_until(bound * 3, Duration::from_millis(10), |_| {
            detected(&victim_name) >= survivors
        })?;
    let times: Vec<Duration> = cluster
        .failures
        .borrow()
        .iter()
        .filter(|((_, s), _)| *s == victim_name)
        .map(|(_, &at)| at - start)
        .collect();
    let mut report = cluster.report(joined && took.is_some());
    report.first_detection_seconds = times.iter().min().map(Duration::as_secs_f64);
    report.full_detection_seconds = took.map(|d| d.as_secs_f64());
    report.detection_bound_seconds = Some(bound.as_secs_f64());
    let (fp, declarations) = cluster.false_positives(|s| s != victim_name);
    report.false_positives = Some(fp);
    report.false_positive_declarations = Some(declarations);
    Ok(report)
}

fn loss(
    config: &ScenarioConfig,
    runner: &mut Runner,
    progress: &mut dyn FnMut(f64),
) -> Result<Report, SimError> {
    let config = ScenarioConfig {
        loss: Some(config.loss.unwrap_or(0.1)),
        ..*config
    };
    let (mut cluster, joined) = converged(&config, false, runner)?;
    let minutes = 10;
    for minute in 0..minutes {
        cluster.sim.run_for(Duration::from_secs(60))?;
        progress(f64::from(minute + 1) / f64::from(minutes));
    }
    let (fp, declarations) = cluster.false_positives(|_| true);
    let mut report = cluster.report(joined);
    report.false_positives = Some(fp);
    report.false_positive_declarations = Some(declarations);
    Ok(report)
}

fn slow(config: &ScenarioConfig, runner: &mut Runner) -> Result<Report, SimError> {
    let (mut cluster, joined) = converged(config, false, runner)?;
    let slow = cluster.pick(0x510);
    let slow_name = name_of(slow);
    cluster.sim.apply(Fault::Slow(slow, Duration::from_secs(2)));
    cluster.sim.run_for(Duration::from_secs(60))?;
    cluster.sim.apply(Fault::Slow(slow, Duration::ZERO));
    cluster.sim.run_for(Duration::from_secs(10))?;
    let (fp, declarations) = cluster.false_positives(|s| s != slow_name);
    let slow_failed = cluster
        .failures
        .borrow()
        .keys()
        .any(|(_, s)| *s == slow_name);
    let mut report = cluster.report(joined);
    report.false_positives = Some(fp);
    report.false_positive_declarations = Some(declarations);
    report.slow_member_declared_failed = Some(slow_failed);
    Ok(report)
}

/// Whether every running node's ring holds every running node's instance, active, and all
/// replicas agree on the ring's topology (heartbeats aside).
///
/// Runs every poll of a `run_until`, so it borrows the rings and compares them pairwise with the
/// first (stopping at the first difference) rather than cloning and hashing every token of every
/// replica; once all topologies are equal, the first replica alone answers which instances are
/// active. Same answer as comparing [`ScenarioView::ring_topology_digest`]s.
pub(super) fn rings_agree(sim: &Sim<Node>) -> bool {
    let mut nodes = sim.running().map(|(_, node)| node);
    let Some(first) = nodes.next() else {
        return true;
    };
    let same = |node: &Node| {
        let (mut mine, mut theirs) = (topology(node), topology(first));
        loop {
            match (mine.next(), theirs.next()) {
                (None, None) => return true,
                (Some(a), Some(b))
                    if a.id() == b.id() && a.state() == b.state() && a.tokens() == b.tokens() => {}
                _ => return false,
            }
        }
    };
    if !nodes.all(same) {
        return false;
    }
    sim.running()
        .all(|(id, _)| first.ring_has_active(&name_of(id)))
}

/// Instances missing or not active in some replica although their node runs.
fn lost_instances(sim: &Sim<Node>) -> u64 {
    let names: Vec<String> = sim.running().map(|(id, _)| name_of(id)).collect();
    names
        .iter()
        .filter(|name| sim.running().any(|(_, node)| !node.ring_has_active(name)))
        .count() as u64
}

/// Running members that some node does not list as alive.
pub(super) fn zombies(sim: &Sim<Node>) -> u64 {
    let names: Vec<String> = sim.running().map(|(id, _)| name_of(id)).collect();
    names
        .iter()
        .filter(|name| sim.running().any(|(_, node)| !node.sees_alive(name)))
        .count() as u64
}

fn heal_report(mut cluster: Cluster, joined: bool, limit: Duration) -> Result<Report, SimError> {
    let n = cluster.config.nodes;
    let took = cluster
        .sim
        .run_until(limit, Duration::from_millis(100), |sim| {
            Cluster::one_view(sim, n) && rings_agree(sim)
        })?;
    let mut report = cluster.report(joined && took.is_some());
    report.heal_seconds = took.map(|d| d.as_secs_f64());
    report.lost_instances = Some(lost_instances(&cluster.sim));
    report.zombies = Some(zombies(&cluster.sim));
    Ok(report)
}

fn partition(config: &ScenarioConfig, runner: &mut Runner) -> Result<Report, SimError> {
    let (mut cluster, joined) = converged(config, true, runner)?;
    let n = config.nodes;
    let (left, right): (Vec<NodeId>, Vec<NodeId>) = (0..n).map(NodeId).partition(|id| id.0 < n / 2);
    cluster.sim.apply(Fault::Partition(vec![left, right]));
    cluster.sim.run_for(Duration::from_secs(60))?;
    cluster.sim.apply(Fault::Heal);
    heal_report(cluster, joined, Duration::from_secs(300))
}

/// Restart waves of a rolling restart at most: a larger cluster restarts more nodes at once
/// (as a deployment's rollout restarts a share of its instances at a time), so the rollout
/// lasts at most this many waves of 2.5 simulated seconds whatever the cluster's size. Up to
/// 64 nodes, one node restarts at a time.
const CHURN_WAVES: usize = 64;

fn churn(
    config: &ScenarioConfig,
    runner: &mut Runner,
    progress: &mut dyn FnMut(f64),
) -> Result<Report, SimError> {
    let (mut cluster, joined) = converged(config, true, runner)?;
    let n = config.nodes;
    let gap = Duration::from_secs(2);
    let ids: Vec<NodeId> = (0..n).map(NodeId).collect();
    let mut restarted = 0;
    for wave in ids.chunks(n.div_ceil(CHURN_WAVES).max(1)) {
        for &id in wave {
            cluster.sim.apply(Fault::Crash(id));
        }
        cluster.sim.run_for(Duration::from_millis(500))?;
        for &id in wave {
            cluster.sim.apply(Fault::Restart(id));
        }
        cluster.sim.run_for(gap)?;
        restarted += wave.len();
        progress(restarted as f64 / n as f64);
    }
    heal_report(cluster, joined, Duration::from_secs(300))
}

fn ring(config: &ScenarioConfig) -> Result<Report, SimError> {
    let mut cluster = Cluster::new(config, true);
    cluster.set_loss(config.loss.unwrap_or(0.0));
    let took = cluster
        .sim
        .run_until(JOIN_LIMIT, Duration::from_millis(100), rings_agree)?;
    // Measure steady-state cost over one minute of heartbeats.
    let before = cluster.sim.stats().clone();
    let t0 = cluster.sim.elapsed();
    cluster.sim.run_for(Duration::from_secs(60))?;
    let secs = (cluster.sim.elapsed() - t0).as_secs_f64();
    let after = cluster.sim.stats().clone();
    let mut report = cluster.report(took.is_some());
    let nodes = config.nodes as f64;
    report.bytes_per_node_s = (after.bytes_sent - before.bytes_sent) as f64 / nodes / secs;
    report.messages_per_node_s = ((after.datagrams_sent + after.streams_sent)
        - (before.datagrams_sent + before.streams_sent)) as f64
        / nodes
        / secs;
    report.ring_converged_seconds = took.map(|d| d.as_secs_f64());
    report.lost_instances = Some(lost_instances(&cluster.sim));
    Ok(report)
}

/// Simulated seconds the `steady` scenario runs at least, joins included.
const STEADY_SECONDS: u64 = 120;

/// How long `steady` lets a converged cluster settle before it measures the idle window, at
/// least: the settle also lasts until every node's KV store has gone quiet and paused its own
/// pull-push ([`crate::KV_PULLPUSH_QUIET_PERIODS`] of its scaled interval), so the window sees
/// the idle steady state rather than the end of the join.
const IDLE_SETTLE: Duration = Duration::from_secs(10);

/// The idle window `steady` measures by kind: four 30 s pull-push periods of the LAN profile.
const IDLE_WINDOW: Duration = Duration::from_secs(120);

/// Traffic counters summed over the running nodes: `(kind, messages, bytes)` plus totals.
#[derive(Clone, Debug, Default)]
struct TrafficSnapshot {
    kinds: BTreeMap<String, rumour_wire::Traffic>,
    bytes: u64,
    packets: u64,
    pullpushes: u64,
    reconnects: u64,
}

impl TrafficSnapshot {
    fn take(sim: &Sim<Node>) -> TrafficSnapshot {
        let mut snap = TrafficSnapshot::default();
        for (_, node) in sim.running() {
            let swim = node.swim().stats();
            swim.sent.add_to("swim", &mut snap.kinds);
            node.gossip().stats().sent.add_to("kv", &mut snap.kinds);
            let stats = node.stats();
            snap.bytes += stats.bytes_sent;
            snap.packets += stats.datagrams_sent + stats.streams_sent;
            snap.pullpushes += swim.pullpushes;
            snap.reconnects += swim.reconnect_attempts;
        }
        snap
    }

    /// The traffic between `self` (earlier) and `later`, per node and second.
    fn rates(&self, later: &TrafficSnapshot, nodes: usize, window: Duration) -> IdleTraffic {
        let per = |v: u64| v as f64 / nodes.max(1) as f64 / window.as_secs_f64().max(1e-9);
        let mut by_kind = BTreeMap::new();
        let mut layered = 0;
        for (name, now) in &later.kinds {
            let then = self.kinds.get(name).copied().unwrap_or_default();
            layered += now.bytes - then.bytes;
            by_kind.insert(
                name.clone(),
                KindRate {
                    messages_per_node_s: per(now.messages - then.messages),
                    bytes_per_node_s: per(now.bytes - then.bytes),
                },
            );
        }
        let bytes = later.bytes - self.bytes;
        let packets = later.packets - self.packets;
        by_kind.insert(
            "framing".to_string(),
            KindRate {
                messages_per_node_s: per(packets),
                bytes_per_node_s: per(bytes.saturating_sub(layered)),
            },
        );
        IdleTraffic {
            window_seconds: window.as_secs_f64(),
            bytes_per_node_s: per(bytes),
            packets_per_node_s: per(packets),
            swim_pullpushes_per_node_s: per(later.pullpushes - self.pullpushes),
            reconnect_attempts_per_node_s: per(later.reconnects - self.reconnects),
            by_kind,
        }
    }
}

/// Joins, then measures an idle window by kind ([`IdleTraffic`]); the whole-run figures
/// (`bytes_per_node_s`) include the join.
fn steady(
    config: &ScenarioConfig,
    runner: &mut Runner,
    progress: &mut dyn FnMut(f64),
) -> Result<Report, SimError> {
    let (mut cluster, took) = joined(config, runner, Duration::from_secs(STEADY_SECONDS))?;
    let kv_quiet = rumour_wire::pullpush_scale(config.profile.kv_pullpush_interval(), config.nodes)
        * crate::KV_PULLPUSH_QUIET_PERIODS;
    cluster.sim.run_for(IDLE_SETTLE.max(kv_quiet))?;
    let before = TrafficSnapshot::take(&cluster.sim);
    let start = cluster.sim.elapsed();
    let end = (start + IDLE_WINDOW).max(Duration::from_secs(STEADY_SECONDS));
    while cluster.sim.elapsed() < end {
        let step = Duration::from_secs(10).min(end - cluster.sim.elapsed());
        cluster.sim.run_for(step)?;
        progress(cluster.sim.elapsed().as_secs_f64() / end.as_secs_f64());
    }
    let after = TrafficSnapshot::take(&cluster.sim);
    let idle = before.rates(&after, config.nodes, cluster.sim.elapsed() - start);
    let mut report = cluster.report(took.is_some());
    report.join_seconds = took.map(|d| d.as_secs_f64());
    report.idle = Some(idle);
    let (fp, declarations) = cluster.false_positives(|_| true);
    report.false_positives = Some(fp);
    report.false_positive_declarations = Some(declarations);
    Ok(report)
}
