//! The crate's errors.

/// A varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The bytes ended inside the varint.
    #[error("varint cut short")]
    Truncated,
    /// The varint used more bytes than its value needs (every value has one encoding).
    #[error("over-long varint encoding")]
    Overlong,
    /// The value does not fit 64 bits.
    #[error("varint past u64::MAX")]
    Overflow,
}
