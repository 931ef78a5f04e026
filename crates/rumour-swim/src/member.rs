//! Who is in the cluster: names, incarnations, states and the member record.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The longest node name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A member's unique name in the cluster (1 to [`MAX_NAME_LEN`] bytes of UTF-8).
///
/// Shared, not copied: names are interned process-wide, so every holder of a name (the member
/// tables of all nodes in the process, the probe order, queued events) refers to one
/// allocation, equal names compare by pointer, and a name decoded from the network costs a
/// lookup, not an allocation.
#[derive(Clone)]
pub struct NodeName(intern::Shared);

/// Hashes the text (equal names have equal text).
impl std::hash::Hash for NodeName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Equal names share one allocation (they are interned), so the pointers decide: unequal names
/// are told apart without reading their text.
impl PartialEq for NodeName {
    fn eq(&self, other: &NodeName) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for NodeName {}

/// Names sort by their text.
impl Ord for NodeName {
    fn cmp(&self, other: &NodeName) -> std::cmp::Ordering {
        if self == other {
            std::cmp::Ordering::Equal
        } else {
            self.as_str().cmp(other.as_str())
        }
    }
}

impl PartialOrd for NodeName {
    fn partial_cmp(&self, other: &NodeName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

mod intern;

impl NodeName {
    /// Checks the length of `name`.
    pub fn new(name: impl AsRef<str>) -> Result<NodeName, Error> {
        let name = name.as_ref();
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(Error::InvalidName {
                len: name.len(),
                max: MAX_NAME_LEN,
            });
        }
        Ok(NodeName(intern::intern(name)))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address of the name's shared allocation: equal for equal names, distinct for
    /// distinct names held at the same time. A key for indexes that are searched but never
    /// iterated into an output (its order differs from run to run).
    pub(crate) fn identity(&self) -> usize {
        std::sync::Arc::as_ptr(&self.0) as usize
    }
}

impl std::borrow::Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeName {
    type Error = Error;
    fn try_from(name: String) -> Result<Self, Error> {
        NodeName::new(name)
    }
}

impl TryFrom<&str> for NodeName {
    type Error = Error;
    fn try_from(name: &str) -> Result<Self, Error> {
        NodeName::new(name)
    }
}

impl<'de> Deserialize<'de> for NodeName {
    /// Reads the name in place (no `String` is made for it) and checks its length.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = NodeName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a node name of 1 to {MAX_NAME_LEN} bytes")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<NodeName, E> {
                NodeName::new(name).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Serialize for NodeName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A member's incarnation number: raised only by the member itself, to refute an accusation
/// or to announce new metadata. Between two claims about one member, the higher incarnation
/// wins.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Incarnation(pub u32);

impl Incarnation {
    /// The next incarnation (saturating at `u32::MAX`).
    #[must_use]
    pub fn next(self) -> Incarnation {
        Incarnation(self.0.saturating_add(1))
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the local node believes about a member.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum State {
    /// Answers probes (or has not been caught failing).
    Alive,
    /// Failed a probe; declared dead when its suspicion timeout expires unless it refutes.
    Suspect,
    /// Declared failed.
    Dead,
    /// Said goodbye (a dead message from itself).
    Left,
}

impl State {
    /// Alive or Suspect: the member is still taken to be part of the cluster.
    #[must_use]
    pub fn is_live(self) -> bool {
        matches!(self, State::Alive | State::Suspect)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Dead => "dead",
            State::Left => "left",
        })
    }
}

/// One member as the local node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// Unique name.
    pub name: NodeName,
    /// Advertised address (datagrams and streams).
    pub addr: SocketAddr,
    /// Application metadata, at most `Config::meta_max_size` bytes.
    pub meta: Bytes,
    /// Highest incarnation heard of for this member; it never goes backwards.
    pub incarnation: Incarnation,
    /// Current state.
    pub state: State,
    /// When the state last changed (local clock).
    pub state_changed_at: Instant,
    /// The smoothed round-trip time of this node's direct probes of the member (each answered
    /// probe moves it a quarter of the way to the new sample; the first sets it), `None` until
    /// a direct probe was answered, and for the local node.
    pub rtt: Option<Duration>,
}
