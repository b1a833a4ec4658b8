//! Cluster time: the clock that decides when a scheduled deletion is due.
//!
//! A deletion destroys data for good, so its waiting window must hold even when one node's
//! wall clock is wrong (a bad NTP source, a VM restored from an old image, a manual change).
//! No single clock is trusted: every node reports its wall clock through the log
//! ([`crate::Command::ReportClock`]), and cluster time is the **lower median** of the latest
//! reading of every node that has reported, never moving backwards, and it moves only once a
//! majority of the voters (as the reporter counts them) have reported. With `n` readings, the
//! `n / 2` fastest clocks (one of two or three, two of four or five) cannot move it: a clock
//! that runs ahead is outvoted, a clock that runs behind only delays deletions. Cluster time is
//! only as good as the readings: in a one-node cluster it is that node's clock, and it lags
//! real time by up to one report interval.
//!
//! Cluster time is part of the replicated state and changes only in `apply`, so every node
//! computes the same value at the same log index.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::node_id::NodeId;

/// The replicated clock: each node's latest reported wall clock and the cluster time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterClock {
    /// Raft node id → the node's latest reading, milliseconds since the Unix epoch.
    readings: BTreeMap<NodeId, u64>,
    /// Cluster time, milliseconds since the Unix epoch (0 before the first reading).
    now_ms: u64,
}

impl ClusterClock {
    /// Records `node`'s reading and, once readings from a majority of `voters` exist, advances
    /// cluster time to the lower median of the readings (cluster time never goes backwards). A
    /// node's own reading may go backwards: a clock that jumped ahead and was corrected must
    /// not keep counting as ahead.
    pub fn report(&mut self, node: NodeId, at_ms: u64, voters: u32) {
        self.readings.insert(node, at_ms);
        let majority = usize::try_from(voters / 2 + 1).unwrap_or(usize::MAX);
        if self.readings.len() < majority {
            return;
        }
        let mut values: Vec<u64> = self.readings.values().copied().collect();
        values.sort_unstable();
        let lower_median = values
            .get(values.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or(0);
        self.now_ms = self.now_ms.max(lower_median);
    }

    /// Cluster time in milliseconds since the Unix epoch; 0 until a node has reported.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Every node's latest reading.
    pub fn readings(&self) -> &BTreeMap<NodeId, u64> {
        &self.readings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: u64 = 365 * 24 * 3_600_000;

    #[test]
    fn one_fast_clock_of_three_cannot_move_cluster_time() {
        let mut clock = ClusterClock::default();
        clock.report(NodeId::new(1), 1_000, 3);
        clock.report(NodeId::new(2), 1_010, 3);
        clock.report(NodeId::new(3), 1_005, 3);
        assert_eq!(clock.now_ms(), 1_005);
        // Node 1's clock jumps a year ahead.
        clock.report(NodeId::new(1), 1_000 + YEAR, 3);
        assert_eq!(clock.now_ms(), 1_010);
        clock.report(NodeId::new(2), 2_000, 3);
        clock.report(NodeId::new(3), 2_100, 3);
        assert_eq!(clock.now_ms(), 2_100, "the honest clocks still advance it");
    }

    #[test]
    fn a_fast_clock_that_reports_first_cannot_set_cluster_time() {
        let mut clock = ClusterClock::default();
        clock.report(NodeId::new(1), YEAR, 3);
        assert_eq!(
            clock.now_ms(),
            0,
            "one reading of three voters is not a majority"
        );
        clock.report(NodeId::new(2), 1_000, 3);
        assert_eq!(clock.now_ms(), 1_000);
    }

    #[test]
    fn a_single_voter_is_its_own_majority() {
        let mut clock = ClusterClock::default();
        clock.report(NodeId::new(1), 5_000, 1);
        assert_eq!(clock.now_ms(), 5_000);
    }

    #[test]
    fn cluster_time_never_goes_backwards() {
        let mut clock = ClusterClock::default();
        clock.report(NodeId::new(1), 5_000, 1);
        assert_eq!(clock.now_ms(), 5_000);
        clock.report(NodeId::new(1), 4_000, 1);
        assert_eq!(clock.now_ms(), 5_000);
        assert_eq!(clock.readings().get(&NodeId::new(1)), Some(&4_000));
    }

    #[test]
    fn slow_clocks_only_delay() {
        let mut clock = ClusterClock::default();
        clock.report(NodeId::new(1), 10_000, 1);
        clock.report(NodeId::new(2), 1, 2);
        assert_eq!(clock.now_ms(), 10_000, "never backwards");
        clock.report(NodeId::new(1), 20_000, 2);
        assert_eq!(
            clock.now_ms(),
            10_000,
            "the lower median of two is the slower clock"
        );
        clock.report(NodeId::new(2), 20_000, 2);
        assert_eq!(clock.now_ms(), 20_000);
    }

    #[test]
    fn two_fast_clocks_of_five_cannot_move_it() {
        let mut clock = ClusterClock::default();
        for node in 1..=5 {
            clock.report(NodeId::new(node), 1_000, 5);
        }
        clock.report(NodeId::new(1), u64::MAX, 5);
        clock.report(NodeId::new(2), u64::MAX / 2, 5);
        assert_eq!(clock.now_ms(), 1_000);
    }

    #[test]
    fn the_row_keeps_the_bytes_it_had_with_bare_node_ids() {
        let mut clock = ClusterClock::default();
        clock.report(NodeId::new(2), 1_000, 3);
        clock.report(NodeId::new(300), 2_000, 3);
        let bare = (
            BTreeMap::from([(2u64, 1_000u64), (300u64, 2_000u64)]),
            1_000u64,
        );
        let bytes = postcard::to_allocvec(&clock).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&bare).unwrap());
        assert_eq!(
            bytes,
            [2, 2, 0xe8, 0x07, 0xac, 0x02, 0xd0, 0x0f, 0xe8, 0x07]
        );
        assert_eq!(postcard::from_bytes::<ClusterClock>(&bytes).unwrap(), clock);
    }
}
