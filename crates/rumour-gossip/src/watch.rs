//! Watches: notifications of changed keys that coalesce and never hold the machine up.
//!
//! A notification names a key, not a value: the watcher reads the key's current value when it
//! gets round to it, so however slow it is it always sees the latest value. A key changed again
//! before its notification was taken is not notified twice. A prefix watch holds at most
//! [`Config::watch_buffer`](crate::Config::watch_buffer) pending keys; past that, notifications
//! are dropped (and counted) and the watch is sent one [`Event::Lagged`] telling it to re-read
//! everything under its prefix. With a `notify_interval`, changed keys are collected and
//! notified once per interval (dskit's debounce).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Names one watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchId(pub u64);

/// What the machine reports through [`Gossip::poll_event`](crate::Gossip::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `key`, covered by `watch`, changed (or was deleted): read its current value with
    /// [`Gossip::get`](crate::Gossip::get).
    Changed {
        /// The watch.
        watch: WatchId,
        /// The key that changed.
        key: String,
    },
    /// `watch` lost `dropped` notifications because too many were pending: re-read every key
    /// under its prefix.
    Lagged {
        /// The watch.
        watch: WatchId,
        /// Notifications lost since the last `Lagged`.
        dropped: u64,
    },
}

#[derive(Clone, Debug)]
enum Target {
    Key(String),
    Prefix(String),
}

impl Target {
    fn covers(&self, key: &str) -> bool {
        match self {
            Target::Key(k) => k == key,
            Target::Prefix(prefix) => key.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Clone, Debug)]
struct Watch {
    target: Target,
    pending: usize,
    lagged: u64,
    lag_queued: bool,
}

#[derive(Clone, Debug)]
enum Queued {
    Changed(WatchId, String),
    Lagged(WatchId),
}

/// Every watch, and the notifications waiting to be polled.
#[derive(Clone, Debug)]
pub(crate) struct Watchers {
    watches: BTreeMap<WatchId, Watch>,
    next_id: u64,
    queue: VecDeque<Queued>,
    pending: BTreeSet<(WatchId, String)>,
    debounced: BTreeSet<String>,
    next_flush: Option<Instant>,
    notify_interval: Duration,
    buffer: usize,
    dropped: u64,
    coalesced: u64,
}

impl Watchers {
    pub(crate) fn new(notify_interval: Duration, buffer: usize) -> Self {
        Watchers {
            watches: BTreeMap::new(),
            next_id: 1,
            queue: VecDeque::new(),
            pending: BTreeSet::new(),
            debounced: BTreeSet::new(),
            next_flush: None,
            notify_interval,
            buffer: buffer.max(1),
            dropped: 0,
            coalesced: 0,
        }
    }

    fn add(&mut self, target: Target) -> WatchId {
        let id = WatchId(self.next_id);
        self.next_id += 1;
        self.watches.insert(
            id,
            Watch {
                target,
                pending: 0,
                lagged: 0,
                lag_queued: false,
            },
        );
        id
    }

    pub(crate) fn watch_key(&mut self, key: &str) -> WatchId {
        self.add(Target::Key(key.to_owned()))
    }

    pub(crate) fn watch_prefix(&mut self, prefix: &str) -> WatchId {
        self.add(Target::Prefix(prefix.to_owned()))
    }

    /// Stops a watch; its pending notifications are discarded. False if it did not exist.
    pub(crate) fn unwatch(&mut self, id: WatchId) -> bool {
        self.pending.retain(|(watch, _)| *watch != id);
        self.watches.remove(&id).is_some()
    }

    /// `key` changed at `now`.
    pub(crate) fn changed(&mut self, now: Instant, key: &str) {
        if self.watches.is_empty() {
            return;
        }
        if self.notify_interval.is_zero() {
            self.dispatch(key);
        } else {
            self.debounced.insert(key.to_owned());
            self.next_flush.get_or_insert(now + self.notify_interval);
        }
    }

    fn dispatch(&mut self, key: &str) {
        for (&id, watch) in &mut self.watches {
            if !watch.target.covers(key) {
                continue;
            }
            if self.pending.contains(&(id, key.to_owned())) {
                self.coalesced += 1;
            } else if watch.pending >= self.buffer {
                self.dropped += 1;
                watch.lagged += 1;
                if !watch.lag_queued {
                    watch.lag_queued = true;
                    self.queue.push_back(Queued::Lagged(id));
                }
            } else {
                watch.pending += 1;
                self.pending.insert((id, key.to_owned()));
                self.queue.push_back(Queued::Changed(id, key.to_owned()));
            }
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.next_flush.is_some_and(|at| at <= now) {
            self.next_flush = None;
            for key in std::mem::take(&mut self.debounced) {
                self.dispatch(&key);
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_flush
    }

    pub(crate) fn poll(&mut self) -> Option<Event> {
        while let Some(queued) = self.queue.pop_front() {
            match queued {
                Queued::Changed(id, key) => {
                    if !self.pending.remove(&(id, key.clone())) {
                        continue; // unwatched since
                    }
                    if let Some(watch) = self.watches.get_mut(&id) {
                        watch.pending -= 1;
                        return Some(Event::Changed { watch: id, key });
                    }
                }
                Queued::Lagged(id) => {
                    if let Some(watch) = self.watches.get_mut(&id) {
                        watch.lag_queued = false;
                        let dropped = std::mem::take(&mut watch.lagged);
                        return Some(Event::Lagged { watch: id, dropped });
                    }
                }
            }
        }
        None
    }

    /// Notifications dropped because a prefix watch's buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Notifications merged into one still pending.
    pub(crate) fn coalesced(&self) -> u64 {
        self.coalesced
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
    use super::*;

    fn drain(watchers: &mut Watchers) -> Vec<Event> {
        std::iter::from_fn(|| watchers.poll()).collect()
    }

    #[test]
    fn a_key_changed_twice_before_polling_is_notified_once() {
        let now = Instant::now();
        let mut w = Watchers::new(Duration::ZERO, 4);
        let id = w.watch_key("ring");
        w.changed(now, "ring");
        w.changed(now, "ring");
        w.changed(now, "other");
        let events = drain(&mut w);
        assert_eq!(
            events,
            [Event::Changed {
                watch: id,
                key: "ring".into()
            }]
        );
        assert_eq!(w.coalesced(), 1);
        w.changed(now, "ring");
        assert_eq!(
            drain(&mut w).len(),
            1,
            "a new change after polling is notified"
        );
    }

    #[test]
    fn a_full_prefix_watch_drops_and_then_reports_it_lagged() {
        let now = Instant::now();
        let mut w = Watchers::new(Duration::ZERO, 2);
        let id = w.watch_prefix("a/");
        for key in ["a/1", "a/2", "a/3", "a/4", "b/1"] {
            w.changed(now, key);
        }
        let events = drain(&mut w);
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[2],
            Event::Lagged {
                watch: id,
                dropped: 2
            }
        );
        assert_eq!(w.dropped(), 2);
    }

    #[test]
    fn debounced_changes_wait_for_the_notify_interval() {
        let now = Instant::now();
        let mut w = Watchers::new(Duration::from_millis(100), 8);
        let id = w.watch_prefix("");
        w.changed(now, "x");
        w.changed(now + Duration::from_millis(50), "x");
        assert_eq!(w.poll(), None);
        assert_eq!(w.poll_timeout(), Some(now + Duration::from_millis(100)));
        w.handle_timeout(now + Duration::from_millis(100));
        assert_eq!(
            drain(&mut w),
            [Event::Changed {
                watch: id,
                key: "x".into()
            }]
        );
        assert_eq!(w.poll_timeout(), None);
    }

    #[test]
    fn unwatch_discards_pending_notifications() {
        let now = Instant::now();
        let mut w = Watchers::new(Duration::ZERO, 8);
        let id = w.watch_key("k");
        w.changed(now, "k");
        assert!(w.unwatch(id));
        assert!(!w.unwatch(id));
        assert_eq!(w.poll(), None);
    }
}
