//! The mapping between memberlist's messages and the SWIM machine's, both ways (the table is in
//! `docs/protocol-memberlist.md`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use rumour_memberlist::{self as ml, Message as MlMessage, NodeState, PushNodeState, Vsn};
use rumour_swim::message::{self as sm, Message as SwimMessage};
use rumour_swim::{Incarnation, Member, NodeName, State, Swim};

/// An address from memberlist's IP bytes (4 or 16; an IPv4-mapped IPv6 address is IPv4).
pub(crate) fn socket_addr(ip: &[u8], port: u16) -> Option<SocketAddr> {
    let ip = match ip.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(ip).ok()?),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// memberlist's IP bytes of an address (4 for IPv4, 16 for IPv6).
pub(crate) fn ip_bytes(addr: SocketAddr) -> Vec<u8> {
    match addr.ip() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn name(text: &str) -> Option<NodeName> {
    NodeName::new(text).ok()
}

fn state_to_ml(state: State) -> NodeState {
    match state {
        State::Alive => NodeState::Alive,
        State::Suspect => NodeState::Suspect,
        State::Dead => NodeState::Dead,
        State::Left => NodeState::Left,
    }
}

fn state_to_swim(state: NodeState) -> State {
    match state {
        NodeState::Alive => State::Alive,
        NodeState::Suspect => State::Suspect,
        NodeState::Dead => State::Dead,
        NodeState::Left => State::Left,
    }
}

/// A member as a push/pull entry.
pub(crate) fn from_swim_member(member: &Member, vsn: Vsn) -> PushNodeState {
    PushNodeState {
        name: member.name.as_str().to_string(),
        addr: ip_bytes(member.addr),
        port: member.addr.port(),
        meta: member.meta.to_vec(),
        incarnation: member.incarnation.0,
        state: state_to_ml(member.state),
        vsn,
    }
}

/// The alive claim a memberlist ping or indirect ping stands for: memberlist's probes name their
/// source (name and address) but carry no incarnation or metadata, so the member table's own
/// record stands in when it knows the source; an unknown source is announced at incarnation 0
/// (any alive of its own overrides it).
fn source_alive(
    swim: &Swim,
    from: SocketAddr,
    source_node: &str,
    source_addr: &[u8],
    source_port: u16,
) -> Option<sm::Alive> {
    let addr = if source_addr.is_empty() {
        from
    } else {
        socket_addr(source_addr, source_port)?
    };
    let member = if source_node.is_empty() {
        swim.members().find(|m| m.addr == addr)
    } else {
        swim.member(source_node)
    };
    match member {
        Some(m) => Some(sm::Alive {
            name: m.name,
            addr: m.addr,
            incarnation: m.incarnation,
            meta: m.meta,
        }),
        None => Some(sm::Alive {
            name: name(source_node)?,
            addr,
            incarnation: Incarnation(0),
            meta: Bytes::new(),
        }),
    }
}

/// A memberlist packet message (not a user message) as the machine's, received from `from`.
pub(crate) fn to_swim(swim: &Swim, from: SocketAddr, message: MlMessage) -> Option<SwimMessage> {
    Some(match message {
        MlMessage::Ping(p) => SwimMessage::Ping(sm::Ping {
            seq: p.seq_no,
            target: if p.node.is_empty() {
                swim.local_name().clone()
            } else {
                name(&p.node)?
            },
            source: source_alive(swim, from, &p.source_node, &p.source_addr, p.source_port)?,
        }),
        MlMessage::IndirectPing(p) => SwimMessage::IndirectPing(sm::IndirectPing {
            seq: p.seq_no,
            target: name(&p.node)?,
            target_addr: socket_addr(&p.target, p.port)?,
            nack: p.nack,
            source: source_alive(swim, from, &p.source_node, &p.source_addr, p.source_port)?,
        }),
        MlMessage::Ack(a) => SwimMessage::Ack(sm::Ack { seq: a.seq_no }),
        MlMessage::Nack(n) => SwimMessage::Nack(sm::Nack { seq: n.seq_no }),
        MlMessage::Suspect(s) => SwimMessage::Suspect(sm::Suspect {
            name: name(&s.node)?,
            incarnation: Incarnation(s.incarnation),
            from: name(&s.from)?,
        }),
        MlMessage::Alive(a) => SwimMessage::Alive(sm::Alive {
            name: name(&a.node)?,
            addr: socket_addr(&a.addr, a.port)?,
            incarnation: Incarnation(a.incarnation),
            meta: Bytes::from(a.meta),
        }),
        MlMessage::Dead(d) => SwimMessage::Dead(sm::Dead {
            name: name(&d.node)?,
            incarnation: Incarnation(d.incarnation),
            from: name(&d.from)?,
        }),
        MlMessage::User(_) => return None,
    })
}

/// One of the machine's packet messages as memberlist's, sent by `local` at `local_addr`; an
/// alive carries `vsn`. Full state and digests have no packet form (`None`).
pub(crate) fn from_swim(
    local: &str,
    local_addr: SocketAddr,
    vsn: Vsn,
    message: SwimMessage,
) -> Option<MlMessage> {
    Some(match message {
        SwimMessage::Ping(p) => MlMessage::Ping(ml::Ping {
            seq_no: p.seq,
            node: p.target.as_str().to_string(),
            source_addr: ip_bytes(local_addr),
            source_port: local_addr.port(),
            source_node: local.to_string(),
        }),
        SwimMessage::IndirectPing(p) => MlMessage::IndirectPing(ml::IndirectPing {
            seq_no: p.seq,
            target: ip_bytes(p.target_addr),
            port: p.target_addr.port(),
            node: p.target.as_str().to_string(),
            nack: p.nack,
            source_addr: ip_bytes(local_addr),
            source_port: local_addr.port(),
            source_node: local.to_string(),
        }),
        SwimMessage::Ack(a) => MlMessage::Ack(ml::Ack {
            seq_no: a.seq,
            payload: Vec::new(),
        }),
        SwimMessage::Nack(n) => MlMessage::Nack(ml::Nack { seq_no: n.seq }),
        SwimMessage::Alive(a) => MlMessage::Alive(ml::Alive {
            incarnation: a.incarnation.0,
            node: a.name.as_str().to_string(),
            addr: ip_bytes(a.addr),
            port: a.addr.port(),
            meta: a.meta.to_vec(),
            vsn,
        }),
        SwimMessage::Suspect(s) => MlMessage::Suspect(ml::Suspect {
            incarnation: s.incarnation.0,
            node: s.name.as_str().to_string(),
            from: s.from.as_str().to_string(),
        }),
        SwimMessage::Dead(d) => MlMessage::Dead(ml::Dead {
            incarnation: d.incarnation.0,
            node: d.name.as_str().to_string(),
            from: d.from.as_str().to_string(),
        }),
        SwimMessage::State(_) | SwimMessage::Digest(_) => return None,
    })
}

/// A memberlist push/pull from `from` as the machine's state exchange. memberlist's push/pull
/// names no sender:
///
/// - the reply to our request (`reply_to` is the request's join flag) comes on the connection
///   we dialed, so its sender is the entry at the address dialed, confirmed like a native reply;
/// - a request (answered already) is merged as a reply whose source is on no host, so that it
///   confirms nobody: members sharing a host (loopback) cannot be told apart by the peer's IP,
///   and the machine confirms the new members with its own pings instead.
pub(crate) fn state_exchange(
    local: &str,
    from: SocketAddr,
    reply_to: Option<bool>,
    remote: &ml::PushPull,
) -> Option<SwimMessage> {
    let mut members = Vec::with_capacity(remote.nodes.len());
    for node in &remote.nodes {
        // An entry that does not map (a name rumour refuses, a bad address) is skipped, as
        // memberlist skips nodes it cannot merge.
        let (Some(n), Some(addr)) = (name(&node.name), socket_addr(&node.addr, node.port)) else {
            continue;
        };
        members.push(sm::MemberState {
            name: n,
            addr,
            incarnation: Incarnation(node.incarnation),
            meta: Bytes::from(node.meta.clone()),
            state: state_to_swim(node.state),
        });
    }
    let (source, source_addr, join) = match reply_to {
        Some(join) => {
            let source = members
                .iter()
                .find(|m| m.addr == from)
                .or_else(|| members.iter().find(|m| m.name.as_str() != local))?;
            (source.name.clone(), from, join)
        }
        None => {
            let source = members.iter().find(|m| m.name.as_str() != local)?;
            let nowhere = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
            (source.name.clone(), nowhere, false)
        }
    };
    Some(SwimMessage::State(sm::StateExchange {
        exchange: sm::Exchange::Reply,
        join,
        source,
        source_addr,
        members,
    }))
}
