//! Errors of the ring crate.

/// What went wrong in the ring crate, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value of one type was merged with a value of another.
    #[error("cannot merge a `{found}` value into a `{expected}` value")]
    CodecMismatch {
        /// The codec id of the receiving value.
        expected: &'static str,
        /// The codec id of the value offered.
        found: &'static str,
    },
    /// Bytes could not be decoded.
    #[error("cannot decode {what} at byte {offset}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Byte offset in the input where decoding failed.
        offset: usize,
        /// Why it failed.
        reason: &'static str,
    },
}
