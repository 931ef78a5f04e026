//! memberlist's message bodies (`net.go`): one type byte, then a MessagePack map keyed by the Go
//! field names in sorted order.

use crate::msgpack::{self, Reader};
use crate::{Error, Limits};

/// The first byte of every memberlist message (`messageType` in `net.go`; "ONLY APPEND").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// `pingMsg`: a direct probe.
    Ping = 0,
    /// `indirectPingMsg`: ask a peer to probe a target for us.
    IndirectPing = 1,
    /// `ackRespMsg`: a probe's answer, with the ping delegate's payload.
    Ack = 2,
    /// `suspectMsg`: gossip that a member is suspected.
    Suspect = 3,
    /// `aliveMsg`: gossip that a member is alive (and a join's announcement).
    Alive = 4,
    /// `deadMsg`: gossip that a member is dead, or left when `From == Node`.
    Dead = 5,
    /// `pushPullMsg`: full state exchange over a stream.
    PushPull = 6,
    /// `compoundMsg`: several messages in one packet.
    Compound = 7,
    /// `userMsg`: an application message.
    User = 8,
    /// `compressMsg`: an LZW-compressed message.
    Compress = 9,
    /// `encryptMsg`: an encrypted stream.
    Encrypt = 10,
    /// `nackRespMsg`: an indirect probe's "no answer".
    Nack = 11,
    /// `hasCrcMsg`: a CRC-32 over the rest of the packet.
    HasCrc = 12,
    /// `errMsg`: a stream's error reply.
    Err = 13,
}

impl MessageType {
    /// The type a byte names, if any.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Ping,
            1 => Self::IndirectPing,
            2 => Self::Ack,
            3 => Self::Suspect,
            4 => Self::Alive,
            5 => Self::Dead,
            6 => Self::PushPull,
            7 => Self::Compound,
            8 => Self::User,
            9 => Self::Compress,
            10 => Self::Encrypt,
            11 => Self::Nack,
            12 => Self::HasCrc,
            13 => Self::Err,
            _ => return None,
        })
    }
}

/// The six version bytes every member announces, in memberlist's order: protocol min, max,
/// current, then delegate min, max, current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Vsn {
    /// Lowest memberlist protocol version understood (memberlist 0.2.2: 1).
    pub protocol_min: u8,
    /// Highest memberlist protocol version understood (memberlist 0.2.2: 5).
    pub protocol_max: u8,
    /// Protocol version spoken (memberlist's default: 2).
    pub protocol_cur: u8,
    /// Lowest delegate protocol version understood.
    pub delegate_min: u8,
    /// Highest delegate protocol version understood.
    pub delegate_max: u8,
    /// Delegate protocol version spoken.
    pub delegate_cur: u8,
}

impl Vsn {
    /// What memberlist 0.2.2 announces by default: protocol [1, 5] speaking 2, delegate 0.
    pub const MEMBERLIST_DEFAULT: Self = Self {
        protocol_min: 1,
        protocol_max: 5,
        protocol_cur: 2,
        delegate_min: 0,
        delegate_max: 0,
        delegate_cur: 0,
    };

    /// The bytes in wire order.
    pub fn to_bytes(self) -> [u8; 6] {
        [
            self.protocol_min,
            self.protocol_max,
            self.protocol_cur,
            self.delegate_min,
            self.delegate_max,
            self.delegate_cur,
        ]
    }

    /// Reads the six bytes; any other length is an error (memberlist 0.2.2 indexes all six).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        match *bytes {
            [
                protocol_min,
                protocol_max,
                protocol_cur,
                delegate_min,
                delegate_max,
                delegate_cur,
            ] => Ok(Self {
                protocol_min,
                protocol_max,
                protocol_cur,
                delegate_min,
                delegate_max,
                delegate_cur,
            }),
            _ => Err(Error::Vsn(bytes.len())),
        }
    }
}

/// `ping`: a direct probe. `Node` names the intended target so a restarted process under another
/// name does not answer for the old one. The `Source*` fields (omitted when empty) let the target
/// answer a relayed ping directly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ping {
    /// Sequence number the ack echoes.
    pub seq_no: u32,
    /// The target's name.
    pub node: String,
    /// The prober's IP (4 or 16 bytes); empty: not sent.
    pub source_addr: Vec<u8>,
    /// The prober's port; 0: not sent.
    pub source_port: u16,
    /// The prober's name; empty: not sent.
    pub source_node: String,
}

/// `indirectPingReq`: ask the receiver to ping `Target:Port` (named `Node`) and relay the ack.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndirectPing {
    /// Sequence number of the original probe; the relayed ack and the nack carry it.
    pub seq_no: u32,
    /// The target's IP (4 or 16 bytes).
    pub target: Vec<u8>,
    /// The target's port.
    pub port: u16,
    /// The target's name.
    pub node: String,
    /// Whether the requester wants a nack if the target does not answer (protocol ≥ 4).
    pub nack: bool,
    /// The requester's IP; empty: not sent.
    pub source_addr: Vec<u8>,
    /// The requester's port; 0: not sent.
    pub source_port: u16,
    /// The requester's name; empty: not sent.
    pub source_node: String,
}

/// `ackResp`: the answer to a ping, with the ping delegate's payload (empty when none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ack {
    /// The ping's sequence number.
    pub seq_no: u32,
    /// `PingDelegate.AckPayload()`; empty is sent as nil.
    pub payload: Vec<u8>,
}

/// `nackResp`: an intermediary's report that the target of an indirect probe did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nack {
    /// The indirect ping's sequence number.
    pub seq_no: u32,
}

/// `suspect`: `From` suspects `Node` at `Incarnation`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suspect {
    /// The incarnation the accusation is about.
    pub incarnation: u32,
    /// The suspected member.
    pub node: String,
    /// The accuser.
    pub from: String,
}

/// `alive`: `Node` is alive at `Incarnation`, reachable at `Addr:Port`, with metadata and versions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alive {
    /// The member's incarnation.
    pub incarnation: u32,
    /// The member's name.
    pub node: String,
    /// The member's IP (4 or 16 bytes).
    pub addr: Vec<u8>,
    /// The member's port.
    pub port: u16,
    /// Node metadata (`Delegate.NodeMeta`, at most 512 bytes in memberlist); empty is sent as nil.
    pub meta: Vec<u8>,
    /// The member's protocol and delegate versions.
    pub vsn: Vsn,
}

/// `dead`: `From` declares `Node` dead at `Incarnation`; `From == Node` is a graceful leave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dead {
    /// The incarnation the declaration is about.
    pub incarnation: u32,
    /// The dead (or leaving) member.
    pub node: String,
    /// Who declares it; the member itself when it leaves.
    pub from: String,
}

impl Dead {
    /// Whether this is a graceful leave (memberlist's `StateLeft`).
    pub fn is_leave(&self) -> bool {
        self.node == self.from
    }
}

/// `errResp`: the error a stream's responder sends back when it cannot read the request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrResp {
    /// The error text.
    pub error: String,
}

/// A member's state in a push/pull (`NodeStateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum NodeState {
    /// `StateAlive` (0).
    #[default]
    Alive,
    /// `StateSuspect` (1).
    Suspect,
    /// `StateDead` (2). memberlist merges a remote "dead" as a suspicion.
    Dead,
    /// `StateLeft` (3).
    Left,
}

impl NodeState {
    fn to_wire(self) -> u64 {
        match self {
            Self::Alive => 0,
            Self::Suspect => 1,
            Self::Dead => 2,
            Self::Left => 3,
        }
    }

    fn from_wire(value: i128) -> Result<Self, Error> {
        match value {
            0 => Ok(Self::Alive),
            1 => Ok(Self::Suspect),
            2 => Ok(Self::Dead),
            3 => Ok(Self::Left),
            other => Err(Error::NodeState(i64::try_from(other).unwrap_or(i64::MAX))),
        }
    }
}

/// `pushNodeState`: one member in a push/pull.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushNodeState {
    /// The member's name.
    pub name: String,
    /// The member's IP.
    pub addr: Vec<u8>,
    /// The member's port.
    pub port: u16,
    /// The member's metadata; empty is sent as nil.
    pub meta: Vec<u8>,
    /// The member's incarnation.
    pub incarnation: u32,
    /// What the sender believes about it.
    pub state: NodeState,
    /// The member's versions.
    pub vsn: Vsn,
}

/// A push/pull: `pushPullHeader{Nodes, UserStateLen, Join}`, the node states, then the raw
/// delegate state (`Delegate.LocalState`) as plain bytes after the MessagePack values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushPull {
    /// Whether this is a join (true) or periodic anti-entropy (false).
    pub join: bool,
    /// Every member the sender holds, itself included, dead and left ones not yet reaped too.
    pub nodes: Vec<PushNodeState>,
    /// The delegate's local state (dskit: its KV store); empty when none.
    pub user_state: Vec<u8>,
}

fn put_type(out: &mut Vec<u8>, kind: MessageType) {
    out.push(kind as u8);
}

impl Ping {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        let omitted = [
            self.source_addr.is_empty(),
            self.source_node.is_empty(),
            self.source_port == 0,
        ];
        msgpack::write_map_len(out, 2 + omitted.iter().filter(|o| !**o).count() as u32);
        msgpack::field_raw(out, "Node", self.node.as_bytes());
        msgpack::field_uint(out, "SeqNo", u64::from(self.seq_no));
        if !self.source_addr.is_empty() {
            msgpack::field_raw(out, "SourceAddr", &self.source_addr);
        }
        if !self.source_node.is_empty() {
            msgpack::field_raw(out, "SourceNode", self.source_node.as_bytes());
        }
        if self.source_port != 0 {
            msgpack::field_uint(out, "SourcePort", u64::from(self.source_port));
        }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Self::default();
        for _ in 0..r.map_len("ping")? {
            match r.raw("field name")? {
                b"SeqNo" => m.seq_no = r.uint("SeqNo")?,
                b"Node" => m.node = r.string("Node")?,
                b"SourceAddr" => m.source_addr = r.raw("SourceAddr")?.to_vec(),
                b"SourcePort" => m.source_port = r.uint("SourcePort")?,
                b"SourceNode" => m.source_node = r.string("SourceNode")?,
                _ => r.skip()?,
            }
        }
        Ok(m)
    }
}

impl IndirectPing {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        let omitted = [
            self.source_addr.is_empty(),
            self.source_node.is_empty(),
            self.source_port == 0,
        ];
        msgpack::write_map_len(out, 5 + omitted.iter().filter(|o| !**o).count() as u32);
        msgpack::write_raw(out, b"Nack");
        msgpack::write_bool(out, self.nack);
        msgpack::field_raw(out, "Node", self.node.as_bytes());
        msgpack::field_uint(out, "Port", u64::from(self.port));
        msgpack::field_uint(out, "SeqNo", u64::from(self.seq_no));
        if !self.source_addr.is_empty() {
            msgpack::field_raw(out, "SourceAddr", &self.source_addr);
        }
        if !self.source_node.is_empty() {
            msgpack::field_raw(out, "SourceNode", self.source_node.as_bytes());
        }
        if self.source_port != 0 {
            msgpack::field_uint(out, "SourcePort", u64::from(self.source_port));
        }
        msgpack::write_raw(out, b"Target");
        msgpack::write_bytes_or_nil(out, &self.target);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Self::default();
        for _ in 0..r.map_len("indirect ping")? {
            match r.raw("field name")? {
                b"SeqNo" => m.seq_no = r.uint("SeqNo")?,
                b"Target" => m.target = r.raw("Target")?.to_vec(),
                b"Port" => m.port = r.uint("Port")?,
                b"Node" => m.node = r.string("Node")?,
                b"Nack" => m.nack = r.bool("Nack")?,
                b"SourceAddr" => m.source_addr = r.raw("SourceAddr")?.to_vec(),
                b"SourcePort" => m.source_port = r.uint("SourcePort")?,
                b"SourceNode" => m.source_node = r.string("SourceNode")?,
                _ => r.skip()?,
            }
        }
        Ok(m)
    }
}

impl Ack {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        msgpack::write_map_len(out, 2);
        msgpack::write_raw(out, b"Payload");
        msgpack::write_bytes_or_nil(out, &self.payload);
        msgpack::field_uint(out, "SeqNo", u64::from(self.seq_no));
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Self::default();
        for _ in 0..r.map_len("ack")? {
            match r.raw("field name")? {
                b"SeqNo" => m.seq_no = r.uint("SeqNo")?,
                b"Payload" => m.payload = r.raw("Payload")?.to_vec(),
                _ => r.skip()?,
            }
        }
        Ok(m)
    }
}

impl Nack {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        msgpack::write_map_len(out, 1);
        msgpack::field_uint(out, "SeqNo", u64::from(self.seq_no));
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Self::default();
        for _ in 0..r.map_len("nack")? {
            match r.raw("field name")? {
                b"SeqNo" => m.seq_no = r.uint("SeqNo")?,
                _ => r.skip()?,
            }
        }
        Ok(m)
    }
}

/// `suspect` and `dead` share their shape.
fn encode_accusation(out: &mut Vec<u8>, incarnation: u32, node: &str, from: &str) {
    msgpack::write_map_len(out, 3);
    msgpack::field_raw(out, "From", from.as_bytes());
    msgpack::field_uint(out, "Incarnation", u64::from(incarnation));
    msgpack::field_raw(out, "Node", node.as_bytes());
}

fn decode_accusation(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<(u32, String, String), Error> {
    let (mut incarnation, mut node, mut from) = (0, String::new(), String::new());
    for _ in 0..r.map_len(what)? {
        match r.raw("field name")? {
            b"Incarnation" => incarnation = r.uint("Incarnation")?,
            b"Node" => node = r.string("Node")?,
            b"From" => from = r.string("From")?,
            _ => r.skip()?,
        }
    }
    Ok((incarnation, node, from))
}

impl Suspect {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        encode_accusation(out, self.incarnation, &self.node, &self.from);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (incarnation, node, from) = decode_accusation(r, "suspect")?;
        Ok(Self {
            incarnation,
            node,
            from,
        })
    }
}

impl Dead {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        encode_accusation(out, self.incarnation, &self.node, &self.from);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (incarnation, node, from) = decode_accusation(r, "dead")?;
        Ok(Self {
            incarnation,
            node,
            from,
        })
    }
}

impl Alive {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        msgpack::write_map_len(out, 6);
        msgpack::write_raw(out, b"Addr");
        msgpack::write_bytes_or_nil(out, &self.addr);
        msgpack::field_uint(out, "Incarnation", u64::from(self.incarnation));
        msgpack::write_raw(out, b"Meta");
        msgpack::write_bytes_or_nil(out, &self.meta);
        msgpack::field_raw(out, "Node", self.node.as_bytes());
        msgpack::field_uint(out, "Port", u64::from(self.port));
        msgpack::field_raw(out, "Vsn", &self.vsn.to_bytes());
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Self::default();
        let mut vsn = None;
        for _ in 0..r.map_len("alive")? {
            match r.raw("field name")? {
                b"Incarnation" => m.incarnation = r.uint("Incarnation")?,
                b"Node" => m.node = r.string("Node")?,
                b"Addr" => m.addr = r.raw("Addr")?.to_vec(),
                b"Port" => m.port = r.uint("Port")?,
                b"Meta" => m.meta = r.raw("Meta")?.to_vec(),
                b"Vsn" => vsn = Some(Vsn::from_bytes(r.raw("Vsn")?)?),
                _ => r.skip()?,
            }
        }
        m.vsn = vsn.ok_or(Error::Vsn(0))?;
        Ok(m)
    }
}

impl ErrResp {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        msgpack::write_map_len(out, 1);
        msgpack::field_raw(out, "Error", self.error.as_bytes());
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Self::default();
        for _ in 0..r.map_len("error")? {
            match r.raw("field name")? {
                b"Error" => m.error = r.string("Error")?,
                _ => r.skip()?,
            }
        }
        Ok(m)
    }
}

impl PushNodeState {
    fn encode_body(&self, out: &mut Vec<u8>) {
        msgpack::write_map_len(out, 7);
        msgpack::write_raw(out, b"Addr");
        msgpack::write_bytes_or_nil(out, &self.addr);
        msgpack::field_uint(out, "Incarnation", u64::from(self.incarnation));
        msgpack::write_raw(out, b"Meta");
        msgpack::write_bytes_or_nil(out, &self.meta);
        msgpack::field_raw(out, "Name", self.name.as_bytes());
        msgpack::field_uint(out, "Port", u64::from(self.port));
        msgpack::field_uint(out, "State", self.state.to_wire());
        msgpack::field_raw(out, "Vsn", &self.vsn.to_bytes());
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Self::default();
        let mut vsn = None;
        for _ in 0..r.map_len("push node state")? {
            match r.raw("field name")? {
                b"Name" => m.name = r.string("Name")?,
                b"Addr" => m.addr = r.raw("Addr")?.to_vec(),
                b"Port" => m.port = r.uint("Port")?,
                b"Meta" => m.meta = r.raw("Meta")?.to_vec(),
                b"Incarnation" => m.incarnation = r.uint("Incarnation")?,
                b"State" => m.state = NodeState::from_wire(r.int("State")?)?,
                b"Vsn" => vsn = Some(Vsn::from_bytes(r.raw("Vsn")?)?),
                _ => r.skip()?,
            }
        }
        m.vsn = vsn.ok_or(Error::Vsn(0))?;
        Ok(m)
    }
}

impl PushPull {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        msgpack::write_map_len(out, 3);
        msgpack::write_raw(out, b"Join");
        msgpack::write_bool(out, self.join);
        msgpack::field_uint(out, "Nodes", self.nodes.len() as u64);
        msgpack::field_uint(out, "UserStateLen", self.user_state.len() as u64);
        for node in &self.nodes {
            node.encode_body(out);
        }
        out.extend_from_slice(&self.user_state);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, Error> {
        let (mut nodes, mut user_state_len, mut join) = (0usize, 0usize, false);
        for _ in 0..r.map_len("push/pull header")? {
            match r.raw("field name")? {
                b"Nodes" => nodes = r.uint("Nodes")?,
                b"UserStateLen" => user_state_len = r.uint("UserStateLen")?,
                b"Join" => join = r.bool("Join")?,
                _ => r.skip()?,
            }
        }
        if nodes > limits.max_push_nodes {
            return Err(Error::TooLarge {
                what: "push/pull node count",
                limit: limits.max_push_nodes,
            });
        }
        if user_state_len > limits.max_user_state {
            return Err(Error::TooLarge {
                what: "push/pull user state",
                limit: limits.max_user_state,
            });
        }
        // No capacity from the header: each state is read (and so present) before it is kept.
        let mut states = Vec::new();
        for _ in 0..nodes {
            states.push(PushNodeState::decode_body(r)?);
        }
        let user_state = r.take(user_state_len)?.to_vec();
        Ok(Self {
            join,
            nodes: states,
            user_state,
        })
    }
}

/// A stream user message: `userMsgHeader{UserMsgLen}` then the raw bytes.
pub(crate) fn encode_stream_user(out: &mut Vec<u8>, payload: &[u8]) {
    msgpack::write_map_len(out, 1);
    msgpack::field_uint(out, "UserMsgLen", payload.len() as u64);
    out.extend_from_slice(payload);
}

pub(crate) fn decode_stream_user(r: &mut Reader<'_>, limits: &Limits) -> Result<Vec<u8>, Error> {
    let mut len = 0usize;
    for _ in 0..r.map_len("user message header")? {
        match r.raw("field name")? {
            b"UserMsgLen" => len = r.uint("UserMsgLen")?,
            _ => r.skip()?,
        }
    }
    if len > limits.max_user_message {
        return Err(Error::TooLarge {
            what: "user message",
            limit: limits.max_user_message,
        });
    }
    Ok(r.take(len)?.to_vec())
}

/// Writes a type byte; kept next to the bodies so every encoder starts the same way.
pub(crate) fn start(out: &mut Vec<u8>, kind: MessageType) {
    put_type(out, kind);
}
