//! Retried creates are idempotent, and a key name is created once.
//!
//! Property (Tessera design, `docs/api.md` "Idempotency" and `docs/architecture.md` "How a
//! write flows"): a write is applied at most once per request id, and "a retry under the same
//! request id gets the first attempt's result". For `CreateKey`, grouped by request id:
//!
//! - every `ok` attempt of a group returns the same key id;
//! - no attempt of a group that succeeded fails with `ALREADY_EXISTS` / `KEY_NAME_TAKEN` (the
//!   retry collided with its own first attempt instead of getting its result); for a group
//!   whose other attempts are only `info`, the conflict is a violation when no other request id
//!   may have created the name;
//! - for each key name, at most one request id has `ok` attempts (two distinct creates of the
//!   same name both succeeding is a duplicate key).
//!
//! This is the exactly-once / at-most-once client-session property of Raft §6.3 ("Implementing
//! linearizable semantics", Ongaro's thesis 2014).

use std::collections::{BTreeMap, BTreeSet};

use super::{operations, write_groups, CheckInput, Checker, Findings, Violation, WriteGroup};
use crate::history::ErrorInfo;

/// The idempotency checker.
pub const CHECKER: Checker = Checker {
    name: "idempotency",
    source:
        "Tessera design (docs/api.md, Idempotency): one result per request id; Raft thesis §6.3 \
             client sessions (Ongaro 2014)",
    run,
};

fn run(input: &CheckInput<'_>) -> Findings {
    let ops = operations(input.history);
    let groups: Vec<WriteGroup<'_>> = write_groups(&ops)
        .into_iter()
        .filter(|g| g.op_name == "create_key")
        .collect();
    let mut by_name: BTreeMap<&str, Vec<&WriteGroup<'_>>> = BTreeMap::new();
    for group in &groups {
        by_name.entry(group.key).or_default().push(group);
    }
    let mut violations = Vec::new();
    let mut retried = 0usize;
    for group in &groups {
        if group.attempts.len() > 1 {
            retried += 1;
        }
        let name = group.key;
        let rid = group.request_id;
        let ids: BTreeSet<&str> = group
            .attempts
            .iter()
            .filter(|a| a.is_ok())
            .filter_map(|a| a.value.as_ref().and_then(|v| v.key_id.as_deref()))
            .collect();
        if ids.len() > 1 {
            let ids: Vec<&str> = ids.into_iter().collect();
            violations.push(Violation {
                message: format!(
                    "create of {name:?} under request id {rid} returned different key ids: {}",
                    ids.join(", ")
                ),
                events: group.events(),
            });
        }
        let others_may_have_created = by_name.get(name).is_some_and(|gs| {
            gs.iter()
                .any(|g| g.request_id != rid && g.may_have_happened())
        });
        let conflicting = group.is_ok() || (group.may_have_happened() && !others_may_have_created);
        if !conflicting {
            continue;
        }
        for attempt in &group.attempts {
            if let Some(error) = attempt.error.as_ref().filter(|e| is_name_conflict(e)) {
                let first = if group.is_ok() {
                    "succeeded"
                } else {
                    "may have succeeded (info)"
                };
                violations.push(Violation {
                        message: format!(
                            "a retry of the create of {name:?} under request id {rid} failed with {} although \
                             another attempt under that id {first}: a retry must get the first result",
                            super::error_code(error)
                        ),
                        events: group.events(),
                    });
            }
        }
    }
    for (name, groups) in &by_name {
        let succeeded: Vec<&&WriteGroup<'_>> = groups.iter().filter(|g| g.is_ok()).collect();
        if succeeded.len() > 1 {
            let rids: Vec<&str> = succeeded.iter().map(|g| g.request_id).collect();
            let mut events: Vec<u64> = succeeded.iter().flat_map(|g| g.events()).collect();
            events.sort_unstable();
            violations.push(Violation {
                    message: format!(
                        "key name {name:?} was created successfully under {} request ids ({}): a duplicate key",
                        rids.len(),
                        rids.join(", ")
                    ),
                    events,
                });
        }
    }
    let summary = format!(
        "checked {} create request ids ({retried} retried) over {} key names",
        groups.len(),
        by_name.len()
    );
    (summary, violations)
}

fn is_name_conflict(error: &ErrorInfo) -> bool {
    error.code == "ALREADY_EXISTS" || error.tessera_code.as_deref() == Some("KEY_NAME_TAKEN")
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Verdict;
    use super::*;

    fn run(h: &HistoryBuilder) -> Verdict {
        h.check(&CHECKER)
    }

    #[test]
    fn retries_returning_the_first_result_pass() {
        let mut h = HistoryBuilder::new();
        let c = create("a", "c1");
        h.info_op(0, 10, 1, &c);
        h.ok_op(11, 20, 1, &c, key_id("k1"));
        h.ok_op(21, 30, 1, &c, key_id("k1"));
        // Another request id for the same name legitimately conflicts.
        h.fail_op(
            40,
            50,
            2,
            &create("a", "c2"),
            "ALREADY_EXISTS",
            "KEY_NAME_TAKEN",
        );
        // An info attempt, then a conflict caused by another request id that may have won.
        h.info_op(60, 70, 3, &create("b", "c3"));
        h.info_op(60, 70, 4, &create("b", "c4"));
        h.fail_op(
            71,
            80,
            3,
            &create("b", "c3"),
            "ALREADY_EXISTS",
            "KEY_NAME_TAKEN",
        );
        let v = run(&h);
        assert!(v.ok, "{v:?}");
        assert_eq!(
            v.summary,
            "checked 4 create request ids (2 retried) over 2 key names"
        );
    }

    #[test]
    fn conflicting_retries_different_ids_and_duplicates_fail() {
        let mut h = HistoryBuilder::new();
        let c = create("a", "c1");
        h.ok_op(0, 10, 1, &c, key_id("k1"));
        h.ok_op(11, 20, 1, &c, key_id("k2"));
        h.fail_op(21, 30, 1, &c, "ALREADY_EXISTS", "KEY_NAME_TAKEN");
        h.ok_op(31, 40, 2, &create("a", "c2"), key_id("k3"));
        // An info attempt whose retry conflicts, with nobody else creating the name.
        let d = create("b", "c3");
        h.info_op(50, 60, 3, &d);
        h.fail_op(61, 70, 3, &d, "ALREADY_EXISTS", "");
        let v = run(&h);
        assert!(!v.ok);
        let messages: Vec<&str> = v.violations.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(v.violations.len(), 4, "{messages:#?}");
        assert!(messages[0].contains("different key ids: k1, k2"));
        assert!(messages[1].contains("failed with KEY_NAME_TAKEN"));
        assert!(messages[2].contains("failed with ALREADY_EXISTS"));
        assert!(messages[2].contains("may have succeeded (info)"));
        assert!(messages[3].contains("under 2 request ids (c1, c2)"));
        assert_eq!(v.violations[0].events, vec![0, 1, 2, 3, 4, 5]);
    }
}
