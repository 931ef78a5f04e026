//! `rumour sim`: the simulator's scenarios from the command line, on virtual time.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use rumour::scenario::{self, Report, Scenario, ScenarioConfig};

use crate::ProfileFlag;

/// The flags of `rumour sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Scenario to run: join, steady, update, crash, loss, slow, partition, churn, attack,
    /// ring, or `all` for every one in that order (scenarios that start from the same join
    /// then share it, with the same reports).
    #[arg(long, default_value = "join", value_parser = parse_scenarios)]
    scenario: Scenarios,
    /// Cluster size.
    #[arg(long, default_value_t = 64)]
    nodes: usize,
    /// Seed of the run (the same seed replays the same run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Datagram loss on every link (for `loss`, 0.1 when not given).
    #[arg(long)]
    loss: Option<f64>,
    /// Configuration profile.
    #[arg(long, value_enum, default_value = "lan")]
    profile: ProfileFlag,
    /// Longest virtual time, in seconds, to wait for the joins to converge (default 300).
    #[arg(long)]
    join_limit: Option<f64>,
    /// Put every node on one host (127.0.0.1, a port each) instead of an IP address each:
    /// limits per IP address then apply to the whole cluster, as to instances sharing a
    /// machine.
    #[arg(long)]
    shared_ip: bool,
    /// Print one JSON object per scenario instead of a table.
    #[arg(long)]
    json: bool,
}

/// The scenarios named by `--scenario`.
#[derive(Clone, Debug)]
struct Scenarios(Vec<Scenario>);

fn parse_scenarios(name: &str) -> Result<Scenarios, String> {
    if name == "all" {
        return Ok(Scenarios(Scenario::ALL.to_vec()));
    }
    Scenario::from_name(name)
        .map(|s| Scenarios(vec![s]))
        .ok_or_else(|| {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            format!(
                "unknown scenario `{name}`; expected one of {} or all",
                names.join(", ")
            )
        })
}

/// The report as JSON, with the process's peak resident set size while the scenario ran
/// (`peak_rss_bytes`, Linux only: left out where `/proc` does not say).
fn report_value(report: &Report, peak_rss: Option<u64>) -> serde_json::Value {
    let mut value = serde_json::to_value(report).expect("reports serialise");
    if let (serde_json::Value::Object(fields), Some(peak)) = (&mut value, peak_rss) {
        fields.insert("peak_rss_bytes".into(), peak.into());
    }
    value
}

/// Resets the kernel's record of this process's peak resident set size, so the next reading
/// covers one scenario (Linux: writing `5` to `/proc/self/clear_refs`; ignored elsewhere).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident set size since the last reset (`VmHWM` in `/proc/self/status`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn print_table(report: &Report, peak_rss: Option<u64>) {
    let value = report_value(report, peak_rss);
    println!(
        "scenario {} (n = {}, seed {})",
        report.scenario, report.nodes, report.seed
    );
    if let serde_json::Value::Object(fields) = value {
        for (key, value) in fields {
            match value {
                serde_json::Value::Object(inner) => {
                    for (k, v) in inner {
                        println!("  {:<34} {}", format!("{key}.{k}"), v);
                    }
                }
                other => println!("  {key:<34} {other}"),
            }
        }
    }
    println!();
}

/// A progress bar on stderr for `scenario`, `done` from 0 to 1.
fn show_progress(scenario: Scenario, done: f64) {
    let width = 40;
    let filled = (done.clamp(0.0, 1.0) * width as f64) as usize;
    eprint!(
        "\r{:<10} [{}{}] {:>3.0}%",
        scenario.name(),
        "#".repeat(filled),
        ".".repeat(width - filled),
        done * 100.0
    );
    let _ = std::io::stderr().flush();
}

/// Runs `rumour sim` to completion: fails if a scenario fails or does not converge.
pub fn run(args: &SimArgs) -> ExitCode {
    let progress = !args.json && std::io::stderr().is_terminal();
    let mut ok = true;
    // Scenarios that start from the same converged cluster share it (see `Runner`).
    let mut runner = scenario::Runner::sharing(&args.scenario.0);
    for scenario in args.scenario.0.iter().copied() {
        let config = ScenarioConfig {
            scenario,
            nodes: args.nodes,
            seed: args.seed,
            loss: args.loss,
            profile: args.profile.into(),
            join_limit: args.join_limit.map(Duration::from_secs_f64),
            shared_ip: args.shared_ip,
        };
        let mut on_progress = |done: f64| {
            if progress {
                show_progress(scenario, done);
            }
        };
        reset_peak_rss();
        let result = runner.run(&config, &mut on_progress);
        let peak = peak_rss();
        if progress {
            eprintln!();
        }
        match result {
            Ok(report) => {
                ok &= report.converged;
                if args.json {
                    println!("{}", report_value(&report, peak));
                } else {
                    print_table(&report, peak);
                }
            }
            Err(error) => {
                eprintln!("rumour sim: {}", crate::error::report(&error));
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
