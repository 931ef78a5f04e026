//! Benchmarks for rumour (see `benches/`).
