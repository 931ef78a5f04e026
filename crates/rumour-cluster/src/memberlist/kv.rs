//! The KV store over memberlist's user and local-state channels, as grafana/dskit does it
//! (`docs/protocol-memberlist.md`, "The KV over memberlist's channels"):
//!
//! - each change the store gossips is one user message whose payload is a dskit
//!   `KeyValuePair` ([`rumour_memberlist::kv`]), in a packet (packed into compounds with the
//!   SWIM messages) or, when too large for one, a stream user message;
//! - a received user message that decodes as a `KeyValuePair` whose codec the store has
//!   registered is merged into the store ([`Gossip::handle_change`]); any other user message
//!   is the application's;
//! - a push/pull's user state is the whole store in dskit's full-state framing
//!   (`LocalState`), and a received one is merged (`MergeRemoteState`,
//!   [`Gossip::handle_full_state`]).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rumour_gossip::{Gossip, KeyChange, Marker};
use rumour_memberlist::kv::{decode_full_state, encode_full_state};
use rumour_memberlist::{KeyValuePair, KvLimits};
use rumour_ring::Timestamp;

use super::Adapter;

/// Bytes a KV change costs in a memberlist packet beyond its native encoding's length: the
/// user message's type byte, the compound part's two-byte length, and the at most three bytes
/// a `KeyValuePair` takes more than the native change (five field tags and a two-byte
/// `deleted` against a variant, an option and a one-byte flag). With it as the store's
/// `message_overhead`, the store's size of a change (length, its varint, the overhead) is never
/// below what the change costs in a memberlist compound.
pub(crate) const KV_MESSAGE_OVERHEAD: usize = 5;

/// A change of the store as a dskit pair. Times past `i64::MAX` milliseconds saturate.
pub(crate) fn to_pair(change: KeyChange) -> KeyValuePair {
    KeyValuePair {
        key: change.key,
        value: change.value.map(|v| v.to_vec()).unwrap_or_default(),
        codec: change.codec,
        deleted: change.marker.deleted,
        update_time_millis: i64::try_from(change.marker.updated.0).unwrap_or(i64::MAX),
    }
}

/// A dskit pair as a change of the store: an empty value is no value (a marker-only change,
/// as rumour sends a deletion); a negative time (before 1970) is time 0.
pub(crate) fn to_change(pair: KeyValuePair) -> KeyChange {
    KeyChange {
        key: pair.key,
        codec: pair.codec,
        value: (!pair.value.is_empty()).then(|| Bytes::from(pair.value)),
        marker: Marker {
            updated: Timestamp(u64::try_from(pair.update_time_millis).unwrap_or(0)),
            deleted: pair.deleted,
        },
    }
}

/// The store's limits, as the pair decoder's: nothing over them is copied.
pub(crate) fn limits(gossip: &Gossip) -> KvLimits {
    let config = gossip.config();
    KvLimits {
        max_key_len: config.max_key_len,
        max_codec_len: KvLimits::default().max_codec_len,
        max_value_bytes: config.max_value_bytes,
        max_pairs: config.max_keys,
    }
}

impl Adapter {
    /// A broadcast the store filled, as the payload of a memberlist user message (a dskit
    /// pair); `None` (counted as unmapped) for anything but a change.
    pub(crate) fn kv_payload(&mut self, broadcast: &[u8]) -> Option<Vec<u8>> {
        let Some(change) = KeyChange::decode_broadcast(broadcast) else {
            self.stats.unmapped += 1;
            return None;
        };
        self.stats.kv_sent += 1;
        Some(to_pair(change).to_bytes())
    }

    /// A user message received from `from` (packet or stream): merged into the store if it is
    /// a KV pair whose codec the store has registered (`None`); otherwise the application's
    /// payload, given back.
    pub(crate) fn receive_user(
        &mut self,
        gossip: &mut Gossip,
        now: Instant,
        from: SocketAddr,
        payload: Vec<u8>,
    ) -> Option<Vec<u8>> {
        let pair = KeyValuePair::decode(&payload, &limits(gossip))
            .ok()
            .filter(|pair| gossip.has_codec(&pair.codec));
        let Some(pair) = pair else {
            self.stats.user_received += 1;
            return Some(payload);
        };
        self.stats.kv_received += 1;
        if let Err(error) = gossip.handle_change(now, from, to_change(pair), payload.len()) {
            tracing::debug!(%error, %from, "KV pair refused");
            self.stats.kv_refused += 1;
        }
        None
    }

    /// The whole store in dskit's full-state framing, for a push/pull's user state; empty if
    /// the store is, or if the state would exceed what a memberlist peer accepts (counted in
    /// `kv_states_refused`).
    pub(crate) fn user_state(&mut self, gossip: &Gossip) -> Vec<u8> {
        let pairs: Vec<KeyValuePair> = gossip.full_state().into_iter().map(to_pair).collect();
        if pairs.is_empty() {
            return Vec::new();
        }
        let len: usize = pairs.iter().map(|p| 4 + p.encoded_len()).sum();
        // Nothing is reserved for a state over the limit.
        let fits = len <= self.codec.limits.max_user_state;
        let mut state = Vec::with_capacity(if fits { len } else { 0 });
        if !fits || encode_full_state(&mut state, &pairs).is_err() {
            tracing::warn!(len, "KV state too large for a push/pull, not sent");
            self.stats.kv_states_refused += 1;
            return Vec::new();
        }
        self.stats.kv_states_sent += 1;
        state
    }

    /// Merges a push/pull's user state from `from` (dskit's `MergeRemoteState`). A state
    /// larger than the store's `max_message_bytes` is refused unread; a pair that does not
    /// decode or that the store refuses is counted in `kv_refused` and skipped; a framing error
    /// ends the state (the pairs before it are merged) and is counted in `kv_states_refused`.
    pub(crate) fn merge_user_state(
        &mut self,
        gossip: &mut Gossip,
        now: Instant,
        from: SocketAddr,
        state: &[u8],
    ) {
        if state.len() > gossip.config().max_message_bytes {
            self.stats.kv_states_refused += 1;
            return;
        }
        let mut changes = Vec::new();
        let mut broken = false;
        for item in decode_full_state(state, &limits(gossip)) {
            match item {
                Ok(pair) => changes.push(to_change(pair)),
                Err(
                    rumour_memberlist::Error::FullState { .. }
                    | rumour_memberlist::Error::TooLarge {
                        what: "pairs in a KV full state",
                        ..
                    },
                ) => broken = true,
                Err(_) => self.stats.kv_refused += 1,
            }
        }
        if broken {
            tracing::debug!(%from, "KV state cut short by a framing error");
            self.stats.kv_states_refused += 1;
        }
        // Pairs of codecs the store does not know are skipped and counted by the store
        // (`unknown_codec`), as dskit skips them.
        let count = changes.len();
        match gossip.handle_full_state(now, from, changes, state.len()) {
            Ok(refused) => {
                self.stats.kv_states_received += 1;
                self.stats.kv_received += count as u64;
                self.stats.kv_refused += refused as u64;
            }
            Err(error) => {
                tracing::debug!(%error, %from, "KV state refused");
                self.stats.kv_states_refused += 1;
            }
        }
    }
}
