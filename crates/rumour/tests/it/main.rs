//! The `rumour` binary from the outside: real processes on 127.0.0.1, their status pages over
//! real HTTP. One test binary for the crate; each file is a module.

mod agent;
mod agent_keys;
mod http;
mod ring_forget;
mod support;
