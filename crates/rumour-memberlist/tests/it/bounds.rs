//! Bounds: arbitrary input never panics, lengths are checked, messages round-trip.

use proptest::prelude::*;
use rumour_memberlist::{
    Ack, Alive, Codec, Dead, Error, IndirectPing, Key, Keyring, Limits, Message, Nack, NodeState,
    Packet, Ping, PushNodeState, PushPull, StreamMessage, StreamOptions, Suspect, Vsn,
    encode_compound, encode_stream,
};

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9.-]{0,40}"
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn vsn() -> impl Strategy<Value = Vsn> {
    any::<[u8; 6]>().prop_map(|b| Vsn::from_bytes(&b).expect("six bytes"))
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), text(), bytes(17), any::<u16>(), text()).prop_map(
            |(seq_no, node, source_addr, source_port, source_node)| Message::Ping(Ping {
                seq_no,
                node,
                source_addr,
                source_port,
                source_node
            })
        ),
        (
            any::<u32>(),
            bytes(17),
            any::<u16>(),
            text(),
            any::<bool>(),
            text()
        )
            .prop_map(|(seq_no, target, port, node, nack, source_node)| {
                Message::IndirectPing(IndirectPing {
                    seq_no,
                    target,
                    port,
                    node,
                    nack,
                    source_addr: vec![10, 0, 0, 1],
                    source_port: 7946,
                    source_node,
                })
            }),
        (any::<u32>(), bytes(300))
            .prop_map(|(seq_no, payload)| Message::Ack(Ack { seq_no, payload })),
        any::<u32>().prop_map(|seq_no| Message::Nack(Nack { seq_no })),
        (any::<u32>(), text(), text()).prop_map(|(incarnation, node, from)| Message::Suspect(
            Suspect {
                incarnation,
                node,
                from
            }
        )),
        (any::<u32>(), text(), text()).prop_map(|(incarnation, node, from)| Message::Dead(Dead {
            incarnation,
            node,
            from
        })),
        (
            any::<u32>(),
            text(),
            bytes(17),
            any::<u16>(),
            bytes(600),
            vsn()
        )
            .prop_map(
                |(incarnation, node, addr, port, meta, vsn)| Message::Alive(Alive {
                    incarnation,
                    node,
                    addr,
                    port,
                    meta,
                    vsn
                })
            ),
        bytes(200).prop_map(Message::User),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(input in bytes(512)) {
        let codec = Codec::default();
        let _ = codec.decode_packet(&input);
        let _ = codec.decode_stream(&input);
        let keyed = Codec::with_keyring(Keyring::new(Key::new(&[1; 16]).expect("16")));
        let _ = keyed.decode_packet(&input);
        let _ = keyed.decode_stream(&input);
    }

    #[test]
    fn every_message_round_trips_alone_and_in_a_compound(messages in proptest::collection::vec(message(), 1..6)) {
        let codec = Codec::default();
        for m in &messages {
            let decoded = codec.decode_packet(&m.encode()).expect("decodes");
            prop_assert_eq!(decoded.packet, Packet::Message(m.clone()));
        }
        let parts: Vec<Vec<u8>> = messages.iter().map(Message::encode).collect();
        let mut compound = Vec::new();
        encode_compound(&mut compound, &parts).expect("fits");
        let packet = Packet::Crc(Box::new(Packet::Compressed(Box::new(
            codec.decode_packet(&compound).expect("decodes").packet,
        ))));
        let bytes = packet.encode().expect("encodes");
        let decoded = codec.decode_packet(&bytes).expect("decodes");
        prop_assert_eq!(decoded.packet.into_messages(), messages);
    }

    #[test]
    fn push_pulls_round_trip_through_compression(
        join in any::<bool>(),
        names in proptest::collection::vec(text(), 0..20),
        user_state in bytes(2000),
    ) {
        let nodes = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| PushNodeState {
                name,
                addr: vec![192, 168, 0, i as u8],
                port: 7946,
                meta: vec![i as u8; i],
                incarnation: i as u32,
                state: [NodeState::Alive, NodeState::Suspect, NodeState::Dead, NodeState::Left][i % 4],
                vsn: Vsn::MEMBERLIST_DEFAULT,
            })
            .collect();
        let message = StreamMessage::PushPull(PushPull { join, nodes, user_state });
        let bytes = encode_stream(&message, &StreamOptions { compress: true, ..StreamOptions::default() })
            .expect("encodes");
        let decoded = Codec::default().decode_stream(&bytes).expect("decodes").expect("whole");
        prop_assert_eq!(decoded.message, message);
        prop_assert_eq!(decoded.consumed, bytes.len());
    }
}

#[test]
fn a_push_pull_header_claiming_too_many_nodes_is_refused_before_allocating() {
    // [6] {Join: false, Nodes: 2^32-1, UserStateLen: 0}
    let mut bytes = vec![6, 0x83, 0xa4];
    bytes.extend_from_slice(b"Join");
    bytes.push(0xc2);
    bytes.push(0xa5);
    bytes.extend_from_slice(b"Nodes");
    bytes.extend_from_slice(&[0xce, 0xff, 0xff, 0xff, 0xff]);
    bytes.push(0xac);
    bytes.extend_from_slice(b"UserStateLen");
    bytes.push(0);
    assert_eq!(
        Codec::default().decode_stream(&bytes),
        Err(Error::TooLarge {
            what: "push/pull node count",
            limit: Limits::default().max_push_nodes
        })
    );
}

#[test]
fn nesting_wrappers_past_the_limit_is_refused() {
    let mut packet = Packet::Message(Message::Nack(Nack { seq_no: 1 }));
    for _ in 0..6 {
        packet = Packet::Compound(vec![packet]);
    }
    let bytes = packet.encode().expect("encodes");
    assert_eq!(
        Codec::default().decode_packet(&bytes),
        Err(Error::TooNested(4))
    );
}

#[test]
fn a_crc_mismatch_and_a_truncated_compound_are_reported() {
    let nack = Message::Nack(Nack { seq_no: 9 }).encode();
    let mut bytes = Packet::Crc(Box::new(Packet::Message(Message::Nack(Nack { seq_no: 9 }))))
        .encode()
        .expect("encodes");
    *bytes.last_mut().expect("non-empty") ^= 1;
    assert!(matches!(
        Codec::default().decode_packet(&bytes),
        Err(Error::Crc { .. })
    ));

    let mut compound = Vec::new();
    encode_compound(&mut compound, &[nack.clone(), nack]).expect("fits");
    compound.pop();
    assert_eq!(
        Codec::default().decode_packet(&compound),
        Err(Error::CompoundTruncated(1))
    );
}

#[test]
fn a_compound_over_255_parts_is_an_encoding_error() {
    let parts = vec![vec![11u8]; 256];
    assert!(encode_compound(&mut Vec::new(), &parts).is_err());
}
