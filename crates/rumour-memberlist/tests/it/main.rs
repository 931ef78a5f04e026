//! Integration tests of the memberlist codec.

mod bounds;
mod fuzz_corpus;
mod lzw;
mod security;
mod support;
mod vectors;
mod version;
