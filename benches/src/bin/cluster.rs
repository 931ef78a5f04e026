//! The cluster benchmark: N rumour nodes in one process, each on a loopback IP of its own
//! (`127.1.x.y`, or all on 127.0.0.1 with `--shared-ip`) with its own UDP and TCP port, all
//! with one configuration. Prints one JSON line per scenario on standard output (progress goes
//! to standard error):
//!
//! ```text
//! cargo run --release -p rumour-benches --bin cluster -- \
//!     --scenario all --nodes 64 --profile fast --repeat 3 --seed 1 --steady-secs 20
//! ```
//!
//! See `docs/benchmarks.md` for what each scenario times.

#[path = "../cluster/mod.rs"]
mod cluster;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cluster::BenchError;
use cluster::harness::BenchProfile;
use cluster::report::Report;
use cluster::scenario::{self, Scenario, Settings};

/// Counts the heap the process holds, so that `steady` reports the nodes' memory.
#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Times joins, failure detection and KV broadcast of a local rumour cluster on real sockets,
/// and measures its idle cost.
#[derive(Parser, Debug)]
#[command(about)]
struct Cli {
    /// What to measure: join, detect, broadcast, steady, a comma-separated list of them, or
    /// `all`.
    #[arg(long, default_value = "all", value_parser = parse_scenarios)]
    scenario: Scenarios,
    /// Cluster size (at least 2).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(2..))]
    nodes: u16,
    /// Every node's configuration.
    #[arg(long, value_enum, default_value = "lan")]
    profile: BenchProfile,
    /// Repetitions per scenario, each on a fresh cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    repeat: u16,
    /// Picks the node seeds, the victim of `detect` and the origin of `broadcast`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The idle window of `steady`, in seconds.
    #[arg(long, default_value_t = 20)]
    steady_secs: u64,
    /// How long `steady` lets the converged cluster settle before the idle window, in seconds.
    #[arg(long, default_value_t = 2)]
    steady_warmup_secs: u64,
    /// Seal every frame with one cluster key (XChaCha20-Poly1305), to measure its cost.
    #[arg(long)]
    keys: bool,
    /// Bind every node to 127.0.0.1 instead of a loopback IP of its own (127.1.x.y): limits
    /// per source IP (inbound connections, verification pings) then apply to the whole
    /// cluster at once, as they would to members sharing one host.
    #[arg(long)]
    shared_ip: bool,
    /// Run the scenarios (join, detect, steady) on the deterministic simulator instead, with
    /// the same nodes and the same measurements, on virtual time (reported as `rumour-sim`).
    #[arg(long, conflicts_with = "keys")]
    sim: bool,
    /// With `--sim`: the simulated transport refuses a connection past its inbound limit (the
    /// stream is lost) instead of replacing the connection idle longest, as the real transport
    /// did before; shows what that cost a mass join.
    #[arg(long, requires = "sim")]
    sim_refuse_past_limit: bool,
}

/// The scenarios named by `--scenario`.
#[derive(Clone, Debug)]
struct Scenarios(Vec<Scenario>);

/// Parses `all` or a comma-separated list of scenario names.
fn parse_scenarios(names: &str) -> Result<Scenarios, String> {
    if names == "all" {
        return Ok(Scenarios(Scenario::ALL.to_vec()));
    }
    names
        .split(',')
        .map(|name| {
            Scenario::from_name(name.trim()).ok_or_else(|| {
                format!(
                    "unknown scenario `{name}`; expected join, detect, broadcast, steady or all"
                )
            })
        })
        .collect::<Result<_, _>>()
        .map(Scenarios)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(&cli)),
        Err(error) => {
            eprintln!("error: could not start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every repetition of every scenario and prints a report line after each scenario.
async fn run(cli: &Cli) -> Result<(), BenchError> {
    let settings = Settings {
        nodes: usize::from(cli.nodes),
        profile: cli.profile,
        seed: cli.seed,
        steady: Duration::from_secs(cli.steady_secs),
        steady_warmup: Duration::from_secs(cli.steady_warmup_secs),
        keys: cli.keys,
        shared_ip: cli.shared_ip,
        sim: cli.sim,
        sim_refuse_past_limit: cli.sim_refuse_past_limit,
        heap: Some(|| HEAP.allocated()),
    };
    for &scenario in &cli.scenario.0 {
        let mut samples = Vec::new();
        for rep in 0..cli.repeat {
            eprint!(
                "{} n={} profile={}{} repetition {}/{}: ",
                scenario.name(),
                settings.nodes,
                settings.profile.name(),
                if settings.keys { " keys" } else { "" },
                rep + 1,
                cli.repeat
            );
            let sample = if settings.sim {
                cluster::sim::run(scenario, &settings, u64::from(rep))?
            } else {
                scenario::run(scenario, &settings, u64::from(rep)).await?
            };
            eprintln!("{sample}");
            samples.push(sample);
        }
        let report = Report::new(scenario, &settings, &samples);
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report serialises")
        );
    }
    Ok(())
}
