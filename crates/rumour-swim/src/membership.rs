//! The member table and its state rules (alive / suspect / dead / left, incarnations).
//!
//! Rules, for a claim about member `m` at incarnation `i` against the stored incarnation `s`:
//!
//! | claim | stored state | accepted when | effect |
//! | --- | --- | --- | --- |
//! | alive | unknown | always | insert Alive (joined) |
//! | alive | any | `i > s` | Alive with the claim's address and metadata |
//! | alive | Suspect / Dead / Left | `i <= s` | no change; the stored accusation is sent to the claimant so it can refute |
//! | alive | any | `i > s + jump` | taken as alive at `s + jump` (clamped, counted) |
//! | suspect | Alive | `i >= s` | Suspect at `s`, suspicion timer started |
//! | suspect | Suspect | `i >= s` | a new independent accuser confirms (timer shrinks) |
//! | dead | Alive / Suspect | `i == s` | Dead (Left when `from == m`) |
//! | dead from another member | Alive / Suspect | `i > s` | taken as a suspicion at `s` |
//! | dead from `m` | Alive / Suspect / Dead | `i >= s` | Left at `s` |
//! | any accusation | Dead / Left | `i > s` | ignored: accusations never raise an incarnation |
//! | suspect / dead about self | | `i >= s` | refute: `max(s, min(i, s + jump)) + 1`, alive broadcast |
//! | alive about self | | `i > s`, or `i == s` with other address or metadata | refute (same bound) |
//!
//! Only an alive (which the member itself originates) raises a stored incarnation, by at most
//! `jump` per claim; an accusation is applied at the incarnation this node holds, since no
//! honest accuser can know a higher one that this node has not also been told by an alive. So
//! one forged packet can neither declare a member dead nor push any incarnation towards
//! `u32::MAX`. The stored incarnation never decreases, so a stale alive can never resurrect a
//! member that was accused at the stored incarnation. A name claimed from another address is
//! refused unless the member left, or has been dead longer than `dead_node_reclaim_time`.
//!
//! The table is bounded (`max_members`). A member is *confirmed* once it answered a ping of
//! this node (or opened a state exchange from its own host); entries never confirmed are kept
//! in learning order, evicted oldest first when a new member needs room, and forgotten after
//! `unconfirmed_timeout`.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use crate::member::{Incarnation, Member, NodeName, State};
use crate::message::{Alive, Dead, MemberState, Message, Suspect};
use crate::probe::ProbeOrder;
use crate::suspicion::Suspicion;

use index::{MemberKey, NameIndex};

mod index;
mod record;

use record::{Epoch, NEVER, Record, nanos};
use rumour_wire::PackedAddr;

/// Verification pings the lane sends one never-confirmed member per announcement of it, at
/// most: an entry naming a third party's address draws no more than this many pings to it for
/// each message that named it (and a ping is no larger than the message).
pub(crate) const MAX_VERIFY_ATTEMPTS: u8 = 1;

/// Where an accusation comes from, which decides whether it confirms a suspicion.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Evidence<'a> {
    /// A suspect message from this accuser (the local node when its own probe failed).
    Accuser(&'a NodeName),
    /// A remote full state: second-hand, never a confirmation.
    FullState,
}

/// Parameters of a new suspicion timer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SuspicionParams {
    pub(crate) k: u32,
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

/// What a rule did; the machine turns it into broadcasts and events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing changed (stale, duplicate, or about an unknown member).
    Ignored,
    /// The member is new (`new`) or came back from Dead / Left.
    Joined { new: bool },
    /// An alive member's incarnation rose; `changed` if its address or metadata changed or a
    /// suspicion was cleared.
    Refreshed { changed: bool },
    /// The member became Suspect.
    Suspected,
    /// A new independent confirmation of a suspicion.
    Confirmed,
    /// The member became Dead.
    Failed,
    /// The member became Left.
    Left,
    /// The claim is about the local node and must be refuted above this incarnation.
    Refute { accused: Incarnation },
    /// A name was claimed from another address and refused.
    Conflict {
        known: SocketAddr,
        claimed: SocketAddr,
    },
    /// A stale alive came from a member held Suspect / Dead / Left: send it this accusation.
    Accuse { to: SocketAddr, message: Message },
    /// A new member was refused: the table is full of confirmed members.
    Refused,
}

/// Limits of the table (see the `Config` fields of the same names).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_members: usize,
    pub(crate) max_incarnation_jump: u32,
}

/// Counters of the limits at work, read and reset by the machine.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LimitCounts {
    /// Claims whose incarnation was clamped (alive jumps, accusations above the stored one).
    pub(crate) clamped: u64,
    /// Stale alives about members reaped not long ago, refused.
    pub(crate) stale_after_reap: u64,
}

/// The member table, the local node included, sorted by name.
///
/// Stored compactly (see `docs/benchmarks.md`, "Memory per member"): one [`Record`] per member
/// in a dense vector (the local node at slot 0; a removal moves the last record into the freed
/// slot, so that a slot doubles as a position for random picks), a name-to-slot index in name
/// order, and the probe order as slots. Every other structure refers to members by the one
/// shared name the record holds.
#[derive(Clone, Debug)]
pub(crate) struct Membership {
    local: NodeName,
    /// The local node as a full [`Member`], kept in step with slot 0 (it is handed out by
    /// reference).
    local_member: Member,
    /// The origin of the records' times.
    epoch: Epoch,
    /// Every member; see the type's documentation.
    records: Vec<Record>,
    /// Name to slot.
    index: NameIndex,
    /// Every slot in name order, computed when first needed after a change (iterations,
    /// digests and snapshots are in name order; lookups use `index`).
    by_name: OnceCell<Box<[u32]>>,
    /// The round-robin probe order (confirmed members, the local node excluded).
    order: ProbeOrder,
    /// Members with a suspicion timer (an index, so that timers are found without a scan).
    suspected: BTreeSet<NodeName>,
    /// The same timers by deadline, so that the next deadline and the expired timers are found
    /// without a scan of every suspect (a partition leaves each node suspecting half the
    /// cluster, and the next deadline is asked for after every input).
    deadlines: BTreeSet<(Instant, NodeName)>,
    /// Least time between two accusations sent directly to one member.
    accuse_spacing: Duration,
    /// See `Config::dead_node_reclaim_time`.
    reclaim_time: Option<Duration>,
    /// Members in state Alive, the local node included (kept with every transition, so that
    /// counting is not a scan).
    alive: usize,
    /// Members never confirmed, oldest first (ticks of `epoch`; the local node is never in it).
    unconfirmed: BTreeSet<(u64, NodeName)>,
    limits: Limits,
    /// Members removed to make room, for the machine to report.
    evicted: Vec<Member>,
    /// Reaped members' last incarnations, so that a stale alive does not resurrect them.
    reaped: BTreeMap<NodeName, Reaped>,
    /// The same, oldest first, for expiry and eviction.
    reaped_order: BTreeSet<(Instant, NodeName)>,
    /// How long and how many reaped members are remembered.
    reaped_memory: (Duration, usize),
    pub(crate) counts: LimitCounts,
}

/// The local node's slot: it is stored first and never removed, so it never moves.
const LOCAL_SLOT: usize = 0;

/// What the table remembers of a reaped member.
#[derive(Clone, Debug)]
struct Reaped {
    incarnation: Incarnation,
    at: Instant,
    last_accused: Option<Instant>,
}

/// Most reaped members remembered by default (the oldest are forgotten first).
pub(crate) const REAPED_CAPACITY: usize = 4096;

impl Membership {
    /// A table holding only `local`; names are hashed under `index_key` (secret: drawn from
    /// the machine's seeded generator).
    pub(crate) fn new(
        local: Member,
        accuse_spacing: Duration,
        reclaim_time: Option<Duration>,
        index_key: (u64, u64),
    ) -> Membership {
        let name = local.name.clone();
        let alive = usize::from(local.state == State::Alive);
        let at = local.state_changed_at;
        let epoch = Epoch::new(at);
        let mut record = Record::new(epoch, local.clone(), at);
        record.confirmed = true;
        let records = vec![record];
        let mut index = NameIndex::new(index_key);
        index.insert(&records, 0);
        Membership {
            local: name,
            local_member: local,
            epoch,
            records,
            index,
            by_name: OnceCell::new(),
            order: ProbeOrder::default(),
            suspected: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            accuse_spacing,
            reclaim_time,
            alive,
            unconfirmed: BTreeSet::new(),
            limits: Limits {
                max_members: usize::MAX,
                max_incarnation_jump: u32::MAX,
            },
            evicted: Vec::new(),
            reaped: BTreeMap::new(),
            reaped_order: BTreeSet::new(),
            reaped_memory: (Duration::from_secs(3600), REAPED_CAPACITY),
            counts: LimitCounts::default(),
        }
    }

    fn slot<Q>(&self, name: &Q) -> Option<usize>
    where
        Q: MemberKey + ?Sized,
    {
        self.index
            .get(&self.records, name)
            .map(|slot| slot as usize)
    }

    fn record<Q>(&self, name: &Q) -> Option<&Record>
    where
        Q: MemberKey + ?Sized,
    {
        self.records.get(self.slot(name)?)
    }

    fn record_mut<Q>(&mut self, name: &Q) -> Option<&mut Record>
    where
        Q: MemberKey + ?Sized,
    {
        let slot = self.slot(name)?;
        self.records.get_mut(slot)
    }

    /// Refreshes the local node's full record from slot 0 after a change.
    fn sync_local(&mut self) {
        self.local_member = self.records[LOCAL_SLOT].to_member(self.epoch);
    }

    /// Remembers reaped members' last incarnation for `ttl`, at most `capacity` of them.
    pub(crate) fn set_reaped_memory(&mut self, ttl: Duration, capacity: usize) {
        self.reaped_memory = (ttl, capacity);
    }

    fn remember_reaped(&mut self, now: Instant, member: &Member) {
        let (_, capacity) = self.reaped_memory;
        if capacity == 0 {
            return;
        }
        if let Some(old) = self.reaped.remove(&member.name) {
            self.reaped_order.remove(&(old.at, member.name.clone()));
        }
        while self.reaped.len() >= capacity {
            let Some((_, oldest)) = self.reaped_order.pop_first() else {
                break;
            };
            self.reaped.remove(&oldest);
        }
        self.reaped.insert(
            member.name.clone(),
            Reaped {
                incarnation: member.incarnation,
                at: now,
                last_accused: None,
            },
        );
        self.reaped_order.insert((now, member.name.clone()));
    }

    /// Forgets what is remembered of reaped member `name` (it spoke for itself, first-hand).
    pub(crate) fn forget_reaped(&mut self, name: &NodeName) {
        if let Some(reaped) = self.reaped.remove(name) {
            self.reaped_order.remove(&(reaped.at, name.clone()));
        }
    }

    fn expire_reaped(&mut self, now: Instant) {
        let (ttl, _) = self.reaped_memory;
        while let Some((at, name)) = self.reaped_order.first().cloned() {
            if now.saturating_duration_since(at) < ttl {
                break;
            }
            self.reaped_order.pop_first();
            self.reaped.remove(&name);
        }
    }

    /// An alive about a member reaped not long ago: `None` if it is newer than the member's
    /// last incarnation (it comes back, and is forgotten here), else the stale claim's outcome:
    /// the member's accusation, sent to the claimed address at most once per spacing (a
    /// restarted member refutes it with a higher incarnation and is then taken back).
    fn stale_after_reap(&mut self, now: Instant, a: &Alive) -> Option<Outcome> {
        self.expire_reaped(now);
        let spacing = self.accuse_spacing;
        let reaped = self.reaped.get_mut(&a.name)?;
        if a.incarnation > reaped.incarnation {
            let at = reaped.at;
            self.reaped.remove(&a.name);
            self.reaped_order.remove(&(at, a.name.clone()));
            return None;
        }
        self.counts.stale_after_reap += 1;
        if reaped
            .last_accused
            .is_some_and(|at| now.saturating_duration_since(at) < spacing)
        {
            return Some(Outcome::Ignored);
        }
        reaped.last_accused = Some(now);
        Some(Outcome::Accuse {
            to: a.addr,
            message: Message::Dead(Dead {
                name: a.name.clone(),
                incarnation: reaped.incarnation,
                from: self.local.clone(),
            }),
        })
    }

    /// Sets the table's limits.
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Stores a new entry (the caller checked that the name is unknown and that there is
    /// room, which bounds the table below `index::MAX_SLOTS` slots).
    fn insert(&mut self, member: Member, now: Instant) {
        let name = member.name.clone();
        if member.state == State::Alive {
            self.alive += 1;
        }
        let slot = u32::try_from(self.records.len()).expect("the table is bounded");
        let record = Record::new(self.epoch, member, now);
        self.unconfirmed.insert((record.learned_at, name.clone()));
        self.records.push(record);
        self.index.insert(&self.records, slot);
        self.by_name.take();
    }

    /// Removes `name` from the table and every index, the probe order included.
    pub(crate) fn remove(&mut self, name: &NodeName) -> Option<Member> {
        if *name == self.local {
            return None;
        }
        let slot = self.index.remove(&self.records, name)?;
        self.by_name.take();
        let record = self.records.swap_remove(slot as usize);
        if record.scheduled {
            self.order.remove(slot);
        }
        if let Some(moved) = self.records.get(slot as usize) {
            // The last record took the freed slot.
            let from = u32::try_from(self.records.len()).expect("the table is bounded");
            self.index.relocate(moved.name.as_str(), from, slot);
            if moved.scheduled {
                self.order.rename(from, slot);
            }
        }
        self.suspected.remove(name);
        unindex_timer(&mut self.deadlines, &record);
        self.unconfirmed.remove(&(record.learned_at, name.clone()));
        if record.state == State::Alive {
            self.alive -= 1;
        }
        Some(record.to_member(self.epoch))
    }

    /// Makes room for one more member by evicting the oldest never-confirmed entry; false when
    /// every entry is confirmed (the newcomer is then refused).
    fn make_room(&mut self) -> bool {
        if self.records.len() < self.limits.max_members.min(index::MAX_SLOTS) {
            return true;
        }
        let Some((_, oldest)) = self.unconfirmed.first().cloned() else {
            return false;
        };
        if let Some(member) = self.remove(&oldest) {
            self.evicted.push(member);
        }
        true
    }

    /// Members evicted to make room since the last call.
    pub(crate) fn take_evicted(&mut self) -> Vec<Member> {
        std::mem::take(&mut self.evicted)
    }

    /// Marks `name` confirmed if it is stored at `addr`; true when it was not confirmed before.
    pub(crate) fn confirm(&mut self, name: &NodeName, addr: SocketAddr) -> bool {
        let Some(record) = self.record_mut(name) else {
            return false;
        };
        if record.confirmed || record.addr.get() != addr {
            return false;
        }
        record.confirmed = true;
        let key = (record.learned_at, record.name.clone());
        self.unconfirmed.remove(&key);
        true
    }

    /// Puts `name` in the probe order at a random position, unless it is there already.
    pub(crate) fn schedule(&mut self, name: &NodeName, rng: &mut impl Rng) {
        let Some(slot) = self.slot(name) else {
            return;
        };
        let record = &mut self.records[slot];
        if record.scheduled {
            return;
        }
        record.scheduled = true;
        self.order
            .insert(u32::try_from(slot).expect("bounded"), rng);
    }

    /// Takes `slot` out of the probe order.
    fn unschedule(&mut self, slot: usize) {
        let record = &mut self.records[slot];
        if record.scheduled {
            record.scheduled = false;
            self.order.remove(u32::try_from(slot).expect("bounded"));
        }
    }

    /// The next member in this probe cycle and whether it is live, or `None` at the end of
    /// the cycle.
    pub(crate) fn next_in_order(&mut self) -> Option<(NodeName, bool)> {
        let slot = self.order.advance()?;
        let record = &self.records[slot as usize];
        Some((record.name.clone(), record.state.is_live()))
    }

    /// Starts a new probe cycle in a fresh random order.
    pub(crate) fn reshuffle(&mut self, rng: &mut impl Rng) {
        self.order.reshuffle(rng);
    }

    /// Folds a round-trip time `sample` of a direct probe into the member's smoothed RTT
    /// (a quarter of the way to the sample; the first sample sets it), if it is still stored
    /// at `addr`.
    pub(crate) fn record_rtt(&mut self, name: &NodeName, addr: SocketAddr, sample: Duration) {
        let Some(slot) = self.slot(name) else {
            return;
        };
        let record = &mut self.records[slot];
        if record.addr.get() != addr {
            return;
        }
        record.rtt = nanos(match record.rtt() {
            Some(rtt) => (rtt * 3 + sample) / 4,
            None => sample,
        });
        if slot == LOCAL_SLOT {
            self.sync_local();
        }
    }

    /// Whether `name` is confirmed and stored at `addr` (a member address it answered at).
    pub(crate) fn is_confirmed_at(&self, name: &NodeName, addr: SocketAddr) -> bool {
        self.record(name)
            .is_some_and(|r| r.confirmed && r.addr.get() == addr)
    }

    /// Whether `name` is stored and confirmed.
    pub(crate) fn is_confirmed<Q>(&self, name: &Q) -> bool
    where
        Q: MemberKey + ?Sized,
    {
        self.record(name).is_some_and(|r| r.confirmed)
    }

    /// Number of never-confirmed entries.
    pub(crate) fn num_unconfirmed(&self) -> usize {
        self.unconfirmed.len()
    }

    /// Up to `count` live never-confirmed members, oldest first, skipping the first `skip`
    /// never-confirmed entries: the verification lane walks them round-robin.
    pub(crate) fn unconfirmed_live(
        &self,
        skip: usize,
        count: usize,
    ) -> Vec<(NodeName, SocketAddr)> {
        self.unconfirmed
            .iter()
            .skip(skip)
            .filter_map(|(_, name)| self.record(name))
            .filter(|r| r.state.is_live() && r.verify_attempts < MAX_VERIFY_ATTEMPTS)
            .take(count)
            .map(|r| (r.name.clone(), r.addr.get()))
            .collect()
    }

    /// The address of `name` if it is live, unconfirmed and still due a verification ping.
    pub(crate) fn awaiting_verification(&self, name: &NodeName) -> Option<SocketAddr> {
        self.record(name)
            .filter(|r| {
                !r.confirmed && r.state.is_live() && r.verify_attempts < MAX_VERIFY_ATTEMPTS
            })
            .map(|r| r.addr.get())
    }

    /// Counts one verification ping sent to `name`.
    pub(crate) fn note_verification(&mut self, name: &NodeName) {
        if let Some(record) = self.record_mut(name) {
            record.verify_attempts = record.verify_attempts.saturating_add(1);
        }
    }

    /// Up to `count` live never-confirmed members, newest first.
    pub(crate) fn newest_unconfirmed_live(&self, count: usize) -> Vec<(NodeName, SocketAddr)> {
        self.unconfirmed
            .iter()
            .rev()
            .filter_map(|(_, name)| self.record(name))
            .filter(|r| r.state.is_live() && r.verify_attempts < MAX_VERIFY_ATTEMPTS)
            .take(count)
            .map(|r| (r.name.clone(), r.addr.get()))
            .collect()
    }

    /// Removes the never-confirmed entries learned at least `timeout` ago.
    pub(crate) fn expire_unconfirmed(&mut self, now: Instant, timeout: Duration) -> Vec<Member> {
        let mut expired = Vec::new();
        while let Some((at, name)) = self.unconfirmed.first().cloned() {
            if now.saturating_duration_since(self.epoch.instant(at)) < timeout {
                break;
            }
            if let Some(member) = self.remove(&name) {
                expired.push(member);
            } else {
                self.unconfirmed.pop_first();
            }
        }
        expired
    }

    /// The member at `index` of an arbitrary but deterministic order, `index < len()`: with a
    /// random index, a random member in O(1).
    pub(crate) fn nth_random(&self, index: usize) -> Option<Member> {
        self.records.get(index).map(|r| r.to_member(self.epoch))
    }

    /// Members in state Alive, the local node included.
    pub(crate) fn num_alive(&self) -> usize {
        self.alive
    }

    /// Marks the local node Left (it said goodbye).
    pub(crate) fn leave_local(&mut self, now: Instant) -> &Member {
        let tick = self.epoch.tick(now);
        let record = &mut self.records[LOCAL_SLOT];
        if record.state == State::Alive {
            self.alive -= 1;
        }
        record.state = State::Left;
        record.state_changed_at = tick;
        self.sync_local();
        &self.local_member
    }

    pub(crate) fn local(&self) -> &Member {
        &self.local_member
    }

    /// Raises the local incarnation above `accused` (and its own); returns the new one.
    pub(crate) fn refute_local(&mut self, accused: Incarnation) -> Incarnation {
        let record = &mut self.records[LOCAL_SLOT];
        record.incarnation = record.incarnation.max(accused).next();
        let incarnation = record.incarnation;
        self.sync_local();
        incarnation
    }

    pub(crate) fn get<Q>(&self, name: &Q) -> Option<Member>
    where
        Q: MemberKey + ?Sized,
    {
        self.record(name).map(|r| r.to_member(self.epoch))
    }

    /// Every member, in name order.
    pub(crate) fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.records_by_name().map(|r| r.to_member(self.epoch))
    }

    /// How many confirmed live members (the local node excluded) each IP address holds.
    pub(crate) fn confirmed_live_per_ip(&self) -> BTreeMap<IpAddr, usize> {
        let mut per_ip = BTreeMap::new();
        for addr in self.confirmed_live_addrs() {
            *per_ip.entry(addr.ip()).or_default() += 1;
        }
        per_ip
    }

    /// The addresses of the confirmed members in state Alive or Suspect, the local node
    /// excluded, in no particular order (read straight from the records, without building a
    /// `Member` each).
    pub(crate) fn confirmed_live_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.records[LOCAL_SLOT + 1..]
            .iter()
            .filter(|r| r.confirmed && matches!(r.state, State::Alive | State::Suspect))
            .map(|r| r.addr.get())
    }

    /// Every record, in name order.
    fn records_by_name(&self) -> impl Iterator<Item = &Record> + '_ {
        let order = self.by_name.get_or_init(|| {
            let mut slots: Vec<u32> = (0..self.records.len())
                .map(|s| u32::try_from(s).expect("the table is bounded"))
                .collect();
            slots.sort_unstable_by(|&a, &b| {
                self.records[a as usize]
                    .name
                    .cmp(&self.records[b as usize].name)
            });
            slots.into_boxed_slice()
        });
        order.iter().map(|&slot| &self.records[slot as usize])
    }

    /// The earliest deadline of the running suspicion timers.
    pub(crate) fn next_suspicion_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Names of the members whose suspicion timer expired at `now`, in name order.
    pub(crate) fn expired_suspicions(&self, now: Instant) -> Vec<NodeName> {
        let mut names: Vec<NodeName> = self
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, name)| name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// A suspect held for at least `age` that the local node has not yet probed out of turn:
    /// marked as probed and returned. A refutation normally clears a suspicion within a second or
    /// two; one still standing this long may be a refutation this node missed (gossip's
    /// retransmit limit lets one in tens of thousands slip), and a direct ping, whose ack carries
    /// the suspect's latest alive, settles it before the timer declares a live member dead.
    pub(crate) fn stale_suspect(&mut self, now: Instant, age: Duration) -> Option<NodeName> {
        let (records, index) = (&mut self.records, &self.index);
        self.suspected.iter().find_map(|name| {
            let slot = index.get(records, name)? as usize;
            let timer = records[slot].suspicion_mut()?;
            if timer.rechecked || now.saturating_duration_since(timer.started()) < age {
                return None;
            }
            timer.rechecked = true;
            Some(name.clone())
        })
    }

    /// A suspect's incarnation and its timer.
    pub(crate) fn suspicion(&self, name: &NodeName) -> Option<(Incarnation, &Suspicion)> {
        let record = self.record(name)?;
        Some((record.incarnation, record.suspicion()?))
    }

    /// Moves a suspect's deadline to `to` (once, when the machine was stalled).
    pub(crate) fn postpone_suspicion(&mut self, name: &NodeName, to: Instant) {
        let Some(slot) = self.slot(name) else {
            return;
        };
        let record = &mut self.records[slot];
        let Some(timer) = record.suspicion_mut() else {
            return;
        };
        self.deadlines.remove(&(timer.deadline(), name.clone()));
        timer.postpone_to(to);
        self.deadlines.insert((to, name.clone()));
    }

    /// Members known, the local node and unreaped dead ones included (memberlist's `n`).
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The alive message describing `name` as stored.
    pub(crate) fn alive_of(&self, name: &NodeName) -> Option<Alive> {
        self.record(name).map(|r| Alive {
            name: r.name.clone(),
            addr: r.addr.get(),
            incarnation: r.incarnation,
            meta: r.meta_bytes(),
        })
    }

    /// Every member as a full-state entry.
    /// Never-confirmed members are left out: this node does not vouch for what it only heard
    /// second-hand, so a flood of forged members stays where it landed.
    pub(crate) fn snapshot(&self) -> Vec<MemberState> {
        self.records_by_name()
            .filter(|r| r.confirmed)
            .map(|r| MemberState {
                name: r.name.clone(),
                addr: r.addr.get(),
                incarnation: r.incarnation,
                meta: r.meta_bytes(),
                state: r.state,
            })
            .collect()
    }

    /// How many members [`Membership::snapshot`] holds and their stable hash, in name order:
    /// for each member its name's length and bytes, its address (IP as 16 bytes, IPv4 mapped,
    /// then the port), incarnation, state (0 alive, 1 suspect, 2 dead, 3 left) and metadata's
    /// length and bytes. Two nodes whose full states would be equal have equal digests.
    pub(crate) fn digest(&self) -> (u32, u64) {
        let mut hasher = rumour_wire::StableHasher::default();
        let mut count: u32 = 0;
        for m in self.records_by_name().filter(|r| r.confirmed) {
            count = count.saturating_add(1);
            hasher.write_str(m.name.as_str());
            let addr = m.addr.get();
            let ip = match addr.ip() {
                std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                std::net::IpAddr::V6(v6) => v6,
            };
            hasher.write(&ip.octets());
            hasher.write_u64(u64::from(addr.port()));
            hasher.write_u64(u64::from(m.incarnation.0));
            hasher.write_u64(match m.state {
                State::Alive => 0,
                State::Suspect => 1,
                State::Dead => 2,
                State::Left => 3,
            });
            hasher.write_u64(m.meta().len() as u64);
            hasher.write(m.meta());
        }
        (count, hasher.finish())
    }

    /// The claim as this node can credit it (see the module's rules): an alive about another
    /// known member raises its incarnation by at most `max_incarnation_jump`; an accusation
    /// about another known member is taken at the stored incarnation, and a death declared by
    /// a third party above it becomes a suspicion there. Claims about the local node or unknown
    /// members are returned as they are. Clamps are counted.
    pub(crate) fn credible(&mut self, message: Message) -> Message {
        let name = match &message {
            Message::Alive(a) => &a.name,
            Message::Suspect(s) => &s.name,
            Message::Dead(d) => &d.name,
            _ => return message,
        };
        if *name == self.local {
            return message;
        }
        let Some(m) = self.record(name) else {
            return message;
        };
        let (stored, live) = (m.incarnation, m.state.is_live());
        let ceiling = Incarnation(stored.0.saturating_add(self.limits.max_incarnation_jump));
        let credited = match message {
            Message::Alive(a) if a.incarnation > ceiling => Message::Alive(Alive {
                incarnation: ceiling,
                ..a
            }),
            Message::Suspect(s) if s.incarnation > stored => Message::Suspect(Suspect {
                incarnation: stored,
                ..s
            }),
            Message::Dead(d) if d.incarnation > stored && d.from != d.name && live => {
                Message::Suspect(Suspect {
                    name: d.name,
                    incarnation: stored,
                    from: d.from,
                })
            }
            Message::Dead(d) if d.incarnation > stored => Message::Dead(Dead {
                incarnation: stored,
                ..d
            }),
            other => return other,
        };
        self.counts.clamped += 1;
        credited
    }

    /// Applies an alive claim.
    pub(crate) fn alive(&mut self, now: Instant, a: &Alive) -> Outcome {
        if a.name == self.local {
            return self.alive_about_self(a);
        }
        let reclaim_time = self.reclaim_time;
        let epoch = self.epoch;
        let Some(slot) = self.slot(&a.name) else {
            if let Some(outcome) = self.stale_after_reap(now, a) {
                return outcome;
            }
            if !self.make_room() {
                return Outcome::Refused;
            }
            let member = Member {
                name: a.name.clone(),
                addr: a.addr,
                meta: a.meta.clone(),
                incarnation: a.incarnation,
                state: State::Alive,
                state_changed_at: now,
                rtt: None,
            };
            self.insert(member, now);
            return Outcome::Joined { new: true };
        };
        let m = &mut self.records[slot];
        let stored_addr = m.addr.get();
        if stored_addr != a.addr {
            let dead_for = now.saturating_duration_since(epoch.instant(m.state_changed_at));
            let reclaimable = m.state == State::Left
                || (m.state == State::Dead && reclaim_time.is_some_and(|t| dead_for >= t));
            if !reclaimable {
                return Outcome::Conflict {
                    known: stored_addr,
                    claimed: a.addr,
                };
            }
        }
        if a.incarnation > m.incarnation {
            let previous = m.state;
            let moved = stored_addr != a.addr;
            let changed = moved || m.meta() != &a.meta[..] || previous == State::Suspect;
            if moved {
                m.addr = PackedAddr::new(a.addr);
            }
            m.set_meta(a.meta.clone());
            m.incarnation = a.incarnation;
            if moved {
                m.rtt = NEVER; // measured to the old address
            }
            m.state = State::Alive;
            if previous != State::Alive {
                m.state_changed_at = epoch.tick(now);
                self.alive += 1;
            }
            unindex_timer(&mut self.deadlines, m);
            m.set_suspicion(None);
            let name = m.name.clone();
            if moved && m.confirmed {
                // A new address is unproven until it answers a ping.
                self.unconfirm(slot, now);
            }
            self.suspected.remove(&name);
            return match previous {
                State::Dead | State::Left => Outcome::Joined { new: false },
                State::Alive | State::Suspect => Outcome::Refreshed { changed },
            };
        }
        if m.state == State::Alive {
            // Each announcement of an unconfirmed member earns it one more verification ping,
            // no larger than the announcement: no packet draws more bytes to the address it
            // names than it carried.
            if !m.confirmed {
                m.verify_attempts = 0;
            }
            return Outcome::Ignored;
        }
        // A stale alive about a member held Suspect, Dead or Left (from a reclaimable
        // address, if it changed): it is probably that member, restarted or cut off,
        // announcing itself. Keep the state; tell it what it is accused of.
        if stored_addr != a.addr {
            m.addr = PackedAddr::new(a.addr);
            if m.confirmed {
                self.unconfirm(slot, now);
            }
        }
        self.accuse(now, &a.name)
    }

    /// The member at `slot` moved: unconfirmed again from `now`, out of the probe order.
    fn unconfirm(&mut self, slot: usize, now: Instant) {
        let tick = self.epoch.tick(now);
        let record = &mut self.records[slot];
        record.confirmed = false;
        record.learned_at = tick;
        record.verify_attempts = 0;
        self.unconfirmed.insert((tick, record.name.clone()));
        self.unschedule(slot);
    }

    fn alive_about_self(&mut self, a: &Alive) -> Outcome {
        let me = self.local();
        if a.addr != me.addr {
            // Another process claims this node's name (or an old life at another address is
            // still gossiped): report it, as memberlist's conflict delegate does, rather than
            // start a refutation duel in which both raise their incarnations forever.
            // Accusations (suspect, dead) are still refuted.
            return Outcome::Conflict {
                known: me.addr,
                claimed: a.addr,
            };
        }
        let same = a.meta == me.meta;
        if a.incarnation < me.incarnation || (a.incarnation == me.incarnation && same) {
            return Outcome::Ignored;
        }
        self.refutation(a.incarnation)
    }

    /// The refutation of a claim about the local node at `accused` (`accused >= own`): the
    /// claim is taken at no more than `own + max_incarnation_jump`, so that no single message
    /// drives the local incarnation towards `u32::MAX`. A restarted node whose previous life
    /// reached a higher incarnation climbs there in steps of that size, one per accusation.
    fn refutation(&self, accused: Incarnation) -> Outcome {
        let own = self.local().incarnation;
        let ceiling = Incarnation(own.0.saturating_add(self.limits.max_incarnation_jump));
        Outcome::Refute {
            accused: accused.min(ceiling),
        }
    }

    /// The stored accusation against `name`, to send to it (at most once per spacing).
    fn accuse(&mut self, now: Instant, name: &NodeName) -> Outcome {
        let spacing = self.accuse_spacing;
        let epoch = self.epoch;
        let Some(slot) = self.slot(name) else {
            return Outcome::Ignored;
        };
        let record = &mut self.records[slot];
        let last = record.last_accused();
        if last != NEVER && now.saturating_duration_since(epoch.instant(last)) < spacing {
            return Outcome::Ignored;
        }
        record.set_last_accused(epoch.tick(now));
        Outcome::Accuse {
            to: record.addr.get(),
            message: accusation(&self.local, record),
        }
    }

    /// Applies a suspicion claim.
    pub(crate) fn suspect(
        &mut self,
        now: Instant,
        s: &Suspect,
        evidence: Evidence<'_>,
        params: SuspicionParams,
    ) -> Outcome {
        if s.name == self.local {
            if s.incarnation < self.local().incarnation {
                return Outcome::Ignored;
            }
            return self.refutation(s.incarnation);
        }
        let local = self.local.clone();
        let tick = self.epoch.tick(now);
        let Some(slot) = self.slot(&s.name) else {
            return Outcome::Ignored;
        };
        let m = &mut self.records[slot];
        if s.incarnation < m.incarnation {
            return Outcome::Ignored;
        }
        match m.state {
            State::Dead | State::Left => Outcome::Ignored,
            State::Suspect => {
                let before = m.suspicion().map(Suspicion::deadline);
                let confirmed = match (evidence, m.suspicion_mut()) {
                    (Evidence::Accuser(from), Some(timer)) => timer.confirm(from),
                    _ => false,
                };
                if let (true, Some(before), Some(timer)) = (confirmed, before, m.suspicion()) {
                    // A confirmation shortens the timer.
                    self.deadlines.remove(&(before, m.name.clone()));
                    self.deadlines.insert((timer.deadline(), m.name.clone()));
                }
                if confirmed {
                    Outcome::Confirmed
                } else {
                    Outcome::Ignored
                }
            }
            State::Alive => {
                m.state = State::Suspect;
                m.state_changed_at = tick;
                self.alive -= 1;
                let accuser = match evidence {
                    Evidence::Accuser(from) => from.clone(),
                    Evidence::FullState => local,
                };
                self.suspected.insert(m.name.clone());
                let timer = Suspicion::new(now, accuser, params.k, params.min, params.max);
                self.deadlines.insert((timer.deadline(), m.name.clone()));
                m.set_suspicion(Some(timer));
                Outcome::Suspected
            }
        }
    }

    /// Applies a death claim (`from == name`: the member left).
    pub(crate) fn dead(&mut self, now: Instant, d: &Dead) -> Outcome {
        if d.name == self.local {
            if d.incarnation < self.local().incarnation {
                return Outcome::Ignored;
            }
            return self.refutation(d.incarnation);
        }
        let tick = self.epoch.tick(now);
        let Some(slot) = self.slot(&d.name) else {
            return Outcome::Ignored;
        };
        let m = &mut self.records[slot];
        if d.incarnation < m.incarnation {
            return Outcome::Ignored;
        }
        let left = d.from == d.name;
        match m.state {
            State::Left => Outcome::Ignored,
            State::Dead if !left => Outcome::Ignored,
            State::Dead | State::Alive | State::Suspect => {
                if m.state == State::Alive {
                    self.alive -= 1;
                }
                m.state = if left { State::Left } else { State::Dead };
                m.state_changed_at = tick;
                unindex_timer(&mut self.deadlines, m);
                m.set_suspicion(None);
                self.suspected.remove(&d.name);
                if left { Outcome::Left } else { Outcome::Failed }
            }
        }
    }

    /// Applies one entry of a remote full state (a remote Dead counts as Suspect), as
    /// [`credible`](Self::credible) takes it; returns the claim applied, to re-gossip.
    pub(crate) fn merge(
        &mut self,
        now: Instant,
        remote: &MemberState,
        params: SuspicionParams,
    ) -> (Outcome, Option<Message>) {
        let claim = match remote.state {
            State::Alive => Message::Alive(Alive {
                name: remote.name.clone(),
                addr: remote.addr,
                incarnation: remote.incarnation,
                meta: remote.meta.clone(),
            }),
            State::Left => Message::Dead(Dead {
                name: remote.name.clone(),
                incarnation: remote.incarnation,
                from: remote.name.clone(),
            }),
            State::Suspect | State::Dead => Message::Suspect(Suspect {
                name: remote.name.clone(),
                incarnation: remote.incarnation,
                from: self.local.clone(),
            }),
        };
        let claim = self.credible(claim);
        let outcome = match &claim {
            Message::Alive(a) => self.alive(now, a),
            Message::Dead(d) => self.dead(now, d),
            Message::Suspect(s) => self.suspect(now, s, Evidence::FullState, params),
            _ => Outcome::Ignored,
        };
        (outcome, Some(claim))
    }

    /// Removes dead and left members whose state changed at least `after` ago, each with
    /// whether it was in the probe order (it had answered this node).
    pub(crate) fn reap(&mut self, now: Instant, after: Duration) -> Vec<(Member, bool)> {
        let epoch = self.epoch;
        let expired: Vec<NodeName> = self
            .records_by_name()
            .filter(|r| {
                !r.state.is_live()
                    && r.name != self.local
                    && now.saturating_duration_since(epoch.instant(r.state_changed_at)) >= after
            })
            .map(|r| r.name.clone())
            .collect();
        let reaped: Vec<(Member, bool)> = expired
            .iter()
            .filter_map(|name| {
                let scheduled = self.record(name)?.scheduled;
                Some((self.remove(name)?, scheduled))
            })
            .collect();
        for (member, _) in &reaped {
            self.remember_reaped(now, member);
        }
        reaped
    }

    /// Sets the local node's metadata, raising its incarnation.
    pub(crate) fn set_local_meta(&mut self, meta: Bytes) -> Incarnation {
        let record = &mut self.records[LOCAL_SLOT];
        record.set_meta(meta);
        record.incarnation = record.incarnation.next();
        let incarnation = record.incarnation;
        self.sync_local();
        incarnation
    }
}

/// The message accusing `m` of its stored (non-alive) state.
fn accusation(local: &NodeName, m: &Record) -> Message {
    match m.state {
        State::Suspect | State::Alive => Message::Suspect(Suspect {
            name: m.name.clone(),
            incarnation: m.incarnation,
            from: local.clone(),
        }),
        State::Dead => Message::Dead(Dead {
            name: m.name.clone(),
            incarnation: m.incarnation,
            from: local.clone(),
        }),
        State::Left => Message::Dead(Dead {
            name: m.name.clone(),
            incarnation: m.incarnation,
            from: m.name.clone(),
        }),
    }
}

#[cfg(test)]
#[path = "membership/tests.rs"]
mod tests;

/// Takes `record`'s suspicion timer, if any, out of the deadline index.
fn unindex_timer(deadlines: &mut BTreeSet<(Instant, NodeName)>, record: &Record) {
    if let Some(timer) = record.suspicion() {
        deadlines.remove(&(timer.deadline(), record.name.clone()));
    }
}
