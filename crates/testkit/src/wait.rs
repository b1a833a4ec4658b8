//! Bounded polling.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `attempt` every 100 ms until it returns `Ok(value)`, and panics with `what` and the
/// last error once `timeout` has passed.
pub async fn wait_for<T, E, F, Fut>(what: &str, timeout: Duration, mut attempt: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last error: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
