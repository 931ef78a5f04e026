//! The JSON line the benchmark prints per scenario, and the process CPU clock it reads.

use std::collections::BTreeMap;

use serde::Serialize;

use super::scenario::{Sample, Scenario, Settings};

/// Clock ticks per second in `/proc/self/stat` (Linux's `USER_HZ`, 100 on every architecture
/// that matters here).
const USER_HZ: f64 = 100.0;

/// Median, minimum and maximum of the repetitions, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Summary {
    /// The summary of `values`, rounded to 0.1 ms; `None` if there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Summary> {
        let mut values: Vec<f64> = values.into_iter().collect();
        values.sort_by(f64::total_cmp);
        Some(Summary {
            median: round(median(&values)?, 4),
            min: round(*values.first()?, 4),
            max: round(*values.last()?, 4),
        })
    }
}

/// One scenario's result: the line printed on standard output. Fields that do not apply to
/// the scenario are left out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// `rumour`, or `rumour-sim` with `--sim` (other implementations print the same format).
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// The configuration profile.
    pub profile: &'static str,
    /// Cluster size.
    pub n: usize,
    /// Whether frames were sealed (`--keys`); left out when not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keys: bool,
    /// Whether every node bound 127.0.0.1 (`--shared-ip`); left out when not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared_ip: bool,
    /// Whether the simulated transport refused connections past its limit
    /// (`--sim-refuse-past-limit`); left out when not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refuse_past_limit: bool,
    /// The scenario.
    pub scenario: &'static str,
    /// Repetitions.
    pub repeat: usize,
    /// Time until every node saw it (`join`, `detect`, `broadcast`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<Summary>,
    /// Time until the first survivor declared the victim failed (`detect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seconds: Option<Summary>,
    /// Median CPU seconds per node per second (`steady`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_per_node_s: Option<f64>,
    /// Median payload bytes sent per node per second (`steady`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_node_s: Option<f64>,
    /// Median datagrams and reliable messages sent per node per second (`steady`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_per_node_s: Option<f64>,
    /// Median payload bytes sent per node per second by message kind (`steady`): `swim.<kind>`
    /// and `kv.<kind>` as the layers encode them, `framing` for everything else on the wire.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bytes_by_kind: BTreeMap<String, f64>,
    /// Median heap bytes the whole process held at the end of the idle window (`steady`, when
    /// the binary counts its allocations): every node's tables, queues and tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_bytes: Option<f64>,
    /// `heap_bytes` per observer-member pair (divided by n²): an upper bound on what a node
    /// spends per member, per-node costs included (see `docs/benchmarks.md`, "Memory per
    /// member").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_per_pair_bytes: Option<f64>,
    /// Median resident set size of the process at the end of the idle window (`steady`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<f64>,
}

impl Report {
    /// Summarises the repetitions of `scenario`.
    pub fn new(scenario: Scenario, settings: &Settings, samples: &[Sample]) -> Report {
        let idle: Vec<_> = samples.iter().filter_map(|s| s.idle.as_ref()).collect();
        let idle_median = |digits: i32, field: fn(&super::scenario::Idle) -> Option<f64>| {
            let mut values: Vec<f64> = idle.iter().filter_map(|i| field(i)).collect();
            values.sort_by(f64::total_cmp);
            median(&values).map(|m| round(m, digits))
        };
        let heap_bytes = idle_median(0, |i| i.heap.map(|b| b as f64));
        let pairs = (settings.nodes * settings.nodes) as f64;
        Report {
            implementation: if settings.sim { "rumour-sim" } else { "rumour" },
            profile: settings.profile.name(),
            n: settings.nodes,
            keys: settings.keys,
            shared_ip: settings.shared_ip,
            refuse_past_limit: settings.sim_refuse_past_limit,
            scenario: scenario.name(),
            repeat: samples.len(),
            seconds: Summary::of(samples.iter().filter_map(|s| s.seconds)),
            first_seconds: Summary::of(samples.iter().filter_map(|s| s.first_seconds)),
            cpu_per_node_s: idle_median(6, |i| i.cpu),
            bytes_per_node_s: idle_median(1, |i| Some(i.bytes)),
            packets_per_node_s: idle_median(2, |i| Some(i.packets)),
            bytes_by_kind: by_kind_medians(&idle),
            heap_bytes,
            heap_per_pair_bytes: heap_bytes.map(|b| round(b / pairs, 1)),
            rss_bytes: idle_median(0, |i| i.rss.map(|b| b as f64)),
        }
    }
}

/// The median over the repetitions of each kind's bytes per node-second, rounded to 0.01; a
/// kind that sent nothing in every repetition is left out.
fn by_kind_medians(idle: &[&super::scenario::Idle]) -> BTreeMap<String, f64> {
    let mut kinds: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for sample in idle {
        for (kind, &bytes) in &sample.by_kind {
            kinds.entry(kind).or_default().push(bytes);
        }
    }
    kinds
        .into_iter()
        .filter_map(|(kind, mut values)| {
            values.sort_by(f64::total_cmp);
            let m = median(&values)?;
            (m > 0.0).then(|| (kind.to_string(), round(m, 2)))
        })
        .collect()
}

/// The median of sorted `values`.
fn median(values: &[f64]) -> Option<f64> {
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        len if len % 2 == 1 => Some(values[mid]),
        _ => Some((values[mid - 1] + values[mid]) / 2.0),
    }
}

/// `x` rounded to `digits` decimal places.
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// The process's resident set size in bytes; `None` without `/proc`.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU seconds (user + system) this process has used so far; `None` without `/proc`.
pub fn cpu_seconds() -> Option<f64> {
    parse_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in seconds. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from the last `)`: after it come
/// field 3 (state) onwards, utime and stime being fields 14 and 15.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_takes_the_middle_value_or_the_mean_of_the_middle_two() {
        let odd = Summary::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Summary::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
        assert_eq!(Summary::of([]), None);
    }

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.25));
        assert_eq!(parse_cpu_seconds("4242 (short) S 1"), None);
    }

    #[test]
    fn this_process_has_a_cpu_clock_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
        }
    }
}
