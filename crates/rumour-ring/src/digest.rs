//! A small stable 64-bit hash: the same bytes give the same digest on every platform, build and
//! process. Used for per-instance entry digests (pull-push reconciliation) and for the checksum
//! that closes every encoded ring.
//!
//! It is not cryptographic. Each step `h = rotl((h ^ w) * K, 29)` is a bijection of `h` for a
//! fixed word and of the word for a fixed `h`, so two inputs of the same length that differ in
//! one word always reach different internal states; the final avalanche spreads that difference
//! over all 64 bits.

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// An incremental stable hasher.
#[derive(Clone, Debug)]
pub(crate) struct Digest {
    state: u64,
    len: u64,
}

impl Digest {
    /// A hasher seeded with a domain tag, so different kinds of digests never coincide.
    pub(crate) fn new(domain: u64) -> Digest {
        Digest {
            state: domain ^ K,
            len: 0,
        }
    }

    /// Feeds one 64-bit word.
    pub(crate) fn word(&mut self, w: u64) {
        self.state = (self.state ^ w).wrapping_mul(K).rotate_left(29);
        self.len = self.len.wrapping_add(8);
    }

    /// Feeds bytes, eight at a time (the tail is zero-padded; the length is mixed in at the end).
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            self.state = (self.state ^ u64::from_le_bytes(w))
                .wrapping_mul(K)
                .rotate_left(29);
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut w = [0u8; 8];
            w[..tail.len()].copy_from_slice(tail);
            self.state = (self.state ^ u64::from_le_bytes(w))
                .wrapping_mul(K)
                .rotate_left(29);
        }
        self.len = self.len.wrapping_add(bytes.len() as u64);
    }

    /// Feeds a string, length first, so that `("ab", "c")` and `("a", "bc")` differ.
    pub(crate) fn str(&mut self, s: &str) {
        self.word(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    /// Feeds 32-bit values, two per word.
    pub(crate) fn u32s(&mut self, values: &[u32]) {
        self.word(values.len() as u64);
        let mut pairs = values.chunks_exact(2);
        for pair in &mut pairs {
            self.word(u64::from(pair[0]) | (u64::from(pair[1]) << 32));
        }
        if let [last] = pairs.remainder() {
            self.word(u64::from(*last));
        }
    }

    /// The digest of everything fed so far.
    pub(crate) fn finish(&self) -> u64 {
        // murmur3's fmix64 avalanche over the state and the length.
        let mut h = self.state ^ self.len.wrapping_mul(K);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The 32-bit checksum that closes an encoded ring.
pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    let mut digest = Digest::new(0x7269_6e67_2d63_6b73); // "ring-cks"
    digest.bytes(bytes);
    let h = digest.finish();
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_byte_change_changes_the_checksum() {
        let base: Vec<u8> = (0..=40u8).collect();
        let sum = checksum(&base);
        for i in 0..base.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut changed = base.clone();
                changed[i] ^= flip;
                assert_ne!(checksum(&changed), sum, "byte {i} flipped by {flip:#x}");
            }
        }
        assert_ne!(checksum(&base[..base.len() - 1]), sum);
    }

    #[test]
    fn strings_are_length_delimited() {
        let mut a = Digest::new(1);
        a.str("ab");
        a.str("c");
        let mut b = Digest::new(1);
        b.str("a");
        b.str("bc");
        assert_ne!(a.finish(), b.finish());
    }
}
