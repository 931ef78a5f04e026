//! The compact member record the table stores, one per member: what [`Member`] says in 64
//! bytes instead of 120 plus the table's bookkeeping (see `docs/benchmarks.md`, "Memory per
//! member").
//!
//! - times are nanoseconds since the table's [`Epoch`] (8 bytes instead of an `Instant`'s 16),
//!   exact both ways since the machine never gives a time before its start;
//! - an IPv4 address is stored inline in 6 bytes, an IPv6 one boxed (`SocketAddr` takes 32);
//! - metadata, a suspicion timer and the last accusation, which few members have at a time,
//!   share one box, absent when all are (`Bytes` alone takes 32);
//! - the round-trip time and the last accusation use a sentinel instead of an `Option`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rumour_wire::PackedAddr;

use crate::member::{Incarnation, Member, NodeName, State};
use crate::suspicion::Suspicion;

/// A tick standing for "never" (no round-trip time yet, never accused).
pub(super) const NEVER: u64 = u64::MAX;

/// The table's time origin: times are stored as nanoseconds since it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Epoch(Instant);

impl Epoch {
    pub(super) fn new(at: Instant) -> Epoch {
        Epoch(at)
    }

    /// `at` as nanoseconds since the epoch (0 before it, which the machine's clock rules out;
    /// saturating short of [`NEVER`] after 584 years).
    pub(super) fn tick(self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.0))
    }

    /// The instant `tick` nanoseconds after the epoch.
    pub(super) fn instant(self, tick: u64) -> Instant {
        self.0 + Duration::from_nanos(tick)
    }
}

/// A duration in nanoseconds, saturating short of [`NEVER`].
pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).map_or(NEVER - 1, |n| n.min(NEVER - 1))
}

/// What few members have at a time, kept out of the row so that the others do not pay for
/// it: metadata, a suspicion timer, the time of the last accusation sent to the member.
#[derive(Clone, Debug)]
struct Extra {
    /// Empty when none.
    meta: Bytes,
    /// Boxed: metadata is common where it is used at all, suspicions are rare.
    suspicion: Option<Box<Suspicion>>,
    /// When an accusation was last sent to the member directly, or [`NEVER`].
    last_accused: u64,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.meta.is_empty() && self.suspicion.is_none() && self.last_accused == NEVER
    }
}

/// One row of the table.
#[derive(Clone, Debug)]
pub(super) struct Record {
    pub(super) name: NodeName,
    pub(super) addr: PackedAddr,
    /// `None` when the member has no metadata, no suspicion and no accusation.
    extra: Option<Box<Extra>>,
    /// When the state last changed (a tick of the table's epoch).
    pub(super) state_changed_at: u64,
    /// When the record was created or its address last changed (orders the unconfirmed).
    pub(super) learned_at: u64,
    /// The smoothed round-trip time in nanoseconds, or [`NEVER`].
    pub(super) rtt: u64,
    pub(super) incarnation: Incarnation,
    pub(super) state: State,
    /// Whether the member answered a ping of this node at its current address.
    pub(super) confirmed: bool,
    /// Whether the member is in the probe order.
    pub(super) scheduled: bool,
    /// Verification pings the lane sent it while unconfirmed.
    pub(super) verify_attempts: u8,
}

impl Record {
    pub(super) fn new(epoch: Epoch, member: Member, learned_at: Instant) -> Record {
        let mut record = Record {
            name: member.name,
            addr: PackedAddr::new(member.addr),
            extra: None,
            state_changed_at: epoch.tick(member.state_changed_at),
            learned_at: epoch.tick(learned_at),
            rtt: member.rtt.map_or(NEVER, nanos),
            incarnation: member.incarnation,
            state: member.state,
            confirmed: false,
            scheduled: false,
            verify_attempts: 0,
        };
        record.set_meta(member.meta);
        record
    }

    /// Changes the extra part, which is made when needed and dropped once empty.
    fn update_extra(&mut self, change: impl FnOnce(&mut Extra)) {
        let extra = self.extra.get_or_insert_with(|| {
            Box::new(Extra {
                meta: Bytes::new(),
                suspicion: None,
                last_accused: NEVER,
            })
        });
        change(extra);
        if extra.is_empty() {
            self.extra = None;
        }
    }

    /// The metadata (empty when none).
    pub(super) fn meta(&self) -> &[u8] {
        self.extra.as_deref().map_or(&[], |e| &e.meta[..])
    }

    /// The metadata as shared bytes (a reference count, not a copy).
    pub(super) fn meta_bytes(&self) -> Bytes {
        self.extra
            .as_deref()
            .map(|e| e.meta.clone())
            .unwrap_or_default()
    }

    pub(super) fn set_meta(&mut self, meta: Bytes) {
        if meta.is_empty() && self.extra.is_none() {
            return;
        }
        self.update_extra(|e| e.meta = meta);
    }

    /// The running suspicion timer, if the member is suspected.
    pub(super) fn suspicion(&self) -> Option<&Suspicion> {
        self.extra.as_deref()?.suspicion.as_deref()
    }

    pub(super) fn suspicion_mut(&mut self) -> Option<&mut Suspicion> {
        self.extra.as_deref_mut()?.suspicion.as_deref_mut()
    }

    pub(super) fn set_suspicion(&mut self, suspicion: Option<Suspicion>) {
        if suspicion.is_none() && self.suspicion().is_none() {
            return;
        }
        self.update_extra(|e| e.suspicion = suspicion.map(Box::new));
    }

    /// When an accusation was last sent to the member directly, or [`NEVER`].
    pub(super) fn last_accused(&self) -> u64 {
        self.extra.as_deref().map_or(NEVER, |e| e.last_accused)
    }

    pub(super) fn set_last_accused(&mut self, tick: u64) {
        self.update_extra(|e| e.last_accused = tick);
    }

    pub(super) fn rtt(&self) -> Option<Duration> {
        (self.rtt != NEVER).then(|| Duration::from_nanos(self.rtt))
    }

    /// The member as the public [`Member`] (times back on the local clock).
    pub(super) fn to_member(&self, epoch: Epoch) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.addr.get(),
            meta: self.meta_bytes(),
            incarnation: self.incarnation,
            state: self.state,
            state_changed_at: epoch.instant(self.state_changed_at),
            rtt: self.rtt(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
    use super::*;

    #[test]
    fn a_record_is_compact_and_gives_back_the_member_it_was_made_of() {
        assert!(std::mem::size_of::<Record>() <= 64);
        let start = Instant::now();
        let epoch = Epoch::new(start);
        for (addr, meta, rtt) in [
            ("10.0.0.1:7946", Bytes::new(), None),
            (
                "[2001:db8::1]:7946",
                Bytes::from_static(b"zone=a"),
                Some(Duration::from_nanos(1_234_567)),
            ),
        ] {
            let member = Member {
                name: NodeName::new("m").unwrap(),
                addr: addr.parse().unwrap(),
                meta,
                incarnation: Incarnation(7),
                state: State::Suspect,
                state_changed_at: start + Duration::from_nanos(987_654_321_123),
                rtt,
            };
            let record = Record::new(epoch, member.clone(), start);
            assert_eq!(record.to_member(epoch), member);
        }
    }
}
