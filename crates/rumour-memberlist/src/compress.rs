//! memberlist's compression: Go's `compress/lzw` (LSB bit order, literal width 8) wrapped in
//! `compress{Algo: 0, Buf}`.
//!
//! Decoding uses `weezl`, which reads Go's streams (clear code first, widths from 9 to 12 bits,
//! a clear code and reset when the table fills, the end code last). Encoding does not: weezl's
//! encoder resets its table at a different point than Go's writer (from about 4K codes on, which
//! a packet never reaches but a large push/pull does), so Go's decoder would still read it but
//! the bytes would differ. [`lzw_compress`] is therefore a port of Go's `compress/lzw` writer
//! (Go 1.19, BSD licence), and `tests/it/lzw.rs` checks both directions against Go's output
//! byte for byte, across width steps and table resets.

use weezl::{BitOrder, LzwStatus, decode::Decoder};

use crate::Error;
use crate::msgpack::{self, Reader};

/// `lzwLitWidth` in memberlist's `util.go`.
const LIT_WIDTH: u8 = 8;

/// The only algorithm memberlist defines (`lzwAlgo`).
pub const LZW_ALGORITHM: u8 = 0;

/// Largest code (12-bit codes).
const MAX_CODE: u32 = (1 << 12) - 1;
/// "No code yet" (`invalidCode`).
const INVALID_CODE: u32 = u32::MAX;
/// Hash table slots (`tableSize`: 4 × 2^12).
const TABLE_SIZE: usize = 4 << 12;
/// Hash mask (`tableMask`).
const TABLE_MASK: u32 = TABLE_SIZE as u32 - 1;
/// An empty table slot (`invalidEntry`).
const INVALID_ENTRY: u32 = 0;

/// Go's `lzw.Writer` in LSB order, literal width 8.
///
/// Ported from Go's `src/compress/lzw/writer.go`: "Copyright 2011 The Go Authors. All rights
/// reserved. Use of this source code is governed by a BSD-style license" (Go's `LICENSE`).
struct GoLzwWriter {
    out: Vec<u8>,
    bits: u32,
    n_bits: u32,
    width: u32,
    hi: u32,
    overflow: u32,
    saved_code: u32,
    /// `key << 12 | code` per slot, `key = prefix << 8 | literal`.
    table: Vec<u32>,
}

impl GoLzwWriter {
    const CLEAR: u32 = 1 << LIT_WIDTH;
    const EOF: u32 = Self::CLEAR + 1;

    fn new() -> Self {
        Self {
            out: Vec::new(),
            bits: 0,
            n_bits: 0,
            width: u32::from(LIT_WIDTH) + 1,
            hi: Self::EOF,
            overflow: Self::CLEAR << 1,
            saved_code: INVALID_CODE,
            table: vec![INVALID_ENTRY; TABLE_SIZE],
        }
    }

    /// `writeLSB`.
    fn emit(&mut self, code: u32) {
        self.bits |= code << self.n_bits;
        self.n_bits += self.width;
        while self.n_bits >= 8 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.n_bits -= 8;
        }
    }

    /// `incHi`: true when the table was full and has been reset (`errOutOfCodes`).
    fn inc_hi(&mut self) -> bool {
        self.hi += 1;
        if self.hi == self.overflow {
            self.width += 1;
            self.overflow <<= 1;
        }
        if self.hi == MAX_CODE {
            self.emit(Self::CLEAR);
            self.width = u32::from(LIT_WIDTH) + 1;
            self.hi = Self::EOF;
            self.overflow = Self::CLEAR << 1;
            self.table.fill(INVALID_ENTRY);
            return true;
        }
        false
    }

    /// `Write`.
    fn write(&mut self, input: &[u8]) {
        let Some((&first, rest)) = input.split_first() else {
            return;
        };
        let mut code = self.saved_code;
        let mut input = input;
        if code == INVALID_CODE {
            self.emit(Self::CLEAR);
            code = u32::from(first);
            input = rest;
        }
        'bytes: for &x in input {
            let literal = u32::from(x);
            let key = (code << 8) | literal;
            let hash = ((key >> 12) ^ key) & TABLE_MASK;
            let mut h = hash;
            let mut t = self.table[hash as usize];
            while t != INVALID_ENTRY {
                if key == t >> 12 {
                    code = t & MAX_CODE;
                    continue 'bytes;
                }
                h = (h + 1) & TABLE_MASK;
                t = self.table[h as usize];
            }
            self.emit(code);
            code = literal;
            if self.inc_hi() {
                continue;
            }
            let mut slot = hash;
            while self.table[slot as usize] != INVALID_ENTRY {
                slot = (slot + 1) & TABLE_MASK;
            }
            self.table[slot as usize] = (key << 12) | self.hi;
        }
        self.saved_code = code;
    }

    /// `Close`.
    fn finish(mut self) -> Vec<u8> {
        if self.saved_code == INVALID_CODE {
            self.emit(Self::CLEAR);
        } else {
            self.emit(self.saved_code);
            self.inc_hi();
        }
        self.emit(Self::EOF);
        if self.n_bits > 0 {
            self.out.push(self.bits as u8);
        }
        self.out
    }
}

/// LZW-compresses `input` exactly as Go's `lzw.NewWriter(w, lzw.LSB, 8)` does.
pub fn lzw_compress(input: &[u8]) -> Vec<u8> {
    let mut writer = GoLzwWriter::new();
    writer.write(input);
    writer.finish()
}

/// Decompresses Go LZW data, refusing to produce more than `limit` bytes.
pub fn lzw_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let mut decoder = Decoder::new(BitOrder::Lsb, LIT_WIDTH);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut rest = input;
    loop {
        let result = decoder.decode_bytes(rest, &mut chunk);
        rest = rest.get(result.consumed_in..).unwrap_or_default();
        let produced = chunk.get(..result.consumed_out).unwrap_or_default();
        if out.len() + produced.len() > limit {
            return Err(Error::TooLarge {
                what: "decompressed payload",
                limit,
            });
        }
        out.extend_from_slice(produced);
        match result.status {
            Ok(LzwStatus::Done) => return Ok(out),
            Ok(LzwStatus::Ok) => {}
            // Input ran out before the end code: Go's reader reports io.ErrUnexpectedEOF.
            Ok(LzwStatus::NoProgress) => return Err(Error::Lzw),
            Err(_) => return Err(Error::Lzw),
        }
    }
}

/// Encodes `[9][compress{Algo: 0, Buf: lzw(inner)}]`, memberlist's `compressPayload`.
pub(crate) fn encode_compressed(out: &mut Vec<u8>, inner: &[u8]) {
    out.push(crate::MessageType::Compress as u8);
    msgpack::write_map_len(out, 2);
    msgpack::field_uint(out, "Algo", u64::from(LZW_ALGORITHM));
    msgpack::write_raw(out, b"Buf");
    msgpack::write_bytes_or_nil(out, &lzw_compress(inner));
}

/// Decodes a `compress{Algo, Buf}` body (after the type byte) and decompresses `Buf`.
pub(crate) fn decode_compressed(r: &mut Reader<'_>, limit: usize) -> Result<Vec<u8>, Error> {
    let (mut algo, mut buf): (u64, &[u8]) = (0, &[]);
    for _ in 0..r.map_len("compress")? {
        match r.raw("field name")? {
            b"Algo" => algo = r.uint("Algo")?,
            b"Buf" => buf = r.raw("Buf")?,
            _ => r.skip()?,
        }
    }
    if algo != u64::from(LZW_ALGORITHM) {
        return Err(Error::CompressionAlgorithm(algo));
    }
    lzw_decompress(buf, limit)
}
