//! `/metrics`: every node's counters in the Prometheus text format, labelled by node.
//!
//! The registry is built afresh from counter snapshots on each scrape: the nodes keep their
//! counters in plain structs (sans-IO), and this is the one place that names them.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use rumour::ClusterStats;
use rumour::ring::State as InstanceState;
use rumour::swim::{RttHistogram, State};
use rumour::wire::{CountedKind, TrafficByKind};

type Labels = Vec<(&'static str, String)>;
type Counters = Family<Labels, Counter>;
type Gauges = Family<Labels, Gauge>;
type Histograms = Family<Labels, Snapshot>;

/// A histogram the node already aggregated (the nodes count samples in fixed buckets, sans-IO),
/// encoded as a Prometheus histogram in seconds.
#[derive(Debug, Default)]
struct Snapshot(Mutex<RttHistogram>);

impl Snapshot {
    fn set(&self, histogram: RttHistogram) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = histogram;
    }
}

impl TypedMetric for Snapshot {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Snapshot {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Prometheus buckets are cumulative and end with +Inf, whose count is the total.
        let mut buckets: Vec<(f64, u64)> = h
            .cumulative()
            .map(|(bound, n)| (bound.as_secs_f64(), n))
            .collect();
        buckets.push((f64::MAX, h.count)); // the encoder writes f64::MAX as +Inf
        encoder.encode_histogram::<NoLabelSet>(h.sum().as_secs_f64(), h.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// One node's figures for a scrape.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The node's name.
    pub node: String,
    /// Whether it is ready.
    pub ready: bool,
    /// Its counters.
    pub stats: ClusterStats,
    /// Ring instances by state, as this node sees the ring.
    pub ring: Vec<(InstanceState, usize)>,
}

/// The metric families, registered once per scrape.
struct Families {
    members: Gauges,
    health: Gauges,
    ready: Gauges,
    queue: Gauges,
    keys: Gauges,
    ring: Gauges,
    swim_messages: Counters,
    swim_bytes: Counters,
    gossip_messages: Counters,
    gossip_bytes: Counters,
    transport_messages: Counters,
    transport_bytes: Counters,
    dropped: Counters,
    send_errors: Counters,
    failure_detector: Counters,
    pullpush: Counters,
    cas: Counters,
    user: Counters,
    rtt: Histograms,
}

impl Families {
    fn register(registry: &mut Registry) -> Families {
        let mut gauge = |name: &str, help: &str| {
            let family = Gauges::default();
            registry.register(name, help, family.clone());
            family
        };
        let members = gauge("rumour_members", "Members this node knows, by state");
        let health = gauge(
            "rumour_health_score",
            "Lifeguard local health score (0 is healthy)",
        );
        let ready = gauge(
            "rumour_ready",
            "1 once the node has joined, 0 before or after leave",
        );
        let queue = gauge("rumour_queue_depth", "Messages or events waiting, by queue");
        let keys = gauge(
            "rumour_kv_keys",
            "Keys in the KV store, deleted ones included",
        );
        let ring = gauge(
            "rumour_ring_instances",
            "Ring instances by state, as this node sees the ring",
        );
        let rtt = Histograms::default();
        registry.register(
            "rumour_probe_rtt_seconds",
            "Round-trip times of answered direct probes (memberlist's ping delegate)",
            rtt.clone(),
        );
        let mut counter = |name: &str, help: &str| {
            let family = Counters::default();
            registry.register(name, help, family.clone());
            family
        };
        Families {
            members,
            health,
            ready,
            queue,
            keys,
            ring,
            swim_messages: counter(
                "rumour_swim_messages",
                "SWIM messages by direction and kind",
            ),
            swim_bytes: counter(
                "rumour_swim_bytes",
                "SWIM message bytes by direction and kind",
            ),
            gossip_messages: counter(
                "rumour_gossip_messages",
                "KV gossip messages by direction and kind",
            ),
            gossip_bytes: counter(
                "rumour_gossip_bytes",
                "KV gossip message bytes by direction and kind",
            ),
            transport_messages: counter(
                "rumour_transport_messages",
                "Messages through the transport by direction and kind",
            ),
            transport_bytes: counter(
                "rumour_transport_bytes",
                "Payload bytes through the transport by direction",
            ),
            dropped: counter(
                "rumour_dropped",
                "Input or output dropped, by layer and reason",
            ),
            send_errors: counter("rumour_send_errors", "Sends that failed, by layer"),
            failure_detector: counter(
                "rumour_failure_detector",
                "Failure detector events: probes, suspicions, refutations, deaths",
            ),
            pullpush: counter(
                "rumour_pullpush",
                "Full-state exchanges by layer and outcome",
            ),
            cas: counter("rumour_cas", "KV compare-and-swaps by outcome"),
            user: counter(
                "rumour_user_messages",
                "User messages and broadcasts by outcome",
            ),
            rtt,
        }
    }
}

fn labels(node: &str, pairs: &[(&'static str, &str)]) -> Labels {
    let mut labels = vec![("node", node.to_string())];
    labels.extend(pairs.iter().map(|(k, v)| (*k, (*v).to_string())));
    labels
}

fn set(family: &Gauges, node: &str, pairs: &[(&'static str, &str)], value: usize) {
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    family.get_or_create(&labels(node, pairs)).set(value);
}

fn add(family: &Counters, node: &str, pairs: &[(&'static str, &str)], value: u64) {
    family.get_or_create(&labels(node, pairs)).inc_by(value);
}

/// The Prometheus text exposition of `samples`.
pub fn render(samples: &[Sample]) -> String {
    let mut registry = Registry::default();
    let families = Families::register(&mut registry);
    for sample in samples {
        record(&families, sample);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

fn record(f: &Families, sample: &Sample) {
    let (node, s) = (sample.node.as_str(), &sample.stats);
    for state in [State::Alive, State::Suspect, State::Dead, State::Left] {
        set(
            &f.members,
            node,
            &[("state", &state.to_string())],
            s.members.get(state),
        );
    }
    set(&f.health, node, &[], s.health_score as usize);
    set(&f.ready, node, &[], usize::from(sample.ready));
    let queues = [
        ("swim_broadcasts", s.swim.queue_depth as usize),
        ("swim_events", s.swim.event_queue_depth as usize),
        ("gossip_local", s.gossip.local_queued),
        ("gossip_forwarded", s.gossip.forwarded_queued),
    ];
    for (queue, depth) in queues {
        set(&f.queue, node, &[("queue", queue)], depth);
    }
    set(&f.keys, node, &[], s.gossip.keys);
    for (state, count) in &sample.ring {
        set(&f.ring, node, &[("state", state.as_str())], *count);
    }
    record_traffic(f, node, s);
    record_drops(f, node, s);
    record_protocol(f, node, s);
    f.rtt.get_or_create(&labels(node, &[])).set(s.swim.rtt);
    let u = &s.node.user;
    let user = [
        ("sent", u.sent),
        ("broadcast", u.broadcasts),
        ("received", u.received),
        ("duplicate", u.duplicates),
        ("refused", u.refused),
        ("malformed", u.malformed),
        ("unverified", u.unverified),
    ];
    for (outcome, count) in user {
        add(&f.user, node, &[("outcome", outcome)], count);
    }
}

/// Each message kind's name, messages and bytes.
fn kinds<K: CountedKind>(
    t: &TrafficByKind<K>,
) -> impl Iterator<Item = (&'static str, u64, u64)> + '_ {
    t.iter()
        .map(|(kind, t)| (kind.as_str(), t.messages, t.bytes))
}

fn record_traffic(f: &Families, node: &str, s: &ClusterStats) {
    for (direction, traffic) in [("sent", &s.swim.sent), ("received", &s.swim.received)] {
        for (kind, messages, bytes) in kinds(traffic) {
            let pairs = [("direction", direction), ("kind", kind)];
            add(&f.swim_messages, node, &pairs, messages);
            add(&f.swim_bytes, node, &pairs, bytes);
        }
    }
    for (direction, traffic) in [("sent", &s.gossip.sent), ("received", &s.gossip.received)] {
        for (kind, messages, bytes) in kinds(traffic) {
            let pairs = [("direction", direction), ("kind", kind)];
            add(&f.gossip_messages, node, &pairs, messages);
            add(&f.gossip_bytes, node, &pairs, bytes);
        }
    }
    let t = &s.transport;
    let messages = [
        ("sent", "datagram", t.datagrams_out),
        ("sent", "reliable", t.reliable_out),
        ("received", "datagram", t.datagrams_in),
        ("received", "reliable", t.reliable_in),
    ];
    for (direction, kind, count) in messages {
        add(
            &f.transport_messages,
            node,
            &[("direction", direction), ("kind", kind)],
            count,
        );
    }
    add(
        &f.transport_bytes,
        node,
        &[("direction", "sent")],
        t.bytes_out,
    );
    add(
        &f.transport_bytes,
        node,
        &[("direction", "received")],
        t.bytes_in,
    );
}

fn record_drops(f: &Families, node: &str, s: &ClusterStats) {
    let (t, fr, d) = (&s.transport, &s.frame, &s.driver);
    // `sends_dropped` is the driver's total; each reason is reported once.
    let driver_queue_full = d
        .sends_dropped
        .saturating_sub(d.sends_dropped_peers + d.sends_dropped_bytes);
    let drops = [
        ("transport", "over_limit", t.dropped_over_limit),
        ("transport", "timeout", t.dropped_timeout),
        ("transport", "queue_full", t.dropped_queue_full),
        ("transport", "malformed", t.dropped_malformed),
        ("transport", "source_mismatch", t.dropped_source_mismatch),
        ("transport", "io", t.dropped_io),
        ("transport", "streams_refused", t.streams_refused),
        (
            "transport",
            "streams_refused_per_ip",
            t.streams_refused_per_ip,
        ),
        ("transport", "source_not_allowed", t.refused_source),
        ("transport", "queue_bytes", t.dropped_queue_bytes),
        ("transport", "label", t.dropped_label),
        ("transport", "send_peer_table_full", t.sends_refused_peers),
        ("transport", "send_queue_bytes", t.sends_refused_bytes),
        ("frame", "truncated", fr.dropped_truncated),
        ("frame", "bad_magic", fr.dropped_bad_magic),
        (
            "frame",
            "unsupported_version",
            fr.dropped_unsupported_version,
        ),
        ("frame", "malformed", fr.dropped_malformed),
        ("frame", "checksum", fr.dropped_checksum),
        ("frame", "label_mismatch", fr.dropped_label_mismatch),
        ("frame", "missing_label", fr.dropped_missing_label),
        ("frame", "over_limit", fr.dropped_over_limit),
        ("frame", "sealed", fr.dropped_sealed),
        ("frame", "not_authentic", fr.dropped_not_authentic),
        ("frame", "unsealed", fr.dropped_unsealed),
        ("node", "refused", s.node.messages_refused),
        ("node", "events", s.node.events_dropped),
        ("swim", "decode_error", s.swim.decode_errors),
        ("swim", "transmit_queue_full", s.swim.transmits_dropped),
        ("swim", "broadcast_queue_full", s.swim.broadcasts_dropped),
        ("swim", "relay_refused", s.swim.relays_dropped),
        ("gossip", "invalid", s.gossip.invalid),
        ("gossip", "unknown_codec", s.gossip.unknown_codec),
        ("gossip", "watch_buffer_full", s.gossip.watch_drops),
        ("driver", "send_queue_full", driver_queue_full),
        ("driver", "peer_table_full", d.sends_dropped_peers),
        ("driver", "send_queue_bytes", d.sends_dropped_bytes),
    ];
    for (layer, reason, count) in drops {
        add(
            &f.dropped,
            node,
            &[("layer", layer), ("reason", reason)],
            count,
        );
    }
    add(
        &f.send_errors,
        node,
        &[("layer", "transport")],
        t.send_errors,
    );
    add(
        &f.send_errors,
        node,
        &[("layer", "driver")],
        s.driver.send_errors,
    );
}

fn record_protocol(f: &Families, node: &str, s: &ClusterStats) {
    let (w, g) = (&s.swim, &s.gossip);
    let detector = [
        ("probe", w.probes),
        ("failed_probe", w.failed_probes),
        ("indirect_probe", w.indirect_probes),
        ("suspicion", w.suspicions),
        ("confirmation", w.confirmations),
        ("refutation", w.refutations),
        ("death_declared", w.deaths_declared),
    ];
    for (event, count) in detector {
        add(&f.failure_detector, node, &[("event", event)], count);
    }
    let pullpush = [
        ("swim", "started", w.pullpushes),
        ("gossip", "started", g.pullpush_started),
        ("gossip", "completed", g.pullpush_completed),
        ("gossip", "timeout", g.pullpush_timeouts),
        ("gossip", "served", g.pullpush_served),
        ("gossip", "refused", g.pullpush_refused),
        ("gossip", "quiet", g.pullpush_quiet),
    ];
    for (layer, outcome, count) in pullpush {
        add(
            &f.pullpush,
            node,
            &[("layer", layer), ("outcome", outcome)],
            count,
        );
    }
    let cas = [
        ("attempt", g.cas_attempts),
        ("success", g.cas_successes),
        ("conflict", g.cas_conflicts),
    ];
    for (outcome, count) in cas {
        add(&f.cas, node, &[("outcome", outcome)], count);
    }
}
