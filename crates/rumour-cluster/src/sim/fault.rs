//! Scheduled faults: what can happen to nodes and to the network during a run.

use std::time::Duration;

use super::NodeId;
use super::network::LinkConfig;

/// A fault the simulator applies at a scheduled virtual time.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The node's process dies: its state is gone, packets to it are dropped.
    Crash(NodeId),
    /// The node starts again with the same address and a fresh state (a new process).
    Restart(NodeId),
    /// The node stops processing for this long; its packets wait and its timers are frozen.
    Pause(NodeId, Duration),
    /// Every message the node handles is delayed by this much (zero ends it): Lifeguard's slow
    /// node.
    Slow(NodeId, Duration),
    /// Splits the cluster into these sides (nodes on no side form one more side).
    Partition(Vec<Vec<NodeId>>),
    /// Blocks packets from the first set to the second, one way only.
    PartitionOneWay(Vec<NodeId>, Vec<NodeId>),
    /// Ends every partition.
    Heal,
    /// Replaces the link configuration of every link.
    SetLink(LinkConfig),
}
