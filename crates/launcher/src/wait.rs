//! The one bounded wait: poll until an attempt succeeds or a deadline passes, and on timeout
//! hand back what the last attempt saw.
//!
//! Every wait for a cluster (a node publishing its addresses, joining, unsealing, serving, a
//! leader, an exit) is one of these, in the launcher, the test kit, the tests and the chaos
//! harness. The last attempt's answer travels in [`Timeout`], so a failed wait says why
//! (a refusal, a count of voters, a stale leader) rather than only that time ran out; a caller
//! that wants the best effort takes [`Timeout::last`] as its result.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// A bounded wait that ran out.
#[derive(Debug)]
pub struct Timeout<E> {
    /// What was awaited.
    pub what: String,
    /// How long it was awaited.
    pub waited: Duration,
    /// What the last attempt answered.
    pub last: E,
}

impl<E: fmt::Display> fmt::Display for Timeout<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}; last: {}",
            self.waited, self.what, self.last
        )
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Timeout<E> {}

/// How long a wait may last and how often it tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// Give up once this much time has passed since the first attempt.
    pub timeout: Duration,
    /// Pause between attempts.
    pub interval: Duration,
}

impl Bound {
    /// Tries every `interval` for at most `timeout`.
    #[must_use]
    pub const fn new(timeout: Duration, interval: Duration) -> Self {
        Self { timeout, interval }
    }

    /// Calls `attempt` until it returns `Ok`, pausing [`Self::interval`] between attempts.
    /// The attempt is always made at least once, and once more after the deadline is
    /// reached, so a wait never fails without a fresh look.
    ///
    /// # Errors
    /// [`Timeout`] naming `what`, with the last attempt's error, once [`Self::timeout`] has
    /// passed.
    pub async fn until<T, E, F, Fut>(self, what: &str, mut attempt: F) -> Result<T, Timeout<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let start = Instant::now();
        loop {
            let last = match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            let waited = start.elapsed();
            if waited >= self.timeout {
                return Err(Timeout {
                    what: what.to_owned(),
                    waited,
                    last,
                });
            }
            tokio::time::sleep(self.interval.min(self.timeout - waited)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn returns_the_first_success() {
        let mut calls = 0;
        let bound = Bound::new(Duration::from_secs(5), Duration::from_millis(1));
        let value = bound
            .until("the third call", || {
                calls += 1;
                let n = calls;
                async move {
                    if n == 3 {
                        Ok(n)
                    } else {
                        Err(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn a_timeout_carries_the_last_answer() {
        let mut calls = 0u32;
        let bound = Bound::new(Duration::from_millis(30), Duration::from_millis(5));
        let timeout = bound
            .until("never", || {
                calls += 1;
                let n = calls;
                async move { Err::<(), _>(n) }
            })
            .await
            .unwrap_err();
        assert_eq!(timeout.last, calls);
        assert!(calls >= 2, "tried again before giving up: {calls}");
        assert!(timeout.waited >= Duration::from_millis(30));
        assert!(
            timeout.to_string().contains("waiting for never"),
            "{timeout}"
        );
    }
}
