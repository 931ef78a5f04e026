//! Replays the checked-in corpora of the `memberlist` and `memberlist_kv` fuzz targets
//! (`fuzz/corpus/memberlist/`, `fuzz/corpus/memberlist_kv/`) through `rumour_memberlist::fuzz`'s
//! `decode` and `decode_kv` on stable, so CI covers them; the fuzzers themselves run on nightly
//! (`cargo +nightly fuzz run memberlist`, see `fuzz/README.md`).
//!
//! `RUMOUR_FUZZ_BLESS=1 cargo test -p rumour-memberlist --test it fuzz_corpus` (re)writes the
//! seeds (`seed-*`): every Go test vector, with the mode byte that decodes it, and a few dskit
//! `KeyValuePair`s and full states.

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

/// Replays every file of the corpus in `dir` through `decode` (a `target`'s entry point),
/// after writing `seeds` there when `RUMOUR_FUZZ_BLESS` is set; at least `min` files.
fn replay(
    dir: PathBuf,
    target: &str,
    seeds: Vec<(String, Vec<u8>)>,
    min: usize,
    decode: fn(&[u8]),
) {
    if std::env::var_os("RUMOUR_FUZZ_BLESS").is_some() {
        fs::create_dir_all(&dir).expect("a writable corpus");
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes).expect("a writable corpus");
        }
    }
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= min, "only {} corpus files", files.len());
    for file in files {
        let bytes = fs::read(&file).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| decode(&bytes));
        assert!(
            outcome.is_ok(),
            "{} fails the `{target}` target; reproduce with `cargo +nightly fuzz run {target} {}`",
            file.display(),
            file.display()
        );
    }
}

#[test]
fn every_checked_in_corpus_file_replays_through_the_memberlist_target() {
    replay(corpus_dir(), "memberlist", seeds(), 40, fuzz::decode);
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

fn kv_corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/memberlist_kv")
}

/// `(file name, bytes)` of every seed of `memberlist_kv`: pairs of every field shape and full
/// states, one cut short.
fn kv_seeds() -> Vec<(String, Vec<u8>)> {
    use rumour_memberlist::KeyValuePair;
    use rumour_memberlist::fuzz::KV_MODE_FULL_STATE;
    use rumour_memberlist::kv::encode_full_state;
    let ring = KeyValuePair {
        key: "ring".into(),
        value: vec![1, 2, 3],
        codec: "ringDesc".into(),
        deleted: false,
        update_time_millis: 1_700_000_000_000,
    };
    let deleted = KeyValuePair {
        key: "collectors/ring".into(),
        value: Vec::new(),
        codec: "ring".into(),
        deleted: true,
        update_time_millis: -1,
    };
    let bare = KeyValuePair {
        key: "k".into(),
        ..KeyValuePair::default()
    };
    let mut seeds = Vec::new();
    for (name, pair) in [("ring", &ring), ("deleted", &deleted), ("bare", &bare)] {
        let mut bytes = vec![0];
        pair.encode(&mut bytes);
        seeds.push((format!("seed-pair-{name}"), bytes));
    }
    let mut state = vec![KV_MODE_FULL_STATE];
    encode_full_state(&mut state, &[ring, deleted, bare]).expect("small pairs");
    seeds.push(("seed-state-three".into(), state.clone()));
    state.truncate(state.len() - 2);
    seeds.push(("seed-state-cut".into(), state));
    seeds
}

#[test]
fn every_checked_in_corpus_file_replays_through_the_memberlist_kv_target() {
    replay(
        kv_corpus_dir(),
        "memberlist_kv",
        kv_seeds(),
        5,
        fuzz::decode_kv,
    );
}

#[test]
fn the_kv_seeds_decode() {
    use rumour_memberlist::fuzz::KV_MODE_FULL_STATE;
    use rumour_memberlist::{KeyValuePair, KvLimits};
    for (name, bytes) in kv_seeds() {
        if bytes[0] & KV_MODE_FULL_STATE == 0 {
            assert!(
                KeyValuePair::decode(&bytes[1..], &KvLimits::default()).is_ok(),
                "{name}"
            );
        } else {
            let first =
                rumour_memberlist::kv::decode_full_state(&bytes[1..], &KvLimits::default()).next();
            assert!(matches!(first, Some(Ok(_))), "{name}");
        }
        fuzz::decode_kv(&bytes);
    }
}
