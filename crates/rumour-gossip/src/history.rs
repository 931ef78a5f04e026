//! The message history: the last changes sent and received, within a byte budget, for the
//! status page (dskit's `message-history-buffer-bytes`).

use std::collections::VecDeque;

use bytes::Bytes;
use rumour_ring::Timestamp;

use crate::store::Version;

/// Bytes a record costs besides its message, key, codec and entry names.
const RECORD_OVERHEAD: usize = 64;

/// One change sent or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRecord {
    /// A number increasing over both histories.
    pub id: u64,
    /// When (wall time).
    pub at: Timestamp,
    /// The key.
    pub key: String,
    /// The codec id of the value.
    pub codec: String,
    /// Encoded size of the value, in bytes (0: the change carried only the marker).
    pub value_len: usize,
    /// The key's version after the change (`Version(0)`: the change changed nothing).
    pub version_after: Version,
    /// Names of the entries the change carried.
    pub changes: Vec<String>,
    /// The encoded message.
    pub message: Bytes,
}

impl HistoryRecord {
    fn cost(&self) -> usize {
        RECORD_OVERHEAD
            + self.message.len()
            + self.key.len()
            + self.codec.len()
            + self.changes.iter().map(String::len).sum::<usize>()
    }
}

#[derive(Clone, Debug, Default)]
struct Buffer {
    records: VecDeque<HistoryRecord>,
    bytes: usize,
}

impl Buffer {
    fn push(&mut self, record: HistoryRecord, budget: usize) {
        let cost = record.cost();
        if cost > budget {
            return;
        }
        self.bytes += cost;
        self.records.push_back(record);
        while self.bytes > budget {
            let Some(old) = self.records.pop_front() else {
                break;
            };
            self.bytes -= old.cost();
        }
    }
}

/// Sent and received changes, each list holding at most `budget` bytes (0: off).
#[derive(Clone, Debug)]
pub struct MessageHistory {
    budget: usize,
    next_id: u64,
    sent: Buffer,
    received: Buffer,
}

impl MessageHistory {
    /// A history keeping `budget` bytes of each direction; 0 keeps nothing.
    #[must_use]
    pub fn new(budget: usize) -> Self {
        MessageHistory {
            budget,
            next_id: 1,
            sent: Buffer::default(),
            received: Buffer::default(),
        }
    }

    /// Whether the history records anything.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// The byte budget of each direction.
    #[must_use]
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Changes sent, oldest first.
    pub fn sent(&self) -> impl Iterator<Item = &HistoryRecord> {
        self.sent.records.iter()
    }

    /// Changes received, oldest first.
    pub fn received(&self) -> impl Iterator<Item = &HistoryRecord> {
        self.received.records.iter()
    }

    /// Forgets every record.
    pub fn clear(&mut self) {
        self.sent = Buffer::default();
        self.received = Buffer::default();
    }

    pub(crate) fn record(&mut self, sent: bool, mut record: HistoryRecord) {
        if !self.enabled() {
            return;
        }
        record.id = self.next_id;
        self.next_id += 1;
        let buffer = if sent {
            &mut self.sent
        } else {
            &mut self.received
        };
        buffer.push(record, self.budget);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, len: usize) -> HistoryRecord {
        HistoryRecord {
            id: 0,
            at: Timestamp(1),
            key: key.into(),
            codec: "c".into(),
            value_len: len,
            version_after: Version(1),
            changes: vec![],
            message: Bytes::from(vec![0; len]),
        }
    }

    #[test]
    fn the_oldest_records_leave_to_keep_within_the_budget() {
        let mut history = MessageHistory::new(3 * (RECORD_OVERHEAD + 100 + 3));
        for i in 0..5 {
            history.record(true, record(&format!("k{i}"), 100));
        }
        let keys: Vec<_> = history.sent().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["k2", "k3", "k4"]);
        assert_eq!(history.received().count(), 0);
        let ids: Vec<_> = history.sent().map(|r| r.id).collect();
        assert_eq!(ids, [3, 4, 5]);
    }

    #[test]
    fn a_zero_budget_records_nothing() {
        let mut history = MessageHistory::new(0);
        history.record(false, record("k", 1));
        assert_eq!(history.received().count(), 0);
        assert!(!history.enabled());
    }
}
