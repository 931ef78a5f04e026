//! Joining with retries, as protocol: the [`Node`](crate::Node) keeps the attempts, the
//! back-off and the outcome on its own timer, so the tokio driver and the simulator run the
//! same join. Only resolving seed names stays in the driver (it is I/O).
//!
//! # Contract
//!
//! - [`Node::start_join`](crate::Node::start_join) makes the first attempt at once (a
//!   full-state exchange with every seed) and succeeds as soon as the node sees
//!   [`JoinSettings::min_joins`] other live members.
//! - An attempt that falls short is retried after a back-off that doubles from
//!   [`JoinSettings::min_backoff`] to [`JoinSettings::max_backoff`], at most
//!   [`JoinSettings::max_retries`] times; then the join has failed ([`JoinStatus::Failed`]).
//!   A failed join changes nothing else: the node keeps running and anyone may still join it.
//! - The seeds of the next attempts can be replaced meanwhile
//!   ([`Node::set_join_seeds`](crate::Node::set_join_seeds)): the driver resolves names again
//!   after every attempt.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How a node joins its seeds (dskit's `-memberlist.*-join-*` flags, same defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinSettings {
    /// First wait between two join attempts (`-memberlist.min-join-backoff`, 1 s).
    pub min_backoff: Duration,
    /// Longest wait between two join attempts (`-memberlist.max-join-backoff`, 1 min).
    pub max_backoff: Duration,
    /// Attempts after the first before the join counts as failed
    /// (`-memberlist.max-join-retries`, 10).
    pub max_retries: u32,
    /// Fail [`Builder::build`](crate::Builder::build) if the join fails
    /// (`-memberlist.abort-if-join-fails`, off). The node only reports the outcome; the
    /// driver acts on it.
    pub abort_if_join_fails: bool,
    /// Other live members the node must see for the join to succeed
    /// (`-memberlist.abort-if-fast-join-fails-min-nodes`, 1).
    pub min_joins: usize,
}

impl Default for JoinSettings {
    fn default() -> JoinSettings {
        JoinSettings {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_retries: 10,
            abort_if_join_fails: false,
            min_joins: 1,
        }
    }
}

/// Where a node's join stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinStatus {
    /// No join was started.
    Idle,
    /// Attempts were made (the first included) and the node does not yet see enough members.
    Joining {
        /// Attempts made so far.
        attempts: u32,
    },
    /// The node saw `min_joins` other live members after this many attempts.
    Joined {
        /// Attempts made.
        attempts: u32,
    },
    /// Every attempt fell short.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Other live members seen at the end (fewer than `min_joins`).
        seen: usize,
    },
}

impl JoinStatus {
    /// Attempts made so far (0 when idle).
    pub fn attempts(self) -> u32 {
        match self {
            JoinStatus::Idle => 0,
            JoinStatus::Joining { attempts }
            | JoinStatus::Joined { attempts }
            | JoinStatus::Failed { attempts, .. } => attempts,
        }
    }

    /// Whether the join is over (joined or failed).
    pub fn is_done(self) -> bool {
        matches!(self, JoinStatus::Joined { .. } | JoinStatus::Failed { .. })
    }
}

/// A join in progress: what the node needs to retry it.
#[derive(Clone, Debug)]
pub(crate) struct Joining {
    pub(crate) seeds: Vec<SocketAddr>,
    settings: JoinSettings,
    attempts: u32,
    /// The wait after the current attempt.
    backoff: Duration,
    /// When the current attempt is judged (and maybe retried).
    pub(crate) next: Instant,
}

/// What the node does next about a join in progress.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing yet.
    Wait,
    /// Send a join to the seeds now.
    Attempt,
    /// The join is over.
    Done(JoinStatus),
}

impl Joining {
    /// A join whose first attempt is made now.
    pub(crate) fn new(now: Instant, seeds: Vec<SocketAddr>, settings: JoinSettings) -> Joining {
        let backoff = settings.min_backoff;
        Joining {
            seeds,
            attempts: 1,
            next: now + backoff,
            backoff,
            settings,
        }
    }

    pub(crate) fn status(&self) -> JoinStatus {
        JoinStatus::Joining {
            attempts: self.attempts,
        }
    }

    /// The next step, given how many other live members the node sees now.
    pub(crate) fn step(&mut self, now: Instant, seen: usize) -> Step {
        if seen >= self.settings.min_joins {
            return Step::Done(JoinStatus::Joined {
                attempts: self.attempts,
            });
        }
        if now < self.next {
            return Step::Wait;
        }
        if self.attempts > self.settings.max_retries {
            return Step::Done(JoinStatus::Failed {
                attempts: self.attempts,
                seen,
            });
        }
        self.attempts += 1;
        self.backoff = (self.backoff * 2).min(self.settings.max_backoff);
        self.next = now + self.backoff;
        Step::Attempt
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

    use super::*;

    fn quick(max_retries: u32) -> JoinSettings {
        JoinSettings {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retries,
            ..JoinSettings::default()
        }
    }

    #[test]
    fn attempts_back_off_doubling_up_to_the_cap_then_the_join_fails() {
        let start = Instant::now();
        let mut joining = Joining::new(start, vec![], quick(3));
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(joining.step(at(99), 0), Step::Wait);
        assert_eq!(joining.step(at(100), 0), Step::Attempt); // second, 200 ms later
        assert_eq!(joining.step(at(299), 0), Step::Wait);
        assert_eq!(joining.step(at(300), 0), Step::Attempt); // third, 300 ms (capped)
        assert_eq!(joining.step(at(600), 0), Step::Attempt); // fourth
        assert_eq!(
            joining.step(at(900), 0),
            Step::Done(JoinStatus::Failed {
                attempts: 4,
                seen: 0
            })
        );
    }

    #[test]
    fn the_join_succeeds_once_min_joins_members_are_seen() {
        let start = Instant::now();
        let mut joining = Joining::new(
            start,
            vec![],
            JoinSettings {
                min_joins: 2,
                ..quick(10)
            },
        );
        assert_eq!(joining.step(start, 1), Step::Wait);
        assert_eq!(
            joining.step(start, 2),
            Step::Done(JoinStatus::Joined { attempts: 1 })
        );
    }
}
