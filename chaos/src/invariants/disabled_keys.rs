//! A disabled key stops being served within one lease window.
//!
//! Property (Tessera design, `docs/architecture.md`, "The lease"): "after an acknowledged
//! `DisableKey`, no node serves that key beyond the lease window". A node serves crypto only
//! while its lease is valid, and a lease renewed after the disable committed requires the node
//! to have applied it; a lease renewed before runs out within `lease_ms`. So once
//! `lease_window_ms` (+ [`SLACK_US`](super::SLACK_US) for clock and scheduling jitter) has
//! passed since the disable was acknowledged, every `ok` crypto operation on the key that was
//! *invoked* after that point, and before the key could have been enabled again, is a
//! violation. This is the lease-based read safety argument of Raft §6.4 (Ongaro's thesis, 2014)
//! applied to key state.
//!
//! "Could have been enabled again" is conservative: the disable's protection ends at the
//! earliest instant any `EnableKey` (whatever its outcome) may have taken effect after the
//! disable — `max(enable invoke, disable invoke)` over every enable that did not complete before
//! the disable was invoked.

use super::{
    lease_bounded, lease_window_note, op_name, operations, seconds, CheckInput, Checker, Findings,
    RevocationRule,
};
use crate::history::Op;

/// The disabled-keys checker.
pub const CHECKER: Checker = Checker {
    name: "disabled-keys",
    source:
        "Tessera design (docs/architecture.md, The lease): no node serves a disabled key beyond \
             the lease window; lease reads, Raft thesis §6.4 (Ongaro 2014)",
    run,
};

/// A disable revokes crypto on its key; an enable, whatever its outcome, may give it back.
const RULE: RevocationRule = RevocationRule {
    revokes: |op| matches!(op, Op::DisableKey { .. }),
    restores: |op| matches!(op, Op::EnableKey { .. }),
    uses: Op::is_crypto,
};

fn run(input: &CheckInput<'_>) -> Findings {
    let ops = operations(input.history);
    let (disables, violations) = lease_bounded(input, &ops, RULE, |s, beyond_ms| {
        format!(
            "key {:?} was disabled (acknowledged at {:.3} s) but node {} served {} on it \
             invoked at {:.3} s, {beyond_ms:.1} ms beyond the {} ms lease window",
            s.used.op.key_name(),
            seconds(s.acked_us),
            s.used.node,
            op_name(&s.used.op),
            seconds(s.used.invoke_us),
            input.lease_window_ms
        )
    });
    let summary = format!(
        "checked {disables} acknowledged disables against {} acknowledged crypto operations {}",
        ops.iter().filter(|o| o.op.is_crypto() && o.is_ok()).count(),
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
    fn crypto_within_the_window_or_after_an_enable_is_fine() {
        let mut h = created();
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
        let v = h.check(&CHECKER);
        assert!(v.ok, "{v:?}");
        assert_summary_contains(&v, "1 acknowledged disables");

        // An enable concurrent with the disable may have been applied after it.
        let mut h = HistoryBuilder::new();
        h.invoke(50, 3, &enable("a", "e0"));
        h.ok_op(100, 200, 1, &disable("a", "d1"), OkValue::default());
        h.info(300, 3, &enable("a", "e0"));
        h.ok_op(5000, 5010, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        assert!(h.check(&CHECKER).ok);
    }

    #[test]
    fn crypto_beyond_the_window_is_a_violation() {
        let mut h = created();
        let d = h.ok_op(100, 200, 1, &disable("a", "d1"), OkValue::default());
        // An enable that completed before the disable was invoked does not matter.
        h.ok_op(20, 30, 3, &enable("a", "e0"), OkValue::default());
        let e = h.ok_op(1400, 1410, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        h.ok_op(5000, 5010, 1, &enable("a", "e1"), OkValue::default());
        h.ok_op(6000, 6010, 2, &encrypt("a", "aGk="), ciphertext("Y3Q="));
        assert_one_violation(&h.check(&CHECKER), &[d - 1, d, e - 1, e], "200.0 ms beyond");
    }
}
