//! Each key's primary version behaves like a linearizable register.
//!
//! Property: linearizability (Herlihy & Wing, *Linearizability: A Correctness Condition for
//! Concurrent Objects*, 1990) of each key's primary-version register, as checked by Jepsen's
//! Knossos: there is a total order of the operations, consistent with real time (an operation
//! that completed before another was invoked comes first), in which each operation's result is
//! what a sequential register would give. Raft promises it for writes and for reads through the
//! leader (Raft §6.4, Ongaro's thesis 2014); Tessera's `DescribeKey` with `LINEARIZABLE`
//! promises it for reads (`docs/api.md`).
//!
//! The search is the Wing & Gong algorithm (*Testing and Verifying Concurrent Objects*, 1993):
//! a depth-first search over which pending operation to linearize next, among those invoked
//! before the earliest return of a pending operation, with Lowe's memoization of explored
//! (set of linearized operations, model state) configurations (*Testing for
//! Linearizability*, 2017; as in Knossos and Porcupine). Two reductions specific to this model
//! keep it fast on long histories, without losing completeness (a randomized test checks it
//! against brute force): `info` writes of the same kind are interchangeable, so only the
//! earliest pending one is ever tried; and the register only grows, so a configuration in
//! which some pending `ok` operation needs a smaller state is abandoned at once. Required
//! operations are tried in order of their completion, `info` ones last.
//!
//! A failure is reported with the shortest failing prefix: cutting the history at time T
//! (dropping what was invoked later, making what was still running `info`) keeps a
//! linearizable history linearizable, so the earliest failing cut is found by binary search
//! over completion times.
//!
//! Model, per key: state `Option<KeyVersion>` (`None` = no key), from `None`:
//! - `CreateKey` `ok`: requires `None`, sets `Some(1)`; `info`: the same, at any point after its
//!   invoke, or never;
//! - `RotateKey` `ok` returning version `v`: requires `Some(v - 1)`, sets `Some(v)`; `info`:
//!   `Some(x)` → `Some(x + 1)` at any point after its invoke, or never;
//! - `DescribeKey` (linearizable) `ok` returning version `v`: requires `Some(v)`.
//!
//! Attempts that share a request id are one logical write (the cluster applies a request id at
//! most once and answers retries with the first result): it may take effect from the first
//! attempt's invoke, and must have by the first `ok` attempt's completion. `fail` attempts,
//! non-linearizable reads, state changes and crypto are not part of the model. Keys with more
//! than [`Limits::max_ops`] operations, or whose search exceeds [`Limits::max_steps`], are
//! reported as unchecked without failing.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use tessera_state::KeyVersion;

use super::{operations, write_groups, CheckInput, Checker, Findings, Violation};
use crate::history::Op;

/// Operations listed in a violation's message (all of the excerpt's events are in the
/// violation).
const SHOWN_OPS: usize = 12;

/// Default [`Limits::max_ops`].
pub const DEFAULT_MAX_OPS: usize = 10_000;
/// Default [`Limits::max_steps`].
pub const DEFAULT_MAX_STEPS: u64 = 2_000_000;

/// Bounds of the search, per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Keys with more model operations than this are not checked.
    pub max_ops: usize,
    /// Search steps allowed per key (and per check while minimizing a failure).
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ops: DEFAULT_MAX_OPS,
            max_steps: DEFAULT_MAX_STEPS,
        }
    }
}

/// The linearizability checker, with the default [`Limits`].
pub const CHECKER: Checker = Checker {
    name: "linearizable",
    source: "Linearizability, Herlihy & Wing 1990 (Jepsen/Knossos); search: Wing & Gong 1993 with \
             Lowe 2017 memoization",
    run: |input| check(input, Limits::default()),
};

/// What an operation does to the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModelOp {
    Create,
    /// `version` is what the rotation returned, when known.
    Rotate {
        version: Option<KeyVersion>,
    },
    Read {
        version: KeyVersion,
    },
}

/// One operation of a key's register history.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LinOp {
    kind: ModelOp,
    /// Earliest time it may take effect.
    call_us: u64,
    /// Latest time it must have taken effect; `None` for optional (`info`) operations.
    ret_us: Option<u64>,
    /// History events.
    events: Vec<u64>,
    /// For messages.
    label: String,
}

/// Result of checking one key.
#[derive(Debug, PartialEq, Eq)]
enum KeyResult {
    Linearizable,
    /// The minimal failing prefix and the operation that could not be linearized.
    Violation {
        excerpt: Vec<LinOp>,
        culprit: Option<LinOp>,
    },
    Unchecked(String),
}

/// Checks the run within `limits` (the checker with other bounds than the default ones).
pub fn check(input: &CheckInput<'_>, limits: Limits) -> Findings {
    let ops = operations(input.history);
    let mut per_key: BTreeMap<&str, Vec<LinOp>> = BTreeMap::new();
    let mut violations = Vec::new();

    for group in write_groups(&ops) {
        let kind = match group.op_name {
            "create_key" => ModelOp::Create,
            "rotate_key" => {
                let versions: BTreeSet<KeyVersion> = group
                    .attempts
                    .iter()
                    .filter(|a| a.is_ok())
                    .filter_map(|a| a.ok_version())
                    .collect();
                if versions.len() > 1 {
                    let list: Vec<String> = versions.iter().map(KeyVersion::to_string).collect();
                    violations.push(Violation {
                        message: format!(
                            "rotation of {:?} under request id {} returned versions {} to its attempts; one \
                             request id is one rotation",
                            group.key,
                            group.request_id,
                            list.join(", ")
                        ),
                        events: group.events(),
                    });
                }
                ModelOp::Rotate {
                    version: group.first_ok().and_then(|a| a.ok_version()),
                }
            }
            _ => continue,
        };
        let Some(call_us) = group.effect_start_us() else {
            continue;
        };
        let ret_us = group.first_ok().and_then(|a| a.complete_us);
        let outcome = if ret_us.is_some() { "ok" } else { "info" };
        let label = match kind {
            ModelOp::Rotate { version: Some(v) } => {
                format!("rotate {} → {v} ({outcome})", group.request_id)
            }
            ModelOp::Rotate { version: None } => format!("rotate {} ({outcome})", group.request_id),
            _ => format!("create {} ({outcome})", group.request_id),
        };
        per_key.entry(group.key).or_default().push(LinOp {
            kind,
            call_us,
            ret_us,
            events: group.events(),
            label,
        });
    }
    for op in &ops {
        let (
            Op::Describe {
                linearizable: true, ..
            },
            true,
        ) = (&op.op, op.is_ok())
        else {
            continue;
        };
        let (Some(version), Some(ret_us)) = (op.ok_version(), op.complete_us) else {
            continue;
        };
        per_key.entry(op.op.key_name()).or_default().push(LinOp {
            kind: ModelOp::Read { version },
            call_us: op.invoke_us,
            ret_us: Some(ret_us),
            events: op.events(),
            label: format!("describe → {version} (process {})", op.process),
        });
    }

    let mut checked_ops = 0usize;
    let mut checked_keys = 0usize;
    let mut unchecked = Vec::new();
    for (key, lin_ops) in &per_key {
        match check_key(lin_ops, limits) {
            KeyResult::Linearizable => {
                checked_keys += 1;
                checked_ops += lin_ops.len();
            }
            KeyResult::Unchecked(why) => unchecked.push(format!("{key:?} ({why})")),
            KeyResult::Violation { excerpt, culprit } => {
                checked_keys += 1;
                checked_ops += lin_ops.len();
                let mut events: Vec<u64> = excerpt
                    .iter()
                    .flat_map(|o| o.events.iter().copied())
                    .collect();
                events.sort_unstable();
                events.dedup();
                let culprit = culprit.map_or_else(String::new, |c| {
                    format!("; it fails once this one completes: {}", describe_op(&c))
                });
                // The operations closest to the failure: the last ones invoked.
                let mut by_call: Vec<&LinOp> = excerpt.iter().collect();
                by_call.sort_by_key(|o| o.call_us);
                let skip = by_call.len().saturating_sub(SHOWN_OPS);
                let shown: Vec<String> =
                    by_call.iter().skip(skip).map(|o| describe_op(o)).collect();
                let which = if skip > 0 {
                    format!("the last {} invoked", shown.len())
                } else {
                    "all of them".to_owned()
                };
                violations.push(Violation {
                    message: format!(
                        "key {key:?}: the primary version is not linearizable; the shortest failing prefix has {} \
                         operations{culprit}; {which}: {}",
                        excerpt.len(),
                        shown.join("; ")
                    ),
                    events,
                });
            }
        }
    }
    let mut summary = format!(
        "checked {checked_ops} register operations on {checked_keys} keys (limits: {} operations, {} steps per key)",
        limits.max_ops, limits.max_steps
    );
    if !unchecked.is_empty() {
        let shown: Vec<&str> = unchecked.iter().take(5).map(String::as_str).collect();
        summary.push_str(&format!(
            "; {} keys unchecked (too large): {}{}",
            unchecked.len(),
            shown.join(", "),
            if unchecked.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        ));
    }
    (summary, violations)
}

fn describe_op(op: &LinOp) -> String {
    let end = op
        .ret_us
        .map_or_else(|| "∞".to_owned(), |t| format!("{:.3}", t as f64 / 1e6));
    format!(
        "{} [{:.3}–{end} s, events {:?}]",
        op.label,
        op.call_us as f64 / 1e6,
        op.events
    )
}

/// Checks one key; on failure, finds the shortest failing prefix.
fn check_key(ops: &[LinOp], limits: Limits) -> KeyResult {
    if ops.len() > limits.max_ops {
        return KeyResult::Unchecked(format!("{} operations", ops.len()));
    }
    match search(ops, limits.max_steps) {
        Err(Exhausted) => KeyResult::Unchecked(format!("over {} search steps", limits.max_steps)),
        Ok(true) => KeyResult::Linearizable,
        Ok(false) => {
            // Cutting the history at time T (dropping what was invoked later, making what was
            // still running optional) keeps a linearizable history linearizable, so the failing
            // cuts form a suffix of the completion times: binary-search the first.
            let mut times: Vec<u64> = ops.iter().filter_map(|o| o.ret_us).collect();
            times.sort_unstable();
            times.dedup();
            let (mut lo, mut hi) = (0usize, times.len());
            let mut best: Option<u64> = None;
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let Some(&t) = times.get(mid) else {
                    break;
                };
                match search(&cut(ops, t), limits.max_steps) {
                    Ok(false) => {
                        best = Some(t);
                        hi = mid;
                    }
                    Ok(true) => lo = mid + 1,
                    Err(Exhausted) => break,
                }
            }
            match best {
                Some(t) => KeyResult::Violation {
                    excerpt: ops.iter().filter(|o| o.call_us <= t).cloned().collect(),
                    culprit: ops.iter().find(|o| o.ret_us == Some(t)).cloned(),
                },
                None => KeyResult::Violation {
                    excerpt: ops.to_vec(),
                    culprit: None,
                },
            }
        }
    }
}

/// The history as it stood at time `t`: operations invoked later are dropped, operations still
/// running become optional (reads still running, having no effect, are dropped).
fn cut(ops: &[LinOp], t: u64) -> Vec<LinOp> {
    ops.iter()
        .filter(|o| o.call_us <= t)
        .filter_map(|o| match o.ret_us {
            Some(r) if r <= t => Some(o.clone()),
            _ if matches!(o.kind, ModelOp::Read { .. }) => None,
            _ => Some(LinOp {
                ret_us: None,
                kind: match o.kind {
                    ModelOp::Rotate { .. } => ModelOp::Rotate { version: None },
                    kind => kind,
                },
                ..o.clone()
            }),
        })
        .collect()
}

/// Optional operations with the same effect and no result (`info` creates, `info` rotations)
/// are interchangeable once invoked: a linearization that uses some of them can use the
/// earliest-invoked ones instead. The search only ever linearizes the earliest pending one of
/// each class, which keeps it from exploring every subset of them.
fn symmetry_class(op: &LinOp) -> Option<u8> {
    match (op.ret_us, op.kind) {
        (None, ModelOp::Create) => Some(0),
        (None, ModelOp::Rotate { version: None }) => Some(1),
        _ => None,
    }
}

/// The search ran out of steps.
#[derive(Debug, PartialEq, Eq)]
struct Exhausted;

/// Applies `op` to `state`: the new state, or `None` if the op cannot happen in that state.
fn step(state: Option<KeyVersion>, op: ModelOp) -> Option<Option<KeyVersion>> {
    match op {
        ModelOp::Create => state.is_none().then_some(Some(KeyVersion::FIRST)),
        ModelOp::Rotate { version } => {
            let next = state?.next()?;
            match version {
                Some(v) if v != next => None,
                _ => Some(Some(next)),
            }
        }
        ModelOp::Read { version } => (state == Some(version)).then_some(state),
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    time: u64,
    is_return: bool,
    op: usize,
}

/// One level of the depth-first search: the operations that may be linearized next, which
/// one is being tried, and the state before it.
struct Frame {
    candidates: Vec<usize>,
    next: usize,
    tried: Option<(usize, Option<KeyVersion>)>,
}

/// The search's position: the time-ordered call and return entries, which are still in the
/// history (not yet linearized), the model state and the linearized set.
struct Search<'a> {
    ops: &'a [LinOp],
    entries: Vec<Entry>,
    call_pos: Vec<usize>,
    ret_pos: Vec<Option<usize>>,
    alive: Vec<bool>,
    /// No entry before this one is alive.
    head: usize,
    returns_left: usize,
    linearized: Vec<u64>,
    state: Option<KeyVersion>,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [LinOp]) -> Self {
        let mut entries: Vec<Entry> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            entries.push(Entry {
                time: op.call_us,
                is_return: false,
                op: i,
            });
            if let Some(ret) = op.ret_us {
                entries.push(Entry {
                    time: ret.max(op.call_us),
                    is_return: true,
                    op: i,
                });
            }
        }
        // A call before a return at the same time: touching operations count as concurrent.
        entries.sort_by_key(|e| (e.time, e.is_return, e.op));
        let mut call_pos = vec![0usize; ops.len()];
        let mut ret_pos: Vec<Option<usize>> = vec![None; ops.len()];
        for (position, entry) in entries.iter().enumerate() {
            if entry.is_return {
                if let Some(slot) = ret_pos.get_mut(entry.op) {
                    *slot = Some(position);
                }
            } else if let Some(slot) = call_pos.get_mut(entry.op) {
                *slot = position;
            }
        }
        Self {
            ops,
            alive: vec![true; entries.len()],
            head: 0,
            returns_left: entries.iter().filter(|e| e.is_return).count(),
            entries,
            call_pos,
            ret_pos,
            linearized: vec![0u64; ops.len().div_ceil(64)],
            state: None,
        }
    }

    /// The operations that may be linearized next: those invoked before the earliest return
    /// of a pending operation; required ones first, then the earliest pending optional one of
    /// each symmetry class (optional operations are tried last: most `info` writes either
    /// took effect late or never).
    fn candidates(&self) -> Vec<usize> {
        let mut required = Vec::new();
        let mut optional = Vec::new();
        let mut classes_seen = [false; 2];
        let live = self.entries.iter().zip(&self.alive).skip(self.head);
        for (entry, _) in live.filter(|(_, alive)| **alive) {
            if entry.is_return {
                break;
            }
            let Some(op) = self.ops.get(entry.op) else {
                continue;
            };
            match symmetry_class(op) {
                None if op.ret_us.is_some() => required.push(entry.op),
                None => optional.push(entry.op),
                Some(class) => {
                    if let Some(seen) = classes_seen.get_mut(usize::from(class)) {
                        if !*seen {
                            *seen = true;
                            optional.push(entry.op);
                        }
                    }
                }
            }
        }
        // Most constrained first: the earliest deadline is the likeliest next.
        required.sort_by_key(|op| self.ops.get(*op).and_then(|o| o.ret_us));
        required.extend(optional);
        required
    }

    /// Whether some pending required operation can no longer happen: the register only
    /// grows (`None` < `Some(1)` < `Some(2)` …), so once the state is past what an operation
    /// needs, no order of the rest helps.
    fn dead_end(&self) -> bool {
        let state = self.state;
        self.entries
            .iter()
            .zip(&self.alive)
            .skip(self.head)
            .filter(|(entry, alive)| **alive && entry.is_return)
            .filter_map(|(entry, _)| self.ops.get(entry.op))
            .any(|op| match op.kind {
                ModelOp::Create => state.is_some(),
                ModelOp::Rotate { version: Some(v) } => state.is_some_and(|x| x >= v),
                ModelOp::Rotate { version: None } => false,
                ModelOp::Read { version } => state.is_some_and(|x| x > version),
            })
    }

    fn flip(&mut self, op: usize) {
        if let Some(word) = self.linearized.get_mut(op / 64) {
            *word ^= 1u64 << (op % 64);
        }
    }

    /// Marks `op` linearized (or not), taking its entries out of (or back into) the history.
    fn set_linearized(&mut self, op: usize, linearized: bool) {
        self.flip(op);
        let call = self.call_pos.get(op).copied();
        if let Some(flag) = call.and_then(|p| self.alive.get_mut(p)) {
            *flag = !linearized;
        }
        let ret = self.ret_pos.get(op).copied().flatten();
        if let Some(flag) = ret.and_then(|p| self.alive.get_mut(p)) {
            *flag = !linearized;
            if linearized {
                self.returns_left -= 1;
            } else {
                self.returns_left += 1;
            }
        }
        // Keep `head` at the first live entry.
        if !linearized {
            self.head = self.head.min(call.unwrap_or(0));
        }
        while self.alive.get(self.head) == Some(&false) {
            self.head += 1;
        }
    }
}

/// Whether the operations linearize: the Wing & Gong depth-first search over the operations
/// that may come next (those invoked before the earliest return of a pending operation), with
/// Lowe's memoization of explored (linearized set, state) configurations. Optional operations
/// have no return, so they are never forced; the history linearizes once every operation
/// with a return is linearized.
fn search(ops: &[LinOp], max_steps: u64) -> Result<bool, Exhausted> {
    let mut search = Search::new(ops);
    if search.returns_left == 0 {
        return Ok(true);
    }
    let mut cache: HashSet<(Vec<u64>, Option<KeyVersion>)> = HashSet::new();
    let mut frames = vec![Frame {
        candidates: search.candidates(),
        next: 0,
        tried: None,
    }];
    let mut steps = 0u64;
    loop {
        steps += 1;
        if steps > max_steps {
            return Err(Exhausted);
        }
        let Some(frame) = frames.last_mut() else {
            return Ok(false);
        };
        if let Some((op, previous)) = frame.tried.take() {
            search.set_linearized(op, false);
            search.state = previous;
        }
        let mut descended = false;
        while let Some(&op) = frame.candidates.get(frame.next) {
            frame.next += 1;
            let kind = search.ops.get(op).map(|o| o.kind).ok_or(Exhausted)?;
            let Some(new_state) = step(search.state, kind) else {
                continue;
            };
            let mut bits = search.linearized.clone();
            if let Some(word) = bits.get_mut(op / 64) {
                *word ^= 1u64 << (op % 64);
            }
            if !cache.insert((bits, new_state)) {
                continue;
            }
            frame.tried = Some((op, search.state));
            search.set_linearized(op, true);
            search.state = new_state;
            if search.dead_end() {
                search.set_linearized(op, false);
                if let Some((_, previous)) = frame.tried.take() {
                    search.state = previous;
                }
                continue;
            }
            descended = true;
            break;
        }
        if !descended {
            frames.pop();
            continue;
        }
        if search.returns_left == 0 {
            return Ok(true);
        }
        frames.push(Frame {
            candidates: search.candidates(),
            next: 0,
            tried: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{FinalState, Verdict};
    use super::*;
    use crate::history::OkValue;

    fn run_with(h: &HistoryBuilder, limits: Limits) -> Verdict {
        let state = FinalState::default();
        let input = CheckInput {
            history: &h.events,
            ..input(&state)
        };
        CHECKER.verdict(check(&input, limits))
    }

    fn run(h: &HistoryBuilder) -> Verdict {
        h.check(&CHECKER)
    }

    #[test]
    fn a_valid_concurrent_history_linearizes() {
        let mut h = HistoryBuilder::new();
        // Create concurrent with a read that sees it, and a retried create.
        h.invoke(0, 1, &create("a", "c1"));
        h.invoke(1, 2, &describe("a"));
        h.ok(5, 2, &describe("a"), version(1));
        h.ok(6, 1, &create("a", "c1"), key_id("k1"));
        h.ok_op(7, 8, 1, &create("a", "c1"), key_id("k1"));
        // Rotation concurrent with reads of both versions.
        h.invoke(20, 1, &rotate("a", "r1"));
        h.ok_op(21, 22, 2, &describe("a"), version(1));
        h.ok_op(23, 24, 3, &describe("a"), version(2));
        h.ok(30, 1, &rotate("a", "r1"), version(2));
        h.ok_op(31, 32, 2, &describe("a"), version(2));
        // Non-linearizable reads may be stale.
        let stale = crate::history::Op::Describe {
            name: "a".into(),
            linearizable: false,
        };
        h.ok_op(33, 34, 2, &stale, version(1));
        // Failed ops are ignored.
        h.fail_op(40, 41, 2, &rotate("a", "r9"), "UNAVAILABLE", "NO_LEADER");
        let v = run(&h);
        assert!(v.ok, "{v:?}");
        assert!(
            v.summary
                .starts_with("checked 6 register operations on 1 keys"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_stale_linearizable_read_is_a_violation() {
        let mut h = created();
        h.ok_op(20, 30, 1, &rotate("a", "r1"), version(2));
        h.ok_op(35, 36, 3, &describe("a"), version(2));
        let read = h.ok_op(40, 50, 2, &describe("a"), version(1));
        h.ok_op(60, 70, 2, &describe("a"), version(2));
        let v = run(&h);
        assert!(!v.ok);
        assert_eq!(v.violations.len(), 1);
        let message = &v.violations[0].message;
        assert!(message.contains("has 4 operations"), "{message}");
        assert!(
            message.contains("once this one completes: describe → 1"),
            "{message}"
        );
        // The excerpt is the prefix up to the stale read, not the later read.
        assert_eq!(v.violations[0].events, (0..=read).collect::<Vec<_>>());
    }

    #[test]
    fn an_info_rotation_may_or_may_not_have_happened() {
        for seen in [1, 2] {
            let mut h = created();
            h.info_op(20, 30, 1, &rotate("a", "r1"));
            h.ok_op(40, 50, 2, &describe("a"), version(seen));
            h.ok_op(60, 70, 2, &describe("a"), version(seen));
            let v = run(&h);
            assert!(v.ok, "{seen}: {v:?}");
        }
        // ... but not both, going back.
        let mut h = created();
        h.info_op(20, 30, 1, &rotate("a", "r1"));
        h.ok_op(40, 50, 2, &describe("a"), version(2));
        h.ok_op(60, 70, 2, &describe("a"), version(1));
        assert!(!run(&h).ok);
        // An info rotation may even take effect long after its invoke.
        let mut h = created();
        h.info_op(20, 30, 1, &rotate("a", "r1"));
        h.ok_op(40, 50, 2, &describe("a"), version(1));
        h.ok_op(60, 70, 2, &describe("a"), version(2));
        assert!(run(&h).ok);
        // An info create too.
        let mut h = HistoryBuilder::new();
        h.info_op(0, 10, 1, &create("a", "c1"));
        h.ok_op(20, 30, 2, &describe("a"), version(1));
        assert!(run(&h).ok);
    }

    #[test]
    fn concurrent_rotations_get_distinct_versions() {
        // r2 returned version 2, so r1 must have returned 3, not 2 as well.
        for r1_version in [3, 2] {
            let mut h = created();
            h.invoke(20, 1, &rotate("a", "r1"));
            h.invoke(21, 2, &rotate("a", "r2"));
            h.ok(30, 2, &rotate("a", "r2"), version(2));
            h.ok(31, 1, &rotate("a", "r1"), version(r1_version));
            let v = run(&h);
            if r1_version == 3 {
                assert!(v.ok, "{v:?}");
            } else {
                assert!(!v.ok);
                assert_violation_contains(&v, 0, "has 3 operations");
            }
        }
    }

    #[test]
    fn a_retried_rotation_is_one_rotation() {
        let mut h = created();
        let r = rotate("a", "r1");
        h.info_op(20, 30, 1, &r);
        h.ok_op(40, 50, 2, &describe("a"), version(2));
        h.ok_op(60, 70, 1, &r, version(2));
        assert!(run(&h).ok);
        // Different versions to one request id.
        h.ok_op(80, 90, 1, &r, version(3));
        let v = run(&h);
        assert!(!v.ok);
        assert_violation_contains(&v, 0, "returned versions 2, 3");
    }

    #[test]
    fn a_second_create_of_the_same_name_is_a_violation() {
        let mut h = created();
        h.ok_op(20, 30, 2, &create("a", "c2"), key_id("k2"));
        assert!(!run(&h).ok);
    }

    #[test]
    fn large_keys_are_reported_unchecked_without_failing() {
        let mut h = created();
        for i in 0..5 {
            h.ok_op(20 + i * 10, 25 + i * 10, 2, &describe("a"), version(7));
        }
        let limits = Limits {
            max_ops: 3,
            max_steps: 1000,
        };
        passes_unchecked(
            &h,
            limits,
            "1 keys unchecked (too large): \"a\" (6 operations)",
        );

        // Many concurrent info rotations are cheap (they are interchangeable) ...
        let mut h = created();
        for p in 0..40 {
            h.info_op(20, 30, p + 2, &rotate("a", &format!("r{p}")));
        }
        h.ok_op(40, 50, 1, &describe("a"), version(100));
        let v = run(&h);
        assert!(!v.ok, "at most 41 versions: {v:?}");
        assert!(v.violations[0].message.contains("has 42 operations"));
        // ... but acknowledged rotations that returned no version must be tried in every
        // order, which blows a small step budget.
        let mut h = created();
        for p in 0..40 {
            h.ok_op(
                20,
                30,
                p + 2,
                &rotate("a", &format!("r{p}")),
                OkValue::default(),
            );
        }
        h.ok_op(40, 50, 1, &describe("a"), version(100));
        let limits = Limits {
            max_ops: 200,
            max_steps: 10_000,
        };
        passes_unchecked(&h, limits, "over 10000 search steps");
    }

    /// Asserts that `h` passes within `limits`, its summary saying why a key went unchecked.
    #[track_caller]
    fn passes_unchecked(h: &HistoryBuilder, limits: Limits, why: &str) {
        let v = run_with(h, limits);
        assert!(v.ok, "{v:?}");
        assert_summary_contains(&v, why);
    }

    #[test]
    fn the_search_handles_many_concurrent_operations() {
        // 30 concurrent rotations returning 2..=31 in scrambled order, then a read of 31.
        let mut h = created();
        for p in 0..30u32 {
            h.invoke(20, p + 2, &rotate("a", &format!("r{p}")));
        }
        for p in 0..30u32 {
            let v = 2 + (p * 7) % 30;
            h.ok(
                100 + u64::from(p),
                p + 2,
                &rotate("a", &format!("r{p}")),
                version(v),
            );
        }
        h.ok_op(200, 210, 1, &describe("a"), version(31));
        let v = run(&h);
        assert!(v.ok, "{v:?}");
    }

    /// Every order of `ops` (and every subset of the optional ones), checked directly.
    fn brute_force(ops: &[LinOp]) -> bool {
        fn extend(
            ops: &[LinOp],
            used: &mut Vec<bool>,
            order: &mut Vec<usize>,
            state: Option<KeyVersion>,
        ) -> bool {
            let required_done = ops
                .iter()
                .zip(used.iter())
                .all(|(o, u)| *u || o.ret_us.is_none());
            if required_done {
                return true;
            }
            for next in 0..ops.len() {
                if used[next] {
                    continue;
                }
                // Every op not yet placed that completed before `next` was invoked must come
                // first.
                let blocked = ops.iter().enumerate().any(|(j, o)| {
                    !used[j] && j != next && o.ret_us.is_some_and(|r| r < ops[next].call_us)
                });
                if blocked {
                    continue;
                }
                let Some(new_state) = step(state, ops[next].kind) else {
                    continue;
                };
                used[next] = true;
                order.push(next);
                if extend(ops, used, order, new_state) {
                    return true;
                }
                order.pop();
                used[next] = false;
            }
            false
        }
        extend(ops, &mut vec![false; ops.len()], &mut Vec::new(), None)
    }

    #[test]
    fn the_search_agrees_with_brute_force_on_random_histories() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let (mut linearizable, mut not) = (0, 0);
        for _ in 0..3000 {
            let count = 1 + next(6) as usize;
            let ops: Vec<LinOp> = (0..count)
                .map(|_| {
                    let call_us = next(10);
                    let optional = next(4) == 0;
                    let kind = match next(8) {
                        0 => ModelOp::Create,
                        1..=3 if optional => ModelOp::Rotate { version: None },
                        1..=3 => ModelOp::Rotate {
                            version: (next(5) != 0).then(|| KeyVersion::new(1 + next(4) as u32)),
                        },
                        _ => ModelOp::Read {
                            version: KeyVersion::new(1 + next(3) as u32),
                        },
                    };
                    let optional = optional && !matches!(kind, ModelOp::Read { .. });
                    LinOp {
                        kind,
                        call_us,
                        ret_us: (!optional).then(|| call_us + next(6)),
                        events: Vec::new(),
                        label: String::new(),
                    }
                })
                .collect();
            // Most random histories do not start with a create: prepend one half of the time.
            let ops = if next(2) == 0 {
                let mut with_create = vec![LinOp {
                    kind: ModelOp::Create,
                    call_us: 0,
                    ret_us: Some(0),
                    events: Vec::new(),
                    label: String::new(),
                }];
                with_create.extend(ops);
                with_create
            } else {
                ops
            };
            let expected = brute_force(&ops);
            assert_eq!(search(&ops, u64::MAX), Ok(expected), "{ops:#?}");
            if expected {
                linearizable += 1;
                // A cut of a linearizable history is linearizable.
                for o in &ops {
                    if let Some(t) = o.ret_us {
                        assert_eq!(
                            search(&cut(&ops, t), u64::MAX),
                            Ok(true),
                            "cut at {t}: {ops:#?}"
                        );
                    }
                }
            } else {
                not += 1;
            }
        }
        assert!(linearizable > 300 && not > 300, "{linearizable} {not}");
    }
}
