//! Configuration: memberlist's LAN / WAN / local profiles, checked when built.
//!
//! A [`Config`] is read-only and always valid. Change one through a [`ConfigBuilder`]:
//!
//! ```
//! use std::time::Duration;
//! use rumour_swim::Config;
//!
//! let config = Config::lan()
//!     .to_builder()
//!     .probe_interval(Duration::from_millis(500))
//!     .probe_timeout(Duration::from_millis(200))
//!     .build()?;
//! assert_eq!(config.indirect_checks(), 3);
//!
//! // A probe timeout as long as the probe interval leaves no time for indirect probes.
//! let bad = Config::lan().to_builder().probe_timeout(Duration::from_secs(1)).build();
//! assert!(bad.is_err());
//! # Ok::<(), rumour_swim::Error>(())
//! ```

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use crate::error::Error;
use rumour_wire::varint;

use crate::message;

/// The largest `max_members` the member table takes: 2^24 - 1 (its name index keeps a slot in
/// 24 bits).
pub const MAX_MEMBERS: usize = (1 << 24) - 1;

macro_rules! config_fields {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty, )*) => {
        /// Settings of a [`Swim`](crate::Swim) machine. Build one from a profile
        /// ([`Config::lan`], [`Config::wan`], [`Config::local`]) and adjust it through
        /// [`Config::to_builder`]; every field has a getter of the same name.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Config {
            $( $field: $ty, )*
        }

        impl Config {
            $( $(#[$doc])* #[must_use] pub fn $field(&self) -> $ty { self.$field } )*
        }

        /// Changes a [`Config`]; [`ConfigBuilder::build`] checks the result.
        #[derive(Clone, Debug)]
        #[must_use]
        pub struct ConfigBuilder {
            config: Config,
        }

        impl ConfigBuilder {
            $( $(#[$doc])* pub fn $field(mut self, value: $ty) -> Self {
                self.config.$field = value;
                self
            } )*
        }
    };
}

config_fields! {
    /// Base period of the failure detector: one member is probed per period. Scaled by the
    /// local health score (Lifeguard).
    probe_interval: Duration,
    /// How long to wait for a direct ack before asking other members (roughly the 99th
    /// percentile round trip). Not scaled by health.
    probe_timeout: Duration,
    /// How many members are asked to probe a silent target indirectly (0 = no indirect probes).
    indirect_checks: u32,
    /// Whether a reliable (stream) ping runs beside the indirect probes.
    reliable_ping: bool,
    /// Retransmit limit factor: a broadcast is sent `retransmit_mult * ceil(log10(n + 1))` times.
    retransmit_mult: NonZeroU32,
    /// Suspicion timeout factor: `min = suspicion_mult * max(1, log10(n)) * probe_interval`.
    suspicion_mult: NonZeroU32,
    /// Upper bound of the suspicion timeout as a multiple of its minimum (Lifeguard).
    suspicion_max_timeout_mult: NonZeroU32,
    /// Health score cap plus one: the probe interval is scaled by up to this factor.
    awareness_max_multiplier: NonZeroU32,
    /// Period of the embedder's gossip tick: every period it sends
    /// [`Swim::fill_broadcasts`](crate::Swim::fill_broadcasts) to
    /// [`Swim::gossip_targets`](crate::Swim::gossip_targets). The machine keeps no gossip timer
    /// of its own, so that an embedder composing several layers ticks them all at once.
    gossip_interval: Duration,
    /// How many random members each gossip tick sends to.
    gossip_nodes: NonZeroUsize,
    /// How long dead and left members are kept (and still gossiped to) before they are reaped.
    gossip_to_the_dead_time: Duration,
    /// Base period of the full-state exchange with one random member (scaled up above 32
    /// members); `None` turns periodic exchanges off.
    pullpush_interval: Option<Duration>,
    /// Whether the periodic exchange opens with a digest of the member table (a few dozen
    /// bytes) and sends full state only when the peer's table differs; `false` sends full
    /// state every time (memberlist's push/pull). Joins, re-joins and reconnections always
    /// send full state.
    pullpush_digest: bool,
    /// Period (jittered) of the re-join of the seeds given to `join`; `None` turns it off.
    rejoin_interval: Option<Duration>,
    /// Period (jittered) of the attempts to reach one recently failed, already reaped member,
    /// so that the halves of a split cluster find each other again; `None` turns it off.
    reconnect_interval: Option<Duration>,
    /// How long a reaped failed member stays on the reconnect list.
    reconnect_timeout: Duration,
    /// How many reaped failed members the reconnect list holds (the oldest are evicted).
    reconnect_capacity: usize,
    /// After how long dead a member's name may be claimed from another address; `None` = never.
    dead_node_reclaim_time: Option<Duration>,
    /// Deadline for a whole stream exchange (for the driver; the machine does no I/O).
    stream_timeout: Duration,
    /// Bytes of one datagram, transport frame included.
    packet_budget: NonZeroUsize,
    /// Bytes of each datagram that the transport frame takes.
    frame_overhead: usize,
    /// Bytes the embedder writes in front of every message inside a datagram, besides its
    /// length prefix (a channel tag, say); counted in every message's cost.
    message_overhead: usize,
    /// Largest node metadata accepted, in bytes.
    meta_max_size: usize,
    /// Most broadcasts queued at once; past it the most-sent one is dropped and counted.
    broadcast_queue_capacity: NonZeroUsize,
    /// Most events queued at once; past it the oldest is dropped and counted.
    event_queue_capacity: NonZeroUsize,
    /// Most transmits queued at once; past it the oldest is dropped and counted.
    transmit_queue_capacity: NonZeroUsize,
    /// How many members a leaving node sends its goodbye to directly.
    leave_fanout: NonZeroUsize,
    /// Most members the table holds, the local node and unreaped dead ones included. A new
    /// member past it evicts the oldest never-confirmed entry, or is refused (counted) when
    /// every entry is confirmed. At most [`MAX_MEMBERS`].
    max_members: NonZeroUsize,
    /// Most members one full-state exchange may carry; a larger one is refused whole.
    max_state_members: NonZeroUsize,
    /// Most a single alive raises a stored incarnation, and most a single accusation raises
    /// the local one: no message drives an incarnation towards `u32::MAX`.
    max_incarnation_jump: NonZeroU32,
    /// How long a member that never answered a ping of this node stays in the table.
    unconfirmed_timeout: Duration,
    /// Never-confirmed members pinged each probe period to confirm them (0 = none).
    verifications_per_probe: usize,
    /// Most payload bytes the broadcast queue holds; past it the most-sent are dropped.
    broadcast_queue_bytes: NonZeroUsize,
    /// Most message bytes the transmit queue holds; past it the oldest are dropped.
    transmit_queue_bytes: NonZeroUsize,
}

const fn nz32(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(v) => v,
        None => panic!("zero"),
    }
}

const fn nz(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(v) => v,
        None => panic!("zero"),
    }
}

impl Config {
    /// memberlist's `DefaultLANConfig`: 1 s probes, 500 ms probe timeout, 200 ms gossip to 3
    /// members, 30 s pull-push.
    #[must_use]
    pub fn lan() -> Config {
        Config {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            reliable_ping: true,
            retransmit_mult: nz32(4),
            suspicion_mult: nz32(4),
            suspicion_max_timeout_mult: nz32(6),
            awareness_max_multiplier: nz32(8),
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: nz(3),
            gossip_to_the_dead_time: Duration::from_secs(30),
            pullpush_interval: Some(Duration::from_secs(30)),
            pullpush_digest: true,
            rejoin_interval: Some(Duration::from_secs(120)),
            reconnect_interval: Some(Duration::from_secs(30)),
            reconnect_timeout: Duration::from_secs(6 * 3600),
            reconnect_capacity: 64,
            dead_node_reclaim_time: None,
            stream_timeout: Duration::from_secs(10),
            packet_budget: nz(1400),
            frame_overhead: 16,
            message_overhead: 0,
            meta_max_size: 512,
            broadcast_queue_capacity: nz(4096),
            event_queue_capacity: nz(1024),
            transmit_queue_capacity: nz(4096),
            leave_fanout: nz(8),
            max_members: nz(16_384),
            max_state_members: nz(16_384),
            max_incarnation_jump: nz32(256),
            unconfirmed_timeout: Duration::from_secs(60),
            verifications_per_probe: 64,
            broadcast_queue_bytes: nz(2 << 20),
            transmit_queue_bytes: nz(32 << 20),
        }
    }

    /// memberlist's `DefaultWANConfig`: 5 s probes, 3 s probe timeout, suspicion factor 6,
    /// 500 ms gossip to 4 members, 60 s pull-push and gossip-to-the-dead time.
    #[must_use]
    pub fn wan() -> Config {
        Config {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: nz32(6),
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: nz(4),
            gossip_to_the_dead_time: Duration::from_secs(60),
            pullpush_interval: Some(Duration::from_secs(60)),
            pullpush_digest: true,
            rejoin_interval: Some(Duration::from_secs(300)),
            reconnect_interval: Some(Duration::from_secs(60)),
            stream_timeout: Duration::from_secs(30),
            ..Config::lan()
        }
    }

    /// memberlist's `DefaultLocalConfig` (loopback): 200 ms probe timeout, one indirect check,
    /// retransmit factor 2, suspicion factor 3, 100 ms gossip, 15 s pull-push.
    #[must_use]
    pub fn local() -> Config {
        Config {
            probe_timeout: Duration::from_millis(200),
            indirect_checks: 1,
            retransmit_mult: nz32(2),
            suspicion_mult: nz32(3),
            gossip_interval: Duration::from_millis(100),
            gossip_to_the_dead_time: Duration::from_secs(15),
            pullpush_interval: Some(Duration::from_secs(15)),
            pullpush_digest: true,
            rejoin_interval: Some(Duration::from_secs(30)),
            reconnect_interval: Some(Duration::from_secs(10)),
            stream_timeout: Duration::from_secs(1),
            ..Config::lan()
        }
    }

    /// A builder starting from this configuration.
    pub fn to_builder(&self) -> ConfigBuilder {
        ConfigBuilder {
            config: self.clone(),
        }
    }

    /// Bytes available to swim messages in one datagram: `packet_budget - frame_overhead`.
    #[must_use]
    pub fn datagram_budget(&self) -> usize {
        self.packet_budget.get().saturating_sub(self.frame_overhead)
    }

    /// Bytes a message of `len` bytes costs in a datagram: `len`, its LEB128 length prefix
    /// and `message_overhead`.
    #[must_use]
    pub fn packed_len(&self, len: usize) -> usize {
        varint::packed_len(len, self.message_overhead)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}

impl ConfigBuilder {
    /// Checks the configuration: non-zero periods, a probe timeout shorter than the probe
    /// interval, and a datagram large enough for a ping carrying the largest metadata.
    pub fn build(self) -> Result<Config, Error> {
        let c = self.config;
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        if c.probe_interval.is_zero() {
            return invalid("probe_interval", "must be greater than zero");
        }
        if c.probe_timeout.is_zero() || c.probe_timeout >= c.probe_interval {
            return invalid(
                "probe_timeout",
                "must be greater than zero and shorter than probe_interval",
            );
        }
        if c.stream_timeout.is_zero() {
            return invalid("stream_timeout", "must be greater than zero");
        }
        if c.gossip_interval.is_zero() {
            return invalid("gossip_interval", "must be greater than zero");
        }
        let periods = [
            ("pullpush_interval", c.pullpush_interval),
            ("rejoin_interval", c.rejoin_interval),
            ("reconnect_interval", c.reconnect_interval),
        ];
        for (field, period) in periods {
            if period.is_some_and(|p| p.is_zero()) {
                return invalid(field, "must be None (off) or greater than zero");
            }
        }
        if c.unconfirmed_timeout < c.probe_interval {
            return invalid(
                "unconfirmed_timeout",
                "must be at least probe_interval: members need time to answer",
            );
        }
        if c.max_state_members.get() > message::MAX_STATE_MEMBERS {
            return invalid(
                "max_state_members",
                "is over the protocol limit message::MAX_STATE_MEMBERS",
            );
        }
        if c.max_members.get() > MAX_MEMBERS {
            return invalid(
                "max_members",
                "is over the member table's limit MAX_MEMBERS",
            );
        }
        if c.max_members.get() < 2 {
            return invalid("max_members", "must leave room for another member");
        }
        if c.packet_budget.get() <= c.frame_overhead {
            return invalid("frame_overhead", "leaves no room in packet_budget");
        }
        let ping = message::largest_ping_len(c.meta_max_size);
        if varint::packed_len(ping, c.message_overhead) > c.datagram_budget() {
            return invalid(
                "meta_max_size",
                "is too large: a ping carrying it would not fit the datagram budget",
            );
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_carry_memberlist_values() {
        let lan = Config::lan();
        let wan = Config::wan();
        let local = Config::local();
        assert_eq!(lan.probe_timeout(), Duration::from_millis(500));
        assert_eq!(wan.probe_interval(), Duration::from_secs(5));
        assert_eq!(wan.probe_timeout(), Duration::from_secs(3));
        assert_eq!(wan.suspicion_mult().get(), 6);
        assert_eq!(wan.gossip_nodes().get(), 4);
        assert_eq!(local.indirect_checks(), 1);
        assert_eq!(local.retransmit_mult().get(), 2);
        assert_eq!(local.suspicion_mult().get(), 3);
        assert_eq!(local.gossip_interval(), Duration::from_millis(100));
        for config in [lan, wan, local] {
            assert_eq!(config.to_builder().build().unwrap(), config);
        }
    }

    #[test]
    fn zero_periods_are_rejected() {
        let err = Config::lan()
            .to_builder()
            .gossip_interval(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("gossip_interval"), "{err}");
        assert!(
            Config::lan()
                .to_builder()
                .probe_interval(Duration::ZERO)
                .build()
                .is_err()
        );
    }

    #[test]
    fn metadata_limit_must_fit_a_datagram() {
        let err = Config::lan()
            .to_builder()
            .meta_max_size(2000)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("meta_max_size"), "{err}");
        let fits = Config::lan().to_builder().meta_max_size(800).build();
        assert!(fits.is_ok());
    }

    #[test]
    fn frame_overhead_must_leave_room() {
        let err = Config::lan()
            .to_builder()
            .frame_overhead(1400)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("frame_overhead"), "{err}");
    }
}
