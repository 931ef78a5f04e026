//! The one error type of the codec.

/// Why memberlist bytes could not be decoded, or a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended inside a message. On a stream this means "read more"
    /// ([`crate::Codec::decode_stream`] turns it into `Ok(None)`); on a packet it is final.
    #[error("input ended inside a message")]
    Truncated,
    /// A compressed or encrypted body, or a compound part, ended inside a message: its length
    /// was known, so this is corruption.
    #[error("a wrapped message ended early")]
    InnerTruncated,
    /// The first byte names no memberlist message type, or one not allowed here (a push/pull in
    /// a packet, a compound on a stream).
    #[error("message type {0} is not allowed here")]
    UnexpectedType(u8),
    /// A MessagePack value of the wrong kind.
    #[error("unexpected MessagePack marker {marker:#04x} for {what}")]
    Marker {
        /// The field or value being read.
        what: &'static str,
        /// The marker byte found.
        marker: u8,
    },
    /// A number that does not fit its field (a negative count, a port over 65535, ...).
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    /// `Vsn` must hold exactly six protocol/delegate version bytes.
    #[error("Vsn must be 6 bytes, got {0}")]
    Vsn(usize),
    /// A push/pull node state other than alive (0), suspect (1), dead (2) or left (3).
    #[error("unknown node state {0}")]
    NodeState(i64),
    /// MessagePack nested deeper than the codec follows (only unknown fields are skipped).
    #[error("MessagePack nested too deeply")]
    TooDeep,
    /// Compound, compress and CRC wrappers nested deeper than [`crate::Limits::max_nesting`].
    #[error("wrappers nested deeper than {0}")]
    TooNested(u8),
    /// A compound message whose parts run past its end.
    #[error("compound message truncated: {0} of its parts are incomplete")]
    CompoundTruncated(usize),
    /// A CRC-wrapped message whose checksum does not match.
    #[error("CRC-32 mismatch: header says {expected:#010x}, payload has {actual:#010x}")]
    Crc {
        /// The checksum in the header.
        expected: u32,
        /// The checksum of the payload.
        actual: u32,
    },
    /// A compression algorithm other than LZW (0).
    #[error("unknown compression algorithm {0}")]
    CompressionAlgorithm(u64),
    /// The LZW data is corrupt.
    #[error("corrupt LZW data")]
    Lzw,
    /// More than a limit allows (decompressed bytes, push/pull nodes, user state, ...).
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// An encryption version byte other than 0 or 1.
    #[error("unsupported encryption version {0}")]
    EncryptionVersion(u8),
    /// Too short to hold the version byte, nonce and tag.
    #[error("payload of {0} bytes is too small to decrypt")]
    TooSmallToDecrypt(usize),
    /// No key in the keyring opens the ciphertext (or its tag or additional data do not match).
    #[error("no installed key could decrypt the message")]
    Decrypt,
    /// Version 0's PKCS7 padding is malformed.
    #[error("invalid PKCS7 padding")]
    Padding,
    /// AES keys are 16, 24 or 32 bytes.
    #[error("AES key must be 16, 24 or 32 bytes, got {0}")]
    KeySize(usize),
    /// A keyring needs at least one key.
    #[error("a keyring needs at least one key")]
    EmptyKeyring,
    /// A stream arrived in plaintext while the codec requires encryption, or encrypted while it
    /// has no keyring.
    #[error("{0}")]
    Encryption(&'static str),
    /// A member speaks a version outside what the cluster's alive members all understand
    /// (memberlist's `verifyProtocol`).
    #[error("node '{node}' {what} version ({version}) is incompatible: [{min}, {max}]")]
    IncompatibleVersion {
        /// The member.
        node: String,
        /// "protocol" or "delegate protocol".
        what: &'static str,
        /// The version it speaks.
        version: u8,
        /// The highest minimum among alive members.
        min: u8,
        /// The lowest maximum among alive members.
        max: u8,
    },
    /// A label header that is empty or runs past the input.
    #[error("invalid label header")]
    Label,
    /// A dskit `KeyValuePair` protobuf that is malformed (see [`crate::kv`]).
    #[error("KeyValuePair: {reason} at byte {offset}")]
    KeyValuePair {
        /// Where in the pair's bytes.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// dskit's full-state framing (`[u32 BE length][KeyValuePair]`...) is broken: the rest of
    /// the state is not read.
    #[error("KV full state: {reason} at byte {offset}")]
    FullState {
        /// Where in the state.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Error {
    /// Inside a wrapper whose length is known (a compressed or encrypted body, a compound part),
    /// running out of bytes is corruption, not a reason to read more.
    pub(crate) fn inner(self) -> Self {
        match self {
            Self::Truncated => Self::InnerTruncated,
            other => other,
        }
    }
}
