//! Sealing and opening frames with XChaCha20-Poly1305.
//!
//! A sealed frame keeps its header in the clear (magic, version, flags, label and, for streams,
//! the length field) and authenticates it as associated data. A random 24-byte nonce follows,
//! then the ciphertext, then the 16-byte Poly1305 tag. The CRC is left out: the tag covers every
//! byte. `docs/protocol-frame.md` section 6 has the layout.

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::AeadInPlace;
use rand::RngCore;

use super::keyring::{Key, Keyring};
use crate::error::{FrameError, FrameErrorKind};

/// Bytes of the random nonce that follows the header of a sealed frame.
pub const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag that ends a sealed frame.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed frame spends on sealing: nonce and tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Appends a fresh nonce to `out`, whose bytes so far are the associated data.
pub(super) fn start(out: &mut Vec<u8>, rng: &mut dyn RngCore) -> usize {
    let aad_end = out.len();
    let mut nonce = [0; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    out.extend_from_slice(&nonce);
    aad_end
}

/// Encrypts everything after the nonce in place and appends the tag. `aad_end` is what
/// [`start`] returned.
pub(super) fn finish(out: &mut Vec<u8>, aad_end: usize, key: &Key) {
    let (head, body) = out.split_at_mut(aad_end + NONCE_LEN);
    let (aad, nonce) = head.split_at(aad_end);
    let nonce = XNonce::from_slice(nonce);
    // Encryption fails only past 256 GiB per message; frames are capped far below.
    let tag = key
        .cipher()
        .encrypt_in_place_detached(nonce, aad, body)
        .unwrap_or_default();
    out.extend_from_slice(&tag);
}

/// Opens the sealed part of `frame`, which starts at `aad_end` (the bytes before it are the
/// associated data), with every key of `keyring`, primary first. Returns the plaintext.
pub(super) fn open(frame: &[u8], aad_end: usize, keyring: &Keyring) -> Result<Vec<u8>, FrameError> {
    if frame.len() < aad_end + SEAL_OVERHEAD {
        let what = if frame.len() < aad_end + NONCE_LEN {
            "nonce"
        } else {
            "tag"
        };
        let at = if what == "nonce" {
            aad_end
        } else {
            aad_end + NONCE_LEN
        };
        return Err(FrameError::new(what, at, FrameErrorKind::Truncated));
    }
    let aad = &frame[..aad_end];
    let nonce = XNonce::from_slice(&frame[aad_end..aad_end + NONCE_LEN]);
    let tag_at = frame.len() - TAG_LEN;
    let tag = chacha20poly1305::Tag::from_slice(&frame[tag_at..]);
    let mut buffer = frame[aad_end + NONCE_LEN..tag_at].to_vec();
    // A failed attempt leaves the buffer untouched: the tag is checked before decrypting.
    for key in keyring.keys() {
        if key
            .cipher()
            .decrypt_in_place_detached(nonce, aad, &mut buffer, tag)
            .is_ok()
        {
            return Ok(buffer);
        }
    }
    Err(FrameError::new("tag", tag_at, FrameErrorKind::NotAuthentic))
}
