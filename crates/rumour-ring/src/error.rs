//! Errors of the ring crate.

/// What went wrong in the ring crate, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value of one type was merged with a value of another.
    #[error("cannot merge a `{found}` value into a `{expected}` value")]
    CodecMismatch {
        /// The codec id of the receiving value.
        expected: &'static str,
        /// The codec id of the value offered.
        found: &'static str,
    },
    /// Bytes could not be decoded.
    #[error("cannot decode {what} at byte {offset}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Byte offset in the input where decoding failed.
        offset: usize,
        /// Why it failed.
        reason: &'static str,
    },
    /// An instance id was refused; the ring is unchanged.
    #[error("invalid instance id {id:?}: {reason}")]
    InvalidInstanceId {
        /// The id offered (cut to its first 64 bytes).
        id: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A lookup was made in a ring where no instance owns a token.
    #[error("the ring has no tokens: no instance can own the key")]
    EmptyRing,
    /// A lookup found fewer healthy replicas than a quorum needs.
    #[error(
        "at least {needed} live replicas required{}, could only find {found}",
        if *.zone_aware { " across different zones" } else { "" }
    )]
    TooFewReplicas {
        /// Healthy replicas a quorum needs.
        needed: usize,
        /// Healthy replicas found.
        found: usize,
        /// Whether the lookup was zone-aware.
        zone_aware: bool,
    },
    /// A replication set over the whole ring would have too many unhealthy instances.
    #[error("too many unhealthy instances in the ring: {unhealthy} unhealthy{}, at most {tolerated} tolerated",
        if *.zone_aware { " zones" } else { " instances" })]
    TooManyUnhealthy {
        /// Unhealthy instances, or zones with an unhealthy instance when zone-aware.
        unhealthy: usize,
        /// How many can be tolerated.
        tolerated: usize,
        /// Whether zones were counted instead of instances.
        zone_aware: bool,
    },
    /// Token generation could not find enough free tokens.
    #[error("cannot generate {wanted} tokens: only {free} free tokens are left in the ring")]
    NotEnoughFreeTokens {
        /// Tokens asked for.
        wanted: usize,
        /// Tokens still free.
        free: u64,
    },
}

impl Error {
    /// A decode error.
    pub(crate) fn decode(what: &'static str, offset: usize, reason: &'static str) -> Error {
        Error::Decode {
            what,
            offset,
            reason,
        }
    }
}
