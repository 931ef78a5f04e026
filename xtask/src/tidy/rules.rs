//! The tidy rules, each a pure function from text (scanned code, a parsed manifest, the edges
//! table) to the offences it finds. The workspace tests (`workspace.rs`) feed them the real
//! files; the tests below feed them a planted violation each, to prove they can fail.

use std::collections::{BTreeMap, BTreeSet};

use super::manifest::{EdgeRow, Kind, Manifest};
use super::scan::{find_word, line_of};

/// One broken rule: where (a 1-based line, 0 when the offence is an absence) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    /// The line in the file the caller checked.
    pub line: usize,
    /// What is wrong, and the rule's name.
    pub message: String,
}

impl Offence {
    fn new(line: usize, message: impl Into<String>) -> Offence {
        Offence {
            line,
            message: message.into(),
        }
    }
}

/// What sans-IO code must never name, and why.
pub const SANS_IO_BANNED: [(&str, &str); 12] = [
    (
        "HashMap",
        "HashMap in sans-IO code (random iteration order): use BTreeMap",
    ),
    (
        "HashSet",
        "HashSet in sans-IO code (random iteration order): use BTreeSet",
    ),
    (
        "Instant::now",
        "sans-IO code reads the OS clock: take `now` as an argument",
    ),
    (
        "SystemTime::now",
        "sans-IO code reads the OS clock: take `now` as an argument",
    ),
    (
        "thread_rng",
        "unseeded randomness in sans-IO code: use the seeded rng you are given",
    ),
    (
        "from_entropy",
        "unseeded randomness in sans-IO code: use the seeded rng you are given",
    ),
    (
        "OsRng",
        "unseeded randomness in sans-IO code: use the seeded rng you are given",
    ),
    (
        "rand::random",
        "unseeded randomness in sans-IO code: use the seeded rng you are given",
    ),
    ("tokio", "sans-IO code names tokio"),
    ("UdpSocket", "sans-IO code names a socket"),
    ("TcpStream", "sans-IO code names a socket"),
    ("TcpListener", "sans-IO code names a socket"),
];

/// Sans-IO rule: `non_test_code` (scanned, test items blanked) names no clock, no unseeded
/// randomness, no socket, no tokio and no hash-ordered collection.
pub fn sans_io_offences(non_test_code: &str) -> Vec<Offence> {
    let mut offences = Vec::new();
    for (banned, why) in SANS_IO_BANNED {
        for at in find_word(non_test_code, banned) {
            offences.push(Offence::new(
                line_of(non_test_code, at),
                format!("sans-io: `{banned}`: {why}"),
            ));
        }
    }
    // `use rand::{random, Rng};` names `rand::random` too.
    for at in find_word(non_test_code, "rand::{") {
        let group_end = non_test_code[at..]
            .find('}')
            .map_or(non_test_code.len(), |n| at + n);
        if !find_word(&non_test_code[at..group_end], "random").is_empty() {
            offences.push(Offence::new(
                line_of(non_test_code, at),
                "sans-io: `rand::random`: unseeded randomness in sans-IO code",
            ));
        }
    }
    offences.sort_by_key(|o| o.line);
    offences
}

/// Placeholder rule: no `todo!`, `unimplemented!`, `dbg!` or `#[ignore]` in `code` (scanned,
/// tests included).
pub fn placeholder_offences(code: &str) -> Vec<Offence> {
    let mut offences = Vec::new();
    for banned in ["todo!", "unimplemented!", "dbg!"] {
        for at in find_word(code, banned) {
            offences.push(Offence::new(
                line_of(code, at),
                format!("placeholder: `{banned}` left in the code"),
            ));
        }
    }
    for at in find_word(code, "ignore") {
        let Some(before) = code[..at].trim_end().strip_suffix('[') else {
            continue;
        };
        if before.trim_end().ends_with('#') {
            offences.push(Offence::new(
                line_of(code, at),
                "placeholder: `#[ignore]`d test: fix it or delete it",
            ));
        }
    }
    offences.sort_by_key(|o| o.line);
    offences
}

/// Lint rule: every `#[allow(…)]`, `#![allow(…)]`, `#[expect(…)]`, `#![expect(…)]` in `code`
/// (scanned) carries a `reason = "…"`.
pub fn lint_relaxation_offences(code: &str) -> Vec<Offence> {
    let mut offences = Vec::new();
    for word in ["allow", "expect"] {
        for at in find_word(code, word) {
            let Some(before) = code[..at].trim_end().strip_suffix('[') else {
                continue;
            };
            let before = before.trim_end();
            let before = before.strip_suffix('!').map_or(before, str::trim_end);
            if !before.ends_with('#') {
                continue;
            }
            let end = code[at..].find(']').map_or(code.len(), |n| at + n);
            if find_word(&code[at..end], "reason").is_empty() {
                offences.push(Offence::new(
                    line_of(code, at),
                    format!("lint: `#[{word}(…)]` without `reason = \"…\"`"),
                ));
            }
        }
    }
    offences.sort_by_key(|o| o.line);
    offences
}

/// Whether `code` (scanned) names the crate `ident` (`-` already turned into `_`): `ident::…`,
/// `ident!`, `use ident`, `extern crate ident`.
pub fn references_crate(code: &str, ident: &str) -> bool {
    find_word(code, ident).into_iter().any(|at| {
        let after = code[at + ident.len()..].trim_start();
        let before = code[..at].trim_end();
        after.starts_with("::")
            || after.starts_with('!')
            || find_word(before, "use")
                .last()
                .is_some_and(|&u| u + 3 == before.len())
            || before.ends_with("extern crate")
    })
}

/// The code of one crate, as the unused-dependency rule reads it (all scanned).
#[derive(Debug, Default)]
pub struct CrateCode {
    /// `src/` and the bench and example targets, test items and test-module files blanked:
    /// what `[dependencies]` serve.
    pub non_test: String,
    /// Everything: `src/`, `tests/`, `benches/`, `examples/`, test modules.
    pub all: String,
    /// The doc comments of every file: doctests use dev-dependencies too.
    pub docs: String,
    /// `build.rs`.
    pub build: String,
}

/// Unused-dependency rule: each `[dependencies]` entry is named by non-test code (the library,
/// binaries, bench and example targets), each
/// `[dev-dependencies]` entry by any code or doctest, each `[build-dependencies]` entry by
/// `build.rs`. The key is the name code uses (a renamed dependency's key, not its package);
/// `[package.metadata.cargo-machete] ignored` lists the deliberate exceptions. Manifest lines.
pub fn unused_dependency_offences(manifest: &Manifest, code: &CrateCode) -> Vec<Offence> {
    let mut offences = Vec::new();
    for dep in &manifest.deps {
        if manifest.unused_allowed.contains(&dep.key) {
            continue;
        }
        let ident = dep.key.replace('-', "_");
        let (used, whom) = match dep.kind {
            Kind::Normal => (references_crate(&code.non_test, &ident), "non-test code"),
            Kind::Dev => (
                references_crate(&code.all, &ident) || references_crate(&code.docs, &ident),
                "any code or doctest",
            ),
            Kind::Build => (references_crate(&code.build, &ident), "build.rs"),
        };
        if !used {
            let table = match dep.kind {
                Kind::Normal => "dependencies",
                Kind::Dev => "dev-dependencies",
                Kind::Build => "build-dependencies",
            };
            offences.push(Offence::new(
                dep.line,
                format!(
                    "unused-dependency: [{table}] `{}` is never named by {whom} (as `{ident}::`)",
                    dep.key
                ),
            ));
        }
    }
    offences
}

/// Dependency-edges rule: the workspace crates (packages named `rumour*`) in a crate's
/// `[dependencies]` are exactly its row of the architecture doc's table. Lines are manifest
/// lines; an edge the manifest lacks is reported at line 0 with the doc's line.
pub fn edge_offences(manifest: &Manifest, rows: &BTreeMap<String, EdgeRow>) -> Vec<Offence> {
    let krate = &manifest.name;
    let Some(row) = rows.get(krate) else {
        return vec![Offence::new(
            0,
            format!("dependency-edges: `{krate}` has no row in docs/architecture.md's table"),
        )];
    };
    let mut offences = Vec::new();
    let mut present = BTreeSet::new();
    for dep in manifest.deps_of(Kind::Normal) {
        if !dep.package.starts_with("rumour") {
            continue;
        }
        present.insert(dep.package.clone());
        if !row.deps.contains(&dep.package) {
            offences.push(Offence::new(
                dep.line,
                format!(
                    "dependency-edges: `{krate}` depends on `{}`, which its row in \
                     docs/architecture.md (line {}) does not list",
                    dep.package, row.line
                ),
            ));
        }
    }
    for missing in row.deps.difference(&present) {
        offences.push(Offence::new(
            0,
            format!(
                "dependency-edges: docs/architecture.md:{} says `{krate}` depends on \
                 `{missing}`, its [dependencies] do not",
                row.line
            ),
        ));
    }
    offences
}

/// Sans-IO manifest rule: a sans-IO crate's `[dependencies]` hold no runtime or socket crate.
pub fn sans_io_manifest_offences(manifest: &Manifest) -> Vec<Offence> {
    manifest
        .deps_of(Kind::Normal)
        .filter(|d| ["tokio", "async-trait", "mio", "socket2"].contains(&d.package.as_str()))
        .map(|d| {
            Offence::new(
                d.line,
                format!(
                    "sans-io: `{}` must stay sans-IO but depends on `{}`",
                    manifest.name, d.package
                ),
            )
        })
        .collect()
}

/// What a sans-IO crate's `clippy.toml` must disallow.
pub const CLIPPY_DISALLOWED: [&str; 7] = [
    "std::time::Instant::now",
    "std::time::SystemTime::now",
    "rand::thread_rng",
    "rand::random",
    "rand::rngs::OsRng",
    "std::collections::HashMap",
    "std::collections::HashSet",
];

/// Clippy-config rule: a sans-IO crate's `clippy.toml` disallows each of [`CLIPPY_DISALLOWED`].
pub fn clippy_config_offences(clippy_toml: &str) -> Vec<Offence> {
    let compact: String = clippy_toml.split_whitespace().collect();
    CLIPPY_DISALLOWED
        .iter()
        .filter(|path| !compact.contains(&format!("path=\"{path}\"")))
        .map(|path| Offence::new(0, format!("clippy-config: `{path}` is not disallowed")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tidy::manifest::parse;
    use crate::tidy::scan::{blank_test_items, scan};

    fn non_test(source: &str) -> String {
        blank_test_items(&scan(source).code)
    }

    fn lines(offences: &[Offence]) -> Vec<usize> {
        offences.iter().map(|o| o.line).collect()
    }

    #[test]
    fn a_hash_map_in_swim_code_is_caught() {
        let source = "use std::collections::HashMap;\nstruct S { m: HashSet<u8> }\n";
        assert_eq!(lines(&sans_io_offences(&non_test(source))), vec![1, 2]);
    }

    #[test]
    fn the_clock_sockets_tokio_and_unseeded_rng_are_caught() {
        let source = "fn f() {\n let t = Instant::now();\n let r = rand::thread_rng();\n let s = std::net::UdpSocket::bind(a);\n tokio::spawn(x);\n}\nuse rand::{Rng, random};\n";
        assert_eq!(
            lines(&sans_io_offences(&non_test(source))),
            vec![2, 3, 4, 5, 7]
        );
    }

    #[test]
    fn a_doc_comment_or_string_naming_the_clock_does_not_count() {
        let source = "/// Never call `Instant::now()`.\n//! HashMap\nfn f() { g(\"Instant::now\", r#\"HashMap\"#); } // Instant::now\n";
        assert!(sans_io_offences(&non_test(source)).is_empty());
    }

    #[test]
    fn a_test_module_is_skipped() {
        let source = "fn f() {}\n#[cfg(test)]\nmod tests {\n    fn t() { let _ = Instant::now(); let _: HashMap<u8, u8>; }\n}\n";
        assert!(sans_io_offences(&non_test(source)).is_empty());
    }

    #[test]
    fn code_after_a_test_only_helper_is_scanned() {
        let source = "impl L {\n    #[cfg(test)]\n    fn len(&self) -> usize { Instant::now(); 0 }\n}\nfn later() { let _ = Instant::now(); }\n#[cfg(test)]\nmod tests {}\n";
        assert_eq!(lines(&sans_io_offences(&non_test(source))), vec![5]);
    }

    #[test]
    fn todo_dbg_unimplemented_and_ignore_are_caught() {
        let source = "fn f() { todo!() }\nfn g() { dbg!(x); }\n#[test]\n#[ignore]\nfn h() { unimplemented!() }\n#[ignore = \"flaky\"]\nfn i() {}\n";
        assert_eq!(
            lines(&placeholder_offences(&scan(source).code)),
            vec![1, 2, 4, 5, 6]
        );
    }

    #[test]
    fn placeholders_in_comments_and_strings_do_not_count() {
        let source = "// todo!()\nfn f() { g(\"dbg!(x) #[ignore]\"); }\n/// unimplemented!()\n";
        assert!(placeholder_offences(&scan(source).code).is_empty());
    }

    #[test]
    fn a_lint_relaxation_without_a_reason_is_caught() {
        let source = "#[allow(dead_code)]\nfn a() {}\n#![expect(\n    clippy::x,\n    reason = \"why\"\n)]\n#[expect(unused)] // reason\nfn b() { c.expect(\"x\"); }\n";
        assert_eq!(
            lines(&lint_relaxation_offences(&scan(source).code)),
            vec![1, 7]
        );
    }

    fn rows(table: &str) -> BTreeMap<String, EdgeRow> {
        crate::tidy::manifest::edges_table(&format!(
            "### Dependency edges\n\n| crate | depends on |\n| --- | --- |\n{table}"
        ))
        .expect("a well-formed table")
    }

    const GOSSIP: &str = "[package]\nname = \"rumour-gossip\"\n\n[dependencies]\nrumour-ring.workspace = true\nrumour-swim.workspace = true\nserde.workspace = true\n\n[dev-dependencies]\nrumour-cluster.workspace = true\n";

    #[test]
    fn an_extra_dependency_edge_is_caught() {
        let rows = rows("| `rumour-gossip` | `rumour-ring` |\n");
        let offences = edge_offences(&parse(GOSSIP), &rows);
        assert_eq!(lines(&offences), vec![6], "{offences:?}");
        assert!(offences[0].message.contains("rumour-swim"));
    }

    #[test]
    fn a_missing_dependency_edge_is_caught() {
        let rows = rows("| `rumour-gossip` | `rumour-wire`, `rumour-ring`, `rumour-swim` |\n");
        let offences = edge_offences(&parse(GOSSIP), &rows);
        assert_eq!(offences.len(), 1, "{offences:?}");
        assert!(offences[0].message.contains("`rumour-wire`"));
    }

    #[test]
    fn matching_edges_pass_and_dev_dependencies_are_free() {
        let rows = rows("| `rumour-gossip` | `rumour-ring`, `rumour-swim` |\n");
        assert!(edge_offences(&parse(GOSSIP), &rows).is_empty());
    }

    #[test]
    fn a_crate_without_a_row_is_caught() {
        let rows = rows("| `rumour-ring` | |\n");
        assert_eq!(edge_offences(&parse(GOSSIP), &rows).len(), 1);
    }

    #[test]
    fn an_unused_dependency_is_caught() {
        let manifest = parse(
            "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\nrand_chacha.workspace = true\nthiserror.workspace = true\nbytes.workspace = true\nwire = { package = \"rumour-wire\", path = \"w\" }\n[dev-dependencies]\nproptest.workspace = true\ncriterion.workspace = true\ntokio.workspace = true\n",
        );
        let src = "use serde::{Deserialize, Serialize};\n#[derive(Serialize, thiserror::Error)]\nstruct S;\n/// rand_chacha::ChaCha8Rng in a doc\nfn f() { wire::hash(); let s = \"bytes::Bytes\"; }\n#[cfg(test)]\nmod tests { use proptest::prelude::*; use bytes::Bytes; }\n";
        let doctest = "/// ```\n/// use tokio::runtime;\n/// ```\nfn g() {}\n";
        let scanned = scan(src);
        let code = CrateCode {
            non_test: blank_test_items(&scanned.code),
            all: scanned.code.clone(),
            docs: scanned.docs + &scan(doctest).docs,
            build: String::new(),
        };
        let offences = unused_dependency_offences(&manifest, &code);
        let named: Vec<&str> = offences
            .iter()
            .map(|o| o.message.split('`').nth(1).unwrap_or(""))
            .collect();
        assert_eq!(
            named,
            vec!["rand_chacha", "bytes", "criterion"],
            "{offences:?}"
        );
        assert_eq!(lines(&offences), vec![5, 7, 11]);
    }

    #[test]
    fn a_dependency_named_only_by_use_or_a_macro_counts() {
        assert!(references_crate("use serde;", "serde"));
        assert!(references_crate(
            "pub use rumour_swim as swim;",
            "rumour_swim"
        ));
        assert!(references_crate("extern crate alloc;", "alloc"));
        assert!(references_crate(
            "let v = serde_json::json!({});",
            "serde_json"
        ));
        assert!(!references_crate("let serde = 1; serde + 1", "serde"));
        assert!(!references_crate("my_serde::x", "serde"));
    }

    #[test]
    fn an_allowed_unused_dependency_is_not_reported() {
        let manifest = parse(
            "[package]\nname = \"x\"\n[dependencies]\nbytes.workspace = true\n[package.metadata.cargo-machete]\nignored = [\"bytes\"]\n",
        );
        assert!(unused_dependency_offences(&manifest, &CrateCode::default()).is_empty());
    }

    #[test]
    fn tokio_in_a_sans_io_manifest_is_caught() {
        let manifest = parse(
            "[package]\nname = \"rumour-swim\"\n[dependencies]\ntokio.workspace = true\n[dev-dependencies]\nasync-trait = \"0.1\"\n",
        );
        assert_eq!(lines(&sans_io_manifest_offences(&manifest)), vec![4]);
    }

    #[test]
    fn a_clippy_config_missing_a_disallowed_path_is_caught() {
        let partial = "disallowed-methods = [\n  { path = \"std::time::Instant::now\", reason = \"x\" },\n]\n";
        assert_eq!(
            clippy_config_offences(partial).len(),
            CLIPPY_DISALLOWED.len() - 1
        );
    }
}
