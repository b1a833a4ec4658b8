//! A disabled key stops being served within one lease window.
//!
//! Property (Tessera design, `docs/architecture.md`, "The lease"): "after an acknowledged
//! `DisableKey`, no node serves that key beyond the lease window". A node serves crypto only
//! while its lease is valid, and a lease renewed after the disable committed requires the node
//! to have applied it; a lease renewed before runs out within `lease_ms`. So once
//! `lease_window_ms` (+ [`SLACK_US`] for clock and scheduling jitter) has passed since the
//! disable was acknowledged, every `ok` crypto operation on the key that was *invoked* after
//! that point, and before the key could have been enabled again, is a violation. This is the
//! lease-based read safety argument of Raft §6.4 (Ongaro's thesis, 2014) applied to key state.
//!
//! "Could have been enabled again" is conservative: the disable's protection ends at the
//! earliest instant any `EnableKey` (whatever its outcome) may have taken effect after the
//! disable — `max(enable invoke, disable invoke)` over every enable that did not complete before
//! the disable was invoked.

use super::{operations, stale_uses, verdict, CheckInput, Checker, RevocationRule, Verdict};
use crate::history::Op;

/// Tolerance added to the lease window, in microseconds (100 ms): clock reads, scheduling and
/// the harness's own recording delay.
pub const SLACK_US: u64 = 100_000;

/// The disabled-keys checker.
pub struct DisabledKeys;

impl Checker for DisabledKeys {
    fn name(&self) -> &'static str {
        "disabled-keys"
    }

    fn source(&self) -> &'static str {
        "Tessera design (docs/architecture.md, The lease): no node serves a disabled key beyond \
         the lease window; lease reads, Raft thesis §6.4 (Ongaro 2014)"
    }

    fn check(&self, input: &CheckInput<'_>) -> Verdict {
        let ops = operations(input.history);
        let window_us = input.lease_window_ms.saturating_mul(1000);
        let rule = RevocationRule {
            revokes: |op| matches!(op, Op::DisableKey { .. }),
            restores: |op| matches!(op, Op::EnableKey { .. }),
            uses: Op::is_crypto,
        };
        let (disables, stale) = stale_uses(&ops, rule, window_us.saturating_add(SLACK_US));
        let violations = stale
            .iter()
            .map(|s| {
                s.violation(window_us, |s, beyond_ms| {
                    format!(
                        "key {:?} was disabled (acknowledged at {:.3} s) but node {} served {} on it \
                         invoked at {:.3} s, {beyond_ms:.1} ms beyond the {} ms lease window",
                        s.used.op.key_name(),
                        seconds(s.acked_us),
                        s.used.node,
                        super::op_name(&s.used.op),
                        seconds(s.used.invoke_us),
                        input.lease_window_ms
                    )
                })
            })
            .collect();
        let summary = format!(
            "checked {disables} acknowledged disables against {} acknowledged crypto operations \
             (lease window {} ms + {} ms slack)",
            ops.iter().filter(|o| o.op.is_crypto() && o.is_ok()).count(),
            input.lease_window_ms,
            SLACK_US / 1000
        );
        verdict(self, summary, violations)
    }
}

/// `us` microseconds in seconds.
pub(super) fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::history::OkValue;

    fn run(h: &HistoryBuilder) -> Verdict {
        check_history(&DisabledKeys, h)
    }

    #[test]
    fn crypto_within_the_window_or_after_an_enable_is_fine() {
        let mut h = HistoryBuilder::new();
        h.ok_op(0, 10, 1, &create("a", "c1"), key_id("k1"));
        h.ok_op(100, 200, 1, &disable("a", "d1"), OkValue::default());
        // Within 1000 ms + 100 ms slack of the acknowledgement.
        h.ok_op(1250, 1260, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        // An enable that failed still ends the protection (conservatively).
        h.fail_op(
            1500,
            1600,
            1,
            &enable("a", "e1"),
            "UNAVAILABLE",
            "NO_LEADER",
        );
        h.ok_op(2000, 2010, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        // Another key is unaffected.
        h.ok_op(3000, 3010, 2, &encrypt("b", "aGk="), ciphertext("Y3Q="));
        let v = run(&h);
        assert!(v.ok, "{v:?}");
        assert!(
            v.summary.contains("1 acknowledged disables"),
            "{}",
            v.summary
        );

        // An enable concurrent with the disable may have been applied after it.
        let mut h = HistoryBuilder::new();
        h.invoke(50, 3, &enable("a", "e0"));
        h.ok_op(100, 200, 1, &disable("a", "d1"), OkValue::default());
        h.info(300, 3, &enable("a", "e0"));
        h.ok_op(5000, 5010, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        assert!(run(&h).ok);
    }

    #[test]
    fn crypto_beyond_the_window_is_a_violation() {
        let mut h = HistoryBuilder::new();
        h.ok_op(0, 10, 1, &create("a", "c1"), key_id("k1"));
        let d = h.ok_op(100, 200, 1, &disable("a", "d1"), OkValue::default());
        // An enable that completed before the disable was invoked does not matter.
        h.ok_op(20, 30, 3, &enable("a", "e0"), OkValue::default());
        let e = h.ok_op(1400, 1410, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        h.ok_op(5000, 5010, 1, &enable("a", "e1"), OkValue::default());
        h.ok_op(6000, 6010, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
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
