//! The integration tests of `rumour-cluster`, one binary (one link) for all of them.

mod driver;
mod edges;
mod encryption;
mod encryption_sim;
mod forge;
mod hostile;
mod node;
mod robustness;
mod scenarios;
