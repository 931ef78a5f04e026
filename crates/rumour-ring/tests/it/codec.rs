//! The ring codec: round trips, hostile input, and the encoded size against the bound.

use crate::support::{random_ring, ring};
use proptest::prelude::*;
use rumour_ring::testing::decode_unchecked;
use rumour_ring::{Error, FORMAT_VERSION, Mergeable, Ring};

/// log2(C(2^32, n)) / 8: the fewest bytes that can name a set of n distinct 32-bit tokens.
fn token_set_bound_bytes(n: usize) -> f64 {
    let mut bits = 0.0;
    for i in 0..n {
        bits += ((1u64 << 32) as f64 - i as f64).log2() - ((i + 1) as f64).log2();
    }
    bits / 8.0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_rings_round_trip(a in ring()) {
        let bytes = a.encode();
        prop_assert_eq!(bytes[0], FORMAT_VERSION);
        let decoded = Ring::decode(&bytes).expect("an encoded ring decodes");
        prop_assert_eq!(&decoded, &a);
        prop_assert_eq!(decoded.encode(), bytes, "encoding is canonical");
    }

    #[test]
    fn random_corruption_is_an_error(
        a in ring(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let mut bytes = a.encode();
        for (at, mask) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        prop_assume!(bytes != a.encode());
        prop_assert!(Ring::decode(&bytes).is_err());
    }

    #[test]
    fn the_parser_never_panics_on_corrupted_payloads(
        a in ring(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        // Below the checksum: corrupt the payload and parse it; any outcome but a panic is fine,
        // and whatever decodes re-encodes to a ring that decodes to itself.
        let encoded = a.encode();
        let mut payload = encoded[..encoded.len() - 4].to_vec();
        for (at, value) in &flips {
            let i = at.index(payload.len());
            payload[i] = *value;
        }
        payload.truncate(cut.index(payload.len() + 1));
        if let Ok(ring) = decode_unchecked(&payload) {
            prop_assert_eq!(Ring::decode(&ring.encode()).expect("re-encodes"), ring);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Ring::decode(&bytes);
        let _ = decode_unchecked(&bytes);
    }
}

#[test]
fn every_truncation_is_an_error() {
    let ring = random_ring(6, 16, 2, 11);
    let bytes = ring.encode();
    for len in 0..bytes.len() {
        assert!(Ring::decode(&bytes[..len]).is_err(), "length {len}");
        let payload_len = len.min(bytes.len() - 4);
        if payload_len < bytes.len() - 4 {
            assert!(
                decode_unchecked(&bytes[..payload_len]).is_err(),
                "payload length {payload_len}"
            );
        }
    }
}

#[test]
fn a_huge_entry_count_is_refused_before_allocating() {
    let mut payload = vec![FORMAT_VERSION];
    payload.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    payload.extend_from_slice(&[0; 16]);
    let err = decode_unchecked(&payload).expect_err("count beyond the input");
    assert!(
        matches!(
            err,
            Error::Decode {
                reason: "count exceeds what the input can hold",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_unknown_format_version_is_refused() {
    let mut bytes = random_ring(1, 4, 0, 1).encode();
    bytes[0] = FORMAT_VERSION + 1;
    let err = decode_unchecked(&bytes[..bytes.len() - 4]).expect_err("unknown version");
    assert!(matches!(
        err,
        Error::Decode {
            offset: 0,
            reason: "unknown format version",
            ..
        }
    ));
}

#[test]
fn encoded_random_rings_are_within_a_quarter_of_the_information_bound() {
    for (instances, tokens) in [(100, 128), (100, 512), (600, 128)] {
        let ring = random_ring(instances, tokens, 3, 5);
        let claimed: usize = ring.instances().map(|i| i.tokens().len()).sum();
        let bytes = ring.encode().len();
        let bound = instances as f64 * token_set_bound_bytes(tokens);
        let ratio = bytes as f64 / bound;
        println!(
            "{instances} x {tokens}: {bytes} bytes, {:.2} B/token (bound {:.2} B/token, ratio {ratio:.3}; \
             dskit protobuf+snappy ~5.3 B/token)",
            bytes as f64 / claimed as f64,
            bound / claimed as f64,
        );
        assert!(ratio <= 1.25, "{instances} x {tokens}: ratio {ratio}");
    }
}
