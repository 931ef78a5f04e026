//! Replays the checked-in corpus of the `memberlist` fuzz target (`fuzz/corpus/memberlist/`)
//! through `rumour_memberlist::fuzz::decode` on stable, so CI covers it; the fuzzer itself runs on
//! nightly (`cargo +nightly fuzz run memberlist`, see `fuzz/README.md`).
//!
//! `RUMOUR_FUZZ_BLESS=1 cargo test -p rumour-memberlist --test it fuzz_corpus` (re)writes the
//! seeds (`seed-*`): every Go test vector, with the mode byte that decodes it.

use std::fs;
use std::path::PathBuf;

use rumour_memberlist::fuzz::{self, MODE_FIX_CRC, MODE_KEYED, MODE_STREAM};

use crate::support::{scenarios, unhex};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/memberlist")
}

/// `(file name, bytes)` of every seed.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for scenario in scenarios() {
        for (i, vector) in scenario.vectors.iter().enumerate() {
            let mut mode = 0;
            if vector.kind != "packet" {
                mode |= MODE_STREAM;
            }
            if scenario.key.is_some() {
                mode |= MODE_KEYED;
            }
            if vector.kind == "packet" && vector.desc.starts_with("crc>") {
                mode |= MODE_FIX_CRC;
            }
            let mut bytes = vec![mode];
            bytes.extend(unhex(&vector.hex));
            seeds.push((format!("seed-{}-{i:02}", scenario.scenario), bytes));
        }
    }
    seeds
}

#[test]
fn every_checked_in_corpus_file_replays_through_the_memberlist_target() {
    let dir = corpus_dir();
    if std::env::var_os("RUMOUR_FUZZ_BLESS").is_some() {
        fs::create_dir_all(&dir).expect("a writable corpus");
        for (name, bytes) in seeds() {
            fs::write(dir.join(name), bytes).expect("a writable corpus");
        }
    }
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 40, "only {} corpus files", files.len());
    for file in files {
        let bytes = fs::read(&file).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| fuzz::decode(&bytes));
        assert!(
            outcome.is_ok(),
            "{} fails the `memberlist` target; reproduce with `cargo +nightly fuzz run memberlist {}`",
            file.display(),
            file.display()
        );
    }
}

#[test]
fn the_seeds_are_the_go_vectors_and_each_gets_past_the_decoder() {
    let seeds = seeds();
    assert!(seeds.len() >= 60);
    let keyed = rumour_memberlist::Codec::with_keyring(fuzz::keyring());
    let plain = rumour_memberlist::Codec::default();
    for (name, bytes) in &seeds {
        let codec = if bytes[0] & MODE_KEYED != 0 {
            &keyed
        } else {
            &plain
        };
        let decoded = if bytes[0] & MODE_STREAM != 0 {
            codec.decode_stream(&bytes[1..]).map(|d| d.is_some())
        } else {
            codec.decode_packet(&bytes[1..]).map(|_| true)
        };
        assert_eq!(decoded, Ok(true), "{name}");
        fuzz::decode(bytes);
    }
}
