//! Unit tests of sealed frames: round trips, wrong keys, tampering, truncation, relabelling,
//! limits, the rollout switches and key rotation.

use super::*;

fn key(byte: u8) -> Key {
    Key::from_bytes([byte; 32])
}

fn sealed(label: Option<&str>, keys: &[u8]) -> FrameCodec {
    let mut config =
        FrameConfig::default().with_keyring(Keyring::from_keys(keys.iter().map(|&b| key(b))));
    if let Some(label) = label {
        config = config.with_label(Label::new(label).unwrap());
    }
    FrameCodec::new(config).with_nonce_rng(ChaCha20Rng::seed_from_u64(7))
}

fn decode(codec: &FrameCodec, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
    codec
        .decode_packet(bytes)
        .map(|p| p.iter().map(<[u8]>::to_vec).collect())
}

fn decode_any(codec: &FrameCodec, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
    if bytes.get(FLAGS_AT).is_some_and(|f| f & FLAG_STREAM != 0) {
        codec.decode_stream(bytes).map(|m| vec![m.into_owned()])
    } else {
        decode(codec, bytes)
    }
}

fn sample_frames() -> Vec<(FrameCodec, Vec<u8>)> {
    let big = vec![0xa5; 300];
    let mut frames = Vec::new();
    for label in [None, Some("prod-eu")] {
        let c = sealed(label, &[1]);
        frames.push((sealed(label, &[1]), c.encode_packet(&[b"ping"])));
        frames.push((sealed(label, &[1]), c.encode_packet(&[b"a", b"", &big])));
        frames.push((sealed(label, &[1]), c.encode_packet(&[])));
        let stream = c.encode_stream(b"push-pull state").unwrap();
        frames.push((sealed(label, &[1]), stream));
    }
    frames
}

#[test]
fn sealed_datagrams_round_trip_and_hide_their_body() {
    let c = sealed(Some("prod"), &[1]);
    for msgs in [&[&b"secret ping"[..]][..], &[b"one", b"", &[7; 200]], &[]] {
        let frame = c.encode_packet(msgs);
        assert_eq!(frame[FLAGS_AT], FLAG_LABEL | FLAG_SEALED);
        assert_eq!(frame.len(), c.packet_len(msgs));
        assert_eq!(
            frame.len(),
            c.header_len()
                + msgs
                    .iter()
                    .map(|m| FrameCodec::packed_len(m.len()))
                    .sum::<usize>()
        );
        assert!(!frame.windows(6).any(|w| w == b"secret"));
        let packet = c.decode_packet(&frame).unwrap();
        assert!(packet.was_sealed());
        assert_eq!(packet.iter().collect::<Vec<_>>(), msgs);
    }
    let stats = c.stats();
    assert_eq!((stats.packets_sealed, stats.frames_opened), (3, 3));
}

#[test]
fn sealing_costs_forty_bytes_instead_of_the_four_byte_checksum() {
    let plain = FrameCodec::new(FrameConfig::default());
    let c = sealed(None, &[1]);
    assert_eq!(c.header_len(), plain.header_len() - CRC_LEN + SEAL_OVERHEAD);
    assert_eq!(c.header_len(), 44);
    assert_eq!(sealed(Some("abc"), &[1]).header_len(), 44 + 4);
    assert_eq!(c.stream_overhead(), 4 + 4 + 40);
    // One message: the sealed body is a compound, so its length is paid too.
    assert_eq!(c.encode_packet(&[&[0; 1000]]).len(), 44 + 2 + 1000);
}

#[test]
fn sealed_streams_round_trip_and_tell_their_length() {
    let c = sealed(Some("prod"), &[1]);
    let msg = vec![9u8; 100_000];
    let frame = c.encode_stream(&msg).unwrap();
    assert_eq!(frame[FLAGS_AT], FLAG_LABEL | FLAG_STREAM | FLAG_SEALED);
    assert_eq!(frame.len(), c.stream_overhead() + msg.len());
    assert_eq!(c.stream_frame_len(&frame[..16]), Ok(Some(frame.len())));
    assert_eq!(*c.decode_stream(&frame).unwrap(), msg[..]);
    assert_eq!(c.stats().streams_sealed, 1);
}

#[test]
fn a_frame_sealed_with_another_key_is_dropped_and_counted() {
    let ours = sealed(None, &[1]);
    let theirs = sealed(None, &[2]);
    let err = ours
        .decode_packet(&theirs.encode_packet(&[b"alive"]))
        .unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::NotAuthentic);
    let err = ours
        .decode_stream(&theirs.encode_stream(b"state").unwrap())
        .unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::NotAuthentic);
    let stats = ours.stats();
    assert_eq!(stats.dropped_not_authentic, 2);
    assert_eq!(stats.messages_decoded, 0);
}

#[test]
fn a_codec_without_keys_drops_sealed_frames_and_a_keyed_one_drops_plaintext() {
    let keyless = FrameCodec::new(FrameConfig::default());
    let keyed = sealed(None, &[1]);
    let err = keyless
        .decode_packet(&keyed.encode_packet(&[b"x"]))
        .unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::Sealed);
    let err = keyed
        .decode_packet(&keyless.encode_packet(&[b"x"]))
        .unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::Unsealed);
    let err = keyed
        .decode_stream(&keyless.encode_stream(b"x").unwrap())
        .unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::Unsealed);
    assert_eq!(keyless.stats().dropped_sealed, 1);
    assert_eq!(keyed.stats().dropped_unsealed, 2);
}

#[test]
fn every_single_bit_flip_of_a_sealed_frame_is_rejected() {
    for (c, frame) in sample_frames() {
        for bit in 0..frame.len() * 8 {
            let mut flipped = frame.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = decode_any(&c, &flipped);
            assert!(result.is_err(), "flip of bit {bit} accepted: {result:?}");
        }
        assert_eq!(c.stats().dropped_total(), frame.len() as u64 * 8);
        assert_eq!(c.stats().messages_decoded, 0);
    }
}

#[test]
fn every_truncation_of_a_sealed_frame_is_rejected_and_counted() {
    for (c, frame) in sample_frames() {
        for len in 0..frame.len() {
            assert!(decode_any(&c, &frame[..len]).is_err(), "cut to {len}");
        }
        assert_eq!(c.stats().dropped_total(), frame.len() as u64);
        assert!(decode_any(&c, &frame).is_ok());
    }
}

#[test]
fn a_sealed_frame_replayed_under_another_label_does_not_open() {
    let prod = sealed(Some("prod"), &[1]);
    let frame = prod.encode_packet(&[b"dead n3"]);
    let mut relabelled = frame.clone();
    relabelled[LABEL_AT + 1..LABEL_AT + 5].copy_from_slice(b"test");
    for verify_label in [true, false] {
        let test = FrameCodec::new(
            FrameConfig::default()
                .with_label(Label::new("test").unwrap())
                .with_verify_label(verify_label)
                .with_keyring(Keyring::new(key(1))),
        );
        let err = test.decode_packet(&relabelled).unwrap_err();
        assert_eq!(err.kind, FrameErrorKind::NotAuthentic);
        assert_eq!(test.stats().dropped_not_authentic, 1);
    }
    // Unchanged, it is refused by the label check.
    let test = FrameCodec::new(
        FrameConfig::default()
            .with_label(Label::new("test").unwrap())
            .with_keyring(Keyring::new(key(1))),
    );
    let err = test.decode_packet(&frame).unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::LabelMismatch);
    // Stripping the label off changes the header too.
    let mut stripped = frame[..LABEL_AT].to_vec();
    stripped[FLAGS_AT] &= !FLAG_LABEL;
    stripped.extend_from_slice(&frame[LABEL_AT + 5..]);
    let unlabelled = sealed(None, &[1]);
    let err = unlabelled.decode_packet(&stripped).unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::NotAuthentic);
}

#[test]
fn an_oversized_sealed_stream_is_rejected_from_its_length_alone() {
    let c = FrameCodec::new(
        FrameConfig::default()
            .with_max_message(1000)
            .with_keyring(Keyring::new(key(1))),
    );
    let mut head = c.encode_stream(&[0; 10]).unwrap()[..LABEL_AT].to_vec();
    head.extend_from_slice(&(1001 + SEAL_OVERHEAD as u32).to_be_bytes());
    let err = c.stream_frame_len(&head).unwrap_err();
    assert_eq!(
        err.kind,
        FrameErrorKind::OverLimit {
            len: 1001,
            limit: 1000
        }
    );
    let err = c.decode_stream(&head).unwrap_err();
    assert!(matches!(err.kind, FrameErrorKind::OverLimit { .. }));
    assert_eq!(c.stats().dropped_over_limit, 2);
    // Exactly at the limit is fine; a length shorter than nonce and tag is malformed.
    let frame = c.encode_stream(&[0; 1000]).unwrap();
    assert_eq!(c.decode_stream(&frame).unwrap().len(), 1000);
    assert!(c.encode_stream(&[0; 1001]).is_err());
    head[LABEL_AT..].copy_from_slice(&39u32.to_be_bytes());
    assert_eq!(
        c.decode_stream(&head).unwrap_err().kind,
        FrameErrorKind::Malformed
    );
}

#[test]
fn a_sealed_frame_with_flags_it_cannot_have_is_malformed() {
    let c = sealed(None, &[1]);
    let mut frame = c.encode_packet(&[b"x", b"y"]);
    frame[FLAGS_AT] |= FLAG_COMPOUND;
    assert_eq!(
        c.decode_packet(&frame).unwrap_err().kind,
        FrameErrorKind::Malformed
    );
}

#[test]
fn the_rollout_switches_move_from_plaintext_to_sealed_and_back() {
    let plain = FrameCodec::new(FrameConfig::default());
    // Step 1: keys installed, nothing verified: writes plaintext, reads both.
    let step1 = FrameCodec::new(
        FrameConfig::default()
            .with_keyring(Keyring::new(key(1)))
            .with_verify_incoming(false)
            .with_verify_outgoing(false),
    );
    assert!(!step1.seals());
    let frame = step1.encode_packet(&[b"a"]);
    assert_eq!(frame[FLAGS_AT] & FLAG_SEALED, 0);
    assert_eq!(decode(&plain, &frame).unwrap(), [b"a"]);
    assert_eq!(
        decode(&step1, &plain.encode_packet(&[b"b"])).unwrap(),
        [b"b"]
    );
    // Step 2: outgoing sealed; plaintext still read.
    step1.set_verify_outgoing(true);
    assert!(step1.seals());
    let frame = step1.encode_packet(&[b"c"]);
    assert_ne!(frame[FLAGS_AT] & FLAG_SEALED, 0);
    assert_eq!(decode(&step1, &frame).unwrap(), [b"c"]);
    assert_eq!(
        decode(&step1, &plain.encode_packet(&[b"d"])).unwrap(),
        [b"d"]
    );
    // Step 3: plaintext refused.
    step1.set_verify_incoming(true);
    assert!(decode(&step1, &plain.encode_packet(&[b"e"])).is_err());
    assert_eq!(step1.stats().dropped_unsealed, 1);
    // And back: an empty keyring turns encryption off.
    step1.set_keyring(Keyring::default());
    assert_eq!(
        decode(&step1, &plain.encode_packet(&[b"f"])).unwrap(),
        [b"f"]
    );
    let status = step1.keyring_status();
    assert!(status.fingerprints.is_empty() && !status.seals());
}

#[test]
fn a_rotation_keeps_every_step_readable_by_a_node_one_step_behind() {
    let (old, new) = (key(1), key(2));
    let a = sealed(None, &[1]);
    let b = sealed(None, &[1]);
    // Install everywhere (b lags one step at each stage).
    a.install_key(new.clone());
    assert_eq!(decode(&b, &a.encode_packet(&[b"1"])).unwrap(), [b"1"]);
    b.install_key(new.clone());
    // Use: a seals with the new key, b (still on the old primary) opens it.
    a.use_key(&new).unwrap();
    assert_eq!(a.keyring_status().primary(), Some(new.fingerprint()));
    assert_eq!(decode(&b, &a.encode_packet(&[b"2"])).unwrap(), [b"2"]);
    assert_eq!(decode(&a, &b.encode_packet(&[b"3"])).unwrap(), [b"3"]);
    b.use_key(&new).unwrap();
    // Remove: a drops the old key; b's frames are sealed with the new one already.
    assert!(matches!(
        a.remove_key(&new),
        Err(TransportError::RemovePrimaryKey { .. })
    ));
    a.remove_key(&old).unwrap();
    assert_eq!(decode(&a, &b.encode_packet(&[b"4"])).unwrap(), [b"4"]);
    assert_eq!(decode(&b, &a.encode_packet(&[b"5"])).unwrap(), [b"5"]);
    b.remove_key(&old).unwrap();
    // A frame under the removed key no longer opens.
    let stale = sealed(None, &[1]).encode_packet(&[b"6"]);
    assert!(decode(&a, &stale).is_err());
    assert_eq!(a.keyring_status().fingerprints, [new.fingerprint()]);
}

#[test]
fn nonces_are_fresh_per_frame_and_replay_with_the_seed() {
    let a = sealed(None, &[1]);
    let f1 = a.encode_packet(&[b"same"]);
    let f2 = a.encode_packet(&[b"same"]);
    assert_ne!(f1[4..4 + NONCE_LEN], f2[4..4 + NONCE_LEN]);
    assert_ne!(f1, f2);
    assert_eq!(sealed(None, &[1]).encode_packet(&[b"same"]), f1);
}

#[test]
fn a_key_holder_cannot_smuggle_a_malformed_compound_past_the_checks() {
    let c = sealed(None, &[1]);
    // A sealed body whose varint runs past the end: authentic, but truncated inside.
    let mut out = c.prefix.clone();
    out[FLAGS_AT] |= FLAG_SEALED;
    let aad_end = seal::start(&mut out, &mut ChaCha20Rng::seed_from_u64(1));
    out.extend_from_slice(&[50, 1, 2]);
    seal::finish(&mut out, aad_end, &key(1));
    let err = c.decode_packet(&out).unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::Truncated);
    assert_eq!(c.stats().frames_opened, 1);
    assert_eq!(c.stats().messages_decoded, 0);
}

#[test]
fn debug_output_of_a_keyed_codec_shows_no_key_material() {
    let c = sealed(Some("prod"), &[0xab]);
    let shown = format!("{c:?} {:?} {:?}", c.config(), c.keyring_status());
    assert!(
        !shown.contains("ab, ab") && !shown.contains("171"),
        "{shown}"
    );
    assert!(shown.contains("keys: 1"), "{shown}");
}

/// Fills every request with 0x00, 0x01, 0x02, ...: a nonce anyone can check by hand.
#[derive(Clone)]
struct Counting;

impl RngCore for Counting {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = i as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[test]
fn the_sealed_examples_in_the_protocol_doc_are_what_the_encoder_writes() {
    let hex = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let c = FrameCodec::new(
        FrameConfig::default()
            .with_label(Label::new("prod").unwrap())
            .with_keyring(Keyring::new(key(0x42))),
    )
    .with_nonce_rng(Counting);
    let packet = c.encode_packet(&[b"ping"]);
    let stream = c.encode_stream(b"sync").unwrap();
    assert_eq!(hex(&packet), PACKET);
    assert_eq!(hex(&stream), STREAM);
    assert_eq!(decode(&c, &packet).unwrap(), [b"ping"]);
}

const PACKET: &str = "52 55 01 09 04 70 72 6f 64 \
    00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 \
    88 8c ed 89 a0 cf 84 99 cd d3 c3 74 45 59 ec fd 12 58 55 ab c6";
const STREAM: &str = "52 55 01 0d 04 70 72 6f 64 00 00 00 2c \
    00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 \
    ff 85 ea 84 ed d0 5b 39 e0 87 fa 05 67 19 86 80 11 b2 50 aa";
