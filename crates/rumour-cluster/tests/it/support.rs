//! Waiting on real sockets: a condition polled under a generous deadline, never a sleep used as
//! an assertion.

use std::future::Future;
use std::time::Duration;

use rumour_cluster::sim::{LinkConfig, NodeId, NodeSeed, Sim, node_addr};
use rumour_cluster::{Error, Node, NodeConfig, Profile};
use tokio::time::{Instant, sleep};

/// How long a condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// How often a condition is checked.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it holds, failing the test with `what` after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if check().await.expect("node running") {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(POLL).await;
    }
}

/// Checks `check` on every poll for `window`, failing the test the first time it does not hold.
pub async fn throughout<F, Fut>(what: &str, window: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(
            check().await.expect("node running"),
            "{what} stopped holding"
        );
        sleep(POLL).await;
    }
}

/// The LAN configuration of a simulated node named `node-<id>`.
pub fn lan_config(seed: &NodeSeed) -> NodeConfig {
    NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan)
}

/// A simulator (no nodes yet) whose nodes are built from `config`, every one but node 0 joining
/// node 0 as it starts. Add the nodes with [`add_nodes`].
pub fn joining_node_0(
    seed: u64,
    link: LinkConfig,
    config: impl Fn(&NodeSeed) -> NodeConfig + 'static,
) -> Sim<Node> {
    Sim::new(
        seed,
        std::time::Instant::now(),
        link,
        Box::new(move |seed: NodeSeed| {
            let mut node = Node::new(config(&seed), seed.rng, seed.now).expect("valid config");
            if seed.id != NodeId(0) {
                node.join(seed.now, &[node_addr(NodeId(0))]);
            }
            node
        }),
    )
}

/// Adds `n` nodes to `sim`.
pub fn add_nodes(sim: &mut Sim<Node>, n: usize) {
    for _ in 0..n {
        sim.add_node();
    }
}
