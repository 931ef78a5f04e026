//! `memberlist_kv`: see `rumour_memberlist::fuzz::decode_kv` for the input layout and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rumour_memberlist::fuzz::decode_kv(data));
