//! The decode fuzz harness: a plain function the cargo-fuzz target `memberlist` (in `fuzz/`)
//! calls, and that this crate's tests replay the checked-in corpus through on stable.
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

use crate::security::{Key, Keyring};
use crate::{Codec, StreamOptions, encode_stream};

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
