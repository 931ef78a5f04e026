//! Counters kept by a [`FrameCodec`](super::FrameCodec).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::FrameErrorKind;

/// A snapshot of a codec's counters: frames in and out, and frames dropped by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameStats {
    /// Datagram frames encoded.
    pub packets_encoded: u64,
    /// Stream frames encoded.
    pub streams_encoded: u64,
    /// Datagram frames decoded and accepted.
    pub packets_decoded: u64,
    /// Stream frames decoded and accepted.
    pub streams_decoded: u64,
    /// Messages delivered out of accepted frames (a compound datagram counts each message).
    pub messages_decoded: u64,
    /// Frames dropped because they ended early.
    pub dropped_truncated: u64,
    /// Frames dropped for a bad magic number.
    pub dropped_bad_magic: u64,
    /// Frames dropped for an unsupported protocol version.
    pub dropped_unsupported_version: u64,
    /// Frames dropped because they were malformed.
    pub dropped_malformed: u64,
    /// Frames dropped on a checksum mismatch.
    pub dropped_checksum: u64,
    /// Frames dropped because their cluster label was not ours.
    pub dropped_label_mismatch: u64,
    /// Frames dropped because they carried no cluster label and we require one.
    pub dropped_missing_label: u64,
    /// Frames dropped because a length was over a limit.
    pub dropped_over_limit: u64,
    /// Sealed frames dropped because this codec has no key.
    pub dropped_sealed: u64,
    /// Sealed frames dropped because no installed key opens them (wrong key, tampered, cut).
    pub dropped_not_authentic: u64,
    /// Plaintext frames dropped because only sealed frames are accepted.
    pub dropped_unsealed: u64,
    /// Datagram frames sealed with the primary key (included in `packets_encoded`).
    pub packets_sealed: u64,
    /// Stream frames sealed with the primary key (included in `streams_encoded`).
    pub streams_sealed: u64,
    /// Sealed frames opened (included in `packets_decoded` and `streams_decoded`).
    pub frames_opened: u64,
}

impl FrameStats {
    /// All frames dropped, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_truncated
            + self.dropped_bad_magic
            + self.dropped_unsupported_version
            + self.dropped_malformed
            + self.dropped_checksum
            + self.dropped_label_mismatch
            + self.dropped_missing_label
            + self.dropped_over_limit
            + self.dropped_sealed
            + self.dropped_not_authentic
            + self.dropped_unsealed
    }

    /// Frames dropped for the given reason.
    pub fn dropped(&self, kind: FrameErrorKind) -> u64 {
        match kind {
            FrameErrorKind::Truncated => self.dropped_truncated,
            FrameErrorKind::BadMagic => self.dropped_bad_magic,
            FrameErrorKind::UnsupportedVersion { .. } => self.dropped_unsupported_version,
            FrameErrorKind::Malformed => self.dropped_malformed,
            FrameErrorKind::ChecksumMismatch { .. } => self.dropped_checksum,
            FrameErrorKind::LabelMismatch => self.dropped_label_mismatch,
            FrameErrorKind::MissingLabel => self.dropped_missing_label,
            FrameErrorKind::OverLimit { .. } => self.dropped_over_limit,
            FrameErrorKind::Sealed => self.dropped_sealed,
            FrameErrorKind::NotAuthentic => self.dropped_not_authentic,
            FrameErrorKind::Unsealed => self.dropped_unsealed,
        }
    }
}

/// The live counters behind [`FrameStats`]: atomics, so the codec can count through `&self`.
#[derive(Debug, Default)]
pub(crate) struct FrameCounters {
    pub(crate) packets_encoded: AtomicU64,
    pub(crate) streams_encoded: AtomicU64,
    pub(crate) packets_decoded: AtomicU64,
    pub(crate) streams_decoded: AtomicU64,
    pub(crate) messages_decoded: AtomicU64,
    pub(crate) packets_sealed: AtomicU64,
    pub(crate) streams_sealed: AtomicU64,
    pub(crate) frames_opened: AtomicU64,
    dropped: [AtomicU64; DROP_REASONS],
}

const DROP_REASONS: usize = 11;

impl Clone for FrameCounters {
    /// The counts as they are now, in counters of their own.
    fn clone(&self) -> Self {
        let copy = |counter: &AtomicU64| AtomicU64::new(counter.load(Ordering::Relaxed));
        FrameCounters {
            packets_encoded: copy(&self.packets_encoded),
            streams_encoded: copy(&self.streams_encoded),
            packets_decoded: copy(&self.packets_decoded),
            streams_decoded: copy(&self.streams_decoded),
            messages_decoded: copy(&self.messages_decoded),
            packets_sealed: copy(&self.packets_sealed),
            streams_sealed: copy(&self.streams_sealed),
            frames_opened: copy(&self.frames_opened),
            dropped: std::array::from_fn(|i| copy(&self.dropped[i])),
        }
    }
}

const fn drop_index(kind: FrameErrorKind) -> usize {
    match kind {
        FrameErrorKind::Truncated => 0,
        FrameErrorKind::BadMagic => 1,
        FrameErrorKind::UnsupportedVersion { .. } => 2,
        FrameErrorKind::Malformed => 3,
        FrameErrorKind::ChecksumMismatch { .. } => 4,
        FrameErrorKind::LabelMismatch => 5,
        FrameErrorKind::MissingLabel => 6,
        FrameErrorKind::OverLimit { .. } => 7,
        FrameErrorKind::Sealed => 8,
        FrameErrorKind::NotAuthentic => 9,
        FrameErrorKind::Unsealed => 10,
    }
}

pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl FrameCounters {
    pub(crate) fn count_drop(&self, kind: FrameErrorKind) {
        bump(&self.dropped[drop_index(kind)], 1);
    }

    pub(crate) fn snapshot(&self) -> FrameStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let dropped = |i: usize| get(&self.dropped[i]);
        FrameStats {
            packets_encoded: get(&self.packets_encoded),
            streams_encoded: get(&self.streams_encoded),
            packets_decoded: get(&self.packets_decoded),
            streams_decoded: get(&self.streams_decoded),
            messages_decoded: get(&self.messages_decoded),
            dropped_truncated: dropped(0),
            dropped_bad_magic: dropped(1),
            dropped_unsupported_version: dropped(2),
            dropped_malformed: dropped(3),
            dropped_checksum: dropped(4),
            dropped_label_mismatch: dropped(5),
            dropped_missing_label: dropped(6),
            dropped_over_limit: dropped(7),
            dropped_sealed: dropped(8),
            dropped_not_authentic: dropped(9),
            dropped_unsealed: dropped(10),
            packets_sealed: get(&self.packets_sealed),
            streams_sealed: get(&self.streams_sealed),
            frames_opened: get(&self.frames_opened),
        }
    }
}
