//! What a stream costs on the real transport besides its latency: a TCP connection to set up
//! (a round trip before the message's bytes) unless the sender still holds one to that peer,
//! and a limit on the connections a node keeps open inbound. The model follows
//! `rumour_transport::NetTransport`:
//!
//! - a sender keeps one connection per peer and closes it after [`StreamConfig::idle_timeout`]
//!   without use; a stream on an open connection pays the link's latency only, one on a new
//!   connection two more one-way latencies first (SYN, SYN-ACK);
//! - a receiver keeps at most [`StreamConfig::max_inbound`] connections open. A new one past
//!   it takes the place of the one idle longest (idle: its last message delivered); if every
//!   one is busy, it waits until the first of them turns idle.
//!
//! With [`StreamConfig::refuse_past_limit`] the receiver instead closes a new connection past
//! the limit unread, as the transport did before it evicted idle connections: the stream is
//! lost ([`Drop::Refused`](super::network::Drop::Refused)), and its sender finds out only by
//! what does not happen. A mass join to one seed then loses every join exchange past the
//! limit while the first joiners' idle connections hold the seed's places (the 16.5 s join of
//! 256 nodes on sockets: the losers' fifth attempt, after 1 + 2 + 4 + 8 s of back-off, came
//! once those connections had idled out).
//!
//! Simulated nodes each have an IP of their own, so the transport's per-IP limit never
//! applies here (nor on the cluster benchmark, whose nodes each bind a loopback IP of their
//! own).

use std::collections::BTreeMap;
use std::time::Duration;

use super::NodeId;

/// The connection model's settings; the defaults are the transport's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Whether streams pay for connections at all (`false`: every stream costs its latency
    /// only, as before the model existed).
    pub enabled: bool,
    /// A sender closes a connection unused this long (`NetConfig::idle_timeout`, 10 s).
    pub idle_timeout: Duration,
    /// Most connections a node keeps open inbound (`NetConfig::max_inbound_streams`, 128).
    pub max_inbound: usize,
    /// Refuse a new connection past `max_inbound` (its stream is lost) instead of replacing an
    /// idle one or waiting: the transport's behaviour before it evicted idle connections, kept
    /// to show what it cost.
    pub refuse_past_limit: bool,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            enabled: true,
            idle_timeout: Duration::from_secs(10),
            max_inbound: 128,
            refuse_past_limit: false,
        }
    }
}

/// One open connection, seen from its receiver.
#[derive(Clone, Copy, Debug)]
struct Conn {
    /// When its sender last wrote on it.
    last_used: Duration,
    /// When its last message is delivered (busy until then, idle after).
    busy_until: Duration,
}

/// Counters of the connection model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Connections set up (a round trip paid).
    pub connections: u64,
    /// Idle connections closed to make room for a new one.
    pub evicted: u64,
    /// New connections that found every place busy and waited.
    pub waited: u64,
    /// New connections refused past the limit (with [`StreamConfig::refuse_past_limit`]).
    pub refused: u64,
}

/// The open connections of every node, by receiver then sender.
#[derive(Clone, Debug, Default)]
pub(crate) struct Streams {
    pub(crate) config: StreamConfig,
    inbound: BTreeMap<NodeId, BTreeMap<NodeId, Conn>>,
    pub(crate) stats: StreamStats,
}

/// What a stream pays before its message's own latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cost {
    /// An open connection: nothing.
    Open,
    /// A new connection: a round trip, after waiting this long for a place.
    Connect {
        /// Time spent waiting for a place at the receiver.
        wait: Duration,
    },
    /// A new connection the receiver closed unread: the stream is lost.
    Refused,
}

impl Streams {
    /// Whether `from` holds an open connection to `to` at `now`, and if not, how long a new
    /// one waits for a place at `to`. Makes the room (evicting an idle connection) but does not
    /// record the stream: [`Streams::record`] does once its delivery time is known.
    pub(crate) fn cost(&mut self, from: NodeId, to: NodeId, now: Duration) -> Cost {
        if !self.config.enabled {
            return Cost::Open;
        }
        let idle_timeout = self.config.idle_timeout;
        let conns = self.inbound.entry(to).or_default();
        if conns
            .get(&from)
            .is_some_and(|c| now < c.last_used + idle_timeout)
        {
            return Cost::Open;
        }
        conns.remove(&from);
        self.stats.connections += 1;
        if conns.len() < self.config.max_inbound {
            return Cost::Connect {
                wait: Duration::ZERO,
            };
        }
        // Closed by their senders meanwhile: gone.
        conns.retain(|_, c| now < c.last_used + idle_timeout);
        if conns.len() < self.config.max_inbound {
            return Cost::Connect {
                wait: Duration::ZERO,
            };
        }
        if self.config.refuse_past_limit {
            self.stats.refused += 1;
            return Cost::Refused;
        }
        let idle_longest = conns
            .iter()
            .filter(|(_, c)| c.busy_until <= now)
            .min_by_key(|(id, c)| (c.busy_until, **id))
            .map(|(id, _)| *id);
        if let Some(id) = idle_longest {
            conns.remove(&id);
            self.stats.evicted += 1;
            return Cost::Connect {
                wait: Duration::ZERO,
            };
        }
        // Every place is busy: wait for the first to turn idle, then take its place.
        let (id, first_idle) = conns
            .iter()
            .map(|(id, c)| (*id, c.busy_until))
            .min_by_key(|(id, at)| (*at, *id))
            .expect("the receiver is at its limit, so it has connections");
        conns.remove(&id);
        self.stats.waited += 1;
        self.stats.evicted += 1;
        Cost::Connect {
            wait: first_idle - now,
        }
    }

    /// Records a stream from `from` to `to` written at `now` and delivered at `delivered`.
    pub(crate) fn record(&mut self, from: NodeId, to: NodeId, now: Duration, delivered: Duration) {
        if !self.config.enabled {
            return;
        }
        let conn = self
            .inbound
            .entry(to)
            .or_default()
            .entry(from)
            .or_insert(Conn {
                last_used: now,
                busy_until: delivered,
            });
        conn.last_used = now;
        conn.busy_until = conn.busy_until.max(delivered);
    }

    /// Forgets every connection to and from `node` (it crashed or restarted).
    pub(crate) fn forget(&mut self, node: NodeId) {
        self.inbound.remove(&node);
        for conns in self.inbound.values_mut() {
            conns.remove(&node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_connection_is_set_up_once_and_reused_until_it_idles_out() {
        let mut streams = Streams::default();
        let (a, b) = (NodeId(0), NodeId(1));
        let connect = Cost::Connect {
            wait: Duration::ZERO,
        };
        assert_eq!(streams.cost(a, b, MS), connect);
        streams.record(a, b, MS, 2 * MS);
        assert_eq!(streams.cost(a, b, 5 * MS), Cost::Open);
        streams.record(a, b, 5 * MS, 6 * MS);
        // The other way is another connection.
        assert_eq!(streams.cost(b, a, 5 * MS), connect);
        // Ten seconds after its last use the sender has closed it.
        assert_eq!(
            streams.cost(a, b, 5 * MS + Duration::from_secs(10)),
            connect
        );
        assert_eq!(streams.stats.connections, 3);
    }

    #[test]
    fn past_the_inbound_limit_a_new_connection_replaces_an_idle_one_or_waits_for_one() {
        let mut streams = Streams {
            config: StreamConfig {
                max_inbound: 2,
                ..StreamConfig::default()
            },
            ..Streams::default()
        };
        let to = NodeId(9);
        for (i, from) in [NodeId(0), NodeId(1)].into_iter().enumerate() {
            let _ = streams.cost(from, to, MS);
            streams.record(from, to, MS, (10 + i as u32) * MS);
        }
        // Both busy until 10 and 11 ms: the third waits for the first to turn idle.
        assert_eq!(
            streams.cost(NodeId(2), to, 5 * MS),
            Cost::Connect { wait: 5 * MS }
        );
        streams.record(NodeId(2), to, 5 * MS, 20 * MS);
        // At 15 ms node 1's connection is idle: a fourth takes its place at once.
        assert_eq!(
            streams.cost(NodeId(3), to, 15 * MS),
            Cost::Connect {
                wait: Duration::ZERO
            }
        );
        assert_eq!((streams.stats.waited, streams.stats.evicted), (1, 2));
    }

    #[test]
    fn refusing_past_the_limit_loses_the_stream_while_idle_connections_hold_every_place() {
        let mut streams = Streams {
            config: StreamConfig {
                max_inbound: 1,
                refuse_past_limit: true,
                ..StreamConfig::default()
            },
            ..Streams::default()
        };
        let to = NodeId(9);
        let _ = streams.cost(NodeId(0), to, MS);
        streams.record(NodeId(0), to, MS, 2 * MS);
        // Node 0's connection is idle, but it is not given up: node 1 is refused until node 0
        // closes it, ten seconds after its last use.
        assert_eq!(streams.cost(NodeId(1), to, 5 * MS), Cost::Refused);
        assert_eq!(
            streams.cost(NodeId(1), to, MS + Duration::from_secs(10)),
            Cost::Connect {
                wait: Duration::ZERO
            }
        );
        assert_eq!(streams.stats.refused, 1);
    }
}
