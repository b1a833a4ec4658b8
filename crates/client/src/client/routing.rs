//! Which node a cluster-wide call tries first.
//!
//! Endpoints may carry a region (`eu=https://10.0.0.1:7401`). A client that knows its own
//! region tries the nodes of that region before the others, so its calls stay local while the
//! region serves and fail over to other regions when it does not. Within a group the node that
//! answered last goes first (connections stay warm). A node that failed (unreachable, sealed,
//! without a lease: anything another node might do better) is set aside for [`EJECT_FOR`]:
//! it is tried last, after every other node, until the time is up and it is probed again in
//! its normal place.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a node that failed is tried only after every other node.
pub const EJECT_FOR: Duration = Duration::from_secs(2);

/// An endpoint as written in the configuration: `[REGION=]URL`. A region is a plain label
/// (no `:` or `/`), so a URL alone never parses as one.
pub(crate) fn parse_endpoint(spec: &str) -> (Option<String>, String) {
    match spec.split_once('=') {
        Some((region, url))
            if !region.is_empty() && !region.contains([':', '/']) && !url.is_empty() =>
        {
            (Some(region.trim().to_owned()), url.trim().to_owned())
        }
        _ => (None, spec.trim().to_owned()),
    }
}

/// The order of the nodes for the next call, from what the last calls saw.
pub(crate) struct Routing {
    own_region: Option<String>,
    regions: Vec<Option<String>>,
    preferred: AtomicUsize,
    set_aside_until: Mutex<Vec<Option<Instant>>>,
}

impl Routing {
    /// Routing over nodes with these regions (in configuration order), for a client in
    /// `own_region`.
    pub(crate) fn new(own_region: Option<String>, regions: Vec<Option<String>>) -> Self {
        let first_local = regions
            .iter()
            .position(|r| own_region.is_some() && r == &own_region)
            .unwrap_or(0);
        Self {
            set_aside_until: Mutex::new(vec![None; regions.len()]),
            own_region,
            regions,
            preferred: AtomicUsize::new(first_local),
        }
    }

    /// The node indices in the order to try them at `now`: nodes not set aside first, those
    /// of the client's region before the others, each group starting at the node that
    /// answered last.
    pub(crate) fn order(&self, now: Instant) -> Vec<usize> {
        let n = self.regions.len();
        let preferred = self.preferred.load(Ordering::Relaxed);
        let aside = self
            .set_aside_until
            .lock()
            .map(|until| {
                until
                    .iter()
                    .map(|t| t.is_some_and(|t| now < t))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|_| vec![false; n]);
        let remote =
            |i: usize| self.own_region.is_some() && self.regions.get(i) != Some(&self.own_region);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| {
            // The group of the node that answered last starts with it; other groups keep the
            // configured order.
            let place = if remote(i) == remote(preferred) {
                (i + n - preferred) % n
            } else {
                i
            };
            (aside.get(i).copied().unwrap_or(false), remote(i), place)
        });
        order
    }

    /// Node `index` answered.
    pub(crate) fn succeeded(&self, index: usize) {
        self.preferred.store(index, Ordering::Relaxed);
        if let Ok(mut until) = self.set_aside_until.lock() {
            if let Some(slot) = until.get_mut(index) {
                *slot = None;
            }
        }
    }

    /// Node `index` failed at `now` in a way another node might not.
    pub(crate) fn failed(&self, index: usize, now: Instant) {
        if let Ok(mut until) = self.set_aside_until.lock() {
            if let Some(slot) = until.get_mut(index) {
                *slot = Some(now + EJECT_FOR);
            }
        }
    }

    /// Node `index`'s region, if configured.
    pub(crate) fn region(&self, index: usize) -> Option<&str> {
        self.regions.get(index).and_then(|r| r.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(own: Option<&str>, regions: &[Option<&str>]) -> Routing {
        Routing::new(
            own.map(str::to_owned),
            regions.iter().map(|r| r.map(str::to_owned)).collect(),
        )
    }

    #[test]
    fn endpoints_may_name_their_region() {
        assert_eq!(
            parse_endpoint("eu=https://10.0.0.1:7401"),
            (Some("eu".into()), "https://10.0.0.1:7401".into())
        );
        assert_eq!(
            parse_endpoint("https://10.0.0.1:7401"),
            (None, "https://10.0.0.1:7401".into())
        );
        assert_eq!(
            parse_endpoint("127.0.0.1:7401"),
            (None, "127.0.0.1:7401".into())
        );
        assert_eq!(
            parse_endpoint("=https://a:1"),
            (None, "=https://a:1".into())
        );
    }

    #[test]
    fn the_own_region_goes_first_and_a_failed_node_goes_last_until_it_is_probed_again() {
        let r = routing(
            Some("us"),
            &[Some("eu"), Some("us"), Some("eu"), Some("us")],
        );
        let t0 = Instant::now();
        assert_eq!(r.order(t0), [1, 3, 0, 2]);
        // The node that answered last leads its group.
        r.succeeded(3);
        assert_eq!(r.order(t0), [3, 1, 0, 2]);
        // Both local nodes fail: the other region serves, the local ones are tried last.
        r.failed(3, t0);
        r.failed(1, t0);
        assert_eq!(r.order(t0), [0, 2, 3, 1]);
        r.succeeded(2);
        assert_eq!(r.order(t0), [2, 0, 1, 3]);
        // Once their time is up the local nodes are probed first again.
        let later = t0 + EJECT_FOR;
        assert_eq!(r.order(later), [1, 3, 2, 0]);
        r.succeeded(3);
        assert_eq!(r.order(later), [3, 1, 0, 2]);
        assert_eq!(r.region(0), Some("eu"));
    }

    #[test]
    fn without_regions_the_configured_order_rotates_from_the_last_answer() {
        let r = routing(None, &[None, None, None]);
        let t0 = Instant::now();
        assert_eq!(r.order(t0), [0, 1, 2]);
        r.succeeded(1);
        assert_eq!(r.order(t0), [1, 2, 0]);
        r.failed(1, t0);
        assert_eq!(r.order(t0), [2, 0, 1]);
    }
}
