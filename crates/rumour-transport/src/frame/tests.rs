//! Unit tests of the frame format: round trips, every bit flip, every truncation, labels, limits.

use super::*;

fn codec() -> FrameCodec {
    FrameCodec::new(FrameConfig::default())
}

fn labelled(label: &str) -> FrameCodec {
    FrameCodec::new(FrameConfig::default().with_label(Label::new(label).unwrap()))
}

fn decode(codec: &FrameCodec, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
    codec
        .decode_packet(bytes)
        .map(|p| p.iter().map(<[u8]>::to_vec).collect())
}

/// Re-computes the checksum of a hand-edited frame so that only the structure is wrong.
fn reseal(frame: &mut [u8], crc_at: usize) {
    seal_checksum(frame, crc_at);
}

/// Frames covering each layout: plain, compound, empty compound, with and without a label.
fn sample_frames() -> Vec<(FrameCodec, Vec<u8>)> {
    let big = vec![0xa5; 300];
    let mut frames = Vec::new();
    for make in [codec as fn() -> FrameCodec, || labelled("prod-eu")] {
        let c = make();
        frames.push((make(), c.encode_packet(&[b"ping"])));
        frames.push((make(), c.encode_packet(&[b"a", b"", &big, b"last"])));
        frames.push((make(), c.encode_packet(&[])));
        frames.push((make(), c.encode_stream(b"push-pull state").unwrap()));
    }
    frames
}

fn decode_any(codec: &FrameCodec, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
    if bytes.get(FLAGS_AT).is_some_and(|f| f & FLAG_STREAM != 0) {
        codec.decode_stream(bytes).map(|m| vec![m.into_owned()])
    } else {
        decode(codec, bytes)
    }
}

#[test]
fn one_message_is_a_plain_frame_and_round_trips() {
    let c = codec();
    let frame = c.encode_packet(&[b"hello"]);
    assert_eq!(frame[FLAGS_AT] & FLAG_COMPOUND, 0);
    assert_eq!(frame.len(), c.header_len() + 5);
    assert_eq!(decode(&c, &frame).unwrap(), [b"hello"]);
}

#[test]
fn several_messages_pack_into_one_compound_frame() {
    let c = codec();
    let msgs: [&[u8]; 3] = [b"one", b"", &[7; 200]];
    let frame = c.encode_packet(&msgs);
    assert_ne!(frame[FLAGS_AT] & FLAG_COMPOUND, 0);
    assert_eq!(frame.len(), c.packet_len(&msgs));
    assert_eq!(decode(&c, &frame).unwrap(), msgs);
    assert_eq!(c.decode_packet(&frame).unwrap().len(), 3);
}

#[test]
fn an_empty_compound_carries_no_messages() {
    let c = codec();
    let frame = c.encode_packet(&[]);
    assert_eq!(frame.len(), c.header_len());
    assert!(decode(&c, &frame).unwrap().is_empty());
}

#[test]
fn header_is_eight_bytes_plus_the_label() {
    assert_eq!(codec().header_len(), 8);
    assert_eq!(labelled("abc").header_len(), 8 + 1 + 3);
    assert_eq!(codec().stream_overhead(), 12);
    assert_eq!(FrameCodec::packed_len(0), 1);
    assert_eq!(FrameCodec::packed_len(127), 128);
    assert_eq!(FrameCodec::packed_len(128), 130);
    assert_eq!(FrameCodec::packed_len(16_383), 16_385);
    assert_eq!(FrameCodec::packed_len(16_384), 16_387);
}

#[test]
fn the_layout_is_magic_version_flags_label_checksum_body() {
    let c = labelled("xy");
    let frame = c.encode_packet(&[b"m"]);
    assert_eq!(&frame[..4], &[b'R', b'U', 1, FLAG_LABEL]);
    assert_eq!(&frame[4..7], &[2, b'x', b'y']);
    let crc = crc32fast::hash(&[&frame[..7], &frame[11..]].concat());
    assert_eq!(&frame[7..11], &crc.to_be_bytes());
    assert_eq!(&frame[11..], b"m");
}

#[test]
fn every_single_bit_flip_is_rejected() {
    for (c, frame) in sample_frames() {
        for bit in 0..frame.len() * 8 {
            let mut flipped = frame.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = decode_any(&c, &flipped);
            assert!(
                result.is_err(),
                "flip of bit {bit} in {frame:02x?} was accepted: {result:?}"
            );
        }
        assert_eq!(c.stats().dropped_total(), frame.len() as u64 * 8);
    }
}

#[test]
fn every_truncation_is_rejected() {
    for (c, frame) in sample_frames() {
        for len in 0..frame.len() {
            let result = decode_any(&c, &frame[..len]);
            assert!(
                result.is_err(),
                "truncation to {len} bytes of {frame:02x?} was accepted"
            );
        }
        assert!(decode_any(&c, &frame).is_ok());
    }
}

#[test]
fn a_frame_from_another_cluster_is_dropped_and_counted() {
    let ours = labelled("prod");
    let frame = labelled("staging").encode_packet(&[b"alive"]);
    let err = ours.decode_packet(&frame).unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::LabelMismatch);
    assert_eq!(err.offset, LABEL_AT);
    assert_eq!(ours.stats().dropped_label_mismatch, 1);
    assert_eq!(ours.stats().packets_decoded, 0);
}

#[test]
fn a_frame_without_a_label_is_dropped_when_we_have_one() {
    let ours = labelled("prod");
    let err = ours
        .decode_packet(&codec().encode_packet(&[b"x"]))
        .unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::MissingLabel);
    let err = ours
        .decode_stream(&codec().encode_stream(b"x").unwrap())
        .unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::MissingLabel);
    assert_eq!(ours.stats().dropped_missing_label, 2);
}

#[test]
fn a_labelled_frame_is_dropped_when_we_have_no_label() {
    let err = codec()
        .decode_packet(&labelled("prod").encode_packet(&[b"x"]))
        .unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::LabelMismatch);
}

#[test]
fn with_verification_off_any_label_or_none_is_accepted() {
    let config = FrameConfig::default()
        .with_label(Label::new("prod").unwrap())
        .with_verify_label(false);
    let rollout = FrameCodec::new(config);
    for sender in [codec(), labelled("prod"), labelled("other")] {
        assert_eq!(
            decode(&rollout, &sender.encode_packet(&[b"x"])).unwrap(),
            [b"x"]
        );
        let stream = sender.encode_stream(b"y").unwrap();
        assert_eq!(*rollout.decode_stream(&stream).unwrap(), *b"y");
    }
    // What it sends still carries its label.
    assert!(
        labelled("prod")
            .decode_packet(&rollout.encode_packet(&[b"z"]))
            .is_ok()
    );
}

#[test]
fn wrong_magic_version_and_flags_are_named_with_their_offsets() {
    let c = codec();
    let frame = c.encode_packet(&[b"x"]);
    let cases: [(usize, u8, &str, FrameErrorKind); 4] = [
        (0, b'X', "magic", FrameErrorKind::BadMagic),
        (
            2,
            9,
            "version",
            FrameErrorKind::UnsupportedVersion { found: 9 },
        ),
        (3, 0x80, "flags", FrameErrorKind::Malformed),
        (3, FLAG_SEALED, "flags", FrameErrorKind::Sealed),
    ];
    for (at, value, what, kind) in cases {
        let mut bad = frame.clone();
        bad[at] = value;
        assert_eq!(
            c.decode_packet(&bad).unwrap_err(),
            FrameError::new(what, at, kind)
        );
    }
    let stats = c.stats();
    assert_eq!(
        (
            stats.dropped_bad_magic,
            stats.dropped_unsupported_version,
            stats.dropped_sealed
        ),
        (1, 1, 1)
    );
}

#[test]
fn a_single_wrong_first_byte_is_bad_magic_not_truncation() {
    assert_eq!(
        codec().decode_packet(b"X").unwrap_err().kind,
        FrameErrorKind::BadMagic
    );
    assert_eq!(
        codec().decode_packet(b"R").unwrap_err().kind,
        FrameErrorKind::Truncated
    );
    assert_eq!(
        codec().decode_packet(b"").unwrap_err().kind,
        FrameErrorKind::Truncated
    );
}

#[test]
fn a_corrupted_body_is_a_checksum_mismatch() {
    let c = codec();
    let mut frame = c.encode_packet(&[b"abc", b"def"]);
    *frame.last_mut().unwrap() ^= 0x01;
    let err = c.decode_packet(&frame).unwrap_err();
    assert_eq!((err.what, err.offset), ("checksum", 4));
    assert!(matches!(err.kind, FrameErrorKind::ChecksumMismatch { .. }));
    assert_eq!(c.stats().dropped_checksum, 1);
}

#[test]
fn a_compound_length_running_past_the_end_is_truncated_even_with_a_valid_checksum() {
    let c = codec();
    let mut frame = c.encode_packet(&[b"abc", b"def"]);
    frame[8] = 100; // first message claims 100 bytes
    reseal(&mut frame, 4);
    let err = c.decode_packet(&frame).unwrap_err();
    assert_eq!(
        err,
        FrameError::new("message", 9, FrameErrorKind::Truncated)
    );
}

#[test]
fn an_over_long_varint_in_a_compound_is_malformed() {
    let c = codec();
    let mut frame = c.encode_packet(&[]);
    frame.extend_from_slice(&[0x81, 0x00, b'x']);
    reseal(&mut frame, 4);
    let err = c.decode_packet(&frame).unwrap_err();
    assert_eq!(
        err,
        FrameError::new("message length", 8, FrameErrorKind::Malformed)
    );
}

#[test]
fn a_zero_length_label_is_malformed() {
    let c = codec();
    let mut frame = vec![b'R', b'U', 1, FLAG_LABEL, 0, 0, 0, 0, 0];
    reseal(&mut frame, 5);
    assert_eq!(
        c.decode_packet(&frame).unwrap_err(),
        FrameError::new("label length", 4, FrameErrorKind::Malformed)
    );
}

#[test]
fn stream_and_datagram_frames_are_not_interchangeable() {
    let c = codec();
    let stream = c.encode_stream(b"x").unwrap();
    assert_eq!(
        c.decode_packet(&stream).unwrap_err().kind,
        FrameErrorKind::Malformed
    );
    let packet = c.encode_packet(&[b"x"]);
    assert_eq!(
        c.decode_stream(&packet).unwrap_err().kind,
        FrameErrorKind::Malformed
    );
    let compound = c.encode_packet(&[b"x", b"y"]);
    assert_eq!(
        c.decode_stream(&compound).unwrap_err().kind,
        FrameErrorKind::Malformed
    );
}

#[test]
fn a_stream_frame_round_trips_with_its_length_in_front() {
    let c = labelled("prod");
    let msg = vec![0x5a; 70_000];
    let frame = c.encode_stream(&msg).unwrap();
    assert_eq!(frame.len(), c.stream_overhead() + msg.len());
    assert_eq!(&frame[9..13], &(70_000u32).to_be_bytes());
    assert_eq!(c.decode_stream(&frame).unwrap(), &msg[..]);
    assert_eq!(c.stats().streams_decoded, 1);
}

#[test]
fn bytes_after_a_stream_message_are_malformed() {
    let c = codec();
    let mut frame = c.encode_stream(b"abc").unwrap();
    frame.push(0);
    let err = c.decode_stream(&frame).unwrap_err();
    assert_eq!(
        err,
        FrameError::new("end of frame", 15, FrameErrorKind::Malformed)
    );
}

#[test]
fn an_oversized_stream_length_is_rejected_before_the_body_is_needed() {
    let c = FrameCodec::new(FrameConfig::default().with_max_message(1024));
    // Header and a length of 4 GiB - 1, and no body at all.
    let head = [b'R', b'U', 1, FLAG_STREAM, 0xff, 0xff, 0xff, 0xff];
    let kind = FrameErrorKind::OverLimit {
        len: u64::from(u32::MAX),
        limit: 1024,
    };
    assert_eq!(
        c.decode_stream(&head).unwrap_err(),
        FrameError::new("message length", 4, kind)
    );
    assert_eq!(c.stream_frame_len(&head).unwrap_err().kind, kind);
    assert_eq!(c.stats().dropped_over_limit, 2);
}

#[test]
fn encoding_a_message_over_the_limit_fails_without_writing_anything() {
    let c = FrameCodec::new(FrameConfig::default().with_max_message(4));
    let err = c.encode_stream(b"12345").unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::OverLimit { len: 5, limit: 4 });
    assert_eq!(c.stats().streams_encoded, 0);
    assert!(c.encode_stream(b"1234").is_ok());
}

#[test]
fn stream_frame_len_waits_for_the_header_then_tells_the_whole_length() {
    let c = labelled("prod");
    let frame = c.encode_stream(&[1; 500]).unwrap();
    let header_end = 4 + 1 + 4 + 4; // magic..flags, label, length
    for len in 0..header_end {
        assert_eq!(
            c.stream_frame_len(&frame[..len]),
            Ok(None),
            "prefix of {len}"
        );
    }
    for len in [header_end, header_end + 7, frame.len()] {
        assert_eq!(c.stream_frame_len(&frame[..len]), Ok(Some(frame.len())));
    }
    assert_eq!(c.stats().dropped_total(), 0);
}

#[test]
fn counters_count_frames_and_messages() {
    let c = codec();
    let frame = c.encode_packet(&[b"a", b"b", b"c"]);
    let stream = c.encode_stream(b"s").unwrap();
    assert_eq!(decode(&c, &frame).unwrap().len(), 3);
    c.decode_stream(&stream).unwrap();
    let _ = c.decode_packet(b"junk");
    let stats = c.stats();
    assert_eq!((stats.packets_encoded, stats.streams_encoded), (1, 1));
    assert_eq!(
        (
            stats.packets_decoded,
            stats.streams_decoded,
            stats.messages_decoded
        ),
        (1, 1, 4)
    );
    assert_eq!(stats.dropped(FrameErrorKind::BadMagic), 1);
    assert_eq!(stats.dropped_total(), 1);
}

#[test]
fn the_examples_in_the_protocol_doc_are_what_the_encoder_writes() {
    let hex = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        hex(&codec().encode_packet(&[b"ping"])),
        "52 55 01 00 cc 01 dc 86 70 69 6e 67"
    );
    assert_eq!(
        hex(&labelled("prod").encode_packet(&[b"hi", b"there"])),
        "52 55 01 03 04 70 72 6f 64 78 52 5c dd 02 68 69 05 74 68 65 72 65"
    );
    assert_eq!(
        hex(&labelled("prod").encode_stream(b"sync").unwrap()),
        "52 55 01 05 04 70 72 6f 64 00 00 00 04 43 ad 3e a7 73 79 6e 63"
    );
}

#[test]
fn stream_frame_len_refuses_a_foreign_or_missing_label_from_the_header_alone() {
    let ours = labelled("prod");
    let foreign = labelled("staging").encode_stream(&[1; 500]).unwrap();
    let head = &foreign[..4 + 1 + 7 + 4];
    assert_eq!(
        ours.stream_frame_len(head).unwrap_err().kind,
        FrameErrorKind::LabelMismatch
    );
    let bare = codec().encode_stream(&[1; 500]).unwrap();
    assert_eq!(
        ours.stream_frame_len(&bare[..8]).unwrap_err().kind,
        FrameErrorKind::MissingLabel
    );
    assert_eq!(ours.stats().dropped_label_mismatch, 1);
    assert_eq!(ours.stats().dropped_missing_label, 1);
}

#[test]
fn a_compound_datagram_over_the_message_cap_is_dropped_whole() {
    let c = FrameCodec::new(FrameConfig::default().with_max_packet_messages(3));
    let three: [&[u8]; 3] = [b"a", b"b", b""];
    assert_eq!(decode(&c, &c.encode_packet(&three)).unwrap(), three);
    let four: [&[u8]; 4] = [b"a", b"b", b"", b""];
    let err = decode(&c, &c.encode_packet(&four)).unwrap_err();
    assert_eq!(err.kind, FrameErrorKind::OverLimit { len: 4, limit: 3 });
    assert_eq!(err.what, "message count");
    assert_eq!(c.stats().dropped_over_limit, 1);
    assert_eq!(c.stats().messages_decoded, 3);
}

#[test]
fn the_default_cap_is_memberlists_255_messages() {
    let c = codec();
    let empty: Vec<&[u8]> = vec![b""; 256];
    assert!(decode(&c, &c.encode_packet(&empty[..255])).is_ok());
    assert!(decode(&c, &c.encode_packet(&empty)).is_err());
}
