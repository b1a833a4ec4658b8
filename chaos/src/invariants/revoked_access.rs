//! Revoked access stops within one lease window.
//!
//! Property (Tessera design, `docs/security.md`, "Access control"): each node decides a request
//! against its applied state, and crypto RPCs hold the lease, "so a policy, grant or deny-list
//! change holds on every serving node within one lease window". The workload's admin client
//! puts a policy allowing identity `app` `kms:Encrypt` on a key (`allow_app`) and later one
//! denying it (`deny_app`); `app` clients encrypt through every node (`app_encrypt`). Once
//! `lease_window_ms` (+ [`SLACK_US`]) has passed since a deny was acknowledged, every `ok`
//! `app_encrypt` on the key invoked after that point, and before an allow could have taken
//! effect again, is a violation. The argument is the disabled-keys one (lease reads, Raft
//! thesis §6.4) applied to the access model.

use super::disabled_keys::{seconds, SLACK_US};
use super::{operations, stale_uses, verdict, CheckInput, Checker, RevocationRule, Verdict};
use crate::history::Op;

/// The revoked-access checker.
pub struct RevokedAccess;

impl Checker for RevokedAccess {
    fn name(&self) -> &'static str {
        "revoked-access"
    }

    fn source(&self) -> &'static str {
        "Tessera design (docs/security.md, Access control): a policy change holds on every \
         serving node within one lease window; lease reads, Raft thesis §6.4 (Ongaro 2014)"
    }

    fn check(&self, input: &CheckInput<'_>) -> Verdict {
        let ops = operations(input.history);
        let window_us = input.lease_window_ms.saturating_mul(1000);
        let rule = RevocationRule {
            revokes: |op| matches!(op, Op::DenyApp { .. }),
            restores: |op| matches!(op, Op::AllowApp { .. }),
            uses: |op| matches!(op, Op::AppEncrypt { .. }),
        };
        let (denies, stale) = stale_uses(&ops, rule, window_us.saturating_add(SLACK_US));
        let violations = stale
            .iter()
            .map(|s| {
                s.violation(window_us, |s, beyond_ms| {
                    format!(
                        "app's kms:Encrypt on key {:?} was revoked (acknowledged at {:.3} s) but \
                         node {} let app encrypt invoked at {:.3} s, {beyond_ms:.1} ms beyond the \
                         {} ms lease window",
                        s.used.op.key_name(),
                        seconds(s.acked_us),
                        s.used.node,
                        seconds(s.used.invoke_us),
                        input.lease_window_ms
                    )
                })
            })
            .collect();
        let app_encrypts = ops.iter().filter(|o| matches!(o.op, Op::AppEncrypt { .. }));
        let (allowed, denied) = app_encrypts.fold((0usize, 0usize), |(a, d), o| {
            if o.is_ok() {
                (a + 1, d)
            } else if o.error_code() == Some("ACCESS_DENIED") {
                (a, d + 1)
            } else {
                (a, d)
            }
        });
        let summary = format!(
            "checked {denies} acknowledged revocations against {allowed} allowed and {denied} \
             denied app encrypts (lease window {} ms + {} ms slack)",
            input.lease_window_ms,
            SLACK_US / 1000
        );
        verdict(self, summary, violations)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::history::OkValue;

    fn run(h: &HistoryBuilder) -> Verdict {
        check_history(&RevokedAccess, h)
    }

    #[test]
    fn app_encrypts_within_the_window_or_after_an_allow_pass() {
        let mut h = HistoryBuilder::new();
        h.ok_op(0, 10, 1, &create("a", "c1"), key_id("k1"));
        h.ok_op(20, 30, 1, &allow_app("a"), OkValue::default());
        h.ok_op(40, 50, 2, &app_encrypt("a", "aGk="), key_id("k1"));
        h.ok_op(100, 200, 1, &deny_app("a"), OkValue::default());
        // Within 1000 ms + 100 ms slack of the acknowledgement.
        h.ok_op(1250, 1260, 2, &app_encrypt("a", "aGk="), key_id("k1"));
        // Refused after the window: what must happen.
        h.fail_op(
            1400,
            1410,
            3,
            &app_encrypt("a", "aGk="),
            "PERMISSION_DENIED",
            "ACCESS_DENIED",
        );
        // An allow whose outcome is unknown may have been applied: protection ends.
        h.invoke(1500, 1, &allow_app("a"));
        h.info(1600, 1, &allow_app("a"));
        h.ok_op(2000, 2010, 2, &app_encrypt("a", "aGk="), key_id("k1"));
        // Another key is unaffected.
        h.ok_op(3000, 3010, 2, &app_encrypt("b", "aGk="), key_id("k2"));
        let v = run(&h);
        assert!(v.ok, "{v:?}");
        assert!(
            v.summary
                .contains("1 acknowledged revocations against 4 allowed and 1 denied"),
            "{}",
            v.summary
        );

        // An allow concurrent with the deny may have been applied after it.
        let mut h = HistoryBuilder::new();
        h.invoke(50, 3, &allow_app("a"));
        h.ok_op(100, 200, 1, &deny_app("a"), OkValue::default());
        h.ok_op(300, 310, 3, &allow_app("a"), OkValue::default());
        h.ok_op(5000, 5010, 2, &app_encrypt("a", "aGk="), key_id("k1"));
        assert!(run(&h).ok);
    }

    #[test]
    fn an_app_encrypt_beyond_the_window_is_a_violation() {
        let mut h = HistoryBuilder::new();
        h.ok_op(0, 10, 1, &create("a", "c1"), key_id("k1"));
        // An allow that completed before the deny was invoked does not matter.
        h.ok_op(20, 30, 3, &allow_app("a"), OkValue::default());
        let d = h.ok_op(100, 200, 1, &deny_app("a"), OkValue::default());
        // An admin encrypt is not the revoked use.
        h.ok_op(1400, 1410, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        let e = h.ok_op(1400, 1410, 2, &app_encrypt("a", "aGk="), key_id("k1"));
        h.ok_op(5000, 5010, 1, &allow_app("a"), OkValue::default());
        h.ok_op(6000, 6010, 2, &app_encrypt("a", "aGk="), key_id("k1"));
        let v = run(&h);
        assert!(!v.ok);
        assert_eq!(v.violations.len(), 1, "{v:?}");
        assert_eq!(v.violations[0].events, vec![d - 1, d, e - 1, e]);
        assert!(
            v.violations[0].message.contains("200.0 ms beyond"),
            "{}",
            v.violations[0].message
        );
    }
}
