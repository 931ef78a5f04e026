//! The tokio driver: a [`Node`] running over a [`Transport`], behind a cloneable [`Cluster`]
//! handle.
//!
//! # Contract
//!
//! - [`Cluster::builder`] binds a [`NetTransport`](rumour_transport::NetTransport) (UDP + TCP on
//!   one port) or takes any [`Transport`], and spawns **one task that owns the node**. The task
//!   waits for a message, the node's next timer, or a command from a handle; hands it to the
//!   node; then drains [`Node::poll_transmit`] into the transport and [`Node::poll_event`] into a
//!   broadcast channel. Nothing else touches the node.
//! - The task never waits on the network: datagrams go through one bounded queue and sender
//!   task, reliable messages through one bounded queue and task per peer (in order per peer).
//!   A full queue drops the message and counts it; a failed send is counted
//!   ([`DriverStats`]). Gossip is built to lose messages; a stalled node is not.
//! - Events go to every [`Cluster::events`] receiver; a receiver that falls behind by more than
//!   the event capacity loses the oldest events (it sees `RecvError::Lagged`), and never slows
//!   the node.
//! - The node's clock is tokio's; its wall-clock epoch is read once at start.
//! - Seeds given to [`Builder::join`] or [`Builder::join_seeds`] (names too: `dns+host:port`,
//!   `dnssrv+name`) are resolved by a join task and joined by the node, which tries again with
//!   back-off ([`JoinSettings`]: 1 s doubling to 60 s, 10 retries) until it sees another
//!   member ([`crate::join`]; the simulator runs the same retries); names are resolved again
//!   after every attempt and every `rejoin_interval` (see [`Seed`]).
//!   [`Cluster::is_ready`] turns true once the node hears from another member (at once
//!   without seeds) and false after [`Cluster::leave`].
//! - [`Cluster::leave`] says goodbye and waits until the news is gossiped; [`Cluster::shutdown`]
//!   stops the task, gives messages already queued up to a second to leave, and closes the
//!   transport, without a goodbye (to others, as a crash). Dropping every handle also stops
//!   the task.
//!
//! # Example
//!
//! Two nodes on an in-memory network: one joins the other, registers in the ring, and leaves.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rumour_cluster::Profile;
//! use rumour_cluster::Cluster;
//! use rumour_cluster::swim::State;
//! use rumour_cluster::transport::{MemConfig, MemNetwork};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let net = MemNetwork::new(MemConfig::new(7));
//! let a = Cluster::builder("a")
//!     .transport(Arc::new(net.bind("10.0.0.1:7946".parse()?)?))
//!     .profile(Profile::Local)
//!     .build()
//!     .await?;
//! let b = Cluster::builder("b")
//!     .transport(Arc::new(net.bind("10.0.0.2:7946".parse()?)?))
//!     .profile(Profile::Local)
//!     .ring_instance(true)
//!     .join([a.addr()])
//!     .build()
//!     .await?;
//! let mut events = a.events();
//!
//! b.ready().await?; // b heard from a
//! while a.num_alive().await? < 2 || a.ring().await?.is_none() {
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! }
//! assert!(a.ring().await?.unwrap().instance("b").is_some());
//!
//! b.leave(Duration::from_secs(5)).await?;
//! b.shutdown().await;
//! while a.members().await?.iter().any(|m| m.name == "b" && m.state != State::Left) {
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! }
//! let left = loop {
//!     if let rumour_cluster::NodeEvent::MemberLeft { name } = events.recv().await? {
//!         break name;
//!     }
//! };
//! assert_eq!(left, "b");
//! a.shutdown().await;
//! # Ok(()) }
//! ```

mod builder;
mod discovery;
mod dns;
mod memberlist_net;
mod outbound;
mod snapshot;
mod task;
#[cfg(test)]
mod tests;
mod user;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumour_gossip::{CasOutcome, WatchId};
use rumour_ring::{Mergeable, Ring};
use rumour_transport::Transport;
use rumour_transport::frame::{Key, Keyring, KeyringStatus};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use builder::{Builder, DEFAULT_PORT};
pub use discovery::{DnsResolver, JoinSettings, Resolver, Seed, SrvRecord, StaticResolver};
pub use user::{UserMessage, UserMessages};
// `KeyInfo` and `STATUS_MAX_AGE` are public but not yet re-exported from the crate root.
pub use snapshot::{
    ClusterStats, DriverStats, KeyInfo, MemberCounts, MemberInfo, STATUS_MAX_AGE, Status,
};

use crate::{Error, LeaveMode, Node, NodeEvent};
use outbound::Counters;
use task::Command;

/// How often [`Cluster::leave`] checks whether the goodbye went out.
const LEAVE_POLL: Duration = Duration::from_millis(20);

/// What every clone of a [`Cluster`] shares.
struct Handle {
    name: String,
    addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    events: broadcast::WeakSender<NodeEvent>,
    transport: Arc<dyn Transport>,
    counters: Arc<Counters>,
    ready: watch::Receiver<bool>,
}

/// A handle to a running node. Cheap to clone; every clone talks to the same node task.
#[derive(Clone)]
pub struct Cluster {
    handle: Arc<Handle>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.handle.name)
            .field("addr", &self.handle.addr)
            .field("running", &self.is_running())
            .finish()
    }
}

impl Cluster {
    /// Settings for a node named `name` (unique in the cluster).
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder::new(name.into())
    }

    // ---- without the node task ----------------------------------------------------------------

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// The address other members reach this node at.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// Whether the node task is still running.
    pub fn is_running(&self) -> bool {
        !self.handle.commands.is_closed()
    }

    /// Whether the node has joined (heard from another member, or had no seeds) and not left.
    pub fn is_ready(&self) -> bool {
        *self.handle.ready.borrow()
    }

    /// Waits until the node is ready (see [`Cluster::is_ready`]).
    ///
    /// # Errors
    /// The node stopped first.
    pub async fn ready(&self) -> Result<(), Error> {
        let mut ready = self.handle.ready.clone();
        match ready.wait_for(|ready| *ready).await {
            Ok(_) => Ok(()),
            Err(_) => Err(self.stopped()),
        }
    }

    /// A receiver of every event from now on. It reports `Closed` once the node stops.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        match self.handle.events.upgrade() {
            Some(sender) => sender.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    // ---- through the node task ----------------------------------------------------------------

    /// Runs `f` on the node task with the node and the current time, and returns its result.
    /// Whatever `f` makes the node send goes out right after. Keep `f` short: the node does
    /// nothing else meanwhile.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn with_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node, Instant) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        let call = Box::new(move |node: &mut Node, now: Instant| {
            let _ = tx.send(f(node, now));
        });
        self.handle
            .commands
            .send(Command::Call(call))
            .await
            .map_err(|_| self.stopped())?;
        rx.await.map_err(|_| self.stopped())
    }

    /// Every member the node knows, sorted by name, itself included.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn members(&self) -> Result<Vec<MemberInfo>, Error> {
        self.with_node(|node, now| {
            let local = node.name().to_string();
            node.members()
                .map(|m| MemberInfo::new(&m, &local, now))
                .collect()
        })
        .await
    }

    /// A copy of the node's members, ring, keys and message history for status pages, taken
    /// on the node task at most every 500 ms (`STATUS_MAX_AGE`; callers in between share the
    /// last copy). Render it off the node task: the node does nothing else while a copy is taken,
    /// and nothing at all while a caller renders it.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn status(&self) -> Result<Arc<Status>, Error> {
        let (tx, rx) = oneshot::channel();
        self.handle
            .commands
            .send(Command::Status(tx))
            .await
            .map_err(|_| self.stopped())?;
        rx.await.map_err(|_| self.stopped())
    }

    /// How many members the node considers alive, itself included.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn num_alive(&self) -> Result<usize, Error> {
        self.with_node(|node, _| node.num_alive()).await
    }

    /// The value of `key` in the KV store, if it holds a `T`.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn kv_get<T: Mergeable>(&self, key: &str) -> Result<Option<T>, Error> {
        let key = key.to_string();
        self.with_node(move |node, _| node.gossip().get::<T>(&key))
            .await
    }

    /// The keys of the KV store starting with `prefix`, in order.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn kv_list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let prefix = prefix.to_string();
        self.with_node(move |node, _| node.gossip().list(&prefix))
            .await
    }

    /// Compare-and-swap on `key`: `f` gets the current value and returns the desired one (or
    /// `None` to change nothing). See [`Gossip::cas`](rumour_gossip::Gossip::cas).
    ///
    /// # Errors
    /// The node has stopped, or the store refused the write.
    pub async fn kv_cas<T: Mergeable>(
        &self,
        key: &str,
        f: impl FnMut(Option<&T>) -> Option<T> + Send + 'static,
    ) -> Result<CasOutcome, Error> {
        let key = key.to_string();
        self.with_node(move |node, now| node.cas::<T>(now, &key, f))
            .await?
    }

    /// Deletes `key`; false if it was absent.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn kv_delete(&self, key: &str) -> Result<bool, Error> {
        let key = key.to_string();
        self.with_node(move |node, now| node.delete(now, &key))
            .await
    }

    /// Reports a [`NodeEvent::KeyChanged`] on [`Cluster::events`] each time `key` changes.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn watch_key(&self, key: &str) -> Result<WatchId, Error> {
        let key = key.to_string();
        self.with_node(move |node, _| node.watch_key(&key)).await
    }

    /// Replaces this node's metadata and gossips it with a new incarnation (memberlist's
    /// `UpdateNode`); every member reports a [`NodeEvent::MemberUpdated`] carrying it and shows
    /// it in [`Cluster::members`].
    ///
    /// # Errors
    /// The node has stopped, has left, or `meta` is over the configured `meta_max_size`
    /// (512 bytes by default; nothing changes).
    pub async fn set_meta(&self, meta: impl Into<bytes::Bytes>) -> Result<(), Error> {
        let meta = meta.into();
        self.with_node(move |node, now| node.set_meta(now, meta))
            .await?
    }

    /// Reports a [`NodeEvent::KeyChanged`] on [`Cluster::events`] each time a key starting with
    /// `prefix` changes. Past `watch_buffer` pending keys (see
    /// [`rumour_gossip::Config::watch_buffer`]) notifications are dropped and one
    /// [`NodeEvent::WatchLagged`] says so: re-read every key under the prefix then.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn watch_prefix(&self, prefix: &str) -> Result<WatchId, Error> {
        let prefix = prefix.to_string();
        self.with_node(move |node, _| node.watch_prefix(&prefix))
            .await
    }

    /// Removes a watch made by [`Cluster::watch_key`] or [`Cluster::watch_prefix`]; false if it
    /// did not exist.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn unwatch(&self, watch: WatchId) -> Result<bool, Error> {
        self.with_node(move |node, _| node.unwatch(watch)).await
    }

    /// The ring, if the store holds one.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn ring(&self) -> Result<Option<Ring>, Error> {
        self.with_node(|node, _| node.ring()).await
    }

    /// Compare-and-swap on the ring (see [`Node::cas_ring`]).
    ///
    /// # Errors
    /// The node has stopped, or the store refused the write.
    pub async fn cas_ring(
        &self,
        f: impl FnMut(Option<&Ring>) -> Option<Ring> + Send + 'static,
    ) -> Result<(), Error> {
        self.with_node(move |node, now| node.cas_ring(now, f))
            .await?
    }

    /// Every counter of the node, its layers, the transport and the driver.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn stats(&self) -> Result<ClusterStats, Error> {
        let (mut stats, join_attempts) = self
            .with_node(|node, _| (ClusterStats::of(node), node.join_status().attempts()))
            .await?;
        stats.transport = self.handle.transport.stats();
        stats.driver = self.handle.counters.snapshot();
        // The node makes the join's attempts; the driver counts its rejoins.
        stats.driver.join_attempts += u64::from(join_attempts);
        Ok(stats)
    }

    // ---- keys ---------------------------------------------------------------------------------

    /// Installs `key` for opening frames (it seals only once made primary with
    /// [`Cluster::use_key`], or if the node had no key). Returns whether it was new. Rotation:
    /// install the new key on every node, then use it on every node, then remove the old one on
    /// every node (`docs/security.md`).
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn install_key(&self, key: Key) -> Result<bool, Error> {
        let installed = self.with_node(move |node, _| node.frame().install_key(key));
        let installed = installed.await?;
        self.log_keys("key installed").await;
        Ok(installed)
    }

    /// Makes an installed key the one that seals.
    ///
    /// # Errors
    /// The node has stopped, or the key is not installed.
    pub async fn use_key(&self, key: &Key) -> Result<(), Error> {
        let key = key.clone();
        self.with_node(move |node, _| node.frame().use_key(&key))
            .await??;
        self.log_keys("primary key changed").await;
        Ok(())
    }

    /// Removes an installed key. The primary key cannot be removed: make another primary first.
    ///
    /// # Errors
    /// The node has stopped, the key is the primary or is not installed.
    pub async fn remove_key(&self, key: &Key) -> Result<(), Error> {
        let key = key.clone();
        self.with_node(move |node, _| node.frame().remove_key(&key))
            .await??;
        self.log_keys("key removed").await;
        Ok(())
    }

    /// Replaces the whole keyring (a re-read key file, say). An empty keyring turns
    /// encryption off.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn set_keyring(&self, keyring: Keyring) -> Result<(), Error> {
        self.with_node(move |node, _| node.frame().set_keyring(keyring))
            .await?;
        self.log_keys("keyring replaced").await;
        Ok(())
    }

    /// The installed keys' fingerprints (primary first) and the two switches; never keys.
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn keys(&self) -> Result<KeyringStatus, Error> {
        self.with_node(|node, _| node.frame().keyring_status())
            .await
    }

    /// Turns the check that incoming frames are sealed on or off
    /// (memberlist's `GossipVerifyIncoming`).
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn set_gossip_verify_incoming(&self, verify: bool) -> Result<(), Error> {
        self.with_node(move |node, _| node.frame().set_verify_incoming(verify))
            .await?;
        self.log_keys("gossip_verify_incoming changed").await;
        Ok(())
    }

    /// Turns sealing of outgoing frames on or off (memberlist's `GossipVerifyOutgoing`).
    ///
    /// # Errors
    /// The node has stopped.
    pub async fn set_gossip_verify_outgoing(&self, verify: bool) -> Result<(), Error> {
        self.with_node(move |node, _| node.frame().set_verify_outgoing(verify))
            .await?;
        self.log_keys("gossip_verify_outgoing changed").await;
        Ok(())
    }

    /// Logs the keyring's fingerprints and switches (never key material).
    async fn log_keys(&self, what: &str) {
        if let Ok(status) = self.keys().await {
            let fingerprints: Vec<String> = status
                .fingerprints
                .iter()
                .map(ToString::to_string)
                .collect();
            tracing::info!(
                name = %self.handle.name,
                keys = ?fingerprints,
                verify_incoming = status.verify_incoming,
                verify_outgoing = status.verify_outgoing,
                "{what}"
            );
        }
    }

    /// Leaves the cluster: the ring instance (if any) becomes Left, the member says goodbye,
    /// and this waits until every queued update has been gossiped, the goodbye and local
    /// changes as well as membership news and KV changes this node forwards for others (SWIM's
    /// queue and the KV store's local and forwarded queues are all empty), or no live member is
    /// left to tell, or `timeout` passes. The node keeps running (answering, not probing) until
    /// [`Cluster::shutdown`]. To keep the ring instance, see [`Cluster::leave_with`].
    ///
    /// # Errors
    /// The node has stopped or refused, or the goodbye was still queued at the timeout.
    pub async fn leave(&self, timeout: Duration) -> Result<(), Error> {
        self.leave_with(timeout, LeaveMode::MarkLeft).await
    }

    /// Leaves the cluster like [`Cluster::leave`], doing with the ring instance what `mode`
    /// says: [`LeaveMode::KeepInstance`] keeps it in the ring with its tokens (dskit's
    /// keep-instance-in-the-ring-on-shutdown) and only stops its heartbeats.
    ///
    /// # Errors
    /// The node has stopped or refused, or updates were still queued at the timeout.
    pub async fn leave_with(&self, timeout: Duration, mode: LeaveMode) -> Result<(), Error> {
        self.with_node(move |node, now| node.leave_with(now, mode))
            .await??;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done = self
                .with_node(|node, _| {
                    let queued =
                        node.swim().pending_broadcasts() > 0 || node.gossip().has_broadcasts();
                    !queued || node.num_alive() == 0
                })
                .await?;
            if done {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::LeaveTimeout {
                    name: self.handle.name.clone(),
                    timeout,
                });
            }
            tokio::time::sleep(LEAVE_POLL).await;
        }
    }

    /// Stops the node task, lets messages already queued leave (for up to a second), and
    /// closes the transport, without saying goodbye; returns once all is done. Idempotent.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .handle
            .commands
            .send(Command::Shutdown(tx))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    fn stopped(&self) -> Error {
        Error::Stopped {
            name: self.handle.name.clone(),
        }
    }
}
