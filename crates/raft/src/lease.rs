//! The follower-side leader lease that decides whether a node may serve crypto from its own
//! applied state.
//!
//! A leader holds the lease for one window after a quorum last acknowledged it. A follower holds
//! it for one window after the leader answered a read-index request (which the leader does only
//! once a quorum has confirmed its leadership), *and* only once it has applied everything the
//! leader had committed at that moment. The window is shorter than the minimum election
//! timeout, so no new leader can commit anything while an old lease still runs: a partitioned
//! node stops serving before a change it does not know about can have been acknowledged, and an
//! acknowledged change (e.g. disabling a key) is in force on every serving node within one
//! lease window.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When this node last heard from a leader, and what that leader had committed.
#[derive(Debug)]
pub struct Lease {
    window: Duration,
    last: Mutex<Option<Contact>>,
    /// Rate of this node's lease clock against real time (fault injection only), as f64 bits.
    #[cfg(feature = "fault-injection")]
    clock_rate: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Contact {
    at: Instant,
    commit_index: u64,
}

/// Why a node may not serve from its local state right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// The lease holds.
    Valid,
    /// No leader contact within the window.
    Expired,
    /// In contact, but still applying entries the leader had committed.
    CatchingUp {
        /// Applied index of this node.
        applied: u64,
        /// Commit index to reach.
        commit_index: u64,
    },
}

impl Lease {
    /// A lease with the given window (no contact yet).
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last: Mutex::new(None),
            #[cfg(feature = "fault-injection")]
            clock_rate: std::sync::atomic::AtomicU64::new(1.0_f64.to_bits()),
        }
    }

    /// Makes this node's lease clock run at `rate` times real time (fault-injection builds
    /// only). Below 1 the node measures too little elapsed time and holds leases too long, as a
    /// node whose clock runs slow would.
    #[cfg(feature = "fault-injection")]
    pub fn set_clock_rate(&self, rate: f64) {
        self.clock_rate
            .store(rate.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Time elapsed since `since`, as this node's lease clock measures it.
    #[cfg(not(feature = "fault-injection"))]
    fn elapsed(&self, now: Instant, since: Instant) -> Duration {
        now.saturating_duration_since(since)
    }

    /// Time elapsed since `since`, as this node's (possibly skewed) lease clock measures it.
    #[cfg(feature = "fault-injection")]
    fn elapsed(&self, now: Instant, since: Instant) -> Duration {
        let rate = f64::from_bits(self.clock_rate.load(std::sync::atomic::Ordering::Relaxed));
        now.saturating_duration_since(since).mul_f64(rate)
    }

    /// The lease window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records a confirmation of leadership (a quorum acknowledgement on the leader, a read
    /// index on a follower). `sent_before` must precede the confirmation, so the lease never
    /// outlives the leader's own.
    pub fn renew(&self, sent_before: Instant, commit_index: u64) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let newer = last.is_none_or(|c| c.at <= sent_before);
        if newer {
            *last = Some(Contact {
                at: sent_before,
                commit_index,
            });
        }
    }

    /// Forgets the current contact (e.g. when this node starts an election).
    pub fn revoke(&self) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Time since the last confirmation at `now`, as this node's lease clock measures it, or
    /// `None` without one.
    pub fn age(&self, now: Instant) -> Option<Duration> {
        let last = *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.map(|c| self.elapsed(now, c.at))
    }

    /// Whether a follower with `applied` entries may serve at `now`.
    pub fn check(&self, now: Instant, applied: u64) -> LeaseState {
        let last = *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last {
            Some(c) if self.elapsed(now, c.at) < self.window => {
                if applied >= c.commit_index {
                    LeaseState::Valid
                } else {
                    LeaseState::CatchingUp {
                        applied,
                        commit_index: c.commit_index,
                    }
                }
            }
            _ => LeaseState::Expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_is_the_time_since_the_last_confirmation() {
        let lease = Lease::new(Duration::from_millis(100));
        let t0 = Instant::now();
        assert_eq!(lease.age(t0), None);
        lease.renew(t0, 1);
        assert_eq!(
            lease.age(t0 + Duration::from_millis(30)),
            Some(Duration::from_millis(30))
        );
        lease.revoke();
        assert_eq!(lease.age(t0 + Duration::from_millis(30)), None);
    }

    #[test]
    fn lease_expires_after_window() {
        let lease = Lease::new(Duration::from_millis(100));
        let t0 = Instant::now();
        assert_eq!(lease.check(t0, 0), LeaseState::Expired);
        lease.renew(t0, 5);
        assert_eq!(
            lease.check(t0 + Duration::from_millis(50), 5),
            LeaseState::Valid
        );
        assert_eq!(
            lease.check(t0 + Duration::from_millis(50), 4),
            LeaseState::CatchingUp {
                applied: 4,
                commit_index: 5
            }
        );
        assert_eq!(
            lease.check(t0 + Duration::from_millis(100), 5),
            LeaseState::Expired
        );
    }

    #[cfg(feature = "fault-injection")]
    #[test]
    fn a_slow_lease_clock_holds_the_lease_too_long() {
        let lease = Lease::new(Duration::from_millis(100));
        let t0 = Instant::now();
        lease.renew(t0, 1);
        lease.set_clock_rate(0.25);
        assert_eq!(
            lease.check(t0 + Duration::from_millis(390), 1),
            LeaseState::Valid
        );
        assert_eq!(
            lease.check(t0 + Duration::from_millis(400), 1),
            LeaseState::Expired
        );
    }

    #[test]
    fn older_contact_does_not_replace_newer() {
        let lease = Lease::new(Duration::from_millis(100));
        let t0 = Instant::now();
        lease.renew(t0 + Duration::from_millis(10), 7);
        lease.renew(t0, 9);
        assert_eq!(
            lease.check(t0 + Duration::from_millis(105), 7),
            LeaseState::Valid
        );
        lease.revoke();
        assert_eq!(lease.check(t0, 9), LeaseState::Expired);
    }
}
