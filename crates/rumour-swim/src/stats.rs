//! Counters of a [`Swim`](crate::Swim) machine, for metrics.

use std::time::Duration;

use rumour_wire::TrafficByKind;

use crate::message::MessageKind;

/// Counters since the machine was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages produced, by type.
    pub sent: TrafficByKind<MessageKind>,
    /// Messages received and decoded, by type.
    pub received: TrafficByKind<MessageKind>,
    /// Inputs rejected as undecodable or invalid.
    pub decode_errors: u64,
    /// Probes started.
    pub probes: u64,
    /// Probes that got no ack at all.
    pub failed_probes: u64,
    /// Probes answered only over the reliable channel (datagrams may be blocked).
    pub reliable_only_acks: u64,
    /// Indirect ping requests sent.
    pub indirect_probes: u64,
    /// Nacks received.
    pub nacks_received: u64,
    /// Indirect pings handled for other members.
    pub relayed_probes: u64,
    /// Indirect pings refused because too many were in progress.
    pub relays_dropped: u64,
    /// Members that became suspect.
    pub suspicions: u64,
    /// Independent confirmations of suspicions.
    pub confirmations: u64,
    /// Suspicions that expired before all expected confirmations arrived.
    pub degraded_suspicions: u64,
    /// Members declared dead by this node's own suspicion timer.
    pub deaths_declared: u64,
    /// Refutations of accusations against the local node.
    pub refutations: u64,
    /// Accusations sent directly to a member that announced itself with a stale incarnation.
    pub accusations_sent: u64,
    /// Address conflicts refused.
    pub conflicts: u64,
    /// Full-state exchanges started (joins, periodic, re-joins, reconnections).
    pub pullpushes: u64,
    /// Periodic exchanges opened by a peer whose member-table digest equalled this node's (no
    /// full state sent).
    pub digests_matched: u64,
    /// Attempts to reach a reaped failed member (partition healing).
    pub reconnect_attempts: u64,
    /// Members removed from the reconnect list because it was full.
    pub reconnect_evicted: u64,
    /// Times the machine noticed its timers ran late (local overload) and gave slow answers
    /// more time.
    pub stalls: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Transmits dropped because the transmit queue was full.
    pub transmits_dropped: u64,
    /// Broadcasts dropped because the broadcast queue was full.
    pub broadcasts_dropped: u64,
    /// Broadcasts queued now.
    pub queue_depth: u64,
    /// Events queued now.
    pub event_queue_depth: u64,
    /// Claims whose incarnation was beyond what this node could credit and was clamped: alive
    /// jumps over `max_incarnation_jump`, accusations above the stored incarnation (a death
    /// declared there by a third party becomes a suspicion).
    pub incarnations_clamped: u64,
    /// Alives about a member reaped not long ago, at or below its last incarnation, refused
    /// (it is sent its accusation instead; a restarted member refutes it and comes back).
    pub stale_alives_after_reap: u64,
    /// New members refused because the table was full of confirmed members.
    pub members_refused: u64,
    /// Never-confirmed members evicted to make room for a new one.
    pub members_evicted: u64,
    /// Never-confirmed members forgotten after `unconfirmed_timeout`.
    pub unconfirmed_expired: u64,
    /// Members confirmed (they answered a ping of this node).
    pub members_confirmed: u64,
    /// Verification pings sent to never-confirmed members.
    pub verifications: u64,
    /// Alive claims refused by the admission hook.
    pub admission_refused: u64,
    /// Full-state exchanges refused for carrying more than `max_state_members` members.
    pub states_refused: u64,
    /// Indirect pings refused because the target is not a member at the address named.
    pub relays_refused: u64,
    /// Stream replies not sent because the address named is neither the stream's peer host
    /// nor a confirmed member's address.
    pub replies_refused: u64,
    /// Message bytes in the transmit queue now.
    pub transmit_queue_bytes: u64,
    /// Round-trip times of answered direct probes (memberlist's ping delegate).
    pub rtt: RttHistogram,
}

/// Upper bounds of the [`RttHistogram`] buckets, from 100 µs to 2.5 s (a last bucket counts
/// everything above).
pub const RTT_BUCKETS: [Duration; 15] = [
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(1_500),
    Duration::from_millis(2_500),
];

/// A histogram of round-trip times, in fixed buckets ([`RTT_BUCKETS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttHistogram {
    /// Samples per bucket (not cumulative): `counts[i]` holds samples at most
    /// `RTT_BUCKETS[i]` and above the bucket before; the last holds those above every bound.
    pub counts: [u64; RTT_BUCKETS.len() + 1],
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples, in microseconds.
    pub sum_micros: u64,
}

impl RttHistogram {
    /// Counts one sample.
    pub fn observe(&mut self, rtt: Duration) {
        let bucket = RTT_BUCKETS
            .iter()
            .position(|bound| rtt <= *bound)
            .unwrap_or(RTT_BUCKETS.len());
        self.counts[bucket] += 1;
        self.count += 1;
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// The sum of the samples.
    #[must_use]
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_micros)
    }

    /// `(upper bound, samples at most the bound)` for every bound, cumulative as Prometheus
    /// buckets are (the `+Inf` bucket is [`RttHistogram::count`]).
    pub fn cumulative(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        RTT_BUCKETS
            .iter()
            .zip(self.counts.iter())
            .scan(0u64, |total, (bound, count)| {
                *total += count;
                Some((*bound, *total))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_whose_bound_covers_them() {
        let mut h = RttHistogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_millis(25));
        h.observe(Duration::from_secs(9));
        assert_eq!(h.count, 4);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[7], 2, "20 ms and 25 ms are both at most 25 ms");
        assert_eq!(h.counts[RTT_BUCKETS.len()], 1, "9 s is above every bound");
        let cumulative: Vec<u64> = h.cumulative().map(|(_, n)| n).collect();
        assert_eq!(cumulative[6], 1);
        assert_eq!(cumulative[7], 3);
        assert_eq!(
            *cumulative.last().unwrap(),
            3,
            "the +Inf bucket is the count"
        );
        assert_eq!(
            h.sum(),
            Duration::from_micros(50 + 20_000 + 25_000 + 9_000_000)
        );
    }
}
