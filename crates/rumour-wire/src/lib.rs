//! What every rumour layer shares, written once: LEB128 [`varint`]s, the [`StableHasher`] for
//! digests, the drop-oldest [`BoundedQueue`] for a machine's outputs, the transmit-limited
//! [`BroadcastQueue`] that piggybacks updates on datagrams, memberlist's scaling formulas
//! ([`retransmit_limit`], [`pullpush_scale`]), [`Traffic`] counters, the [`Delivery`] of a
//! message, and the process-wide [`Interner`] that shares names and ring descriptions.
//!
//! Contract: pure code. No I/O, no clock, no dependency on another rumour crate; the only
//! randomness is the interner's hash key, which changes no output; every decoder here rejects
//! malformed input with an error and never panics.
//!
//! ```
//! use rumour_wire::{BoundedQueue, varint};
//!
//! let mut out = Vec::new();
//! varint::put(&mut out, 300);
//! assert_eq!(varint::get(&out), Ok((300, 2)));
//! assert!(varint::get(&[0x80, 0x00]).is_err()); // over-long: every value has one encoding
//!
//! let mut events = BoundedQueue::new(2);
//! for event in ["joined a", "joined b", "joined c"] {
//!     events.push(event);
//! }
//! assert_eq!(events.dropped(), 1); // the oldest went, and was counted
//! assert_eq!(events.pop(), Some("joined b"));
//! ```

mod addr;
mod bounded;
mod broadcast;
mod error;
mod hash;
mod intern;
mod scale;
mod traffic;
pub mod varint;

pub use addr::PackedAddr;
pub use bounded::BoundedQueue;
pub use broadcast::{Broadcast, BroadcastQueue, QueueStats};
pub use error::VarintError;
pub use hash::{StableHasher, mix64, stable_hash};
pub use intern::{Interned, Interner};
pub use scale::{PULLPUSH_SCALE_THRESHOLD, pullpush_scale, retransmit_limit};
pub use traffic::{CountedKind, MAX_KINDS, Traffic, TrafficByKind};

/// How a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Delivery {
    /// Best effort: may be lost, duplicated or reordered (UDP, or TCP in TCP-only mode).
    Datagram,
    /// Whole, in order per sender, or not at all (a TCP stream).
    Stream,
}
