//! Full-state exchange ("pull-push"): the join handshake and periodic anti-entropy.
//!
//! The initiator sends its whole member table over a stream; the receiver answers with its own
//! table and both merge what they receive. In a merge, a remote Dead counts as Suspect (the
//! local node runs its own suspicion rather than trusting a second-hand death), a remote Left
//! as Left, Alive and Suspect as themselves. The periodic exchange goes to one random alive
//! member every `pullpush_interval`, scaled up above 32 members.

use std::time::Duration;

/// Marks a [`Transmit`](crate::Transmit) as a full-state exchange, so that the embedder can
/// bundle its own state (the KV store) into the same stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPush {
    /// The first message of an exchange; `join` is true for joins, seed re-joins and
    /// reconnection attempts, false for periodic anti-entropy.
    Request {
        /// Whether this exchange is a join.
        join: bool,
    },
    /// The answer to a request.
    Reply,
}

/// Clusters up to this size exchange state every `pullpush_interval`.
pub const PULLPUSH_SCALE_THRESHOLD: usize = 32;

/// memberlist's `pushPullScale`: `interval` for up to 32 members, otherwise
/// `interval * (ceil(log2(n) - log2(32)) + 1)`, so the cluster-wide exchange rate grows only
/// logarithmically.
#[must_use]
pub fn pullpush_scale(interval: Duration, n: usize) -> Duration {
    if n <= PULLPUSH_SCALE_THRESHOLD {
        return interval;
    }
    // ceil(log2(n)) in integers: the bit length of n - 1.
    let ceil_log2 = usize::BITS - (n - 1).leading_zeros();
    let multiplier = ceil_log2 - PULLPUSH_SCALE_THRESHOLD.trailing_zeros() + 1;
    interval.saturating_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference notes' LAN table (30 s base).
    #[test]
    fn scaling_matches_memberlist_table() {
        let table = [
            (1, 30),
            (32, 30),
            (33, 60),
            (64, 60),
            (65, 90),
            (128, 90),
            (129, 120),
            (256, 120),
            (1_000, 180),
            (2_000, 210),
            (10_000, 300),
        ];
        for (n, secs) in table {
            assert_eq!(
                pullpush_scale(Duration::from_secs(30), n),
                Duration::from_secs(secs),
                "n = {n}"
            );
        }
    }
}
