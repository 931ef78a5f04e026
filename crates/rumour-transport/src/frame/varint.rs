//! Unsigned LEB128 varints, as used for message lengths inside a compound datagram: seven bits
//! per byte, least significant group first, high bit set on every byte but the last. Only the
//! shortest encoding of a value is accepted, so every value has exactly one encoding.

use crate::error::{FrameError, FrameErrorKind};

/// The longest encoding of a `u64`.
pub(crate) const MAX_LEN: usize = 10;

/// How many bytes `value` takes.
pub(crate) const fn encoded_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends the encoding of `value` to `out`.
pub(crate) fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint starting at `at`; returns the value and the offset just after it.
/// `what` names the field in errors.
pub(crate) fn get(bytes: &[u8], at: usize, what: &'static str) -> Result<(u64, usize), FrameError> {
    let mut value = 0u64;
    for i in 0..MAX_LEN {
        let Some(&byte) = bytes.get(at + i) else {
            return Err(FrameError::new(what, at, FrameErrorKind::Truncated));
        };
        let group = u64::from(byte & 0x7f);
        // The tenth byte may only carry the top bit of a u64.
        if i == MAX_LEN - 1 && byte > 1 {
            return Err(FrameError::new(what, at, FrameErrorKind::Malformed));
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            // A final zero group after other groups is an over-long encoding.
            if byte == 0 && i > 0 {
                return Err(FrameError::new(what, at, FrameErrorKind::Malformed));
            }
            return Ok((value, at + i + 1));
        }
    }
    Err(FrameError::new(what, at, FrameErrorKind::Malformed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_boundary_value_round_trips_with_the_predicted_length() {
        let mut values = vec![0, 1, u64::MAX];
        for shift in 1..64 {
            values.extend([(1u64 << shift) - 1, 1u64 << shift]);
        }
        for value in values {
            let mut out = Vec::new();
            put(&mut out, value);
            assert_eq!(out.len(), encoded_len(value), "length of {value}");
            assert_eq!(get(&out, 0, "v"), Ok((value, out.len())), "value {value}");
        }
    }

    #[test]
    fn over_long_encodings_are_rejected() {
        let err = get(&[0x80, 0x00], 0, "v").unwrap_err();
        assert_eq!(err.kind, FrameErrorKind::Malformed);
        let err = get(&[0x81, 0x80, 0x00], 0, "v").unwrap_err();
        assert_eq!(err.kind, FrameErrorKind::Malformed);
    }

    #[test]
    fn values_past_u64_are_rejected() {
        let mut bytes = vec![0xff; 9];
        bytes.push(0x02);
        assert_eq!(
            get(&bytes, 0, "v").unwrap_err().kind,
            FrameErrorKind::Malformed
        );
        let bytes = vec![0xff; 11];
        assert_eq!(
            get(&bytes, 0, "v").unwrap_err().kind,
            FrameErrorKind::Malformed
        );
    }

    #[test]
    fn a_varint_cut_short_is_truncated_at_its_start() {
        let err = get(&[7, 0xff, 0xff], 1, "len").unwrap_err();
        assert_eq!(err, FrameError::new("len", 1, FrameErrorKind::Truncated));
    }
}
