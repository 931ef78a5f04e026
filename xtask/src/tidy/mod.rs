//! Tidy checks: the architecture invariants that plain text can check.
//!
//! They run as ordinary tests (`cargo test -p xtask`), so `cargo xtask ci` runs them too.
//!
//! - `scan`: a small lexer that blanks comments and literals and skips `#[cfg(test)]` items.
//! - `manifest`: the dependency tables of a `Cargo.toml` and the edges table of
//!   `docs/architecture.md`.
//! - `rules`: each rule as a pure function from text to offences, with a test per rule that
//!   plants a violation and sees it caught.
//! - `workspace`: the rules run over the real workspace.

mod manifest;
mod rules;
mod scan;
mod workspace;
