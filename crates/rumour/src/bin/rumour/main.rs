//! The `rumour` binary: `rumour agent` runs one node, `rumour demo` a local cluster in one
//! process (both with their HTTP status pages), and `rumour sim` the simulator's scenarios.

mod agent;
mod demo;
mod error;
mod http;
mod keyring_file;
mod sim;

use std::future::Future;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use rumour::Profile;

use crate::error::Error;

/// rumour: cluster membership, failure detection and gossip-replicated state.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run protocol scenarios in the deterministic simulator, on virtual time.
    Sim(sim::SimArgs),
    /// A local cluster in one process, with its status page.
    Demo(demo::DemoArgs),
    /// One node and its status page, until SIGINT or SIGTERM.
    Agent(agent::AgentArgs),
}

/// The `--profile` flag of every subcommand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ProfileFlag {
    /// A data-centre network (memberlist's `DefaultLANConfig`).
    Lan,
    /// Across regions (memberlist's `DefaultWANConfig`).
    Wan,
    /// One host (memberlist's `DefaultLocalConfig`).
    Local,
}

impl From<ProfileFlag> for Profile {
    fn from(flag: ProfileFlag) -> Profile {
        match flag {
            ProfileFlag::Lan => Profile::Lan,
            ProfileFlag::Wan => Profile::Wan,
            ProfileFlag::Local => Profile::Local,
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs `task` (subcommand `name`) on a fresh tokio runtime with logging; an error is printed
/// with its causes and fails the process.
fn run_async(name: &str, task: impl Future<Output = Result<(), Error>>) -> ExitCode {
    init_logging();
    let result = tokio::runtime::Runtime::new()
        .map_err(Error::Runtime)
        .and_then(|runtime| runtime.block_on(task));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rumour {name}: {}", error::report(&error));
            ExitCode::FAILURE
        }
    }
}

/// The binary's allocator: the simulator and a node under load allocate many small, short-lived
/// buffers (decoded changes, queued messages), which mimalloc serves faster than glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim::run(&args),
        Command::Demo(args) => run_async("demo", demo::run(args)),
        Command::Agent(args) => run_async("agent", agent::run(args)),
    }
}
