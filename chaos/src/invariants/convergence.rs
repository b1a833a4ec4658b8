//! Replicas converge: every node ends with the same applied state.
//!
//! Property: Raft §5.3 Log Matching and §5.4 State Machine Safety (Ongaro & Ousterhout 2014) —
//! once every node has applied the same index, their state machines are identical. After the
//! harness heals every fault and waits until all nodes report the same applied index, every
//! node's state digest at that index must be equal (the eventual-consistency "convergence"
//! check of Jepsen-style harnesses).

use std::collections::BTreeSet;

use super::{CheckInput, Checker, Findings, Violation};

/// The convergence checker.
pub const CHECKER: Checker = Checker {
    name: "convergence",
    source: "Raft §5.3 Log Matching / §5.4 State Machine Safety (Ongaro & Ousterhout 2014)",
    run,
};

fn run(input: &CheckInput<'_>) -> Findings {
    let digests = &input.final_state.digests;
    let mut violations = Vec::new();
    let distinct: BTreeSet<&(u64, String)> = digests.values().collect();
    if digests.is_empty() {
        violations.push(Violation::without_events(
            "no node reported a final applied index and digest",
        ));
    } else if distinct.len() > 1 {
        let list: Vec<String> = digests
            .iter()
            .map(|(node, (index, digest))| format!("node {node}: applied {index}, digest {digest}"))
            .collect();
        violations.push(Violation::without_events(format!(
            "nodes ended in {} different states: {}",
            distinct.len(),
            list.join("; ")
        )));
    }
    let missing: Vec<String> = input
        .final_state
        .keys
        .keys()
        .filter(|node| !digests.contains_key(node))
        .map(u64::to_string)
        .collect();
    if !missing.is_empty() && !digests.is_empty() {
        violations.push(Violation::without_events(format!(
            "nodes {} reported keys but no final digest",
            missing.join(", ")
        )));
    }
    let summary = match distinct.iter().next() {
        Some((index, _)) if distinct.len() == 1 => {
            format!(
                "compared the state digests of {} nodes at applied index {index}",
                digests.len()
            )
        }
        _ => format!("compared the state digests of {} nodes", digests.len()),
    };
    (summary, violations)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_violation_contains, input};
    use super::super::{FinalState, Verdict};
    use super::*;

    fn run(digests: &[(u64, u64, &str)]) -> Verdict {
        let mut state = FinalState::default();
        for (node, index, digest) in digests {
            state.digests.insert(*node, (*index, (*digest).to_owned()));
        }
        CHECKER.check(&input(&state))
    }

    #[test]
    fn identical_digests_pass() {
        let v = run(&[(1, 42, "abc"), (2, 42, "abc"), (3, 42, "abc")]);
        assert!(v.ok, "{v:?}");
        assert_eq!(
            v.summary,
            "compared the state digests of 3 nodes at applied index 42"
        );
    }

    #[test]
    fn different_digests_or_indexes_fail() {
        let v = run(&[(1, 42, "abc"), (2, 42, "abd"), (3, 41, "abc")]);
        assert!(!v.ok);
        assert_eq!(v.violations.len(), 1);
        assert_violation_contains(&v, 0, "3 different states");
        assert_violation_contains(&v, 0, "node 3: applied 41, digest abc");
        assert!(!run(&[]).ok);
    }
}
