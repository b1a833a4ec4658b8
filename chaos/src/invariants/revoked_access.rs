//! Revoked access stops within one lease window.
//!
//! Property (Tessera design, `docs/security.md`, "Access control"): each node decides a request
//! against its applied state, and crypto RPCs hold the lease, "so a policy, grant or deny-list
//! change holds on every serving node within one lease window". The workload's admin client
//! puts a policy allowing identity `app` `kms:Encrypt` on a key (`allow_app`) and later one
//! denying it (`deny_app`); `app` clients encrypt through every node (`app_encrypt`). Once
//! `lease_window_ms` (+ [`SLACK_US`](super::SLACK_US)) has passed since a deny was
//! acknowledged, every `ok` `app_encrypt` on the key invoked after that point, and before an
//! allow could have taken effect again, is a violation. The argument is the disabled-keys one
//! (lease reads, Raft thesis §6.4) applied to the access model.

use super::{
    lease_bounded, lease_window_note, operations, seconds, CheckInput, Checker, Findings,
    RevocationRule,
};
use crate::history::Op;

/// The revoked-access checker.
pub const CHECKER: Checker = Checker {
    name: "revoked-access",
    source: "Tessera design (docs/security.md, Access control): a policy change holds on every \
             serving node within one lease window; lease reads, Raft thesis §6.4 (Ongaro 2014)",
    run,
};

/// A deny revokes app encrypts on its key; an allow, whatever its outcome, may give them back.
const RULE: RevocationRule = RevocationRule {
    revokes: |op| matches!(op, Op::DenyApp { .. }),
    restores: |op| matches!(op, Op::AllowApp { .. }),
    uses: |op| matches!(op, Op::AppEncrypt { .. }),
};

fn run(input: &CheckInput<'_>) -> Findings {
    let ops = operations(input.history);
    let (denies, violations) = lease_bounded(input, &ops, RULE, |s, beyond_ms| {
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
    });
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
         denied app encrypts {}",
        lease_window_note(input)
    );
    (summary, violations)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::history::OkValue;

    #[test]
    fn app_encrypts_within_the_window_or_after_an_allow_pass() {
        let app = app_encrypt("a", "aGk=");
        let mut h = created();
        h.ok_op(20, 30, 1, &allow_app("a"), OkValue::default());
        h.ok_op(40, 50, 2, &app, key_id("k1"));
        h.ok_op(100, 200, 1, &deny_app("a"), OkValue::default());
        // Within 1000 ms + 100 ms slack of the acknowledgement.
        h.ok_op(1250, 1260, 2, &app, key_id("k1"));
        // Refused after the window: what must happen.
        h.fail_op(1400, 1410, 3, &app, "PERMISSION_DENIED", "ACCESS_DENIED");
        // An allow whose outcome is unknown may have been applied: protection ends.
        h.invoke(1500, 1, &allow_app("a"));
        h.info(1600, 1, &allow_app("a"));
        h.ok_op(2000, 2010, 2, &app, key_id("k1"));
        // Another key is unaffected.
        h.ok_op(3000, 3010, 2, &app_encrypt("b", "aGk="), key_id("k2"));
        let v = h.check(&CHECKER);
        assert!(v.ok, "{v:?}");
        assert_summary_contains(
            &v,
            "1 acknowledged revocations against 4 allowed and 1 denied",
        );

        // An allow concurrent with the deny may have been applied after it.
        let mut h = HistoryBuilder::new();
        h.invoke(50, 3, &allow_app("a"));
        h.ok_op(100, 200, 1, &deny_app("a"), OkValue::default());
        h.ok_op(300, 310, 3, &allow_app("a"), OkValue::default());
        h.ok_op(5000, 5010, 2, &app, key_id("k1"));
        assert!(h.check(&CHECKER).ok);
    }

    #[test]
    fn an_app_encrypt_beyond_the_window_is_a_violation() {
        let mut h = created();
        // An allow that completed before the deny was invoked does not matter.
        h.ok_op(20, 30, 3, &allow_app("a"), OkValue::default());
        let d = h.ok_op(100, 200, 1, &deny_app("a"), OkValue::default());
        // An admin encrypt is not the revoked use.
        h.ok_op(1400, 1410, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        let e = h.ok_op(1400, 1410, 2, &app_encrypt("a", "aGk="), key_id("k1"));
        h.ok_op(5000, 5010, 1, &allow_app("a"), OkValue::default());
        h.ok_op(6000, 6010, 2, &app_encrypt("a", "aGk="), key_id("k1"));
        assert_one_violation(&h.check(&CHECKER), &[d - 1, d, e - 1, e], "200.0 ms beyond");
    }
}
