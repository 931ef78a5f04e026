//! Keys and the keyring of sealed frames.
//!
//! A [`Key`] is 32 secret bytes. It is wiped from memory when dropped, its `Debug` prints a
//! placeholder, and nothing in this crate logs, prints or counts it. A key is named by its
//! [`Fingerprint`]: four bytes derived from the key by the AEAD itself (the Poly1305 tag of a
//! fixed string under a fixed nonce), which tell keys apart without revealing anything about them.
//!
//! A [`Keyring`] is an ordered list of distinct keys. The first is the *primary*: it seals every
//! frame. Every key is tried, primary first, to open a frame. Rotation is therefore: install the
//! new key everywhere, make it primary everywhere, remove the old one everywhere.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroize;

use crate::TransportError;

/// A 32-byte key for sealing frames with XChaCha20-Poly1305.
///
/// ```
/// use rumour_transport::frame::Key;
/// let key = Key::parse("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")?;
/// assert_eq!(format!("{key:?}"), "Key(<redacted>)");
/// assert_eq!(Key::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?, key);
/// # Ok::<(), rumour_transport::TransportError>(())
/// ```
#[derive(Clone)]
pub struct Key([u8; Key::LEN]);

impl Key {
    /// Bytes in a key.
    pub const LEN: usize = 32;

    /// A key made of these bytes.
    pub fn from_bytes(bytes: [u8; Key::LEN]) -> Key {
        Key(bytes)
    }

    /// A key from a slice of exactly 32 bytes.
    ///
    /// # Errors
    /// [`TransportError::KeyFormat`] if the slice is not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Key, TransportError> {
        let array: [u8; Key::LEN] = bytes.try_into().map_err(|_| TransportError::KeyFormat {
            reason: "a key is 32 bytes",
        })?;
        Ok(Key(array))
    }

    /// A fresh key from `rng` (give it a cryptographic one, such as `rand::rngs::OsRng`).
    pub fn generate(rng: &mut (impl RngCore + rand::CryptoRng)) -> Key {
        let mut bytes = [0; Key::LEN];
        rng.fill_bytes(&mut bytes);
        Key(bytes)
    }

    /// Reads a key written as 64 hex digits or as 44 characters of standard base64 (the form
    /// memberlist and Consul use; the trailing `=` may be left out). Surrounding whitespace is
    /// ignored.
    ///
    /// # Errors
    /// [`TransportError::KeyFormat`]: neither form, or not 32 bytes. The error never quotes
    /// the input.
    pub fn parse(text: &str) -> Result<Key, TransportError> {
        let text = text.trim();
        let mut bytes = [0; Key::LEN];
        let ok = if text.len() == 2 * Key::LEN {
            decode_hex(text.as_bytes(), &mut bytes)
        } else {
            decode_base64(text.as_bytes(), &mut bytes)
        };
        if ok {
            Ok(Key(bytes))
        } else {
            bytes.zeroize();
            Err(TransportError::KeyFormat {
                reason: "expected 64 hex digits or 44 characters of base64 (32 bytes)",
            })
        }
    }

    /// The key in standard base64 (44 characters), for writing a generated key to a key file.
    /// Handle the result as the secret it is.
    pub fn to_base64(&self) -> String {
        encode_base64(&self.0)
    }

    /// The key's fingerprint: safe to log and show.
    pub fn fingerprint(&self) -> Fingerprint {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XNonce::from([0xff; 24]);
        let mut empty = [0u8; 0];
        let tag = cipher
            .encrypt_in_place_detached(&nonce, b"rumour key fingerprint v1", &mut empty)
            .unwrap_or_default();
        Fingerprint([tag[0], tag[1], tag[2], tag[3]])
    }

    pub(crate) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl PartialEq for Key {
    /// Compares in constant time.
    fn eq(&self, other: &Key) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for Key {}

/// Four bytes that name a key without revealing it, printed as 8 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 4]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The keys a node seals and opens frames with: the first (primary) seals, all open.
///
/// ```
/// use rumour_transport::frame::{Key, Keyring};
/// let (old, new) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
/// let mut ring = Keyring::new(old.clone());
/// ring.install(new.clone());
/// ring.use_key(&new)?;
/// assert!(ring.remove(&new).is_err()); // the primary cannot be removed
/// ring.remove(&old)?;
/// assert_eq!(ring.len(), 1);
/// assert_eq!(format!("{ring:?}"), "Keyring { keys: 1 }");
/// # Ok::<(), rumour_transport::TransportError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring holding `primary` only.
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            keys: vec![primary],
        }
    }

    /// A keyring of `keys`, the first primary; later duplicates are left out. Empty means no
    /// encryption.
    pub fn from_keys(keys: impl IntoIterator<Item = Key>) -> Keyring {
        let mut ring = Keyring::default();
        for key in keys {
            ring.install(key);
        }
        ring
    }

    /// Whether the keyring holds no key (frames are then neither sealed nor opened).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key that seals, if any.
    pub fn primary(&self) -> Option<&Key> {
        self.keys.first()
    }

    /// Every key, primary first.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The fingerprints of every key, primary first.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.keys.iter().map(Key::fingerprint).collect()
    }

    /// Whether `key` is installed.
    pub fn contains(&self, key: &Key) -> bool {
        self.keys.contains(key)
    }

    /// Adds `key` for opening (it becomes primary only if the keyring was empty). Installing a
    /// key twice changes nothing. Returns whether it was new.
    pub fn install(&mut self, key: Key) -> bool {
        if self.contains(&key) {
            return false;
        }
        self.keys.push(key);
        true
    }

    /// Makes an installed key the primary.
    ///
    /// # Errors
    /// [`TransportError::UnknownKey`] if it is not installed.
    pub fn use_key(&mut self, key: &Key) -> Result<(), TransportError> {
        let at = self.position(key)?;
        let key = self.keys.remove(at);
        self.keys.insert(0, key);
        Ok(())
    }

    /// Removes a key that is not the primary.
    ///
    /// # Errors
    /// [`TransportError::RemovePrimaryKey`] for the primary key,
    /// [`TransportError::UnknownKey`] if it is not installed.
    pub fn remove(&mut self, key: &Key) -> Result<(), TransportError> {
        match self.position(key)? {
            0 => Err(TransportError::RemovePrimaryKey {
                fingerprint: key.fingerprint().to_string(),
            }),
            at => {
                self.keys.remove(at);
                Ok(())
            }
        }
    }

    fn position(&self, key: &Key) -> Result<usize, TransportError> {
        self.keys
            .iter()
            .position(|k| k == key)
            .ok_or_else(|| TransportError::UnknownKey {
                fingerprint: key.fingerprint().to_string(),
            })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn decode_hex(text: &[u8], out: &mut [u8; Key::LEN]) -> bool {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
            _ => return false,
        }
    }
    true
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Decodes exactly 32 bytes of standard base64: 43 characters, then an optional `=`.
fn decode_base64(text: &[u8], out: &mut [u8; Key::LEN]) -> bool {
    let text = text.strip_suffix(b"=").unwrap_or(text);
    if text.len() != 43 {
        return false;
    }
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut at = 0;
    for &c in text {
        let Some(value) = BASE64.iter().position(|&b| b == c) else {
            return false;
        };
        acc = (acc << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out[at] = (acc >> bits) as u8;
            at += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // 43 characters carry 258 bits: the last 2 must be zero in a canonical encoding.
    at == Key::LEN && acc == 0
}

fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_forms_read_the_same_key_and_base64_round_trips() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 7 + 3) as u8);
        let key = Key::from_bytes(bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(Key::parse(&hex).unwrap(), key);
        let b64 = key.to_base64();
        assert_eq!(b64.len(), 44);
        assert_eq!(Key::parse(&b64).unwrap(), key);
        assert_eq!(Key::parse(b64.trim_end_matches('=')).unwrap(), key);
        assert_eq!(Key::parse(&format!("  {b64}\n")).unwrap(), key);
    }

    #[test]
    fn malformed_keys_are_refused_without_quoting_them() {
        for bad in [
            "",
            "zz",
            &"g".repeat(64),
            &"A".repeat(40),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",
        ] {
            let error = Key::parse(bad).unwrap_err().to_string();
            assert!(bad.len() < 8 || !error.contains(bad), "{error}");
        }
        assert!(Key::from_slice(&[0; 16]).is_err());
    }

    #[test]
    fn debug_never_shows_key_bytes_or_fingerprints() {
        let key = Key::from_bytes([0xab; 32]);
        let ring = Keyring::new(key.clone());
        let shown = format!("{key:?} {ring:?} {ring:#?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
        assert!(!shown.contains(&key.fingerprint().to_string()));
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_are_stable() {
        let a = Key::from_bytes([1; 32]);
        let b = Key::from_bytes([2; 32]);
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().to_string().len(), 8);
    }

    #[test]
    fn the_keyring_installs_uses_and_removes_but_never_the_primary() {
        let (a, b, c) = (
            Key::from_bytes([1; 32]),
            Key::from_bytes([2; 32]),
            Key::from_bytes([3; 32]),
        );
        let mut ring = Keyring::from_keys([a.clone(), b.clone(), a.clone()]);
        assert_eq!(ring.len(), 2);
        assert!(!ring.install(b.clone()));
        assert_eq!(ring.primary(), Some(&a));
        assert!(matches!(
            ring.use_key(&c),
            Err(TransportError::UnknownKey { .. })
        ));
        ring.use_key(&b).unwrap();
        assert_eq!(ring.primary(), Some(&b));
        assert_eq!(ring.fingerprints(), [b.fingerprint(), a.fingerprint()]);
        let refused = ring.remove(&b).unwrap_err();
        assert!(matches!(refused, TransportError::RemovePrimaryKey { .. }));
        assert!(refused.to_string().contains("primary"));
        ring.remove(&a).unwrap();
        assert_eq!(ring.keys(), [b]);
    }
}
