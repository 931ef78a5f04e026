//! What the simulator drives: any sans-IO machine that speaks datagrams and streams.

use std::net::SocketAddr;
use std::time::Instant;

use crate::transmit::Transmit;

/// A sans-IO state machine the simulator can drive. `rumour_cluster::Node` is one; tests can
/// drive simpler ones.
///
/// After every `handle_*` call the simulator drains `poll_transmit`, reads `poll_timeout` and
/// drains `poll_event` into the run's event sink.
pub trait Machine {
    /// What the machine reports (membership changes, value changes, ...).
    type Event;

    /// A datagram arrived from `from`. Bad bytes are the machine's to count; they never panic.
    fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    /// A reliable message arrived from `from`.
    fn handle_stream(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    /// The time returned by `poll_timeout` was reached (it may be called late, never early).
    fn handle_timeout(&mut self, now: Instant);
    /// The next message to send, if any.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When the machine next wants `handle_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;
}
