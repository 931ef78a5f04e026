//! Lifeguard suspicion timeouts: start long, shrink with each independent confirmation.
//!
//! A suspected member is declared dead when its timer expires. The timer starts at `max`
//! (at `min` when no confirmations are expected) and each new independent accuser `c` moves it
//! to `max(min, max - ln(c + 1) / ln(k + 1) * (max - min))` (memberlist's `suspicion.go`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::member::NodeName;

/// `suspicion_mult * max(1, log10(max(1, n))) * probe_interval`: the shortest suspicion
/// timeout in a cluster of `n` members.
#[must_use]
pub fn suspicion_min(suspicion_mult: u32, n: usize, probe_interval: Duration) -> Duration {
    let scale = (n.max(1) as f64).log10().max(1.0);
    probe_interval.mul_f64(f64::from(suspicion_mult) * scale)
}

/// `suspicion_max_timeout_mult * min`: the longest suspicion timeout.
#[must_use]
pub fn suspicion_max(suspicion_max_timeout_mult: u32, min: Duration) -> Duration {
    min.saturating_mul(suspicion_max_timeout_mult)
}

/// Independent confirmations expected before the timeout reaches `min`: `suspicion_mult - 2`,
/// or 0 when the cluster has too few other members to provide them (`n - 2 < k`).
#[must_use]
pub fn expected_confirmations(suspicion_mult: u32, n: usize) -> u32 {
    let k = suspicion_mult.saturating_sub(2);
    if n.saturating_sub(2) < k as usize {
        0
    } else {
        k
    }
}

/// Total suspicion timeout (from the start of the suspicion) after `confirmations` independent
/// confirmations out of `k` expected.
#[must_use]
pub fn suspicion_timeout(confirmations: u32, k: u32, min: Duration, max: Duration) -> Duration {
    if k == 0 {
        return min;
    }
    let fraction = f64::from(confirmations + 1).ln() / f64::from(k + 1).ln();
    let span = max.saturating_sub(min).as_secs_f64();
    let raw = max.as_secs_f64() - fraction * span;
    Duration::from_secs_f64(raw.max(0.0)).max(min)
}

/// The suspicion timer of one member.
#[derive(Clone, Debug)]
pub(crate) struct Suspicion {
    started: Instant,
    k: u32,
    min: Duration,
    max: Duration,
    /// The original accuser and every confirmer so far.
    accusers: BTreeSet<NodeName>,
    confirmations: u32,
    deadline: Instant,
    /// Whether the deadline was already pushed back once because the machine was stalled.
    pub(crate) postponed: bool,
    /// Whether the local node already probed the suspect out of turn (see
    /// `Membership::stale_suspect`).
    pub(crate) rechecked: bool,
}

impl Suspicion {
    /// When the suspicion started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Starts a timer accused by `from` in a cluster of `n` members.
    pub(crate) fn new(
        now: Instant,
        from: NodeName,
        k: u32,
        min: Duration,
        max: Duration,
    ) -> Suspicion {
        let timeout = if k == 0 { min } else { max };
        Suspicion {
            started: now,
            k,
            min,
            max,
            accusers: BTreeSet::from([from]),
            confirmations: 0,
            deadline: now + timeout,
            postponed: false,
            rechecked: false,
        }
    }

    /// Records an accusation by `from`. Returns true when it is a new independent confirmation
    /// (a new accuser, while fewer than `k` arrived), which also shortens the timer.
    pub(crate) fn confirm(&mut self, from: &NodeName) -> bool {
        if self.confirmations >= self.k || self.accusers.contains(from) {
            return false;
        }
        self.accusers.insert(from.clone());
        self.confirmations += 1;
        let timeout = suspicion_timeout(self.confirmations, self.k, self.min, self.max);
        self.deadline = self.started + timeout;
        true
    }

    /// When the member is declared dead.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (used once when the machine was stalled).
    pub(crate) fn postpone_to(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.postponed = true;
    }

    /// Confirmations received so far.
    pub(crate) fn confirmations(&self) -> u32 {
        self.confirmations
    }

    /// Confirmations expected.
    pub(crate) fn expected(&self) -> u32 {
        self.k
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// memberlist `TestSuspicion_remainingSuspicionTime`: (confirmations, k, elapsed, min, max,
    /// expected remaining, negative = already expired).
    #[test]
    fn remaining_time_matches_memberlist_table() {
        let table: [(u32, u32, u64, i64); 6] = [
            (0, 3, 0, 30_000),
            (1, 3, 2_000, 14_000),
            (2, 3, 3_000, 4_810),
            (3, 3, 4_000, -2_000),
            (4, 3, 5_000, -3_000),
            (5, 3, 10_000, -8_000),
        ];
        for (c, k, elapsed, expected) in table {
            let total = suspicion_timeout(c.min(k), k, ms(2_000), ms(30_000));
            let remaining = total.as_millis() as i64 - elapsed as i64;
            assert!(
                (remaining - expected).abs() <= 1,
                "c={c}: {remaining} vs {expected}"
            );
        }
    }

    /// memberlist `TestMemberList_ProbeNode_Suspect_Dogpile`: suspicion_mult 5, max mult 2,
    /// probe interval 100 ms; (members, confirmations, expected timeout).
    #[test]
    fn dogpile_table_matches_memberlist() {
        let table = [
            (2, 0, 500),
            (3, 0, 500),
            (4, 0, 500),
            (5, 0, 1_000),
            (6, 0, 1_000),
            (6, 1, 750),
            (6, 2, 604),
            (6, 3, 500),
            (6, 4, 500),
        ];
        for (n, c, expected) in table {
            let min = suspicion_min(5, n, ms(100));
            let max = suspicion_max(2, min);
            let k = expected_confirmations(5, n);
            let timeout = suspicion_timeout(c.min(k), k, min, max).as_millis() as i64;
            assert!((timeout - expected).abs() <= 1, "n={n} c={c}: {timeout}");
        }
    }

    /// The reference notes' LAN table: (n, k, min s, max s, after one confirmation in ms).
    #[test]
    fn lan_bounds_match_reference_table() {
        let table = [
            (3, 0, 4, 24, None),
            (5, 2, 4, 24, Some(11_381)),
            (10, 2, 4, 24, Some(11_381)),
            (100, 2, 8, 48, Some(22_762)),
            (1_000, 2, 12, 72, Some(34_143)),
            (10_000, 2, 16, 96, None),
        ];
        for (n, k, min_s, max_s, after_one) in table {
            let min = suspicion_min(4, n, Duration::from_secs(1));
            let max = suspicion_max(6, min);
            assert_eq!(expected_confirmations(4, n), k, "n={n}");
            assert_eq!(min, Duration::from_secs(min_s), "n={n}");
            assert_eq!(max, Duration::from_secs(max_s), "n={n}");
            if let Some(ms_expected) = after_one {
                let t = suspicion_timeout(1, k, min, max).as_millis() as i64;
                assert!((t - ms_expected).abs() <= 1, "n={n}: {t}");
            }
            assert_eq!(suspicion_timeout(k, k, min, max), min);
        }
    }

    #[test]
    fn only_new_accusers_confirm_and_only_up_to_k() {
        let now = Instant::now();
        let name = |s: &str| NodeName::new(s).unwrap();
        let mut s = Suspicion::new(now, name("a"), 2, ms(4_000), ms(24_000));
        assert_eq!(s.deadline(), now + ms(24_000));
        assert!(
            !s.confirm(&name("a")),
            "the original accuser is not a confirmation"
        );
        assert!(s.confirm(&name("b")));
        assert!(
            !s.confirm(&name("b")),
            "a repeated accuser is not a confirmation"
        );
        assert!(s.deadline() < now + ms(24_000));
        assert!(s.confirm(&name("c")));
        assert_eq!(s.deadline(), now + ms(4_000));
        assert!(!s.confirm(&name("d")), "no confirmations past k");
        assert_eq!(s.confirmations(), 2);
    }
}
