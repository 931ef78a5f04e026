//! Encryption versions, padding, keyring rotation and the label, without Go.

use rumour_memberlist::label::{add_label, strip_label};
use rumour_memberlist::security::{decrypt, decrypt_stream, encrypt, encrypt_stream};
use rumour_memberlist::{
    Codec, EncryptionVersion, Error, Key, Keyring, Message, Nack, Packet, PacketOptions, Seal,
    encode_packet,
};

fn key(byte: u8, len: usize) -> Key {
    Key::new(&vec![byte; len]).expect("valid size")
}

#[test]
fn keys_are_aes_128_192_or_256() {
    for len in [16, 24, 32] {
        let k = key(1, len);
        let ring = Keyring::new(k.clone());
        let sealed = encrypt(EncryptionVersion::V1, &k, [9; 12], b"hello", b"");
        assert_eq!(
            decrypt(&ring, &sealed, b"").map(|o| o.plain),
            Ok(b"hello".to_vec())
        );
    }
    assert_eq!(Key::new(&[0; 15]), Err(Error::KeySize(15)));
}

#[test]
fn version_zero_pads_to_the_block_and_version_one_does_not() {
    let k = key(3, 16);
    let ring = Keyring::new(k.clone());
    for len in [0usize, 1, 15, 16, 17, 100] {
        let plain = vec![0xab; len];
        let v0 = encrypt(EncryptionVersion::V0, &k, [1; 12], &plain, b"");
        let v1 = encrypt(EncryptionVersion::V1, &k, [1; 12], &plain, b"");
        assert_eq!(v0.len(), EncryptionVersion::V0.encrypted_len(len));
        assert_eq!(v1.len(), 29 + len);
        assert_eq!((v0.len() - 29) % 16, 0, "padded to the block");
        assert_eq!(decrypt(&ring, &v0, b"").map(|o| o.plain), Ok(plain.clone()));
        assert_eq!(decrypt(&ring, &v1, b"").map(|o| o.plain), Ok(plain));
    }
    assert_eq!(EncryptionVersion::for_protocol(1), EncryptionVersion::V0);
    assert_eq!(EncryptionVersion::for_protocol(2), EncryptionVersion::V1);
    assert_eq!(EncryptionVersion::V0.overhead(), 45);
    assert_eq!(EncryptionVersion::V1.overhead(), 29);
}

#[test]
fn malformed_ciphertexts_are_errors_not_panics() {
    let ring = Keyring::new(key(5, 16));
    assert_eq!(decrypt(&ring, &[], b""), Err(Error::TooSmallToDecrypt(0)));
    assert_eq!(
        decrypt(&ring, &[2; 40], b""),
        Err(Error::EncryptionVersion(2))
    );
    assert_eq!(
        decrypt(&ring, &[1; 28], b""),
        Err(Error::TooSmallToDecrypt(28))
    );
    assert_eq!(
        decrypt(&ring, &[0; 44], b""),
        Err(Error::TooSmallToDecrypt(44))
    );
    assert_eq!(decrypt(&ring, &[1; 60], b""), Err(Error::Decrypt));
    // A version-0 payload whose last plaintext byte is not valid padding.
    let k = key(5, 16);
    let bad = encrypt(EncryptionVersion::V1, &k, [0; 12], &[0u8; 16], b"");
    let mut as_v0 = bad.clone();
    as_v0[0] = 0;
    assert_eq!(decrypt(&ring, &as_v0, b""), Err(Error::Padding));
}

#[test]
fn the_keyring_rotates_like_memberlist() {
    let (old, new) = (key(1, 16), key(2, 32));
    let mut ring = Keyring::new(old.clone());
    ring.add(new.clone());
    assert_eq!(ring.primary(), &old);
    assert!(!ring.remove(&old), "the primary cannot be removed");
    assert!(ring.use_key(&new));
    assert_eq!(ring.primary(), &new);
    assert!(ring.remove(&old));
    assert_eq!(ring.keys(), [new]);
    assert_eq!(Keyring::from_keys(Vec::new()), Err(Error::EmptyKeyring));
    assert_eq!(
        format!("{:?}", key(1, 24)),
        "Key(AES-192)",
        "keys never print"
    );
}

#[test]
fn streams_authenticate_their_length_header() {
    let k = key(8, 16);
    let ring = Keyring::new(k.clone());
    let sealed = encrypt_stream(EncryptionVersion::V1, &k, [4; 12], b"state", b"");
    assert_eq!(sealed[0], 10);
    let (opened, used) = decrypt_stream(&ring, &sealed, b"", 1 << 20)
        .expect("decrypts")
        .expect("whole");
    assert_eq!(
        (opened.plain.as_slice(), used),
        (&b"state"[..], sealed.len())
    );
    assert_eq!(
        decrypt_stream(&ring, &sealed[..sealed.len() - 1], b"", 1 << 20),
        Ok(None)
    );
    assert_eq!(
        decrypt_stream(&ring, &sealed, b"", 10),
        Err(Error::TooLarge {
            what: "encrypted stream",
            limit: 10
        })
    );
    // The label is additional data: a different label does not open it.
    assert_eq!(
        decrypt_stream(&ring, &sealed, b"other", 1 << 20),
        Err(Error::Decrypt)
    );
}

#[test]
fn a_labelled_encrypted_packet_round_trips_and_a_wrong_label_is_refused() {
    let k = key(6, 16);
    let nack = Message::Nack(Nack { seq_no: 42 });
    let options = PacketOptions {
        compress: true,
        crc: true,
        seal: Some(Seal {
            version: EncryptionVersion::V1,
            key: &k,
            nonce: [3; 12],
        }),
        label: b"prod",
    };
    let bytes = encode_packet(&nack.encode(), &options).expect("encodes");
    assert_eq!(&bytes[..6], &[244, 4, b'p', b'r', b'o', b'd']);
    let mut codec = Codec::with_keyring(Keyring::new(k));
    codec.label = b"prod".to_vec();
    let decoded = codec.decode_packet(&bytes).expect("decodes");
    // Too small to gain from compression: only the CRC wraps it.
    assert_eq!(decoded.packet, Packet::Crc(Box::new(Packet::Message(nack))));
    codec.label = b"test".to_vec();
    assert_eq!(codec.decode_packet(&bytes), Err(Error::Label));
}

#[test]
fn label_headers_are_checked() {
    let mut out = Vec::new();
    add_label(&mut out, b"").expect("empty label");
    assert!(
        out.is_empty(),
        "no label, no header (memberlist 0.2.2's form)"
    );
    assert!(add_label(&mut out, &[b'x'; 256]).is_err());
    assert_eq!(strip_label(&[244, 0, 1]), Err(Error::Label));
    assert_eq!(strip_label(&[244, 5, 1]), Err(Error::Label));
    assert_eq!(strip_label(&[244, 1, b'a', 0]), Ok((&b"a"[..], &[0u8][..])));
    assert_eq!(strip_label(&[0, 1]), Ok((&[][..], &[0u8, 1][..])));
}

#[test]
fn plaintext_is_accepted_alongside_a_keyring_only_when_verification_is_off() {
    let bytes = Message::Nack(Nack { seq_no: 1 }).encode();
    let mut codec = Codec::with_keyring(Keyring::new(key(1, 16)));
    assert!(codec.decode_packet(&bytes).is_err());
    codec.verify_incoming = false;
    assert!(codec.decode_packet(&bytes).is_ok());
}
