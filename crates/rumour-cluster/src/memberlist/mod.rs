//! The memberlist wire mode's adapter (issue 15, `docs/protocol-memberlist.md`): sans-IO, inside
//! the [`Node`](crate::Node). It maps memberlist's messages onto the SWIM machine's and back,
//! so that the machine, unchanged, runs in a hashicorp/memberlist cluster:
//!
//! - inbound packets are decoded with [`rumour_memberlist::Codec`] (label, decryption, CRC,
//!   compression, compounds), each message mapped onto a [`rumour_swim::message::Message`]
//!   (senders derived from the member table: memberlist identifies a node by name and address,
//!   and its pings carry no incarnation) and fed to [`Swim::handle_message`];
//! - the machine's outgoing transmits are decoded ([`rumour_swim::Transmit::decode_messages`]),
//!   mapped onto memberlist's messages (with each member's six `Vsn` bytes, kept here), packed
//!   into compounds that fit memberlist's 1,400-byte UDP buffer, and wrapped (compression, CRC
//!   for peers whose protocol max is ≥ 5, AES-GCM);
//! - a push/pull request that arrives on a stream is answered on the same connection with this
//!   node's own push/pull (the state before the merge, as memberlist does), then merged;
//! - the KV store runs over memberlist's user and local-state channels as grafana/dskit's
//!   memberlist KV does ([`kv`]): its changes are user messages holding a dskit `KeyValuePair`,
//!   its whole store is a push/pull's user state;
//! - other user messages (packet and stream) carry the application's raw bytes.

mod kv;
mod map;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rumour_gossip::Gossip;
use rumour_memberlist::{
    Codec, EncryptionVersion, Message as MlMessage, PacketOptions, PushPull, Seal, StreamMessage,
    StreamOptions, Vsn, encode_compound,
};
use rumour_swim::Swim;

use crate::config::MemberlistOptions;

use map::from_swim_member;

pub(crate) use kv::KV_MESSAGE_OVERHEAD;

/// memberlist's `UDPBufferSize`: the largest packet it reads.
pub const UDP_BUFFER_SIZE: usize = 1400;
/// Bytes a packet's wrappers may add: compound header (2), CRC (5), encryption version 0 with
/// its padding (45).
const WRAPPER_OVERHEAD: usize = 2 + 5 + 45;
/// Most members whose `Vsn` is remembered (others are taken to announce memberlist's default).
const MAX_VSNS: usize = 65_536;
/// Push/pull requests awaiting their reply, at most.
const MAX_PENDING: usize = 1024;

/// Counters of the memberlist adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberlistStats {
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received and decoded.
    pub packets_received: u64,
    /// Packets or streams that did not decode (label, key, CRC, structure).
    pub decode_errors: u64,
    /// Messages that could not be mapped onto the machine's (an invalid name or address, a
    /// `Vsn` memberlist itself ignores) or that the machine refused.
    pub messages_refused: u64,
    /// Stream messages sent (push/pull requests and replies, user messages, TCP pings).
    pub streams_sent: u64,
    /// Stream messages received.
    pub streams_received: u64,
    /// Push/pull requests answered on their connection.
    pub pushpulls_answered: u64,
    /// Push/pulls refused by memberlist's protocol-version check.
    pub pushpulls_refused: u64,
    /// Outgoing messages that have no memberlist form and were not sent (state digests, the
    /// KV store's own pull-push, which memberlist's push/pull replaces).
    pub unmapped: u64,
    /// Application user messages received (packet and stream): those that are not a KV pair
    /// of a codec the KV store has registered.
    pub user_received: u64,
    /// Error replies received (`errMsg`).
    pub errors_received: u64,
    /// KV changes sent as user messages (dskit `KeyValuePair`s, packet or stream; a change is
    /// counted each time it is put in a message).
    pub kv_sent: u64,
    /// KV pairs received and handed to the KV store: user messages that decode as a
    /// `KeyValuePair` of a registered codec, and the pairs of push/pull user states.
    pub kv_received: u64,
    /// KV pairs dropped: refused by the store (a limit, a timestamp too far ahead, a value its
    /// codec cannot decode; the store's own counters say which), or in a user state, not
    /// decoding as a `KeyValuePair`.
    pub kv_refused: u64,
    /// Push/pulls sent carrying the KV store as their user state.
    pub kv_states_sent: u64,
    /// Push/pull user states merged into the KV store.
    pub kv_states_received: u64,
    /// KV user states refused whole (over `max_message_bytes` or `max_keys`), cut short by a
    /// framing error, or not sent because the store exceeds memberlist's 20 MiB user state.
    pub kv_states_refused: u64,
}

/// What one inbound stream asks of the node.
#[derive(Debug)]
pub(crate) enum StreamInput {
    /// Nothing more (handled, refused or counted).
    Done,
    /// Feed these to the machine as a stream message from the given address.
    Swim(SocketAddr, rumour_swim::message::Message),
    /// A push/pull from the given address: its member table for the machine (if it maps) and
    /// its user state for the KV store (if not empty).
    PushPull {
        /// The stream's source.
        from: SocketAddr,
        /// The member table as a state exchange.
        state: Option<rumour_swim::message::Message>,
        /// The raw user state (dskit's full-state framing).
        user_state: Vec<u8>,
    },
    /// A reliable user message's payload.
    User(Vec<u8>),
}

/// The adapter's state: the codec, the options, every member's `Vsn`, push/pulls in flight.
#[derive(Clone)]
pub(crate) struct Adapter {
    codec: Codec,
    compression: bool,
    nonces: ChaCha8Rng,
    local_vsn: Vsn,
    vsns: BTreeMap<String, Vsn>,
    /// Push/pull requests sent and awaiting their reply: address dialed, join flag.
    pending: BTreeMap<SocketAddr, bool>,
    pub(crate) stats: MemberlistStats,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("encrypted", &self.codec.keyring.is_some())
            .field("compression", &self.compression)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Adapter {
    pub(crate) fn new(options: &MemberlistOptions, nonces: ChaCha8Rng) -> Adapter {
        Adapter {
            codec: Codec {
                keyring: options.keyring.clone(),
                ..Codec::default()
            },
            compression: options.compression,
            nonces,
            local_vsn: Vsn::MEMBERLIST_DEFAULT,
            vsns: BTreeMap::new(),
            pending: BTreeMap::new(),
            stats: MemberlistStats::default(),
        }
    }

    /// The codec inbound bytes are decoded with (the driver uses a copy to find where a stream
    /// message ends).
    pub(crate) fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Replaces the nonce generator (the driver seeds one from the operating system).
    pub(crate) fn set_nonces(&mut self, nonces: ChaCha8Rng) {
        self.nonces = nonces;
    }

    /// The `Vsn` a member announced (memberlist's default if unknown).
    pub(crate) fn vsn_of(&self, name: &str, local: &str) -> Vsn {
        if name == local {
            return self.local_vsn;
        }
        self.vsns
            .get(name)
            .copied()
            .unwrap_or(Vsn::MEMBERLIST_DEFAULT)
    }

    /// Remembers a member's `Vsn`.
    pub(crate) fn note_vsn(&mut self, name: &str, vsn: Vsn) {
        if self.vsns.len() < MAX_VSNS || self.vsns.contains_key(name) {
            self.vsns.insert(name.to_string(), vsn);
        }
    }

    fn seal_nonce(&mut self) -> [u8; rumour_memberlist::security::NONCE_SIZE] {
        let mut nonce = [0; rumour_memberlist::security::NONCE_SIZE];
        self.nonces.fill_bytes(&mut nonce);
        nonce
    }

    /// Maps a memberlist packet message (not a user message) onto the machine's, from `from`;
    /// `None` (counted) if it has no usable form.
    pub(crate) fn inbound(
        &mut self,
        swim: &Swim,
        from: SocketAddr,
        message: MlMessage,
    ) -> Option<rumour_swim::message::Message> {
        if let MlMessage::Alive(alive) = &message {
            if !alive.vsn.is_valid() {
                // memberlist ignores such an alive.
                self.stats.messages_refused += 1;
                return None;
            }
            self.note_vsn(&alive.node, alive.vsn);
        }
        let mapped = map::to_swim(swim, from, message);
        if mapped.is_none() {
            self.stats.messages_refused += 1;
        }
        mapped
    }

    /// Maps one of the machine's packet messages onto memberlist's; `None` (counted) for kinds
    /// memberlist has no packet form of.
    pub(crate) fn outbound(
        &mut self,
        swim: &Swim,
        message: rumour_swim::message::Message,
    ) -> Option<MlMessage> {
        let local = swim.local_member();
        let vsn = match &message {
            rumour_swim::message::Message::Alive(a) => {
                self.vsn_of(a.name.as_str(), local.name.as_str())
            }
            _ => self.local_vsn,
        };
        let mapped = map::from_swim(local.name.as_str(), local.addr, vsn, message);
        if mapped.is_none() {
            self.stats.unmapped += 1;
        }
        mapped
    }

    /// Whether packets to `to` carry a CRC: when the member there announced protocol max ≥ 5.
    pub(crate) fn wants_crc(&self, swim: &Swim, to: SocketAddr) -> bool {
        let local = swim.local_name().as_str();
        swim.members()
            .find(|m| m.addr == to)
            .is_some_and(|m| self.vsn_of(m.name.as_str(), local).protocol_max >= 5)
    }

    /// Decodes a packet into its messages; `None` (counted) if it does not decode.
    pub(crate) fn decode_packet(&mut self, bytes: &[u8]) -> Option<Vec<MlMessage>> {
        match self.codec.decode_packet(bytes) {
            Ok(decoded) => {
                self.stats.packets_received += 1;
                Some(decoded.packet.into_messages())
            }
            Err(error) => {
                tracing::debug!(%error, "memberlist packet dropped");
                self.stats.decode_errors += 1;
                None
            }
        }
    }

    /// Packs encoded messages into as few packets as memberlist's buffer allows and wraps each
    /// for `to` (whose protocol max decides the CRC).
    pub(crate) fn encode_packets(&mut self, crc: bool, messages: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let budget = UDP_BUFFER_SIZE - WRAPPER_OVERHEAD;
        let mut packets = Vec::new();
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut len = 0;
        let flush = |batch: &mut Vec<Vec<u8>>, packets: &mut Vec<Vec<u8>>| match batch.len() {
            0 => {}
            1 => packets.push(batch.pop().expect("one")),
            _ => {
                let mut out = Vec::new();
                if encode_compound(&mut out, batch).is_ok() {
                    packets.push(out);
                }
                batch.clear();
            }
        };
        for message in messages {
            let cost = message.len() + 2;
            if !batch.is_empty()
                && (len + cost > budget || batch.len() == rumour_memberlist::MAX_COMPOUND_PARTS)
            {
                flush(&mut batch, &mut packets);
                len = 0;
            }
            len += cost;
            batch.push(message);
        }
        flush(&mut batch, &mut packets);
        packets
            .into_iter()
            .filter_map(|plain| {
                let nonce = self.seal_nonce();
                let key = self.codec.keyring.as_ref().map(|k| k.primary().clone());
                let options = PacketOptions {
                    compress: self.compression,
                    crc,
                    seal: key.as_ref().map(|key| Seal {
                        version: EncryptionVersion::for_protocol(self.local_vsn.protocol_cur),
                        key,
                        nonce,
                    }),
                    label: &[],
                };
                let bytes = rumour_memberlist::encode_packet(&plain, &options).ok()?;
                self.stats.packets_sent += 1;
                Some(bytes)
            })
            .collect()
    }

    /// Encodes a stream message with the configured compression and key.
    pub(crate) fn encode_stream(&mut self, message: &StreamMessage) -> Option<Vec<u8>> {
        let nonce = self.seal_nonce();
        let key = self.codec.keyring.as_ref().map(|k| k.primary().clone());
        let options = StreamOptions {
            compress: self.compression,
            seal: key.as_ref().map(|key| Seal {
                version: EncryptionVersion::for_protocol(self.local_vsn.protocol_cur),
                key,
                nonce,
            }),
            label: &[],
        };
        let bytes = rumour_memberlist::encode_stream(message, &options).ok()?;
        self.stats.streams_sent += 1;
        Some(bytes)
    }

    /// Notes a push/pull request sent to `to`, so that the push/pull that comes back on that
    /// connection is taken as its reply.
    pub(crate) fn expect_reply(&mut self, to: SocketAddr, join: bool) {
        if self.pending.len() < MAX_PENDING || self.pending.contains_key(&to) {
            self.pending.insert(to, join);
        }
    }

    /// This node's member table as a push/pull, with the KV store as its user state.
    pub(crate) fn local_state(&mut self, swim: &Swim, gossip: &Gossip, join: bool) -> PushPull {
        let mut state = self.member_state(swim, join);
        state.user_state = self.user_state(gossip);
        state
    }

    /// This node's member table as a push/pull, without user state.
    fn member_state(&self, swim: &Swim, join: bool) -> PushPull {
        let local = swim.local_name().as_str();
        PushPull {
            join,
            nodes: swim
                .members()
                .map(|m| from_swim_member(&m, self.vsn_of(m.name.as_str(), local)))
                .collect(),
            user_state: Vec::new(),
        }
    }

    /// Handles a decoded inbound stream from `from`: returns the reply to write on the same
    /// connection, if any, and what the node must do next.
    pub(crate) fn handle_stream(
        &mut self,
        swim: &Swim,
        gossip: &Gossip,
        from: SocketAddr,
        bytes: &[u8],
    ) -> (Option<Vec<u8>>, StreamInput) {
        let message = match self.codec.decode_stream(bytes) {
            Ok(Some(decoded)) => decoded.message,
            Ok(None) | Err(_) => {
                self.stats.decode_errors += 1;
                self.pending.remove(&from);
                return (None, StreamInput::Done);
            }
        };
        self.stats.streams_received += 1;
        match message {
            StreamMessage::PushPull(remote) => self.on_pushpull(swim, gossip, from, remote),
            StreamMessage::Ping(ping) => {
                // The TCP fallback ping: answered on its connection, if it is meant for us.
                if !ping.node.is_empty() && ping.node != swim.local_name().as_str() {
                    self.stats.messages_refused += 1;
                    return (None, StreamInput::Done);
                }
                let ack = StreamMessage::Ack(rumour_memberlist::Ack {
                    seq_no: ping.seq_no,
                    payload: Vec::new(),
                });
                (self.encode_stream(&ack), StreamInput::Done)
            }
            StreamMessage::Ack(ack) => (
                None,
                StreamInput::Swim(
                    from,
                    rumour_swim::message::Message::Ack(rumour_swim::message::Ack {
                        seq: ack.seq_no,
                    }),
                ),
            ),
            StreamMessage::User(payload) => (None, StreamInput::User(payload)),
            StreamMessage::Err(error) => {
                tracing::warn!(%from, error = %error.error, "memberlist peer answered with an error");
                self.stats.errors_received += 1;
                self.pending.remove(&from);
                (None, StreamInput::Done)
            }
        }
    }

    fn on_pushpull(
        &mut self,
        swim: &Swim,
        gossip: &Gossip,
        from: SocketAddr,
        remote: PushPull,
    ) -> (Option<Vec<u8>>, StreamInput) {
        let reply_to = self.pending.remove(&from);
        let local = self.member_state(swim, remote.join);
        let verified = rumour_memberlist::verify_protocol(&local.nodes, &remote.nodes);
        let mut reply = None;
        if reply_to.is_none() {
            // A request: answer with the state before the merge (members and KV store), on
            // the same connection.
            reply = match &verified {
                Ok(()) => {
                    let mut local = local;
                    local.user_state = self.user_state(gossip);
                    self.encode_stream(&StreamMessage::PushPull(local))
                }
                Err(error) => self.encode_stream(&StreamMessage::Err(rumour_memberlist::ErrResp {
                    error: error.to_string(),
                })),
            };
            self.stats.pushpulls_answered += 1;
        }
        if verified.is_err() {
            // memberlist merges neither the members nor the user state then.
            self.stats.pushpulls_refused += 1;
            return (reply, StreamInput::Done);
        }
        for node in &remote.nodes {
            if node.vsn.is_valid() {
                self.note_vsn(&node.name, node.vsn);
            }
        }
        let state = map::state_exchange(swim.local_name().as_str(), from, reply_to, &remote);
        if state.is_none() {
            self.stats.messages_refused += 1;
        }
        let input = StreamInput::PushPull {
            from,
            state,
            user_state: remote.user_state,
        };
        (reply, input)
    }
}
