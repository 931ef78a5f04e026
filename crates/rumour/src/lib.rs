//! rumour: cluster membership, failure detection and gossip-replicated state.
//!
//! This crate is the library's front door: a curated list of re-exports from
//! [`rumour_cluster`], nothing of its own. The `rumour` binary (agent, demo, simulator CLI and
//! the HTTP status pages) ships with the default `agent` feature and is not part of this API;
//! `default-features = false` leaves out its dependencies (axum, clap, prometheus-client,
//! tracing-subscriber, serde_json).
//!
//! # Contract
//!
//! - [`Cluster::builder`] gives a [`Builder`]; [`Builder::build`] binds the sockets and spawns
//!   the task that owns the node. The [`Cluster`] handle is cheap to clone: members
//!   ([`MemberInfo`], whose state is a [`swim::State`]), [`NodeEvent`]s, the KV store of
//!   [`Mergeable`] values (`kv_get`, `kv_cas` with its [`CasOutcome`], `kv_delete`, `kv_list`,
//!   `watch_key` with its [`WatchId`]), the hash [`Ring`] (lookups fill a [`ReplicationSet`] for
//!   an [`Operation`] under a [`ReplicationConfig`]), [`ClusterStats`], `leave` and `shutdown`.
//!   Every fallible call returns this crate's [`Error`].
//! - [`Profile`] picks the LAN / WAN / local timings of every layer at once; [`NodeConfig`] is
//!   the full configuration, reachable through [`Builder::configure`].
//! - [`sim`] runs the same sans-IO [`Node`] on virtual time, many at once, from one seed;
//!   [`scenario`] holds the stories `rumour sim` tells.
//! - The layers are modules of their own: [`transport`], [`swim`], [`ring`], [`gossip`], and
//!   [`wire`], what they share.
//!
//! # Example: two nodes on an in-memory network
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rumour::transport::{MemConfig, MemNetwork};
//! use rumour::{Cluster, Profile};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let net = MemNetwork::new(MemConfig::new(1));
//! let a = Cluster::builder("a")
//!     .transport(Arc::new(net.bind("10.0.0.1:7946".parse()?)?))
//!     .profile(Profile::Local)
//!     .ring_instance(true)
//!     .build()
//!     .await?;
//! let b = Cluster::builder("b")
//!     .transport(Arc::new(net.bind("10.0.0.2:7946".parse()?)?))
//!     .profile(Profile::Local)
//!     .ring_instance(true)
//!     .join([a.addr()])
//!     .build()
//!     .await?;
//! while a.num_alive().await? < 2 || a.ring().await?.is_none_or(|ring| ring.len() < 2) {
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! }
//! b.leave(Duration::from_secs(5)).await?;
//! b.shutdown().await;
//! a.shutdown().await;
//! # Ok(()) }
//! ```

pub use rumour_cluster::Builder;
pub use rumour_cluster::gossip::{CasOutcome, WatchId};
pub use rumour_cluster::ring::{Mergeable, Operation, ReplicationConfig, ReplicationSet, Ring};
pub use rumour_cluster::{
    Cluster, ClusterStats, Error, MemberInfo, MemberlistOptions, Node, NodeConfig, NodeEvent,
    Profile, Wire,
};
pub use rumour_cluster::{DnsResolver, JoinSettings, Resolver, Seed, SrvRecord, StaticResolver};

pub use rumour_cluster::{scenario, sim};

pub use rumour_cluster::{gossip, ring, swim, transport, wire};
