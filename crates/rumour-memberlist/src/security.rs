//! memberlist's encryption (`security.go`, `keyring.go`): AES-GCM with a shared key ring.
//!
//! An encrypted payload is `[version][nonce 12][ciphertext + tag 16]`. Version 0 (spoken when the
//! local protocol version is 1) PKCS7-pads the plaintext to the AES block size first; version 1
//! (every later protocol version) does not pad. The key's length picks AES-128, -192 or -256.
//! Packets use the label as additional data (empty without a label, and memberlist 0.2.2 has
//! none); streams are `[10][len u32 BE][payload]` with `[10][len]` (then the label) as
//! additional data. Nonces come from the caller: this crate draws no randomness.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};

use crate::Error;

/// Bytes of the version prefix.
pub const VERSION_SIZE: usize = 1;
/// Bytes of the GCM nonce.
pub const NONCE_SIZE: usize = 12;
/// Bytes of the GCM tag.
pub const TAG_SIZE: usize = 16;
/// AES block size, the unit of version 0's padding.
const BLOCK_SIZE: usize = 16;

/// An encryption version byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionVersion {
    /// AES-GCM over a PKCS7-padded plaintext (memberlist protocol version 1).
    V0,
    /// AES-GCM without padding (protocol version 2 and later: memberlist's default).
    V1,
}

impl EncryptionVersion {
    /// What memberlist uses when it speaks `protocol_version` (`encryptionVersion()`).
    pub fn for_protocol(protocol_version: u8) -> Self {
        if protocol_version == 1 {
            Self::V0
        } else {
            Self::V1
        }
    }

    /// The version byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::V0 => 0,
            Self::V1 => 1,
        }
    }

    /// The version a byte names.
    pub fn from_byte(byte: u8) -> Result<Self, Error> {
        match byte {
            0 => Ok(Self::V0),
            1 => Ok(Self::V1),
            other => Err(Error::EncryptionVersion(other)),
        }
    }

    /// The most encryption adds (`encryptOverhead`): 45 bytes for version 0, 29 for version 1.
    pub fn overhead(self) -> usize {
        match self {
            Self::V0 => VERSION_SIZE + NONCE_SIZE + BLOCK_SIZE + TAG_SIZE,
            Self::V1 => VERSION_SIZE + NONCE_SIZE + TAG_SIZE,
        }
    }

    /// The encrypted size of `plain_len` bytes (`encryptedLength`).
    pub fn encrypted_len(self, plain_len: usize) -> usize {
        let padding = match self {
            Self::V0 => BLOCK_SIZE - plain_len % BLOCK_SIZE,
            Self::V1 => 0,
        };
        VERSION_SIZE + NONCE_SIZE + plain_len + padding + TAG_SIZE
    }
}

/// An AES key: 16, 24 or 32 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub(crate) Vec<u8>);

impl Key {
    /// Checks the length and wraps the key.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        match bytes.len() {
            16 | 24 | 32 => Ok(Self(bytes.to_vec())),
            other => Err(Error::KeySize(other)),
        }
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn seal(&self, nonce: &[u8; NONCE_SIZE], msg: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = Nonce::from_slice(nonce);
        let payload = Payload { msg, aad };
        // The key length was checked in `new`, and sealing into a Vec fails only past GCM's
        // 64 GiB message limit; an empty result is refused by every receiver.
        let sealed = match self.0.len() {
            16 => Aes128Gcm::new_from_slice(&self.0).map(|c| c.encrypt(nonce, payload)),
            24 => AesGcm::<Aes192, U12>::new_from_slice(&self.0).map(|c| c.encrypt(nonce, payload)),
            _ => Aes256Gcm::new_from_slice(&self.0).map(|c| c.encrypt(nonce, payload)),
        };
        sealed.ok().and_then(Result::ok).unwrap_or_default()
    }

    fn open(&self, nonce: &[u8], msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let nonce = Nonce::from_slice(nonce);
        let payload = Payload { msg, aad };
        let opened = match self.0.len() {
            16 => Aes128Gcm::new_from_slice(&self.0).map(|c| c.decrypt(nonce, payload)),
            24 => AesGcm::<Aes192, U12>::new_from_slice(&self.0).map(|c| c.decrypt(nonce, payload)),
            _ => Aes256Gcm::new_from_slice(&self.0).map(|c| c.decrypt(nonce, payload)),
        };
        opened.ok().and_then(Result::ok)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(AES-{})", self.0.len() * 8)
    }
}

/// memberlist's `Keyring`: the primary key encrypts, every key is tried to decrypt (primary
/// first). Rotation: add the new key everywhere, make it primary everywhere, remove the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    /// The primary key first.
    keys: Vec<Key>,
}

impl Keyring {
    /// A ring whose primary is `primary`.
    pub fn new(primary: Key) -> Self {
        Self {
            keys: vec![primary],
        }
    }

    /// A ring of `keys`, the first being primary.
    pub fn from_keys(keys: Vec<Key>) -> Result<Self, Error> {
        if keys.is_empty() {
            return Err(Error::EmptyKeyring);
        }
        Ok(Self { keys })
    }

    /// The key that encrypts.
    pub fn primary(&self) -> &Key {
        &self.keys[0]
    }

    /// Every key, primary first.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Installs a key for decryption (`AddKey`); a key already installed is not added twice.
    pub fn add(&mut self, key: Key) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Makes an installed key primary (`UseKey`); false if it is not installed.
    pub fn use_key(&mut self, key: &Key) -> bool {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => {
                self.keys.swap(0, i);
                true
            }
            None => false,
        }
    }

    /// Removes a key that is not primary (`RemoveKey`); false if it is primary or absent.
    pub fn remove(&mut self, key: &Key) -> bool {
        match self.keys.iter().position(|k| k == key) {
            Some(i) if i > 0 => {
                self.keys.remove(i);
                true
            }
            _ => false,
        }
    }
}

/// Encrypts `plain` (`encryptPayload`): `[version][nonce][ciphertext + tag]`.
pub fn encrypt(
    version: EncryptionVersion,
    key: &Key,
    nonce: [u8; NONCE_SIZE],
    plain: &[u8],
    aad: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(version.encrypted_len(plain.len()));
    out.push(version.to_byte());
    out.extend_from_slice(&nonce);
    let sealed = match version {
        EncryptionVersion::V1 => key.seal(&nonce, plain, aad),
        EncryptionVersion::V0 => {
            let pad = BLOCK_SIZE - plain.len() % BLOCK_SIZE;
            let mut padded = Vec::with_capacity(plain.len() + pad);
            padded.extend_from_slice(plain);
            padded.resize(plain.len() + pad, pad as u8);
            key.seal(&nonce, &padded, aad)
        }
    };
    out.extend_from_slice(&sealed);
    out
}

/// A decrypted payload and how it was sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The plaintext, padding removed.
    pub plain: Vec<u8>,
    /// The version byte it carried.
    pub version: EncryptionVersion,
    /// The nonce it carried (re-encrypting with it reproduces the bytes).
    pub nonce: [u8; NONCE_SIZE],
    /// Index in the keyring of the key that opened it.
    pub key_index: usize,
}

/// Decrypts `[version][nonce][ciphertext + tag]` with each key in turn (`decryptPayload`).
pub fn decrypt(keyring: &Keyring, buf: &[u8], aad: &[u8]) -> Result<Opened, Error> {
    let (&version, _) = buf.split_first().ok_or(Error::TooSmallToDecrypt(0))?;
    let version = EncryptionVersion::from_byte(version)?;
    if buf.len() < version.encrypted_len(0) {
        return Err(Error::TooSmallToDecrypt(buf.len()));
    }
    let nonce_bytes = &buf[VERSION_SIZE..VERSION_SIZE + NONCE_SIZE];
    let sealed = &buf[VERSION_SIZE + NONCE_SIZE..];
    for (key_index, key) in keyring.keys().iter().enumerate() {
        if let Some(mut plain) = key.open(nonce_bytes, sealed, aad) {
            if version == EncryptionVersion::V0 {
                // Go's pkcs7decode trusts the last byte (and panics past the start); check it.
                let pad = usize::from(*plain.last().ok_or(Error::Padding)?);
                if pad == 0 || pad > BLOCK_SIZE || pad > plain.len() {
                    return Err(Error::Padding);
                }
                plain.truncate(plain.len() - pad);
            }
            let mut nonce = [0u8; NONCE_SIZE];
            nonce.copy_from_slice(nonce_bytes);
            return Ok(Opened {
                plain,
                version,
                nonce,
                key_index,
            });
        }
    }
    Err(Error::Decrypt)
}

/// Stream additional data: `[10][len u32 BE]` then the label.
fn stream_aad(len: u32, label: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(5 + label.len());
    aad.push(crate::MessageType::Encrypt as u8);
    aad.extend_from_slice(&len.to_be_bytes());
    aad.extend_from_slice(label);
    aad
}

/// Encrypts a stream message (`encryptLocalState`): `[10][len u32 BE][encrypted]`.
pub fn encrypt_stream(
    version: EncryptionVersion,
    key: &Key,
    nonce: [u8; NONCE_SIZE],
    plain: &[u8],
    label: &[u8],
) -> Vec<u8> {
    let len = u32::try_from(version.encrypted_len(plain.len())).unwrap_or(u32::MAX);
    let aad = stream_aad(len, label);
    let mut out = aad[..5].to_vec();
    out.extend_from_slice(&encrypt(version, key, nonce, plain, &aad));
    out
}

/// Decrypts an encrypted stream (`decryptRemoteState`) from `buf`, which starts at the `[10]`
/// byte. `Ok(None)`: more bytes are needed. On success, also returns how many bytes it used.
pub fn decrypt_stream(
    keyring: &Keyring,
    buf: &[u8],
    label: &[u8],
    max_len: usize,
) -> Result<Option<(Opened, usize)>, Error> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    if header[0] != crate::MessageType::Encrypt as u8 {
        return Err(Error::UnexpectedType(header[0]));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let total = usize::try_from(len).unwrap_or(usize::MAX);
    if total > max_len {
        return Err(Error::TooLarge {
            what: "encrypted stream",
            limit: max_len,
        });
    }
    let Some(body) = buf.get(5..5 + total) else {
        return Ok(None);
    };
    let opened = decrypt(keyring, body, &stream_aad(len, label))?;
    Ok(Some((opened, 5 + total)))
}
