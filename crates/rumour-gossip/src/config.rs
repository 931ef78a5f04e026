//! Settings of the gossip machine. Names and defaults follow dskit's `-memberlist.*` flags.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Settings of a [`Gossip`](crate::Gossip) machine.
///
/// [`Config::lan`] gives dskit's defaults (memberlist's LAN profile); [`Config::wan`] and
/// [`Config::local`] the other memberlist profiles. Durations of zero switch a feature off where
/// the field says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The address peers reach this node at; written into the messages that need a reply.
    pub advertise_addr: SocketAddr,
    /// How often to reconcile the whole store with one random alive peer (30 s), scaled up above
    /// 32 members like memberlist. `None` (or zero) disables the periodic exchange; the embedder
    /// may still call [`Gossip::start_pullpush`](crate::Gossip::start_pullpush).
    pub pullpush_interval: Option<Duration>,
    /// Pauses the periodic exchange once the store has gone this many (scaled) pull-push
    /// intervals without a change (no write, delete or merged remote change), and until its
    /// first change; the next change resumes it. Exchanges the embedder starts with
    /// [`Gossip::start_pullpush`](crate::Gossip::start_pullpush) still run, so an embedder that
    /// bundles them with its own periodic exchange (rumour's node, with SWIM's) keeps a slower
    /// anti-entropy while nothing changes. `None` never pauses (the default).
    pub pullpush_quiet_periods: Option<NonZeroU32>,
    /// How long an outgoing or incoming pull-push may take before it is abandoned (10 s, the
    /// memberlist LAN stream timeout).
    pub pullpush_timeout: Duration,
    /// Incoming pull-push exchanges served at once; more are refused and counted (16).
    pub max_incoming_pullpush: usize,
    /// Each change is sent `retransmit_mult * ceil(log10(n + 1))` times (4).
    pub retransmit_mult: u32,
    /// Each change that only refreshes periodic state (a ring change of heartbeats alone, see
    /// `Mergeable::is_refresh`) is sent `refresh_retransmit_mult * ceil(log10(n + 1))` times
    /// (1): the next heartbeat comes anyway, and pull-push repairs what gossip missed.
    pub refresh_retransmit_mult: u32,
    /// How long a peer reported down is still gossiped to, so it can catch up (30 s).
    pub gossip_to_the_dead_time: Duration,
    /// Tombstones inside values are forgotten this long after this node received (or wrote)
    /// them, for values that record it ([`Mergeable::receive`](rumour_ring::Mergeable::receive)),
    /// else this long after the time they carry; received ones already older than this by the
    /// time they carry are neither applied nor forwarded (5 min; zero keeps tombstones forever).
    pub left_ingesters_timeout: Duration,
    /// How long a deleted key is remembered (as a deleted marker) after this node saw it
    /// deleted, before it is forgotten (30 s).
    pub obsolete_entries_timeout: Duration,
    /// Watch debounce: changed keys are collected and watchers told once per interval (zero:
    /// at once).
    pub notify_interval: Duration,
    /// Byte budget of each of the two message histories (sent and received); zero turns the
    /// history off.
    pub message_history_bytes: usize,
    /// Largest datagram the transport sends (1400).
    pub packet_budget: usize,
    /// Bytes of each datagram taken by the transport frame (16); changes are packed into
    /// `packet_budget - frame_overhead` bytes, bigger ones go over a stream.
    pub frame_overhead: usize,
    /// Bytes the embedder writes in front of every message inside a datagram, besides its
    /// length prefix (a channel tag, say); counted in every message's cost (0).
    pub message_overhead: usize,
    /// Attempts of [`Gossip::cas`](crate::Gossip::cas) before it gives up on conflicts (10).
    pub max_cas_retries: u32,
    /// Capacity of each broadcast queue; past it the most-sent change is dropped and counted
    /// (4096).
    pub queue_capacity: usize,
    /// Pending notifications a prefix watch may hold before it loses some and is told it lagged
    /// (128, dskit's `watch-prefix-buffer-size`).
    pub watch_buffer: usize,
    /// Largest gossip message accepted from a packet or a stream (64 MiB).
    pub max_message_bytes: usize,
    /// How often deleted keys and old tombstones are swept (1 s).
    pub cleanup_interval: Duration,
    /// How far ahead of this node's wall time a received timestamp may be (5 min). A key's
    /// marker further ahead refuses the whole change; inside a value, the parts further ahead
    /// are dropped (for the ring: the description or the heartbeat). Counted in
    /// [`Stats::clock_refused`](crate::Stats::clock_refused).
    pub max_clock_skew: Duration,
    /// Keys the store holds, deleted ones included (10,000). A received change for a new key
    /// past it is refused and counted ([`Stats::keys_refused`](crate::Stats::keys_refused));
    /// local writes are never refused.
    pub max_keys: usize,
    /// Longest key accepted from the network, in bytes (1,024).
    pub max_key_len: usize,
    /// Largest encoded value accepted from the network, in bytes (16 MiB).
    pub max_value_bytes: usize,
    /// Digest buckets (and wanted buckets) one key may carry in a pull-push message (65,536;
    /// the protocol itself never uses more than `rumour_ring::MAX_DIGEST_BUCKETS`, 1,024, and
    /// refuses more whatever this says).
    pub max_entry_names: usize,
    /// Gossip messages handled from one stream
    /// ([`Gossip::handle_stream_messages`](crate::Gossip::handle_stream_messages)); the rest
    /// are refused and counted (16; a peer sends one).
    pub max_stream_messages: usize,
    /// Pull-push exchanges this node opens at once (1); a further
    /// [`Gossip::start_pullpush`](crate::Gossip::start_pullpush) is refused and counted.
    pub max_outgoing_pullpush: usize,
    /// Peers a join exchange pushes what it changed to directly, over a stream (3): up to this
    /// many of the node's live peers other than the exchange's, chosen when the exchange starts
    /// (or, serving one, when the request arrives). After a partition heals, those are the
    /// node's own side, which lacks what the other side told it; gossip alone would spend most
    /// of its few transmits on the other side, which already holds it. Zero: gossip only.
    pub rejoin_push_peers: usize,
}

impl Config {
    /// dskit's defaults (memberlist's LAN profile).
    #[must_use]
    pub fn lan(advertise_addr: SocketAddr) -> Config {
        Config {
            advertise_addr,
            pullpush_interval: Some(Duration::from_secs(30)),
            pullpush_quiet_periods: None,
            pullpush_timeout: Duration::from_secs(10),
            max_incoming_pullpush: 16,
            retransmit_mult: 4,
            refresh_retransmit_mult: 1,
            gossip_to_the_dead_time: Duration::from_secs(30),
            left_ingesters_timeout: Duration::from_secs(5 * 60),
            obsolete_entries_timeout: Duration::from_secs(30),
            notify_interval: Duration::ZERO,
            message_history_bytes: 0,
            packet_budget: 1400,
            frame_overhead: 16,
            message_overhead: 0,
            max_cas_retries: 10,
            queue_capacity: 4096,
            watch_buffer: 128,
            max_message_bytes: 64 << 20,
            cleanup_interval: Duration::from_secs(1),
            max_clock_skew: Duration::from_secs(5 * 60),
            max_keys: 10_000,
            max_key_len: 1024,
            max_value_bytes: 16 << 20,
            max_entry_names: 65_536,
            max_stream_messages: 16,
            max_outgoing_pullpush: 1,
            rejoin_push_peers: 3,
        }
    }

    /// memberlist's WAN profile: slower gossip and pull-push, longer memory of the dead.
    #[must_use]
    pub fn wan(advertise_addr: SocketAddr) -> Config {
        Config {
            pullpush_interval: Some(Duration::from_secs(60)),
            pullpush_timeout: Duration::from_secs(30),
            gossip_to_the_dead_time: Duration::from_secs(60),
            ..Config::lan(advertise_addr)
        }
    }

    /// memberlist's local (loopback) profile: faster everything.
    #[must_use]
    pub fn local(advertise_addr: SocketAddr) -> Config {
        Config {
            pullpush_interval: Some(Duration::from_secs(15)),
            pullpush_timeout: Duration::from_secs(1),
            retransmit_mult: 2,
            gossip_to_the_dead_time: Duration::from_secs(15),
            ..Config::lan(advertise_addr)
        }
    }

    /// The bytes of a datagram left for gossip messages: `packet_budget - frame_overhead`.
    #[must_use]
    pub fn datagram_budget(&self) -> usize {
        self.packet_budget.saturating_sub(self.frame_overhead)
    }

    /// Bytes a message of `len` bytes costs in a datagram: `len`, its LEB128 length prefix
    /// and `message_overhead`.
    #[must_use]
    pub fn packed_len(&self, len: usize) -> usize {
        rumour_wire::varint::packed_len(len, self.message_overhead)
    }

    /// The base pull-push interval if the machine drives pull-push itself.
    pub(crate) fn pullpush_period(&self) -> Option<Duration> {
        self.pullpush_interval.filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_or_absent_pullpush_interval_switches_the_exchange_off() {
        let mut config = Config::lan("127.0.0.1:7946".parse().unwrap());
        config.pullpush_interval = Some(Duration::ZERO);
        assert!(config.pullpush_period().is_none());
        config.pullpush_interval = None;
        assert!(config.pullpush_period().is_none());
        assert_eq!(config.datagram_budget(), 1384);
    }
}
