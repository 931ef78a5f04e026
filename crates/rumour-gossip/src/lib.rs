//! Gossip of a replicated key-value store of CRDT values, as a sans-IO state machine.
//!
//! This is the part of rumour that keeps every copy of the KV store in step (dskit's memberlist
//! KV). Keys are strings; values are [`Mergeable`](rumour_ring::Mergeable) CRDTs of registered
//! codecs. Every gossip interval the embedder sends the machine's recent changes
//! ([`Gossip::fill_broadcasts`]) to a few of its [`Gossip::gossip_targets`] (the machine keeps
//! no gossip timer, so one tick can share datagrams with other layers); every
//! `pullpush_interval` the machine reconciles its whole store with one random peer by comparing
//! digests, so two stores already in step exchange a few dozen bytes.
//!
//! # Contract
//!
//! - **Sans-IO.** Time comes in as `now: Instant` arguments, wall time is derived from the
//!   `epoch` given at construction, randomness comes from the `ChaCha8Rng` given at
//!   construction. The same inputs give the same outputs.
//! - **Knows nothing of membership.** It is told which peers are alive
//!   ([`Gossip::handle_peer_up`]) and which died or left ([`Gossip::handle_peer_down`]).
//! - **One vocabulary.** Inputs `handle_packet`, `handle_stream`, `handle_timeout`,
//!   `handle_peer_*`; commands `cas`, `delete`, `watch_*`, `start_pullpush`; outputs
//!   `poll_transmit`, `poll_event`, `poll_timeout`. After any input or command, drain
//!   `poll_transmit` and `poll_event` and read `poll_timeout`.
//! - **Other envelopes.** An embedder that speaks another wire (the memberlist wire mode's
//!   dskit `KeyValuePair`s) decodes the broadcasts it fills ([`KeyChange::decode_broadcast`]),
//!   hands received changes and whole stores in as [`KeyChange`]s
//!   ([`Gossip::handle_change`], [`Gossip::handle_full_state`]: the same limits, counters and
//!   merge as the native messages) and reads the store as changes ([`Gossip::full_state`]).
//! - **No input panics.** Bad bytes return an [`Error`] and are counted in [`Stats`].
//! - **Merges forward only what changed.** A received change is merged and the change computed
//!   here is forwarded, only if it changed something; tombstones older than
//!   `left_ingesters_timeout` are neither applied nor forwarded. A change whose content (entry
//!   names) is empty counts as no change.
//! - **Bounded.** Queues, watch buffers, message sizes and pull-push exchanges are bounded and
//!   every drop is counted. Keys, key lengths, value sizes, list lengths and messages per stream
//!   from the network are checked against [`Config`] before anything is merged.
//! - **No reflection.** Pull-push runs over streams only: a pull-push message in a datagram is
//!   refused unread. Answers go to the stream's sender (the session must name it), join answers
//!   only once that sender is a peer reported alive. Nothing received makes the machine send to
//!   an address a message merely names.
//! - **Clamped clocks.** Timestamps more than `max_clock_skew` ahead of local wall time are
//!   refused (a change's marker) or dropped from the value ([`rumour_ring::Mergeable::receive`]);
//!   tombstones and deleted keys age from the local time they were received.
//!
//! `docs/security/gossip.md` lists every limit, its default, its counter and the threat it
//! closes.
//!
//! # Example
//!
//! Two machines on a virtual clock; a change on one reaches the other through gossip.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rand_chacha::ChaCha8Rng;
//! use rand::SeedableRng;
//! use rumour_gossip::{CasOutcome, Config, Gossip};
//! use rumour_ring::{Mergeable, Timestamp, Tombstones};
//!
//! /// A register that keeps the largest number it has seen.
//! #[derive(Clone, Debug, PartialEq)]
//! struct Max(u64);
//!
//! impl Mergeable for Max {
//!     const CODEC_ID: &'static str = "max";
//!     fn merge(&mut self, other: &Self, _local_cas: Option<Timestamp>) -> Option<Self> {
//!         (other.0 > self.0).then(|| { self.0 = other.0; other.clone() })
//!     }
//!     fn content(&self) -> Vec<String> { vec!["max".into()] }
//!     fn remove_tombstones(&mut self, _: Timestamp) -> Tombstones { Tombstones::default() }
//!     fn encode(&self) -> Vec<u8> { self.0.to_le_bytes().to_vec() }
//!     fn decode(bytes: &[u8]) -> Result<Self, rumour_ring::Error> {
//!         let bytes: [u8; 8] = bytes.try_into().map_err(|_| rumour_ring::Error::Decode {
//!             what: "max", offset: 0, reason: "not 8 bytes",
//!         })?;
//!         Ok(Max(u64::from_le_bytes(bytes)))
//!     }
//! }
//!
//! let start = Instant::now();
//! let epoch = (start, Timestamp(1_700_000_000_000));
//! let (a_addr, b_addr) = ("127.0.0.1:7001".parse()?, "127.0.0.1:7002".parse()?);
//! let mut a = Gossip::new(Config::lan(a_addr), ChaCha8Rng::seed_from_u64(1), epoch);
//! let mut b = Gossip::new(Config::lan(b_addr), ChaCha8Rng::seed_from_u64(2), epoch);
//! b.register::<Max>();
//! a.handle_peer_up(start, b_addr);
//! b.handle_peer_up(start, a_addr);
//!
//! let outcome = a.cas(start, "answer", |_: Option<&Max>| Some(Max(42)))?;
//! assert!(matches!(outcome, CasOutcome::Updated { .. }));
//!
//! // The embedder's gossip tick: queued changes to a few random peers, one datagram each.
//! let now = start + Duration::from_millis(200);
//! for to in a.gossip_targets(now, 3) {
//!     assert_eq!(to, b_addr);
//!     for message in a.fill_broadcasts(2, a.config().datagram_budget()) {
//!         b.handle_packet(now, a_addr, &message)?;
//!     }
//! }
//! assert_eq!(b.get::<Max>("answer"), Some(Max(42)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `docs/protocol-gossip.md` describes the wire format and the digest reconciliation.

mod broadcast;
mod config;
mod error;
mod gossip;
mod history;
mod message;
mod peers;
mod pullpush;
mod recent;
mod stats;
mod store;
mod watch;

pub use broadcast::KvBroadcast;
pub use config::Config;
pub use error::Error;
pub use gossip::{CasOutcome, Gossip, PeerState, Transmit, Versioned};
pub use history::{HistoryRecord, MessageHistory};
pub use message::{KeyChange, KeyDigests, KeyHash, Marker, Message, MessageKind, Session, Wanted};
pub use stats::Stats;
pub use store::{EntryRef, Version};
pub use watch::{Event, WatchId};
