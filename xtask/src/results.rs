//! The JSON lines of the cluster benchmarks (`benches/src/bin/cluster.rs` and
//! `benches/peers/memberlist`), grouped and summarised into the side-by-side table of
//! `docs/benchmarks.md`.
//!
//! `cargo xtask bench-peers` runs each repetition as its own process (`--repeat 1`), so each
//! line holds one sample; it annotates every line with `rep`, `date`, `commit` and `load`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// The two implementations, in table order.
pub const IMPLS: [&str; 2] = ["rumour", "memberlist"];

/// One JSON line: one scenario of one implementation (one repetition when `repeat` is 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// `rumour` or `memberlist`.
    pub implementation: String,
    /// `lan` or `fast`.
    pub profile: String,
    /// Cluster size.
    pub n: u64,
    /// `join`, `detect`, `broadcast` or `steady`.
    pub scenario: String,
    /// `seconds.median`: time until every node saw it.
    pub seconds: Option<f64>,
    /// `first_seconds.median`: time until the first survivor declared the victim failed.
    pub first_seconds: Option<f64>,
    /// CPU seconds per node per second.
    pub cpu: Option<f64>,
    /// Bytes sent per node per second.
    pub bytes: Option<f64>,
    /// Datagrams and reliable messages sent per node per second.
    pub packets: Option<f64>,
    /// When the line was measured (added by bench-peers).
    pub date: Option<String>,
    /// The commit measured (added by bench-peers).
    pub commit: Option<String>,
    /// The 1-minute load average when the repetition started (added by bench-peers).
    pub load: Option<f64>,
    /// Why the repetition failed before it reported this scenario (added by bench-peers).
    pub error: Option<String>,
    /// The line as read, written back unchanged when the file is merged.
    pub raw: String,
}

impl Line {
    /// Parses one JSON line; `None` for blank lines, errors for anything else unreadable.
    pub fn parse(text: &str) -> Result<Option<Line>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {text}"))?;
        let string = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        let number = |key: &str| value.get(key).and_then(Value::as_f64);
        let median = |key: &str| {
            value
                .get(key)
                .and_then(|s| s.get("median"))
                .and_then(Value::as_f64)
        };
        let missing = |key: &str| format!("no `{key}` in {text}");
        Ok(Some(Line {
            implementation: string("impl").ok_or_else(|| missing("impl"))?,
            profile: string("profile").ok_or_else(|| missing("profile"))?,
            n: value
                .get("n")
                .and_then(Value::as_u64)
                .ok_or_else(|| missing("n"))?,
            scenario: string("scenario").ok_or_else(|| missing("scenario"))?,
            seconds: median("seconds"),
            first_seconds: median("first_seconds"),
            cpu: number("cpu_per_node_s"),
            bytes: number("bytes_per_node_s"),
            packets: number("packets_per_node_s"),
            date: string("date"),
            commit: string("commit"),
            load: number("load"),
            error: string("error"),
            raw: text.to_string(),
        }))
    }

    /// Every line of a JSON-lines file.
    pub fn parse_all(text: &str) -> Result<Vec<Line>, String> {
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(line) = Line::parse(line).map_err(|e| format!("line {}: {e}", i + 1))? {
                lines.push(line);
            }
        }
        Ok(lines)
    }
}

/// What the table and the plots show: one number per line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Measure {
    /// `join`: seconds until every node sees every member alive.
    Join,
    /// `detect`: seconds until the first survivor declares the victim failed.
    DetectFirst,
    /// `detect`: seconds until every survivor does.
    DetectAll,
    /// `broadcast`: seconds until every node has the value.
    Broadcast,
    /// `steady`: CPU per node-second.
    Cpu,
    /// `steady`: bytes sent per node-second.
    Bytes,
    /// `steady`: datagrams and stream messages sent per node-second.
    Packets,
}

impl Measure {
    /// Every measure, in table order.
    pub const ALL: [Measure; 7] = [
        Measure::Join,
        Measure::DetectFirst,
        Measure::DetectAll,
        Measure::Broadcast,
        Measure::Cpu,
        Measure::Bytes,
        Measure::Packets,
    ];

    /// The measure's name in the table, with its unit.
    pub fn label(self) -> &'static str {
        match self {
            Measure::Join => "join, all nodes (s)",
            Measure::DetectFirst => "detect, first survivor (s)",
            Measure::DetectAll => "detect, all survivors (s)",
            Measure::Broadcast => "broadcast, all nodes (s)",
            Measure::Cpu => "idle CPU (ms per node-s)",
            Measure::Bytes => "idle bytes per node-s",
            Measure::Packets => "idle packets per node-s",
        }
    }

    /// The scenario that measures it.
    pub fn scenario(self) -> &'static str {
        match self {
            Measure::Join => "join",
            Measure::DetectFirst | Measure::DetectAll => "detect",
            Measure::Broadcast => "broadcast",
            Measure::Cpu | Measure::Bytes | Measure::Packets => "steady",
        }
    }

    /// The measure's value in `line`, in the table's unit (`None` if the line is of another
    /// scenario or a failure).
    pub fn of(self, line: &Line) -> Option<f64> {
        if line.scenario != self.scenario() || line.error.is_some() {
            return None;
        }
        match self {
            Measure::Join | Measure::DetectAll | Measure::Broadcast => line.seconds,
            Measure::DetectFirst => line.first_seconds,
            Measure::Cpu => line.cpu.map(|cpu| cpu * 1000.0),
            Measure::Bytes => line.bytes,
            Measure::Packets => line.packets,
        }
    }

    /// `value` with the digits the table shows.
    fn format(self, value: f64) -> String {
        match self {
            Measure::Join | Measure::DetectFirst | Measure::DetectAll | Measure::Broadcast => {
                format!("{value:.3}")
            }
            Measure::Cpu => format!("{value:.2}"),
            Measure::Bytes => format!("{value:.0}"),
            Measure::Packets => format!("{value:.1}"),
        }
    }
}

/// Median, minimum and maximum of some samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// How many samples.
    pub count: usize,
}

impl Stats {
    /// The statistics of `values`; `None` if there are none.
    pub fn of(mut values: Vec<f64>) -> Option<Stats> {
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        let median = match values.len() {
            0 => return None,
            len if len % 2 == 1 => values[mid],
            _ => (values[mid - 1] + values[mid]) / 2.0,
        };
        Some(Stats {
            median,
            min: values[0],
            max: values[values.len() - 1],
            count: values.len(),
        })
    }
}

/// The samples of `measure` for one implementation, profile and size.
pub fn samples(
    lines: &[Line],
    implementation: &str,
    profile: &str,
    n: u64,
    measure: Measure,
) -> Vec<f64> {
    lines
        .iter()
        .filter(|l| l.implementation == implementation && l.profile == profile && l.n == n)
        .filter_map(|l| measure.of(l))
        .collect()
}

/// How many repetitions of `measure`'s scenario failed for one implementation, profile and
/// size.
pub fn failures(
    lines: &[Line],
    implementation: &str,
    profile: &str,
    n: u64,
    measure: Measure,
) -> usize {
    lines
        .iter()
        .filter(|l| l.implementation == implementation && l.profile == profile && l.n == n)
        .filter(|l| l.scenario == measure.scenario() && l.error.is_some())
        .count()
}

/// The profiles present, `lan` first, and the sizes measured under each.
pub fn groups(lines: &[Line]) -> Vec<(String, Vec<u64>)> {
    let mut groups: BTreeMap<(u8, String), Vec<u64>> = BTreeMap::new();
    for line in lines {
        let order = match line.profile.as_str() {
            "lan" => 0,
            "fast" => 1,
            _ => 2,
        };
        let sizes = groups.entry((order, line.profile.clone())).or_default();
        if !sizes.contains(&line.n) {
            sizes.push(line.n);
        }
    }
    groups
        .into_iter()
        .map(|((_, profile), mut sizes)| {
            sizes.sort_unstable();
            (profile, sizes)
        })
        .collect()
}

/// The side-by-side tables, one per profile, in Markdown.
pub fn table(lines: &[Line]) -> String {
    let mut out = String::new();
    for (profile, sizes) in groups(lines) {
        let _ = writeln!(out, "**Profile `{profile}`**\n");
        out.push_str(
            "| N | measure | rumour median | rumour min–max | memberlist median | \
             memberlist min–max | rumour / memberlist |\n",
        );
        out.push_str("| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for &n in &sizes {
            for measure in Measure::ALL {
                let stats = IMPLS.map(|i| Stats::of(samples(lines, i, &profile, n, measure)));
                let failed = IMPLS.map(|i| failures(lines, i, &profile, n, measure));
                if stats.iter().all(Option::is_none) && failed.iter().all(|f| *f == 0) {
                    continue;
                }
                let median = |i: usize| {
                    let ran = stats[i].map_or(0, |s| s.count) + failed[i];
                    let note = match (failed[i], ran) {
                        (0, 1) => " (1 run)".to_string(),
                        (0, _) => String::new(),
                        (f, ran) => format!(" ({f} of {ran} failed)"),
                    };
                    match stats[i] {
                        Some(s) => format!("{}{note}", measure.format(s.median)),
                        None if failed[i] > 0 => format!("failed{note}"),
                        None => "–".to_string(),
                    }
                };
                let range = |s: &Option<Stats>| {
                    s.map_or("–".to_string(), |s| {
                        format!("{}–{}", measure.format(s.min), measure.format(s.max))
                    })
                };
                let ratio = match stats {
                    [Some(r), Some(m)] if m.median > 0.0 => format!("{:.2}", r.median / m.median),
                    _ => "–".to_string(),
                };
                let _ = writeln!(
                    out,
                    "| {n} | {} | {} | {} | {} | {} | {ratio} |",
                    measure.label(),
                    median(0),
                    range(&stats[0]),
                    median(1),
                    range(&stats[1]),
                );
            }
        }
        out.push('\n');
    }
    out
}

/// The dates, commits and load averages the lines were measured at, in one sentence.
pub fn provenance(lines: &[Line]) -> String {
    let mut dates: Vec<&str> = lines.iter().filter_map(|l| l.date.as_deref()).collect();
    dates.sort_unstable();
    let mut commits: Vec<&str> = lines.iter().filter_map(|l| l.commit.as_deref()).collect();
    commits.sort_unstable();
    commits.dedup();
    let loads = Stats::of(lines.iter().filter_map(|l| l.load).collect());
    let mut out = String::new();
    if let (Some(first), Some(last)) = (dates.first(), dates.last()) {
        let _ = write!(out, "Measured {first} to {last}");
    } else {
        out.push_str("Measured at an unrecorded date");
    }
    if !commits.is_empty() {
        let _ = write!(out, " at commit {}", commits.join(", "));
    }
    if let Some(load) = loads {
        let _ = write!(
            out,
            "; 1-minute load average {:.1} to {:.1} (median {:.1}) when the repetitions started",
            load.min, load.max, load.median
        );
    }
    out.push('.');
    out
}

/// Replaces the text between the lines `begin` and `end` of `doc` with `body`.
pub fn replace_between(doc: &str, begin: &str, end: &str, body: &str) -> Result<String, String> {
    let start = doc
        .find(begin)
        .ok_or_else(|| format!("no `{begin}` marker"))?
        + begin.len();
    let stop = doc[start..]
        .find(end)
        .ok_or_else(|| format!("no `{end}` marker after `{begin}`"))?
        + start;
    Ok(format!("{}\n{}{}", &doc[..start], body, &doc[stop..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUMOUR_JOIN: &str = r#"{"impl":"rumour","profile":"lan","n":16,"scenario":"join","repeat":1,"seconds":{"median":0.5,"min":0.5,"max":0.5},"load":2.5,"date":"2026-12-01T03:00:00Z","commit":"abc"}"#;
    const MEMBERLIST_JOIN: &str = r#"{"impl":"memberlist","profile":"lan","n":16,"scenario":"join","repeat":1,"seconds":{"median":0.25,"min":0.25,"max":0.25}}"#;
    const STEADY: &str = r#"{"impl":"memberlist","profile":"lan","n":16,"scenario":"steady","repeat":1,"cpu_per_node_s":0.0005,"bytes_per_node_s":91.0,"packets_per_node_s":2.0}"#;

    #[test]
    fn a_line_keeps_every_field_of_the_report() {
        let line = Line::parse(RUMOUR_JOIN).unwrap().unwrap();
        assert_eq!(line.implementation, "rumour");
        assert_eq!(
            (line.n, line.seconds, line.load),
            (16, Some(0.5), Some(2.5))
        );
        let steady = Line::parse(STEADY).unwrap().unwrap();
        assert_eq!(Measure::Cpu.of(&steady), Some(0.5));
        assert_eq!(Measure::Bytes.of(&steady), Some(91.0));
        assert_eq!(Measure::Join.of(&steady), None);
        assert!(Line::parse("{\"impl\":\"rumour\"}").is_err());
        assert_eq!(Line::parse("  ").unwrap(), None);
    }

    #[test]
    fn the_table_shows_both_medians_and_their_ratio() {
        let lines = Line::parse_all(&[RUMOUR_JOIN, MEMBERLIST_JOIN, STEADY].join("\n")).unwrap();
        let table = table(&lines);
        assert!(
            table.contains("| 16 | join, all nodes (s) | 0.500 (1 run) | 0.500–0.500 | 0.250 (1 run) | 0.250–0.250 | 2.00 |"),
            "{table}"
        );
        assert!(table.contains("| 16 | idle bytes per node-s | – | – | 91 (1 run) | 91–91 | – |"));
    }

    #[test]
    fn failed_repetitions_are_counted_in_the_table() {
        let failed = r#"{"impl":"rumour","profile":"lan","n":16,"scenario":"join","repeat":1,"error":"timed out"}"#;
        let lines = Line::parse_all(&[failed, failed, MEMBERLIST_JOIN].join("\n")).unwrap();
        let table = table(&lines);
        assert!(
            table.contains(
                "| 16 | join, all nodes (s) | failed (2 of 2 failed) | – | 0.250 (1 run) |"
            ),
            "{table}"
        );
        let lines = Line::parse_all(&[failed, RUMOUR_JOIN].join("\n")).unwrap();
        assert!(table_row_has(&lines, "| 0.500 (1 of 2 failed) |"));
    }

    fn table_row_has(lines: &[Line], cell: &str) -> bool {
        table(lines).contains(cell)
    }

    #[test]
    fn stats_take_the_middle_value_or_the_mean_of_the_middle_two() {
        let odd = Stats::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        assert_eq!(Stats::of(vec![4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Stats::of(vec![]), None);
    }

    #[test]
    fn the_generated_part_is_replaced_in_place() {
        let doc = "a\n<!-- b -->\nold\n<!-- e -->\nz\n";
        let new = replace_between(doc, "<!-- b -->", "<!-- e -->", "new\n").unwrap();
        assert_eq!(new, "a\n<!-- b -->\nnew\n<!-- e -->\nz\n");
        assert!(replace_between("a", "<!-- b -->", "<!-- e -->", "").is_err());
    }

    #[test]
    fn provenance_names_dates_commits_and_load() {
        let lines = Line::parse_all(RUMOUR_JOIN).unwrap();
        assert_eq!(
            provenance(&lines),
            "Measured 2026-12-01T03:00:00Z to 2026-12-01T03:00:00Z at commit abc; 1-minute load \
             average 2.5 to 2.5 (median 2.5) when the repetitions started."
        );
    }
}
