//! No lost (or doubled) writes: what the cluster acknowledged is in the final state of every
//! node, and nothing more than was attempted.
//!
//! Property: an acknowledged (`ok`) write is durable — Raft §5.4 "State Machine Safety" and
//! "Leader Completeness" (Ongaro & Ousterhout, *In Search of an Understandable Consensus
//! Algorithm*, 2014): a committed entry is applied on every server, at the same index. In
//! Jepsen terms this is the "lost updates" check (a set/counter workload: acknowledged adds
//! must be read back; unknown ones may or may not be). Concretely, after healing and
//! restarting every node:
//!
//! - every `ok` `CreateKey` names a key present on **every** node, with the key id the `ok`
//!   returned;
//! - a key's number of versions is at least 1 + the `ok` rotations (distinct request ids) and
//!   at most 1 + the `ok` or `info` rotations (distinct request ids) — the upper bound catches a
//!   rotation applied twice, against the Tessera design's idempotency rule ("a retry under the
//!   same request id gets the first attempt's result", `docs/architecture.md`);
//! - the key's state is one the state changes could have left: the state set by some
//!   `DisableKey`/`EnableKey` (`ok` or `info`, by request id) that no `ok` state change strictly
//!   follows in real time, or the initial `ENABLED` while no state change is certain (all were
//!   `info`, or there were none);
//! - a key no create could have made (every attempt `fail`ed) is absent.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    operations, write_groups, CheckInput, Checker, Findings, Operation, Violation, WriteGroup,
};

const ENABLED: &str = "ENABLED";
const DISABLED: &str = "DISABLED";

/// The lost-writes checker.
pub const CHECKER: Checker = Checker {
    name: "lost-writes",
    source: "Raft §5.4 State Machine Safety / Leader Completeness (Ongaro & Ousterhout 2014); \
             Jepsen lost-update check; Tessera design: request-id idempotency",
    run,
};

fn run(input: &CheckInput<'_>) -> Findings {
    let ops = operations(input.history);
    let groups = write_groups(&ops);
    let nodes = &input.final_state.keys;
    let mut violations = Vec::new();

    let acked_creates: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.is_ok() && o.op.is_write() && super::op_name(&o.op) == "create_key")
        .collect();
    if nodes.is_empty() && !acked_creates.is_empty() {
        violations.push(Violation::without_events(format!(
            "no node reported its final keys, so {} acknowledged creates cannot be verified",
            acked_creates.len()
        )));
    }

    // 1. Every acknowledged create is on every node, with the id it returned.
    for create in &acked_creates {
        let name = create.op.key_name();
        let expected = create.value.as_ref().and_then(|v| v.key_id.as_deref());
        for (node, keys) in nodes {
            match keys.get(name) {
                None => violations.push(Violation {
                    message: format!(
                        "key {name:?} was created (ok, key id {}) but node {node} does not have it",
                        expected.unwrap_or("?")
                    ),
                    events: create.events(),
                }),
                Some(key) => {
                    if let Some(expected) = expected {
                        if key.key_id != expected {
                            violations.push(Violation {
                                    message: format!(
                                        "key {name:?}: the create returned key id {expected} but node {node} \
                                         has key id {}",
                                        key.key_id
                                    ),
                                    events: create.events(),
                                });
                        }
                    }
                }
            }
        }
    }

    // Per key: its logical writes.
    let mut per_key: BTreeMap<&str, Vec<&WriteGroup<'_>>> = BTreeMap::new();
    for group in &groups {
        per_key.entry(group.key).or_default().push(group);
    }
    let known: BTreeSet<&str> = nodes
        .values()
        .flat_map(|keys| keys.keys().map(String::as_str))
        .collect();
    let mut keys_checked = 0usize;
    for name in known {
        let writes = per_key.get(name).map(Vec::as_slice).unwrap_or_default();
        keys_checked += 1;
        violations.extend(check_key(name, writes, input));
    }

    let summary = format!(
            "checked {} acknowledged creates and the versions and state of {keys_checked} keys on {} nodes \
             ({} logical writes)",
            acked_creates.len(),
            nodes.len(),
            groups.len()
        );
    (summary, violations)
}

fn check_key(name: &str, writes: &[&WriteGroup<'_>], input: &CheckInput<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    let creates: Vec<&WriteGroup<'_>> = writes
        .iter()
        .copied()
        .filter(|g| g.op_name == "create_key")
        .collect();
    let rotations: Vec<&WriteGroup<'_>> = writes
        .iter()
        .copied()
        .filter(|g| g.op_name == "rotate_key")
        .collect();
    let changes: Vec<&WriteGroup<'_>> = writes
        .iter()
        .copied()
        .filter(|g| {
            (g.op_name == "disable_key" || g.op_name == "enable_key") && g.may_have_happened()
        })
        .collect();

    let rotate_min = rotations.iter().filter(|g| g.is_ok()).count();
    let rotate_max = rotations.iter().filter(|g| g.may_have_happened()).count();
    let versions_min = u64::try_from(rotate_min)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let versions_max = u64::try_from(rotate_max)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let rotation_events = || -> Vec<u64> {
        let mut events: Vec<u64> = rotations.iter().flat_map(|g| g.events()).collect();
        events.sort_unstable();
        events
    };

    // States the key may be in: those set by state changes no `ok` change strictly follows,
    // and the initial ENABLED while no change is certain to have happened.
    let mut allowed: BTreeSet<&str> = if changes.is_empty() {
        BTreeSet::from([ENABLED])
    } else {
        changes
            .iter()
            .filter(|g| {
                let end = g.effect_end_us();
                !changes.iter().any(|other| {
                    other.is_ok() && other.effect_start_us().is_some_and(|start| start > end)
                })
            })
            .map(|g| {
                if g.op_name == "disable_key" {
                    DISABLED
                } else {
                    ENABLED
                }
            })
            .collect()
    };
    if !changes.iter().any(|g| g.is_ok()) {
        allowed.insert(ENABLED);
    }

    for (node, keys) in &input.final_state.keys {
        let Some(key) = keys.get(name) else {
            continue;
        };
        if !creates.iter().any(|g| g.may_have_happened()) {
            let mut events: Vec<u64> = creates.iter().flat_map(|g| g.events()).collect();
            events.sort_unstable();
            violations.push(Violation {
                message: format!(
                    "node {node} has key {name:?} (id {}) although every attempt to create it failed",
                    key.key_id
                ),
                events,
            });
            continue;
        }
        let versions = u64::from(key.versions);
        if versions < versions_min {
            violations.push(Violation {
                message: format!(
                    "key {name:?} on node {node} has {versions} versions, but 1 + {rotate_min} acknowledged \
                     rotations need at least {versions_min}: a rotation was lost"
                ),
                events: rotation_events(),
            });
        }
        if versions > versions_max {
            violations.push(Violation {
                message: format!(
                    "key {name:?} on node {node} has {versions} versions, but only {rotate_max} rotations \
                     (ok or info) were attempted, so at most {versions_max}: a rotation was applied twice \
                     or out of nowhere"
                ),
                events: rotation_events(),
            });
        }
        if !allowed.contains(key.state.as_str()) {
            let mut events: Vec<u64> = changes.iter().flat_map(|g| g.events()).collect();
            events.sort_unstable();
            let allowed: Vec<&str> = allowed.iter().copied().collect();
            violations.push(Violation {
                message: format!(
                    "key {name:?} on node {node} is {} at the end, but the acknowledged state changes allow only {}",
                    key.state,
                    allowed.join(" or ")
                ),
                events,
            });
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{FinalKey, FinalState, Verdict};
    use super::*;
    use crate::history::OkValue;
    use tessera_state::KeyVersion;

    fn key(id: &str, state: &str, versions: u32) -> FinalKey {
        FinalKey {
            key_id: id.into(),
            state: state.into(),
            primary_version: KeyVersion::new(versions),
            versions,
        }
    }

    fn final_state(nodes: &[u64], keys: &[(&str, FinalKey)]) -> FinalState {
        let mut state = FinalState::default();
        for node in nodes {
            let map = state.keys.entry(*node).or_default();
            for (name, key) in keys {
                map.insert((*name).to_owned(), key.clone());
            }
        }
        state
    }

    fn run(h: &HistoryBuilder, state: &FinalState) -> Verdict {
        CHECKER.check(&CheckInput {
            history: &h.events,
            lease_window_ms: 1200,
            ..input(state)
        })
    }

    fn history() -> HistoryBuilder {
        let mut h = created();
        h.ok_op(20, 30, 1, &rotate("a", "r1"), version(2));
        h.info_op(20, 40, 2, &rotate("a", "r2"));
        // A retry of r1 that returned the first result: still one rotation.
        h.ok_op(41, 45, 2, &rotate("a", "r1"), version(2));
        h.ok_op(50, 60, 1, &disable("a", "d1"), OkValue::default());
        h.info_op(55, 70, 2, &enable("a", "e1"));
        h
    }

    #[test]
    fn accepts_a_final_state_within_the_bounds() {
        let h = history();
        for versions in [2, 3] {
            for state in [DISABLED, ENABLED] {
                let v = run(
                    &h,
                    &final_state(&[1, 2, 3], &[("a", key("k1", state, versions))]),
                );
                assert!(v.ok, "{versions} {state}: {v:?}");
            }
        }
    }

    #[test]
    fn reports_a_lost_create_a_wrong_id_and_version_bounds() {
        let h = history();
        let mut state = final_state(&[1, 2], &[("a", key("k1", DISABLED, 2))]);
        state.keys.insert(3, BTreeMap::new());
        let v = run(&h, &state);
        assert!(!v.ok);
        assert_eq!(v.violations.len(), 1, "{v:?}");
        assert_violation_contains(&v, 0, "node 3");
        assert_eq!(v.violations[0].events, vec![0, 1]);

        let v = run(&h, &final_state(&[1], &[("a", key("k2", DISABLED, 1))]));
        assert_eq!(v.violations.len(), 2, "{v:?}");
        assert!(v.violations[0].message.contains("key id k2"));
        assert!(v.violations[1].message.contains("rotation was lost"));

        let v = run(&h, &final_state(&[1], &[("a", key("k1", DISABLED, 4))]));
        assert_eq!(v.violations.len(), 1, "{v:?}");
        assert!(v.violations[0].message.contains("applied twice"));
    }

    #[test]
    fn state_must_follow_the_last_acknowledged_change() {
        let mut h = created();
        h.ok_op(20, 30, 1, &disable("a", "d1"), OkValue::default());
        h.fail_op(31, 35, 1, &enable("a", "e1"), "UNAVAILABLE", "NO_LEADER");
        let v = run(&h, &final_state(&[1], &[("a", key("k1", ENABLED, 1))]));
        assert!(!v.ok);
        assert_violation_contains(&v, 0, "allow only DISABLED");
        assert!(run(&h, &final_state(&[1], &[("a", key("k1", DISABLED, 1))])).ok);

        // A disable of unknown outcome may not have happened: ENABLED is possible too.
        let mut h = created();
        h.info_op(20, 30, 1, &disable("a", "d1"));
        assert!(run(&h, &final_state(&[1], &[("a", key("k1", ENABLED, 1))])).ok);
        assert!(run(&h, &final_state(&[1], &[("a", key("k1", DISABLED, 1))])).ok);

        // Without any state change the key must be enabled.
        let h = created();
        assert!(!run(&h, &final_state(&[1], &[("a", key("k1", DISABLED, 1))])).ok);
    }

    #[test]
    fn a_key_from_failed_creates_only_must_not_exist() {
        let mut h = HistoryBuilder::new();
        h.fail_op(0, 10, 1, &create("a", "c1"), "UNAVAILABLE", "NO_LEADER");
        assert!(run(&h, &final_state(&[1], &[])).ok);
        let v = run(&h, &final_state(&[1], &[("a", key("k1", ENABLED, 1))]));
        assert!(!v.ok);
        assert!(v.violations[0]
            .message
            .contains("every attempt to create it failed"));
        // An info create may or may not have happened.
        let mut h = HistoryBuilder::new();
        h.info_op(0, 10, 1, &create("a", "c1"));
        assert!(run(&h, &final_state(&[1], &[("a", key("k1", ENABLED, 1))])).ok);
        assert!(run(&h, &final_state(&[1], &[])).ok);
    }
}
