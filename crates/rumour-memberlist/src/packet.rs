//! Packets (UDP): single messages, compound, CRC and compression wrappers, in the plaintext
//! memberlist sees after decryption.
//!
//! memberlist builds an outgoing packet innermost first: a message or a compound of messages,
//! then `[9][compress{..}]` if compression is on and shrinks it, then `[12][crc32 BE]` if the
//! recipient's protocol max is ≥ 5, then encryption (see [`crate::security`]). Receiving unwraps
//! in reverse and recurses through compound and compress, so the decoder here accepts any
//! nesting up to [`Limits::max_nesting`].

use crate::compress::{decode_compressed, encode_compressed};
use crate::message::{Ack, Alive, Dead, IndirectPing, MessageType, Nack, Ping, Suspect, start};
use crate::msgpack::Reader;
use crate::{Error, Limits};

/// Most parts a compound holds (the count is one byte).
pub const MAX_COMPOUND_PARTS: usize = 255;
/// Largest compound part (lengths are `u16`).
pub const MAX_COMPOUND_PART: usize = u16::MAX as usize;

/// One message a packet can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A direct probe.
    Ping(Ping),
    /// A request to probe another member.
    IndirectPing(IndirectPing),
    /// A probe's answer.
    Ack(Ack),
    /// An indirect probe's "no answer".
    Nack(Nack),
    /// A suspicion.
    Suspect(Suspect),
    /// An alive announcement.
    Alive(Alive),
    /// A death or (`From == Node`) a leave.
    Dead(Dead),
    /// An application message: on a packet the raw bytes follow the type byte.
    User(Vec<u8>),
}

impl Message {
    /// The message's type byte.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Ping(_) => MessageType::Ping,
            Self::IndirectPing(_) => MessageType::IndirectPing,
            Self::Ack(_) => MessageType::Ack,
            Self::Nack(_) => MessageType::Nack,
            Self::Suspect(_) => MessageType::Suspect,
            Self::Alive(_) => MessageType::Alive,
            Self::Dead(_) => MessageType::Dead,
            Self::User(_) => MessageType::User,
        }
    }

    /// Encodes `[type][body]`, memberlist's `encode(msgType, msg)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends `[type][body]` to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        start(out, self.message_type());
        match self {
            Self::Ping(m) => m.encode_body(out),
            Self::IndirectPing(m) => m.encode_body(out),
            Self::Ack(m) => m.encode_body(out),
            Self::Nack(m) => m.encode_body(out),
            Self::Suspect(m) => m.encode_body(out),
            Self::Alive(m) => m.encode_body(out),
            Self::Dead(m) => m.encode_body(out),
            Self::User(payload) => out.extend_from_slice(payload),
        }
    }

    /// Decodes one message of a packet-carried type from its body (after the type byte).
    /// Trailing bytes are ignored, as memberlist's decoder ignores them.
    fn decode_body(kind: MessageType, body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let message = match kind {
            MessageType::Ping => Self::Ping(Ping::decode_body(&mut r)?),
            MessageType::IndirectPing => Self::IndirectPing(IndirectPing::decode_body(&mut r)?),
            MessageType::Ack => Self::Ack(Ack::decode_body(&mut r)?),
            MessageType::Nack => Self::Nack(Nack::decode_body(&mut r)?),
            MessageType::Suspect => Self::Suspect(Suspect::decode_body(&mut r)?),
            MessageType::Alive => Self::Alive(Alive::decode_body(&mut r)?),
            MessageType::Dead => Self::Dead(Dead::decode_body(&mut r)?),
            MessageType::User => Self::User(body.to_vec()),
            other => return Err(Error::UnexpectedType(other as u8)),
        };
        Ok(message)
    }
}

/// A decoded packet: messages and the wrappers around them, so a packet re-encodes to the same
/// bytes (given the same wrappers; LZW and the CRC are deterministic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A single message.
    Message(Message),
    /// `[7][n u8][n × len u16 BE][parts…]`.
    Compound(Vec<Packet>),
    /// `[9][compress{Algo: 0, Buf: lzw(inner)}]`.
    Compressed(Box<Packet>),
    /// `[12][crc32 IEEE BE][inner]`.
    Crc(Box<Packet>),
}

impl Packet {
    /// Decodes plaintext packet bytes (after decryption and the label, if any).
    pub fn decode(buf: &[u8], limits: &Limits) -> Result<Self, Error> {
        decode_at(buf, limits, 0)
    }

    /// Encodes the packet. Fails only if a compound has more than 255 parts or a part over
    /// 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the packet's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Self::Message(m) => m.encode_into(out),
            Self::Compound(parts) => {
                let encoded = parts
                    .iter()
                    .map(Self::encode)
                    .collect::<Result<Vec<_>, _>>()?;
                encode_compound(out, &encoded)?;
            }
            Self::Compressed(inner) => encode_compressed(out, &inner.encode()?),
            Self::Crc(inner) => {
                let inner = inner.encode()?;
                add_crc(out, &inner);
            }
        }
        Ok(())
    }

    /// The messages inside, in order, unwrapped from every compound, compress and CRC.
    pub fn messages(&self) -> Vec<&Message> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Message>) {
        match self {
            Self::Message(m) => out.push(m),
            Self::Compound(parts) => parts.iter().for_each(|p| p.collect(out)),
            Self::Compressed(inner) | Self::Crc(inner) => inner.collect(out),
        }
    }

    /// Consumes the packet into its messages, in order.
    pub fn into_messages(self) -> Vec<Message> {
        let mut out = Vec::new();
        self.collect_owned(&mut out);
        out
    }

    fn collect_owned(self, out: &mut Vec<Message>) {
        match self {
            Self::Message(m) => out.push(m),
            Self::Compound(parts) => parts.into_iter().for_each(|p| p.collect_owned(out)),
            Self::Compressed(inner) | Self::Crc(inner) => inner.collect_owned(out),
        }
    }
}

fn decode_at(buf: &[u8], limits: &Limits, depth: u8) -> Result<Packet, Error> {
    let (&kind, body) = buf.split_first().ok_or(Error::Truncated)?;
    let kind = MessageType::from_byte(kind).ok_or(Error::UnexpectedType(kind))?;
    let wrapper = matches!(
        kind,
        MessageType::Compound | MessageType::Compress | MessageType::HasCrc
    );
    if wrapper && depth >= limits.max_nesting {
        return Err(Error::TooNested(limits.max_nesting));
    }
    match kind {
        MessageType::Compound => {
            let parts = split_compound(body)?;
            let parts = parts
                .into_iter()
                .map(|part| decode_at(part, limits, depth + 1).map_err(Error::inner))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Packet::Compound(parts))
        }
        MessageType::Compress => {
            let inner = decode_compressed(&mut Reader::new(body), limits.max_decompressed)?;
            let inner = decode_at(&inner, limits, depth + 1).map_err(Error::inner)?;
            Ok(Packet::Compressed(Box::new(inner)))
        }
        // memberlist checks a CRC only on the packet as a whole (`ingestPacket`).
        MessageType::HasCrc if depth > 0 => Err(Error::UnexpectedType(kind as u8)),
        MessageType::HasCrc => {
            let inner = check_crc(body)?;
            Ok(Packet::Crc(Box::new(decode_at(inner, limits, depth + 1)?)))
        }
        _ => Ok(Packet::Message(Message::decode_body(kind, body)?)),
    }
}

/// Writes `[7][n][lengths][parts]`, memberlist's `makeCompoundMessage`.
pub fn encode_compound(out: &mut Vec<u8>, parts: &[Vec<u8>]) -> Result<(), Error> {
    let count = u8::try_from(parts.len()).map_err(|_| Error::TooLarge {
        what: "compound part count",
        limit: MAX_COMPOUND_PARTS,
    })?;
    out.push(MessageType::Compound as u8);
    out.push(count);
    for part in parts {
        let len = u16::try_from(part.len()).map_err(|_| Error::TooLarge {
            what: "compound part",
            limit: MAX_COMPOUND_PART,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    Ok(())
}

/// Splits a compound body (after the type byte) into its parts. memberlist keeps the complete
/// parts of a truncated compound and logs the rest; this codec refuses the packet instead.
pub fn split_compound(body: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let (&count, rest) = body.split_first().ok_or(Error::Truncated)?;
    let count = usize::from(count);
    let lengths = rest.get(..2 * count).ok_or(Error::Truncated)?;
    let mut data = rest.get(2 * count..).unwrap_or_default();
    let mut parts = Vec::with_capacity(count);
    for (i, len) in lengths.chunks_exact(2).enumerate() {
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if data.len() < len {
            return Err(Error::CompoundTruncated(count - i));
        }
        let (part, after) = data.split_at(len);
        parts.push(part);
        data = after;
    }
    Ok(parts)
}

/// Writes `[12][crc32(inner) BE][inner]`.
pub fn add_crc(out: &mut Vec<u8>, inner: &[u8]) {
    out.push(MessageType::HasCrc as u8);
    out.extend_from_slice(&crc32fast::hash(inner).to_be_bytes());
    out.extend_from_slice(inner);
}

/// Checks a CRC body (after the type byte) and returns what it covers.
fn check_crc(body: &[u8]) -> Result<&[u8], Error> {
    let header = body.get(..4).ok_or(Error::Truncated)?;
    let expected = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let inner = body.get(4..).unwrap_or_default();
    let actual = crc32fast::hash(inner);
    if actual != expected {
        return Err(Error::Crc { expected, actual });
    }
    Ok(inner)
}
