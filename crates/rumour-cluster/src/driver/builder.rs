//! [`Builder`]: the settings of a running node, and starting it.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_ring::Timestamp;
use rumour_transport::frame::Keyring;
use rumour_transport::{Cidr, Label, NetConfig, NetTransport, Transport};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::Instrument;

use super::discovery::{DnsResolver, JoinFailure, JoinSettings, Joiner, Resolver, Seed};
use super::memberlist_net::MemberlistNet;
use super::outbound::Counters;
use super::task::{self, Task};
use super::{Cluster, Handle};
use crate::Error;
use crate::{MemberlistOptions, Node, NodeConfig, Profile, Wire};

/// memberlist's default port.
pub const DEFAULT_PORT: u16 = 7946;
/// Events a subscriber may fall behind by before it loses the oldest.
const EVENT_CAPACITY: usize = 1024;
/// Commands waiting for the node task.
const COMMAND_QUEUE: usize = 64;

type Configure = Box<dyn FnOnce(&mut NodeConfig) + Send>;

/// Settings of a node to start; see [`Cluster::builder`].
pub struct Builder {
    name: String,
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
    seeds: Vec<Seed>,
    resolver: Option<Arc<dyn Resolver>>,
    join_settings: JoinSettings,
    profile: Profile,
    label: Option<String>,
    ring_instance: bool,
    tcp_only: bool,
    transport: Option<Arc<dyn Transport>>,
    seed: Option<u64>,
    configure: Option<Configure>,
    event_capacity: usize,
    keyring: Keyring,
    verify_incoming: bool,
    verify_outgoing: bool,
    allowed_cidrs: Vec<Cidr>,
    verify_stream_source: bool,
    admission: Option<rumour_swim::Admission>,
    meta: Option<bytes::Bytes>,
    wire: Wire,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("advertise", &self.advertise)
            .field("seeds", &self.seeds)
            .field("join_settings", &self.join_settings)
            .field("profile", &self.profile)
            .field("label", &self.label)
            .field("ring_instance", &self.ring_instance)
            .field("tcp_only", &self.tcp_only)
            .field("keyring", &self.keyring)
            .field("gossip_verify_incoming", &self.verify_incoming)
            .field("gossip_verify_outgoing", &self.verify_outgoing)
            .finish_non_exhaustive()
    }
}

impl Builder {
    pub(super) fn new(name: String) -> Builder {
        Builder {
            name,
            bind: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            advertise: None,
            seeds: Vec::new(),
            resolver: None,
            join_settings: JoinSettings::default(),
            profile: Profile::Lan,
            label: None,
            ring_instance: false,
            tcp_only: false,
            transport: None,
            seed: None,
            configure: None,
            event_capacity: EVENT_CAPACITY,
            keyring: Keyring::default(),
            verify_incoming: true,
            verify_outgoing: true,
            allowed_cidrs: Vec::new(),
            verify_stream_source: true,
            admission: None,
            meta: None,
            wire: Wire::Rumour,
        }
    }

    /// The address to bind UDP and TCP to (default `127.0.0.1:7946`; port 0 picks one).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Builder {
        self.bind = addr;
        self
    }

    /// The address other members reach this node at (default: the bound one).
    #[must_use]
    pub fn advertise(mut self, addr: SocketAddr) -> Builder {
        self.advertise = Some(addr);
        self
    }

    /// Members to join through; tried again with back-off until one answers (see
    /// [`Builder::join_settings`]).
    #[must_use]
    pub fn join(mut self, seeds: impl IntoIterator<Item = SocketAddr>) -> Builder {
        self.seeds.extend(seeds.into_iter().map(Seed::Addr));
        self
    }

    /// Seeds given as addresses or names (`host:port`, `dns+host:port`,
    /// `dnssrv+_service._proto.name`; parse them with `str::parse`). Names are resolved on
    /// every join attempt and again every `rejoin_interval`, so that a cluster behind a
    /// headless service heals after every pod restarted (module `discovery` of the driver).
    #[must_use]
    pub fn join_seeds(mut self, seeds: impl IntoIterator<Item = Seed>) -> Builder {
        self.seeds.extend(seeds);
        self
    }

    /// Resolves seed names with `resolver` (default [`DnsResolver`]).
    #[must_use]
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Builder {
        self.resolver = Some(resolver);
        self
    }

    /// How seeds are joined: back-off, retries, the minimum number of members, and whether
    /// [`Builder::build`] fails if the join does (dskit's defaults).
    #[must_use]
    pub fn join_settings(mut self, settings: JoinSettings) -> Builder {
        self.join_settings = settings;
        self
    }

    /// The preset of every layer's settings (default [`Profile::Lan`]).
    #[must_use]
    pub fn profile(mut self, profile: Profile) -> Builder {
        self.profile = profile;
        self
    }

    /// The cluster label: frames carry it, and frames with another label are dropped.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Builder {
        self.label = Some(label.into());
        self
    }

    /// The keys every datagram and stream message is sealed and opened with
    /// (XChaCha20-Poly1305): the first seals, all open. Default: none, frames travel in
    /// plaintext. Keys can change while the node runs ([`Cluster::install_key`] and friends).
    /// Frames that no installed key opens are dropped and counted before any decoding.
    #[must_use]
    pub fn keyring(mut self, keyring: Keyring) -> Builder {
        self.keyring = keyring;
        self
    }

    /// With keys: drop frames that are not sealed (default `true`). Turn off while a running
    /// plaintext cluster moves to encryption; see `docs/security.md`.
    #[must_use]
    pub fn gossip_verify_incoming(mut self, verify: bool) -> Builder {
        self.verify_incoming = verify;
        self
    }

    /// With keys: seal every frame sent (default `true`). Turn off while a running plaintext
    /// cluster learns the key; see `docs/security.md`.
    #[must_use]
    pub fn gossip_verify_outgoing(mut self, verify: bool) -> Builder {
        self.verify_outgoing = verify;
        self
    }

    /// Whether the node registers itself as an instance of the ring and heartbeats it.
    #[must_use]
    pub fn ring_instance(mut self, register: bool) -> Builder {
        self.ring_instance = register;
        self
    }

    /// Carries datagrams over TCP too (for networks that drop UDP).
    #[must_use]
    pub fn tcp_only(mut self, tcp_only: bool) -> Builder {
        self.tcp_only = tcp_only;
        self
    }

    /// Runs over this transport instead of binding a [`NetTransport`] (`bind`, `advertise`
    /// and `tcp_only` are then ignored). A [`MemNetwork`](rumour_transport::MemNetwork)
    /// endpoint, for example.
    #[must_use]
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Builder {
        self.transport = Some(transport);
        self
    }

    /// The seed of the node's random choices (default: drawn from the process). Nonces of
    /// sealed frames never come from it: the driver seeds them from the operating system.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Builder {
        self.seed = Some(seed);
        self
    }

    /// Adjusts the node's configuration after the profile, label and ring settings are
    /// applied (probe intervals, metadata, message history, ...).
    #[must_use]
    pub fn configure(mut self, f: impl FnOnce(&mut NodeConfig) + Send + 'static) -> Builder {
        self.configure = Some(Box::new(f));
        self
    }

    /// How many events a subscriber may fall behind by before it loses the oldest.
    #[must_use]
    pub fn event_capacity(mut self, capacity: usize) -> Builder {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Accepts datagrams and connections only from these networks (like memberlist's
    /// `CIDRsAllowed`); anything else is dropped before it is read, and counted in the
    /// transport's `refused_source`. Empty (the default) accepts every source. Applies to the
    /// bound [`NetTransport`], not to a transport given with [`Builder::transport`].
    #[must_use]
    pub fn allowed_cidrs(mut self, cidrs: impl IntoIterator<Item = Cidr>) -> Builder {
        self.allowed_cidrs.extend(cidrs);
        self
    }

    /// Whether a TCP connection must advertise an address on its own IP (default `true`: a
    /// stream cannot name a third party as the one to answer). Turn it off only when members
    /// connect from another IP than the one they advertise (NAT, multi-homed hosts). Applies
    /// to the bound [`NetTransport`].
    #[must_use]
    pub fn verify_stream_source(mut self, verify: bool) -> Builder {
        self.verify_stream_source = verify;
        self
    }

    /// A hook that may refuse a new member, or a member's new address or metadata, learned
    /// from gossip or a state exchange (memberlist's alive and merge delegates): return `false`
    /// to refuse. Refusals are counted in the membership stats (`admission_refused`).
    #[must_use]
    pub fn admission(
        mut self,
        admit: impl Fn(&rumour_swim::Member) -> bool + Send + Sync + 'static,
    ) -> Builder {
        self.admission = Some(std::sync::Arc::new(admit));
        self
    }

    /// The node's metadata, gossiped with its membership (memberlist's `NodeMeta`): at most the
    /// profile's `meta_max_size` bytes (512 by default), or [`Builder::build`] fails. Change it
    /// later with [`Cluster::set_meta`].
    #[must_use]
    pub fn meta(mut self, meta: impl Into<bytes::Bytes>) -> Builder {
        self.meta = Some(meta.into());
        self
    }

    /// The wire format (default [`Wire::Rumour`]). With [`Wire::Memberlist`] the node speaks
    /// hashicorp/memberlist's protocol over plain UDP and TCP and joins Go memberlist clusters
    /// (`docs/protocol-memberlist.md`); the rumour label, keyring and `tcp_only` do not apply
    /// then, nor does a transport given with [`Builder::transport`].
    #[must_use]
    pub fn wire(mut self, wire: Wire) -> Builder {
        self.wire = wire;
        self
    }

    /// Binds the transport (unless one was given), starts the node task and joins the seeds.
    /// With [`JoinSettings::abort_if_join_fails`], waits for the join, and fails (the node
    /// shut down) if it does.
    ///
    /// # Errors
    /// The transport could not bind, the label is invalid, the node refused its
    /// configuration, or the join failed with `abort_if_join_fails` set.
    pub async fn build(mut self) -> Result<Cluster, Error> {
        let label = self.label.take().map(Label::new).transpose()?;
        if let Wire::Memberlist(options) = self.wire.clone() {
            return self.build_memberlist(options).await;
        }
        let (transport, net) = match self.transport.take() {
            Some(transport) => (transport, None),
            None => {
                let net = self.bind_net().await?;
                (net.clone() as Arc<dyn Transport>, Some(net))
            }
        };
        let now = task::now();
        let node = match self.node(transport.advertise_addr(), label, now) {
            Ok(node) => node,
            Err(error) => {
                transport.shutdown().await;
                return Err(error);
            }
        };
        // Stream frame headers (label, length) are checked before bodies are read.
        if let Some(net) = net {
            net.check_stream_frames(node.frame().config().clone());
        }
        let abort = self.join_settings.abort_if_join_fails;
        let (cluster, joined) = self.spawn(node, transport);
        if abort {
            if let Ok(Err(failure)) = joined.await {
                cluster.shutdown().await;
                return Err(Error::JoinFailed {
                    name: cluster.name().to_string(),
                    attempts: failure.attempts,
                    seen: failure.seen,
                });
            }
        }
        Ok(cluster)
    }

    /// [`Builder::build`] in [`Wire::Memberlist`] mode: memberlist's UDP and TCP.
    async fn build_memberlist(mut self, options: MemberlistOptions) -> Result<Cluster, Error> {
        let codec = rumour_memberlist::Codec {
            keyring: options.keyring.clone(),
            ..rumour_memberlist::Codec::default()
        };
        let net = MemberlistNet::bind(self.bind, self.advertise, codec).await?;
        let transport = net as Arc<dyn Transport>;
        let now = task::now();
        let mut node = match self.node(transport.advertise_addr(), None, now) {
            Ok(node) => node,
            Err(error) => {
                transport.shutdown().await;
                return Err(error);
            }
        };
        // Nonces must never repeat under a key, whatever seed nodes are given.
        node.set_memberlist_nonces(ChaCha8Rng::from_entropy());
        let abort = self.join_settings.abort_if_join_fails;
        let (cluster, joined) = self.spawn(node, transport);
        if abort {
            if let Ok(Err(failure)) = joined.await {
                cluster.shutdown().await;
                return Err(Error::JoinFailed {
                    name: cluster.name().to_string(),
                    attempts: failure.attempts,
                    seen: failure.seen,
                });
            }
        }
        Ok(cluster)
    }

    async fn bind_net(&self) -> Result<Arc<NetTransport>, Error> {
        let mut config = NetConfig::new(self.bind).with_allowed_cidrs(self.allowed_cidrs.clone());
        config.verify_stream_source = self.verify_stream_source;
        config.advertise = self.advertise;
        config.tcp_only = self.tcp_only;
        Ok(Arc::new(NetTransport::bind(config).await?))
    }

    fn node(
        &mut self,
        addr: SocketAddr,
        label: Option<Label>,
        now: std::time::Instant,
    ) -> Result<Node, Error> {
        let mut config = NodeConfig::new(self.name.clone(), addr, self.profile);
        if self.ring_instance {
            config = config.with_ring_instance();
        }
        if let Some(label) = label {
            config.frame = config.frame.with_label(label);
        }
        config.frame = config
            .frame
            .with_keyring(std::mem::take(&mut self.keyring))
            .with_verify_incoming(self.verify_incoming)
            .with_verify_outgoing(self.verify_outgoing);
        config.wall_epoch = Some((now, wall_clock()));
        config.wire = self.wire.clone();
        if let Some(meta) = self.meta.take() {
            config.meta = meta;
        }
        if let Some(configure) = self.configure.take() {
            configure(&mut config);
        }
        let seed = self.seed.unwrap_or_else(|| entropy(&self.name));
        let mut node = Node::new(config, ChaCha8Rng::seed_from_u64(seed), now)?;
        node.set_admission(self.admission.take());
        // Nonces must never repeat under a key, whatever seed nodes are given.
        node.frame().seed_nonces_from_os();
        Ok(node)
    }

    /// Starts the node task and the join task; the receiver hears how the join went.
    fn spawn(
        self,
        node: Node,
        transport: Arc<dyn Transport>,
    ) -> (Cluster, oneshot::Receiver<Result<(), JoinFailure>>) {
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events, _) = broadcast::channel(self.event_capacity);
        // Without seeds there is nothing to join: ready from the start.
        let handle_ready_at_start = self.seeds.is_empty();
        let (ready_tx, ready) = watch::channel(handle_ready_at_start);
        let counters = Arc::new(Counters::default());
        let handle = Handle {
            name: node.name().to_string(),
            addr: transport.advertise_addr(),
            commands,
            events: events.downgrade(),
            transport: transport.clone(),
            counters: counters.clone(),
            ready,
        };
        tracing::info!(name = %handle.name, addr = %handle.addr, "node started");
        let (joined_tx, joined) = oneshot::channel();
        if self.seeds.is_empty() {
            let _ = joined_tx.send(Ok(()));
        } else {
            let joiner = Joiner {
                seeds: self.seeds,
                resolver: self
                    .resolver
                    .unwrap_or_else(|| Arc::new(DnsResolver::default())),
                settings: self.join_settings,
                rejoin: node.swim().config().rejoin_interval(),
                commands: handle.commands.downgrade(),
                counters: counters.clone(),
            };
            tokio::spawn(
                joiner
                    .run(joined_tx)
                    .instrument(tracing::info_span!("join", name = %handle.name)),
            );
        }
        let task = Task {
            node,
            transport,
            commands: commands_rx,
            events,
            counters,
            ready: ready_tx,
            joined: handle_ready_at_start,
        };
        tokio::spawn(task.run());
        let cluster = Cluster {
            handle: Arc::new(handle),
        };
        (cluster, joined)
    }
}

/// Now, in Unix milliseconds: the node's wall-clock epoch.
fn wall_clock() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// A seed that differs between nodes and runs: the process's random hasher keys, the time,
/// the process id and the node name.
fn entropy(name: &str) -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(name.as_bytes());
    hasher.write_u64(wall_clock().0);
    hasher.write_u32(std::process::id());
    hasher.finish()
}
