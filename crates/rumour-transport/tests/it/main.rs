//! The integration tests of `rumour-transport`, one binary (one link) for all of them.

mod frame_props;
mod mem_network;
mod net_hostile;
mod net_limits;
mod net_loopback;
mod support;
