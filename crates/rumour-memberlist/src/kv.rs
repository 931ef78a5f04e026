//! grafana/dskit's KV envelope over memberlist's user channels: the `KeyValuePair` protobuf
//! (`kv.proto`) that every KV user message carries, and the full-state framing of a push/pull's
//! user state (`LocalState` / `MergeRemoteState`).
//!
//! ```text
//! message KeyValuePair {
//!   string key = 1;                // non-empty
//!   bytes  value = 2;              // the codec's encoding of the value or change
//!   string codec = 3;              // the codec id, e.g. "ringDesc"
//!   bool   deleted = 4;
//!   int64  update_time_millis = 5;
//! }
//! ```
//!
//! Encoded by hand under proto3's rules: fields in number order, zero and empty fields left
//! out, tags and integers as base-128 varints. The decoder takes fields in any order (the last
//! of a repeated field wins), skips unknown fields of wire types 0, 1, 2 and 5, refuses groups,
//! a known field of the wrong wire type, invalid UTF-8, an empty key and varints longer than 10
//! bytes, and checks every length against the input and a [`KvLimits`] bound before it
//! allocates.
//!
//! The full state is a concatenation of `[u32 big-endian length][KeyValuePair]`
//! ([`encode_full_state`], [`decode_full_state`]). As dskit's `MergeRemoteState`, a pair that
//! does not decode is skipped and a framing error (a length past the end) ends the state.

use crate::Error;

/// Field numbers of `KeyValuePair`.
const KEY: u64 = 1;
const VALUE: u64 = 2;
const CODEC: u64 = 3;
const DELETED: u64 = 4;
const UPDATE_TIME: u64 = 5;

/// Protobuf wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// Bytes of a full-state frame's length prefix.
const FRAME_HEADER: usize = 4;

/// Bounds on decoded `KeyValuePair`s and full states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest key, in bytes.
    pub max_key_len: usize,
    /// Longest codec id, in bytes.
    pub max_codec_len: usize,
    /// Longest value, in bytes.
    pub max_value_bytes: usize,
    /// Most pairs in one full state.
    pub max_pairs: usize,
}

impl Default for KvLimits {
    /// rumour's KV store defaults: keys of 1 KiB, codec ids of 255 bytes, values of 16 MiB,
    /// 10,000 pairs.
    fn default() -> Self {
        Self {
            max_key_len: 1024,
            max_codec_len: 255,
            max_value_bytes: 16 << 20,
            max_pairs: 10_000,
        }
    }
}

/// dskit's `KeyValuePair`: one key's value or change, as a KV user message or a full-state
/// entry carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValuePair {
    /// The key (never empty on the wire: the decoder refuses an empty one).
    pub key: String,
    /// The value or change, encoded with `codec`.
    pub value: Vec<u8>,
    /// The codec id.
    pub codec: String,
    /// Whether the key is deleted.
    pub deleted: bool,
    /// Wall time of the key's last update, in milliseconds since the Unix epoch.
    pub update_time_millis: i64,
}

/// Bytes of `value` as a base-128 varint.
fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn tag(field: u64, wire: u8) -> u64 {
    (field << 3) | u64::from(wire)
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_varint(out, tag(field, LEN));
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

/// Bytes a length-delimited field of `len` bytes takes (0 when empty: left out).
fn bytes_field_len(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        1 + varint_len(len as u64) + len
    }
}

impl KeyValuePair {
    /// Bytes of [`KeyValuePair::encode`]'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        bytes_field_len(self.key.len())
            + bytes_field_len(self.value.len())
            + bytes_field_len(self.codec.len())
            + if self.deleted { 2 } else { 0 }
            + if self.update_time_millis == 0 {
                0
            } else {
                1 + varint_len(self.update_time_millis as u64)
            }
    }

    /// Appends the protobuf encoding (proto3: fields in number order, zero fields left out; a
    /// negative time is a ten-byte varint, as Go writes an `int64`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        put_bytes(out, KEY, self.key.as_bytes());
        put_bytes(out, VALUE, &self.value);
        put_bytes(out, CODEC, self.codec.as_bytes());
        if self.deleted {
            put_varint(out, tag(DELETED, VARINT));
            out.push(1);
        }
        if self.update_time_millis != 0 {
            put_varint(out, tag(UPDATE_TIME, VARINT));
            put_varint(out, self.update_time_millis as u64);
        }
    }

    /// The protobuf encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }

    /// Decodes one pair that fills `bytes`.
    ///
    /// # Errors
    /// [`Error::KeyValuePair`] for malformed protobuf or an empty key, [`Error::TooLarge`] for a
    /// key, codec id or value over `limits`.
    pub fn decode(bytes: &[u8], limits: &KvLimits) -> Result<KeyValuePair, Error> {
        let mut reader = ProtoReader { bytes, pos: 0 };
        let mut pair = KeyValuePair::default();
        while !reader.done() {
            let at = reader.pos;
            let tag = reader.varint()?;
            let (field, wire) = (tag >> 3, (tag & 7) as u8);
            if field == 0 || field > 0x1fff_ffff {
                return Err(malformed(at, "field number out of range"));
            }
            match (field, wire) {
                (KEY, LEN) => {
                    pair.key = reader.text(limits.max_key_len, "KeyValuePair key")?;
                }
                (VALUE, LEN) => {
                    pair.value = reader
                        .bytes(limits.max_value_bytes, "KeyValuePair value")?
                        .to_vec();
                }
                (CODEC, LEN) => {
                    pair.codec = reader.text(limits.max_codec_len, "KeyValuePair codec")?;
                }
                (DELETED, VARINT) => pair.deleted = reader.varint()? != 0,
                (UPDATE_TIME, VARINT) => pair.update_time_millis = reader.varint()? as i64,
                (KEY..=UPDATE_TIME, _) => return Err(malformed(at, "wrong wire type")),
                (_, VARINT) => {
                    reader.varint()?;
                }
                (_, I64) => reader.skip(8)?,
                (_, LEN) => {
                    reader.bytes(usize::MAX, "field")?;
                }
                (_, I32) => reader.skip(4)?,
                _ => return Err(malformed(at, "unsupported wire type")),
            }
        }
        if pair.key.is_empty() {
            return Err(malformed(bytes.len(), "empty key"));
        }
        Ok(pair)
    }
}

fn malformed(offset: usize, reason: &'static str) -> Error {
    Error::KeyValuePair { offset, reason }
}

/// A cursor over protobuf bytes.
struct ProtoReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ProtoReader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// A base-128 varint of at most 10 bytes whose value fits 64 bits.
    fn varint(&mut self) -> Result<u64, Error> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(malformed(start, "truncated varint"));
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(malformed(start, "varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed(start, "varint longer than 10 bytes"))
    }

    fn skip(&mut self, len: usize) -> Result<(), Error> {
        if self.bytes.len() - self.pos < len {
            return Err(malformed(self.pos, "truncated field"));
        }
        self.pos += len;
        Ok(())
    }

    /// A length-delimited field's bytes, checked against the input and `max` first.
    fn bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let at = self.pos;
        let len = self.varint()?;
        let remaining = self.bytes.len() - self.pos;
        if len > remaining as u64 {
            return Err(malformed(at, "length past the end"));
        }
        let len = len as usize;
        if len > max {
            return Err(Error::TooLarge { what, limit: max });
        }
        let slice = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    fn text(&mut self, max: usize, what: &'static str) -> Result<String, Error> {
        let at = self.pos;
        let bytes = self.bytes(max, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| malformed(at, "invalid UTF-8"))
    }
}

/// Appends `pairs` in dskit's full-state framing: each as `[u32 big-endian length][pair]`.
///
/// # Errors
/// [`Error::TooLarge`] if a pair's encoding exceeds `u32::MAX` bytes (dskit skips such a pair;
/// here nothing is appended past the pairs before it).
pub fn encode_full_state(out: &mut Vec<u8>, pairs: &[KeyValuePair]) -> Result<(), Error> {
    for pair in pairs {
        let len = u32::try_from(pair.encoded_len()).map_err(|_| Error::TooLarge {
            what: "KeyValuePair in a full state",
            limit: u32::MAX as usize,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        pair.encode(out);
    }
    Ok(())
}

/// The pairs of a full state (dskit's `MergeRemoteState` loop), in order. A pair that does not
/// decode is yielded as its error and the next one read; a framing error (fewer than 4 bytes
/// left, a length past the end) or more than `max_pairs` frames is yielded once and ends the
/// iteration.
#[must_use]
pub fn decode_full_state<'a>(bytes: &'a [u8], limits: &KvLimits) -> FullState<'a> {
    FullState {
        bytes,
        pos: 0,
        frames: 0,
        limits: *limits,
        ended: false,
    }
}

/// The iterator of [`decode_full_state`].
#[derive(Debug, Clone)]
pub struct FullState<'a> {
    bytes: &'a [u8],
    pos: usize,
    frames: usize,
    limits: KvLimits,
    ended: bool,
}

impl FullState<'_> {
    fn end(&mut self, error: Error) -> Option<Result<KeyValuePair, Error>> {
        self.ended = true;
        Some(Err(error))
    }
}

impl Iterator for FullState<'_> {
    type Item = Result<KeyValuePair, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended || self.pos >= self.bytes.len() {
            return None;
        }
        let at = self.pos;
        let rest = &self.bytes[at..];
        let Some((header, rest)) = rest.split_first_chunk::<FRAME_HEADER>() else {
            return self.end(Error::FullState {
                offset: at,
                reason: "fewer than 4 bytes left for a length",
            });
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > rest.len() {
            return self.end(Error::FullState {
                offset: at,
                reason: "pair length past the end",
            });
        }
        self.frames += 1;
        if self.frames > self.limits.max_pairs {
            return self.end(Error::TooLarge {
                what: "pairs in a KV full state",
                limit: self.limits.max_pairs,
            });
        }
        self.pos = at + FRAME_HEADER + len;
        Some(KeyValuePair::decode(&rest[..len], &self.limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "ring" / "ringDesc" / value 01 02 03 / deleted / 1700000000000 ms, written out field by
    /// field from the protobuf encoding rules.
    fn ring_pair_bytes() -> Vec<u8> {
        let mut b = vec![0x0a, 4];
        b.extend_from_slice(b"ring"); // field 1, wire type 2 (tag 0x0a), length 4
        b.extend_from_slice(&[0x12, 3, 1, 2, 3]); // field 2, wire type 2, length 3
        b.push(0x1a); // field 3, wire type 2
        b.push(8);
        b.extend_from_slice(b"ringDesc");
        b.extend_from_slice(&[0x20, 1]); // field 4, wire type 0, true
        // field 5, wire type 0 (tag 0x28); 1_700_000_000_000 = 0x18B_CFE5_6800 in base-128
        // groups of 7 bits, least significant first.
        b.extend_from_slice(&[0x28, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31]);
        b
    }

    fn ring_pair() -> KeyValuePair {
        KeyValuePair {
            key: "ring".into(),
            value: vec![1, 2, 3],
            codec: "ringDesc".into(),
            deleted: true,
            update_time_millis: 1_700_000_000_000,
        }
    }

    #[test]
    fn a_pair_encodes_to_the_bytes_the_protobuf_rules_give_and_back() {
        let bytes = ring_pair_bytes();
        assert_eq!(ring_pair().to_bytes(), bytes);
        assert_eq!(ring_pair().encoded_len(), bytes.len());
        assert_eq!(
            KeyValuePair::decode(&bytes, &KvLimits::default()),
            Ok(ring_pair())
        );
    }

    #[test]
    fn zero_and_empty_fields_are_left_out() {
        let pair = KeyValuePair {
            key: "k".into(),
            ..KeyValuePair::default()
        };
        assert_eq!(pair.to_bytes(), vec![0x0a, 1, b'k']);
        assert_eq!(
            KeyValuePair::decode(&pair.to_bytes(), &KvLimits::default()),
            Ok(pair)
        );
    }

    #[test]
    fn a_negative_time_is_a_ten_byte_varint_as_go_writes_an_int64() {
        let pair = KeyValuePair {
            key: "k".into(),
            update_time_millis: -1,
            ..KeyValuePair::default()
        };
        let bytes = pair.to_bytes();
        let mut expected = vec![0x0a, 1, b'k', 0x28];
        expected.extend_from_slice(&[0xff; 9]);
        expected.push(0x01);
        assert_eq!(bytes, expected);
        assert_eq!(pair.encoded_len(), bytes.len());
        assert_eq!(KeyValuePair::decode(&bytes, &KvLimits::default()), Ok(pair));
    }

    #[test]
    fn fields_in_any_order_and_unknown_fields_are_accepted() {
        let mut bytes = vec![0x28, 7]; // time first
        bytes.extend_from_slice(&[0x30, 0x96, 0x01]); // field 6, varint 150
        bytes.extend_from_slice(&[0x39, 0, 0, 0, 0, 0, 0, 0, 0]); // field 7, fixed64
        bytes.extend_from_slice(&[0x42, 2, 9, 9]); // field 8, length 2
        bytes.extend_from_slice(&[0x4d, 0, 0, 0, 0]); // field 9, fixed32
        bytes.extend_from_slice(&[0x0a, 1, b'x', 0x0a, 1, b'y']); // the last key wins
        let pair = KeyValuePair::decode(&bytes, &KvLimits::default()).unwrap();
        assert_eq!(
            pair,
            KeyValuePair {
                key: "y".into(),
                update_time_millis: 7,
                ..KeyValuePair::default()
            }
        );
    }

    #[test]
    fn malformed_pairs_are_refused_without_a_panic() {
        let limits = KvLimits::default();
        let full = ring_pair_bytes();
        for cut in 1..full.len() {
            // Every proper prefix that ends inside a field is refused (prefixes that end on a
            // field boundary are valid pairs with fewer fields).
            let prefix = &full[..cut];
            if let Ok(pair) = KeyValuePair::decode(prefix, &limits) {
                assert_eq!(pair.key, "ring");
            }
        }
        let refused = |bytes: &[u8]| KeyValuePair::decode(bytes, &limits).unwrap_err();
        assert!(matches!(
            refused(&[0x0a, 5, b'r']),
            Error::KeyValuePair {
                reason: "length past the end",
                ..
            }
        ));
        assert!(matches!(
            refused(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Error::KeyValuePair {
                reason: "length past the end",
                ..
            }
        ));
        assert!(matches!(
            refused(&[0x08, 1]), // key as a varint
            Error::KeyValuePair {
                reason: "wrong wire type",
                ..
            }
        ));
        assert!(matches!(
            refused(&[0x22, 1, 1]), // deleted as bytes
            Error::KeyValuePair {
                reason: "wrong wire type",
                ..
            }
        ));
        assert!(matches!(
            refused(&[0x12, 1, 1]), // no key
            Error::KeyValuePair {
                reason: "empty key",
                ..
            }
        ));
        assert!(matches!(
            refused(&[]),
            Error::KeyValuePair {
                reason: "empty key",
                ..
            }
        ));
        assert!(matches!(
            refused(&[0x0a, 2, 0xc3, 0x28]), // invalid UTF-8
            Error::KeyValuePair {
                reason: "invalid UTF-8",
                ..
            }
        ));
        assert!(matches!(
            refused(&[0x33, 0x34]), // a group (field 6)
            Error::KeyValuePair {
                reason: "unsupported wire type",
                ..
            }
        ));
        assert!(matches!(
            refused(&[0x00, 1]), // field 0
            Error::KeyValuePair {
                reason: "field number out of range",
                ..
            }
        ));
        let mut long = vec![0x28];
        long.extend_from_slice(&[0x80; 10]);
        long.push(1);
        assert!(matches!(refused(&long), Error::KeyValuePair { .. }));
        let mut overflow = vec![0x28];
        overflow.extend_from_slice(&[0xff; 9]);
        overflow.push(0x02);
        assert!(matches!(
            refused(&overflow),
            Error::KeyValuePair {
                reason: "varint overflows 64 bits",
                ..
            }
        ));
    }

    #[test]
    fn oversized_fields_are_refused_before_they_are_copied() {
        let limits = KvLimits {
            max_key_len: 3,
            max_codec_len: 3,
            max_value_bytes: 2,
            max_pairs: 1,
        };
        let refused = |bytes: &[u8]| KeyValuePair::decode(bytes, &limits).unwrap_err();
        assert!(matches!(
            refused(&ring_pair_bytes()),
            Error::TooLarge {
                what: "KeyValuePair key",
                limit: 3
            }
        ));
        assert!(matches!(
            refused(&[0x0a, 1, b'k', 0x12, 3, 1, 2, 3]),
            Error::TooLarge {
                what: "KeyValuePair value",
                limit: 2
            }
        ));
        assert!(matches!(
            refused(&[0x0a, 1, b'k', 0x1a, 4, b'a', b'b', b'c', b'd']),
            Error::TooLarge {
                what: "KeyValuePair codec",
                limit: 3
            }
        ));
    }

    #[test]
    fn a_full_state_is_length_prefixed_pairs_and_decodes_back() {
        let other = KeyValuePair {
            key: "k".into(),
            value: vec![9],
            codec: "c".into(),
            deleted: false,
            update_time_millis: 1,
        };
        let mut state = Vec::new();
        encode_full_state(&mut state, &[ring_pair(), other.clone()]).unwrap();
        let mut expected = vec![0, 0, 0, 30];
        expected.extend_from_slice(&ring_pair_bytes());
        expected.extend_from_slice(&[0, 0, 0, 11, 0x0a, 1, b'k', 0x12, 1, 9, 0x1a, 1, b'c']);
        expected.extend_from_slice(&[0x28, 1]);
        assert_eq!(state, expected);
        let pairs: Vec<_> = decode_full_state(&state, &KvLimits::default()).collect();
        assert_eq!(pairs, vec![Ok(ring_pair()), Ok(other)]);
        assert_eq!(decode_full_state(&[], &KvLimits::default()).count(), 0);
    }

    #[test]
    fn a_bad_pair_is_skipped_and_a_framing_error_ends_the_full_state() {
        let good = ring_pair().to_bytes();
        let mut state = Vec::new();
        // A pair with no key (refused, skipped), then a good one.
        state.extend_from_slice(&[0, 0, 0, 2, 0x20, 1]);
        state.extend_from_slice(&(good.len() as u32).to_be_bytes());
        state.extend_from_slice(&good);
        // A length past the end, then what would be a good pair.
        let mut truncated = state.clone();
        truncated.extend_from_slice(&[0, 0, 1, 0]);
        truncated.extend_from_slice(&good);
        let limits = KvLimits::default();
        let pairs: Vec<_> = decode_full_state(&truncated, &limits).collect();
        assert_eq!(pairs.len(), 3);
        assert!(matches!(
            pairs[0],
            Err(Error::KeyValuePair {
                reason: "empty key",
                ..
            })
        ));
        assert_eq!(pairs[1], Ok(ring_pair()));
        assert!(matches!(
            pairs[2],
            Err(Error::FullState {
                reason: "pair length past the end",
                ..
            })
        ));
        // Fewer than four bytes for a length.
        let mut short = state.clone();
        short.extend_from_slice(&[0, 0]);
        let last = decode_full_state(&short, &limits).last().unwrap();
        assert!(matches!(
            last,
            Err(Error::FullState {
                reason: "fewer than 4 bytes left for a length",
                ..
            })
        ));
        // More pairs than the limit: the rest is refused.
        let one = KvLimits {
            max_pairs: 1,
            ..limits
        };
        let pairs: Vec<_> = decode_full_state(&state, &one).collect();
        assert_eq!(pairs.len(), 2);
        assert!(matches!(pairs[1], Err(Error::TooLarge { .. })));
    }
}
