//! The member table and its state rules (alive / suspect / dead / left, incarnations).
//!
//! Rules, for a claim about member `m` at incarnation `i` against the stored incarnation `s`:
//!
//! | claim | stored state | accepted when | effect |
//! | --- | --- | --- | --- |
//! | alive | unknown | always | insert Alive (joined) |
//! | alive | any | `i > s` | Alive with the claim's address and metadata |
//! | alive | Suspect / Dead / Left | `i <= s` | no change; the stored accusation is sent to the claimant so it can refute |
//! | suspect | Alive | `i >= s` | Suspect, suspicion timer started |
//! | suspect | Suspect | `i >= s` | a new independent accuser confirms (timer shrinks) |
//! | dead | Alive / Suspect | `i >= s` | Dead (Left when `from == m`) |
//! | dead from `m` | Dead | `i >= s` | Left |
//! | any accusation | Dead / Left | `i > s` | incarnation raised, no transition |
//! | suspect / dead about self | | `i >= s` | refute: incarnation `max(s, i) + 1`, alive broadcast |
//! | alive about self | | `i > s`, or `i == s` with other address or metadata | refute |
//!
//! The stored incarnation never decreases, so a stale alive can never resurrect a member that
//! was accused at a higher incarnation. A name claimed from another address is refused unless
//! the member left, or has been dead longer than `dead_node_reclaim_time`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::member::{Incarnation, Member, NodeName, State};
use crate::message::{Alive, Dead, MemberState, Message, Suspect};
use crate::suspicion::Suspicion;

/// One row of the table.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) member: Member,
    /// Boxed: few members are suspected at once, and every entry would otherwise carry the
    /// timer's hundred bytes.
    pub(crate) suspicion: Option<Box<Suspicion>>,
    last_accused: Option<Instant>,
}

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
    /// The stored incarnation rose; the state did not change.
    Raised,
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
}

/// The member table, the local node included, sorted by name.
#[derive(Debug)]
pub(crate) struct Membership {
    local: NodeName,
    entries: BTreeMap<NodeName, Entry>,
    /// Members with a suspicion timer (an index, so that timers are found without a scan).
    suspected: BTreeSet<NodeName>,
    /// Least time between two accusations sent directly to one member.
    accuse_spacing: Duration,
    /// See `Config::dead_node_reclaim_time`.
    reclaim_time: Option<Duration>,
    /// Members in state Alive, the local node included (kept with every transition, so that
    /// counting is not a scan).
    alive: usize,
    /// Every stored name in no particular order, for picking random members without a scan.
    names: Vec<NodeName>,
}

impl Membership {
    pub(crate) fn new(
        local: Member,
        accuse_spacing: Duration,
        reclaim_time: Option<Duration>,
    ) -> Membership {
        let name = local.name.clone();
        let alive = usize::from(local.state == State::Alive);
        let mut entries = BTreeMap::new();
        entries.insert(name.clone(), Entry::new(local));
        let names = vec![name.clone()];
        Membership {
            local: name,
            entries,
            suspected: BTreeSet::new(),
            accuse_spacing,
            reclaim_time,
            alive,
            names,
        }
    }

    /// The member at `index` of an arbitrary but deterministic order, `index < len()`: with a
    /// random index, a random member in O(log n).
    pub(crate) fn nth_random(&self, index: usize) -> Option<&Member> {
        self.get(self.names.get(index)?)
    }

    /// Members in state Alive, the local node included.
    pub(crate) fn num_alive(&self) -> usize {
        self.alive
    }

    /// Marks the local node Left (it said goodbye).
    pub(crate) fn leave_local(&mut self, now: Instant) -> &Member {
        let local = self.local.clone();
        let entry = self.entries.get_mut(&local).expect("self is stored");
        if entry.member.state == State::Alive {
            self.alive -= 1;
        }
        entry.member.state = State::Left;
        entry.member.state_changed_at = now;
        &entry.member
    }

    pub(crate) fn local(&self) -> &Member {
        &self.entries[&self.local].member
    }

    pub(crate) fn local_mut(&mut self) -> &mut Member {
        &mut self
            .entries
            .get_mut(&self.local)
            .expect("self is stored")
            .member
    }

    pub(crate) fn get<Q>(&self, name: &Q) -> Option<&Member>
    where
        NodeName: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.get(name).map(|e| &e.member)
    }

    pub(crate) fn members(&self) -> impl Iterator<Item = &Member> {
        self.entries.values().map(|e| &e.member)
    }

    /// Deadlines of the running suspicion timers.
    pub(crate) fn suspicion_deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.suspected
            .iter()
            .filter_map(|name| self.entries.get(name)?.suspicion.as_deref())
            .map(Suspicion::deadline)
    }

    /// Names of the members with a running suspicion timer.
    pub(crate) fn suspects(&self) -> Vec<NodeName> {
        self.suspected.iter().cloned().collect()
    }

    /// A suspect held for at least `age` that the local node has not yet probed out of turn:
    /// marked as probed and returned. A refutation normally clears a suspicion within a second or
    /// two; one still standing this long may be a refutation this node missed (gossip's
    /// retransmit limit lets one in tens of thousands slip), and a direct ping, whose ack carries
    /// the suspect's latest alive, settles it before the timer declares a live member dead.
    pub(crate) fn stale_suspect(&mut self, now: Instant, age: Duration) -> Option<NodeName> {
        let entries = &mut self.entries;
        self.suspected.iter().find_map(|name| {
            let timer = entries.get_mut(name)?.suspicion.as_mut()?;
            if timer.rechecked || now.saturating_duration_since(timer.started()) < age {
                return None;
            }
            timer.rechecked = true;
            Some(name.clone())
        })
    }

    /// A suspect's record and its timer.
    pub(crate) fn suspicion_mut(&mut self, name: &NodeName) -> Option<(&Member, &mut Suspicion)> {
        let entry = self.entries.get_mut(name)?;
        let timer = entry.suspicion.as_mut()?;
        Some((&entry.member, timer))
    }

    /// Members known, the local node and unreaped dead ones included (memberlist's `n`).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The alive message describing `name` as stored.
    pub(crate) fn alive_of(&self, name: &NodeName) -> Option<Alive> {
        self.get(name).map(|m| Alive {
            name: m.name.clone(),
            addr: m.addr,
            incarnation: m.incarnation,
            meta: m.meta.clone(),
        })
    }

    /// Every member as a full-state entry.
    pub(crate) fn snapshot(&self) -> Vec<MemberState> {
        self.members()
            .map(|m| MemberState {
                name: m.name.clone(),
                addr: m.addr,
                incarnation: m.incarnation,
                meta: m.meta.clone(),
                state: m.state,
            })
            .collect()
    }

    /// Applies an alive claim.
    pub(crate) fn alive(&mut self, now: Instant, a: &Alive) -> Outcome {
        if a.name == self.local {
            return self.alive_about_self(a);
        }
        let reclaim_time = self.reclaim_time;
        let Some(entry) = self.entries.get_mut(&a.name) else {
            let member = Member {
                name: a.name.clone(),
                addr: a.addr,
                meta: a.meta.clone(),
                incarnation: a.incarnation,
                state: State::Alive,
                state_changed_at: now,
            };
            self.entries.insert(a.name.clone(), Entry::new(member));
            self.names.push(a.name.clone());
            self.alive += 1;
            return Outcome::Joined { new: true };
        };
        let m = &mut entry.member;
        if m.addr != a.addr {
            let dead_for = now.saturating_duration_since(m.state_changed_at);
            let reclaimable = m.state == State::Left
                || (m.state == State::Dead && reclaim_time.is_some_and(|t| dead_for >= t));
            if !reclaimable {
                return Outcome::Conflict {
                    known: m.addr,
                    claimed: a.addr,
                };
            }
        }
        if a.incarnation > m.incarnation {
            let previous = m.state;
            let changed = m.addr != a.addr || m.meta != a.meta || previous == State::Suspect;
            m.addr = a.addr;
            m.meta = a.meta.clone();
            m.incarnation = a.incarnation;
            m.state = State::Alive;
            if previous != State::Alive {
                m.state_changed_at = now;
                self.alive += 1;
            }
            entry.suspicion = None;
            self.suspected.remove(&a.name);
            return match previous {
                State::Dead | State::Left => Outcome::Joined { new: false },
                State::Alive | State::Suspect => Outcome::Refreshed { changed },
            };
        }
        if m.state == State::Alive {
            return Outcome::Ignored;
        }
        // A stale alive about a member held Suspect, Dead or Left (from a reclaimable
        // address, if it changed): it is probably that member, restarted or cut off,
        // announcing itself. Keep the state; tell it what it is accused of.
        m.addr = a.addr;
        self.accuse(now, &a.name)
    }

    fn alive_about_self(&self, a: &Alive) -> Outcome {
        let me = self.local();
        let same = a.addr == me.addr && a.meta == me.meta;
        if a.incarnation < me.incarnation || (a.incarnation == me.incarnation && same) {
            return Outcome::Ignored;
        }
        Outcome::Refute {
            accused: a.incarnation,
        }
    }

    /// The stored accusation against `name`, to send to it (at most once per spacing).
    fn accuse(&mut self, now: Instant, name: &NodeName) -> Outcome {
        let spacing = self.accuse_spacing;
        let Some(entry) = self.entries.get_mut(name) else {
            return Outcome::Ignored;
        };
        if entry
            .last_accused
            .is_some_and(|at| now.saturating_duration_since(at) < spacing)
        {
            return Outcome::Ignored;
        }
        entry.last_accused = Some(now);
        Outcome::Accuse {
            to: entry.member.addr,
            message: accusation(&self.local, &entry.member),
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
            return Outcome::Refute {
                accused: s.incarnation,
            };
        }
        let local = self.local.clone();
        let Some(entry) = self.entries.get_mut(&s.name) else {
            return Outcome::Ignored;
        };
        let m = &mut entry.member;
        if s.incarnation < m.incarnation {
            return Outcome::Ignored;
        }
        let raised = s.incarnation > m.incarnation;
        m.incarnation = s.incarnation;
        match m.state {
            State::Dead | State::Left => raise_or_ignore(raised),
            State::Suspect => {
                let confirmed = match (evidence, entry.suspicion.as_mut()) {
                    (Evidence::Accuser(from), Some(timer)) => timer.confirm(from),
                    _ => false,
                };
                if confirmed {
                    Outcome::Confirmed
                } else {
                    raise_or_ignore(raised)
                }
            }
            State::Alive => {
                m.state = State::Suspect;
                m.state_changed_at = now;
                self.alive -= 1;
                let accuser = match evidence {
                    Evidence::Accuser(from) => from.clone(),
                    Evidence::FullState => local,
                };
                self.suspected.insert(s.name.clone());
                entry.suspicion = Some(Box::new(Suspicion::new(
                    now, accuser, params.k, params.min, params.max,
                )));
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
            return Outcome::Refute {
                accused: d.incarnation,
            };
        }
        let Some(entry) = self.entries.get_mut(&d.name) else {
            return Outcome::Ignored;
        };
        let m = &mut entry.member;
        if d.incarnation < m.incarnation {
            return Outcome::Ignored;
        }
        let raised = d.incarnation > m.incarnation;
        m.incarnation = d.incarnation;
        let left = d.from == d.name;
        match m.state {
            State::Left => raise_or_ignore(raised),
            State::Dead if !left => raise_or_ignore(raised),
            State::Dead | State::Alive | State::Suspect => {
                if m.state == State::Alive {
                    self.alive -= 1;
                }
                m.state = if left { State::Left } else { State::Dead };
                m.state_changed_at = now;
                entry.suspicion = None;
                self.suspected.remove(&d.name);
                if left { Outcome::Left } else { Outcome::Failed }
            }
        }
    }

    /// Applies one entry of a remote full state (a remote Dead counts as Suspect).
    pub(crate) fn merge(
        &mut self,
        now: Instant,
        remote: &MemberState,
        params: SuspicionParams,
    ) -> (Outcome, Option<Message>) {
        match remote.state {
            State::Alive => {
                let alive = Alive {
                    name: remote.name.clone(),
                    addr: remote.addr,
                    incarnation: remote.incarnation,
                    meta: remote.meta.clone(),
                };
                (self.alive(now, &alive), Some(Message::Alive(alive)))
            }
            State::Left => {
                let dead = Dead {
                    name: remote.name.clone(),
                    incarnation: remote.incarnation,
                    from: remote.name.clone(),
                };
                (self.dead(now, &dead), Some(Message::Dead(dead)))
            }
            State::Suspect | State::Dead => {
                let suspect = Suspect {
                    name: remote.name.clone(),
                    incarnation: remote.incarnation,
                    from: self.local.clone(),
                };
                let outcome = self.suspect(now, &suspect, Evidence::FullState, params);
                (outcome, Some(Message::Suspect(suspect)))
            }
        }
    }

    /// Removes dead and left members whose state changed at least `after` ago.
    pub(crate) fn reap(&mut self, now: Instant, after: Duration) -> Vec<Member> {
        let expired: Vec<NodeName> = self
            .entries
            .values()
            .filter(|e| {
                !e.member.state.is_live()
                    && e.member.name != self.local
                    && now.saturating_duration_since(e.member.state_changed_at) >= after
            })
            .map(|e| e.member.name.clone())
            .collect();
        for name in &expired {
            self.suspected.remove(name);
        }
        if !expired.is_empty() {
            self.names.retain(|n| !expired.contains(n));
        }
        expired
            .iter()
            .filter_map(|name| self.entries.remove(name).map(|e| e.member))
            .collect()
    }

    /// Sets the local node's metadata, raising its incarnation.
    pub(crate) fn set_local_meta(&mut self, meta: Bytes) -> Incarnation {
        let me = self.local_mut();
        me.meta = meta;
        me.incarnation = me.incarnation.next();
        me.incarnation
    }
}

impl Entry {
    fn new(member: Member) -> Entry {
        Entry {
            member,
            suspicion: None,
            last_accused: None,
        }
    }
}

fn raise_or_ignore(raised: bool) -> Outcome {
    if raised {
        Outcome::Raised
    } else {
        Outcome::Ignored
    }
}

/// The message accusing `m` of its stored (non-alive) state.
fn accusation(local: &NodeName, m: &Member) -> Message {
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
