//! How dissemination scales with the cluster's size: memberlist's retransmit limit and pull-push
//! interval scaling, shared by SWIM's membership updates and the KV store's changes.

use std::time::Duration;

/// `retransmit_mult * ceil(log10(n + 1))`: how many times a broadcast is sent in a cluster of `n`
/// members (memberlist's `retransmitLimit`).
#[must_use]
pub fn retransmit_limit(retransmit_mult: u32, n: usize) -> u32 {
    // ceil(log10(n + 1)) is the number of decimal digits of n (and 0 for n = 0), computed
    // exactly in integers rather than through floating point.
    let mut digits = 0;
    let mut rest = n;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    retransmit_mult.saturating_mul(digits)
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

    #[test]
    fn retransmit_limit_matches_memberlist_table() {
        let table = [
            (0, 0),
            (1, 4),
            (3, 4),
            (9, 4),
            (10, 8),
            (99, 8),
            (100, 12),
            (1000, 16),
        ];
        for (n, limit) in table {
            assert_eq!(retransmit_limit(4, n), limit, "n = {n}");
        }
    }

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
