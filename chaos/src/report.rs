//! The run report: `report.json` (run info, statistics, verdicts), `report.txt` (a readable
//! summary with the failing history excerpts and how to reproduce the run), `timeline.svg`
//! (faults per node and operation latencies over time) and, when a checker failed,
//! `violations.jsonl` (one line per violation with the history events it names).

pub(crate) mod stats;
mod svg;
#[cfg(test)]
mod tests;
mod text;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::history::{Event, Records};
use crate::invariants::Verdict;

pub use stats::{
    fault_intervals, FaultInterval, LatencyStats, OutcomeCounts, Stats, Window,
    UNAVAILABILITY_MIN_US,
};
pub use svg::render_svg;
pub use text::reproduce_command;
use text::{render_text, Excerpts};

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
    /// Region sizes given with `--topology` (`2+2+1`); absent for nodes spread over regions.
    #[serde(default)]
    pub topology: Option<String>,
    /// One-way delay between regions (`--wan-delay`), milliseconds; 0 for none.
    #[serde(default)]
    pub wan_delay_ms: u64,
    /// When the harness began healing and restarting every node, microseconds since the
    /// run started.
    #[serde(default)]
    pub healed_at_us: Option<u64>,
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
