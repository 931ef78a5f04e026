//! `digests`: see `rumour_cluster::fuzz::digests` for the input layout and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rumour_cluster::fuzz::digests(data));
