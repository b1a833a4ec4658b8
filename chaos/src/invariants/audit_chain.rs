//! Every node's audit trail is one unbroken hash chain.
//!
//! Property: Tessera's audit trail (`docs/security.md`, "Audit trail") — every record carries
//! the hash of the one before, across file rotations, restarts, kills and full disks. After the
//! run the harness runs `tessera audit verify` over each node's files; every node must have
//! files and they must verify.

use std::collections::BTreeMap;

use super::{AuditVerification, Checker, Findings, Violation};

/// The audit-chain checker: it reads nothing but the nodes' audit verifications.
pub const CHECKER: Checker = Checker {
    name: "audit-chain",
    source: "Tessera audit trail: hash chain across rotations and restarts (docs/security.md)",
    run: |input| check(&input.final_state.audit),
};

/// Checks each node's `tessera audit verify` result, by node.
fn check(audit: &BTreeMap<u64, AuditVerification>) -> Findings {
    let mut violations = Vec::new();
    if audit.is_empty() {
        violations.push(Violation::without_events(
            "no node's audit files were verified",
        ));
    }
    for (node, result) in audit {
        if result.files == 0 {
            violations.push(Violation::without_events(format!(
                "node {node} wrote no audit file"
            )));
        } else if !result.ok {
            violations.push(Violation::without_events(format!(
                "node {node}: audit verify failed: {}",
                result.detail
            )));
        }
    }
    let files: usize = audit.values().map(|r| r.files).sum();
    let summary = format!("{} nodes' audit trails, {files} files", audit.len());
    (summary, violations)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;
    use crate::invariants::testing::input;
    use crate::invariants::FinalState;

    #[test]
    fn a_broken_or_missing_chain_fails() {
        let mut state = FinalState::default();
        let check = |state: &FinalState| CHECKER.check(&input(state));
        assert!(!check(&state).ok, "nothing verified");
        state.audit.insert(
            1,
            AuditVerification {
                files: 2,
                ok: true,
                detail: String::new(),
            },
        );
        assert!(check(&state).ok);
        state.audit.insert(
            2,
            AuditVerification {
                files: 1,
                ok: false,
                detail: "audit-1.jsonl:7: the record was changed".into(),
            },
        );
        let verdict = check(&state);
        assert!(!verdict.ok);
        assert!(verdict.violations[0].message.contains("node 2"));
    }
}
