//! Lifeguard's local health score ("awareness"): evidence that the local node is the slow one.
//!
//! The score lives in `[0, awareness_max_multiplier - 1]`: +1 per failed probe (or + the
//! number of missing nacks), +1 per refutation of an accusation against the local node, +1 when
//! the machine notices it was stalled, -1 per successful probe. The probe interval is scaled by
//! `score + 1`, so a struggling node probes less often and gives slow answers more time.

use std::time::Duration;

/// `base * (score + 1)`: a timeout scaled by the health score (memberlist's `ScaleTimeout`).
#[must_use]
pub fn scale_timeout(base: Duration, score: u32) -> Duration {
    base.saturating_mul(score.saturating_add(1))
}

/// The local health score.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Awareness {
    max: u32,
    score: u32,
}

impl Awareness {
    /// A healthy score (0) capped at `max_multiplier - 1`.
    pub(crate) fn new(max_multiplier: u32) -> Awareness {
        Awareness {
            max: max_multiplier.max(1),
            score: 0,
        }
    }

    /// Adds `delta`, clamped to the range; returns the new score if it changed.
    pub(crate) fn apply(&mut self, delta: i64) -> Option<u32> {
        let top = i64::from(self.max - 1);
        let next = (i64::from(self.score) + delta).clamp(0, top) as u32;
        (next != self.score).then(|| {
            self.score = next;
            next
        })
    }

    /// The current score.
    pub(crate) fn score(&self) -> u32 {
        self.score
    }

    /// `base` scaled by the current score.
    pub(crate) fn scale(&self, base: Duration) -> Duration {
        scale_timeout(base, self.score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// memberlist `TestAwareness`: (delta, score after, scaled 1 s timeout).
    #[test]
    fn score_steps_match_memberlist_table() {
        let table = [
            (0, 0, 1),
            (-1, 0, 1),
            (-10, 0, 1),
            (1, 1, 2),
            (-1, 0, 1),
            (10, 7, 8),
            (-1, 6, 7),
            (-1, 5, 6),
            (-1, 4, 5),
            (-1, 3, 4),
            (-1, 2, 3),
            (-1, 1, 2),
            (-1, 0, 1),
            (-1, 0, 1),
        ];
        let mut awareness = Awareness::new(8);
        for (delta, score, scale) in table {
            awareness.apply(delta);
            assert_eq!(awareness.score(), score);
            assert_eq!(
                awareness.scale(Duration::from_secs(1)),
                Duration::from_secs(scale)
            );
        }
    }

    #[test]
    fn apply_reports_only_changes() {
        let mut awareness = Awareness::new(2);
        assert_eq!(awareness.apply(-1), None);
        assert_eq!(awareness.apply(1), Some(1));
        assert_eq!(awareness.apply(1), None, "capped at max - 1");
    }
}
