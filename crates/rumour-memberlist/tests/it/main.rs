//! Integration tests of the memberlist codec.

mod bounds;
mod lzw;
mod security;
mod support;
mod vectors;
