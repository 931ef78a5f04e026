//! The rules run over the real workspace: every crate under `crates/`, `xtask/` and `benches/`.
//!
//! Test code is every file under a crate's `tests/`, `benches/` or `examples/`, every file of a
//! module declared `#[cfg(test)] mod NAME;` (and the modules it declares in turn), and every item
//! annotated `#[cfg(test)]` inside other files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::manifest::{self, Manifest};
use super::rules::{self, CrateCode, Offence};
use super::scan::{self, Scanned};

/// The crates that must stay sans-IO as a whole (checked when they exist in this checkout).
const SANS_IO_CRATES: [&str; 5] = [
    "rumour-swim",
    "rumour-ring",
    "rumour-gossip",
    "rumour-wire",
    "rumour-memberlist",
];

/// The sans-IO parts of `rumour-cluster` (paths in the crate; a prefix when it ends in `/`):
/// the composed `Node`, its envelope and user channel, the memberlist adapter, and the
/// simulator.
const SANS_IO_CLUSTER_PARTS: [&str; 6] = [
    "src/node.rs",
    "src/node/",
    "src/envelope.rs",
    "src/user.rs",
    "src/memberlist/",
    "src/sim/",
];

/// Sans-IO files allowed to name one banned word, and why: each must make its case, since the
/// rule exists so that nothing random reaches an output.
const SANS_IO_EXEMPT: [(&str, &str, &str); 1] = [(
    "crates/rumour-wire/src/intern.rs",
    "HashSet",
    "the interner's set is only searched and swept, never iterated into an output",
)];

/// One `.rs` file of a crate.
struct SourceFile {
    /// Its path from the workspace root, for messages.
    shown: String,
    /// Its path inside the crate, `/`-separated.
    rel: String,
    /// Whether the whole file is test code.
    test: bool,
    scanned: Scanned,
    /// The scanned code without its test items (all blank for a test file).
    non_test: String,
}

/// One crate of the workspace, read once.
struct Crate {
    /// Its directory from the workspace root (`crates/rumour-swim`, `xtask`).
    shown: String,
    dir: PathBuf,
    manifest: Manifest,
    files: Vec<SourceFile>,
}

impl Crate {
    fn is_sans_io_file(&self, file: &SourceFile) -> bool {
        if SANS_IO_CRATES.contains(&self.manifest.name.as_str()) {
            return file.rel.starts_with("src/");
        }
        self.manifest.name == "rumour-cluster"
            && SANS_IO_CLUSTER_PARTS
                .iter()
                .any(|part| match part.strip_suffix('/') {
                    Some(dir) => file.rel.starts_with(&format!("{dir}/")),
                    None => file.rel == *part,
                })
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn crate_dirs(root: &Path) -> Vec<PathBuf> {
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
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// `a/b/../c` → `a/c`.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The files (inside the crate) a `mod` declaration in the file `rel` may load.
fn module_files(rel: &str, decl: &scan::ModDecl) -> Vec<String> {
    let (parent, file) = rel.rsplit_once('/').unwrap_or(("", rel));
    if let Some(path) = &decl.path {
        return vec![normalise(&format!("{parent}/{path}"))];
    }
    let owns_its_dir = matches!(file, "lib.rs" | "main.rs" | "mod.rs" | "build.rs")
        || matches!(parent, "src/bin" | "tests" | "benches" | "examples");
    let base = if owns_its_dir {
        parent.to_string()
    } else {
        format!("{parent}/{}", file.trim_end_matches(".rs"))
    };
    let name = &decl.name;
    vec![
        normalise(&format!("{base}/{name}.rs")),
        normalise(&format!("{base}/{name}/mod.rs")),
    ]
}

fn load_crate(root: &Path, dir: &Path) -> Crate {
    let manifest = manifest::parse(&read(&dir.join("Cargo.toml")));
    let mut paths = Vec::new();
    rust_files(dir, &mut paths);
    paths.sort();
    let (mut files, decls): (Vec<SourceFile>, Vec<Vec<scan::ModDecl>>) = paths
        .iter()
        .map(|path| {
            let source = read(path);
            let rel = path
                .strip_prefix(dir)
                .expect("under the crate")
                .to_string_lossy()
                .replace('\\', "/");
            let test = ["tests/", "benches/", "examples/"]
                .iter()
                .any(|d| rel.starts_with(d));
            let scanned = scan::scan(&source);
            let decls = scan::mod_decls(&source, &scanned.code);
            let file = SourceFile {
                shown: path
                    .strip_prefix(root)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned(),
                rel,
                test,
                scanned,
                non_test: String::new(),
            };
            (file, decls)
        })
        .unzip();
    // Mark the files of test modules until nothing changes: a test module's own modules are
    // test code too.
    loop {
        let mut changed = false;
        for i in 0..files.len() {
            for decl in &decls[i] {
                if !(decl.cfg_test || files[i].test) {
                    continue;
                }
                for candidate in module_files(&files[i].rel, decl) {
                    if let Some(child) = files.iter_mut().find(|f| f.rel == candidate && !f.test) {
                        child.test = true;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    for file in &mut files {
        file.non_test = if file.test {
            file.scanned.code.replace(|c: char| c != '\n', " ")
        } else {
            scan::blank_test_items(&file.scanned.code)
        };
    }
    Crate {
        shown: dir
            .strip_prefix(root)
            .unwrap_or(dir)
            .to_string_lossy()
            .into_owned(),
        dir: dir.to_path_buf(),
        manifest,
        files,
    }
}

/// Every crate of the workspace, read and scanned once for all the tests.
fn crates() -> &'static [Crate] {
    static CRATES: OnceLock<Vec<Crate>> = OnceLock::new();
    CRATES.get_or_init(|| {
        let root = workspace_root();
        crate_dirs(&root)
            .iter()
            .map(|d| load_crate(&root, d))
            .collect()
    })
}

/// Fails with every offence, one `path:line: rule: what` a line.
fn assert_none(what: &str, offences: Vec<String>) {
    assert!(
        offences.is_empty(),
        "{what}: {} offence(s)\n{}",
        offences.len(),
        offences.join("\n")
    );
}

fn located(path: &str, offences: Vec<Offence>) -> impl Iterator<Item = String> + '_ {
    offences.into_iter().map(move |o| {
        if o.line == 0 {
            format!("{path}: {}", o.message)
        } else {
            format!("{path}:{}: {}", o.line, o.message)
        }
    })
}

#[test]
fn sans_io_code_names_no_clock_rng_socket_tokio_or_hash_collection() {
    let mut offences = Vec::new();
    for krate in crates() {
        for file in krate
            .files
            .iter()
            .filter(|f| !f.test && krate.is_sans_io_file(f))
        {
            let exempt = |o: &Offence| {
                SANS_IO_EXEMPT.iter().any(|(path, word, _why)| {
                    file.shown == *path && o.message.starts_with(&format!("sans-io: `{word}`"))
                })
            };
            let found = rules::sans_io_offences(&file.non_test);
            offences.extend(located(
                &file.shown,
                found.into_iter().filter(|o| !exempt(o)).collect(),
            ));
        }
    }
    assert_none("sans-IO code reaches the outside world", offences);
}

#[test]
fn sans_io_crates_do_not_depend_on_a_runtime() {
    let mut offences = Vec::new();
    for krate in crates()
        .iter()
        .filter(|k| SANS_IO_CRATES.contains(&k.manifest.name.as_str()))
    {
        let path = format!("{}/Cargo.toml", krate.shown);
        offences.extend(located(
            &path,
            rules::sans_io_manifest_offences(&krate.manifest),
        ));
    }
    assert_none("sans-IO manifests", offences);
}

#[test]
fn sans_io_crates_disallow_the_clock_and_unseeded_rng_in_clippy_toml() {
    let mut offences = Vec::new();
    for krate in crates()
        .iter()
        .filter(|k| SANS_IO_CRATES.contains(&k.manifest.name.as_str()))
    {
        let path = format!("{}/clippy.toml", krate.shown);
        match fs::read_to_string(krate.dir.join("clippy.toml")) {
            Ok(text) => offences.extend(located(&path, rules::clippy_config_offences(&text))),
            Err(_) => offences.push(format!("{path}: clippy-config: missing")),
        }
    }
    assert_none("clippy.toml of the sans-IO crates", offences);
}

#[test]
fn no_todo_unimplemented_dbg_or_ignore_anywhere() {
    let mut offences = Vec::new();
    for krate in crates() {
        for file in &krate.files {
            offences.extend(located(
                &file.shown,
                rules::placeholder_offences(&file.scanned.code),
            ));
        }
    }
    assert_none("placeholders left in the code", offences);
}

#[test]
fn every_lint_relaxation_says_why() {
    let mut offences = Vec::new();
    for krate in crates() {
        for file in &krate.files {
            offences.extend(located(
                &file.shown,
                rules::lint_relaxation_offences(&file.scanned.code),
            ));
        }
    }
    assert_none("lint relaxations without `reason = \"...\"`", offences);
}

#[test]
fn dependency_edges_match_the_architecture_table() {
    let doc = read(&workspace_root().join("docs/architecture.md"));
    let rows = manifest::edges_table(&doc)
        .unwrap_or_else(|e| panic!("docs/architecture.md's dependency-edges table: {e}"));
    let mut offences = Vec::new();
    for krate in crates() {
        let path = format!("{}/Cargo.toml", krate.shown);
        offences.extend(located(&path, rules::edge_offences(&krate.manifest, &rows)));
    }
    assert_none("manifests disagree with docs/architecture.md", offences);
}

#[test]
fn every_dependency_is_used() {
    let mut offences = Vec::new();
    for krate in crates() {
        let mut code = CrateCode::default();
        for file in &krate.files {
            // `[dependencies]` serve the library, the binaries, build.rs, and the bench and
            // example targets; not the tests.
            let target_code =
                if file.rel.starts_with("benches/") || file.rel.starts_with("examples/") {
                    Some(scan::blank_test_items(&file.scanned.code))
                } else if file.rel.starts_with("src/") || file.rel == "build.rs" {
                    Some(file.non_test.clone())
                } else {
                    None
                };
            if let Some(target_code) = target_code {
                let into = if file.rel == "build.rs" {
                    &mut code.build
                } else {
                    &mut code.non_test
                };
                into.push_str(&target_code);
                into.push('\n');
            }
            code.all.push_str(&file.scanned.code);
            code.all.push('\n');
            code.docs.push_str(&file.scanned.docs);
        }
        let path = format!("{}/Cargo.toml", krate.shown);
        offences.extend(located(
            &path,
            rules::unused_dependency_offences(&krate.manifest, &code),
        ));
    }
    assert_none("dependencies no code uses", offences);
}

#[test]
fn every_crate_uses_the_workspace_lints() {
    let offences = crates()
        .iter()
        .filter(|k| !k.manifest.workspace_lints)
        .map(|k| {
            format!(
                "{}/Cargo.toml: lints: no `[lints] workspace = true`",
                k.shown
            )
        })
        .collect();
    assert_none("crates outside the workspace lints", offences);
}

#[test]
fn architecture_doc_names_every_crate() {
    let doc = read(&workspace_root().join("docs/architecture.md"));
    let offences = crates()
        .iter()
        .filter(|k| !doc.contains(&k.manifest.name) || !doc.contains(&k.shown))
        .map(|k| {
            format!(
                "docs/architecture.md: does not name `{}` ({})",
                k.manifest.name, k.shown
            )
        })
        .collect();
    assert_none("the architecture doc misses crates", offences);
}

#[test]
fn every_file_named_tests_rs_is_seen_as_test_code() {
    let offences = crates()
        .iter()
        .flat_map(|k| &k.files)
        .filter(|f| f.rel.ends_with("/tests.rs") && !f.test)
        .map(|f| format!("{}: not recognised as a test module", f.shown))
        .collect();
    assert_none("the tidy scanner misreads test modules", offences);
}
