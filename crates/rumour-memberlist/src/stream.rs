//! Streams (TCP): one request and one response per connection.
//!
//! A stream message is `[type][body]`, compressed as a whole when compression is on (always, not
//! only when smaller), then encrypted as `[10][len][payload]` when a key is set. No CRC. The
//! reader does not know the length of a plaintext message in advance (a push/pull is a header,
//! node states and raw user state), so [`crate::Codec::decode_stream`] returns `Ok(None)` until
//! the buffer holds a whole message.

use crate::message::{
    Ack, ErrResp, MessageType, Ping, PushPull, decode_stream_user, encode_stream_user, start,
};
use crate::msgpack::Reader;
use crate::security::{EncryptionVersion, Key, NONCE_SIZE};
use crate::{Error, Limits};

/// A message a stream can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage {
    /// The TCP fallback ping (protocol ≥ 3), answered with an [`StreamMessage::Ack`] on the
    /// same connection.
    Ping(Ping),
    /// The answer to a TCP ping.
    Ack(Ack),
    /// A join or anti-entropy state exchange; the responder answers with its own.
    PushPull(PushPull),
    /// A reliable user message: `userMsgHeader{UserMsgLen}` then the bytes.
    User(Vec<u8>),
    /// The responder's error when it could not read the request.
    Err(ErrResp),
}

impl StreamMessage {
    /// The message's type byte.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Ping(_) => MessageType::Ping,
            Self::Ack(_) => MessageType::Ack,
            Self::PushPull(_) => MessageType::PushPull,
            Self::User(_) => MessageType::User,
            Self::Err(_) => MessageType::Err,
        }
    }

    /// The plaintext, uncompressed `[type][body]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        start(&mut out, self.message_type());
        match self {
            Self::Ping(m) => m.encode_body(&mut out),
            Self::Ack(m) => m.encode_body(&mut out),
            Self::PushPull(m) => m.encode_body(&mut out),
            Self::User(payload) => encode_stream_user(&mut out, payload),
            Self::Err(m) => m.encode_body(&mut out),
        }
        out
    }

    /// Decodes `[type][body]` from the start of `buf`: the message and the bytes it used.
    /// Running out of input is [`Error::Truncated`].
    pub(crate) fn decode_prefix(buf: &[u8], limits: &Limits) -> Result<(Self, usize), Error> {
        let (&kind, body) = buf.split_first().ok_or(Error::Truncated)?;
        let mut r = Reader::new(body);
        let message = match MessageType::from_byte(kind) {
            Some(MessageType::Ping) => Self::Ping(Ping::decode_body(&mut r)?),
            Some(MessageType::Ack) => Self::Ack(Ack::decode_body(&mut r)?),
            Some(MessageType::PushPull) => Self::PushPull(PushPull::decode_body(&mut r, limits)?),
            Some(MessageType::User) => Self::User(decode_stream_user(&mut r, limits)?),
            Some(MessageType::Err) => Self::Err(ErrResp::decode_body(&mut r)?),
            _ => return Err(Error::UnexpectedType(kind)),
        };
        Ok((message, 1 + r.position()))
    }
}

/// How to seal an outgoing packet or stream: memberlist's primary key, the version its protocol
/// version implies, and a fresh random nonce the caller draws.
#[derive(Debug, Clone, Copy)]
pub struct Seal<'a> {
    /// Version 1 unless speaking protocol version 1.
    pub version: EncryptionVersion,
    /// The keyring's primary key.
    pub key: &'a Key,
    /// Twelve random bytes, never reused with the same key.
    pub nonce: [u8; NONCE_SIZE],
}

/// A decoded stream message and how it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedStream {
    /// The message.
    pub message: StreamMessage,
    /// The label it carried (empty: none).
    pub label: Vec<u8>,
    /// Whether it was LZW-compressed.
    pub compressed: bool,
    /// The encryption version and nonce, if it was encrypted.
    pub encryption: Option<(EncryptionVersion, [u8; NONCE_SIZE])>,
    /// How many bytes of the input it used.
    pub consumed: usize,
}
