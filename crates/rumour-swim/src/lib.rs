//! SWIM + Lifeguard cluster membership and failure detection (hashicorp/memberlist's
//! behaviour) as a deterministic, sans-IO state machine.
//!
//! # Contract
//!
//! - [`Swim`] never touches sockets, threads or the OS clock: time comes in as `now`
//!   arguments, randomness from the [`rand_chacha::ChaCha8Rng`] given at construction, so the
//!   same inputs always give the same outputs.
//! - Inputs: one postcard-encoded swim message per [`Swim::handle_packet`] (datagram) or
//!   [`Swim::handle_stream`] call, and [`Swim::handle_timeout`]. Bad bytes return an
//!   [`Error`] and change nothing; no input can panic.
//! - Outputs: [`Swim::poll_transmit`] gives [`Transmit`]s of encoded, unframed messages (a
//!   datagram never exceeds `Config::datagram_budget()` counting [`Config::packed_len`] per
//!   message),
//!   [`Swim::poll_event`] gives [`Event`]s, [`Swim::poll_timeout`] says when to call again.
//!   Output queues are bounded and count their drops in [`Stats`].
//! - Behaviour: memberlist's probe round (round-robin, indirect probes with nacks, reliable
//!   ping, buddy system), Lifeguard (health score, suspicion timeouts that shrink with
//!   independent confirmations), alive / suspect / dead / left with incarnations that never
//!   go backwards, a transmit-limited [`rumour_wire::BroadcastQueue`], full-state exchange on
//!   join and periodically, graceful leave, and partition healing (reconnection to failed
//!   members and re-join of seeds). The formulas are public functions: [`suspicion_min`],
//!   [`suspicion_max`], [`suspicion_timeout`], [`scale_timeout`] (and in `rumour_wire`,
//!   [`rumour_wire::retransmit_limit`] and [`rumour_wire::pullpush_scale`]).
//! - Gossip: the machine keeps no gossip timer. Every `Config::gossip_interval` the embedder
//!   sends [`Swim::fill_broadcasts`] to each of [`Swim::gossip_targets`], so that one tick can
//!   share datagrams between layers.
//! - Hostile networks (`docs/security/swim.md`): accusations are credited only at the
//!   incarnation this node holds and no message moves an incarnation by more than
//!   `Config::max_incarnation_jump`, so no single packet declares a live member dead or pins
//!   an incarnation at the ceiling; members learned second-hand stay *unconfirmed* (off the
//!   probe round, gossip and state exchanges, evicted first from the bounded table, forgotten
//!   after `Config::unconfirmed_timeout`) until they answer a ping; an [`Admission`] hook
//!   vets new members; replies go to the packet's source.
//!
//! # Driving two machines by hand
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use rumour_swim::{Config, NodeName, State, Swim};
//! use rumour_wire::Delivery;
//!
//! let start = Instant::now();
//! let addr = |i: u8| std::net::SocketAddr::from(([10, 0, 0, i], 7946));
//! let mut nodes: Vec<Swim> = (1..=2u8)
//!     .map(|i| {
//!         let name = NodeName::new(format!("node-{i}")).unwrap();
//!         let rng = ChaCha8Rng::seed_from_u64(u64::from(i));
//!         Swim::new(Config::lan(), name, addr(i), &b""[..], rng, start).unwrap()
//!     })
//!     .collect();
//!
//! // node-2 joins through node-1; deliver every transmit at once until nothing is left.
//! nodes[1].join(start, &[addr(1)]).unwrap();
//! let mut now = start;
//! for _ in 0..50 {
//!     for i in 0..nodes.len() {
//!         while let Some(t) = nodes[i].poll_transmit() {
//!             let to = if t.to == addr(1) { 0 } else { 1 };
//!             for message in &t.messages {
//!                 let from = addr(i as u8 + 1);
//!                 let result = match t.delivery {
//!                     Delivery::Stream => nodes[to].handle_stream(now, from, message),
//!                     Delivery::Datagram => nodes[to].handle_packet(now, from, message),
//!                 };
//!                 result.unwrap();
//!             }
//!         }
//!         while nodes[i].poll_event().is_some() {}
//!     }
//!     now += Duration::from_millis(100);
//!     for node in &mut nodes {
//!         if node.poll_timeout().is_some_and(|t| t <= now) {
//!             node.handle_timeout(now);
//!         }
//!     }
//! }
//! for node in &nodes {
//!     assert_eq!(node.num_alive(), 2);
//!     assert!(node.members().all(|m| m.state == State::Alive));
//! }
//! ```

mod awareness;
mod config;
mod error;
mod event;
mod member;
mod membership;
pub mod message;
mod probe;
mod pullpush;
mod reconnect;
mod stats;
mod suspicion;
mod swim;
mod transmit;

pub use awareness::scale_timeout;
pub use config::{Config, ConfigBuilder, MAX_MEMBERS};
pub use error::Error;
pub use event::Event;
pub use member::{Incarnation, MAX_NAME_LEN, Member, NodeName, State};
pub use pullpush::PullPush;
pub use stats::{RTT_BUCKETS, RttHistogram, Stats};
pub use suspicion::{expected_confirmations, suspicion_max, suspicion_min, suspicion_timeout};
pub use swim::{Admission, MemberUpdate, Swim};
pub use transmit::Transmit;
