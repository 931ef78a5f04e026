//! The ring's wire format: a format version byte, a postcard body, a checksum.
//!
//! ```text
//! ring     = version:u8 (= 2)  count:varint  entry{count}  checksum:u32 (little-endian)
//! entry    = id:str  heartbeat:varint  desc:option
//! desc     = updated_at:varint  state:u8  addr:str  zone:str  registered_at:varint
//!            read_only:bool  read_only_updated_at:varint  versions:map<varint, varint>
//!            tokens:bytes
//! tokens   = count:varint  [ k:u8  first:32 bits  gap{count - 1} ]     (bit stream, MSB first)
//! gap      = Rice code of (token[i] - token[i-1] - 1) with parameter k:
//!            the quotient in unary (q one-bits, then a zero), then the k low bits
//! ```
//!
//! Everything up to the checksum is postcard (varints are LEB128, `str` and `bytes` are a varint
//! length then the bytes, `option` is a 0/1 byte). Entries are sorted by id and ids are distinct.
//! The checksum is the CRC-32 (IEEE, `crc32fast`) of every preceding byte: a corrupted value is
//! refused rather than merged, because a CRDT would keep a corrupted maximum forever.
//!
//! Tokens are Rice-coded gaps: for `n` random 32-bit tokens the gaps are close to geometric, and
//! a Rice code with the best `k` costs about `log2(mean gap) + 1.5` bits per token, within a few
//! percent of the information-theoretic bound `log2(C(2^32, n)) / n`. The encoder picks `k`
//! deterministically, so equal rings give equal bytes.
//!
//! Decoding refuses, with an [`Error::Decode`] naming the byte offset: an unknown version, a bad
//! checksum, truncation, trailing bytes, invalid or unsorted ids, unknown states, tombstones with
//! tokens, tokens out of order or out of range, and any count larger than the remaining input can
//! hold (checked before memory is reserved).

use std::collections::BTreeMap;

use rumour_wire::varint;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::instance::{Body, Entry, Instance, State, Tokens, validate_instance_id};
use crate::limits::RingLimits;
use crate::mergeable::Timestamp;
use crate::ring::Ring;

/// The format version written first in every encoded ring (2: the checksum is CRC-32; version 1
/// closed with a folded 64-bit hash).
pub const FORMAT_VERSION: u8 = 2;

const CHECKSUM_LEN: usize = 4;
/// The smallest encoded entry: a one-byte id with its length, a heartbeat, an option tag.
const MIN_ENTRY_LEN: usize = 4;

/// Encodes a ring canonically. A description decoded from canonical bytes is written back as
/// those bytes ([`Body::encoded`]); the rest are encoded field by field.
pub(crate) fn encode(ring: &Ring) -> Vec<u8> {
    let estimate = ring
        .entries
        .iter()
        .map(|e| {
            48 + e
                .body
                .as_ref()
                .map_or(0, |b| 48 + 4 * b.instance.tokens.len())
        })
        .sum::<usize>();
    let mut out = Vec::with_capacity(estimate + 16);
    out.push(FORMAT_VERSION);
    varint::put(&mut out, ring.entries.len() as u64);
    for entry in ring.entries.iter() {
        // postcard's encoding of `(id, heartbeat, Option<description>)`, as `decode_entry` reads it.
        out = postcard::to_extend(&(entry.id.as_str(), entry.heartbeat.0), out)
            .expect("postcard serializes these types into a Vec without error");
        match &entry.body {
            None => out.push(0),
            Some(body) => {
                out.push(1);
                match body.encoded() {
                    Some(bytes) => out.extend_from_slice(bytes),
                    None => out = encode_description(&body.instance, out),
                }
            }
        }
    }
    let sum = crc32fast::hash(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Appends the canonical encoding of `instance` to `out`.
pub(crate) fn encode_description(instance: &Instance, out: Vec<u8>) -> Vec<u8> {
    postcard::to_extend(&WireDescOut::new(instance), out)
        .expect("postcard serializes these types into a Vec without error")
}

/// Decodes a ring, checking the checksum first.
pub(crate) fn decode(bytes: &[u8], limits: &RingLimits) -> Result<Ring, Error> {
    if bytes.len() < 2 + CHECKSUM_LEN {
        return Err(Error::decode("ring", bytes.len(), "too short"));
    }
    let (payload, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let expected = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
    if crc32fast::hash(payload) != expected {
        return Err(Error::decode("ring", payload.len(), "checksum mismatch"));
    }
    decode_payload(payload, limits)
}

/// Decodes the bytes before the checksum.
pub(crate) fn decode_payload(bytes: &[u8], limits: &RingLimits) -> Result<Ring, Error> {
    match bytes.first() {
        None => return Err(Error::decode("ring", 0, "empty input")),
        Some(&FORMAT_VERSION) => {}
        Some(_) => return Err(Error::decode("ring", 0, "unknown format version")),
    }
    let offset_of = |rest: &[u8]| bytes.len() - rest.len();
    let (count, mut rest) = postcard::take_from_bytes::<u64>(&bytes[1..])
        .map_err(|e| Error::decode("ring entry count", 1, reason(&e)))?;
    if count > (rest.len() / MIN_ENTRY_LEN) as u64 {
        return Err(Error::decode(
            "ring entry count",
            1,
            "count exceeds what the input can hold",
        ));
    }
    if count > limits.max_instances as u64 {
        return Err(Error::decode(
            "ring entry count",
            1,
            "more instances than the limit",
        ));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let offset = offset_of(rest);
        let (entry, tail) = decode_entry(rest, offset, limits.max_tokens_per_instance)?;
        if entries.last().is_some_and(|last| last.id >= entry.id) {
            return Err(Error::decode(
                "ring entry",
                offset,
                "instance ids not in increasing order",
            ));
        }
        entries.push(entry);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(Error::decode("ring", offset_of(rest), "trailing bytes"));
    }
    Ok(Ring::from_entries(entries))
}

fn reason(error: &postcard::Error) -> &'static str {
    match error {
        postcard::Error::DeserializeUnexpectedEnd => "truncated",
        postcard::Error::DeserializeBadVarint => "bad varint",
        postcard::Error::DeserializeBadBool => "bad bool",
        postcard::Error::DeserializeBadUtf8 => "invalid UTF-8",
        postcard::Error::DeserializeBadOption => "bad option tag",
        _ => "malformed postcard data",
    }
}

#[derive(Serialize)]
struct WireDescOut<'a> {
    updated_at: u64,
    state: u8,
    addr: &'a str,
    zone: &'a str,
    registered_at: u64,
    read_only: bool,
    read_only_updated_at: u64,
    versions: &'a BTreeMap<u64, u64>,
    tokens: TokenBlob<'a>,
}

impl<'a> WireDescOut<'a> {
    fn new(instance: &'a Instance) -> WireDescOut<'a> {
        WireDescOut {
            updated_at: instance.updated_at.0,
            state: instance.state.index(),
            addr: &instance.addr,
            zone: &instance.zone,
            registered_at: instance.registered_at.0,
            read_only: instance.read_only,
            read_only_updated_at: instance.read_only_updated_at.0,
            versions: &instance.versions,
            tokens: TokenBlob(&instance.tokens),
        }
    }
}

/// Tokens serialized as one postcard byte string holding the Rice-coded stream.
struct TokenBlob<'a>(&'a [u32]);

impl Serialize for TokenBlob<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut blob = Vec::with_capacity(4 + self.0.len() * 4);
        encode_tokens(self.0, &mut blob);
        serializer.serialize_bytes(&blob)
    }
}

#[derive(Deserialize)]
struct WireHeadIn<'a> {
    id: &'a str,
    heartbeat: u64,
}

#[derive(Deserialize)]
struct WireDescIn<'a> {
    updated_at: u64,
    state: u8,
    addr: &'a str,
    zone: &'a str,
    registered_at: u64,
    read_only: bool,
    read_only_updated_at: u64,
    versions: BTreeMap<u64, u64>,
    tokens: &'a [u8],
}

/// Decodes the entry at the start of `bytes` (`offset` into the payload, for errors) and
/// returns it with the bytes after it. The entry is postcard's encoding of `(id, heartbeat,
/// Option<description>)`, read in parts so that the description's own bytes are known: a
/// description decoded before (anywhere in the process) is shared, not decoded again
/// ([`Body::decoded`]).
fn decode_entry(bytes: &[u8], offset: usize, max_tokens: usize) -> Result<(Entry, &[u8]), Error> {
    let fail = |reason| Error::decode("ring entry", offset, reason);
    let (head, rest) =
        postcard::take_from_bytes::<WireHeadIn<'_>>(bytes).map_err(|e| fail(reason(&e)))?;
    validate_instance_id(head.id).map_err(|_| fail("invalid instance id"))?;
    let (body, rest) = match rest.split_first() {
        None => return Err(fail("truncated")),
        Some((0, _)) if head.heartbeat == 0 => {
            return Err(fail("entry with neither description nor heartbeat"));
        }
        Some((0, rest)) => (None, rest),
        Some((1, desc_bytes)) => {
            let (desc, rest) = postcard::take_from_bytes::<WireDescIn<'_>>(desc_bytes)
                .map_err(|e| fail(reason(&e)))?;
            let encoded = &desc_bytes[..desc_bytes.len() - rest.len()];
            let body = Body::decoded(encoded, || desc.into_instance(max_tokens).map_err(fail))?;
            // A description decoded before passed the limit of the decode that built it.
            if body.instance.tokens.len() > max_tokens {
                return Err(fail("more tokens than the limit"));
            }
            (Some(body), rest)
        }
        Some(_) => return Err(fail("bad option tag")),
    };
    Ok((
        Entry::new(head.id.into(), body, Timestamp(head.heartbeat)),
        rest,
    ))
}

impl WireDescIn<'_> {
    /// The description, checked; at most `max_tokens` tokens.
    fn into_instance(self, max_tokens: usize) -> Result<Instance, &'static str> {
        let state = State::from_index(u64::from(self.state)).ok_or("unknown state")?;
        let tokens = decode_tokens(self.tokens, max_tokens)?;
        if state == State::Left && !tokens.is_empty() {
            return Err("Left tombstone with tokens");
        }
        Ok(Instance {
            updated_at: Timestamp(self.updated_at),
            state,
            addr: self.addr.to_owned(),
            zone: self.zone.to_owned(),
            tokens,
            registered_at: Timestamp(self.registered_at),
            read_only: self.read_only,
            read_only_updated_at: Timestamp(self.read_only_updated_at),
            versions: self.versions,
        })
    }
}

/// Appends the token blob (count, Rice parameter, bit stream) for sorted distinct tokens.
pub(crate) fn encode_tokens(tokens: &[u32], out: &mut Vec<u8>) {
    varint::put(out, tokens.len() as u64);
    let Some((&first, _)) = tokens.split_first() else {
        return;
    };
    let k = rice_parameter(tokens);
    out.push(k);
    let mut bits = BitWriter::new(out);
    bits.put(u64::from(first), 32);
    let k = u32::from(k);
    for pair in tokens.windows(2) {
        let gap = u64::from(pair[1] - pair[0] - 1);
        let (q, low) = (gap >> k, gap & ((1 << k) - 1));
        if q + 1 + u64::from(k) <= 56 {
            // q ones, a zero, k low bits, in one write.
            bits.put((((1 << q) - 1) << (k + 1)) | low, q as u32 + 1 + k);
        } else {
            bits.put_ones(q);
            bits.put(0, 1);
            bits.put(low, k);
        }
    }
    bits.finish();
}

/// The Rice parameter giving the shortest stream, searched near `log2` of the mean gap; ties go
/// to the smaller parameter.
fn rice_parameter(tokens: &[u32]) -> u8 {
    let n = tokens.len();
    if n < 2 {
        return 0;
    }
    let gaps = n as u64 - 1;
    let span = u64::from(tokens[n - 1] - tokens[0]) - gaps;
    let mean = (span / gaps).max(1);
    let lowest = (63 - mean.leading_zeros()).saturating_sub(2); // floor(log2(mean)) - 2
    // Unary bits for k = lowest .. lowest + 3, in one pass.
    let mut unary = [0u64; 4];
    for pair in tokens.windows(2) {
        let q = u64::from(pair[1] - pair[0] - 1) >> lowest;
        unary[0] += q;
        unary[1] += q >> 1;
        unary[2] += q >> 2;
        unary[3] += q >> 3;
    }
    (0..4u32)
        .map(|d| lowest + d)
        .filter(|&k| k <= 31)
        .min_by_key(|&k| (unary[(k - lowest) as usize] + gaps * u64::from(k), k))
        .map_or(0, |k| k as u8)
}

/// Decodes a token blob; the count is checked against `max_tokens` and against the bits left
/// (each token after the first costs at least `k + 1` bits) before anything is allocated.
pub(crate) fn decode_tokens(blob: &[u8], max_tokens: usize) -> Result<Tokens, &'static str> {
    let (count, used) = varint::get(blob).map_err(|_| "bad token count")?;
    if count > max_tokens as u64 {
        return Err("more tokens than the limit");
    }
    let rest = &blob[used..];
    if count == 0 {
        return if rest.is_empty() {
            Ok(Tokens::empty())
        } else {
            Err("trailing bytes after tokens")
        };
    }
    let (&k, stream) = rest.split_first().ok_or("truncated tokens")?;
    if k > 31 {
        return Err("Rice parameter out of range");
    }
    let total_bits = stream.len() as u64 * 8;
    let max_count = 1 + total_bits.saturating_sub(32) / (u64::from(k) + 1);
    if total_bits < 32 || count > max_count {
        return Err("token count exceeds what the input can hold");
    }
    let mut tokens = Vec::with_capacity(count as usize);
    let mut bits = BitReader::new(stream);
    let mut previous = bits.get(32).ok_or("truncated tokens")?;
    tokens.push(previous as u32);
    let max_quotient = (u64::from(u32::MAX) >> k) + 1;
    for _ in 1..count {
        let q = bits.unary(max_quotient).ok_or("bad token gap")?;
        let low = bits.get(u32::from(k)).ok_or("truncated tokens")?;
        let token = previous + ((q << k) | low) + 1;
        if token > u64::from(u32::MAX) {
            return Err("token out of range");
        }
        tokens.push(token as u32);
        previous = token;
    }
    if !bits.at_padded_end() {
        return Err("trailing bits after tokens");
    }
    Ok(Tokens::from_sorted(tokens))
}

/// Writes bits MSB first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    len: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            len: 0,
        }
    }

    /// Appends the `n <= 56` low bits of `value`.
    fn put(&mut self, value: u64, n: u32) {
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | value;
        self.len += n;
        while self.len >= 8 {
            self.len -= 8;
            self.out.push((self.acc >> self.len) as u8);
        }
        self.acc &= (1 << self.len) - 1;
    }

    fn put_ones(&mut self, mut count: u64) {
        while count > 0 {
            let n = count.min(32) as u32;
            self.put((1 << n) - 1, n);
            count -= u64::from(n);
        }
    }

    /// Pads the last byte with zeros.
    fn finish(mut self) {
        if self.len > 0 {
            let pad = 8 - self.len;
            self.put(0, pad);
        }
    }
}

/// Reads bits MSB first.
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: u64,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    fn total(&self) -> u64 {
        self.bytes.len() as u64 * 8
    }

    /// The next 64 bits, zero-filled past the end.
    fn peek(&self) -> u64 {
        let byte = (self.pos / 8) as usize;
        if let Some(word) = self.bytes.get(byte..byte + 8) {
            let word: [u8; 8] = word.try_into().expect("eight bytes");
            return u64::from_be_bytes(word) << (self.pos % 8);
        }
        let mut buf = [0u8; 8];
        let available = self.bytes.len().saturating_sub(byte).min(8);
        buf[..available].copy_from_slice(&self.bytes[byte..byte + available]);
        u64::from_be_bytes(buf) << (self.pos % 8)
    }

    /// The next `n <= 32` bits.
    fn get(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if self.pos + u64::from(n) > self.total() {
            return None;
        }
        let value = self.peek() >> (64 - n);
        self.pos += u64::from(n);
        Some(value)
    }

    /// A unary count of one-bits closed by a zero, at most `max`.
    fn unary(&mut self, max: u64) -> Option<u64> {
        let mut count = 0u64;
        loop {
            let ones = u64::from((!self.peek()).leading_zeros());
            if ones < 57 {
                count += ones;
                self.pos += ones + 1;
                return (self.pos <= self.total() && count <= max).then_some(count);
            }
            count += 56;
            self.pos += 56;
            if self.pos > self.total() || count > max {
                return None;
            }
        }
    }

    /// Whether only zero padding of the last byte is left.
    fn at_padded_end(&self) -> bool {
        let left = self.total() - self.pos;
        left < 8 && (left == 0 || self.peek() == 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn token_blobs_round_trip_at_the_extremes() {
        let cases: Vec<Vec<u32>> = vec![
            vec![],
            vec![0],
            vec![u32::MAX],
            vec![0, u32::MAX],
            vec![0, 1, 2, 3, u32::MAX - 1, u32::MAX],
            (0..1000).map(|i| i * 4_000_000).collect(),
            (0..300).collect(),
            // Tiny gaps and one huge one: a unary run longer than one write.
            (0..300).chain([u32::MAX]).collect(),
        ];
        for tokens in cases {
            let mut blob = Vec::new();
            encode_tokens(&tokens, &mut blob);
            let decoded = decode_tokens(&blob, usize::MAX).expect("a valid blob decodes");
            assert_eq!(decoded.as_slice(), tokens.as_slice());
        }
    }

    #[test]
    fn token_count_beyond_the_input_is_refused_before_allocating() {
        let mut blob = Vec::new();
        varint::put(&mut blob, u64::MAX / 2);
        blob.extend_from_slice(&[0, 0, 0, 0, 0]);
        assert_eq!(
            decode_tokens(&blob, usize::MAX),
            Err("token count exceeds what the input can hold")
        );
    }

    #[test]
    fn an_unterminated_unary_run_is_an_error() {
        let mut blob = Vec::new();
        varint::put(&mut blob, 2);
        blob.push(0);
        blob.extend_from_slice(&[0, 0, 0, 0]);
        blob.extend_from_slice(&[0xff; 20]);
        assert!(decode_tokens(&blob, usize::MAX).is_err());
    }

    fn ring_of(id: &str, tokens: Vec<u32>) -> Ring {
        let mut ring = Ring::new();
        let instance = Instance::new(
            "10.0.0.1:9095",
            "zone-a",
            State::Active,
            Tokens::new(tokens),
            Timestamp(7),
        );
        ring.set_instance(id, instance).expect("a valid id");
        ring
    }

    #[test]
    fn a_description_decoded_again_is_shared_not_built_again() {
        let bytes = encode(&ring_of(
            "codec-shared",
            (0..128).map(|i| i * 1000).collect(),
        ));
        let a = decode(&bytes, &RingLimits::UNBOUNDED).expect("valid");
        let b = decode(&bytes, &RingLimits::UNBOUNDED).expect("valid");
        let (a, b) = (&a.entries[0], &b.entries[0]);
        assert!(Arc::ptr_eq(
            a.body.as_ref().expect("described"),
            b.body.as_ref().expect("described")
        ));
        assert_eq!(a.id, b.id);
        // A different description is another allocation.
        let other = encode(&ring_of(
            "codec-shared",
            (0..128).map(|i| i * 999).collect(),
        ));
        let c = decode(&other, &RingLimits::UNBOUNDED).expect("valid");
        assert!(!Arc::ptr_eq(
            a.body.as_ref().expect("described"),
            c.entries[0].body.as_ref().expect("described")
        ));
    }

    #[test]
    fn a_shared_description_still_meets_the_limit_of_each_decode() {
        let bytes = encode(&ring_of("codec-limits", (0..64).collect()));
        assert!(decode(&bytes, &RingLimits::UNBOUNDED).is_ok());
        let tight = RingLimits {
            max_tokens_per_instance: 63,
            ..RingLimits::UNBOUNDED
        };
        let refused = decode(&bytes, &tight).expect_err("over the token limit");
        assert!(
            refused.to_string().contains("more tokens than the limit"),
            "{refused}"
        );
    }

    #[test]
    fn a_description_decoded_from_non_canonical_bytes_is_encoded_canonically() {
        let canonical = encode(&ring_of("codec-canonical", vec![5, 6]));
        // The token blob: two tokens, Rice parameter 0, token 5 in 32 bits, a zero gap ("0").
        let blob = [2, 0, 0, 0, 0, 5, 0];
        let at = canonical
            .windows(blob.len())
            .position(|w| w == blob)
            .expect("the blob is in the encoding");
        // The same tokens with Rice parameter 1 (the gap as "0" and one low bit "0").
        let mut other = canonical[..canonical.len() - CHECKSUM_LEN].to_vec();
        other[at + 1] = 1;
        let sum = crc32fast::hash(&other);
        other.extend_from_slice(&sum.to_le_bytes());
        assert_ne!(other, canonical);
        let decoded = decode(&other, &RingLimits::UNBOUNDED).expect("valid, if not canonical");
        assert_eq!(
            decoded.entries[0]
                .body
                .as_ref()
                .expect("described")
                .instance
                .tokens
                .as_slice(),
            &[5, 6]
        );
        assert_eq!(encode(&decoded), canonical);
    }

    #[test]
    fn varints_match_postcard() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut ours = Vec::new();
            varint::put(&mut ours, value);
            let theirs = postcard::to_allocvec(&value).expect("postcard encodes a u64");
            assert_eq!(ours, theirs);
            assert_eq!(varint::get(&ours), Ok((value, ours.len())));
        }
    }
}
