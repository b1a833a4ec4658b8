//! `timeline.svg`: a lane per node with its faults and leader periods, and the latency of
//! every operation on a log scale.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use tessera_chart::{escape, Frame, LogScale};

use super::stats::{fault_intervals, unavailability};
use super::text::seconds;
use super::RunInfo;
use crate::history::Records;
use crate::invariants::{operations, Outcome};

const SVG_WIDTH: f64 = 1200.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const LANE_HEIGHT: f64 = 22.0;
const LANE_GAP: f64 = 6.0;
const TOP: f64 = 44.0;
const SCATTER_HEIGHT: f64 = 280.0;
/// Most points drawn in the latency scatter (more are thinned evenly).
const MAX_POINTS: usize = 20_000;

const FAULT_COLORS: [(&str, &str); 7] = [
    ("kill", "#b2182b"),
    ("pause", "#7b3294"),
    ("partition", "#e08214"),
    ("delay", "#35978f"),
    ("drop", "#8c510a"),
    ("restart", "#1b7837"),
    ("region", "#c51b7d"),
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
    // The latency scatter; its time axis is the lanes' too.
    let scatter = Frame {
        left: LEFT,
        top: axis_y + 64.0,
        width: SVG_WIDTH - LEFT - RIGHT,
        height: SCATTER_HEIGHT,
    };
    let (scatter_top, scatter_bottom) = (scatter.top, scatter.bottom());
    let x = |us: u64| scatter.x(us as f64 / last as f64);
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
        scatter.right()
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (s)</text>"#,
        LEFT + scatter.width / 2.0,
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
            scatter.right(),
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
        let name = interval.fault.event_name();
        let title = format!(
            "{} {} s – {}: {}",
            name,
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
                escape(name),
                LANE_HEIGHT - 7.0,
                fault_color(name),
                escape(&title)
            );
        }
    }

    // Latency scatter.
    let latencies: Vec<(u64, u64, Outcome)> = ops
        .iter()
        .filter_map(|o| o.latency_us().map(|l| (o.invoke_us, l.max(1), o.outcome)))
        .collect();
    let min_latency = latencies.iter().map(|p| p.1).min().unwrap_or(1000);
    let max_latency = latencies.iter().map(|p| p.1).max().unwrap_or(1000);
    let scale = LogScale::spanning(min_latency as f64, max_latency as f64, 1.0);
    let y_of = |latency: f64| scatter.y(scale.fraction(latency));
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
    for value in scale.decades() {
        let ty = y_of(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="#e6e6e6"/>"##,
            scatter.right()
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            ty + 4.0,
            latency_label(value)
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{scatter_top:.1}" x2="{LEFT}" y2="{scatter_bottom:.1}" stroke="#333"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{scatter_bottom:.1}" x2="{:.1}" y2="{scatter_bottom:.1}" stroke="#333"/>"##,
        scatter.right()
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
                y_of(*latency as f64)
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
        let name = interval.fault.event_name();
        if !kinds.contains(&name) {
            kinds.push(name);
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
