//! Forged packets of every class from the hostile-network issue, built with the real encoders:
//! a forged death and suspicion at the highest incarnation, reflection requests that name a
//! third party, a member flood (datagrams and a state exchange), and far-future timestamps that
//! would delete the ring or plant a key. Shared by the simulator and real-socket tests.

use std::net::SocketAddr;

use bytes::Bytes;
use rumour_cluster::envelope::{self, Channel};
use rumour_cluster::gossip::{KeyChange, Marker, Message as KvMessage, Session};
use rumour_cluster::ring::{Instance, Mergeable, Ring, State as InstanceState, Timestamp, Tokens};
use rumour_cluster::swim::message::{
    Alive, Dead, Exchange, IndirectPing, MemberState, Message, Ping, StateExchange, Suspect,
};
use rumour_cluster::swim::{Incarnation, NodeName, State};
use rumour_cluster::transport::frame::FrameCodec;

/// The key a forged write would plant.
pub const PLANTED_KEY: &str = "forged";
/// How many fake members the flood announces.
pub const FLOOD: usize = 64;

fn name(n: &str) -> NodeName {
    NodeName::new(n).expect("valid name")
}

/// A far-future ring holding one fake instance.
fn future_ring() -> Ring {
    let mut ring = Ring::new();
    let instance = Instance::new(
        "10.66.0.1:7946",
        "zone-x",
        InstanceState::Active,
        Tokens::new(vec![1, 2, 3]),
        Timestamp(u64::MAX / 2),
    );
    ring.set_instance("intruder", instance)
        .expect("valid instance");
    ring
}

/// The tagged datagram messages and stream bodies of every forged class.
pub struct Forged {
    /// Each is one message for a datagram (channel tag included).
    pub datagrams: Vec<Vec<u8>>,
    /// Each is one stream body (envelope parts).
    pub streams: Vec<Vec<u8>>,
}

/// Forged messages against `victim` (a live member), claimed to come from `accuser` (another
/// live member), with reflection requests naming `third_party`.
pub fn forge(victim: &str, accuser: &str, third_party: SocketAddr) -> Forged {
    let swim = |m: Message| envelope::tag(Channel::Swim, &m.encode());
    let kv = |m: KvMessage| envelope::tag(Channel::Gossip, &m.encode());
    let far = Incarnation(u32::MAX);
    let mut datagrams = vec![
        // Forged death and suspicion.
        swim(Message::Dead(Dead {
            name: name(victim),
            incarnation: far,
            from: name(accuser),
        })),
        swim(Message::Suspect(Suspect {
            name: name(victim),
            incarnation: far,
            from: name(accuser),
        })),
        // Reflection: a ping and an indirect ping whose answers would go to a third party.
        swim(Message::Ping(Ping {
            seq: 1,
            target: name(victim),
            source: Alive {
                name: name("reflector"),
                addr: third_party,
                incarnation: Incarnation(1),
                meta: Bytes::new(),
            },
        })),
        swim(Message::IndirectPing(IndirectPing {
            seq: 2,
            target: name("third-party"),
            target_addr: third_party,
            nack: true,
            source: Alive {
                name: name("reflector"),
                addr: third_party,
                incarnation: Incarnation(1),
                meta: Bytes::new(),
            },
        })),
        kv(KvMessage::FullState {
            session: Session {
                from: third_party,
                id: 7,
            },
            request: true,
            entries: Vec::new(),
        }),
        // Far-future timestamps: delete the ring, plant a key.
        kv(KvMessage::Change(KeyChange {
            key: "ring".to_string(),
            codec: Ring::CODEC_ID.to_string(),
            value: None,
            marker: Marker {
                updated: Timestamp(u64::MAX),
                deleted: true,
            },
        })),
        kv(KvMessage::Change(KeyChange {
            key: PLANTED_KEY.to_string(),
            codec: Ring::CODEC_ID.to_string(),
            value: Some(Bytes::from(future_ring().encode())),
            marker: Marker {
                updated: Timestamp(u64::MAX),
                deleted: false,
            },
        })),
    ];
    // Member flood.
    for i in 0..FLOOD {
        datagrams.push(swim(Message::Alive(Alive {
            name: name(&format!("fake-{i}")),
            addr: SocketAddr::from(([10, 66, (i / 250) as u8, (i % 250) as u8 + 1], 7946)),
            incarnation: far,
            meta: Bytes::new(),
        })));
    }
    let members = (0..FLOOD)
        .map(|i| MemberState {
            name: name(&format!("flood-{i}")),
            addr: SocketAddr::from(([10, 67, 0, i as u8 + 1], 7946)),
            incarnation: far,
            meta: Bytes::new(),
            state: State::Alive,
        })
        .chain([MemberState {
            name: name(victim),
            addr: third_party,
            incarnation: far,
            meta: Bytes::new(),
            state: State::Dead,
        }])
        .collect();
    let exchange = Message::State(StateExchange {
        exchange: Exchange::Request,
        join: true,
        source: name("flooder"),
        source_addr: third_party,
        members,
    })
    .encode();
    let full_state = KvMessage::FullState {
        session: Session {
            from: third_party,
            id: 8,
        },
        request: true,
        entries: vec![KeyChange {
            key: PLANTED_KEY.to_string(),
            codec: Ring::CODEC_ID.to_string(),
            value: Some(Bytes::from(future_ring().encode())),
            marker: Marker {
                updated: Timestamp(u64::MAX),
                deleted: false,
            },
        }],
    }
    .encode();
    let streams = vec![envelope::encode_stream(&[
        (Channel::Swim, &exchange[..]),
        (Channel::Gossip, &full_state[..]),
    ])];
    Forged { datagrams, streams }
}

/// Frames every forged message with `codec`: one datagram per message (so that each is counted
/// on its own), and one stream frame per stream body. Returns `(datagrams, streams)`.
pub fn frame(codec: &FrameCodec, forged: &Forged) -> (Vec<Bytes>, Vec<Bytes>) {
    let datagrams = forged
        .datagrams
        .iter()
        .map(|m| Bytes::from(codec.encode_packet(&[&m[..]])))
        .collect();
    let streams = forged
        .streams
        .iter()
        .map(|s| Bytes::from(codec.encode_stream(s).expect("under the limit")))
        .collect();
    (datagrams, streams)
}
