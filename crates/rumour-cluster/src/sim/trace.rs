//! A running hash of everything that happens in a run, to prove that a seed replays exactly.

/// FNV-1a, 64 bits: stable across platforms and Rust versions, unlike `DefaultHasher`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    /// Folds bytes into the hash.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Folds a number into the hash.
    pub fn write_u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    /// The hash so far.
    #[must_use]
    pub fn value(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_inputs_hash_equal_and_order_matters() {
        let (mut a, mut b, mut c) = (
            TraceHash::default(),
            TraceHash::default(),
            TraceHash::default(),
        );
        a.write(b"ab");
        b.write(b"ab");
        c.write(b"ba");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
