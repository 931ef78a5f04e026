//! The integration tests of `rumour-cluster`, one binary (one link) for all of them.

mod api;
mod api_sim;
mod discovery;
mod driver;
mod edges;
mod encryption;
mod encryption_sim;
mod forge;
mod fuzz_corpus;
mod hostile;
mod memberlist_kv;
mod node;
mod robustness;
mod scenarios;
mod support;
