//! The integration tests of `rumour-ring`, one binary (one link) for all of them.

mod codec;
mod dskit_cases;
mod forgotten;
mod lifecycle;
mod limits;
mod lookup;
mod merge_laws;
mod support;
