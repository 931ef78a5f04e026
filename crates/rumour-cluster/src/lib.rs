//! rumour-cluster: SWIM membership, the replicated KV store and the hash ring composed into one
//! sans-IO [`Node`], and the deterministic simulator ([`sim`]) that drives many of them on
//! virtual time.
//!
//! # Contract
//!
//! - A [`Node`] owns a [`Swim`](rumour_swim::Swim), a [`Gossip`](rumour_gossip::Gossip) store
//!   with the [`Ring`](rumour_ring::Ring) codec registered, an optional ring
//!   [`Lifecycler`](rumour_ring::Lifecycler), and a [`FrameCodec`](rumour_transport::frame::FrameCodec).
//!   It frames every packet exactly as the real network does, packs SWIM updates and KV changes
//!   into shared datagrams on one gossip tick, bundles the KV store's pull-push with SWIM's
//!   full-state exchange, and feeds membership changes to the store.
//! - Same vocabulary as the layers: `handle_packet` / `handle_stream` / `handle_timeout` in,
//!   `poll_transmit` / `poll_event` / `poll_timeout` out; time and randomness come in.
//! - [`sim`] runs many nodes with one seed and replays exactly; [`scenario`] tells the stories
//!   `rumour sim` prints.
//!
//! # Example: three nodes in the simulator
//!
//! ```
//! use std::time::Duration;
//! use rumour_cluster::{Node, NodeConfig, Profile};
//! use rumour_cluster::sim::{LinkConfig, NodeId, NodeSeed, Sim, node_addr};
//!
//! let start = std::time::Instant::now();
//! let mut sim = Sim::new(7, start, LinkConfig::default(), Box::new(|seed: NodeSeed| {
//!     let config = NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan);
//!     let mut node = Node::new(config, seed.rng, seed.now).unwrap();
//!     if seed.id != NodeId(0) {
//!         node.join(seed.now, &[node_addr(NodeId(0))]);
//!     }
//!     node
//! }));
//! for _ in 0..3 {
//!     sim.add_node();
//! }
//! sim.run_for(Duration::from_secs(5)).unwrap();
//! assert!(sim.running().all(|(_, node)| node.num_alive() == 3));
//! ```

mod config;
mod driver;
pub mod envelope;
mod error;
mod event;
pub mod fuzz;
pub mod join;
mod memberlist;
mod node;
mod profile;
pub mod scenario;
pub mod sim;
mod transmit;
mod user;

pub use config::{
    DEFAULT_RING_KEY, KV_PULLPUSH_QUIET_PERIODS, MemberlistOptions, NodeConfig, SIM_EPOCH, Wire,
};
pub use driver::{
    Builder, Cluster, ClusterStats, DEFAULT_PORT, DriverStats, KeyInfo, MemberCounts, MemberInfo,
    STATUS_MAX_AGE, Status,
};
pub use driver::{DnsResolver, JoinSettings, Resolver, Seed, SrvRecord, StaticResolver};
pub use driver::{UserMessage, UserMessages};
pub use error::Error;
pub use event::NodeEvent;
pub use memberlist::MemberlistStats;
pub use node::{LeaveMode, Node, NodeStats};
pub use profile::Profile;
pub use transmit::{Delivery, Transmit};
pub use user::UserStats;

pub use rumour_gossip as gossip;
pub use rumour_ring as ring;
pub use rumour_swim as swim;
pub use rumour_transport as transport;
pub use rumour_wire as wire;
