//! Tidy checks: the architecture invariants that plain text can check.
//!
//! They run as ordinary tests (`cargo test -p xtask`), so `cargo xtask ci` runs them too.

use std::fs;
use std::path::{Path, PathBuf};

/// The crates that must stay sans-IO: no tokio, no OS clock, no unseeded randomness.
const SANS_IO: [&str; 3] = ["rumour-swim", "rumour-ring", "rumour-gossip"];

/// What sans-IO code must never call (before its `#[cfg(test)]` section).
const FORBIDDEN_IN_SANS_IO: [&str; 7] = [
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "from_entropy",
    "OsRng",
    "tokio",
    "std::net::UdpSocket",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn crate_dirs() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .expect("crates/ exists")
        .map(|e| e.expect("readable crates/ entry").path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.push(root.join("xtask"));
    dirs.push(root.join("benches"));
    dirs.sort();
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The non-test part of a source file: everything before its first `#[cfg(test)]`.
fn non_test_part(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

/// The `[dependencies]` section of a manifest (not dev-dependencies).
fn dependencies_section(manifest: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == "[dependencies]";
            continue;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn sans_io_crates_do_not_depend_on_tokio() {
    for name in SANS_IO {
        let manifest = fs::read_to_string(
            workspace_root()
                .join("crates")
                .join(name)
                .join("Cargo.toml"),
        )
        .expect("sans-IO crate manifest exists");
        let deps = dependencies_section(&manifest);
        for banned in ["tokio", "async-trait", "rumour-transport", "rumour-cluster"] {
            assert!(
                !deps.lines().any(|l| l.trim_start().starts_with(banned)),
                "{name} must stay sans-IO but depends on {banned}"
            );
        }
    }
}

#[test]
fn sans_io_crates_read_no_clock_and_no_unseeded_rng() {
    let mut offences = Vec::new();
    for name in SANS_IO {
        let mut files = Vec::new();
        rust_files(
            &workspace_root().join("crates").join(name).join("src"),
            &mut files,
        );
        for file in files {
            let text = fs::read_to_string(&file).expect("readable source file");
            for (number, line) in non_test_part(&text).lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for banned in FORBIDDEN_IN_SANS_IO {
                    if code.contains(banned) {
                        offences.push(format!("{}:{}: {banned}", file.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "sans-IO code reads the outside world:\n{}",
        offences.join("\n")
    );
}

#[test]
fn every_crate_uses_the_workspace_lints() {
    for dir in crate_dirs() {
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).expect("manifest exists");
        let compact: String = manifest.split_whitespace().collect();
        assert!(
            compact.contains("[lints]workspace=true"),
            "{} does not use the workspace lints ([lints] workspace = true)",
            dir.display()
        );
    }
}

#[test]
fn architecture_doc_names_every_crate() {
    let doc = fs::read_to_string(workspace_root().join("docs/architecture.md"))
        .expect("docs/architecture.md exists");
    for dir in crate_dirs() {
        let name = dir
            .file_name()
            .expect("crate dir has a name")
            .to_string_lossy()
            .into_owned();
        assert!(
            doc.contains(&name),
            "docs/architecture.md does not mention `{name}`"
        );
    }
}

#[test]
fn non_test_part_stops_at_the_test_module() {
    let text = "fn a() {}\n#[cfg(test)]\nmod tests { Instant::now(); }";
    assert!(!non_test_part(text).contains("Instant::now"));
}

#[test]
fn every_lint_relaxation_says_why() {
    let mut files = Vec::new();
    for dir in crate_dirs() {
        rust_files(&dir, &mut files);
    }
    let mut offences = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).expect("readable source file");
        let lines: Vec<&str> = text.lines().collect();
        for (number, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let relaxes = ["#[allow(", "#![allow(", "#[expect(", "#![expect("]
                .iter()
                .any(|marker| trimmed.starts_with(marker));
            if !relaxes {
                continue;
            }
            // The attribute may span lines: read on to its closing `)]`.
            let mut attribute = String::new();
            for l in &lines[number..] {
                attribute.push_str(l);
                if l.contains(")]") {
                    break;
                }
            }
            if !attribute.contains("reason") {
                offences.push(format!("{}:{}", file.display(), number + 1));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "lint relaxations without `reason = \"...\"`:\n{}",
        offences.join("\n")
    );
}
