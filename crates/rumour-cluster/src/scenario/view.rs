//! What the scenarios read from and write into a node, beyond the node's own API.

use std::time::Instant;

use rumour_ring::{Instance, InstanceRef, Ring, State as InstanceState, Tokens};
use rumour_swim::State;
use rumour_wire::StableHasher;

use crate::Node;

/// The ring a node stores, borrowed (tombstones included): `None` if the key is absent, deleted,
/// or holds another type. Scenario checks read every node's ring every poll, so they must not
/// clone it the way [`Node::ring`] does.
pub(super) fn ring_of(node: &Node) -> Option<&Ring> {
    node.gossip()
        .entry(crate::DEFAULT_RING_KEY)
        .filter(|e| !e.is_deleted())?
        .value
        .as_any()
        .downcast_ref::<Ring>()
}

/// The ring's topology as [`Node::ring`] shows it: described instances that are not `Left`
/// tombstones, in id order.
pub(super) fn topology(node: &Node) -> impl Iterator<Item = InstanceRef<'_>> {
    ring_of(node)
        .into_iter()
        .flat_map(Ring::instances)
        .filter(|i| i.state() != InstanceState::Left)
}

/// The scenarios' view of a node: what they read from and write into it beyond its own API
/// (tests use it too).
pub trait ScenarioView {
    /// Whether this node lists `name` as alive.
    fn sees_alive(&self, name: &str) -> bool;

    /// Whether the ring holds instance `id` in the Active state.
    fn ring_has_active(&self, id: &str) -> bool;

    /// A stable hash of the ring's topology: instance ids, states and tokens, not heartbeats.
    fn ring_topology_digest(&self) -> u64;

    /// Writes a small marker value under `key` (a one-instance ring named after the key), for
    /// dissemination measurements.
    fn put_marker(&mut self, now: Instant, key: &str);

    /// Whether the store holds the marker `key`.
    fn has_marker(&self, key: &str) -> bool;
}

impl ScenarioView for Node {
    fn sees_alive(&self, name: &str) -> bool {
        self.member_state(name) == Some(State::Alive)
    }

    fn ring_has_active(&self, id: &str) -> bool {
        ring_of(self)
            .and_then(|r| r.instance(id).map(|i| i.state() == InstanceState::Active))
            .unwrap_or(false)
    }

    fn ring_topology_digest(&self) -> u64 {
        let mut hasher = StableHasher::new();
        for instance in topology(self) {
            hasher.write_str(instance.id());
            hasher.write_str(instance.state().as_str());
            for token in instance.tokens().iter() {
                hasher.write(&token.to_le_bytes());
            }
        }
        hasher.finish()
    }

    fn put_marker(&mut self, now: Instant, key: &str) {
        let wall = self.gossip().wall_time(now);
        let result = self.cas::<Ring>(now, key, |_| {
            let mut ring = Ring::new();
            let instance = Instance::new(
                "marker",
                "",
                InstanceState::Active,
                Tokens::new(vec![1]),
                wall,
            );
            ring.set_instance(key, instance).ok()?;
            Some(ring)
        });
        if let Err(error) = result {
            tracing::warn!(%error, key, "marker not written");
        }
    }

    fn has_marker(&self, key: &str) -> bool {
        self.gossip().entry(key).is_some()
    }
}
