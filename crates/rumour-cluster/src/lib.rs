//! rumour-cluster (being built): the composed `Node`, its tokio driver and the simulator.

pub mod sim;
