//! The decode fuzz harnesses: plain functions the cargo-fuzz targets `memberlist` ([`decode`])
//! and `memberlist_kv` ([`decode_kv`]) in `fuzz/` call, and that this crate's tests replay the
//! checked-in corpora through on stable.
//!
//! Input layout: one mode byte, then the bytes to decode.
//!
//! | mode bit | meaning |
//! | --- | --- |
//! | 0 | decode as a stream (else as a packet) |
//! | 1 | the codec holds [`keyring`] (the keys of the Go test vectors) |
//! | 2 | with a keyring, accept plaintext too (`verify_incoming = false`) |
//! | 3 | packets: if the input starts with a CRC header, recompute it so the fuzzer gets past it |
//!
//! Besides "no panic", whatever decodes must re-encode (when it fits memberlist's limits) to
//! bytes that decode to the same thing, and for streams every proper prefix of the re-encoding
//! must be "read more".

use crate::kv::{KeyValuePair, KvLimits, decode_full_state, encode_full_state};
use crate::security::{Key, Keyring};
use crate::{Codec, Error, StreamOptions, encode_stream};

/// The keys of `tests/vectors/encrypted_*.json` (AES-128 primary, AES-256 second).
pub fn keyring() -> Keyring {
    let mut ring = Keyring::new(Key(b"rumour-key-16-b!".to_vec()));
    ring.add(Key(b"rumour-memberlist-32-byte-key!!!".to_vec()));
    ring
}

/// Mode bit: decode as a stream.
pub const MODE_STREAM: u8 = 1;
/// Mode bit: the codec holds [`keyring`].
pub const MODE_KEYED: u8 = 2;
/// Mode bit: accept plaintext alongside the keyring.
pub const MODE_PLAINTEXT_OK: u8 = 4;
/// Mode bit: recompute a leading CRC.
pub const MODE_FIX_CRC: u8 = 8;

/// Runs one fuzz input; panics if a property fails.
pub fn decode(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let mut codec = Codec::default();
    if mode & MODE_KEYED != 0 {
        codec.keyring = Some(keyring());
        codec.verify_incoming = mode & MODE_PLAINTEXT_OK == 0;
    }
    if mode & MODE_STREAM != 0 {
        stream(&codec, bytes);
    } else {
        packet(&codec, bytes, mode & MODE_FIX_CRC != 0);
    }
}

fn packet(codec: &Codec, bytes: &[u8], fix_crc: bool) {
    let mut bytes = bytes.to_vec();
    if fix_crc && bytes.len() >= 5 && bytes[0] == crate::MessageType::HasCrc as u8 {
        let crc = crc32fast::hash(&bytes[5..]).to_be_bytes();
        bytes[1..5].copy_from_slice(&crc);
    }
    let Ok(decoded) = codec.decode_packet(&bytes) else {
        return;
    };
    let Ok(again) = decoded.packet.encode() else {
        return; // a re-encoded part can outgrow a compound's u16 length; that is refused
    };
    // The plaintext is compared; encryption round trips are the vector tests' business.
    let redecoded = plain(codec)
        .decode_packet(&again)
        .expect("a re-encoded packet decodes");
    assert_eq!(
        redecoded.packet, decoded.packet,
        "packet re-encoding is faithful"
    );
}

/// The same codec without encryption.
fn plain(codec: &Codec) -> Codec {
    Codec {
        keyring: None,
        ..codec.clone()
    }
}

fn stream(codec: &Codec, bytes: &[u8]) {
    let Ok(Some(decoded)) = codec.decode_stream(bytes) else {
        return;
    };
    assert!(decoded.consumed <= bytes.len());
    let options = StreamOptions {
        compress: decoded.compressed,
        seal: None,
        label: &[],
    };
    let Ok(again) = encode_stream(&decoded.message, &options) else {
        return;
    };
    let codec = plain(codec);
    let redecoded = codec
        .decode_stream(&again)
        .expect("a re-encoded stream decodes")
        .expect("a re-encoded stream is whole");
    assert_eq!(
        redecoded.message, decoded.message,
        "stream re-encoding is faithful"
    );
    assert_eq!(redecoded.consumed, again.len());
    for cut in [0, again.len() / 2, again.len() - 1] {
        assert_eq!(
            codec.decode_stream(&again[..cut]),
            Ok(None),
            "a prefix of a stream message is \"read more\""
        );
    }
}

/// Mode bit of [`decode_kv`]: decode a full state (else one pair).
pub const KV_MODE_FULL_STATE: u8 = 1;

/// Runs one input of the `memberlist_kv` target: dskit's `KeyValuePair` protobuf, or with
/// [`KV_MODE_FULL_STATE`] in the first byte a full state of length-prefixed pairs
/// ([`crate::kv`]), under small limits (so the fuzzer reaches them). Panics if a property fails:
/// a decoded pair re-encodes to [`KeyValuePair::encoded_len`] bytes that decode to the same
/// pair; the pairs a full state yields re-encode to a full state that yields the same pairs,
/// without errors; and the iteration stops after a framing error.
pub fn decode_kv(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let limits = KvLimits {
        max_key_len: 64,
        max_codec_len: 16,
        max_value_bytes: 4096,
        max_pairs: 64,
    };
    if mode & KV_MODE_FULL_STATE == 0 {
        if let Ok(pair) = KeyValuePair::decode(bytes, &limits) {
            let again = pair.to_bytes();
            assert_eq!(again.len(), pair.encoded_len(), "encoded_len is exact");
            assert_eq!(
                KeyValuePair::decode(&again, &limits),
                Ok(pair),
                "pair re-encoding is faithful"
            );
        }
        return;
    }
    let mut good = Vec::new();
    let mut after_framing_error = false;
    for item in decode_full_state(bytes, &limits) {
        assert!(!after_framing_error, "a framing error ends the state");
        match item {
            Ok(pair) => good.push(pair),
            Err(
                Error::FullState { .. }
                | Error::TooLarge {
                    what: "pairs in a KV full state",
                    ..
                },
            ) => after_framing_error = true,
            Err(_) => {}
        }
    }
    let mut again = Vec::new();
    encode_full_state(&mut again, &good).expect("small pairs frame");
    let redecoded: Vec<_> = decode_full_state(&again, &limits).collect();
    assert_eq!(
        redecoded,
        good.into_iter().map(Ok).collect::<Vec<_>>(),
        "full-state re-encoding is faithful"
    );
}
