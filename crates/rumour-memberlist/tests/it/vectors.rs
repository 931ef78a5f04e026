//! Bytes captured from real hashicorp/memberlist 0.2.2 nodes: every vector decodes, has the
//! structure Go saw, carries what the Go delegates put in, and re-encodes to the same bytes.

use std::collections::BTreeSet;

use rumour_memberlist::{
    Codec, EncryptionVersion, Key, Keyring, Message, NodeState, Packet, Seal, StreamMessage,
    StreamOptions, Vsn, encode_stream, security,
};

use crate::support::{Scenario, Vector, scenarios, unhex};

fn codec(scenario: &Scenario) -> Codec {
    match &scenario.key {
        Some(key) => Codec::with_keyring(Keyring::new(Key::new(&unhex(key)).expect("key size"))),
        None => Codec::default(),
    }
}

fn key(scenario: &Scenario) -> Option<Key> {
    scenario
        .key
        .as_ref()
        .map(|k| Key::new(&unhex(k)).expect("key size"))
}

fn message_name(message: &Message) -> &'static str {
    match message {
        Message::Ping(_) => "ping",
        Message::IndirectPing(_) => "indirect_ping",
        Message::Ack(_) => "ack",
        Message::Nack(_) => "nack",
        Message::Suspect(_) => "suspect",
        Message::Alive(_) => "alive",
        Message::Dead(_) => "dead",
        Message::User(_) => "user",
    }
}

fn stream_name(message: &StreamMessage) -> &'static str {
    match message {
        StreamMessage::Ping(_) => "ping",
        StreamMessage::Ack(_) => "ack",
        StreamMessage::PushPull(_) => "push_pull",
        StreamMessage::User(_) => "user",
        StreamMessage::Err(_) => "err",
    }
}

/// The capture program's description of a packet, computed from our decoding.
fn describe(packet: &Packet) -> String {
    match packet {
        Packet::Message(m) => message_name(m).to_owned(),
        Packet::Crc(inner) => format!("crc>{}", describe(inner)),
        Packet::Compressed(inner) => format!("compress>{}", describe(inner)),
        Packet::Compound(parts) => {
            let mut names: Vec<String> = parts.iter().map(describe).collect();
            names.sort();
            format!("compound[{}]", names.join(","))
        }
    }
}

fn version_digit(version: EncryptionVersion) -> u8 {
    version.to_byte()
}

/// Checks one packet vector; returns the message names it held.
fn check_packet(scenario: &Scenario, vector: &Vector) -> Vec<&'static str> {
    let bytes = unhex(&vector.hex);
    let decoded = codec(scenario).decode_packet(&bytes).unwrap_or_else(|e| {
        panic!(
            "{}: {} does not decode: {e}",
            scenario.scenario, vector.desc
        )
    });
    let mut desc = describe(&decoded.packet);
    if let Some((version, _)) = decoded.encryption {
        desc = format!("encrypted_v{}>{desc}", version_digit(version));
    }
    assert_eq!(desc, vector.desc, "{}: structure", scenario.scenario);

    // Re-encode: the same wrappers, the same nonce, the same bytes.
    let mut again = decoded.packet.encode().expect("re-encodes");
    if let Some((version, nonce)) = decoded.encryption {
        let key = key(scenario).expect("encrypted scenario has a key");
        again = security::encrypt(version, &key, nonce, &again, &[]);
    }
    assert_eq!(
        again, bytes,
        "{}: {} re-encodes byte for byte",
        scenario.scenario, vector.desc
    );

    for message in decoded.packet.messages() {
        check_contents(scenario, message);
    }
    decoded
        .packet
        .messages()
        .into_iter()
        .map(message_name)
        .collect()
}

/// What the capture program's delegates and scenarios put into messages.
fn check_contents(scenario: &Scenario, message: &Message) {
    let prefix = format!("{}-", scenario.scenario);
    let vsn = Vsn {
        protocol_cur: scenario.protocol_version,
        ..Vsn::MEMBERLIST_DEFAULT
    };
    match message {
        Message::Alive(a) => {
            assert!(a.node.starts_with(&prefix), "{a:?}");
            assert_eq!(a.addr, [127, 0, 0, 1]);
            assert_eq!(a.meta, format!("meta-of-{}", a.node).into_bytes());
            assert_eq!(a.vsn, vsn);
            assert!(a.incarnation >= 1);
        }
        Message::Ack(a) => {
            assert!(
                a.payload
                    .starts_with(format!("ack-payload-of-{prefix}").as_bytes())
            );
        }
        Message::Ping(p) => {
            assert!(p.node.starts_with(&prefix));
            if !p.source_node.is_empty() {
                assert_eq!(p.source_addr, [127, 0, 0, 1]);
                assert_ne!(p.source_port, 0);
            }
        }
        Message::IndirectPing(p) => {
            assert_eq!(p.target, [127, 0, 0, 1]);
            assert!(p.nack, "memberlist asks protocol-5 peers for nacks");
            assert!(p.node.starts_with(&prefix));
        }
        Message::Suspect(s) => {
            assert!(s.node.starts_with(&prefix) && s.from.starts_with(&prefix));
        }
        Message::Dead(d) => {
            assert!(d.node.starts_with(&prefix) && d.from.starts_with(&prefix));
        }
        Message::User(bytes) => assert_eq!(bytes, b"best-effort user message"),
        Message::Nack(_) => {}
    }
}

/// Checks one stream vector; returns the message name.
fn check_stream(scenario: &Scenario, vector: &Vector) -> &'static str {
    let bytes = unhex(&vector.hex);
    let codec = codec(scenario);
    let decoded = codec
        .decode_stream(&bytes)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {} does not decode: {e}",
                scenario.scenario, vector.desc
            )
        })
        .expect("a whole message");
    assert_eq!(decoded.consumed, bytes.len());
    let mut desc = stream_name(&decoded.message).to_owned();
    if decoded.compressed {
        desc = format!("compress>{desc}");
    }
    if let Some((version, _)) = decoded.encryption {
        desc = format!("encrypt_v{}>{desc}", version_digit(version));
    }
    assert_eq!(desc, vector.desc, "{}: structure", scenario.scenario);
    assert_eq!(decoded.compressed, scenario.enable_compression);

    let key = key(scenario);
    let seal = decoded.encryption.map(|(version, nonce)| Seal {
        version,
        key: key.as_ref().expect("encrypted scenario has a key"),
        nonce,
    });
    let options = StreamOptions {
        compress: decoded.compressed,
        seal,
        label: &[],
    };
    let again = encode_stream(&decoded.message, &options).expect("re-encodes");
    assert_eq!(
        again, bytes,
        "{}: {} re-encodes byte for byte",
        scenario.scenario, vector.desc
    );

    // Every prefix short of the whole is "read more", never an error or a wrong message.
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert_eq!(codec.decode_stream(&bytes[..cut]), Ok(None), "cut at {cut}");
    }

    let prefix = format!("{}-", scenario.scenario);
    match &decoded.message {
        StreamMessage::PushPull(pp) => {
            assert!(!pp.nodes.is_empty());
            assert!(
                pp.user_state
                    .starts_with(format!("user-state-of-{prefix}").as_bytes())
            );
            for node in &pp.nodes {
                assert!(node.name.starts_with(&prefix));
                assert_eq!(node.meta, format!("meta-of-{}", node.name).into_bytes());
                assert_eq!(node.addr, [127, 0, 0, 1]);
                assert_ne!(node.state, NodeState::Left);
            }
        }
        StreamMessage::User(bytes) => assert_eq!(bytes, b"reliable user message"),
        StreamMessage::Ping(p) => assert!(p.node.starts_with(&prefix)),
        StreamMessage::Ack(_) | StreamMessage::Err(_) => {}
    }
    stream_name(&decoded.message)
}

#[test]
fn every_go_vector_decodes_to_what_go_sent_and_re_encodes_byte_for_byte() {
    let mut packet_kinds = BTreeSet::new();
    let mut stream_kinds = BTreeSet::new();
    let mut count = 0;
    for scenario in scenarios() {
        assert!(!scenario.vectors.is_empty(), "{}", scenario.scenario);
        for vector in &scenario.vectors {
            count += 1;
            if vector.kind == "packet" {
                packet_kinds.extend(check_packet(&scenario, vector));
                packet_kinds.extend(
                    [
                        "compound",
                        "compress",
                        "crc",
                        "encrypted_v0",
                        "encrypted_v1",
                    ]
                    .into_iter()
                    .filter(|layer| vector.desc.contains(layer)),
                );
            } else {
                stream_kinds.insert(check_stream(&scenario, vector));
                stream_kinds.extend(
                    ["compress", "encrypt_v0", "encrypt_v1"]
                        .into_iter()
                        .filter(|layer| vector.desc.contains(layer)),
                );
            }
            assert!(!vector.from.is_empty());
        }
    }
    assert!(count >= 60, "only {count} vectors");
    let packets: BTreeSet<&str> = [
        "ping",
        "indirect_ping",
        "ack",
        "nack",
        "suspect",
        "alive",
        "dead",
        "user",
        "compound",
        "compress",
        "crc",
        "encrypted_v0",
        "encrypted_v1",
    ]
    .into();
    assert_eq!(
        packet_kinds, packets,
        "every packet message and layer has a Go vector"
    );
    let streams: BTreeSet<&str> = [
        "push_pull",
        "user",
        "ping",
        "compress",
        "encrypt_v0",
        "encrypt_v1",
    ]
    .into();
    assert!(stream_kinds.is_superset(&streams), "{stream_kinds:?}");
}

#[test]
fn a_graceful_leave_is_a_dead_message_from_the_node_itself_and_a_failure_one_from_another() {
    let plain = scenarios()
        .into_iter()
        .find(|s| s.scenario == "plain")
        .expect("plain");
    let codec = Codec::default();
    let leaves = plain
        .vectors
        .iter()
        .filter(|v| v.kind == "packet")
        .flat_map(|v| {
            codec
                .decode_packet(&unhex(&v.hex))
                .expect("decodes")
                .packet
                .into_messages()
        })
        .filter_map(|m| match m {
            Message::Dead(d) => Some(d),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(leaves.iter().any(|d| d.is_leave()), "{leaves:?}");
    assert!(
        leaves.iter().any(|d| !d.is_leave() && d.node == "plain-2"),
        "the crashed node is declared dead by another: {leaves:?}"
    );
}

#[test]
fn an_encrypted_vector_needs_the_right_key() {
    let scenario = scenarios()
        .into_iter()
        .find(|s| s.scenario == "encrypted_v1")
        .expect("encrypted_v1");
    let wrong = Codec::with_keyring(Keyring::new(Key::new(&[7; 16]).expect("16 bytes")));
    let mut rotated = Keyring::new(Key::new(&[7; 16]).expect("16 bytes"));
    rotated.add(key(&scenario).expect("key"));
    let rotated = Codec::with_keyring(rotated);
    for vector in scenario.vectors.iter().filter(|v| v.kind == "packet") {
        let bytes = unhex(&vector.hex);
        assert_eq!(
            wrong.decode_packet(&bytes),
            Err(rumour_memberlist::Error::Decrypt)
        );
        // A secondary key still opens it, as in memberlist's key rotation.
        assert!(rotated.decode_packet(&bytes).is_ok());
    }
    // Without a keyring, an encrypted stream is refused with memberlist's reason.
    let stream = scenario
        .vectors
        .iter()
        .find(|v| v.kind != "packet")
        .expect("a stream");
    assert!(matches!(
        Codec::default().decode_stream(&unhex(&stream.hex)),
        Err(rumour_memberlist::Error::Encryption(_))
    ));
}
