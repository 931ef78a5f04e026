//! The stable hash: FNV-1a, 64 bits, defined here byte for byte so that every build, process
//! and platform computes the same digests. Pull-push compares these digests across nodes; it is
//! not a defence against an adversary choosing inputs (checksums of frames use CRC-32 from
//! `crc32fast`).

/// An FNV-1a (64-bit) hasher. Feed it with [`StableHasher::write`] (or as a
/// [`std::hash::Hasher`]), read it with [`StableHasher::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StableHasher(u64);

impl StableHasher {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;

    /// A hasher that has seen nothing.
    #[must_use]
    pub const fn new() -> StableHasher {
        StableHasher(Self::OFFSET)
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// Feeds a `u64` as its eight little-endian bytes.
    pub fn write_u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    /// Feeds a string, its length first, so that `("ab", "c")` and `("a", "bc")` differ.
    pub fn write_str(&mut self, s: &str) {
        self.write_u64(s.len() as u64);
        self.write(s.as_bytes());
    }

    /// The hash of everything fed so far.
    #[must_use]
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher::new()
    }
}

impl std::hash::Hasher for StableHasher {
    fn finish(&self) -> u64 {
        StableHasher::finish(self)
    }

    fn write(&mut self, bytes: &[u8]) {
        StableHasher::write(self, bytes);
    }
}

/// MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over every output
/// bit, for hashes whose low bits barely differ between similar inputs (FNV-1a of `node-1`
/// and `node-2`) or that are built from raw words.
#[must_use]
pub fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The stable hash of `bytes`.
#[must_use]
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hasher = StableHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_matches_the_published_fnv1a_test_vectors() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn strings_are_length_delimited() {
        let (mut a, mut b) = (StableHasher::new(), StableHasher::new());
        a.write_str("ab");
        a.write_str("c");
        b.write_str("a");
        b.write_str("bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn feeding_in_pieces_equals_feeding_at_once() {
        let mut hasher = StableHasher::new();
        hasher.write(b"foo");
        hasher.write(b"bar");
        assert_eq!(hasher.finish(), stable_hash(b"foobar"));
    }
}
