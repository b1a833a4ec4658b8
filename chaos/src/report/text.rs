//! `report.txt`: the readable summary, failing history excerpts and the reproduce command.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use super::stats::Stats;
use super::RunInfo;
use crate::history::Event;
use crate::invariants::{operations, Verdict};

/// Looks up events and the operations they belong to.
pub(super) struct Excerpts<'a> {
    events: HashMap<u64, &'a Event>,
    /// Event index → the indexes of its operation's events.
    partners: HashMap<u64, Vec<u64>>,
}

impl<'a> Excerpts<'a> {
    pub(super) fn new(history: &'a [Event]) -> Self {
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
    pub(super) fn excerpt(&self, named: &[u64]) -> Vec<&'a Event> {
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

pub(super) fn seconds(us: u64) -> String {
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
        "tessera-chaos run --seed {} --duration {}",
        info.seed,
        duration_flag(info.duration_ms),
    );
    match &info.topology {
        Some(topology) => command.push_str(&format!(" --topology {topology}")),
        None => command.push_str(&format!(" --nodes {}", info.nodes)),
    }
    if info.wan_delay_ms > 0 {
        command.push_str(&format!(" --wan-delay {}ms", info.wan_delay_ms));
    }
    if info.faults.is_empty() {
        command.push_str(" --faults none");
    } else {
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

pub(super) fn render_text(
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
    let topology = match &info.topology {
        Some(sizes) => format!(" in regions of {sizes}"),
        None => String::new(),
    };
    let wan = if info.wan_delay_ms > 0 {
        format!(", {} ms one-way between regions", info.wan_delay_ms)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "seed {}, {} nodes{topology}{wan}, {} s, faults: {}, lease window {} ms",
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
