//! Properties of the frame format over generated inputs.

use proptest::prelude::*;
use rumour_transport::Label;
use rumour_transport::frame::{FrameCodec, FrameConfig, Key, Keyring};

fn codec(label: Option<String>, budget: usize) -> FrameCodec {
    let mut config = FrameConfig::default().with_packet_budget(budget);
    if let Some(label) = label {
        config = config.with_label(Label::new(label).unwrap());
    }
    FrameCodec::new(config)
}

/// The same codec, sealing with a fixed key when `sealed`.
fn maybe_sealed(label: Option<String>, budget: usize, sealed: bool) -> FrameCodec {
    let mut config = codec(label, budget).config().clone();
    if sealed {
        config = config.with_keyring(Keyring::new(Key::from_bytes([3; 32])));
    }
    FrameCodec::new(config)
}

/// Takes messages from the front of `candidates` while the datagram stays within the budget,
/// counting each with the packer's own arithmetic.
fn fill<'a>(c: &FrameCodec, candidates: &'a [Vec<u8>]) -> Vec<&'a [u8]> {
    let mut used = c.header_len();
    let mut taken = Vec::new();
    for msg in candidates {
        let cost = FrameCodec::packed_len(msg.len());
        if used + cost > c.packet_budget() {
            break;
        }
        used += cost;
        taken.push(&msg[..]);
    }
    taken
}

fn messages() -> impl Strategy<Value = Vec<Vec<u8>>> {
    // Mostly small messages, some past the one-byte varint boundary.
    let msg = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 100..400),
    ];
    proptest::collection::vec(msg, 0..120)
}

proptest! {
    #[test]
    fn any_messages_that_fit_the_budget_round_trip_through_compound_packing(
        label in proptest::option::of("[a-z0-9-]{1,60}"),
        budget in 64usize..4000,
        candidates in messages(),
        sealed in any::<bool>(),
    ) {
        let c = maybe_sealed(label, budget, sealed);
        // A long label with a tiny budget leaves no room even for the header.
        prop_assume!(c.header_len() <= budget);
        let msgs = fill(&c, &candidates);
        let packet = c.encode_packet(&msgs);
        prop_assert!(packet.len() <= budget, "{} bytes over a budget of {budget}", packet.len());
        prop_assert_eq!(packet.len(), c.packet_len(&msgs));
        let packet = c.decode_packet(&packet).unwrap();
        let decoded: Vec<&[u8]> = packet.iter().collect();
        prop_assert_eq!(decoded, msgs);
    }

    #[test]
    fn stream_frames_round_trip(label in proptest::option::of("[a-z]{1,255}"), msg in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let c = codec(label, 1400);
        let frame = c.encode_stream(&msg).unwrap();
        prop_assert_eq!(c.stream_frame_len(&frame).unwrap(), Some(frame.len()));
        prop_assert_eq!(&*c.decode_stream(&frame).unwrap(), &msg[..]);
        let sealed = maybe_sealed(None, 1400, true);
        let frame = sealed.encode_stream(&msg).unwrap();
        prop_assert_eq!(sealed.stream_frame_len(&frame).unwrap(), Some(frame.len()));
        prop_assert_eq!(&*sealed.decode_stream(&frame).unwrap(), &msg[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for sealed in [false, true] {
            let c = maybe_sealed(Some("prod".into()), 1400, sealed);
            let _ = c.decode_packet(&bytes).map(|p| p.iter().count());
            let _ = c.decode_stream(&bytes);
            let _ = c.stream_frame_len(&bytes);
        }
    }

    #[test]
    fn any_changed_byte_in_a_frame_is_rejected(
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..10),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        sealed in any::<bool>(),
    ) {
        let c = maybe_sealed(Some("prod".into()), 1400, sealed);
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let mut packet = c.encode_packet(&refs);
        let i = at.index(packet.len());
        packet[i] ^= xor;
        prop_assert!(c.decode_packet(&packet).is_err(), "byte {i} ^ {xor:#04x} accepted");
    }
}
