//! Unsigned LEB128 varints, the one implementation every layer uses: seven bits per byte, least
//! significant group first, high bit set on every byte but the last. Only the shortest encoding
//! of a value is accepted, so every value has exactly one encoding (the same bytes postcard
//! writes for its unsigned integers).

use crate::error::VarintError;

/// The longest encoding of a `u64`.
pub const MAX_LEN: usize = 10;

/// How many bytes `value` takes.
#[must_use]
pub const fn encoded_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes a message of `len` bytes costs inside a compound datagram: its LEB128 length prefix,
/// the `overhead` bytes the embedder writes in front of every message (a channel tag, say), and
/// the message itself.
#[must_use]
pub const fn packed_len(len: usize, overhead: usize) -> usize {
    len + encoded_len(len as u64) + overhead
}

/// Appends the encoding of `value` to `out`.
pub fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads the varint at the start of `bytes`: the value and how many bytes it used.
///
/// # Errors
/// [`VarintError::Truncated`] when the bytes end inside it, [`VarintError::Overlong`] for an
/// encoding longer than the shortest one, [`VarintError::Overflow`] for a value past `u64::MAX`.
pub fn get(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value = 0u64;
    for i in 0..MAX_LEN {
        let Some(&byte) = bytes.get(i) else {
            return Err(VarintError::Truncated);
        };
        // The tenth byte may only carry the top bit of a u64.
        if i == MAX_LEN - 1 && byte > 1 {
            return Err(VarintError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // A final zero group after other groups is an over-long encoding.
            if byte == 0 && i > 0 {
                return Err(VarintError::Overlong);
            }
            return Ok((value, i + 1));
        }
    }
    Err(VarintError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            assert_eq!(get(&out), Ok((value, out.len())), "value {value}");
        }
    }

    #[test]
    fn over_long_encodings_are_rejected() {
        assert_eq!(get(&[0x80, 0x00]), Err(VarintError::Overlong));
        assert_eq!(get(&[0x81, 0x80, 0x00]), Err(VarintError::Overlong));
    }

    #[test]
    fn values_past_u64_are_rejected() {
        let mut bytes = vec![0xff; 9];
        bytes.push(0x02);
        assert_eq!(get(&bytes), Err(VarintError::Overflow));
        assert_eq!(get(&[0xff; 11]), Err(VarintError::Overflow));
    }

    #[test]
    fn a_varint_cut_short_is_truncated() {
        assert_eq!(get(&[0xff, 0xff]), Err(VarintError::Truncated));
        assert_eq!(get(&[]), Err(VarintError::Truncated));
    }

    #[test]
    fn packed_len_adds_the_overhead_and_a_leb128_length() {
        assert_eq!(packed_len(0, 1), 2);
        assert_eq!(packed_len(127, 1), 129);
        assert_eq!(packed_len(128, 1), 131);
        assert_eq!(packed_len(16_384, 0), 16_387);
    }

    proptest! {
        #[test]
        fn the_encoding_is_postcards(value: u64) {
            let mut ours = Vec::new();
            put(&mut ours, value);
            prop_assert_eq!(get(&ours), Ok((value, ours.len())));
            prop_assert_eq!(ours.len(), encoded_len(value));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes: Vec<u8>) {
            if let Ok((value, used)) = get(&bytes) {
                let mut again = Vec::new();
                put(&mut again, value);
                prop_assert_eq!(&bytes[..used], &again[..]);
            }
        }
    }
}
