//! The checkers: one module per property, each citing where the property comes from.
//!
//! A checker reads the recorded history, the node status samples and the final state the
//! harness collected after healing every fault and restarting every node, and returns a
//! [`Verdict`]. Writes whose outcome is unknown (`info`) are treated as possibly applied: they
//! never count as lost, and may or may not appear in the final state.

pub mod audit_chain;
pub mod convergence;
pub mod decryptable;
pub mod disabled_keys;
pub mod idempotency;
pub mod linearizable;
pub mod lost_writes;
pub mod no_elections;
pub mod revoked_access;
pub mod single_leader;
pub mod wan_latency;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tessera_state::KeyVersion;

use crate::history::{ErrorInfo, Event, EventKind, FaultEvent, OkValue, Op, StatusSample};

/// A key as one node reports it at the end of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalKey {
    /// Key id.
    pub key_id: String,
    /// State (`ENABLED`, `DISABLED`, …), captured before the harness re-enables keys to
    /// decrypt.
    pub state: String,
    /// Primary version.
    pub primary_version: KeyVersion,
    /// Number of versions.
    pub versions: u32,
}

/// What the harness collected after healing, restarting and unsealing every node.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FinalState {
    /// Node → key name → key, for every key name in the history that the node knows.
    pub keys: BTreeMap<u64, BTreeMap<String, FinalKey>>,
    /// Node → index of the `ok` event that returned a ciphertext → the base64 plaintext that
    /// decrypting it on that node gave, or the error.
    pub decryptions: BTreeMap<u64, BTreeMap<u64, Result<String, ErrorInfo>>>,
    /// Node → (applied index, state digest), sampled once all nodes reported the same applied
    /// index.
    pub digests: BTreeMap<u64, (u64, String)>,
    /// Node → the result of `tessera audit verify` over its audit files, once no calls were in
    /// flight (absent in runs recorded before the audit trail existed).
    #[serde(default)]
    pub audit: BTreeMap<u64, AuditVerification>,
    /// What the WAN probe measured, in runs with a WAN delay between regions.
    #[serde(default)]
    pub wan: Option<crate::wan::WanProbe>,
}

/// `tessera audit verify` over one node's audit files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    /// Files verified.
    pub files: usize,
    /// Whether they form one unbroken chain.
    pub ok: bool,
    /// The command's result document, or its error.
    pub detail: String,
}

/// Everything a checker may look at.
#[derive(Clone, Copy, Debug)]
pub struct CheckInput<'a> {
    /// Operation events in index order.
    pub history: &'a [Event],
    /// Node status samples in time order.
    pub statuses: &'a [StatusSample],
    /// Fault events in time order.
    pub faults: &'a [FaultEvent],
    /// The final state.
    pub final_state: &'a FinalState,
    /// The nodes' lease window, in milliseconds (the bound of the disabled-key property).
    pub lease_window_ms: u64,
    /// When the harness began healing and restarting every node (microseconds since the run
    /// started); status samples from then on belong to that final restart. `None` in runs
    /// recorded before it was kept.
    pub healed_at_us: Option<u64>,
}

/// One broken instance of a property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// What is wrong, in a sentence a person can act on.
    pub message: String,
    /// Indexes of the history events that show it.
    pub events: Vec<u64>,
}

impl Violation {
    /// A violation no history event shows: one found in the status samples, the final state or
    /// the WAN probe.
    pub fn without_events(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            events: Vec::new(),
        }
    }
}

/// A checker's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Checker name.
    pub checker: &'static str,
    /// Where the property comes from (paper section, design document).
    pub source: &'static str,
    /// Whether the property held.
    pub ok: bool,
    /// One line: what was checked and how much.
    pub summary: String,
    /// The violations (empty when `ok`).
    pub violations: Vec<Violation>,
}

/// What a check found: one line saying what was checked and how much, and the violations
/// (none when the property held).
pub type Findings = (String, Vec<Violation>);

/// A property checked over a run: its name, where it comes from and the check itself. Each
/// checker module declares one as a constant, and the verdict is built here, once.
#[derive(Clone, Copy, Debug)]
pub struct Checker {
    /// Short name, e.g. `lost-writes`.
    pub name: &'static str,
    /// Where the property comes from (paper section, design document).
    pub source: &'static str,
    /// Checks the run.
    pub run: fn(&CheckInput<'_>) -> Findings,
}

impl Checker {
    /// Checks the run.
    pub fn check(&self, input: &CheckInput<'_>) -> Verdict {
        self.verdict((self.run)(input))
    }

    /// The verdict of what a check of this property found.
    pub fn verdict(&self, (summary, violations): Findings) -> Verdict {
        Verdict {
            checker: self.name,
            source: self.source,
            ok: violations.is_empty(),
            summary,
            violations,
        }
    }
}

/// Every checker, in report order.
pub fn all() -> Vec<Checker> {
    vec![
        lost_writes::CHECKER,
        decryptable::CHECKER,
        disabled_keys::CHECKER,
        revoked_access::CHECKER,
        single_leader::CHECKER,
        idempotency::CHECKER,
        linearizable::CHECKER,
        convergence::CHECKER,
        audit_chain::CHECKER,
        no_elections::CHECKER,
        wan_latency::CHECKER,
    ]
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It happened, with the recorded result.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown: an `info` completion, or no completion before the run ended.
    Info,
}

impl Outcome {
    /// The outcome's name: `ok`, `fail` or `info`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fail => "fail",
            Self::Info => "info",
        }
    }
}

/// One client operation: an `invoke` event paired with its completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// The client that issued it.
    pub process: u32,
    /// The node that answered (the completion's node, or the invoke's when there is none).
    pub node: u64,
    /// The operation.
    pub op: Op,
    /// How it ended.
    pub outcome: Outcome,
    /// Time of the invoke event, microseconds.
    pub invoke_us: u64,
    /// Time of the completion event, if there was one.
    pub complete_us: Option<u64>,
    /// Index of the invoke event.
    pub invoke_index: u64,
    /// Index of the completion event, if there was one.
    pub complete_index: Option<u64>,
    /// The result of an `ok` completion.
    pub value: Option<OkValue>,
    /// The error of a `fail` or `info` completion.
    pub error: Option<ErrorInfo>,
}

impl Operation {
    /// Whether the operation completed `ok`.
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// Whether the operation may have taken effect (`ok` or `info`).
    pub fn may_have_happened(&self) -> bool {
        self.outcome != Outcome::Fail
    }

    /// The latest instant the operation may take effect: its completion time for `ok` and
    /// `fail`, `u64::MAX` (never known to be over) for `info`.
    pub fn effect_end_us(&self) -> u64 {
        match (self.outcome, self.complete_us) {
            (Outcome::Info, _) | (_, None) => u64::MAX,
            (_, Some(t)) => t,
        }
    }

    /// Latency in microseconds, when the operation completed.
    pub fn latency_us(&self) -> Option<u64> {
        self.complete_us.map(|c| c.saturating_sub(self.invoke_us))
    }

    /// The indexes of its events: the invoke and, if any, the completion.
    pub fn events(&self) -> Vec<u64> {
        let mut events = vec![self.invoke_index];
        events.extend(self.complete_index);
        events
    }

    /// The version the `ok` result carries, if any.
    pub fn ok_version(&self) -> Option<KeyVersion> {
        self.value.as_ref().and_then(|v| v.version)
    }

    /// The error code a failure carries: the Tessera code when there is one, else the gRPC
    /// code.
    pub fn error_code(&self) -> Option<&str> {
        self.error.as_ref().map(error_code)
    }
}

/// The code to count an error under: its Tessera code when there is one (and it is not
/// empty), else its gRPC code.
pub fn error_code(error: &ErrorInfo) -> &str {
    error
        .tessera_code
        .as_deref()
        .filter(|code| !code.is_empty())
        .unwrap_or(&error.code)
}

/// Pairs each completion with the latest unmatched invoke of the same process (a process
/// issues one operation at a time). An invoke never completed counts as `info`; a completion
/// with no invoke before it is ignored. The result is in invoke order.
pub fn operations(history: &[Event]) -> Vec<Operation> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut open: HashMap<u32, Vec<usize>> = HashMap::new();
    for event in history {
        let outcome = match event.kind {
            EventKind::Invoke => {
                open.entry(event.process).or_default().push(ops.len());
                ops.push(Operation {
                    process: event.process,
                    node: event.node,
                    op: event.op.clone(),
                    outcome: Outcome::Info,
                    invoke_us: event.time_us,
                    complete_us: None,
                    invoke_index: event.index,
                    complete_index: None,
                    value: None,
                    error: None,
                });
                continue;
            }
            EventKind::Ok => Outcome::Ok,
            EventKind::Fail => Outcome::Fail,
            EventKind::Info => Outcome::Info,
        };
        let Some(position) = open.get_mut(&event.process).and_then(Vec::pop) else {
            continue;
        };
        if let Some(op) = ops.get_mut(position) {
            op.node = event.node;
            op.outcome = outcome;
            op.complete_us = Some(event.time_us);
            op.complete_index = Some(event.index);
            op.value = event.value.clone();
            op.error = event.error.clone();
        }
    }
    ops
}

/// An `ok` use of a key invoked after a revocation of it should have held everywhere.
#[derive(Clone, Copy, Debug)]
pub struct StaleUse<'a> {
    /// The acknowledged revocation.
    pub revocation: &'a Operation,
    /// When it was acknowledged, microseconds.
    pub acked_us: u64,
    /// The use that succeeded anyway.
    pub used: &'a Operation,
}

impl StaleUse<'_> {
    /// The violation it is: `describe(self, ms beyond the window)` as the message, the
    /// revocation's and the use's events as the evidence.
    pub fn violation(&self, window_us: u64, describe: impl Fn(&Self, f64) -> String) -> Violation {
        let beyond_us = self
            .used
            .invoke_us
            .saturating_sub(self.acked_us.saturating_add(window_us));
        let mut events = self.revocation.events();
        events.extend(self.used.events());
        Violation {
            message: describe(self, beyond_us as f64 / 1000.0),
            events,
        }
    }
}

/// Which operations revoke, restore and use something about a key, for
/// [`stale_uses`].
#[derive(Clone, Copy, Debug)]
pub struct RevocationRule {
    /// An operation that, acknowledged, revokes the use.
    pub revokes: fn(&Op) -> bool,
    /// An operation that, whatever its outcome, may give the use back.
    pub restores: fn(&Op) -> bool,
    /// The use.
    pub uses: fn(&Op) -> bool,
}

/// Per key, every `ok` use invoked more than `grace_us` after an acknowledged revocation and
/// before the use could have been restored; also the number of acknowledged revocations.
///
/// "Could have been restored" is conservative: the revocation's protection ends at the earliest
/// instant any restoring operation (whatever its outcome) may have taken effect after it —
/// `max(restore invoke, revocation invoke)` over every restore that did not complete before the
/// revocation was invoked. Shared by the checkers of revocations bounded by the lease window.
pub fn stale_uses<'a>(
    ops: &'a [Operation],
    rule: RevocationRule,
    grace_us: u64,
) -> (usize, Vec<StaleUse<'a>>) {
    let mut per_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        per_key.entry(op.op.key_name()).or_default().push(op);
    }
    let mut revocations = 0usize;
    let mut stale = Vec::new();
    for ops in per_key.values() {
        let restores: Vec<&Operation> = ops
            .iter()
            .copied()
            .filter(|o| (rule.restores)(&o.op))
            .collect();
        for revocation in ops
            .iter()
            .copied()
            .filter(|o| (rule.revokes)(&o.op) && o.is_ok())
        {
            let Some(acked_us) = revocation.complete_us else {
                continue;
            };
            revocations += 1;
            let deadline = acked_us.saturating_add(grace_us);
            let restored = restores
                .iter()
                .filter(|r| r.complete_us.is_none_or(|c| c > revocation.invoke_us))
                .map(|r| r.invoke_us.max(revocation.invoke_us))
                .min()
                .unwrap_or(u64::MAX);
            stale.extend(
                ops.iter()
                    .copied()
                    .filter(|o| (rule.uses)(&o.op) && o.is_ok())
                    .filter(|o| o.invoke_us > deadline && o.invoke_us < restored)
                    .map(|used| StaleUse {
                        revocation,
                        acked_us,
                        used,
                    }),
            );
        }
    }
    (revocations, stale)
}

/// Tolerance added to the lease window, in microseconds (100 ms): clock reads, scheduling and
/// the harness's own recording delay.
pub const SLACK_US: u64 = 100_000;

/// The violations of a revocation the lease bounds: every `ok` use [`stale_uses`] finds more
/// than the lease window (+ [`SLACK_US`]) after an acknowledged revocation, with
/// `describe(use, ms beyond the window)` as its message; also the number of acknowledged
/// revocations. Shared by the disabled-keys and revoked-access checkers.
pub fn lease_bounded(
    input: &CheckInput<'_>,
    ops: &[Operation],
    rule: RevocationRule,
    describe: impl Fn(&StaleUse<'_>, f64) -> String,
) -> (usize, Vec<Violation>) {
    let window_us = input.lease_window_ms.saturating_mul(1000);
    let (revocations, stale) = stale_uses(ops, rule, window_us.saturating_add(SLACK_US));
    let violations = stale
        .iter()
        .map(|s| s.violation(window_us, &describe))
        .collect();
    (revocations, violations)
}

/// How the summary of a lease-bounded checker ends: the window and the slack it allowed.
pub fn lease_window_note(input: &CheckInput<'_>) -> String {
    format!(
        "(lease window {} ms + {} ms slack)",
        input.lease_window_ms,
        SLACK_US / 1000
    )
}

/// `us` microseconds in seconds.
pub fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// The snake-case name of an operation type, as in the history (`create_key`, `encrypt`, …).
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::CreateKey { .. } => "create_key",
        Op::RotateKey { .. } => "rotate_key",
        Op::DisableKey { .. } => "disable_key",
        Op::EnableKey { .. } => "enable_key",
        Op::Encrypt { .. } => "encrypt",
        Op::Decrypt { .. } => "decrypt",
        Op::ReEncrypt { .. } => "re_encrypt",
        Op::Describe { .. } => "describe",
        Op::AllowApp { .. } => "allow_app",
        Op::DenyApp { .. } => "deny_app",
        Op::AppEncrypt { .. } => "app_encrypt",
    }
}

/// The client request id of a write.
pub fn request_id(op: &Op) -> Option<&str> {
    match op {
        Op::CreateKey { request_id, .. }
        | Op::RotateKey { request_id, .. }
        | Op::DisableKey { request_id, .. }
        | Op::EnableKey { request_id, .. } => Some(request_id),
        _ => None,
    }
}

/// The attempts of one logical write: every operation with the same type, key name and
/// request id. The cluster applies a request id at most once, so the write takes effect at
/// most once, somewhere between the first attempt that may have happened being invoked and
/// the first `ok` attempt completing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteGroup<'a> {
    /// Operation type (`create_key`, …).
    pub op_name: &'static str,
    /// Key name.
    pub key: &'a str,
    /// Request id.
    pub request_id: &'a str,
    /// The attempts, in invoke order.
    pub attempts: Vec<&'a Operation>,
}

impl WriteGroup<'_> {
    /// The first `ok` attempt (by completion time).
    pub fn first_ok(&self) -> Option<&Operation> {
        self.attempts
            .iter()
            .copied()
            .filter(|a| a.is_ok())
            .min_by_key(|a| a.complete_us)
    }

    /// Whether some attempt completed `ok`.
    pub fn is_ok(&self) -> bool {
        self.attempts.iter().any(|a| a.is_ok())
    }

    /// Whether the write may have taken effect (some attempt is `ok` or `info`).
    pub fn may_have_happened(&self) -> bool {
        self.attempts.iter().any(|a| a.may_have_happened())
    }

    /// The earliest the write may have taken effect: the first invoke among attempts that may
    /// have happened.
    pub fn effect_start_us(&self) -> Option<u64> {
        self.attempts
            .iter()
            .filter(|a| a.may_have_happened())
            .map(|a| a.invoke_us)
            .min()
    }

    /// The latest the write may have taken effect: the first `ok` attempt's completion, or
    /// `u64::MAX` when no attempt completed `ok`.
    pub fn effect_end_us(&self) -> u64 {
        self.first_ok()
            .and_then(|a| a.complete_us)
            .unwrap_or(u64::MAX)
    }

    /// Every event index of every attempt.
    pub fn events(&self) -> Vec<u64> {
        let mut events: Vec<u64> = self.attempts.iter().flat_map(|a| a.events()).collect();
        events.sort_unstable();
        events
    }
}

/// Groups the writes among `ops` into logical writes by (type, key name, request id), in order
/// of each group's first invoke.
pub fn write_groups(ops: &[Operation]) -> Vec<WriteGroup<'_>> {
    let mut groups: Vec<WriteGroup<'_>> = Vec::new();
    let mut by_id: HashMap<(&'static str, &str, &str), usize> = HashMap::new();
    for op in ops {
        let Some(request_id) = request_id(&op.op) else {
            continue;
        };
        let name = op_name(&op.op);
        let key = op.op.key_name();
        let position = *by_id.entry((name, key, request_id)).or_insert_with(|| {
            groups.push(WriteGroup {
                op_name: name,
                key,
                request_id,
                attempts: Vec::new(),
            });
            groups.len() - 1
        });
        if let Some(group) = groups.get_mut(position) {
            group.attempts.push(op);
        }
    }
    groups
}

/// Shortens a base64 or other long string for a message.
pub fn abbreviate(text: &str) -> String {
    const MAX: usize = 24;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Helpers to build synthetic histories in tests.
#[cfg(test)]
pub(crate) mod testing {
    use tessera_state::KeyVersion;

    use super::{CheckInput, Checker, FinalState, Verdict};
    use crate::history::{ErrorInfo, Event, EventKind, OkValue, Op};

    /// The input of a run that recorded nothing but `final_state`: no history, no status
    /// samples, no faults, a 1000 ms lease window and no final restart.
    pub fn input(final_state: &FinalState) -> CheckInput<'_> {
        CheckInput {
            history: &[],
            statuses: &[],
            faults: &[],
            final_state,
            lease_window_ms: 1000,
            healed_at_us: None,
        }
    }

    /// Asserts that the verdict's summary contains `part`.
    #[track_caller]
    pub fn assert_summary_contains(v: &Verdict, part: &str) {
        assert!(v.summary.contains(part), "{}", v.summary);
    }

    /// Asserts that violation `i` of the verdict exists and its message contains `part`.
    #[track_caller]
    pub fn assert_violation_contains(v: &Verdict, i: usize, part: &str) {
        let message = v.violations.get(i).map(|v| v.message.as_str());
        assert!(message.is_some_and(|m| m.contains(part)), "{v:?}");
    }

    /// Asserts that the verdict failed with exactly one violation, shown by `events`, whose
    /// message contains `part`.
    #[track_caller]
    pub fn assert_one_violation(v: &Verdict, events: &[u64], part: &str) {
        assert!(!v.ok);
        assert_eq!(v.violations.len(), 1, "{v:?}");
        assert_eq!(v.violations[0].events, events);
        assert!(
            v.violations[0].message.contains(part),
            "{}",
            v.violations[0].message
        );
    }

    /// A history whose first operation created key `a` (id `k1`, request id `c1`) between 0
    /// and 10 ms.
    pub fn created() -> HistoryBuilder {
        let mut h = HistoryBuilder::new();
        h.ok_op(0, 10, 1, &create("a", "c1"), key_id("k1"));
        h
    }

    /// Builds a history event by event; indexes are assigned in order.
    #[derive(Default)]
    pub struct HistoryBuilder {
        pub events: Vec<Event>,
    }

    impl HistoryBuilder {
        pub fn new() -> Self {
            Self::default()
        }

        /// Runs `checker` on this history alone: no status samples, no faults, an empty final
        /// state and a 1000 ms lease window.
        pub fn check(&self, checker: &Checker) -> Verdict {
            checker.check(&CheckInput {
                history: &self.events,
                ..input(&FinalState::default())
            })
        }

        /// An event of any kind at `time_ms`, on node 1; returns its index.
        pub fn complete(
            &mut self,
            time_ms: u64,
            process: u32,
            kind: EventKind,
            op: &Op,
            value: Option<OkValue>,
            error: Option<ErrorInfo>,
        ) -> u64 {
            let index = self.events.len() as u64;
            self.events.push(Event {
                index,
                time_us: time_ms * 1000,
                process,
                node: 1,
                kind,
                op: op.clone(),
                value,
                error,
            });
            index
        }

        /// An invoke at `time_ms`.
        pub fn invoke(&mut self, time_ms: u64, process: u32, op: &Op) -> u64 {
            self.complete(time_ms, process, EventKind::Invoke, op, None, None)
        }

        /// An `ok` completion.
        pub fn ok(&mut self, time_ms: u64, process: u32, op: &Op, value: OkValue) -> u64 {
            self.complete(time_ms, process, EventKind::Ok, op, Some(value), None)
        }

        /// A `fail` completion.
        pub fn fail(
            &mut self,
            time_ms: u64,
            process: u32,
            op: &Op,
            code: &str,
            tessera: &str,
        ) -> u64 {
            let error = Some(error(code, tessera));
            self.complete(time_ms, process, EventKind::Fail, op, None, error)
        }

        /// An `info` completion.
        pub fn info(&mut self, time_ms: u64, process: u32, op: &Op) -> u64 {
            let error = error("UNAVAILABLE", "WRITE_OUTCOME_UNKNOWN");
            self.complete(time_ms, process, EventKind::Info, op, None, Some(error))
        }

        /// A whole `ok` operation from `start_ms` to `end_ms`; returns the completion index.
        pub fn ok_op(
            &mut self,
            start_ms: u64,
            end_ms: u64,
            process: u32,
            op: &Op,
            value: OkValue,
        ) -> u64 {
            self.invoke(start_ms, process, op);
            self.ok(end_ms, process, op, value)
        }

        /// A whole `info` operation.
        pub fn info_op(&mut self, start_ms: u64, end_ms: u64, process: u32, op: &Op) -> u64 {
            self.invoke(start_ms, process, op);
            self.info(end_ms, process, op)
        }

        /// A whole `fail` operation.
        pub fn fail_op(
            &mut self,
            start_ms: u64,
            end_ms: u64,
            process: u32,
            op: &Op,
            code: &str,
            tessera: &str,
        ) -> u64 {
            self.invoke(start_ms, process, op);
            self.fail(end_ms, process, op, code, tessera)
        }
    }

    pub fn error(code: &str, tessera: &str) -> ErrorInfo {
        ErrorInfo {
            code: code.into(),
            tessera_code: (!tessera.is_empty()).then(|| tessera.into()),
            message: format!("{code} {tessera}"),
        }
    }

    pub fn create(name: &str, request_id: &str) -> Op {
        Op::CreateKey {
            name: name.into(),
            request_id: request_id.into(),
        }
    }

    pub fn rotate(name: &str, request_id: &str) -> Op {
        Op::RotateKey {
            name: name.into(),
            request_id: request_id.into(),
        }
    }

    pub fn disable(name: &str, request_id: &str) -> Op {
        Op::DisableKey {
            name: name.into(),
            request_id: request_id.into(),
        }
    }

    pub fn enable(name: &str, request_id: &str) -> Op {
        Op::EnableKey {
            name: name.into(),
            request_id: request_id.into(),
        }
    }

    pub fn encrypt(name: &str, plaintext: &str) -> Op {
        Op::Encrypt {
            name: name.into(),
            plaintext: plaintext.into(),
        }
    }

    pub fn allow_app(name: &str) -> Op {
        Op::AllowApp { name: name.into() }
    }

    pub fn deny_app(name: &str) -> Op {
        Op::DenyApp { name: name.into() }
    }

    pub fn app_encrypt(name: &str, plaintext: &str) -> Op {
        Op::AppEncrypt {
            name: name.into(),
            plaintext: plaintext.into(),
        }
    }

    pub fn describe(name: &str) -> Op {
        Op::Describe {
            name: name.into(),
            linearizable: true,
        }
    }

    pub fn key_id(id: &str) -> OkValue {
        OkValue {
            key_id: Some(id.into()),
            version: Some(KeyVersion::FIRST),
            ..OkValue::default()
        }
    }

    pub fn version(v: u32) -> OkValue {
        OkValue {
            version: Some(KeyVersion::new(v)),
            ..OkValue::default()
        }
    }

    pub fn ciphertext(c: &str) -> OkValue {
        OkValue {
            version: Some(KeyVersion::FIRST),
            ciphertext: Some(c.into()),
            ..OkValue::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn pairs_completions_with_the_latest_invoke_of_the_same_process() {
        let mut h = HistoryBuilder::new();
        let a = create("a", "r1");
        let b = rotate("a", "r2");
        h.invoke(0, 1, &a);
        h.invoke(1, 2, &b);
        h.ok(5, 2, &b, version(2));
        h.ok(6, 1, &a, key_id("k1"));
        h.invoke(7, 1, &b);
        h.fail(8, 1, &b, "UNAVAILABLE", "NO_LEADER");
        h.invoke(9, 2, &a);
        h.info(10, 3, &a); // no invoke for process 3: ignored
        let ops = operations(&h.events);
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].op, a);
        assert_eq!((ops[0].invoke_index, ops[0].complete_index), (0, Some(3)));
        assert_eq!(ops[0].outcome, Outcome::Ok);
        assert_eq!(ops[0].value.as_ref().unwrap().key_id.as_deref(), Some("k1"));
        assert_eq!(ops[0].latency_us(), Some(6000));
        assert_eq!((ops[1].invoke_index, ops[1].complete_index), (1, Some(2)));
        assert_eq!(ops[1].ok_version(), Some(KeyVersion::new(2)));
        assert_eq!(ops[2].outcome, Outcome::Fail);
        assert_eq!(ops[2].error_code(), Some("NO_LEADER"));
        assert_eq!(ops[2].events(), vec![4, 5]);
        // Never completed: info, with no completion.
        assert_eq!(ops[3].outcome, Outcome::Info);
        assert_eq!(ops[3].complete_index, None);
        assert_eq!(ops[3].effect_end_us(), u64::MAX);
        assert_eq!(ops[3].events(), vec![6]);
    }

    #[test]
    fn groups_writes_by_request_id() {
        let mut h = HistoryBuilder::new();
        let r = rotate("a", "r1");
        h.info_op(0, 10, 1, &r);
        h.fail_op(11, 12, 1, &r, "UNAVAILABLE", "NO_LEADER");
        h.ok_op(13, 20, 1, &r, version(2));
        h.ok_op(21, 22, 1, &rotate("a", "r2"), version(3));
        h.invoke(23, 2, &encrypt("a", "aGk="));
        let ops = operations(&h.events);
        let groups = write_groups(&ops);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].attempts.len(), 3);
        assert_eq!(groups[0].request_id, "r1");
        assert!(groups[0].is_ok());
        assert_eq!(groups[0].effect_start_us(), Some(0));
        assert_eq!(groups[0].effect_end_us(), 20_000);
        assert_eq!(groups[0].events(), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(
            groups[1].first_ok().unwrap().ok_version(),
            Some(KeyVersion::new(3))
        );
    }
}
