//! Seeds by name, like dskit's `-memberlist.join`: `host:port`, `dns+host:port` (every A/AAAA
//! address) and `dnssrv+_service._proto.name` (every SRV target), resolved through a
//! [`Resolver`] when the node joins and again on every rejoin, so that a cluster behind a
//! Kubernetes headless service heals after every pod restarted with a new address.
//!
//! # Contract
//!
//! - The join task resolves every seed and hands the node the addresses found
//!   ([`Node::start_join`](crate::Node::start_join)); the node itself retries with back-off
//!   until it sees at least [`JoinSettings::min_joins`] other live members (see
//!   [`crate::join`]: the simulator runs the same retries). After every attempt the task
//!   resolves names again for the next one. A seed that does not resolve is logged and skipped.
//! - If the join fails, the node keeps running (and keeps rejoining, below), unless
//!   [`JoinSettings::abort_if_join_fails`] is set: then [`Builder::build`](super::Builder::build)
//!   fails with [`Error::JoinFailed`](crate::Error::JoinFailed) and the node is shut down.
//! - Afterwards, if any seed is a name and the node's `rejoin_interval` is set, the task
//!   resolves the seeds again every interval (the first after a random part of it) and joins
//!   the addresses found, once each time.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::dns;
use super::outbound::Counters;
use super::task::Command;
use crate::Error;
use crate::join::JoinStatus;

/// How often the join task checks whether an attempt succeeded.
const JOIN_POLL: Duration = Duration::from_millis(20);
/// How long the default resolver waits for a DNS server.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// A seed to join through: an address, or a name resolved on every join and rejoin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seed {
    /// An address, used as is.
    Addr(SocketAddr),
    /// `host:port`: every address the host name resolves to (memberlist resolves a host name
    /// the same way).
    Host {
        /// The host name.
        host: String,
        /// The port joined on every address.
        port: u16,
    },
    /// `dns+host:port`: every A and AAAA address of `host` (dskit's `dns+`).
    Dns {
        /// The host name.
        host: String,
        /// The port joined on every address.
        port: u16,
    },
    /// `dnssrv+_service._proto.name`: every target of the SRV records of `name`, on the port
    /// each record gives (dskit's `dnssrv+`; `dnssrvnoa+` is read the same way).
    DnsSrv {
        /// The SRV name.
        name: String,
    },
}

impl Seed {
    /// Whether the seed is a name (resolved again on every rejoin).
    pub fn is_name(&self) -> bool {
        !matches!(self, Seed::Addr(_))
    }
}

impl From<SocketAddr> for Seed {
    fn from(addr: SocketAddr) -> Seed {
        Seed::Addr(addr)
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seed::Addr(addr) => write!(f, "{addr}"),
            Seed::Host { host, port } => write!(f, "{host}:{port}"),
            Seed::Dns { host, port } => write!(f, "dns+{host}:{port}"),
            Seed::DnsSrv { name } => write!(f, "dnssrv+{name}"),
        }
    }
}

impl FromStr for Seed {
    type Err = Error;

    fn from_str(s: &str) -> Result<Seed, Error> {
        let bad = |reason| Error::Seed {
            seed: s.to_string(),
            reason,
        };
        if let Some(name) = s
            .strip_prefix("dnssrv+")
            .or_else(|| s.strip_prefix("dnssrvnoa+"))
        {
            if name.is_empty() || name.contains(':') {
                return Err(bad("expected dnssrv+_service._proto.name"));
            }
            return Ok(Seed::DnsSrv {
                name: name.to_string(),
            });
        }
        let (dns, rest) = match s.strip_prefix("dns+") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if !dns {
            if let Ok(addr) = rest.parse::<SocketAddr>() {
                return Ok(Seed::Addr(addr));
            }
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse().map_err(|_| bad("bad port"))?;
        if host.is_empty() || host.contains('+') {
            return Err(bad("expected host:port, dns+host:port or dnssrv+name"));
        }
        let host = host.to_string();
        Ok(if dns {
            Seed::Dns { host, port }
        } else {
            Seed::Host { host, port }
        })
    }
}

/// One SRV record: a target host and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvRecord {
    /// The target host name.
    pub target: String,
    /// The port on the target.
    pub port: u16,
}

/// What a [`Resolver`] returns.
pub type Lookup<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Resolves seed names. [`DnsResolver`] is the default; [`StaticResolver`] answers from a
/// table its owner changes (for tests).
pub trait Resolver: Send + Sync + 'static {
    /// Every address of `host`, on `port`.
    fn lookup_host<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a, Vec<SocketAddr>>;
    /// The SRV records of `name`.
    fn lookup_srv<'a>(&'a self, name: &'a str) -> Lookup<'a, Vec<SrvRecord>>;
}

/// Every address `seed` stands for now.
///
/// # Errors
/// The resolver failed for the seed (or for every target of an SRV seed).
pub async fn resolve(resolver: &dyn Resolver, seed: &Seed) -> io::Result<Vec<SocketAddr>> {
    match seed {
        Seed::Addr(addr) => Ok(vec![*addr]),
        Seed::Host { host, port } | Seed::Dns { host, port } => {
            resolver.lookup_host(host, *port).await
        }
        Seed::DnsSrv { name } => {
            let records = resolver.lookup_srv(name).await?;
            let mut addrs = Vec::new();
            let mut last_error = None;
            for record in &records {
                match resolver.lookup_host(&record.target, record.port).await {
                    Ok(found) => addrs.extend(found),
                    Err(error) => last_error = Some(error),
                }
            }
            match last_error {
                Some(error) if addrs.is_empty() => Err(error),
                _ => Ok(addrs),
            }
        }
    }
}

/// The default resolver: the system's (`tokio::net::lookup_host`) for A/AAAA, and SRV
/// questions over UDP to the first `nameserver` of `/etc/resolv.conf` (or the one given).
#[derive(Clone, Debug, Default)]
pub struct DnsResolver {
    nameserver: Option<SocketAddr>,
}

impl DnsResolver {
    /// A resolver asking SRV questions of `nameserver` instead of the system's.
    pub fn with_nameserver(nameserver: SocketAddr) -> DnsResolver {
        DnsResolver {
            nameserver: Some(nameserver),
        }
    }
}

impl Resolver for DnsResolver {
    fn lookup_host<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a, Vec<SocketAddr>> {
        Box::pin(async move {
            let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            addrs.dedup();
            Ok(addrs)
        })
    }

    fn lookup_srv<'a>(&'a self, name: &'a str) -> Lookup<'a, Vec<SrvRecord>> {
        Box::pin(async move {
            let server = match self.nameserver {
                Some(server) => server,
                None => dns::system_nameserver()?,
            };
            dns::query_srv(server, name, DNS_TIMEOUT).await
        })
    }
}

/// A resolver answering from tables that its owner changes at any time: names it does not
/// know fail with `NotFound`. Clones share the tables.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    tables: Arc<Mutex<Tables>>,
}

#[derive(Debug, Default)]
struct Tables {
    hosts: BTreeMap<String, Vec<IpAddr>>,
    srv: BTreeMap<String, Vec<SrvRecord>>,
    lookups: u64,
}

impl StaticResolver {
    /// An empty resolver.
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// From now on `host` resolves to `ips` (none: it fails).
    pub fn set_host(&self, host: &str, ips: impl IntoIterator<Item = IpAddr>) {
        let ips: Vec<IpAddr> = ips.into_iter().collect();
        let mut tables = self.lock();
        if ips.is_empty() {
            tables.hosts.remove(host);
        } else {
            tables.hosts.insert(host.to_string(), ips);
        }
    }

    /// From now on `name` has these SRV records.
    pub fn set_srv(&self, name: &str, records: impl IntoIterator<Item = SrvRecord>) {
        let records = records.into_iter().collect();
        self.lock().srv.insert(name.to_string(), records);
    }

    /// How many lookups were asked of it so far.
    pub fn lookups(&self) -> u64 {
        self.lock().lookups
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn not_found(name: &str) -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, format!("{name} is not known"))
    }
}

impl Resolver for StaticResolver {
    fn lookup_host<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a, Vec<SocketAddr>> {
        let mut tables = self.lock();
        tables.lookups += 1;
        let found = match tables.hosts.get(host) {
            Some(ips) => Ok(ips.iter().map(|&ip| SocketAddr::new(ip, port)).collect()),
            None => Err(StaticResolver::not_found(host)),
        };
        Box::pin(std::future::ready(found))
    }

    fn lookup_srv<'a>(&'a self, name: &'a str) -> Lookup<'a, Vec<SrvRecord>> {
        let mut tables = self.lock();
        tables.lookups += 1;
        let found = tables
            .srv
            .get(name)
            .cloned()
            .ok_or_else(|| StaticResolver::not_found(name));
        Box::pin(std::future::ready(found))
    }
}

pub use crate::join::JoinSettings;

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JoinFailure {
    pub(super) attempts: u32,
    pub(super) seen: usize,
}

/// The join task: joins the seeds with back-off, reports the outcome, then rejoins.
pub(super) struct Joiner {
    pub(super) seeds: Vec<Seed>,
    pub(super) resolver: Arc<dyn Resolver>,
    pub(super) settings: JoinSettings,
    pub(super) rejoin: Option<Duration>,
    pub(super) commands: mpsc::WeakSender<Command>,
    pub(super) counters: Arc<Counters>,
}

impl Joiner {
    /// Runs until the node stops. `outcome` hears whether the first join succeeded.
    pub(super) async fn run(self, outcome: oneshot::Sender<Result<(), JoinFailure>>) {
        let result = self.join().await;
        let Ok(result) = result else { return };
        if let Err(failure) = &result {
            tracing::warn!(
                seeds = ?self.seeds.iter().map(ToString::to_string).collect::<Vec<_>>(),
                attempts = failure.attempts,
                members_seen = failure.seen,
                "join failed"
            );
        }
        let _ = outcome.send(result);
        let Some(period) = self.rejoin.filter(|_| self.seeds.iter().any(Seed::is_name)) else {
            return;
        };
        // A random first delay, so that nodes started together do not rejoin together.
        tokio::time::sleep(period.mul_f64(jitter())).await;
        loop {
            if self.attempt().await.is_err() {
                return;
            }
            tokio::time::sleep(period).await;
        }
    }

    /// Joins through the node's own retries (see [`crate::join`]); after every attempt,
    /// resolves names again for the next. `Err(())` if the node stopped.
    async fn join(&self) -> Result<Result<(), JoinFailure>, ()> {
        let addrs = self.resolve_all().await;
        let settings = self.settings.clone();
        let mut status = self
            .call(move |node, now| {
                node.start_join(now, &addrs, settings);
                node.join_status()
            })
            .await?;
        let mut resolved_for = status.attempts();
        loop {
            match status {
                JoinStatus::Joined { attempts } => {
                    tracing::debug!(attempts, "joined");
                    return Ok(Ok(()));
                }
                JoinStatus::Failed { attempts, seen } => {
                    return Ok(Err(JoinFailure { attempts, seen }));
                }
                JoinStatus::Idle | JoinStatus::Joining { .. } => {}
            }
            if status.attempts() > resolved_for && self.seeds.iter().any(Seed::is_name) {
                resolved_for = status.attempts();
                let addrs = self.resolve_all().await;
                self.call(move |node, _| node.set_join_seeds(&addrs))
                    .await?;
            }
            tokio::time::sleep(JOIN_POLL).await;
            status = self.call(|node, _| node.join_status()).await?;
        }
    }

    /// Every address the seeds stand for now, sorted and without repeats; a seed that does not
    /// resolve is logged and skipped.
    async fn resolve_all(&self) -> Vec<SocketAddr> {
        let mut addrs = Vec::new();
        for seed in &self.seeds {
            match resolve(self.resolver.as_ref(), seed).await {
                Ok(found) if found.is_empty() => {
                    tracing::warn!(%seed, "seed resolved to no address");
                }
                Ok(found) => addrs.extend(found),
                Err(error) => tracing::warn!(%seed, %error, "seed did not resolve"),
            }
        }
        addrs.sort_unstable();
        addrs.dedup();
        addrs
    }

    /// Resolves every seed and joins the addresses found once (a rejoin); `Err(())` if the
    /// node stopped.
    async fn attempt(&self) -> Result<(), ()> {
        let addrs = self.resolve_all().await;
        if addrs.is_empty() {
            return Ok(());
        }
        Counters::incr(&self.counters.join_attempts);
        tracing::debug!(?addrs, "rejoining");
        self.call(move |node, now| node.join_once(now, &addrs))
            .await
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::Node, std::time::Instant) -> T + Send + 'static,
    ) -> Result<T, ()> {
        let commands = self.commands.upgrade().ok_or(())?;
        let (tx, rx) = oneshot::channel();
        let call = Box::new(move |node: &mut crate::Node, now| {
            let _ = tx.send(f(node, now));
        });
        commands.send(Command::Call(call)).await.map_err(|_| ())?;
        drop(commands);
        rx.await.map_err(|_| ())
    }
}

/// A number in `[0, 1)` that differs between calls and processes.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    (hasher.finish() % 1_000_000) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_read_like_dskit_join_addresses() {
        let seed = |s: &str| s.parse::<Seed>().unwrap();
        assert_eq!(
            seed("10.0.0.1:7946"),
            Seed::Addr("10.0.0.1:7946".parse().unwrap())
        );
        assert_eq!(
            seed("[::1]:7946"),
            Seed::Addr("[::1]:7946".parse().unwrap())
        );
        assert_eq!(
            seed("rumour-0.rumour:7946"),
            Seed::Host {
                host: "rumour-0.rumour".into(),
                port: 7946
            }
        );
        assert_eq!(
            seed("dns+rumour.default.svc:7946"),
            Seed::Dns {
                host: "rumour.default.svc".into(),
                port: 7946
            }
        );
        assert_eq!(
            seed("dns+10.0.0.1:7946"),
            Seed::Dns {
                host: "10.0.0.1".into(),
                port: 7946
            }
        );
        assert_eq!(
            seed("dnssrv+_gossip._tcp.rumour.default.svc"),
            Seed::DnsSrv {
                name: "_gossip._tcp.rumour.default.svc".into()
            }
        );
        for s in ["dns+rumour.svc:7946", "dnssrv+_g._tcp.svc", "host:1"] {
            assert_eq!(seed(s).to_string(), s, "displayed as given");
        }
        for bad in ["rumour", "host:port", "dnssrv+", "dns+:7946", "dnsx+host:1"] {
            assert!(bad.parse::<Seed>().is_err(), "{bad} is refused");
        }
    }

    #[tokio::test]
    async fn srv_seeds_resolve_to_every_target_on_its_port() {
        let resolver = StaticResolver::new();
        resolver.set_host("pod-0", ["10.0.0.1".parse().unwrap()]);
        resolver.set_host("pod-1", ["10.0.0.2".parse().unwrap()]);
        resolver.set_srv(
            "_g._tcp.svc",
            [
                SrvRecord {
                    target: "pod-0".into(),
                    port: 7001,
                },
                SrvRecord {
                    target: "pod-1".into(),
                    port: 7002,
                },
                SrvRecord {
                    target: "gone".into(),
                    port: 7003,
                },
            ],
        );
        let seed: Seed = "dnssrv+_g._tcp.svc".parse().unwrap();
        let addrs = resolve(&resolver, &seed).await.unwrap();
        assert_eq!(
            addrs,
            vec![
                "10.0.0.1:7001".parse().unwrap(),
                "10.0.0.2:7002".parse().unwrap()
            ],
            "a target that does not resolve is skipped"
        );
        let unknown: Seed = "dns+nowhere:1".parse().unwrap();
        let error = resolve(&resolver, &unknown).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_static_name_resolves_to_what_its_owner_set_last() {
        let resolver = StaticResolver::new();
        let seed: Seed = "dns+svc:7946".parse().unwrap();
        resolver.set_host("svc", ["10.0.0.1".parse().unwrap()]);
        assert_eq!(
            resolve(&resolver, &seed).await.unwrap(),
            vec!["10.0.0.1:7946".parse().unwrap()]
        );
        resolver.set_host(
            "svc",
            ["10.0.0.7".parse().unwrap(), "10.0.0.8".parse().unwrap()],
        );
        assert_eq!(resolve(&resolver, &seed).await.unwrap().len(), 2);
        assert_eq!(resolver.lookups(), 2);
    }

    #[tokio::test]
    async fn the_dns_resolver_asks_its_nameserver_for_srv_records() {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let nameserver = server.local_addr().unwrap();
        let answering = tokio::spawn(async move {
            let mut buf = [0; 512];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let reply = dns::tests::answer(&buf[..n], &[(7946, "localhost.")]);
            server.send_to(&reply, from).await.unwrap();
        });
        let resolver = DnsResolver::with_nameserver(nameserver);
        let seed: Seed = "dnssrv+_gossip._tcp.rumour.test".parse().unwrap();
        let addrs = resolve(&resolver, &seed).await.unwrap();
        answering.await.unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 7946),
            "{addrs:?}"
        );
    }
}
