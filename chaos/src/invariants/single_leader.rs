//! At most one leader per term.
//!
//! Property: Raft §5.2 / Figure 3 "Election Safety: at most one leader can be elected in a given
//! term" (Ongaro & Ousterhout, *In Search of an Understandable Consensus Algorithm*, 2014).
//! Checked from the nodes' own status samples: for every term, at most one node reported the
//! role `leader` in that term, and every leader id reported for that term (by any node) is the
//! same one.

use std::collections::{BTreeMap, BTreeSet};

use super::{CheckInput, Checker, Findings, Violation};

/// The single-leader checker.
pub const CHECKER: Checker = Checker {
    name: "single-leader",
    source: "Raft §5.2 Election Safety (Ongaro & Ousterhout 2014)",
    run,
};

fn run(input: &CheckInput<'_>) -> Findings {
    // term → leader node → time of the first sample in which it said so.
    let mut leaders: BTreeMap<u64, BTreeMap<u64, u64>> = BTreeMap::new();
    // term → reported leader id → (reporting node, time) of the first such sample.
    let mut reported: BTreeMap<u64, BTreeMap<u64, (u64, u64)>> = BTreeMap::new();
    let mut nodes = BTreeSet::new();
    for sample in input.statuses {
        nodes.insert(sample.node);
        if sample.role.eq_ignore_ascii_case("leader") {
            leaders
                .entry(sample.term)
                .or_default()
                .entry(sample.node)
                .or_insert(sample.time_us);
        }
        if let Some(leader) = sample.leader_id {
            reported
                .entry(sample.term)
                .or_default()
                .entry(leader)
                .or_insert((sample.node, sample.time_us));
        }
    }
    let mut violations = Vec::new();
    for (term, by_node) in &leaders {
        if by_node.len() > 1 {
            let list: Vec<String> = by_node
                .iter()
                .map(|(node, t)| format!("node {node} (at {:.3} s)", *t as f64 / 1e6))
                .collect();
            violations.push(Violation::without_events(format!(
                "term {term} had {} leaders: {}",
                by_node.len(),
                list.join(", ")
            )));
        }
    }
    for (term, ids) in &reported {
        if ids.len() > 1 {
            let list: Vec<String> = ids
                .iter()
                .map(|(leader, (node, t))| {
                    format!(
                        "node {node} said leader {leader} (at {:.3} s)",
                        *t as f64 / 1e6
                    )
                })
                .collect();
            violations.push(Violation::without_events(format!(
                "nodes disagree on the leader of term {term}: {}",
                list.join("; ")
            )));
        }
    }
    let terms: BTreeSet<u64> = input.statuses.iter().map(|s| s.term).collect();
    let summary = format!(
        "checked {} status samples from {} nodes over {} terms ({} with a leader)",
        input.statuses.len(),
        nodes.len(),
        terms.len(),
        leaders.len()
    );
    (summary, violations)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_summary_contains, assert_violation_contains, input};
    use super::super::{FinalState, Verdict};
    use super::*;
    use crate::history::StatusSample;

    fn sample(time_ms: u64, node: u64, term: u64, role: &str, leader: Option<u64>) -> StatusSample {
        StatusSample {
            time_us: time_ms * 1000,
            node,
            term,
            role: role.into(),
            leader_id: leader,
            applied_index: 1,
            state_digest: "d".into(),
        }
    }

    fn run(statuses: &[StatusSample]) -> Verdict {
        CHECKER.check(&CheckInput {
            statuses,
            ..input(&FinalState::default())
        })
    }

    #[test]
    fn one_leader_per_term_passes() {
        let v = run(&[
            sample(0, 1, 1, "leader", Some(1)),
            sample(0, 2, 1, "follower", Some(1)),
            sample(0, 3, 1, "follower", None),
            sample(10, 3, 2, "candidate", None),
            sample(20, 2, 3, "leader", Some(2)),
            sample(20, 1, 3, "follower", Some(2)),
            sample(30, 1, 1, "leader", Some(1)), // a stale sample of the same term
        ]);
        assert!(v.ok, "{v:?}");
        assert_summary_contains(
            &v,
            "7 status samples from 3 nodes over 3 terms (2 with a leader)",
        );
    }

    #[test]
    fn two_leaders_or_disagreeing_ids_in_a_term_fail() {
        let v = run(&[
            sample(0, 1, 4, "leader", Some(1)),
            sample(5, 2, 4, "Leader", Some(2)),
            sample(6, 3, 4, "follower", Some(1)),
        ]);
        assert!(!v.ok);
        assert_eq!(v.violations.len(), 2, "{v:?}");
        assert_violation_contains(&v, 0, "term 4 had 2 leaders: node 1");
        assert_violation_contains(&v, 1, "disagree on the leader of term 4");
        assert!(v.violations[0].events.is_empty());
    }
}
