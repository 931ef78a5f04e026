//! A bounded FIFO that drops its oldest item when full and counts the drops: a machine's
//! outputs (transmits, events) wait here until the embedder polls, and a slow embedder never
//! blocks the protocol.

use std::collections::VecDeque;

/// Capacity kept once a queue drains; a burst beyond it is given back.
const RETAINED: usize = 8;

/// A bounded FIFO that drops the oldest item when full.
#[derive(Clone, Debug)]
pub struct BoundedQueue<T> {
    capacity: usize,
    items: VecDeque<T>,
    dropped: u64,
}

impl<T> BoundedQueue<T> {
    /// An empty queue holding at most `capacity` items (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> BoundedQueue<T> {
        BoundedQueue {
            capacity: capacity.max(1),
            items: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Appends `item`, dropping (and counting) the oldest item when the queue is full.
    pub fn push(&mut self, item: T) {
        if self.items.len() >= self.capacity {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
    }

    /// Takes the oldest item. A drained queue gives back the memory of a burst.
    pub fn pop(&mut self) -> Option<T> {
        let item = self.items.pop_front();
        if item.is_none() && self.items.capacity() > RETAINED {
            // A burst (a join's thousand member events) must not pin its memory forever.
            self.items.shrink_to(RETAINED);
        }
        item
    }

    /// Items dropped because the queue was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Items queued now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let mut q = BoundedQueue::new(2);
        for item in 0..3 {
            q.push(item);
        }
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), None);
    }
}
