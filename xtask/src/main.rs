//! rumour's automation. `cargo xtask ci` runs everything CI checks, failing fast with a summary;
//! `cargo xtask fuzz` runs the cargo-fuzz targets of `fuzz/` on nightly (CI does not);
//! `cargo xtask bench-peers` runs rumour and hashicorp/memberlist side by side and writes the
//! table and plots of `docs/benchmarks.md`, `cargo xtask plot` only the plots (CI runs neither:
//! they need Go and take long). `cargo xtask interop` runs rumour's memberlist wire mode against
//! real Go memberlist nodes (needs Go; not in CI).
//!
//! Steps, in order: formatting, clippy on all targets with warnings denied, all tests (nextest
//! when installed, else `cargo test`), doctests, the criterion benches compiled and run once in
//! test mode, and `cargo doc` with warnings denied. The tidy checks of the architecture
//! invariants are `#[test]`s in this crate (`src/tidy/`), so they run with the tests.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod interop;
mod peers;
mod plot;
mod results;
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
            print_summary("ci", &summary);
            eprintln!(
                "xtask ci: FAILED at `{}` (cargo {}) after {:.0} s",
                step.name,
                step.args.join(" "),
                started.elapsed().as_secs_f64()
            );
            return ExitCode::FAILURE;
        }
    }
    print_summary("ci", &summary);
    eprintln!(
        "xtask ci: all {} steps passed in {:.0} s",
        summary.len(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn print_summary(command: &str, summary: &[(&str, bool, f64)]) {
    eprintln!("\nxtask {command} summary:");
    for (name, ok, secs) in summary {
        eprintln!(
            "  {:<22} {:>4}  {secs:>6.1} s",
            name,
            if *ok { "ok" } else { "FAIL" }
        );
    }
}

/// The cargo-fuzz targets in `fuzz/fuzz_targets/`: one per function of `rumour_cluster::fuzz`,
/// and memberlist's wire codec and dskit's KV envelope (`rumour_memberlist::fuzz`).
const FUZZ_TARGETS: [&str; 9] = [
    "frame",
    "envelope",
    "swim_message",
    "gossip_message",
    "ring_codec",
    "digests",
    "node",
    "memberlist",
    "memberlist_kv",
];

/// Seconds each target runs when `--seconds` is not given.
const DEFAULT_FUZZ_SECONDS: u64 = 60;

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct FuzzArgs {
    seconds: u64,
    targets: Vec<&'static str>,
}

fn parse_fuzz_args(args: &[String]) -> Result<FuzzArgs, String> {
    let mut seconds = DEFAULT_FUZZ_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("--seconds {value}: not a positive number"))?;
            }
            "--target" => {
                let value = args.next().ok_or("--target needs a target name")?;
                let target = FUZZ_TARGETS
                    .iter()
                    .find(|t| **t == value.as_str())
                    .ok_or_else(|| {
                        format!(
                            "--target {value}: no such target (one of {})",
                            FUZZ_TARGETS.join(", ")
                        )
                    })?;
                targets.push(*target);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    Ok(FuzzArgs { seconds, targets })
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// What `cargo xtask fuzz` needs and does not find, each with how to install it.
fn missing_fuzz_tools() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !succeeds("cargo", &["+nightly", "--version"]) {
        missing.push(
            "the nightly toolchain (`cargo +nightly --version` fails): install it with \
             `rustup toolchain install nightly`",
        );
    }
    if !succeeds("cargo", &["fuzz", "--version"]) {
        missing.push(
            "cargo-fuzz (`cargo fuzz --version` fails): install it with `cargo install cargo-fuzz`",
        );
    }
    missing
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn run_fuzz(args: &[String]) -> ExitCode {
    let args = match parse_fuzz_args(args) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("xtask fuzz: {error}\n");
            usage();
            return ExitCode::FAILURE;
        }
    };
    let missing = missing_fuzz_tools();
    if !missing.is_empty() {
        eprintln!("xtask fuzz: cannot fuzz, missing:");
        for what in &missing {
            eprintln!("  - {what}");
        }
        eprintln!(
            "Nothing was installed. CI does not need these: it replays the corpus on stable."
        );
        return ExitCode::FAILURE;
    }
    let root = workspace_root();
    let mut summary = Vec::new();
    for target in &args.targets {
        // New inputs go to the untracked `fuzz/work/<target>`; the checked-in corpus seeds it.
        let work = root.join("fuzz/work").join(target);
        if let Err(error) = std::fs::create_dir_all(&work) {
            eprintln!("xtask fuzz: cannot create {}: {error}", work.display());
            return ExitCode::FAILURE;
        }
        let work = format!("fuzz/work/{target}");
        let corpus = format!("fuzz/corpus/{target}");
        let max_time = format!("-max_total_time={}", args.seconds);
        let fuzz_args = [
            "+nightly", "fuzz", "run", target, &work, &corpus, "--", &max_time,
        ];
        eprintln!("==> {target}: cargo {}", fuzz_args.join(" "));
        let t = Instant::now();
        let ok = Command::new("cargo")
            .args(fuzz_args)
            .current_dir(&root)
            .status()
            .is_ok_and(|s| s.success());
        summary.push((*target, ok, t.elapsed().as_secs_f64()));
    }
    print_summary("fuzz", &summary);
    if summary.iter().all(|(_, ok, _)| *ok) {
        eprintln!("xtask fuzz: no target failed");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "xtask fuzz: a target failed; its crash is under fuzz/artifacts/<target>/ \
             (minimise it with `cargo +nightly fuzz tmin <target> <file>`, then add it to \
             fuzz/corpus/<target>/)"
        );
        ExitCode::FAILURE
    }
}

fn usage() {
    eprintln!("usage: cargo xtask ci    run every check CI runs (fmt, clippy, tests, docs)");
    eprintln!(
        "       cargo xtask fuzz [--seconds N] [--target T]...\n                          \
         run the cargo-fuzz targets on nightly, N seconds each (default {DEFAULT_FUZZ_SECONDS}); \
         targets: {}",
        FUZZ_TARGETS.join(", ")
    );
    eprintln!(
        "       cargo xtask bench-peers [--profile lan|fast] [--nodes 16,64,..] [--repeat N]\n                          \
         [--scenario S] [--seed S] [--steady-secs S] [--steady-warmup-secs S]\n                          \
         [--report-only]\n                          \
         run rumour and hashicorp/memberlist side by side (needs Go and Debian's\n                          \
         golang-github-hashicorp-memberlist-dev; default: lan 16,64,128,256 and fast 64,128,\n                          \
         3 repetitions), save docs/benchmarks/peers.jsonl, write the table into\n                          \
         docs/benchmarks.md and the plots"
    );
    eprintln!(
        "       cargo xtask interop [plain|encrypted|wrong-key]...\n                          \
         rumour in memberlist wire mode against hashicorp/memberlist (Go) on loopback: joins both\n                          \
         ways, crashes, leaves, user messages, metadata, encryption (needs Go and Debian's\n                          \
         golang-github-hashicorp-memberlist-dev); prints the matrix"
    );
    eprintln!("       cargo xtask plot    redraw docs/benchmarks/peers-*.png from the saved lines");
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => run_ci(),
        Some("fuzz") => run_fuzz(&args[1..]),
        Some("bench-peers") => peers::run(&workspace_root(), &args[1..]),
        Some("plot") => plot::run(&workspace_root()),
        Some("interop") => interop::run(&workspace_root(), &args[1..]),
        _ => {
            usage();
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod fuzz_tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn fuzz_runs_every_target_for_a_minute_by_default() {
        let args = parse_fuzz_args(&[]).unwrap();
        assert_eq!(args.seconds, DEFAULT_FUZZ_SECONDS);
        assert_eq!(args.targets, FUZZ_TARGETS.to_vec());
    }

    #[test]
    fn fuzz_takes_seconds_and_targets() {
        let args = parse_fuzz_args(&strings(&[
            "--seconds",
            "5",
            "--target",
            "node",
            "--target",
            "frame",
        ]))
        .unwrap();
        assert_eq!(
            args,
            FuzzArgs {
                seconds: 5,
                targets: vec!["node", "frame"]
            }
        );
    }

    #[test]
    fn fuzz_refuses_unknown_targets_and_bad_numbers() {
        assert!(parse_fuzz_args(&strings(&["--target", "nope"])).is_err());
        assert!(parse_fuzz_args(&strings(&["--seconds", "0"])).is_err());
        assert!(parse_fuzz_args(&strings(&["--seconds"])).is_err());
        assert!(parse_fuzz_args(&strings(&["--jobs", "2"])).is_err());
    }

    #[test]
    fn every_fuzz_target_has_a_target_file_and_a_corpus() {
        let root = workspace_root();
        for target in FUZZ_TARGETS {
            let file = root.join(format!("fuzz/fuzz_targets/{target}.rs"));
            assert!(file.is_file(), "{} is missing", file.display());
            let corpus = root.join(format!("fuzz/corpus/{target}"));
            assert!(corpus.is_dir(), "{} is missing", corpus.display());
        }
    }
}
