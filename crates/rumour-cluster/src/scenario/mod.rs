//! Named simulation scenarios: the protocol's properties, measured on virtual time.
//!
//! Each scenario builds a cluster of [`Node`](crate::Node)s in the [`Sim`](crate::sim::Sim), drives it through one story
//! (joins, a write, a crash, loss, a slow node, a partition, a rolling restart, ring heartbeats)
//! and returns a [`Report`]. `rumour sim` prints them; the tests in `tests/scenarios.rs` assert
//! the acceptance figures on fixed seeds.

mod attack;
mod report;
mod run;
mod view;

pub use report::{AttackFigures, IdleTraffic, KindRate, Report, Spread};
pub use run::{Runner, run};
pub use view::ScenarioView;

use std::time::Duration;

use crate::Profile;

/// The stories a scenario run can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// N nodes join one seed; time until every node sees N alive.
    Join,
    /// One KV write; dissemination latency to 50 / 99 / 100 % of the nodes.
    Update,
    /// One node crashes; first and full detection latency.
    Crash,
    /// 10 % datagram loss on every link for 10 minutes; false positives.
    Loss,
    /// One node handles every message 2 s late for a minute; false positives.
    Slow,
    /// The cluster splits in halves for 60 s and heals; time until one view and equal rings.
    Partition,
    /// Every node restarts in turn (a rolling restart: one node at a time up to 64 nodes, in
    /// 64 waves of `ceil(N / 64)` nodes beyond); the ring converges, no instance lost, no zombie.
    Churn,
    /// Every node registers in the ring and heartbeats; bytes per node per second.
    Ring,
    /// N nodes join and the cluster runs for 120 simulated seconds in all: the steady cost per
    /// node and the simulator's own speed.
    Steady,
    /// Honest nodes beside an attacker that sends crafted packets at a high rate for a minute:
    /// forged deaths, reflection requests, member and key floods, far-future timestamps,
    /// oversized counts. Honest nodes declared failed, state sizes, bytes reflected to a third
    /// party, and whether the stores converge afterwards.
    Attack,
}

impl Scenario {
    /// Every scenario, in the order `--scenario all` runs them.
    pub const ALL: [Scenario; 10] = [
        Scenario::Join,
        Scenario::Steady,
        Scenario::Update,
        Scenario::Crash,
        Scenario::Loss,
        Scenario::Slow,
        Scenario::Partition,
        Scenario::Churn,
        Scenario::Attack,
        Scenario::Ring,
    ];

    /// The scenario's command-line name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Join => "join",
            Scenario::Update => "update",
            Scenario::Crash => "crash",
            Scenario::Loss => "loss",
            Scenario::Slow => "slow",
            Scenario::Partition => "partition",
            Scenario::Churn => "churn",
            Scenario::Ring => "ring",
            Scenario::Steady => "steady",
            Scenario::Attack => "attack",
        }
    }

    /// The scenario called `name` on the command line.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScenarioConfig {
    /// The story.
    pub scenario: Scenario,
    /// Cluster size (at least 2; `crash` and `slow` need 3).
    pub nodes: usize,
    /// The run's seed.
    pub seed: u64,
    /// Datagram loss on every link; `None` means the scenario's default (0, or 0.1 for `loss`).
    pub loss: Option<f64>,
    /// Configuration profile of every node.
    pub profile: Profile,
    /// Longest virtual time to wait for the cluster to converge after the joins; `None` means
    /// the scenario's default (300 s). A run that hits it reports `converged: false`.
    pub join_limit: Option<Duration>,
    /// Every node on one host, told apart by port ([`crate::sim::Hosts::Shared`]), instead of
    /// an IP address each.
    pub shared_ip: bool,
}

impl ScenarioConfig {
    /// The command that replays this run.
    #[must_use]
    pub fn replay(&self) -> String {
        let mut cmd = format!(
            "cargo run --release -- sim --scenario {} --nodes {} --seed {} --profile {}",
            self.scenario.name(),
            self.nodes,
            self.seed,
            self.profile.name()
        );
        if let Some(loss) = self.loss {
            cmd.push_str(&format!(" --loss {loss}"));
        }
        if let Some(limit) = self.join_limit {
            cmd.push_str(&format!(" --join-limit {}", limit.as_secs_f64()));
        }
        if self.shared_ip {
            cmd.push_str(" --shared-ip");
        }
        cmd
    }
}
