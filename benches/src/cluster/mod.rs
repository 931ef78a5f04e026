//! The cluster benchmark: N rumour nodes in one process, each on a loopback IP of its own
//! (`127.1.x.y`, or all on 127.0.0.1 with `--shared-ip`) with its own UDP and TCP port, measured on real sockets (see `docs/benchmarks.md`).
//!
//! - [`harness`] starts, converges and stops a local cluster with one configuration.
//! - [`scenario`] times one repetition of `join`, `detect`, `broadcast` or `steady`.
//! - [`sim`] runs the same scenarios on the deterministic simulator (`--sim`).
//! - [`report`] summarises repetitions into the JSON line the benchmark prints.

pub mod harness;
pub mod report;
pub mod scenario;
pub mod sim;

use std::time::Duration;

/// What can stop a benchmark run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A node refused a command or could not start.
    #[error("node: {0}")]
    Node(#[from] rumour_cluster::Error),
    /// A node stopped while the benchmark was still waiting on it.
    #[error("node {node} stopped while the benchmark waited on it")]
    Stopped {
        /// The node's name.
        node: String,
    },
    /// The simulator stopped a run (an invariant failed, or a livelock).
    #[error("simulation: {0}")]
    Sim(Box<rumour_cluster::sim::SimError>),
    /// The scenario has no simulated version in the benchmark.
    #[error("the {0} scenario is not simulated by the benchmark (see `rumour sim`)")]
    NotSimulated(&'static str),
    /// A condition did not hold within the benchmark's (generous) deadline.
    #[error("timed out after {after:?} waiting until {what}")]
    Timeout {
        /// What the benchmark waited for.
        what: String,
        /// How long it waited.
        after: Duration,
    },
}
