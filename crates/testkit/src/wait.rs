//! Bounded waits for tests: the launcher's [`Bound`] with a test's failure mode (a panic that
//! names what was awaited and what the last attempt saw).

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

pub use tessera_launcher::wait::{Bound, Timeout};
use tonic::{Code, Status};

use crate::cluster::WAIT;

/// How often test waits try.
pub const POLL: Duration = Duration::from_millis(100);

/// Polls `attempt` every [`POLL`] until it returns `Ok(value)`, and panics with `what` and the
/// last error once `timeout` has passed.
pub async fn wait_for<T, E, F, Fut>(what: &str, timeout: Duration, attempt: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Bound::new(timeout, POLL)
        .until(what, attempt)
        .await
        .unwrap_or_else(|timeout| panic!("{timeout}"))
}

/// Calls `call` until it answers something other than `UNAVAILABLE` (a node between leases,
/// e.g. during an election right after a restart, which the API says to retry), for at most
/// [`WAIT`]; returns that answer.
pub async fn past_unavailability<T, F, Fut>(what: &str, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    wait_for(what, WAIT, || {
        let answer = call();
        async move {
            match answer.await {
                Err(status) if status.code() == Code::Unavailable => Err(status),
                other => Ok(other),
            }
        }
    })
    .await
}
