//! Smoke test of the cluster benchmark binary: four nodes on 127.0.0.1 with the `fast`
//! profile, one repetition of `join` and `broadcast`. Checks the shape of the JSON lines, not
//! the speed.

use std::process::Command;

use serde_json::Value;

/// Checks that the summary `field` of a report line is positive and ordered.
fn positive_summary(report: &Value, field: &str) {
    let summary = &report[field];
    let get = |name: &str| {
        summary[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{field}.{name} is a number in {report}"))
    };
    let (min, median, max) = (get("min"), get("median"), get("max"));
    assert!(min > 0.0, "{field}.min is positive in {report}");
    assert!(
        min <= median && median <= max,
        "{field} is ordered in {report}"
    );
}

#[test]
fn a_four_node_run_prints_one_json_line_per_scenario_with_positive_times() {
    let output = Command::new(env!("CARGO_BIN_EXE_cluster"))
        .args(["--scenario", "join,broadcast", "--nodes", "4"])
        .args(["--profile", "fast", "--repeat", "1", "--seed", "7"])
        .output()
        .expect("the benchmark binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the benchmark failed:\n{stderr}");

    let stdout = String::from_utf8(output.stdout).expect("the output is UTF-8");
    let reports: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect();
    let scenarios: Vec<&str> = reports
        .iter()
        .map(|r| r["scenario"].as_str().expect("a scenario name"))
        .collect();
    assert_eq!(scenarios, ["join", "broadcast"]);
    for report in &reports {
        assert_eq!(report["impl"], "rumour");
        assert_eq!(report["profile"], "fast");
        assert_eq!(report["n"], 4);
        assert_eq!(report["repeat"], 1);
        positive_summary(report, "seconds");
        assert!(report.get("first_seconds").is_none(), "only detect has it");
        assert!(report.get("cpu_per_node_s").is_none(), "only steady has it");
    }
}

#[test]
fn the_simulated_run_reports_the_same_fields_on_virtual_time_and_replays() {
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_cluster"))
            .args(["--sim", "--scenario", "join,detect,steady", "--nodes", "4"])
            .args(["--repeat", "1", "--seed", "7", "--steady-secs", "2"])
            .output()
            .expect("the benchmark binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "the benchmark failed:\n{stderr}");
        String::from_utf8(output.stdout).expect("the output is UTF-8")
    };
    let stdout = run();
    let reports: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect();
    let scenarios: Vec<&str> = reports
        .iter()
        .map(|r| r["scenario"].as_str().expect("a scenario name"))
        .collect();
    assert_eq!(scenarios, ["join", "detect", "steady"]);
    for report in &reports {
        assert_eq!(report["impl"], "rumour-sim");
        assert_eq!(report["n"], 4);
    }
    positive_summary(&reports[0], "seconds");
    positive_summary(&reports[1], "first_seconds");
    assert!(
        reports[2]["bytes_per_node_s"]
            .as_f64()
            .is_some_and(|b| b > 0.0)
    );
    assert!(
        reports[2].get("cpu_per_node_s").is_none(),
        "no CPU on virtual time"
    );
    let heap = reports[2]["heap_bytes"].as_f64().unwrap_or(0.0);
    let per_pair = reports[2]["heap_per_pair_bytes"].as_f64().unwrap_or(0.0);
    assert!(heap > 0.0, "the nodes' heap is counted: {}", reports[2]);
    assert!(
        (per_pair - heap / 16.0).abs() < 0.1,
        "over n²: {}",
        reports[2]
    );
    assert!(
        reports[2].get("rss_bytes").is_none(),
        "the process's resident set is not the simulation's"
    );
    // Everything but the process's heap, which its runtime threads' allocations move.
    let protocol = |stdout: &str| -> Vec<Value> {
        stdout
            .lines()
            .map(|line| {
                let mut report: Value = serde_json::from_str(line).expect("a JSON object");
                let fields = report.as_object_mut().expect("an object");
                fields.remove("heap_bytes");
                fields.remove("heap_per_pair_bytes");
                report
            })
            .collect()
    };
    assert_eq!(protocol(&run()), protocol(&stdout), "one seed, one result");
}
