//! The run report: `report.json` (run info, statistics, verdicts), `report.txt` (a readable
//! summary with the failing history excerpts and how to reproduce the run), `timeline.svg`
//! (faults per node and operation latencies over time) and, when a checker failed,
//! `violations.jsonl` (one line per violation with the history events it names).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::history::{Event, FaultEvent, Records};
use crate::invariants::{error_code, op_name, operations, Operation, Outcome, Verdict};

/// A fault the nemesis scheduled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Start, in milliseconds since the run started.
    pub at_ms: u64,
    /// How long it lasts.
    pub duration_ms: u64,
    /// Fault kind.
    pub fault: String,
    /// Which nodes or links, and parameters.
    pub detail: String,
}

/// How the run was configured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Seed of the workload and the fault schedule.
    pub seed: u64,
    /// Number of nodes.
    pub nodes: u64,
    /// Workload duration.
    pub duration_ms: u64,
    /// Fault kinds enabled.
    pub faults: Vec<String>,
    /// The nodes' lease window.
    pub lease_window_ms: u64,
    /// The fault schedule.
    pub schedule: Vec<ScheduledFault>,
}

/// Operations of one type, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Completed `ok`.
    pub ok: u64,
    /// Completed `fail`.
    pub fail: u64,
    /// Completed `info`, or never completed.
    pub info: u64,
}

/// Latency of `ok` operations of one type, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of `ok` operations.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile (nearest rank).
    pub p99_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// A time interval, in microseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start.
    pub start_us: u64,
    /// End.
    pub end_us: u64,
}

impl Window {
    /// Length in microseconds.
    pub fn len_us(&self) -> u64 {
        self.end_us.saturating_sub(self.start_us)
    }
}

/// Shortest gap without an `ok` completion reported as unavailability: 1 s.
pub const UNAVAILABILITY_MIN_US: u64 = 1_000_000;

/// Statistics of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Operation type (`create_key`, …) → counts by outcome.
    pub operations: BTreeMap<String, OutcomeCounts>,
    /// Error code (the Tessera code, else the gRPC code; `NO_COMPLETION` for operations still
    /// running at the end) → count, over `fail` and `info` operations.
    pub errors: BTreeMap<String, u64>,
    /// Fault kind → number of fault intervals.
    pub faults: BTreeMap<String, u64>,
    /// Maximal intervals of at least [`UNAVAILABILITY_MIN_US`] in which no operation completed
    /// `ok`, between the first invoke and the last completion.
    pub unavailability: Vec<Window>,
    /// Operation type → latency of its `ok` operations.
    pub latency: BTreeMap<String, LatencyStats>,
}

impl Stats {
    /// Computes the statistics of `records`.
    pub fn from_records(records: &Records) -> Self {
        let ops = operations(&records.events);
        let mut stats = Self::default();
        let mut latencies: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
        for op in &ops {
            let name = op_name(&op.op);
            let counts = stats.operations.entry(name.to_owned()).or_default();
            match op.outcome {
                Outcome::Ok => counts.ok += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Info => counts.info += 1,
            }
            match (&op.error, op.outcome, op.complete_index) {
                (Some(error), _, _) => {
                    *stats
                        .errors
                        .entry(error_code(error).to_owned())
                        .or_default() += 1
                }
                (None, Outcome::Info, None) => {
                    *stats.errors.entry("NO_COMPLETION".to_owned()).or_default() += 1
                }
                _ => {}
            }
            if let (Outcome::Ok, Some(latency)) = (op.outcome, op.latency_us()) {
                latencies.entry(name).or_default().push(latency);
            }
        }
        for (name, mut values) in latencies {
            values.sort_unstable();
            stats.latency.insert(
                name.to_owned(),
                LatencyStats {
                    count: values.len() as u64,
                    p50_us: percentile(&values, 50),
                    p99_us: percentile(&values, 99),
                    max_us: values.last().copied().unwrap_or_default(),
                },
            );
        }
        for interval in fault_intervals(&records.faults) {
            *stats.faults.entry(interval.fault).or_default() += 1;
        }
        stats.unavailability = unavailability(&ops);
        stats
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).clamp(1, n);
    usize::try_from(rank - 1)
        .ok()
        .and_then(|i| sorted.get(i))
        .copied()
        .unwrap_or_default()
}

fn unavailability(ops: &[Operation]) -> Vec<Window> {
    let Some(start) = ops.iter().map(|o| o.invoke_us).min() else {
        return Vec::new();
    };
    let Some(end) = ops.iter().filter_map(|o| o.complete_us).max() else {
        return Vec::new();
    };
    let mut oks: Vec<u64> = ops
        .iter()
        .filter(|o| o.is_ok())
        .filter_map(|o| o.complete_us)
        .collect();
    oks.sort_unstable();
    oks.push(end);
    let mut windows = Vec::new();
    let mut previous = start;
    for t in oks {
        if t.saturating_sub(previous) >= UNAVAILABILITY_MIN_US {
            windows.push(Window {
                start_us: previous,
                end_us: t,
            });
        }
        previous = previous.max(t);
    }
    windows
}

/// A fault from its start to its end, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultInterval {
    /// Fault kind.
    pub fault: String,
    /// Detail of the start event.
    pub detail: String,
    /// Nodes affected.
    pub nodes: Vec<u64>,
    /// Start.
    pub start_us: u64,
    /// End; `None` if the fault never ended before the run did.
    pub end_us: Option<u64>,
}

/// Pairs fault `start` and `end` events: an end closes the earliest open start of the same kind
/// with the same nodes (or, failing that, of the same kind). Events with another phase are
/// instantaneous intervals; an end without a start is ignored.
pub fn fault_intervals(faults: &[FaultEvent]) -> Vec<FaultInterval> {
    let mut intervals: Vec<FaultInterval> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for event in faults {
        match event.phase.as_str() {
            "start" => {
                open.push(intervals.len());
                intervals.push(FaultInterval {
                    fault: event.fault.clone(),
                    detail: event.detail.clone(),
                    nodes: event.nodes.clone(),
                    start_us: event.time_us,
                    end_us: None,
                });
            }
            "end" => {
                let matches = |i: &usize, same_nodes: bool| {
                    intervals.get(*i).is_some_and(|f| {
                        f.fault == event.fault && (!same_nodes || f.nodes == event.nodes)
                    })
                };
                let found = open
                    .iter()
                    .position(|i| matches(i, true))
                    .or_else(|| open.iter().position(|i| matches(i, false)));
                if let Some(position) = found {
                    let i = open.remove(position);
                    if let Some(interval) = intervals.get_mut(i) {
                        interval.end_us = Some(event.time_us.max(interval.start_us));
                    }
                }
            }
            _ => intervals.push(FaultInterval {
                fault: event.fault.clone(),
                detail: event.detail.clone(),
                nodes: event.nodes.clone(),
                start_us: event.time_us,
                end_us: Some(event.time_us),
            }),
        }
    }
    intervals
}

/// Where [`write_report`] wrote its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportPaths {
    /// `report.json`.
    pub json: PathBuf,
    /// `report.txt`.
    pub text: PathBuf,
    /// `timeline.svg`.
    pub timeline: PathBuf,
    /// `violations.jsonl`, written only when a checker failed.
    pub violations: Option<PathBuf>,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    ok: bool,
    info: &'a RunInfo,
    stats: &'a Stats,
    verdicts: &'a [Verdict],
}

/// One line of `violations.jsonl`.
#[derive(Serialize)]
struct ViolationRecord<'a> {
    checker: &'static str,
    message: &'a str,
    events: &'a [u64],
    /// The named events and the other half of each of their operations, in index order.
    history: Vec<&'a Event>,
}

/// Writes `report.json`, `report.txt`, `timeline.svg` and, if a checker failed,
/// `violations.jsonl` into `dir` (created if needed).
///
/// # Errors
/// An I/O error if a file cannot be written.
pub fn write_report(
    dir: &Path,
    info: &RunInfo,
    records: &Records,
    verdicts: &[Verdict],
) -> std::io::Result<ReportPaths> {
    std::fs::create_dir_all(dir)?;
    let stats = Stats::from_records(records);
    let ok = verdicts.iter().all(|v| v.ok);
    let excerpts = Excerpts::new(&records.events);

    let json = dir.join("report.json");
    let body = ReportJson {
        ok,
        info,
        stats: &stats,
        verdicts,
    };
    let text = serde_json::to_string_pretty(&body).map_err(std::io::Error::other)?;
    std::fs::write(&json, text + "\n")?;

    let text_path = dir.join("report.txt");
    std::fs::write(&text_path, render_text(info, &stats, verdicts, &excerpts))?;

    let timeline = dir.join("timeline.svg");
    std::fs::write(&timeline, render_svg(info, records))?;

    let violations = if ok {
        None
    } else {
        let path = dir.join("violations.jsonl");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for verdict in verdicts {
            for violation in &verdict.violations {
                let record = ViolationRecord {
                    checker: verdict.checker,
                    message: &violation.message,
                    events: &violation.events,
                    history: excerpts.excerpt(&violation.events),
                };
                serde_json::to_writer(&mut out, &record).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()?;
        Some(path)
    };
    Ok(ReportPaths {
        json,
        text: text_path,
        timeline,
        violations,
    })
}

/// Looks up events and the operations they belong to.
struct Excerpts<'a> {
    events: HashMap<u64, &'a Event>,
    /// Event index → the indexes of its operation's events.
    partners: HashMap<u64, Vec<u64>>,
}

impl<'a> Excerpts<'a> {
    fn new(history: &'a [Event]) -> Self {
        let mut partners = HashMap::new();
        for op in operations(history) {
            let events = op.events();
            for index in &events {
                partners.insert(*index, events.clone());
            }
        }
        Self {
            events: history.iter().map(|e| (e.index, e)).collect(),
            partners,
        }
    }

    /// The named events plus the other events of their operations, in index order.
    fn excerpt(&self, named: &[u64]) -> Vec<&'a Event> {
        let mut indexes = BTreeSet::new();
        for index in named {
            indexes.insert(*index);
            if let Some(partners) = self.partners.get(index) {
                indexes.extend(partners.iter().copied());
            }
        }
        indexes
            .iter()
            .filter_map(|i| self.events.get(i).copied())
            .collect()
    }
}

/// Most violations shown per checker in `report.txt`.
const SHOWN_VIOLATIONS: usize = 5;
/// Most history events printed per violation in `report.txt` (the last ones, nearest the
/// failure); `violations.jsonl` has them all.
const EXCERPT_LINES: usize = 40;

fn seconds(us: u64) -> String {
    format!("{:.3}", us as f64 / 1e6)
}

fn millis(us: u64) -> String {
    format!("{:.1}", us as f64 / 1e3)
}

/// `--duration` value for the reproduce command.
fn duration_flag(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The command that reruns this configuration.
pub fn reproduce_command(info: &RunInfo) -> String {
    let mut command = format!(
        "tessera-chaos run --seed {} --duration {} --nodes {}",
        info.seed,
        duration_flag(info.duration_ms),
        info.nodes
    );
    if !info.faults.is_empty() {
        command.push_str(&format!(" --faults {}", info.faults.join(",")));
    }
    command
}

fn render_event(event: &Event) -> String {
    let op = serde_json::to_string(&event.op).unwrap_or_default();
    let kind = match event.kind {
        crate::history::EventKind::Invoke => "invoke",
        crate::history::EventKind::Ok => "ok",
        crate::history::EventKind::Fail => "fail",
        crate::history::EventKind::Info => "info",
    };
    let mut line = format!(
        "#{:<6} {:>10} s  p{:<3} n{:<2} {kind:<6} {op}",
        event.index,
        seconds(event.time_us),
        event.process,
        event.node
    );
    if let Some(value) = &event.value {
        line.push_str(&format!(
            "  => {}",
            serde_json::to_string(value).unwrap_or_default()
        ));
    }
    if let Some(error) = &event.error {
        line.push_str(&format!(
            "  !! {}",
            serde_json::to_string(error).unwrap_or_default()
        ));
    }
    line
}

fn render_text(
    info: &RunInfo,
    stats: &Stats,
    verdicts: &[Verdict],
    excerpts: &Excerpts<'_>,
) -> String {
    let mut out = String::new();
    let failed = verdicts.iter().filter(|v| !v.ok).count();
    let status = if failed == 0 {
        format!("PASS ({} checkers)", verdicts.len())
    } else {
        format!("FAIL ({failed} of {} checkers failed)", verdicts.len())
    };
    let _ = writeln!(out, "Tessera chaos run: {status}");
    let _ = writeln!(
        out,
        "seed {}, {} nodes, {} s, faults: {}, lease window {} ms",
        info.seed,
        info.nodes,
        seconds(info.duration_ms.saturating_mul(1000)),
        if info.faults.is_empty() {
            "none".to_owned()
        } else {
            info.faults.join(", ")
        },
        info.lease_window_ms
    );

    let _ = writeln!(out, "\nCheckers");
    for verdict in verdicts {
        let mark = if verdict.ok { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "  {mark} {:<15} {}", verdict.checker, verdict.summary);
        let _ = writeln!(out, "       source: {}", verdict.source);
        for violation in verdict.violations.iter().take(SHOWN_VIOLATIONS) {
            let events: Vec<String> = violation.events.iter().map(u64::to_string).collect();
            let events = if events.is_empty() {
                String::new()
            } else {
                format!(" [events {}]", events.join(", "))
            };
            let _ = writeln!(out, "       - {}{events}", violation.message);
        }
        if verdict.violations.len() > SHOWN_VIOLATIONS {
            let _ = writeln!(
                out,
                "       … and {} more (see violations.jsonl)",
                verdict.violations.len() - SHOWN_VIOLATIONS
            );
        }
    }

    if !info.schedule.is_empty() {
        let _ = writeln!(out, "\nFault schedule");
        for fault in &info.schedule {
            let _ = writeln!(
                out,
                "  at {:>9} s for {:>8} s  {:<10} {}",
                seconds(fault.at_ms.saturating_mul(1000)),
                seconds(fault.duration_ms.saturating_mul(1000)),
                fault.fault,
                fault.detail
            );
        }
    }

    let _ = writeln!(out, "\nOperations (latency of ok operations, ms)");
    let _ = writeln!(
        out,
        "  {:<12} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "op", "ok", "fail", "info", "p50", "p99", "max"
    );
    for (name, counts) in &stats.operations {
        let latency = stats.latency.get(name).copied().unwrap_or_default();
        let (p50, p99, max) = if latency.count == 0 {
            ("-".to_owned(), "-".to_owned(), "-".to_owned())
        } else {
            (
                millis(latency.p50_us),
                millis(latency.p99_us),
                millis(latency.max_us),
            )
        };
        let _ = writeln!(
            out,
            "  {name:<12} {:>8} {:>8} {:>8} {p50:>9} {p99:>9} {max:>9}",
            counts.ok, counts.fail, counts.info
        );
    }
    if !stats.errors.is_empty() {
        let _ = writeln!(out, "\nErrors (fail and info)");
        for (code, count) in &stats.errors {
            let _ = writeln!(out, "  {code:<28} {count:>8}");
        }
    }
    if !stats.faults.is_empty() {
        let _ = writeln!(out, "\nFaults injected");
        for (fault, count) in &stats.faults {
            let _ = writeln!(out, "  {fault:<28} {count:>8}");
        }
    }
    let _ = writeln!(out, "\nUnavailability (no ok completion for at least 1 s)");
    if stats.unavailability.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for window in &stats.unavailability {
        let _ = writeln!(
            out,
            "  {} s – {} s ({} s)",
            seconds(window.start_us),
            seconds(window.end_us),
            seconds(window.len_us())
        );
    }

    let _ = writeln!(out, "\nReproduce");
    let _ = writeln!(out, "  {}", reproduce_command(info));

    if failed > 0 {
        let _ = writeln!(
            out,
            "\nOffending history (events named by each violation, with their invokes and completions; all of \
             them in violations.jsonl)"
        );
        for verdict in verdicts.iter().filter(|v| !v.ok) {
            for (i, violation) in verdict.violations.iter().take(SHOWN_VIOLATIONS).enumerate() {
                let _ = writeln!(out, "  {} violation {}:", verdict.checker, i + 1);
                let events = excerpts.excerpt(&violation.events);
                if events.is_empty() {
                    let _ = writeln!(out, "    (no history events: see the message)");
                }
                let skip = events.len().saturating_sub(EXCERPT_LINES);
                if skip > 0 {
                    let _ = writeln!(
                        out,
                        "    … {skip} earlier events (in violations.jsonl); the last {EXCERPT_LINES}:"
                    );
                }
                for event in events.iter().skip(skip) {
                    let _ = writeln!(out, "    {}", render_event(event));
                }
            }
        }
    }
    out
}

// ---- timeline.svg ----

const SVG_WIDTH: f64 = 1200.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const LANE_HEIGHT: f64 = 22.0;
const LANE_GAP: f64 = 6.0;
const TOP: f64 = 44.0;
const SCATTER_HEIGHT: f64 = 280.0;
/// Most points drawn in the latency scatter (more are thinned evenly).
const MAX_POINTS: usize = 20_000;

const FAULT_COLORS: [(&str, &str); 6] = [
    ("kill", "#b2182b"),
    ("pause", "#7b3294"),
    ("partition", "#e08214"),
    ("delay", "#35978f"),
    ("drop", "#8c510a"),
    ("restart", "#1b7837"),
];
const OTHER_FAULT_COLOR: &str = "#7f7f7f";
const OUTCOME_COLORS: [(Outcome, &str); 3] = [
    (Outcome::Ok, "#2166ac"),
    (Outcome::Fail, "#d6604d"),
    (Outcome::Info, "#f1a340"),
];

fn fault_color(kind: &str) -> &'static str {
    FAULT_COLORS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(OTHER_FAULT_COLOR, |(_, c)| c)
}

fn outcome_color(outcome: Outcome) -> &'static str {
    OUTCOME_COLORS
        .iter()
        .find(|(o, _)| *o == outcome)
        .map_or(OTHER_FAULT_COLOR, |(_, c)| c)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A tick step, in seconds, giving at most about 12 ticks over `span_s`.
fn tick_step(span_s: f64) -> f64 {
    const STEPS: [f64; 12] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_s / s <= 12.0)
        .unwrap_or_else(|| (span_s / 12.0).ceil())
}

fn latency_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{} ms", us / 1e3)
    } else {
        format!("{us} µs")
    }
}

/// Where a lane's faults are drawn: a node, or the whole cluster for faults naming no node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lane {
    Node(u64),
    Cluster,
}

/// Draws the timeline: a lane per node with its faults (and when it was leader), a time axis,
/// and the latency of every operation on a log scale, coloured by outcome.
pub fn render_svg(info: &RunInfo, records: &Records) -> String {
    let ops = operations(&records.events);
    let intervals = fault_intervals(&records.faults);

    // Time range.
    let last = [
        info.duration_ms.saturating_mul(1000),
        records.events.iter().map(|e| e.time_us).max().unwrap_or(0),
        records.faults.iter().map(|f| f.time_us).max().unwrap_or(0),
        records
            .statuses
            .iter()
            .map(|s| s.time_us)
            .max()
            .unwrap_or(0),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
    .max(1_000_000);
    let plot_width = SVG_WIDTH - LEFT - RIGHT;
    let x = |us: u64| LEFT + plot_width * (us as f64 / last as f64);

    // Lanes.
    let mut nodes: BTreeSet<u64> = (1..=info.nodes).collect();
    nodes.extend(records.statuses.iter().map(|s| s.node));
    nodes.extend(intervals.iter().flat_map(|f| f.nodes.iter().copied()));
    let mut lanes: Vec<Lane> = nodes.into_iter().map(Lane::Node).collect();
    if intervals.iter().any(|f| f.nodes.is_empty()) {
        lanes.push(Lane::Cluster);
    }
    let lane_y = |lane: Lane| -> f64 {
        let i = lanes.iter().position(|l| *l == lane).unwrap_or(0);
        TOP + i as f64 * (LANE_HEIGHT + LANE_GAP)
    };
    let lanes_bottom = TOP + lanes.len() as f64 * (LANE_HEIGHT + LANE_GAP);
    let axis_y = lanes_bottom + 4.0;
    let scatter_top = axis_y + 64.0;
    let scatter_bottom = scatter_top + SCATTER_HEIGHT;
    let legend_y = scatter_bottom + 56.0;
    let height = legend_y + 66.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{height}" viewBox="0 0 {SVG_WIDTH} {height}" font-family="sans-serif" font-size="11" style="background:#ffffff">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(&format!(
            "Tessera chaos run: seed {}, {} nodes, faults: {}",
            info.seed,
            info.nodes,
            if info.faults.is_empty() {
                "none".to_owned()
            } else {
                info.faults.join(", ")
            }
        ))
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="36" fill="#555">faults per node (leader periods from status samples as a black line)</text>"##
    );

    // Grid and time axis.
    let step = tick_step(last as f64 / 1e6);
    let mut tick = 0.0;
    while tick * 1e6 <= last as f64 {
        let tx = x((tick * 1e6) as u64);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{scatter_bottom:.1}" stroke="#e6e6e6"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{axis_y:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#333"/>"##,
            axis_y + 5.0
        );
        for label_y in [axis_y + 17.0, scatter_bottom + 15.0] {
            let _ = writeln!(
                svg,
                r#"<text x="{tx:.1}" y="{label_y:.1}" text-anchor="middle">{tick}</text>"#
            );
        }
        tick += step;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="#333"/>"##,
        LEFT + plot_width
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (s)</text>"#,
        LEFT + plot_width / 2.0,
        axis_y + 31.0
    );

    // Lanes: label, baseline, leader periods, faults.
    for lane in &lanes {
        let y = lane_y(*lane);
        let label = match lane {
            Lane::Node(n) => format!("node {n}"),
            Lane::Cluster => "cluster".to_owned(),
        };
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + LANE_HEIGHT / 2.0 + 4.0,
            escape(&label)
        );
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#f0f0f0" stroke-width="{LANE_HEIGHT}"/>"##,
            y + LANE_HEIGHT / 2.0,
            LEFT + plot_width,
            y + LANE_HEIGHT / 2.0
        );
    }
    for (node, spans) in leader_spans(records) {
        let y = lane_y(Lane::Node(node)) + 2.0;
        for (start, end) in spans {
            let _ = writeln!(
                svg,
                r##"<line class="leader" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#000" stroke-width="3"><title>node {node} leader {} s – {} s</title></line>"##,
                x(start),
                x(end).max(x(start) + 1.0),
                seconds(start),
                seconds(end)
            );
        }
    }
    for interval in &intervals {
        let lanes_hit: Vec<Lane> = if interval.nodes.is_empty() {
            vec![Lane::Cluster]
        } else {
            interval.nodes.iter().map(|n| Lane::Node(*n)).collect()
        };
        let end = interval.end_us.unwrap_or(last);
        let x0 = x(interval.start_us);
        let width = (x(end) - x0).max(2.0);
        let title = format!(
            "{} {} s – {}: {}",
            interval.fault,
            seconds(interval.start_us),
            interval
                .end_us
                .map_or_else(|| "end of run".to_owned(), |e| format!("{} s", seconds(e))),
            interval.detail
        );
        for lane in lanes_hit {
            let y = lane_y(lane) + 5.0;
            let _ = writeln!(
                svg,
                r#"<rect class="fault {}" x="{x0:.1}" y="{y:.1}" width="{width:.1}" height="{:.1}" fill="{}" fill-opacity="0.8"><title>{}</title></rect>"#,
                escape(&interval.fault),
                LANE_HEIGHT - 7.0,
                fault_color(&interval.fault),
                escape(&title)
            );
        }
    }

    // Latency scatter.
    let latencies: Vec<(u64, u64, Outcome)> = ops
        .iter()
        .filter_map(|o| o.latency_us().map(|l| (o.invoke_us, l.max(1), o.outcome)))
        .collect();
    let min_latency = latencies.iter().map(|p| p.1).min().unwrap_or(1000).max(1);
    let max_latency = latencies.iter().map(|p| p.1).max().unwrap_or(1000).max(1);
    let lo_exp = (min_latency as f64).log10().floor();
    let hi_exp = (max_latency as f64).log10().ceil().max(lo_exp + 1.0);
    let y_of = |latency: u64| {
        let f = ((latency as f64).log10() - lo_exp) / (hi_exp - lo_exp);
        scatter_bottom - f * SCATTER_HEIGHT
    };
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{:.1}" fill="#555">operation latency by invoke time (log scale), by outcome; shaded: no ok completion for at least 1 s</text>"##,
        scatter_top - 8.0
    );
    for window in unavailability(&ops) {
        let x0 = x(window.start_us);
        let x1 = x(window.end_us);
        let _ = writeln!(
            svg,
            r##"<polygon class="unavailable" points="{x0:.1},{scatter_top:.1} {x1:.1},{scatter_top:.1} {x1:.1},{scatter_bottom:.1} {x0:.1},{scatter_bottom:.1}" fill="#d6604d" fill-opacity="0.12"><title>unavailable {} s – {} s</title></polygon>"##,
            seconds(window.start_us),
            seconds(window.end_us)
        );
    }
    let mut exp = lo_exp;
    while exp <= hi_exp {
        let value = 10f64.powf(exp);
        let ty = y_of(value as u64);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="#e6e6e6"/>"##,
            LEFT + plot_width
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            ty + 4.0,
            latency_label(value)
        );
        exp += 1.0;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{scatter_top:.1}" x2="{LEFT}" y2="{scatter_bottom:.1}" stroke="#333"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{scatter_bottom:.1}" x2="{:.1}" y2="{scatter_bottom:.1}" stroke="#333"/>"##,
        LEFT + plot_width
    );
    let stride = latencies.len().div_ceil(MAX_POINTS).max(1);
    // Draw ok first so failures stay visible on top.
    for outcome in [Outcome::Ok, Outcome::Info, Outcome::Fail] {
        let color = outcome_color(outcome);
        let _ = writeln!(
            svg,
            r#"<g class="ops {}" fill="{color}" fill-opacity="0.6">"#,
            outcome.name()
        );
        for (invoke, latency, _) in latencies.iter().step_by(stride).filter(|p| p.2 == outcome) {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.8"/>"#,
                x(*invoke),
                y_of(*latency)
            );
        }
        let _ = writeln!(svg, "</g>");
    }

    // Legend.
    let mut lx = LEFT;
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">faults</text>"#,
        legend_y - 14.0
    );
    let mut kinds: Vec<&str> = FAULT_COLORS.iter().map(|(k, _)| *k).collect();
    for interval in &intervals {
        if !kinds.contains(&interval.fault.as_str()) {
            kinds.push(&interval.fault);
        }
    }
    for kind in kinds {
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{}" stroke-width="10"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 18.0,
            fault_color(kind),
            lx + 23.0,
            legend_y + 4.0,
            escape(kind)
        );
        lx += 30.0 + 7.0 * kind.chars().count() as f64;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{lx:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="#000" stroke-width="3"/><text x="{:.1}" y="{:.1}">leader</text>"##,
        lx + 18.0,
        lx + 23.0,
        legend_y + 4.0
    );
    let ly = legend_y + 42.0;
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">operations</text>"#,
        ly - 14.0
    );
    let mut lx = LEFT;
    for (outcome, color) in OUTCOME_COLORS {
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{ly:.1}" r="4" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 5.0,
            lx + 13.0,
            ly + 4.0,
            outcome.name()
        );
        lx += 50.0;
    }
    let _ = writeln!(
        svg,
        r##"<polygon points="{lx:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {lx:.1},{:.1}" fill="#d6604d" fill-opacity="0.12" stroke="#d6604d" stroke-opacity="0.3"/><text x="{:.1}" y="{:.1}">unavailable (no ok completion ≥ 1 s)</text>"##,
        ly - 5.0,
        lx + 16.0,
        ly - 5.0,
        lx + 16.0,
        ly + 5.0,
        ly + 5.0,
        lx + 21.0,
        ly + 4.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Per node, the periods in which its status samples said it was leader (from a leader sample
/// to the node's next sample).
fn leader_spans(records: &Records) -> BTreeMap<u64, Vec<(u64, u64)>> {
    let mut per_node: BTreeMap<u64, Vec<(u64, bool)>> = BTreeMap::new();
    for sample in &records.statuses {
        per_node
            .entry(sample.node)
            .or_default()
            .push((sample.time_us, sample.role.eq_ignore_ascii_case("leader")));
    }
    let mut spans: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for (node, mut samples) in per_node {
        samples.sort_by_key(|s| s.0);
        let mut node_spans: Vec<(u64, u64)> = Vec::new();
        let mut open: Option<u64> = None;
        for (time, leader) in samples {
            match (open, leader) {
                (None, true) => open = Some(time),
                (Some(start), false) => {
                    node_spans.push((start, time));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            let end = records
                .statuses
                .iter()
                .map(|s| s.time_us)
                .max()
                .unwrap_or(start);
            node_spans.push((start, end));
        }
        if !node_spans.is_empty() {
            spans.insert(node, node_spans);
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventKind, OkValue, Op, StatusSample};
    use crate::invariants::{Verdict, Violation};

    fn event(index: u64, time_ms: u64, process: u32, kind: EventKind, op: &Op) -> Event {
        Event {
            index,
            time_us: time_ms * 1000,
            process,
            node: 1,
            kind,
            op: op.clone(),
            value: (kind == EventKind::Ok).then(|| OkValue {
                version: Some(1),
                ..OkValue::default()
            }),
            error: (kind == EventKind::Fail || kind == EventKind::Info).then(|| {
                crate::history::ErrorInfo {
                    code: "UNAVAILABLE".into(),
                    tessera_code: (kind == EventKind::Fail).then(|| "NO_LEASE".into()),
                    message: "m".into(),
                }
            }),
        }
    }

    fn fault(time_ms: u64, fault: &str, phase: &str, nodes: &[u64]) -> FaultEvent {
        FaultEvent {
            time_us: time_ms * 1000,
            fault: fault.into(),
            phase: phase.into(),
            detail: format!("{fault} <{nodes:?}> & co"),
            nodes: nodes.to_vec(),
        }
    }

    fn records() -> Records {
        let enc = Op::Encrypt {
            name: "a".into(),
            plaintext: "aGk=".into(),
        };
        let desc = Op::Describe {
            name: "a".into(),
            linearizable: true,
        };
        let events = vec![
            event(0, 0, 1, EventKind::Invoke, &enc),
            event(1, 10, 1, EventKind::Ok, &enc),
            event(2, 20, 1, EventKind::Invoke, &enc),
            event(3, 50, 1, EventKind::Ok, &enc),
            event(4, 60, 2, EventKind::Invoke, &desc),
            event(5, 1500, 2, EventKind::Fail, &desc),
            event(6, 1600, 1, EventKind::Invoke, &enc),
            event(7, 2000, 1, EventKind::Info, &enc),
            event(8, 2100, 1, EventKind::Invoke, &desc),
            event(9, 2200, 1, EventKind::Ok, &desc),
            event(10, 2300, 2, EventKind::Invoke, &desc),
        ];
        Records {
            events,
            statuses: vec![
                StatusSample {
                    time_us: 0,
                    node: 1,
                    term: 1,
                    role: "leader".into(),
                    leader_id: Some(1),
                    applied_index: 1,
                    state_digest: "x".into(),
                },
                StatusSample {
                    time_us: 1_000_000,
                    node: 1,
                    term: 2,
                    role: "follower".into(),
                    leader_id: Some(2),
                    applied_index: 2,
                    state_digest: "y".into(),
                },
            ],
            faults: vec![
                fault(100, "partition", "start", &[2]),
                fault(200, "kill", "start", &[3]),
                fault(900, "kill", "end", &[3]),
                fault(1000, "partition", "end", &[2]),
                fault(1200, "pause", "start", &[1]),
            ],
        }
    }

    #[test]
    fn stats_count_outcomes_errors_faults_and_unavailability() {
        let stats = Stats::from_records(&records());
        assert_eq!(
            stats.operations["encrypt"],
            OutcomeCounts {
                ok: 2,
                fail: 0,
                info: 1
            }
        );
        assert_eq!(
            stats.operations["describe"],
            OutcomeCounts {
                ok: 1,
                fail: 1,
                info: 1
            }
        );
        assert_eq!(stats.errors["NO_LEASE"], 1);
        assert_eq!(stats.errors["UNAVAILABLE"], 1);
        assert_eq!(stats.errors["NO_COMPLETION"], 1);
        assert_eq!(stats.faults["kill"], 1);
        assert_eq!(stats.faults["partition"], 1);
        assert_eq!(stats.faults["pause"], 1);
        // Ok completions at 10, 50 and 2200 ms; the gap 50 → 2200 ms is the only one ≥ 1 s.
        assert_eq!(
            stats.unavailability,
            vec![Window {
                start_us: 50_000,
                end_us: 2_200_000
            }]
        );
        let enc = stats.latency["encrypt"];
        assert_eq!(
            (enc.count, enc.p50_us, enc.p99_us, enc.max_us),
            (2, 10_000, 30_000, 30_000)
        );
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
    }

    #[test]
    fn fault_intervals_pair_starts_and_ends() {
        let intervals = fault_intervals(&records().faults);
        assert_eq!(intervals.len(), 3);
        assert_eq!(
            (intervals[0].start_us, intervals[0].end_us),
            (100_000, Some(1_000_000))
        );
        assert_eq!(
            (intervals[1].start_us, intervals[1].end_us),
            (200_000, Some(900_000))
        );
        assert_eq!(intervals[2].end_us, None);
    }

    #[test]
    fn the_timeline_is_a_self_contained_svg() {
        let info = RunInfo {
            seed: 7,
            nodes: 3,
            duration_ms: 3000,
            faults: vec!["kill".into(), "partition".into(), "pause".into()],
            lease_window_ms: 1200,
            schedule: Vec::new(),
        };
        let svg = render_svg(&info, &records());
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert_eq!(svg.matches(r#"<rect class="fault kill""#).count(), 1);
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("href"));
        assert!(svg.contains("&lt;[3]&gt; &amp; co"), "details are escaped");
        for lane in ["node 1", "node 2", "node 3"] {
            assert!(svg.contains(lane), "{lane}");
        }
        // Five completed operations, one point each, and three legend dots.
        assert_eq!(svg.matches("<circle").count(), 5 + 3, "{svg}");
        assert!(svg.contains(r#"class="leader""#));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
    }

    #[test]
    fn writes_every_file_and_the_failing_excerpts() {
        let dir = tempfile::tempdir().unwrap();
        let info = RunInfo {
            seed: 42,
            nodes: 3,
            duration_ms: 60_000,
            faults: vec!["kill".into(), "partition".into()],
            lease_window_ms: 1200,
            schedule: vec![ScheduledFault {
                at_ms: 100,
                duration_ms: 900,
                fault: "partition".into(),
                detail: "{2} | {1,3}".into(),
            }],
        };
        let pass = Verdict {
            checker: "convergence",
            source: "Raft",
            ok: true,
            summary: "compared 3 nodes".into(),
            violations: Vec::new(),
        };
        let paths =
            write_report(dir.path(), &info, &records(), std::slice::from_ref(&pass)).unwrap();
        assert!(paths.violations.is_none());
        let text = std::fs::read_to_string(&paths.text).unwrap();
        assert!(text.starts_with("Tessera chaos run: PASS"), "{text}");
        assert!(text.contains(
            "tessera-chaos run --seed 42 --duration 60s --nodes 3 --faults kill,partition"
        ));

        let fail = Verdict {
            checker: "linearizable",
            source: "Herlihy & Wing 1990",
            ok: false,
            summary: "checked 2 register operations".into(),
            violations: vec![Violation {
                message: "stale read".into(),
                events: vec![9],
            }],
        };
        let paths = write_report(dir.path(), &info, &records(), &[pass, fail]).unwrap();
        let text = std::fs::read_to_string(&paths.text).unwrap();
        assert!(
            text.starts_with("Tessera chaos run: FAIL (1 of 2 checkers failed)"),
            "{text}"
        );
        assert!(text.contains("  FAIL linearizable"), "{text}");
        assert!(text.contains("- stale read [events 9]"), "{text}");
        assert!(
            text.contains("#8 "),
            "the invoke of event 9 is in the excerpt: {text}"
        );
        assert!(text.contains("encrypt"), "{text}");
        let lines = std::fs::read_to_string(paths.violations.unwrap()).unwrap();
        assert_eq!(lines.lines().count(), 1);
        let line: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
        assert_eq!(line["checker"], "linearizable");
        assert_eq!(line["history"].as_array().unwrap().len(), 2);
        assert_eq!(line["history"][0]["index"], 8);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(paths.json).unwrap()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["info"]["seed"], 42);
        assert_eq!(json["stats"]["operations"]["encrypt"]["ok"], 2);
        assert_eq!(json["verdicts"][1]["violations"][0]["events"][0], 9);
        assert!(std::fs::read_to_string(paths.timeline)
            .unwrap()
            .starts_with("<svg"));
    }
}
