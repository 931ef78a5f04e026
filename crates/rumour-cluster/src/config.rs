//! Settings of a [`Node`](crate::Node).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumour_ring::{LifecyclerConfig, Timestamp};
use rumour_transport::frame::FrameConfig;

use crate::Profile;

/// The wall-clock time (Unix milliseconds) the simulator calls its start: 2026-01-01T00:00:00Z.
pub const SIM_EPOCH: Timestamp = Timestamp(1_767_225_600_000);

/// The key under which the node's ring lives in the KV store (dskit's default ring key).
pub const DEFAULT_RING_KEY: &str = "ring";

/// The KV store's own digest pull-push pauses after this many of its (scaled) intervals without
/// a change, and resumes with the next one; the exchange bundled with SWIM's periodic one goes
/// on. After a change every node that has it opens about this many exchanges with random peers
/// before pausing, so a member gossip missed is left out by all of them with a chance of about
/// e^-6 (0.25 %), and then waits at most for SWIM's exchange (30 s at LAN, scaled above 32
/// members). An idle store costs no stream of its own (rings heartbeat, so theirs never pause).
pub const KV_PULLPUSH_QUIET_PERIODS: u32 = 6;

/// Everything a [`Node`](crate::Node) needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The member name, unique in the cluster.
    pub name: String,
    /// The address other members reach this node at (UDP and TCP).
    pub addr: SocketAddr,
    /// Metadata gossiped with the member.
    pub meta: Bytes,
    /// SWIM settings. The node drives the gossip tick itself, so `gossip_interval` is used
    /// for the node's tick and SWIM's own is turned off.
    pub swim: rumour_swim::Config,
    /// KV store settings. The node drives the gossip tick, so the store's own is turned off.
    /// The store runs its digest pull-push every `pullpush_interval` itself (see
    /// [`Profile::kv_pullpush_interval`]) and also joins every SWIM full-state exchange; its
    /// own exchange pauses while the store is quiet (see [`KV_PULLPUSH_QUIET_PERIODS`]).
    pub gossip: rumour_gossip::Config,
    /// Transport framing: cluster label, packet budget.
    pub frame: FrameConfig,
    /// Registers this node as an instance in the ring, heartbeats it, and marks it Left on leave.
    pub ring: Option<LifecyclerConfig>,
    /// The KV key of the ring.
    pub ring_key: String,
    /// The wall-clock time at a given instant: `(instant, unix millis)`. The node derives wall
    /// time from `now` with it and never reads a clock.
    pub wall_epoch: Option<(Instant, Timestamp)>,
    /// The wire format: rumour's own (the default) or hashicorp/memberlist's.
    pub wire: Wire,
}

/// The wire format a node speaks. The node picks one per cluster; neither codec knows the other.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wire {
    /// rumour's frames and postcard messages (`docs/protocol.md`).
    #[default]
    Rumour,
    /// hashicorp/memberlist's packets and streams (`docs/protocol-memberlist.md`): the node is
    /// just another member of a Go memberlist cluster. The KV store runs over memberlist's user
    /// and local-state channels in grafana/dskit's envelope (`KeyValuePair` user messages, the
    /// store as the push/pull's user state).
    Memberlist(MemberlistOptions),
}

/// Settings of the memberlist wire mode ([`Wire::Memberlist`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberlistOptions {
    /// AES-GCM keys (memberlist's `SecretKey` and `Keyring`): the primary encrypts, every key
    /// decrypts. `None`: plaintext.
    pub keyring: Option<rumour_memberlist::Keyring>,
    /// LZW-compress packets (when that makes them smaller) and streams, as memberlist's
    /// `EnableCompression` does. Compressed input is always accepted.
    pub compression: bool,
}

impl MemberlistOptions {
    /// Plaintext, uncompressed.
    #[must_use]
    pub fn new() -> MemberlistOptions {
        MemberlistOptions::default()
    }

    /// Encrypts with `key` (16, 24 or 32 bytes: AES-128, -192 or -256).
    ///
    /// # Errors
    /// A key of another length.
    pub fn with_key(mut self, key: &[u8]) -> Result<MemberlistOptions, rumour_memberlist::Error> {
        self.keyring = Some(rumour_memberlist::Keyring::new(
            rumour_memberlist::Key::new(key)?,
        ));
        Ok(self)
    }

    /// Turns compression on or off.
    #[must_use]
    pub fn with_compression(mut self, compression: bool) -> MemberlistOptions {
        self.compression = compression;
        self
    }
}

impl NodeConfig {
    /// A node named `name` at `addr` with the settings of `profile`, no ring instance, no
    /// cluster label, and the simulator's wall-clock epoch.
    #[must_use]
    pub fn new(name: impl Into<String>, addr: SocketAddr, profile: Profile) -> NodeConfig {
        NodeConfig {
            name: name.into(),
            addr,
            meta: Bytes::new(),
            swim: profile.swim(),
            gossip: rumour_gossip::Config {
                pullpush_interval: Some(profile.kv_pullpush_interval()),
                pullpush_quiet_periods: NonZeroU32::new(KV_PULLPUSH_QUIET_PERIODS),
                ..profile.gossip(addr)
            },
            frame: FrameConfig::default(),
            ring: None,
            ring_key: DEFAULT_RING_KEY.to_string(),
            wall_epoch: None,
            wire: Wire::Rumour,
        }
    }

    /// Registers this node in the ring under its own name, with default lifecycler settings.
    #[must_use]
    pub fn with_ring_instance(mut self) -> NodeConfig {
        self.ring = Some(LifecyclerConfig::new(&self.name, self.addr.to_string(), ""));
        self
    }

    /// The gossip period the node's tick uses.
    #[must_use]
    pub fn gossip_interval(&self) -> Duration {
        self.swim.gossip_interval()
    }
}
