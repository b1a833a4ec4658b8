//! No election without a fault.
//!
//! Property: with every node up and every link working (however slow, within the timing
//! profile), the leader keeps its heartbeats ahead of every election timeout, so no follower
//! starts an election (Raft §5.2: "a server remains in follower state as long as it receives
//! valid RPCs from a leader or candidate"; Ongaro & Ousterhout 2014), and the term and leader
//! never change. For the WAN timing profile, `docs/operations.md` ("WAN timing profile")
//! promises exactly this under about 100 ms round trips. Checked from the nodes' status
//! samples taken before the first fault started (in a run with `--faults none`, the whole run)
//! and before the harness began its final heal and restart.

use std::collections::BTreeSet;

use super::{CheckInput, Checker, Findings, Violation};
use crate::history::StatusSample;

/// The no-elections checker.
pub const CHECKER: Checker = Checker {
    name: "no-elections",
    source: "Raft §5.2 (Ongaro & Ousterhout 2014); docs/operations.md, WAN timing profile",
    run,
};

fn run(input: &CheckInput<'_>) -> Findings {
    let first_fault = input.faults.iter().map(|f| f.time_us).min();
    let Some(calm_until) = [first_fault, input.healed_at_us]
        .into_iter()
        .flatten()
        .min()
    else {
        return (
            "not checked: the run recorded no end of its calm phase".into(),
            Vec::new(),
        );
    };
    let calm: Vec<&StatusSample> = input
        .statuses
        .iter()
        .filter(|s| s.time_us < calm_until)
        .collect();
    let (Some(first), Some(last)) = (calm.first(), calm.last()) else {
        return ("no status sample before the first fault".into(), Vec::new());
    };
    let mut violations = Vec::new();
    let mut term = first.term;
    let mut leader = calm.iter().find_map(|s| s.leader_id);
    for sample in &calm {
        if sample.term != term {
            violations.push(Violation::without_events(format!(
                "node {} reported term {} at {:.3} s after term {term}, with no fault injected",
                sample.node,
                sample.term,
                sample.time_us as f64 / 1e6
            )));
            term = sample.term;
        }
        if let Some(now) = sample.leader_id {
            if leader.is_some_and(|before| before != now) {
                violations.push(Violation::without_events(format!(
                        "node {} reported leader {now} at {:.3} s after leader {}, with no fault injected",
                        sample.node,
                        sample.time_us as f64 / 1e6,
                        leader.unwrap_or_default()
                    )));
            }
            leader = Some(now);
        }
    }
    let nodes: BTreeSet<u64> = calm.iter().map(|s| s.node).collect();
    let summary = format!(
        "{} status samples of {} nodes over {:.1} s without a fault: {}",
        calm.len(),
        nodes.len(),
        last.time_us.saturating_sub(first.time_us) as f64 / 1e6,
        match (violations.is_empty(), leader) {
            (true, Some(leader)) => format!("term {term} and leader {leader} throughout"),
            (true, None) => format!("term {term} throughout, no leader known"),
            (false, _) => format!("{} changes of term or leader", violations.len()),
        }
    );
    (summary, violations)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::history::{FaultEvent, Phase};
    use crate::invariants::testing::{assert_summary_contains, input};
    use crate::invariants::{FinalState, Verdict};
    use crate::schedule::FaultKind;

    fn sample(time_ms: u64, node: u64, term: u64, leader: Option<u64>) -> StatusSample {
        StatusSample {
            time_us: time_ms * 1000,
            node,
            term,
            role: if leader == Some(node) {
                "leader"
            } else {
                "follower"
            }
            .into(),
            leader_id: leader,
            applied_index: 1,
            state_digest: "d".into(),
        }
    }

    fn run(statuses: &[StatusSample], faults: &[FaultEvent], healed_at_ms: u64) -> Verdict {
        CHECKER.check(&CheckInput {
            statuses,
            faults,
            healed_at_us: Some(healed_at_ms * 1000),
            ..input(&FinalState::default())
        })
    }

    #[test]
    fn a_steady_leader_passes_and_the_final_restart_does_not_count() {
        let v = run(
            &[
                sample(0, 1, 2, Some(1)),
                sample(0, 2, 2, Some(1)),
                sample(300_000, 2, 2, Some(1)),
                // The harness's final full restart elects anew.
                sample(300_500, 2, 3, Some(2)),
            ],
            &[],
            300_100,
        );
        assert!(v.ok, "{v:?}");
        assert_summary_contains(&v, "term 2 and leader 1");
    }

    #[test]
    fn a_new_term_or_leader_without_a_fault_fails() {
        let v = run(
            &[
                sample(0, 1, 2, Some(1)),
                sample(1000, 2, 3, None),
                sample(2000, 2, 3, Some(2)),
            ],
            &[],
            10_000,
        );
        assert!(!v.ok);
        assert_eq!(v.violations.len(), 2, "{v:?}");
        assert!(v.violations[0].message.contains("term 3"));
        assert!(v.violations[1].message.contains("leader 2"));
    }

    #[test]
    fn elections_after_the_first_fault_are_allowed() {
        let kill = FaultEvent {
            time_us: 5_000_000,
            fault: FaultKind::Kill,
            phase: Phase::Start,
            detail: "kill node 1".into(),
            nodes: vec![1],
        };
        let v = run(
            &[sample(0, 1, 2, Some(1)), sample(6000, 2, 3, Some(2))],
            &[kill],
            60_000,
        );
        assert!(v.ok, "{v:?}");
    }
}
