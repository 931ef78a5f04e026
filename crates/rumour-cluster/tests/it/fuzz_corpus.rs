//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`, crashes found by fuzzing
//! included) through the plain target functions of `rumour_cluster::fuzz`, on stable, so that
//! `cargo xtask ci` covers it. The fuzzers themselves run with `cargo xtask fuzz` on nightly.
//!
//! Crashes whose cause lies outside the harness and is not fixed yet wait in
//! `fuzz/findings/<target>/`: they must still fail their target (so this binary stays green), and
//! once the fix lands that test fails, saying to move them into the corpus.
//!
//! `RUMOUR_FUZZ_BLESS=1 cargo test -p rumour-cluster --test it fuzz_corpus` (re)writes the
//! generated seeds (`seed-*` files) into the corpus.

use std::fs;
use std::path::{Path, PathBuf};

use rumour_cluster::fuzz::{self, TARGETS};

/// Targets whose harness lives in another crate, which replays their corpus itself: `memberlist`
/// and `memberlist_kv` (`rumour_memberlist::fuzz`, replayed by
/// `crates/rumour-memberlist/tests/it/fuzz_corpus.rs`).
const OTHER_CRATE_TARGETS: [&str; 2] = ["memberlist", "memberlist_kv"];

fn fuzz_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(name)
}

fn corpus_root() -> PathBuf {
    fuzz_dir("corpus")
        .canonicalize()
        .expect("fuzz/corpus exists at the workspace root")
}

/// Whether `target` panics on `bytes`.
fn fails(target: &str, bytes: &[u8]) -> bool {
    match std::panic::catch_unwind(|| fuzz::run(target, bytes)) {
        Ok(known) => {
            assert!(known, "`{target}` is not a target");
            false
        }
        Err(_) => true,
    }
}

/// The files of one target's corpus, sorted; panics if the directory is missing or empty.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_root().join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "the corpus of `{target}` ({}) is missing: {e}",
                dir.display()
            )
        })
        .map(|entry| entry.expect("a readable corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus of `{target}` ({}) is empty",
        dir.display()
    );
    files
}

#[test]
fn every_checked_in_corpus_file_replays_through_its_target_without_a_failure() {
    if std::env::var_os("RUMOUR_FUZZ_BLESS").is_some() {
        for seed in fuzz::seeds() {
            let dir = corpus_root().join(seed.target);
            fs::create_dir_all(&dir).expect("a writable corpus");
            fs::write(dir.join(format!("seed-{}", seed.name)), &seed.bytes)
                .expect("a writable corpus");
        }
    }
    let mut replayed = 0;
    for target in TARGETS {
        for file in corpus_files(target) {
            let bytes = fs::read(&file).expect("a readable corpus file");
            assert!(
                !fails(target, &bytes),
                "{} fails target `{target}`; reproduce with `cargo +nightly fuzz run {target} {}`",
                file.display(),
                file.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len());
}

#[test]
fn every_target_has_a_corpus_directory_and_every_corpus_directory_a_target() {
    for target in TARGETS {
        assert!(!corpus_files(target).is_empty());
    }
    for entry in fs::read_dir(corpus_root()).expect("a readable corpus") {
        let name = entry.expect("a readable entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.contains(&name.as_ref()) || OTHER_CRATE_TARGETS.contains(&name.as_ref()),
            "fuzz/corpus/{name} belongs to no target"
        );
    }
}

#[test]
fn the_generated_seeds_cover_every_target_and_pass_it() {
    let seeds = fuzz::seeds();
    for target in TARGETS {
        let count = seeds.iter().filter(|s| s.target == target).count();
        assert!(count >= 4, "only {count} seeds for `{target}`");
    }
    for seed in &seeds {
        assert!(
            fuzz::run(seed.target, &seed.bytes),
            "{} has no target",
            seed.target
        );
    }
}

#[test]
fn an_unknown_target_name_is_refused() {
    assert!(!fuzz::run("no-such-target", b""));
}

#[test]
fn every_open_finding_still_fails_its_target_until_its_fix_lands() {
    let Ok(dirs) = fs::read_dir(fuzz_dir("findings")) else {
        return; // nothing open
    };
    for dir in dirs {
        let dir = dir.expect("a readable findings entry").path();
        let target = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            TARGETS.contains(&target.as_str()),
            "fuzz/findings/{target} belongs to no target"
        );
        for file in fs::read_dir(&dir).expect("a readable findings directory") {
            let file = file.expect("a readable finding").path();
            let bytes = fs::read(&file).expect("a readable finding");
            assert!(
                fails(&target, &bytes),
                "{} no longer fails `{target}`: its bug is fixed, move it into fuzz/corpus/{target}/",
                file.display()
            );
        }
    }
}
