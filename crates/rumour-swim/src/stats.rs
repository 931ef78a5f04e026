//! Counters of a [`Swim`](crate::Swim) machine, for metrics.

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
}
