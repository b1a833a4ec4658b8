//! Every node's audit trail is one unbroken hash chain.
//!
//! Property: Tessera's audit trail (`docs/security.md`, "Audit trail") — every record carries
//! the hash of the one before, across file rotations, restarts, kills and full disks. After the
//! run the harness runs `tessera audit verify` over each node's files; every node must have
//! files and they must verify.

use super::{verdict, CheckInput, Checker, Verdict, Violation};

/// The audit-chain checker.
pub struct AuditChain;

impl Checker for AuditChain {
    fn name(&self) -> &'static str {
        "audit-chain"
    }

    fn source(&self) -> &'static str {
        "Tessera audit trail: hash chain across rotations and restarts (docs/security.md)"
    }

    fn check(&self, input: &CheckInput<'_>) -> Verdict {
        let audit = &input.final_state.audit;
        let mut violations = Vec::new();
        if audit.is_empty() {
            violations.push(Violation {
                message: "no node's audit files were verified".to_owned(),
                events: Vec::new(),
            });
        }
        for (node, result) in audit {
            if result.files == 0 {
                violations.push(Violation {
                    message: format!("node {node} wrote no audit file"),
                    events: Vec::new(),
                });
            } else if !result.ok {
                violations.push(Violation {
                    message: format!("node {node}: audit verify failed: {}", result.detail),
                    events: Vec::new(),
                });
            }
        }
        let files: usize = audit.values().map(|r| r.files).sum();
        verdict(
            self,
            format!("{} nodes' audit trails, {files} files", audit.len()),
            violations,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;
    use crate::invariants::{AuditVerification, FinalState};

    #[test]
    fn a_broken_or_missing_chain_fails() {
        let mut state = FinalState::default();
        let input = |state: &FinalState| {
            AuditChain.check(&CheckInput {
                history: &[],
                statuses: &[],
                faults: &[],
                final_state: state,
                lease_window_ms: 1000,
                healed_at_us: None,
            })
        };
        assert!(!input(&state).ok, "nothing verified");
        state.audit.insert(
            1,
            AuditVerification {
                files: 2,
                ok: true,
                detail: String::new(),
            },
        );
        assert!(input(&state).ok);
        state.audit.insert(
            2,
            AuditVerification {
                files: 1,
                ok: false,
                detail: "audit-1.jsonl:7: the record was changed".into(),
            },
        );
        let verdict = input(&state);
        assert!(!verdict.ok);
        assert!(verdict.violations[0].message.contains("node 2"));
    }
}
