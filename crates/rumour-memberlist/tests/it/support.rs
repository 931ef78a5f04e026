//! What the tests share: the checked-in Go vectors.

use std::path::PathBuf;

use serde::Deserialize;

/// One recorded message (see `benches/peers/memberlist-interop/capture`).
#[derive(Debug, Deserialize)]
pub struct Vector {
    /// "packet", "stream_out" (the dialer wrote it) or "stream_in" (the dialer read it).
    pub kind: String,
    /// The Go node that sent it.
    pub from: String,
    /// The layer/type chain Go saw, e.g. "crc>compound[alive,ping]".
    pub desc: String,
    /// The bytes.
    pub hex: String,
}

/// One scenario file.
#[derive(Debug, Deserialize)]
pub struct Scenario {
    pub scenario: String,
    pub key: Option<String>,
    pub protocol_version: u8,
    pub enable_compression: bool,
    pub vectors: Vec<Vector>,
}

/// One LZW case.
#[derive(Debug, Deserialize)]
pub struct LzwCase {
    pub name: String,
    pub input: String,
    pub output: String,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Every scenario file.
pub fn scenarios() -> Vec<Scenario> {
    [
        "plain",
        "compressed",
        "encrypted_v1",
        "encrypted_v1_aes256_compressed",
        "encrypted_v0",
    ]
    .iter()
    .map(|name| {
        let text = std::fs::read_to_string(dir().join(format!("{name}.json")))
            .expect("vector file is checked in");
        serde_json::from_str(&text).expect("vector file parses")
    })
    .collect()
}

/// The LZW cases.
pub fn lzw_cases() -> Vec<LzwCase> {
    let text = std::fs::read_to_string(dir().join("lzw.json")).expect("lzw.json is checked in");
    serde_json::from_str(&text).expect("lzw.json parses")
}

/// Decodes lowercase hex.
pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}
