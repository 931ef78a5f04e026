//! The integration tests of `rumour-swim`, one binary (one link) for all of them.

mod decode;
mod digest;
mod formulas;
mod harness;
mod hostile;
mod machine;
mod narratives;
