//! rumour's automation. `cargo xtask ci` runs everything CI checks, failing fast with a summary.
//!
//! Steps, in order: formatting, clippy on all targets with warnings denied, all tests (nextest
//! when installed, else `cargo test`), doctests, the criterion benches compiled and run once in
//! test mode, and `cargo doc` with warnings denied. The tidy checks of the architecture
//! invariants are `#[test]`s in this crate (`src/tidy/`), so they run with the tests.

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

#[cfg(test)]
mod tidy;

/// One CI step: a name and the cargo arguments that run it.
struct Step {
    name: &'static str,
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
}

impl Step {
    fn new(name: &'static str, args: &[&'static str]) -> Step {
        Step {
            name,
            args: args.to_vec(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, key: &'static str, value: &'static str) -> Step {
        self.env.push((key, value));
        self
    }
}

fn has_nextest() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn ci_steps() -> Vec<Step> {
    let tests = if has_nextest() {
        Step::new(
            "tests (nextest)",
            &["nextest", "run", "--workspace", "--no-fail-fast"],
        )
    } else {
        Step::new(
            "tests (cargo test)",
            &["test", "--workspace", "--lib", "--bins", "--tests"],
        )
    };
    vec![
        Step::new("format", &["fmt", "--all", "--", "--check"]),
        Step::new(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        tests,
        Step::new("doctests", &["test", "--workspace", "--doc"]),
        Step::new(
            "benches (test mode)",
            &["test", "--package", "rumour-benches", "--benches"],
        ),
        Step::new("docs", &["doc", "--workspace", "--no-deps"])
            .with_env("RUSTDOCFLAGS", "-D warnings"),
    ]
}

fn run_ci() -> ExitCode {
    let started = Instant::now();
    let mut summary = Vec::new();
    for step in ci_steps() {
        eprintln!("==> {}: cargo {}", step.name, step.args.join(" "));
        let t = Instant::now();
        let status = Command::new("cargo")
            .args(&step.args)
            .envs(step.env.iter().copied())
            .status();
        let secs = t.elapsed().as_secs_f64();
        let ok = status.as_ref().is_ok_and(|s| s.success());
        summary.push((step.name, ok, secs));
        if !ok {
            print_summary(&summary);
            eprintln!(
                "xtask ci: FAILED at `{}` (cargo {}) after {:.0} s",
                step.name,
                step.args.join(" "),
                started.elapsed().as_secs_f64()
            );
            return ExitCode::FAILURE;
        }
    }
    print_summary(&summary);
    eprintln!(
        "xtask ci: all {} steps passed in {:.0} s",
        summary.len(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn print_summary(summary: &[(&str, bool, f64)]) {
    eprintln!("\nxtask ci summary:");
    for (name, ok, secs) in summary {
        eprintln!(
            "  {:<22} {:>4}  {secs:>6.1} s",
            name,
            if *ok { "ok" } else { "FAIL" }
        );
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => run_ci(),
        _ => {
            eprintln!(
                "usage: cargo xtask ci    run every check CI runs (fmt, clippy, tests, docs)"
            );
            ExitCode::FAILURE
        }
    }
}
