//! Statistics of a run: outcome counts, error codes, latency percentiles, unavailability
//! windows, and the pairing of fault start/end events into intervals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{FaultEvent, Phase, Records};
use crate::invariants::{error_code, op_name, operations, Operation, Outcome};
use crate::schedule::FaultKind;

/// Operations of one type, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Completed `ok`.
    pub ok: u64,
    /// Completed `fail`.
    pub fail: u64,
    /// Completed `info`, or never completed.
    pub info: u64,
}

/// Latency of `ok` operations of one type, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of `ok` operations.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile (nearest rank).
    pub p99_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// A time interval, in microseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start.
    pub start_us: u64,
    /// End.
    pub end_us: u64,
}

impl Window {
    /// Length in microseconds.
    pub fn len_us(&self) -> u64 {
        self.end_us.saturating_sub(self.start_us)
    }
}

/// Shortest gap without an `ok` completion reported as unavailability: 1 s.
pub const UNAVAILABILITY_MIN_US: u64 = 1_000_000;

/// Statistics of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Operation type (`create_key`, …) → counts by outcome.
    pub operations: BTreeMap<String, OutcomeCounts>,
    /// Error code (the Tessera code, else the gRPC code; `NO_COMPLETION` for operations still
    /// running at the end) → count, over `fail` and `info` operations.
    pub errors: BTreeMap<String, u64>,
    /// Fault kind → number of fault intervals.
    pub faults: BTreeMap<String, u64>,
    /// Maximal intervals of at least [`UNAVAILABILITY_MIN_US`] in which no operation completed
    /// `ok`, between the first invoke and the last completion.
    pub unavailability: Vec<Window>,
    /// Operation type → latency of its `ok` operations.
    pub latency: BTreeMap<String, LatencyStats>,
}

impl Stats {
    /// Computes the statistics of `records`.
    pub fn from_records(records: &Records) -> Self {
        let ops = operations(&records.events);
        let mut stats = Self::default();
        let mut latencies: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
        for op in &ops {
            let name = op_name(&op.op);
            let counts = stats.operations.entry(name.to_owned()).or_default();
            match op.outcome {
                Outcome::Ok => counts.ok += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Info => counts.info += 1,
            }
            match (&op.error, op.outcome, op.complete_index) {
                (Some(error), _, _) => {
                    *stats
                        .errors
                        .entry(error_code(error).to_owned())
                        .or_default() += 1
                }
                (None, Outcome::Info, None) => {
                    *stats.errors.entry("NO_COMPLETION".to_owned()).or_default() += 1
                }
                _ => {}
            }
            if let (Outcome::Ok, Some(latency)) = (op.outcome, op.latency_us()) {
                latencies.entry(name).or_default().push(latency);
            }
        }
        for (name, mut values) in latencies {
            values.sort_unstable();
            stats.latency.insert(
                name.to_owned(),
                LatencyStats {
                    count: values.len() as u64,
                    p50_us: percentile(&values, 50),
                    p99_us: percentile(&values, 99),
                    max_us: values.last().copied().unwrap_or_default(),
                },
            );
        }
        for interval in fault_intervals(&records.faults) {
            *stats
                .faults
                .entry(interval.fault.event_name().to_owned())
                .or_default() += 1;
        }
        stats.unavailability = unavailability(&ops);
        stats
    }
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).clamp(1, n);
    usize::try_from(rank - 1)
        .ok()
        .and_then(|i| sorted.get(i))
        .copied()
        .unwrap_or_default()
}

pub(super) fn unavailability(ops: &[Operation]) -> Vec<Window> {
    let Some(start) = ops.iter().map(|o| o.invoke_us).min() else {
        return Vec::new();
    };
    let Some(end) = ops.iter().filter_map(|o| o.complete_us).max() else {
        return Vec::new();
    };
    let mut oks: Vec<u64> = ops
        .iter()
        .filter(|o| o.is_ok())
        .filter_map(|o| o.complete_us)
        .collect();
    oks.sort_unstable();
    oks.push(end);
    let mut windows = Vec::new();
    let mut previous = start;
    for t in oks {
        if t.saturating_sub(previous) >= UNAVAILABILITY_MIN_US {
            windows.push(Window {
                start_us: previous,
                end_us: t,
            });
        }
        previous = previous.max(t);
    }
    windows
}

/// A fault from its start to its end, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultInterval {
    /// Fault kind.
    #[serde(with = "crate::history::event_name")]
    pub fault: FaultKind,
    /// Detail of the start event.
    pub detail: String,
    /// Nodes affected.
    pub nodes: Vec<u64>,
    /// Start.
    pub start_us: u64,
    /// End; `None` if the fault never ended before the run did.
    pub end_us: Option<u64>,
}

/// Pairs fault `start` and `end` events: an end closes the earliest open start of the same kind
/// with the same nodes (or, failing that, of the same kind); an end without a start is
/// ignored.
pub fn fault_intervals(faults: &[FaultEvent]) -> Vec<FaultInterval> {
    let mut intervals: Vec<FaultInterval> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for event in faults {
        match event.phase {
            Phase::Start => {
                open.push(intervals.len());
                intervals.push(FaultInterval {
                    fault: event.fault,
                    detail: event.detail.clone(),
                    nodes: event.nodes.clone(),
                    start_us: event.time_us,
                    end_us: None,
                });
            }
            Phase::End => {
                let matches = |i: &usize, same_nodes: bool| {
                    intervals.get(*i).is_some_and(|f| {
                        f.fault == event.fault && (!same_nodes || f.nodes == event.nodes)
                    })
                };
                let found = open
                    .iter()
                    .position(|i| matches(i, true))
                    .or_else(|| open.iter().position(|i| matches(i, false)));
                if let Some(position) = found {
                    let i = open.remove(position);
                    if let Some(interval) = intervals.get_mut(i) {
                        interval.end_us = Some(event.time_us.max(interval.start_us));
                    }
                }
            }
        }
    }
    intervals
}
