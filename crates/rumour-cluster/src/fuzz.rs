//! Fuzz targets: one plain function per decoder, and one for a whole [`Node`].
//!
//! Each `pub fn <target>(data: &[u8])` feeds arbitrary bytes to a decoder and asserts what must
//! hold for *any* input: no panic, and when the bytes decode, re-encoding and decoding again
//! gives the same value (and the same bytes where the format is canonical). The cargo-fuzz
//! crate in `fuzz/` (outside the workspace) calls them from libFuzzer on nightly; the test
//! `fuzz_corpus` replays the checked-in corpus `fuzz/corpus/<target>/` through them on stable.
//! [`seeds`] builds that corpus's seed inputs from the real encoders.
//!
//! Some targets read a first *mode byte* that lets the fuzzer get past checksums: the harness
//! recomputes a frame's CRC-32 (and a stream frame's length field) before decoding, so that
//! mutations reach the decoders behind the frame instead of dying on the checksum. The layout of
//! every target's input is given on its function.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_gossip::{Gossip, KeyChange, KeyDigests, KeyHash, Marker, Session, Wanted};
use rumour_ring::{
    EntryDigest, Instance, Mergeable, Operation, ReplicationConfig, ReplicationSet, Ring,
    State as InstanceState, Timestamp, Tokens, ZoneAwareness,
};
use rumour_swim::message::{
    Ack, Alive, Dead, Exchange, IndirectPing, MemberState, Message as SwimMessage, Nack, Ping,
    StateExchange, Suspect,
};
use rumour_swim::{Incarnation, NodeName, State};
use rumour_transport::Label;
use rumour_transport::frame::{
    FLAG_COMPOUND, FLAG_LABEL, FLAG_STREAM, FrameCodec, FrameConfig, MAGIC, VERSION,
};

use crate::envelope::{self, Channel};
use crate::sim::{NodeId, node_addr};
use crate::{Delivery, Node, NodeConfig, Profile, SIM_EPOCH};

/// Every target, by the name its `fuzz/fuzz_targets/<name>.rs` and corpus directory carry.
pub const TARGETS: [&str; 7] = [
    "frame",
    "envelope",
    "swim_message",
    "gossip_message",
    "ring_codec",
    "digests",
    "node",
];

/// Runs the target called `name` on `data`; false if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    let target: fn(&[u8]) = match name {
        "frame" => frame,
        "envelope" => envelope,
        "swim_message" => swim_message,
        "gossip_message" => gossip_message,
        "ring_codec" => ring_codec,
        "digests" => digests,
        "node" => node,
        _ => return false,
    };
    target(data);
    true
}

// ---- frame ------------------------------------------------------------------------------------

/// Mode bit: recompute the frame's CRC-32 before decoding.
pub const SEAL_CHECKSUM: u8 = 0x01;
/// Mode bit: set a stream frame's length field to what follows the checksum (before sealing).
pub const SEAL_LENGTH: u8 = 0x02;

/// The label the labelled codecs use.
const LABEL: &str = "fuzz";

/// Transport frames. Input: a mode byte ([`SEAL_CHECKSUM`], [`SEAL_LENGTH`]), then a frame.
///
/// The frame goes through `decode_packet`, `decode_stream` and `stream_frame_len` of three
/// codecs: without a label, with a label, and with a label but verification off. A frame that
/// decodes re-encodes to the same messages, and to the same bytes where the header is canonical
/// (label verified, and not a compound datagram of exactly one message, which is written plain).
pub fn frame(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = sealed(rest, mode);
    let label = Label::new(LABEL).expect("a valid label");
    let codecs = [
        (FrameCodec::new(FrameConfig::default()), true),
        (
            FrameCodec::new(FrameConfig::default().with_label(label.clone())),
            true,
        ),
        (
            FrameCodec::new(
                FrameConfig::default()
                    .with_label(label)
                    .with_verify_label(false),
            ),
            false,
        ),
    ];
    for (codec, canonical) in &codecs {
        check_packet(codec, &bytes, *canonical);
        check_stream(codec, &bytes, *canonical);
    }
}

fn check_packet(codec: &FrameCodec, bytes: &[u8], canonical: bool) {
    let Ok(packet) = codec.decode_packet(bytes) else {
        return;
    };
    let messages: Vec<&[u8]> = packet.iter().collect();
    assert!(
        messages.len() <= bytes.len(),
        "{} messages from {} bytes",
        messages.len(),
        bytes.len()
    );
    let encoded = codec.encode_packet(&messages);
    assert_eq!(encoded.len(), codec.packet_len(&messages), "packet_len");
    let again = codec
        .decode_packet(&encoded)
        .expect("a re-encoded datagram decodes");
    let again: Vec<&[u8]> = again.iter().collect();
    assert_eq!(again, messages, "datagram round trip");
    let compound_of_one = bytes[3] & FLAG_COMPOUND != 0 && messages.len() == 1;
    if canonical && !compound_of_one {
        assert_eq!(
            encoded, bytes,
            "a verified datagram re-encodes to its bytes"
        );
    }
}

fn check_stream(codec: &FrameCodec, bytes: &[u8], canonical: bool) {
    let frame_len = codec.stream_frame_len(bytes);
    let Ok(message) = codec.decode_stream(bytes) else {
        return;
    };
    assert_eq!(
        frame_len.ok().flatten(),
        Some(bytes.len()),
        "stream_frame_len of a whole frame"
    );
    let encoded = codec
        .encode_stream(&message)
        .expect("a decoded message is within the limit");
    assert_eq!(
        codec
            .decode_stream(&encoded)
            .expect("a re-encoded stream decodes"),
        message,
        "stream round trip"
    );
    if canonical {
        assert_eq!(
            encoded, bytes,
            "a verified stream frame re-encodes to its bytes"
        );
    }
}

/// `bytes` with the fix-ups `mode` asks for applied (when the header is long enough to place
/// them).
fn sealed(bytes: &[u8], mode: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if mode & (SEAL_CHECKSUM | SEAL_LENGTH) == 0 || out.len() < 4 {
        return out;
    }
    let flags = out[3];
    let header_end = if flags & FLAG_LABEL != 0 {
        match out.get(4) {
            Some(&len) => 5 + usize::from(len),
            None => return out,
        }
    } else {
        4
    };
    let crc_at = if flags & FLAG_STREAM != 0 {
        header_end + 4
    } else {
        header_end
    };
    if out.len() < crc_at + 4 {
        return out;
    }
    if mode & SEAL_LENGTH != 0 && flags & FLAG_STREAM != 0 {
        let len = (out.len() - crc_at - 4) as u32;
        out[header_end..crc_at].copy_from_slice(&len.to_be_bytes());
    }
    if mode & SEAL_CHECKSUM != 0 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&out[..crc_at]);
        hasher.update(&out[crc_at + 4..]);
        let crc = hasher.finalize();
        out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    }
    out
}

// ---- envelope ---------------------------------------------------------------------------------

/// The cluster envelope. Input: a datagram message (`untag`) and, the same bytes, a stream
/// body (`decode_stream`). Both formats are canonical (strict varints), so what decodes
/// re-encodes to the same bytes.
pub fn envelope(data: &[u8]) {
    if let Ok((channel, body)) = envelope::untag(data) {
        assert_eq!(envelope::tag(channel, body), data, "tag round trip");
    }
    if let Ok(parts) = envelope::decode_stream(data) {
        assert!(
            parts.len() * 2 <= data.len(),
            "{} parts from {} bytes",
            parts.len(),
            data.len()
        );
        assert_eq!(envelope::encode_stream(&parts), data, "stream round trip");
    }
}

// ---- layer messages ---------------------------------------------------------------------------

/// A SWIM message (`rumour_swim::message::Message::decode`). What decodes re-encodes to a
/// value that decodes equal, no longer than the input (postcard accepts over-long varints, so
/// the bytes themselves need not match), and encoding is a fixed point.
pub fn swim_message(data: &[u8]) {
    let Ok(message) = SwimMessage::decode(data) else {
        return;
    };
    let encoded = message.encode();
    assert!(encoded.len() <= data.len(), "re-encoding grew the message");
    let again = SwimMessage::decode(&encoded).expect("a re-encoded swim message decodes");
    assert_eq!(again, message, "swim round trip");
    assert_eq!(again.encode(), encoded, "swim encoding is a fixed point");
}

/// A KV store message (`rumour_gossip::Message::decode`), with the same properties as
/// [`swim_message`]; ring values inside are decoded too.
pub fn gossip_message(data: &[u8]) {
    let Ok(message) = rumour_gossip::Message::decode(data) else {
        return;
    };
    let encoded = message.encode();
    assert!(encoded.len() <= data.len(), "re-encoding grew the message");
    let again =
        rumour_gossip::Message::decode(&encoded).expect("a re-encoded gossip message decodes");
    assert_eq!(again, message, "gossip round trip");
    assert_eq!(again.encode(), encoded, "gossip encoding is a fixed point");
    for change in changes(&message) {
        if let (Ring::CODEC_ID, Some(value)) = (change.codec.as_str(), &change.value) {
            if let Ok(ring) = Ring::decode(value) {
                check_ring(&ring, 0);
            }
        }
    }
}

fn changes(message: &rumour_gossip::Message) -> &[KeyChange] {
    use rumour_gossip::Message as M;
    match message {
        M::Change(change) => std::slice::from_ref(change),
        M::FullState { entries, .. } => entries,
        M::Digests { push, .. } => push,
        M::Entries { values, .. } => values,
        M::Summary { .. } | M::Done { .. } | M::KeyHashes { .. } => &[],
    }
}

// ---- ring -------------------------------------------------------------------------------------

/// Mode bit of [`ring_codec`]: the bytes are a payload without its checksum
/// (`rumour_ring::testing::decode_unchecked`), so mutations reach the parser.
pub const RING_UNCHECKED: u8 = 0x01;

/// The ring codec (`Ring` via `Mergeable::decode`). Input: a mode byte ([`RING_UNCHECKED`]),
/// then an encoded ring. A ring that decodes re-encodes canonically, merges idempotently, merges
/// into an empty ring as itself, forgets its tombstones on request, and answers a lookup (key
/// and zone awareness from the mode byte) without panicking.
pub fn ring_codec(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let decoded = if mode & RING_UNCHECKED != 0 {
        rumour_ring::testing::decode_unchecked(bytes)
    } else {
        Ring::decode(bytes)
    };
    if let Ok(ring) = decoded {
        check_ring(&ring, mode);
    }
}

fn check_ring(ring: &Ring, mode: u8) {
    let encoded = ring.encode();
    let again = Ring::decode(&encoded).expect("a ring's own encoding decodes");
    assert_eq!(&again, ring, "ring round trip");
    assert_eq!(again.encode(), encoded, "ring encoding is canonical");

    let mut copy = ring.clone();
    assert!(copy.merge(ring, None).is_none(), "merge is idempotent");
    assert_eq!(&copy, ring, "merging a ring into itself changes nothing");
    let mut empty = Ring::new();
    let change = empty.merge(ring, None);
    assert_eq!(&empty, ring, "a ring merged into an empty one is itself");
    // `Ring::is_empty` counts described instances only; a ring of bare heartbeats is not empty.
    assert_eq!(
        change.is_none(),
        *ring == Ring::new(),
        "merge into empty reports a change"
    );

    let digests = ring.entry_digests().expect("the ring offers entry digests");
    assert!(
        digests.windows(2).all(|w| w[0].name < w[1].name),
        "entry digests are sorted by name and distinct"
    );
    let mut forgotten = ring.clone();
    forgotten.remove_tombstones(Timestamp::MAX);
    assert_eq!(forgotten.tombstone_count(), 0, "every tombstone forgotten");

    let config = ReplicationConfig {
        replication_factor: 1 + usize::from(mode >> 5),
        zone_awareness: if mode & 0x10 != 0 {
            ZoneAwareness::Enabled
        } else {
            ZoneAwareness::Disabled
        },
        ..ReplicationConfig::default()
    };
    let mut set = ReplicationSet::with_capacity(4);
    let key = u32::from(mode).wrapping_mul(0x9E37_79B9);
    let now = SIM_EPOCH;
    let _ = ring.get(key, Operation::WRITE, &config, now, &mut set);
    let _ = ring.get(key, Operation::READ, &config, now, &mut set);
}

/// `ring.select(names)` is a part of `ring`: merging it back changes nothing, and every entry
/// it holds is named (by id, or by heartbeat name) and has the digest the ring has.
fn check_select(ring: &Ring, names: &[String]) {
    let selected = ring.select(names).expect("the ring can be split");
    let mut copy = ring.clone();
    assert!(
        copy.merge(&selected, None).is_none(),
        "a selection of a ring adds nothing to it"
    );
    let digests = ring.entry_digests().unwrap_or_default();
    for EntryDigest { name, hash } in selected.entry_digests().unwrap_or_default() {
        let whole = names.contains(&name);
        let heartbeat = names.contains(&format!("{name}{}", rumour_ring::HEARTBEAT_SUFFIX));
        assert!(whole || heartbeat, "selected {name:?}, not asked for");
        let theirs = digests.iter().find(|d| d.name == name);
        assert!(theirs.is_some(), "selected {name:?}, not in the ring");
        if whole && theirs.is_some_and(|d| d.hash != hash) {
            panic!("a whole selected entry {name:?} differs from the ring's");
        }
    }
}

// ---- digests ----------------------------------------------------------------------------------

/// Mode bit of [`digests`]: the store opened the exchange (the message answers its summary)
/// instead of serving one.
pub const DIGESTS_OPENER: u8 = 0x01;

/// The peer the [`digests`] target's store exchanges with.
const DIGEST_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 7946);

/// Pull-push by digests. Input: a mode byte ([`DIGESTS_OPENER`]), then one gossip message.
///
/// A KV store holding a small ring is put in the middle of an exchange with a peer (serving one
/// the peer opened with a summary, or having opened one itself); the decoded message, with its
/// session set to that exchange, arrives on a stream. Everything the store sends back must
/// decode. Names in the message (key digests, wanted entries) and the input split at newlines
/// select parts of the ring, which must be parts of it; the store's ring must still round-trip.
pub fn digests(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let ring = reference_ring();
    let loose: Vec<String> = bytes
        .split(|b| *b == b'\n')
        .take(64)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    check_select(&ring, &loose);
    let Ok(mut message) = rumour_gossip::Message::decode(bytes) else {
        return;
    };
    for wanted in wanted_buckets(&message) {
        check_select_buckets(&ring, wanted);
    }

    let start = Instant::now();
    let mut store = Gossip::new(
        rumour_gossip::Config::local(node_addr(NodeId(0))),
        ChaCha8Rng::seed_from_u64(1),
        (start, SIM_EPOCH),
    );
    store.register::<Ring>();
    store
        .cas::<Ring>(start, crate::DEFAULT_RING_KEY, |_| Some(ring.clone()))
        .expect("the reference ring is stored");
    let session = if mode & DIGESTS_OPENER != 0 {
        let opening = store
            .start_pullpush(start, DIGEST_PEER, false)
            .expect("no exchange in progress");
        match rumour_gossip::Message::decode(&opening) {
            Ok(rumour_gossip::Message::Summary { session, .. }) => Session {
                from: DIGEST_PEER,
                id: session.id,
            },
            other => panic!("a store opens with a summary, not {other:?}"),
        }
    } else {
        let session = Session {
            from: DIGEST_PEER,
            id: 7,
        };
        let summary = rumour_gossip::Message::Summary {
            session,
            root: 0,
            keys: 0,
        };
        let _ = store.handle_stream(start, DIGEST_PEER, &summary.encode());
        session
    };
    set_session(&mut message, session);
    let _ = store.handle_stream(start, DIGEST_PEER, &message.encode());
    while let Some(transmit) = store.poll_transmit() {
        for bytes in &transmit.messages {
            if let Err(error) = rumour_gossip::Message::decode(bytes) {
                panic!("the store sent a message it cannot decode: {error}");
            }
        }
    }
    while store.poll_event().is_some() {}
    if let Some(ring) = store.get::<Ring>(crate::DEFAULT_RING_KEY) {
        check_ring(&ring, mode);
    }
}

/// The buckets a message asks a ring for.
fn wanted_buckets(message: &rumour_gossip::Message) -> Vec<&Wanted> {
    match message {
        rumour_gossip::Message::Entries { want, .. } => want.iter().collect(),
        _ => Vec::new(),
    }
}

/// `ring.select_buckets(wanted)` is a part of `ring` (merging it back changes nothing) holding
/// only entries of the wanted buckets; a bucket count that is not valid selects nothing.
fn check_select_buckets(ring: &Ring, wanted: &Wanted) {
    let count = wanted.buckets as usize;
    let selection = rumour_ring::BucketSelection {
        count,
        seed: 7,
        whole: &wanted.whole,
        heartbeats: &wanted.heartbeats,
    };
    let Some(selected) = ring.select_buckets(&selection, None) else {
        assert!(
            !rumour_ring::valid_bucket_count(count),
            "a valid bucket count selects"
        );
        return;
    };
    let mut copy = ring.clone();
    assert!(
        copy.merge(&selected, None).is_none(),
        "a selection of a ring adds nothing to it"
    );
    for name in selected.content() {
        let id = name
            .strip_suffix(rumour_ring::HEARTBEAT_SUFFIX)
            .unwrap_or(&name);
        let bucket = (rumour_ring::name_hash(7, id) as usize & (count - 1)) as u32;
        assert!(
            wanted.whole.contains(&bucket) || wanted.heartbeats.contains(&bucket),
            "selected {name:?} of bucket {bucket}, not asked for"
        );
    }
}

fn set_session(message: &mut rumour_gossip::Message, to: Session) {
    use rumour_gossip::Message as M;
    match message {
        M::Change(_) => {}
        M::FullState { session, .. }
        | M::Summary { session, .. }
        | M::Done { session }
        | M::KeyHashes { session, .. }
        | M::Digests { session, .. }
        | M::Entries { session, .. } => *session = to,
    }
}

/// A small ring of four instances in every state that holds tokens, one tombstone, and one
/// heartbeat without a description.
fn reference_ring() -> Ring {
    let at = |ms: u64| Timestamp(SIM_EPOCH.0 + ms);
    let mut ring = Ring::new();
    let states = [
        InstanceState::Active,
        InstanceState::Joining,
        InstanceState::Leaving,
        InstanceState::Pending,
    ];
    for (i, state) in states.into_iter().enumerate() {
        let id = format!("node-{i}");
        let tokens: Vec<u32> = (0..8u32)
            .map(|t| (t * 0x2000_0000).wrapping_add(i as u32 * 0x0100_0000 + 1))
            .collect();
        let zone = if i % 2 == 0 { "zone-a" } else { "zone-b" };
        let instance = Instance::new(
            node_addr(NodeId(i)).to_string(),
            zone,
            state,
            Tokens::new(tokens),
            at(i as u64),
        );
        ring.set_instance(&id, instance).expect("a valid id");
        ring.set_heartbeat(&id, at(1_000 + i as u64))
            .expect("a valid id");
    }
    let left = Instance::new(
        "127.0.0.9:7946",
        "",
        InstanceState::Left,
        Tokens::new(vec![]),
        at(5),
    );
    ring.set_instance("gone", left).expect("a valid id");
    ring.set_heartbeat("only-heartbeat", at(7))
        .expect("a valid id");
    ring
}

// ---- node -------------------------------------------------------------------------------------

/// Op bit of [`node`]: the chunk is a stream (else a datagram).
pub const OP_STREAM: u8 = 0x01;
/// Op bit of [`node`]: recompute the chunk's frame checksum.
pub const OP_SEAL: u8 = 0x02;
/// Op bit of [`node`]: set a stream chunk's length field.
pub const OP_SEAL_LENGTH: u8 = 0x04;

/// The fuzzed node's name (the simulator's first node, so captured traffic fits it).
pub const NODE_NAME: &str = "node-0";

/// A whole [`Node`] (local profile, ring instance, no label): `node-0` at the simulator's first
/// address. Input: a sequence of ops, each `op:u8 len:u16 BE chunk[len]` (a short tail is one
/// last chunk):
///
/// - bit 0 ([`OP_STREAM`]): the chunk arrives as a stream, else as a datagram;
/// - bits 1-2 ([`OP_SEAL`], [`OP_SEAL_LENGTH`]): frame fix-ups as in [`frame`];
/// - bits 3-4: which of four peers (the simulator's nodes 1 to 4) sent it;
/// - bits 5-7: how far virtual time moves afterwards, in steps of 150 ms.
///
/// After every op the node's timers run, everything it sends must decode as frames and layer
/// messages, and it must still list itself alive.
pub fn node(data: &[u8]) {
    let start = Instant::now();
    let mut node = fuzz_node(start);
    let mut now = start;
    drain(&mut node);
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let (len, tail) = match tail {
            [hi, lo, tail @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), tail),
            _ => (tail.len(), &[][..]),
        };
        let (chunk, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        let mode = (if op & OP_SEAL != 0 { SEAL_CHECKSUM } else { 0 })
            | (if op & OP_SEAL_LENGTH != 0 {
                SEAL_LENGTH
            } else {
                0
            });
        let bytes = sealed(chunk, mode);
        let from = node_addr(NodeId(1 + usize::from((op >> 3) & 3)));
        if op & OP_STREAM != 0 {
            node.handle_stream(now, from, &bytes);
        } else {
            node.handle_packet(now, from, &bytes);
        }
        drain(&mut node);
        now += Duration::from_millis(150) * u32::from(op >> 5);
        // A few rounds: a timer may schedule another one that is already due.
        for _ in 0..4 {
            if node.poll_timeout().is_none_or(|t| t > now) {
                break;
            }
            node.handle_timeout(now);
            drain(&mut node);
        }
        assert_eq!(
            node.member_state(NODE_NAME),
            Some(State::Alive),
            "the node no longer lists itself alive"
        );
    }
}

/// The node [`node`] fuzzes, started at `now`.
fn fuzz_node(now: Instant) -> Node {
    let config =
        NodeConfig::new(NODE_NAME, node_addr(NodeId(0)), Profile::Local).with_ring_instance();
    Node::new(config, ChaCha8Rng::seed_from_u64(0), now).expect("a valid configuration")
}

/// Takes everything the node wants to send or report; every frame must decode.
fn drain(node: &mut Node) {
    let codec = FrameCodec::new(node.frame().config().clone());
    while let Some(transmit) = node.poll_transmit() {
        check_own_frame(&codec, transmit.delivery, &transmit.bytes);
    }
    while node.poll_event().is_some() {}
}

fn check_own_frame(codec: &FrameCodec, delivery: Delivery, bytes: &[u8]) {
    match delivery {
        Delivery::Datagram => {
            let messages = codec
                .decode_packet(bytes)
                .unwrap_or_else(|e| panic!("the node sent a datagram it cannot decode: {e}"));
            for message in &messages {
                let (channel, body) = envelope::untag(message).expect("a known channel");
                check_own_message(channel, body);
            }
        }
        Delivery::Stream => {
            let body = codec
                .decode_stream(bytes)
                .unwrap_or_else(|e| panic!("the node sent a stream it cannot decode: {e}"));
            let parts = envelope::decode_stream(&body).expect("a well-formed stream body");
            for (channel, part) in parts {
                check_own_message(channel, part);
            }
        }
    }
}

fn check_own_message(channel: Channel, body: &[u8]) {
    match channel {
        Channel::Swim => {
            if let Err(error) = SwimMessage::decode(body) {
                panic!("the node sent a swim message it cannot decode: {error}");
            }
        }
        Channel::Gossip => {
            if let Err(error) = rumour_gossip::Message::decode(body) {
                panic!("the node sent a gossip message it cannot decode: {error}");
            }
        }
        Channel::User => {
            if let Err(error) = crate::user::decode(body) {
                panic!("the node sent a user message it cannot decode: {error}");
            }
        }
    }
}

// ---- seeds ------------------------------------------------------------------------------------

/// One seed input: its target, a file name, and the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    /// The target it is for (one of [`TARGETS`]).
    pub target: &'static str,
    /// Its file name in `fuzz/corpus/<target>/`.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

/// Seed inputs for every target, made by the real encoders: frames of every shape, SWIM and KV
/// messages of every kind, rings, pull-push steps, and the traffic `node-0` receives in a small
/// simulated cluster. Deterministic: the same bytes on every call.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: String, bytes: Vec<u8>| {
        out.push(Seed {
            target,
            name,
            bytes,
        });
    };
    let swim = swim_messages();
    let gossip = gossip_messages();
    for (name, message) in &swim {
        add(
            "swim_message",
            (*name).to_string(),
            message.encode().to_vec(),
        );
    }
    for (name, message) in &gossip {
        add(
            "gossip_message",
            (*name).to_string(),
            message.encode().to_vec(),
        );
    }

    // Frames: a byte of mode, then the frame.
    let label = Label::new(LABEL).expect("a valid label");
    let plain = FrameCodec::new(FrameConfig::default());
    let labelled = FrameCodec::new(FrameConfig::default().with_label(label));
    let ping = envelope::tag(Channel::Swim, &swim[0].1.encode());
    let change = envelope::tag(Channel::Gossip, &gossip[0].1.encode());
    let stream = envelope::encode_stream(&[
        (Channel::Swim, &swim[swim.len() - 1].1.encode()),
        (Channel::Gossip, &gossip[1].1.encode()),
    ]);
    for (prefix, codec) in [("plain", &plain), ("label", &labelled)] {
        let frames = [
            ("one", codec.encode_packet(&[&ping])),
            ("two", codec.encode_packet(&[&ping, &change])),
            ("none", codec.encode_packet(&[])),
            ("empty", codec.encode_packet(&[b""])),
            ("stream", codec.encode_stream(&stream).expect("small")),
            ("stream-empty", codec.encode_stream(b"").expect("small")),
        ];
        for (name, bytes) in frames {
            add("frame", format!("{prefix}-{name}"), with_mode(0, &bytes));
        }
    }
    let mut broken = plain.encode_packet(&[&ping, &change]);
    broken[6] ^= 0x55;
    add(
        "frame",
        "bad-checksum-sealed".into(),
        with_mode(SEAL_CHECKSUM, &broken),
    );
    let mut header = vec![MAGIC[0], MAGIC[1], VERSION, FLAG_STREAM, 0, 0, 0, 0];
    header.extend_from_slice(&[0; 4]);
    header.extend_from_slice(b"body");
    add(
        "frame",
        "stream-resealed".into(),
        with_mode(SEAL_CHECKSUM | SEAL_LENGTH, &header),
    );

    // Envelope: datagram messages and stream bodies.
    add("envelope", "swim-ping".into(), ping.clone());
    add("envelope", "gossip-change".into(), change.clone());
    add("envelope", "stream-two-parts".into(), stream.clone());
    add(
        "envelope",
        "stream-empty-part".into(),
        envelope::encode_stream(&[(Channel::Swim, b"")]),
    );

    // Rings: checked and unchecked.
    for (name, ring) in rings() {
        let bytes = ring.encode();
        add("ring_codec", name.to_string(), with_mode(0, &bytes));
        let payload = &bytes[..bytes.len() - 4];
        add(
            "ring_codec",
            format!("{name}-unchecked"),
            with_mode(RING_UNCHECKED, payload),
        );
    }

    // Digests: the pull-push steps against the reference ring, from both sides.
    for (name, message) in digest_messages() {
        let bytes = message.encode();
        add("digests", format!("serve-{name}"), with_mode(0, &bytes));
        add(
            "digests",
            format!("open-{name}"),
            with_mode(DIGESTS_OPENER, &bytes),
        );
    }

    // Node: forged messages, then captured traffic.
    for (name, ops) in node_seeds(&swim, &gossip) {
        add("node", name, ops);
    }
    out
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(mode);
    out.extend_from_slice(bytes);
    out
}

fn name(s: &str) -> NodeName {
    NodeName::new(s).expect("a valid name")
}

fn alive(n: usize, incarnation: u32) -> Alive {
    Alive {
        name: name(&format!("node-{n}")),
        addr: node_addr(NodeId(n)),
        incarnation: Incarnation(incarnation),
        meta: Bytes::from_static(b"zone=a"),
    }
}

/// One SWIM message of every kind (a ping first, a state exchange last).
fn swim_messages() -> Vec<(&'static str, SwimMessage)> {
    let v6: SocketAddr = "[::1]:7946".parse().expect("an address");
    let member = |n: usize, state| MemberState {
        name: name(&format!("node-{n}")),
        addr: node_addr(NodeId(n)),
        incarnation: Incarnation(n as u32),
        meta: Bytes::new(),
        state,
    };
    vec![
        (
            "ping",
            SwimMessage::Ping(Ping {
                seq: 1,
                target: name(NODE_NAME),
                source: alive(1, 1),
            }),
        ),
        (
            "indirect-ping",
            SwimMessage::IndirectPing(IndirectPing {
                seq: 2,
                target: name("node-2"),
                target_addr: v6,
                nack: true,
                source: alive(1, 1),
            }),
        ),
        ("ack", SwimMessage::Ack(Ack { seq: u32::MAX })),
        ("nack", SwimMessage::Nack(Nack { seq: 3 })),
        ("alive", SwimMessage::Alive(alive(3, 7))),
        (
            "suspect-self",
            SwimMessage::Suspect(Suspect {
                name: name(NODE_NAME),
                incarnation: Incarnation(0),
                from: name("node-1"),
            }),
        ),
        (
            "dead-max",
            SwimMessage::Dead(Dead {
                name: name("node-2"),
                incarnation: Incarnation(u32::MAX),
                from: name("node-1"),
            }),
        ),
        (
            "dead-self",
            SwimMessage::Dead(Dead {
                name: name(NODE_NAME),
                incarnation: Incarnation(1),
                from: name("node-1"),
            }),
        ),
        (
            "left",
            SwimMessage::Dead(Dead {
                name: name("node-3"),
                incarnation: Incarnation(2),
                from: name("node-3"),
            }),
        ),
        (
            "state-reply",
            SwimMessage::State(StateExchange {
                exchange: Exchange::Reply,
                join: false,
                source: name("node-2"),
                source_addr: v6,
                members: vec![member(2, State::Dead), member(3, State::Left)],
            }),
        ),
        (
            "state-join",
            SwimMessage::State(StateExchange {
                exchange: Exchange::Request,
                join: true,
                source: name("node-1"),
                source_addr: node_addr(NodeId(1)),
                members: vec![member(1, State::Alive), member(4, State::Suspect)],
            }),
        ),
    ]
}

fn ring_change(ring: &Ring) -> KeyChange {
    KeyChange {
        key: crate::DEFAULT_RING_KEY.into(),
        codec: Ring::CODEC_ID.into(),
        value: Some(Bytes::from(ring.encode())),
        marker: Marker {
            updated: Timestamp(SIM_EPOCH.0 + 10),
            deleted: false,
        },
    }
}

/// One KV message of every kind (a change first, a full state second).
fn gossip_messages() -> Vec<(&'static str, rumour_gossip::Message)> {
    use rumour_gossip::Message as M;
    let session = Session {
        from: node_addr(NodeId(1)),
        id: 42,
    };
    let ring = reference_ring();
    let deleted = KeyChange {
        key: "other".into(),
        codec: Ring::CODEC_ID.into(),
        value: None,
        marker: Marker {
            updated: Timestamp(u64::MAX),
            deleted: true,
        },
    };
    vec![
        ("change", M::Change(ring_change(&ring))),
        (
            "full-state-request",
            M::FullState {
                session,
                request: true,
                entries: vec![ring_change(&ring), deleted.clone()],
            },
        ),
        (
            "full-state-reply",
            M::FullState {
                session,
                request: false,
                entries: vec![deleted],
            },
        ),
        (
            "summary",
            M::Summary {
                session,
                root: 0x0123_4567_89ab_cdef,
                keys: 1,
            },
        ),
        ("done", M::Done { session }),
        (
            "key-hashes",
            M::KeyHashes {
                session,
                keys: vec![KeyHash {
                    key: "ring".into(),
                    hash: 9,
                }],
            },
        ),
        (
            "digests",
            M::Digests {
                session,
                push: vec![],
                want: vec!["x".into()],
                keys: vec![KeyDigests {
                    key: "ring".into(),
                    codec: Ring::CODEC_ID.into(),
                    marker: Marker::default(),
                    buckets: ring.bucket_digests(4, 7).unwrap_or_default(),
                }],
            },
        ),
        (
            "entries",
            M::Entries {
                session,
                values: vec![ring_change(&ring)],
                want: vec![Wanted {
                    key: "ring".into(),
                    buckets: 4,
                    whole: vec![0, 2],
                    heartbeats: vec![1],
                }],
            },
        ),
    ]
}

fn rings() -> Vec<(&'static str, Ring)> {
    let full = reference_ring();
    let names: Vec<String> = vec!["node-1".into(), "node-2 heartbeat".into(), "gone".into()];
    let part = full.select(&names).unwrap_or_default();
    let mut dense = Ring::new();
    let tokens: Vec<u32> = (0..512u32).map(|t| t.wrapping_mul(0x0080_0001)).collect();
    let instance = Instance::new(
        "10.0.0.1:9095",
        "zone-a",
        InstanceState::Active,
        Tokens::new(tokens),
        SIM_EPOCH,
    );
    dense.set_instance("dense", instance).expect("a valid id");
    vec![
        ("empty", Ring::new()),
        ("reference", full),
        ("selection", part),
        ("dense", dense),
    ]
}

/// Pull-push messages that name the reference ring's entries.
fn digest_messages() -> Vec<(&'static str, rumour_gossip::Message)> {
    use rumour_gossip::Message as M;
    let session = Session {
        from: DIGEST_PEER,
        id: 7,
    };
    let ring = reference_ring();
    let mut digests = ring.bucket_digests(4, 7).unwrap_or_default();
    if let Some(first) = digests.first_mut() {
        first.heartbeats ^= 1;
    }
    if let Some(last) = digests.last_mut() {
        last.descriptions ^= 1;
    }
    vec![
        (
            "key-hashes",
            M::KeyHashes {
                session,
                keys: vec![
                    KeyHash {
                        key: "ring".into(),
                        hash: 1,
                    },
                    KeyHash {
                        key: "missing".into(),
                        hash: 2,
                    },
                ],
            },
        ),
        (
            "digests",
            M::Digests {
                session,
                push: vec![],
                want: vec!["ring".into()],
                keys: vec![KeyDigests {
                    key: "ring".into(),
                    codec: Ring::CODEC_ID.into(),
                    marker: Marker::default(),
                    buckets: digests,
                }],
            },
        ),
        (
            "entries",
            M::Entries {
                session,
                values: vec![ring_change(&ring)],
                want: vec![Wanted {
                    key: "ring".into(),
                    buckets: 4,
                    whole: vec![3],
                    heartbeats: vec![0, 1, 2],
                }],
            },
        ),
        ("done", M::Done { session }),
    ]
}

fn op(op: u8, chunk: &[u8]) -> Vec<u8> {
    let len = u16::try_from(chunk.len()).expect("a seed chunk under 64 KiB");
    let mut out = vec![op];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(chunk);
    out
}

/// Seeds of [`node`]: each forged message alone in a datagram and on a stream, then windows of
/// the traffic `node-0` receives while four more nodes join it and run for 12 s in a simulated cluster.
fn node_seeds(
    swim: &[(&'static str, SwimMessage)],
    gossip: &[(&'static str, rumour_gossip::Message)],
) -> Vec<(String, Vec<u8>)> {
    let codec = FrameCodec::new(FrameConfig::default());
    let mut out = Vec::new();
    for (name, message) in swim {
        let tagged = envelope::tag(Channel::Swim, &message.encode());
        let body = envelope::encode_stream(&[(Channel::Swim, &message.encode())]);
        let mut bytes = op(0x20, &codec.encode_packet(&[&tagged]));
        bytes.extend(op(0x21 | 0x08, &codec.encode_stream(&body).expect("small")));
        out.push((format!("forged-swim-{name}"), bytes));
    }
    for (name, message) in gossip {
        let tagged = envelope::tag(Channel::Gossip, &message.encode());
        let body = envelope::encode_stream(&[(Channel::Gossip, &message.encode())]);
        let mut bytes = op(0x20, &codec.encode_packet(&[&tagged]));
        bytes.extend(op(0x21 | 0x10, &codec.encode_stream(&body).expect("small")));
        out.push((format!("forged-gossip-{name}"), bytes));
    }
    let captured = captured_traffic();
    for (k, window) in captured.chunks(10).take(20).enumerate() {
        out.push((format!("captured-{k:02}"), window.concat()));
    }
    out
}

/// What `node-0` receives while nodes 1 to 4 join it, as [`node`] ops (sender, delivery, and
/// the time until the next message).
fn captured_traffic() -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut nodes: Vec<Node> = (0..5)
        .map(|i| {
            let config = NodeConfig::new(format!("node-{i}"), node_addr(NodeId(i)), Profile::Local)
                .with_ring_instance();
            Node::new(config, ChaCha8Rng::seed_from_u64(100 + i as u64), start)
                .expect("a valid configuration")
        })
        .collect();
    for node in nodes.iter_mut().skip(1) {
        node.join(start, &[node_addr(NodeId(0))]);
    }
    let mut captured: Vec<(Instant, Vec<u8>)> = Vec::new();
    let step = Duration::from_millis(50);
    let mut now = start;
    while now < start + Duration::from_secs(12) {
        let mut sent = Vec::new();
        for (i, node) in nodes.iter_mut().enumerate() {
            if node.poll_timeout().is_some_and(|t| t <= now) {
                node.handle_timeout(now);
            }
            while let Some(transmit) = node.poll_transmit() {
                sent.push((i, transmit));
            }
            while node.poll_event().is_some() {}
        }
        for (from, transmit) in sent {
            let Some(to) = (0..nodes.len()).find(|&i| node_addr(NodeId(i)) == transmit.to) else {
                continue;
            };
            let stream = transmit.delivery == Delivery::Stream;
            if to == 0 && from >= 1 {
                let bits = (if stream { OP_STREAM } else { 0 }) | (((from - 1) as u8 & 3) << 3);
                if transmit.bytes.len() <= usize::from(u16::MAX) {
                    captured.push((now, op(bits, &transmit.bytes)));
                }
            }
            let node = &mut nodes[to];
            let source = node_addr(NodeId(from));
            if stream {
                node.handle_stream(now, source, &transmit.bytes);
            } else {
                node.handle_packet(now, source, &transmit.bytes);
            }
        }
        now += step;
    }
    // Time bits: the gap to the next message, in 150 ms steps (at most 7).
    let mut out = Vec::with_capacity(captured.len());
    for k in 0..captured.len() {
        let (at, mut bytes) = captured[k].clone();
        let gap = captured.get(k + 1).map_or(Duration::ZERO, |(next, _)| {
            next.saturating_duration_since(at)
        });
        let steps = (gap.as_millis() / 150).min(7) as u8;
        bytes[0] |= steps << 5;
        out.push(bytes);
    }
    out
}
