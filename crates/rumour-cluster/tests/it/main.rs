//! The integration tests of `rumour-cluster`, one binary (one link) for all of them.

mod driver;
mod fuzz_corpus;
mod node;
mod robustness;
mod scenarios;
