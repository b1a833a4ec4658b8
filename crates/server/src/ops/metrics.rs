//! The node's Prometheus metrics.
//!
//! Request counters and latency histograms are updated by the audit layer, which sees every
//! call on the API port; leader changes are counted by a task that follows the Raft metrics.
//! Everything else (Raft indexes, replication lag, seal state, lease age, storage size) is read
//! from the node when `/metrics` is scraped, so it is never stale and costs nothing between
//! scrapes. No label carries a caller-supplied value: actions and codes come from fixed lists.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tessera_state::policy::Action;

use crate::node::Node;
use crate::tls_reload::Outcome;

/// The `action` label of calls that map to no policy action (health, reflection, unknown
/// methods): one bounded value, never the path the client sent.
const OTHER_ACTION: &str = "other";

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The policy action (`kms:Encrypt`, …) or [`OTHER_ACTION`].
    action: &'static str,
    /// The gRPC status name (`OK`, `PERMISSION_DENIED`, …).
    code: &'static str,
}

/// Label of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    /// As [`RequestLabels::action`].
    action: &'static str,
}

/// Label of a certificate reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `reloaded` or `refused`.
    outcome: &'static str,
}

/// Label of a per-member gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemberLabels {
    /// The member's node id.
    member: u64,
}

/// Latency buckets: 100 µs to about 6.5 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
}

/// Every metric the node exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<ActionLabels, Histogram, fn() -> Histogram>,
    audit_failures: Counter,
    leader_changes: Counter,
    tls_reloads: Family<OutcomeLabels, Counter>,
    term: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    last_log_index: Gauge,
    snapshot_index: Gauge,
    log_entries: Gauge,
    replication_lag: Family<MemberLabels, Gauge>,
    is_leader: Gauge,
    initialized: Gauge,
    sealed: Gauge,
    ready: Gauge,
    lease_age: Gauge<f64, AtomicU64>,
    storage_bytes: Gauge,
    /// The Raft database directory, whose size `storage_bytes` reports.
    db_dir: PathBuf,
}

impl Metrics {
    /// The metrics of a node whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("tessera"),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            audit_failures: Counter::default(),
            leader_changes: Counter::default(),
            tls_reloads: Family::default(),
            term: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            last_log_index: Gauge::default(),
            snapshot_index: Gauge::default(),
            log_entries: Gauge::default(),
            replication_lag: Family::default(),
            is_leader: Gauge::default(),
            initialized: Gauge::default(),
            sealed: Gauge::default(),
            ready: Gauge::default(),
            lease_age: Gauge::default(),
            storage_bytes: Gauge::default(),
            db_dir: data_dir.join(tessera_raft::compact::DB_DIR),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "requests",
            "API calls answered, by policy action and gRPC status code",
            self.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to answer an API call (including the audit record), by policy action",
            self.latency.clone(),
        );
        r.register(
            "audit_failures",
            "API calls failed because their audit record could not be written",
            self.audit_failures.clone(),
        );
        r.register(
            "raft_leader_changes",
            "Leaders this node has seen elected (one per term with a known leader)",
            self.leader_changes.clone(),
        );
        r.register(
            "tls_reloads",
            "Attempts to use changed TLS files, by outcome (reloaded, refused)",
            self.tls_reloads.clone(),
        );
        r.register("raft_term", "Current Raft term", self.term.clone());
        r.register(
            "raft_commit_index",
            "Highest log index this node knows to be committed",
            self.commit_index.clone(),
        );
        r.register(
            "raft_applied_index",
            "Highest log index applied to this node's state",
            self.applied_index.clone(),
        );
        r.register(
            "raft_last_log_index",
            "Highest log index in this node's log",
            self.last_log_index.clone(),
        );
        r.register(
            "raft_snapshot_index",
            "Log index covered by this node's latest snapshot",
            self.snapshot_index.clone(),
        );
        r.register(
            "raft_log_entries",
            "Entries in this node's log not yet purged behind a snapshot",
            self.log_entries.clone(),
        );
        r.register(
            "raft_replication_lag_entries",
            "On the leader: entries each member's log is behind the leader's (absent on followers)",
            self.replication_lag.clone(),
        );
        r.register(
            "raft_is_leader",
            "1 while this node is the Raft leader",
            self.is_leader.clone(),
        );
        r.register(
            "initialized",
            "1 once the cluster has been initialised",
            self.initialized.clone(),
        );
        r.register(
            "sealed",
            "1 while this node is sealed (holds no keyring)",
            self.sealed.clone(),
        );
        r.register(
            "ready",
            "1 while this node serves crypto (unsealed, lease held, caught up); /ready answers 200",
            self.ready.clone(),
        );
        r.register(
            "lease_age_seconds",
            "Time since this node's leader lease was last confirmed (absent with no confirmation: -1)",
            self.lease_age.clone(),
        );
        r.register(
            "storage_bytes",
            "Size on disk of the Raft database (log, state and snapshot)",
            self.storage_bytes.clone(),
        );
    }

    /// Counts a finished API call of `action` that ended with `code`, after `elapsed`.
    pub fn observe_request(&self, action: Option<Action>, code: tonic::Code, elapsed: Duration) {
        let action = action.map_or(OTHER_ACTION, Action::name);
        self.requests
            .get_or_create(&RequestLabels {
                action,
                code: tessera_proto::code_name(code),
            })
            .inc();
        self.latency
            .get_or_create(&ActionLabels { action })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a call failed because its audit record could not be written.
    pub fn audit_failure(&self) {
        self.audit_failures.inc();
    }

    /// Counts a reload of the TLS files that changed something.
    pub fn tls_reload(&self, outcome: Outcome) {
        self.tls_reloads
            .get_or_create(&OutcomeLabels {
                outcome: outcome.name(),
            })
            .inc();
    }

    /// Counts a newly elected leader.
    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    /// Reads the node's current state into the gauges and encodes every metric in the text
    /// exposition format.
    ///
    /// # Errors
    /// [`std::fmt::Error`] if encoding fails (it writes to a `String`, so only a metric
    /// that fails to encode itself can cause it).
    pub fn render(&self, node: &Node) -> Result<String, std::fmt::Error> {
        self.refresh(node);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    fn refresh(&self, node: &Node) {
        let raft = node.raft();
        let m = raft.metrics();
        let applied = m.last_applied.map_or(0, |l| l.index);
        let last_log = m.last_log_index.unwrap_or(0);
        let purged = m.purged.map_or(0, |l| l.index);
        self.term.set(gauge(m.current_term));
        self.applied_index.set(gauge(applied));
        self.commit_index
            .set(gauge(commit_index(&m, last_log).max(applied)));
        self.last_log_index.set(gauge(last_log));
        self.snapshot_index
            .set(gauge(m.snapshot.map_or(0, |l| l.index)));
        self.log_entries.set(gauge(last_log.saturating_sub(purged)));
        self.is_leader.set(i64::from(raft.is_leader()));
        self.replication_lag.clear();
        if let Some(replication) = &m.replication {
            for (member, matched) in replication {
                let matched = matched.map_or(0, |l| l.index);
                self.replication_lag
                    .get_or_create(&MemberLabels {
                        member: member.get(),
                    })
                    .set(gauge(last_log.saturating_sub(matched)));
            }
        }
        let status = node.seal().status();
        self.initialized.set(i64::from(
            raft.shared().read().state.seal_config().is_some(),
        ));
        self.sealed.set(i64::from(status.sealed));
        self.ready.set(i64::from(node.serving_now().is_ok()));
        self.lease_age
            .set(raft.lease_age().map_or(-1.0, |age| age.as_secs_f64()));
        self.storage_bytes.set(gauge(directory_size(&self.db_dir)));
    }
}

/// Counts the leaders `node` sees elected (one per term in which a leader is known), until the
/// task is dropped or the Raft core stops.
pub async fn count_leader_changes(node: Arc<Node>, metrics: Arc<Metrics>) {
    let mut watch = node.raft().watch_metrics();
    let mut counted_term = None;
    loop {
        let (term, leader) = {
            let m = watch.borrow_and_update();
            (m.current_term, m.current_leader)
        };
        if leader.is_some() && counted_term != Some(term) {
            counted_term = Some(term);
            metrics.leader_changed();
        }
        if watch.changed().await.is_err() {
            return;
        }
    }
}

/// On the leader, the highest index a majority of voters has in its log (what openraft
/// commits); elsewhere 0, and the caller reports the applied index (a follower applies what it
/// learns is committed at once).
fn commit_index(m: &tessera_raft::typ::RaftMetrics, last_log: u64) -> u64 {
    let Some(replication) = &m.replication else {
        return 0;
    };
    let mut matched: Vec<u64> = m
        .membership_config
        .membership()
        .voter_ids()
        .map(|voter| {
            if voter == m.id {
                last_log
            } else {
                replication
                    .get(&voter)
                    .copied()
                    .flatten()
                    .map_or(0, |l| l.index)
            }
        })
        .collect();
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched.get(matched.len() / 2).copied().unwrap_or(0)
}

/// A `u64` as a gauge value (saturating: indexes never come near `i64::MAX`).
fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Total size of the files under `dir` (0 for what cannot be read: a scrape never fails on
/// a file that disappeared while it was walked).
fn directory_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn requests_are_counted_by_action_and_code_with_bounded_labels() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new(dir.path());
        let ms = Duration::from_millis(3);
        metrics.observe_request(Some(Action::Encrypt), tonic::Code::Ok, ms);
        metrics.observe_request(Some(Action::Encrypt), tonic::Code::Ok, ms);
        metrics.observe_request(Some(Action::Encrypt), tonic::Code::PermissionDenied, ms);
        metrics.observe_request(None, tonic::Code::Unimplemented, ms);
        metrics.audit_failure();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        assert!(
            text.contains(r#"tessera_requests_total{action="kms:Encrypt",code="OK"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"tessera_requests_total{action="kms:Encrypt",code="PERMISSION_DENIED"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"tessera_requests_total{action="other",code="UNIMPLEMENTED"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tessera_request_duration_seconds_count{action="kms:Encrypt"} 3"#),
            "{text}"
        );
        assert!(text.contains("tessera_audit_failures_total 1"), "{text}");
    }

    #[test]
    fn storage_size_sums_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("x"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("a/b/y"), [0u8; 5]).unwrap();
        assert_eq!(directory_size(dir.path()), 15);
        assert_eq!(directory_size(&dir.path().join("absent")), 0);
    }
}
