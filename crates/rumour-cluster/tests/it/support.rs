//! Waiting on real sockets: a condition polled under a generous deadline, never a sleep used as
//! an assertion.

use std::future::Future;
use std::time::Duration;

use rumour_cluster::Error;
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
