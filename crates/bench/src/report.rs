//! What a run produced: every number in a serialisable [`Report`], and the human table.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::load::Measured;
use crate::machine::Machine;

/// Quantiles of the latency curve kept for the chart (and in the JSON).
const CURVE_QUANTILES: [f64; 9] = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999];

/// One measured workload.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// Unique name, e.g. `encrypt one-node c16`.
    pub name: String,
    /// `tessera`, `echo` or `etcd`.
    pub system: &'static str,
    /// The call, e.g. `encrypt`, `create-key`, `put`.
    pub call: String,
    /// Where the load went: `one-node`, `spread`, `leader`.
    pub target: &'static str,
    /// Requests in flight (C).
    pub concurrency: usize,
    /// HTTP/2 connections (K).
    pub connections: usize,
    /// Completed requests in the measured windows.
    pub ops: u64,
    /// Failed requests in the measured windows.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Mean completed requests per second over the repetitions.
    pub ops_per_s: f64,
    /// Completed requests per second of each repetition.
    pub ops_per_s_reps: Vec<f64>,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// (quantile, milliseconds) points of the latency distribution.
    pub curve: Vec<(f64, f64)>,
    /// The workload this one is compared with.
    pub reference: Option<String>,
    /// ops/s divided by the reference's.
    pub ratio_ops: Option<f64>,
    /// p99 divided by the reference's.
    pub ratio_p99: Option<f64>,
    /// CPU seconds the load generator (this process) used during the workload.
    pub load_cpu_s: f64,
    /// Wall seconds of the workload, warm-ups included.
    pub wall_s: f64,
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

impl Workload {
    /// A workload's entry from what the load generator measured.
    #[must_use]
    pub fn new(
        system: &'static str,
        call: &str,
        target: &'static str,
        concurrency: usize,
        connections: usize,
        measured: &Measured,
    ) -> Self {
        let h = &measured.histogram;
        let reps = measured.ops_per_s_reps.len().max(1) as f64;
        let label = match system {
            "tessera" => call.to_owned(),
            _ if system == call => system.to_owned(),
            _ => format!("{system} {call}"),
        };
        Self {
            name: format!("{label} {target} c{concurrency}"),
            system,
            call: call.to_owned(),
            target,
            concurrency,
            connections,
            ops: measured.ops,
            errors: measured.errors,
            first_error: measured.first_error.clone(),
            ops_per_s: measured.ops_per_s_reps.iter().sum::<f64>() / reps,
            ops_per_s_reps: measured.ops_per_s_reps.clone(),
            p50_ms: ms(h, 0.5),
            p90_ms: ms(h, 0.9),
            p99_ms: ms(h, 0.99),
            p999_ms: ms(h, 0.999),
            max_ms: h.max() as f64 / 1000.0,
            curve: CURVE_QUANTILES.iter().map(|&q| (q, ms(h, q))).collect(),
            reference: None,
            ratio_ops: None,
            ratio_p99: None,
            load_cpu_s: measured.load_cpu.as_secs_f64(),
            wall_s: measured.wall.as_secs_f64(),
        }
    }

    /// Records the comparison with `reference`.
    pub fn compare_with(&mut self, reference: &Self) {
        self.reference = Some(reference.name.clone());
        self.ratio_ops = (reference.ops_per_s > 0.0).then(|| self.ops_per_s / reference.ops_per_s);
        self.ratio_p99 = (reference.p99_ms > 0.0).then(|| self.p99_ms / reference.p99_ms);
    }
}

/// Encrypt throughput with a policy set installed against none (issue: at most 5% lost).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyCost {
    /// Statements in the installed set.
    pub statements: usize,
    /// Workload without policies.
    pub without: String,
    /// Workload with the set installed.
    pub with: String,
    /// ops/s with the set divided by ops/s without.
    pub ratio_ops: Option<f64>,
}

/// Leader SIGKILL to the first acknowledged write through the survivors.
#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    /// Seconds of each try.
    pub tries_s: Vec<f64>,
    /// Their median.
    pub median_s: f64,
}

/// Bulk key creation before the memory and restart measurements.
#[derive(Debug, Clone, Serialize)]
pub struct KeyLoad {
    /// Keys created (besides those of the other workloads).
    pub created: u64,
    /// Keys the cluster holds in total, as far as the bench created them.
    pub total_keys: u64,
    /// Seconds it took.
    pub seconds: f64,
    /// Requests in flight while creating.
    pub concurrency: usize,
}

/// Restart of one node with the cluster's keys: seconds from spawn to each stage.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    /// The node restarted.
    pub node_id: u64,
    /// Keys in the cluster.
    pub keys: u64,
    /// Until it published its bound addresses.
    pub listening_s: f64,
    /// Until the last unseal share was accepted.
    pub unsealed_s: f64,
    /// Until an encrypt sent to it alone succeeded.
    pub serving_s: f64,
}

/// Memory and disk of one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeUsage {
    /// Node id.
    pub node_id: u64,
    /// Whether it led when measured.
    pub leader: bool,
    /// VmRSS when idle, in MiB.
    pub rss_idle_mib: f64,
    /// Highest VmRSS sampled under load, in MiB.
    pub rss_load_mib: f64,
    /// Size of its data directory, in MB (10^6 bytes).
    pub data_dir_mb: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Format version of this JSON.
    pub format: u32,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// Whether this was a `--quick` smoke run (numbers not meaningful).
    pub quick: bool,
    /// The machine.
    pub machine: Machine,
    /// Seconds of each measured window.
    pub duration_s: f64,
    /// Seconds of warm-up before each window.
    pub warmup_s: f64,
    /// Windows per workload.
    pub reps: u32,
    /// Request payload bytes.
    pub payload_bytes: usize,
    /// The workloads, in the order run.
    pub workloads: Vec<Workload>,
    /// Policy evaluation cost.
    pub policy: Option<PolicyCost>,
    /// Failover times.
    pub failover: Option<Failover>,
    /// The bulk key load.
    pub keys: Option<KeyLoad>,
    /// Restart to serving.
    pub restart: Option<Restart>,
    /// Memory and disk per node.
    pub nodes: Vec<NodeUsage>,
    /// etcd data directory sizes after its workloads, in MB.
    pub etcd_data_dir_mb: Vec<f64>,
    /// What was skipped and why, and how to read the numbers.
    pub notes: Vec<String>,
    /// CPU seconds this process (the load generator) used over the whole run.
    pub load_cpu_s: f64,
    /// Wall seconds of the whole run.
    pub wall_s: f64,
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"))
}

impl Report {
    /// The human table: one line per workload with its ratios, then the single numbers.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "Machine: {} cores, {}, {:.1} GiB, Linux {}",
            m.cores,
            m.cpu_model,
            m.memory_bytes as f64 / f64::from(1u32 << 30),
            m.kernel
        );
        let _ = writeln!(
            out,
            "Load: closed loop, {} B payloads, {} × {:.1} s windows after {:.1} s warm-up{}\n",
            self.payload_bytes,
            self.reps,
            self.duration_s,
            self.warmup_s,
            if self.quick {
                " (--quick: smoke run, numbers not meaningful)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "{:<34} {:>3} {:>10} {:>8} {:>8} {:>8} {:>9} {:>6}  {:<26} {:>7} {:>7}",
            "workload",
            "K",
            "ops/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "errors",
            "reference",
            "ops",
            "p99"
        );
        for w in &self.workloads {
            let _ = writeln!(
                out,
                "{:<34} {:>3} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>6}  {:<26} {:>7} {:>7}",
                w.name,
                w.connections,
                w.ops_per_s,
                w.p50_ms,
                w.p90_ms,
                w.p99_ms,
                w.p999_ms,
                w.errors,
                w.reference.as_deref().unwrap_or("—"),
                ratio(w.ratio_ops),
                ratio(w.ratio_p99),
            );
        }
        out.push('\n');
        if let Some(p) = &self.policy {
            let _ = writeln!(
                out,
                "Policy cost: encrypt with {} statements installed / none = {}",
                p.statements,
                ratio(p.ratio_ops)
            );
        }
        if let Some(f) = &self.failover {
            let tries: Vec<String> = f.tries_s.iter().map(|t| format!("{t:.2}")).collect();
            let _ = writeln!(
                out,
                "Failover (leader SIGKILL → first acknowledged write): median {:.2} s (tries: {} s)",
                f.median_s,
                tries.join(", ")
            );
        }
        if let Some(k) = &self.keys {
            let _ = writeln!(
                out,
                "Keys: {} created in {:.1} s at C={} ({:.0}/s); the cluster holds {}",
                k.created,
                k.seconds,
                k.concurrency,
                k.created as f64 / k.seconds.max(f64::EPSILON),
                k.total_keys
            );
        }
        if let Some(r) = &self.restart {
            let _ = writeln!(
                out,
                "Restart of node {} with {} keys: listening {:.2} s / unsealed {:.2} s / serving {:.2} s",
                r.node_id, r.keys, r.listening_s, r.unsealed_s, r.serving_s
            );
        }
        for n in &self.nodes {
            let _ = writeln!(
                out,
                "Node {}{}: RSS idle {:.0} MiB, under load {:.0} MiB; data directory {:.1} MB",
                n.node_id,
                if n.leader { " (leader)" } else { "" },
                n.rss_idle_mib,
                n.rss_load_mib,
                n.data_dir_mb
            );
        }
        if !self.etcd_data_dir_mb.is_empty() {
            let sizes: Vec<String> = self
                .etcd_data_dir_mb
                .iter()
                .map(|s| format!("{s:.1}"))
                .collect();
            let _ = writeln!(out, "etcd data directories: {} MB", sizes.join(", "));
        }
        let _ = writeln!(
            out,
            "\nLoad generator CPU: {:.1} s over {:.1} s wall ({:.0}% of one core).",
            self.load_cpu_s,
            self.wall_s,
            100.0 * self.load_cpu_s / self.wall_s.max(f64::EPSILON)
        );
        for note in &self.notes {
            let _ = writeln!(out, "Note: {note}");
        }
        out
    }
}
