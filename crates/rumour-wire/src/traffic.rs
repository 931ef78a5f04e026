//! Message and byte counters by message kind, the one shape every layer's stats use.

use std::collections::BTreeMap;
use std::marker::PhantomData;

/// The most kinds a [`TrafficByKind`] counts.
pub const MAX_KINDS: usize = 16;

/// A layer's message kinds, for counting. Implemented by a fieldless enum.
pub trait CountedKind: Copy + 'static {
    /// Every kind, in a fixed order (at most [`MAX_KINDS`]).
    const ALL: &'static [Self];

    /// This kind's position in [`CountedKind::ALL`].
    fn index(self) -> usize;

    /// A short lowercase name (for metric labels).
    fn as_str(self) -> &'static str;
}

/// Messages and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages.
    pub messages: u64,
    /// Their encoded bytes (without the embedder's framing).
    pub bytes: u64,
}

impl Traffic {
    /// The sum of two counts.
    #[must_use]
    pub fn plus(self, other: Traffic) -> Traffic {
        Traffic {
            messages: self.messages + other.messages,
            bytes: self.bytes + other.bytes,
        }
    }
}

/// [`Traffic`] for each kind `K`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficByKind<K> {
    counts: [Traffic; MAX_KINDS],
    kind: PhantomData<K>,
}

impl<K> Default for TrafficByKind<K> {
    fn default() -> Self {
        TrafficByKind {
            counts: [Traffic::default(); MAX_KINDS],
            kind: PhantomData,
        }
    }
}

impl<K: CountedKind> TrafficByKind<K> {
    /// Counts one message of `kind` and `bytes` bytes.
    pub fn count(&mut self, kind: K, bytes: usize) {
        if let Some(slot) = self.counts.get_mut(kind.index()) {
            slot.messages += 1;
            slot.bytes += bytes as u64;
        }
    }

    /// The traffic of one kind.
    #[must_use]
    pub fn get(&self, kind: K) -> Traffic {
        self.counts.get(kind.index()).copied().unwrap_or_default()
    }

    /// Every kind and its traffic, in [`CountedKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (K, Traffic)> + '_ {
        K::ALL.iter().map(|&kind| (kind, self.get(kind)))
    }

    /// The sum over all kinds.
    #[must_use]
    pub fn total(&self) -> Traffic {
        self.iter()
            .fold(Traffic::default(), |acc, (_, t)| acc.plus(t))
    }

    /// Adds every kind's traffic into `totals` under `"<layer>.<kind>"` (the names the
    /// benchmarks and the scenarios report, such as `swim.ping` or `kv.digest`).
    pub fn add_to(&self, layer: &str, totals: &mut BTreeMap<String, Traffic>) {
        for (kind, t) in self.iter() {
            let slot = totals
                .entry(format!("{layer}.{}", kind.as_str()))
                .or_default();
            *slot = slot.plus(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        Ping,
        Ack,
    }

    impl CountedKind for Kind {
        const ALL: &'static [Kind] = &[Kind::Ping, Kind::Ack];
        fn index(self) -> usize {
            self as usize
        }
        fn as_str(self) -> &'static str {
            match self {
                Kind::Ping => "ping",
                Kind::Ack => "ack",
            }
        }
    }

    #[test]
    fn counts_are_kept_per_kind_and_summed() {
        let mut traffic = TrafficByKind::default();
        traffic.count(Kind::Ping, 10);
        traffic.count(Kind::Ping, 5);
        traffic.count(Kind::Ack, 1);
        assert_eq!(
            traffic.get(Kind::Ping),
            Traffic {
                messages: 2,
                bytes: 15
            }
        );
        assert_eq!(
            traffic.total(),
            Traffic {
                messages: 3,
                bytes: 16
            }
        );
        let names: Vec<_> = traffic.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["ping", "ack"]);
    }

    #[test]
    fn layers_add_up_by_kind_name() {
        let mut a = TrafficByKind::default();
        a.count(Kind::Ping, 10);
        let mut b = TrafficByKind::default();
        b.count(Kind::Ping, 4);
        b.count(Kind::Ack, 1);
        let mut totals = BTreeMap::new();
        a.add_to("swim", &mut totals);
        b.add_to("swim", &mut totals);
        a.add_to("kv", &mut totals);
        assert_eq!(
            totals["swim.ping"],
            Traffic {
                messages: 2,
                bytes: 14
            }
        );
        assert_eq!(
            totals["swim.ack"],
            Traffic {
                messages: 1,
                bytes: 1
            }
        );
        assert_eq!(
            totals["kv.ping"],
            Traffic {
                messages: 1,
                bytes: 10
            }
        );
        assert_eq!(totals["kv.ack"], Traffic::default());
    }
}
