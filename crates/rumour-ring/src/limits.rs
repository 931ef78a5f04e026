//! Bounds on what a ring received from the network may hold.
//!
//! A ring is decoded from bytes that anyone able to reach the gossip port can send, and merged
//! into the replica every other part of the node reads. [`RingLimits`] bounds both steps: the
//! codec refuses a value that declares more instances or more tokens per instance than allowed
//! *before* it reserves memory for them, and a merge does not add new instance ids to a ring
//! that already holds `max_instances` entries.

use crate::error::Error;
use crate::mergeable::Codec;
use crate::mergeable::Value;
use crate::ring::Ring;

/// Bounds on the size of a ring; see the module documentation.
///
/// The defaults leave an order of magnitude of room over the largest deployments dskit's ring
/// serves (hundreds of instances, 128 to 512 tokens each) while capping a decoded ring at
/// `10,000 x 4,096 x 4 B = 160 MiB` of tokens whatever the input claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RingLimits {
    /// Entries (instances, `Left` tombstones and heartbeat-only ghosts) a ring may hold (10,000).
    /// A decoded value declaring more is refused; a merge adds no new id past it (counted in
    /// [`Ring::refused_instances`]). Local writes are not bounded.
    pub max_instances: usize,
    /// Tokens one instance may claim (4,096: eight times the 512 that the largest common
    /// configurations use). A decoded value declaring more is refused before its tokens are read.
    pub max_tokens_per_instance: usize,
}

impl RingLimits {
    /// Effectively no limits (for trusted input, such as tests and benchmarks).
    pub const UNBOUNDED: RingLimits = RingLimits {
        max_instances: usize::MAX,
        max_tokens_per_instance: usize::MAX,
    };
}

impl Default for RingLimits {
    fn default() -> Self {
        RingLimits {
            max_instances: 10_000,
            max_tokens_per_instance: 4_096,
        }
    }
}

/// The [`Codec`] of [`Ring`] values with configured [`RingLimits`]: register it with the KV
/// store instead of the default `TypedCodec<Ring>` (which uses [`RingLimits::default`]) to change
/// the limits. Rings it decodes keep the limits for their merges.
#[derive(Clone, Debug, Default)]
pub struct RingCodec {
    limits: RingLimits,
}

impl RingCodec {
    /// A ring codec enforcing `limits`.
    #[must_use]
    pub fn new(limits: RingLimits) -> RingCodec {
        RingCodec { limits }
    }

    /// The limits enforced.
    #[must_use]
    pub fn limits(&self) -> RingLimits {
        self.limits
    }
}

impl Codec for RingCodec {
    fn id(&self) -> &'static str {
        <Ring as crate::Mergeable>::CODEC_ID
    }

    fn decode(&self, bytes: &[u8]) -> Result<Box<dyn Value>, Error> {
        Ok(Box::new(Ring::decode_with(bytes, self.limits)?))
    }
}
