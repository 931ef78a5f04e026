//! The integration tests of `rumour-cluster`, one binary (one link) for all of them.

mod driver;
mod node;
mod robustness;
mod scenarios;
