//! The integration tests of `rumour-gossip`, one binary (one link) for all of them.

mod attacks;
mod dissemination;
mod envelope;
mod forgotten;
mod pullpush;
mod ring;
mod robustness;
mod store;
mod support;
