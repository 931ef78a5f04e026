//! `ring_codec`: see `rumour_cluster::fuzz::ring_codec` for the input layout and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rumour_cluster::fuzz::ring_codec(data));
