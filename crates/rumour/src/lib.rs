//! rumour: cluster membership, failure detection and gossip-replicated state.
//!
//! This thin crate re-exports [`rumour_cluster`] (the composed `Node`, the simulator and its
//! scenarios) and ships the `rumour` binary. The layers underneath are usable on their own:
//! [`rumour_cluster::transport`], [`rumour_cluster::swim`], [`rumour_cluster::ring`] and
//! [`rumour_cluster::gossip`].

pub use rumour_cluster::*;

pub mod agent;
pub mod demo;
pub mod http;
pub mod keyring_file;
