//! Pacing of retries towards the leader: full-jitter exponential backoff that a newly known
//! leader cuts short, and rate-limited logging of repeated failures.
//!
//! Without them a follower whose leader died retries a forwarded write as fast as the refused
//! connection comes back (thousands of times a second) until an election settles, and logs
//! every attempt.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::TryRng;
use tokio::sync::watch;

use crate::typ::{NodeId, RaftMetrics};

/// First backoff ceiling after a failed attempt.
pub const BACKOFF_BASE: Duration = Duration::from_millis(10);
/// Largest backoff ceiling: a write waiting for a leader tries at least this often.
pub const BACKOFF_CAP: Duration = Duration::from_millis(320);
/// At most one line per this interval for a repeated failure.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Full-jitter exponential backoff: the n-th pause is uniform in `[0, min(cap, base·2^n)]`, so
/// many waiting writes neither retry in lock step nor faster than the ceiling allows.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base`, doubling up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The ceiling of the next pause.
    pub fn ceiling(&self) -> Duration {
        self.base
            .checked_mul(1u32.checked_shl(self.attempt).unwrap_or(u32::MAX))
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The next pause, drawn with `random` (any value; it is reduced to the ceiling).
    pub fn next_with(&mut self, random: u64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(random % ceiling_us.saturating_add(1))
    }

    /// The next pause, jittered with the operating system's randomness (the full ceiling if
    /// none is available).
    pub fn next(&mut self) -> Duration {
        let random = rand::rngs::SysRng.try_next_u64().unwrap_or(u64::MAX);
        self.next_with(random)
    }

    /// Starts again from `base` (after progress, e.g. a new leader became known).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Waits for the next attempt at reaching the leader: the next backoff pause, bounded by
/// `deadline`, or less if a leader other than `tried` becomes known meanwhile (then the backoff
/// starts again from its base, since the new leader has not failed yet).
pub async fn pause(
    backoff: &mut Backoff,
    metrics: &mut watch::Receiver<RaftMetrics>,
    tried: Option<NodeId>,
    deadline: Instant,
) {
    let wait = backoff
        .next()
        .min(deadline.saturating_duration_since(Instant::now()));
    if new_leader_within(metrics, tried, wait).await {
        backoff.reset();
    }
}

/// Waits at most `wait` for a known leader other than `tried`; returns whether one appeared
/// (or already is known). A Raft core that stops ends the wait early, without a leader.
pub async fn new_leader_within(
    metrics: &mut watch::Receiver<RaftMetrics>,
    tried: Option<NodeId>,
    wait: Duration,
) -> bool {
    let new_leader = metrics.wait_for(|m| m.current_leader.is_some() && m.current_leader != tried);
    matches!(tokio::time::timeout(wait, new_leader).await, Ok(Ok(_)))
}

/// Lets a repeated failure through to the log at most once per interval, counting the ones in
/// between, so that a long outage costs one line per interval rather than one per attempt.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    state: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    last_line: Option<Instant>,
    held_back: u64,
}

impl LogLimiter {
    /// A limiter allowing one line per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(LimiterState {
                last_line: None,
                held_back: 0,
            }),
        }
    }

    /// Records one failure at `now`. Returns `Some(n)` if it is to be logged, where `n` is the
    /// number of failures the line stands for (this one and those held back since the last
    /// line); `None` if it is only counted.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.held_back = state.held_back.saturating_add(1);
        match state.last_line {
            Some(last) if now.saturating_duration_since(last) < self.interval => None,
            _ => {
                state.last_line = Some(now);
                Some(std::mem::take(&mut state.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(320));
        let ceilings: Vec<u64> = (0..8)
            .map(|_| {
                let c = b.ceiling();
                b.next_with(0);
                u64::try_from(c.as_millis()).unwrap()
            })
            .collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 160, 320, 320, 320]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(10));
        for _ in 0..100 {
            b.next_with(u64::MAX);
        }
        assert_eq!(b.ceiling(), Duration::from_millis(320));
    }

    #[test]
    fn backoff_pauses_are_jittered_within_the_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(320));
        assert_eq!(b.next_with(0), Duration::ZERO);
        assert_eq!(b.next_with(20_000), Duration::from_millis(20));
        assert_eq!(b.next_with(40_001), Duration::ZERO);
        for _ in 0..1000 {
            assert!(b.next() <= Duration::from_millis(320));
        }
    }

    #[test]
    fn limiter_lets_one_line_per_interval_through_with_the_count() {
        let limiter = LogLimiter::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(limiter.admit(t0), Some(1));
        for i in 1..=500 {
            assert_eq!(limiter.admit(t0 + Duration::from_micros(i)), None);
        }
        assert_eq!(limiter.admit(t0 + Duration::from_secs(1)), Some(501));
        assert_eq!(limiter.admit(t0 + Duration::from_millis(1500)), None);
        assert_eq!(limiter.admit(t0 + Duration::from_secs(5)), Some(2));
    }

    #[tokio::test]
    async fn a_new_leader_ends_the_wait_at_once() {
        let (tx, mut rx) = watch::channel(RaftMetrics::new_initial(NodeId::new(1)));
        let started = Instant::now();
        let waiter = tokio::spawn(async move {
            new_leader_within(&mut rx, Some(NodeId::new(7)), Duration::from_secs(60)).await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send_modify(|m| m.current_leader = None);
        tx.send_modify(|m| m.current_leader = Some(NodeId::new(7)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "no leader, or the one that failed, is no news"
        );
        tx.send_modify(|m| m.current_leader = Some(NodeId::new(8)));
        assert!(waiter.await.unwrap());
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[tokio::test]
    async fn without_a_new_leader_the_wait_runs_out() {
        let (tx, mut rx) = watch::channel(RaftMetrics::new_initial(NodeId::new(1)));
        tx.send_modify(|m| m.current_leader = Some(NodeId::new(7)));
        let started = Instant::now();
        assert!(!new_leader_within(&mut rx, Some(NodeId::new(7)), Duration::from_millis(50)).await);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(new_leader_within(&mut rx, None, Duration::from_secs(60)).await);
    }
}
