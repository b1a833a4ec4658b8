//! Every acknowledged ciphertext stays decryptable, on every node.
//!
//! Property: a ciphertext the cluster returned (`ok` `Encrypt` or `ReEncrypt`) decrypts to its
//! plaintext on every node at the end of the run — the key version it names was committed
//! before the ciphertext was released and is never lost (Raft §5.4 State Machine Safety,
//! Ongaro & Ousterhout 2014), and the Tessera design's rule that crypto is served only from
//! applied, replicated key material (`docs/architecture.md`, "The lease"; a node never encrypts
//! under a version it could later lose). The harness re-enables keys and decrypts each
//! recorded ciphertext on each node; a missing result or an error is a violation.

use base64::Engine;

use super::{abbreviate, error_code, operations, CheckInput, Checker, Findings, Violation};
use crate::history::Op;

/// The decryptable checker.
pub const CHECKER: Checker = Checker {
    name: "decryptable",
    source:
        "Raft §5.4 State Machine Safety (Ongaro & Ousterhout 2014); Tessera design: crypto only \
             from applied key material",
    run,
};

fn run(input: &CheckInput<'_>) -> Findings {
    let decryptions = &input.final_state.decryptions;
    let mut violations = Vec::new();
    let mut checked = 0usize;
    let mut ciphertexts = 0usize;
    for op in operations(input.history) {
        let (Some(index), true) = (op.complete_index, op.is_ok()) else {
            continue;
        };
        let plaintext = match &op.op {
            Op::Encrypt { plaintext, .. } | Op::ReEncrypt { plaintext, .. } => plaintext,
            _ => continue,
        };
        ciphertexts += 1;
        let name = op.op.key_name();
        for (node, results) in decryptions {
            checked += 1;
            let problem = match results.get(&index) {
                None => "has no decryption result".to_owned(),
                Some(Err(error)) => {
                    format!(
                        "failed to decrypt it: {} ({})",
                        error_code(error),
                        error.message
                    )
                }
                Some(Ok(got)) if same_base64(got, plaintext) => continue,
                Some(Ok(got)) => format!(
                    "decrypted it to {} instead of {}",
                    abbreviate(got),
                    abbreviate(plaintext)
                ),
            };
            violations.push(Violation {
                    message: format!(
                        "ciphertext from event {index} (key {name:?}, served by node {}): node {node} {problem}",
                        op.node
                    ),
                    events: op.events(),
                });
        }
    }
    if decryptions.is_empty() && ciphertexts > 0 {
        violations.push(Violation::without_events(format!(
                "no node reported decryption results, so {ciphertexts} acknowledged ciphertexts cannot be verified"
            )));
    }
    let summary = format!(
        "checked {ciphertexts} acknowledged ciphertexts on {} nodes ({checked} decryptions)",
        decryptions.len()
    );
    (summary, violations)
}

/// Whether two base64 strings encode the same bytes (falls back to string equality when one
/// does not decode).
fn same_base64(a: &str, b: &str) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    match (engine.decode(a), engine.decode(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{FinalState, Verdict};
    use super::*;
    use crate::history::ErrorInfo;

    fn run(h: &HistoryBuilder, state: &FinalState) -> Verdict {
        CHECKER.check(&CheckInput {
            history: &h.events,
            lease_window_ms: 1200,
            ..input(state)
        })
    }

    fn history() -> (HistoryBuilder, u64, u64) {
        let mut h = created();
        let e1 = h.ok_op(20, 30, 1, &encrypt("a", "aGk="), ciphertext("Y3Qx"));
        h.info_op(20, 30, 2, &encrypt("a", "eW8="));
        let reencrypt = Op::ReEncrypt {
            name: "a".into(),
            ciphertext: "Y3Qx".into(),
            plaintext: "aGk=".into(),
        };
        let e2 = h.ok_op(40, 50, 2, &reencrypt, ciphertext("Y3Qy"));
        (h, e1, e2)
    }

    #[test]
    fn accepts_ciphertexts_that_decrypt_everywhere() {
        let (h, e1, e2) = history();
        let mut state = FinalState::default();
        for node in 1..=3 {
            let map = state.decryptions.entry(node).or_default();
            map.insert(e1, Ok("aGk=".into()));
            map.insert(e2, Ok("aGk=".into()));
        }
        let v = run(&h, &state);
        assert!(v.ok, "{v:?}");
        assert_summary_contains(&v, "2 acknowledged ciphertexts on 3 nodes");
    }

    #[test]
    fn reports_missing_failed_and_wrong_decryptions() {
        let (h, e1, e2) = history();
        let mut state = FinalState::default();
        state
            .decryptions
            .entry(1)
            .or_default()
            .insert(e1, Ok("aGk=".into()));
        let node2 = state.decryptions.entry(2).or_default();
        node2.insert(e1, Ok("eW8=".into()));
        node2.insert(
            e2,
            Err(ErrorInfo {
                code: "NOT_FOUND".into(),
                tessera_code: Some("KEY_VERSION_NOT_FOUND".into()),
                message: "no such version".into(),
            }),
        );
        let v = run(&h, &state);
        assert!(!v.ok);
        assert_eq!(v.violations.len(), 3, "{v:?}");
        assert_violation_contains(&v, 0, "node 2 decrypted it to eW8=");
        assert_violation_contains(&v, 1, "node 1 has no decryption result");
        assert_violation_contains(&v, 2, "KEY_VERSION_NOT_FOUND");
        assert_eq!(v.violations[1].events, vec![e2 - 1, e2]);
        // Nothing collected at all is not a pass.
        assert!(!run(&h, &FinalState::default()).ok);
    }
}
