//! The MessagePack dialect of hashicorp/go-msgpack's `MsgpackHandle{}` as memberlist uses it.
//!
//! Markers and numbers go through `rmp`. What `rmp` cannot say is the *old* MessagePack spec that
//! go-msgpack writes with `WriteExt = false`: strings and `[]byte` alike are "raw" (fixstr, then
//! `0xda` str16, then `0xdb` str32) and there is no `str8`/`bin` form. `rmp::encode::write_str_len`
//! would write `str8` for 32–255 bytes, which Go's old-spec writer never does, so [`write_raw`]
//! picks the marker itself for lengths of 32 and over. Structs are maps keyed by the Go field name,
//! **sorted by name** (go-msgpack encodes a struct to a map from its sorted field list), and
//! `omitempty` fields are left out when zero. A nil `[]byte` is written as `nil`.
//!
//! Reading is lenient the way go-msgpack's decoder is: any integer width, `str8`/`bin*` as well as
//! raw, `nil` for an empty byte string, fields in any order, unknown fields skipped. Every length
//! is checked against the bytes that remain before anything is allocated.

use rmp::Marker;

use crate::Error;

/// How deep [`Reader::skip`] follows an unknown field's nested maps and arrays.
const MAX_SKIP_DEPTH: u8 = 16;

/// Writing into a `Vec` cannot fail; `rmp` still returns a `Result`.
fn infallible<T, E>(result: Result<T, E>) {
    let _ = result.ok();
}

/// Writes an unsigned integer in go-msgpack's smallest form (positive fixint, u8, u16, u32, u64).
pub(crate) fn write_uint(out: &mut Vec<u8>, value: u64) {
    infallible(rmp::encode::write_uint(out, value));
}

/// Writes a bool.
pub(crate) fn write_bool(out: &mut Vec<u8>, value: bool) {
    infallible(rmp::encode::write_bool(out, value));
}

/// Writes a map header for `len` fields.
pub(crate) fn write_map_len(out: &mut Vec<u8>, len: u32) {
    infallible(rmp::encode::write_map_len(out, len));
}

/// Writes an old-spec raw string (a Go `string` or `[]byte`).
pub(crate) fn write_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 32 {
        // fixstr: the one form rmp and go-msgpack agree on below 32 bytes.
        infallible(rmp::encode::write_str_len(out, len as u32));
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(Marker::Str16.to_u8());
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(Marker::Str32.to_u8());
        // Callers bound every message far below 4 GiB (memberlist's own cap is 20 MiB).
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// Writes a Go `[]byte` that may be nil: empty is written as `nil`, as a nil slice is in Go.
pub(crate) fn write_bytes_or_nil(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        infallible(rmp::encode::write_nil(out));
    } else {
        write_raw(out, bytes);
    }
}

/// Writes one `key: raw` map entry.
pub(crate) fn field_raw(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    write_raw(out, key.as_bytes());
    write_raw(out, value);
}

/// Writes one `key: uint` map entry.
pub(crate) fn field_uint(out: &mut Vec<u8>, key: &str, value: u64) {
    write_raw(out, key.as_bytes());
    write_uint(out, value);
}

/// A bounded cursor over MessagePack bytes.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Takes `n` bytes, or fails with [`Error::Truncated`] without allocating.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, Error> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn marker(&mut self) -> Result<(Marker, u8), Error> {
        let b = self.byte()?;
        Ok((Marker::from_u8(b), b))
    }

    /// Reads any MessagePack integer as an `i128` (so every u64 and i64 fits).
    pub(crate) fn int(&mut self, what: &'static str) -> Result<i128, Error> {
        let (marker, b) = self.marker()?;
        Ok(match marker {
            Marker::FixPos(v) => i128::from(v),
            Marker::FixNeg(v) => i128::from(v),
            Marker::U8 => i128::from(self.be(1)?),
            Marker::U16 => i128::from(self.be(2)?),
            Marker::U32 => i128::from(self.be(4)?),
            Marker::U64 => i128::from(self.be(8)?),
            Marker::I8 => i128::from(self.be(1)? as u8 as i8),
            Marker::I16 => i128::from(self.be(2)? as u16 as i16),
            Marker::I32 => i128::from(self.be(4)? as u32 as i32),
            Marker::I64 => i128::from(self.be(8)? as i64),
            Marker::Null => 0,
            _ => return Err(Error::Marker { what, marker: b }),
        })
    }

    /// Reads an integer that must fit `T`.
    pub(crate) fn uint<T: TryFrom<i128>>(&mut self, what: &'static str) -> Result<T, Error> {
        T::try_from(self.int(what)?).map_err(|_| Error::OutOfRange(what))
    }

    /// Reads a bool (`nil` reads as false, as Go's zero value).
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, Error> {
        let (marker, b) = self.marker()?;
        match marker {
            Marker::True => Ok(true),
            Marker::False | Marker::Null => Ok(false),
            _ => Err(Error::Marker { what, marker: b }),
        }
    }

    /// Reads a raw string or byte string; `nil` reads as empty.
    pub(crate) fn raw(&mut self, what: &'static str) -> Result<&'a [u8], Error> {
        let (marker, b) = self.marker()?;
        let len = match marker {
            Marker::Null => 0,
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 | Marker::Bin8 => self.be(1)? as usize,
            Marker::Str16 | Marker::Bin16 => self.be(2)? as usize,
            Marker::Str32 | Marker::Bin32 => {
                usize::try_from(self.be(4)?).map_err(|_| Error::OutOfRange(what))?
            }
            _ => return Err(Error::Marker { what, marker: b }),
        };
        self.take(len)
    }

    /// Reads a string field into an owned `String`, replacing invalid UTF-8 (Go strings are
    /// byte strings; memberlist's node names are UTF-8 in practice).
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, Error> {
        Ok(String::from_utf8_lossy(self.raw(what)?).into_owned())
    }

    /// Reads a map header (`nil` reads as an empty map).
    pub(crate) fn map_len(&mut self, what: &'static str) -> Result<usize, Error> {
        let (marker, b) = self.marker()?;
        match marker {
            Marker::Null => Ok(0),
            Marker::FixMap(n) => Ok(usize::from(n)),
            Marker::Map16 => Ok(self.be(2)? as usize),
            Marker::Map32 => usize::try_from(self.be(4)?).map_err(|_| Error::OutOfRange(what)),
            _ => Err(Error::Marker { what, marker: b }),
        }
    }

    /// Skips one value of any kind (an unknown field), following at most [`MAX_SKIP_DEPTH`] levels.
    pub(crate) fn skip(&mut self) -> Result<(), Error> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: u8) -> Result<(), Error> {
        if depth >= MAX_SKIP_DEPTH {
            return Err(Error::TooDeep);
        }
        let (marker, b) = self.marker()?;
        let (bytes, items) = match marker {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                (0, 0)
            }
            Marker::U8 | Marker::I8 => (1, 0),
            Marker::U16 | Marker::I16 => (2, 0),
            Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
            Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
            Marker::FixStr(n) => (usize::from(n), 0),
            Marker::Str8 | Marker::Bin8 => (self.be(1)? as usize, 0),
            Marker::Str16 | Marker::Bin16 => (self.be(2)? as usize, 0),
            Marker::Str32 | Marker::Bin32 => (self.be(4)? as usize, 0),
            Marker::FixExt1 => (2, 0),
            Marker::FixExt2 => (3, 0),
            Marker::FixExt4 => (5, 0),
            Marker::FixExt8 => (9, 0),
            Marker::FixExt16 => (17, 0),
            Marker::Ext8 => (self.be(1)? as usize + 1, 0),
            Marker::Ext16 => (self.be(2)? as usize + 1, 0),
            Marker::Ext32 => (self.be(4)? as usize + 1, 0),
            Marker::FixArray(n) => (0, u64::from(n)),
            Marker::Array16 => (0, self.be(2)?),
            Marker::Array32 => (0, self.be(4)?),
            Marker::FixMap(n) => (0, 2 * u64::from(n)),
            Marker::Map16 => (0, 2 * self.be(2)?),
            Marker::Map32 => (0, 2 * self.be(4)?),
            Marker::Reserved => {
                return Err(Error::Marker {
                    what: "a value",
                    marker: b,
                });
            }
        };
        self.take(bytes)?;
        // Each item is at least one byte, so a count larger than the input fails here, early.
        if items > self.rest().len() as u64 {
            return Err(Error::Truncated);
        }
        for _ in 0..items {
            self.skip_at(depth + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_use_the_old_spec_markers_like_go() {
        for (len, head) in [
            (0usize, vec![0xa0]),
            (31, vec![0xbf]),
            (32, vec![0xda, 0x00, 0x20]),
            (255, vec![0xda, 0x00, 0xff]),
            (65_536, vec![0xdb, 0x00, 0x01, 0x00, 0x00]),
        ] {
            let mut out = Vec::new();
            write_raw(&mut out, &vec![b'x'; len]);
            assert_eq!(out[..head.len()], head[..], "length {len}");
            assert_eq!(out.len(), head.len() + len);
            let mut r = Reader::new(&out);
            assert_eq!(r.raw("x").map(<[u8]>::len), Ok(len));
        }
    }

    #[test]
    fn integers_take_go_msgpack_smallest_forms() {
        for (value, bytes) in [
            (0u64, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0xcc, 0x80]),
            (65_535, vec![0xcd, 0xff, 0xff]),
            (65_536, vec![0xce, 0x00, 0x01, 0x00, 0x00]),
        ] {
            let mut out = Vec::new();
            write_uint(&mut out, value);
            assert_eq!(out, bytes, "{value}");
            assert_eq!(Reader::new(&out).int("x"), Ok(i128::from(value)));
        }
        // Go writes a negative int this way; a count or port must then be out of range.
        assert_eq!(Reader::new(&[0xd0, 0xdf]).int("x"), Ok(-33));
        assert_eq!(
            Reader::new(&[0xff]).uint::<u16>("Port"),
            Err(Error::OutOfRange("Port"))
        );
    }

    #[test]
    fn skipping_refuses_counts_larger_than_the_input_and_deep_nesting() {
        assert_eq!(
            Reader::new(&[0xdd, 0xff, 0xff, 0xff, 0xff]).skip(),
            Err(Error::Truncated)
        );
        assert_eq!(Reader::new(&[0x91; 40]).skip(), Err(Error::TooDeep));
    }
}
