//! The `attack` scenario: honest nodes beside an attacker that sends crafted packets.
//!
//! The attacker is a host without a node ([`Sim::add_host`]) that sends, for a minute and at a
//! high rate, packets built with the real encoders: forged suspect / dead / alive claims about
//! honest members at extreme incarnations, reflection requests that name a bystander's address,
//! floods of forged members and KV keys, far-future timestamps in KV markers and ring entries,
//! and messages whose declared counts are far larger than their bytes. What it measures is what
//! the hostile-network guarantees promise: no honest member is declared failed, state stays
//! bounded, the bystander receives no more than the attacker sent, and the stores converge once
//! the attack stops.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rumour_gossip::{KeyChange, Marker, Message as KvMessage, Session};
use rumour_ring::{Instance, Mergeable, Ring, State as InstanceState, Timestamp, Tokens};
use rumour_swim::message::{
    Alive, Dead, Exchange, IndirectPing, Message as SwimMessage, Ping, StateExchange, Suspect,
};
use rumour_swim::{Incarnation, NodeName};
use rumour_transport::frame::{FrameCodec, FrameConfig};
use rumour_wire::varint;

use super::run::{Cluster, Runner, converged, name_of, rings_agree, zombies};
use super::{AttackFigures, Report, ScenarioConfig};
use crate::envelope::{self, Channel};
use crate::sim::{NodeId, SimError};
use crate::transmit::{Delivery, Transmit};

/// How long the attacker sends.
const ATTACK: Duration = Duration::from_secs(60);
/// The attacker sends a burst every this often.
const BURST_EVERY: Duration = Duration::from_millis(20);
/// Packets per burst: 200 packets per second in all.
const BURST: usize = 4;
/// How long the honest nodes get to recover once the attack stops.
const RECOVERY_LIMIT: Duration = Duration::from_secs(300);

/// The packets the attacker knows how to forge.
#[derive(Clone, Copy, Debug)]
enum Forgery {
    /// `Dead { victim, u32::MAX, from: another honest member }`.
    Death,
    /// `Suspect { victim, u32::MAX, from: another honest member }`.
    Suspicion,
    /// `Alive { victim, attacker's address, u32::MAX }`: an address takeover.
    Takeover,
    /// `Alive` for a member that does not exist, at an address nobody listens on.
    MemberFlood,
    /// A KV full-state request, in a datagram, whose session names the bystander.
    FullStateReflection,
    /// The same request over a stream.
    StreamReflection,
    /// A ping whose sender claims the bystander's address (acks would go there).
    PingReflection,
    /// An indirect ping asking to probe the bystander.
    IndirectReflection,
    /// A KV change for a fresh key.
    KeyFlood,
    /// The `ring` key deleted at `u64::MAX`.
    FarFutureDelete,
    /// An honest member's ring instance tombstoned at `u64::MAX`.
    FarFutureTombstone,
    /// A SWIM state exchange that declares 2^40 members.
    OversizedMembers,
    /// A KV full state that declares 2^40 entries.
    OversizedEntries,
    /// A direct user message naming an honest member as its sender.
    Impersonation,
}

const FORGERIES: [Forgery; 14] = [
    Forgery::Death,
    Forgery::Suspicion,
    Forgery::Takeover,
    Forgery::MemberFlood,
    Forgery::FullStateReflection,
    Forgery::StreamReflection,
    Forgery::PingReflection,
    Forgery::IndirectReflection,
    Forgery::KeyFlood,
    Forgery::FarFutureDelete,
    Forgery::FarFutureTombstone,
    Forgery::OversizedMembers,
    Forgery::OversizedEntries,
    Forgery::Impersonation,
];

/// The attacker: its host, the bystander it aims reflections at, and what it sent.
struct Attacker {
    id: NodeId,
    addr: SocketAddr,
    bystander: SocketAddr,
    honest: usize,
    rng: ChaCha8Rng,
    frame: FrameCodec,
    serial: u64,
    packets: u64,
    bytes: u64,
}

impl Attacker {
    /// One crafted packet of kind `forgery` for honest node `to`.
    fn forge(&mut self, forgery: Forgery, to: NodeId, wall: Timestamp) -> (Delivery, Vec<u8>) {
        self.serial += 1;
        let victim = NodeId(self.rng.gen_range(0..self.honest));
        let accuser = NodeId((victim.0 + 1) % self.honest);
        let name = |id: NodeId| NodeName::new(name_of(id)).expect("scenario names are valid");
        let swim = |message: SwimMessage| (Channel::Swim, message.encode().to_vec());
        let kv = |message: KvMessage| (Channel::Gossip, message.encode().to_vec());
        let (delivery, (channel, body)) = match forgery {
            Forgery::Death => (
                Delivery::Datagram,
                swim(SwimMessage::Dead(Dead {
                    name: name(victim),
                    incarnation: Incarnation(u32::MAX),
                    from: name(accuser),
                })),
            ),
            Forgery::Suspicion => (
                Delivery::Datagram,
                swim(SwimMessage::Suspect(Suspect {
                    name: name(victim),
                    incarnation: Incarnation(u32::MAX),
                    from: name(accuser),
                })),
            ),
            Forgery::Takeover => (
                Delivery::Datagram,
                swim(SwimMessage::Alive(self.alive(
                    name(victim),
                    self.addr,
                    u32::MAX,
                ))),
            ),
            Forgery::MemberFlood => {
                let forged = self.forged_member();
                (Delivery::Datagram, swim(SwimMessage::Alive(forged)))
            }
            Forgery::FullStateReflection | Forgery::StreamReflection => {
                let request = KvMessage::FullState {
                    session: Session {
                        from: self.bystander,
                        id: self.serial,
                    },
                    request: true,
                    entries: Vec::new(),
                };
                let delivery = match forgery {
                    Forgery::StreamReflection => Delivery::Stream,
                    _ => Delivery::Datagram,
                };
                (delivery, kv(request))
            }
            Forgery::PingReflection => (
                Delivery::Datagram,
                swim(SwimMessage::Ping(Ping {
                    seq: self.serial as u32,
                    target: name(to),
                    source: self.alive(name(victim), self.bystander, 1),
                })),
            ),
            Forgery::IndirectReflection => (
                Delivery::Datagram,
                swim(SwimMessage::IndirectPing(IndirectPing {
                    seq: self.serial as u32,
                    target: NodeName::new("bystander").expect("valid name"),
                    target_addr: self.bystander,
                    nack: true,
                    source: self.alive(name(accuser), self.bystander, 1),
                })),
            ),
            Forgery::KeyFlood => {
                let key = format!("flood-{}", self.serial);
                let mut ring = Ring::new();
                let instance =
                    Instance::new("x", "", InstanceState::Active, Tokens::new(vec![1]), wall);
                ring.set_instance("flood", instance)
                    .expect("a valid instance id");
                (
                    Delivery::Datagram,
                    kv(change(&key, Some(&ring), wall, false)),
                )
            }
            Forgery::FarFutureDelete => (
                Delivery::Datagram,
                kv(change("ring", None, Timestamp(u64::MAX), true)),
            ),
            Forgery::FarFutureTombstone => {
                let mut ring = Ring::new();
                let tombstone = Instance {
                    updated_at: Timestamp(u64::MAX),
                    ..Instance::new("x", "", InstanceState::Left, Tokens::empty(), wall)
                };
                ring.set_instance(&name_of(victim), tombstone)
                    .expect("a valid instance id");
                ring.set_heartbeat(&name_of(victim), Timestamp(u64::MAX))
                    .expect("a valid instance id");
                (
                    Delivery::Datagram,
                    kv(change("ring", Some(&ring), wall, false)),
                )
            }
            Forgery::OversizedMembers => {
                let exchange = SwimMessage::State(StateExchange {
                    exchange: Exchange::Request,
                    join: true,
                    source: name(accuser),
                    source_addr: self.addr,
                    members: Vec::new(),
                });
                (
                    Delivery::Stream,
                    (Channel::Swim, huge_count(exchange.encode())),
                )
            }
            Forgery::OversizedEntries => {
                let full = KvMessage::FullState {
                    session: Session {
                        from: self.addr,
                        id: self.serial,
                    },
                    request: true,
                    entries: Vec::new(),
                };
                (
                    Delivery::Stream,
                    (Channel::Gossip, huge_count(full.encode())),
                )
            }
            Forgery::Impersonation => (
                Delivery::Datagram,
                (
                    Channel::User,
                    crate::user::encode_direct(&name_of(victim), b"deploy v666"),
                ),
            ),
        };
        let bytes = match delivery {
            Delivery::Datagram => self.frame.encode_packet(&[&envelope::tag(channel, &body)]),
            Delivery::Stream => self
                .frame
                .encode_stream(&envelope::encode_stream(&[(channel, &body)]))
                .expect("forged streams are small"),
        };
        (delivery, bytes)
    }

    fn alive(&self, name: NodeName, addr: SocketAddr, incarnation: u32) -> Alive {
        Alive {
            name,
            addr,
            incarnation: Incarnation(incarnation),
            meta: Bytes::new(),
        }
    }

    /// A member that does not exist, at an address in 10.99.0.0/16 where nothing listens.
    fn forged_member(&mut self) -> Alive {
        let n = self.serial;
        let ip = Ipv4Addr::new(10, 99, (n >> 8) as u8, n as u8);
        let name = NodeName::new(format!("forged-{n}")).expect("valid name");
        self.alive(name, SocketAddr::new(ip.into(), 7946), 1)
    }
}

/// A KV change of the `ring` codec for `key`.
fn change(key: &str, ring: Option<&Ring>, updated: Timestamp, deleted: bool) -> KvMessage {
    KvMessage::Change(KeyChange {
        key: key.to_string(),
        codec: Ring::CODEC_ID.to_string(),
        value: ring.map(|r| Bytes::from(Mergeable::encode(r))),
        marker: Marker { updated, deleted },
    })
}

/// `message` (whose last field is an empty list, encoded as one zero byte) re-encoded to
/// declare 2^40 elements in that list, with nothing behind the count.
fn huge_count(message: Bytes) -> Vec<u8> {
    let mut bytes = message.to_vec();
    assert_eq!(bytes.pop(), Some(0), "the list is last and empty");
    varint::put(&mut bytes, 1 << 40);
    bytes
}

/// Runs the `attack` scenario.
pub(super) fn attack(
    config: &ScenarioConfig,
    runner: &mut Runner,
    progress: &mut dyn FnMut(f64),
) -> Result<Report, SimError> {
    let (mut cluster, joined) = converged(config, true, runner)?;
    let honest = config.nodes;
    let attacker_id = cluster.sim.add_host();
    let bystander_id = cluster.sim.add_host();
    let mut attacker = Attacker {
        id: attacker_id,
        addr: cluster.sim.addr(attacker_id),
        bystander: cluster.sim.addr(bystander_id),
        honest,
        rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0xa77a_c4e5),
        frame: FrameCodec::new(FrameConfig::default()),
        serial: 0,
        packets: 0,
        bytes: 0,
    };
    let mut figures = AttackFigures::default();
    let start = cluster.sim.elapsed();
    let mut next_sample = start;
    while cluster.sim.elapsed() < start + ATTACK {
        for _ in 0..BURST {
            send_one(&mut cluster, &mut attacker);
        }
        cluster.sim.run_for(BURST_EVERY)?;
        if cluster.sim.elapsed() >= next_sample {
            next_sample += Duration::from_secs(1);
            sample(&cluster, &mut figures);
            progress((cluster.sim.elapsed() - start).as_secs_f64() / ATTACK.as_secs_f64() / 2.0);
        }
    }
    sample(&cluster, &mut figures);
    let recovered = cluster
        .sim
        .run_until(RECOVERY_LIMIT, Duration::from_millis(100), |sim| {
            zombies(sim) == 0 && rings_agree(sim)
        })?;
    // Let forged members age out (unconfirmed entries leave after `unconfirmed_timeout`), then
    // count what is left of them.
    let unconfirmed = config.profile.swim().unconfirmed_timeout();
    cluster.sim.run_for(unconfirmed + Duration::from_secs(30))?;
    sample(&cluster, &mut figures);
    figures.packets = attacker.packets;
    figures.bytes = attacker.bytes;
    figures.reflected_bytes = cluster.sim.bytes_sent_to(bystander_id);
    figures.recovery_seconds = recovered.map(|d| d.as_secs_f64());
    figures.forged_members_left = cluster
        .sim
        .running()
        .map(|(_, node)| {
            node.members()
                .filter(|m| m.name.as_str().starts_with("forged-"))
                .count() as u64
        })
        .max()
        .unwrap_or(0);
    let honest_names: Vec<String> = (0..honest).map(|i| name_of(NodeId(i))).collect();
    let (declared, _) = cluster.false_positives(|s| honest_names.iter().any(|h| h == s));
    figures.honest_declared_failed = declared;
    // Honest nodes send no user messages here: every one reported is an impersonation.
    figures.impersonated_messages = cluster
        .sim
        .running()
        .map(|(_, node)| node.stats().user.received)
        .sum();
    let mut report = cluster.report(joined && recovered.is_some());
    report.false_positives = Some(declared);
    report.attack = Some(figures);
    Ok(report)
}

/// The attacker sends one forged packet to a random honest node.
fn send_one(cluster: &mut Cluster, attacker: &mut Attacker) {
    let to = NodeId(attacker.rng.gen_range(0..attacker.honest));
    let forgery = FORGERIES[attacker.rng.gen_range(0..FORGERIES.len())];
    let now = cluster.sim.now();
    let wall = cluster
        .sim
        .node(to)
        .map_or(Timestamp(0), |node| node.gossip().wall_time(now));
    let (delivery, bytes) = attacker.forge(forgery, to, wall);
    attacker.packets += 1;
    attacker.bytes += bytes.len() as u64;
    let transmit = Transmit {
        to: cluster.sim.addr(to),
        delivery,
        bytes: Bytes::from(bytes),
    };
    cluster.sim.send_from(attacker.id, transmit);
}

/// Records the largest state an honest node holds now.
fn sample(cluster: &Cluster, figures: &mut AttackFigures) {
    for (_, node) in cluster.sim.running() {
        figures.max_members = figures.max_members.max(node.members().count() as u64);
        figures.max_keys = figures.max_keys.max(node.gossip().stats().keys as u64);
    }
}
