//! The latency chart: one panel per comparison (same target and concurrency), one curve per
//! workload, latency (log scale) against percentile (0, 90, 99, 99.9, 99.99 evenly spaced).
//! A plain SVG file a browser opens; no plotting dependency.

use std::fmt::Write as _;

use tessera_chart::{escape, Frame, LogScale};

use crate::report::{Report, Workload};

const PANEL_W: f64 = 440.0;
const PANEL_H: f64 = 280.0;
/// Where the plot sits in a panel whose top left corner is at (0, 0).
const PLOT: Frame = Frame {
    left: 56.0,
    top: 28.0,
    width: 250.0,
    height: 200.0,
};
const COLUMNS: usize = 3;
/// Room right of the last column for its legend.
const LEGEND_W: f64 = 120.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
/// Highest x: the 99.99th percentile.
const X_MAX: f64 = 4.0;

/// The panel a workload is drawn in; echo appears in both crypto panels of its C.
fn panels_of(w: &Workload) -> Vec<String> {
    let c = w.concurrency;
    match (w.system, w.target) {
        ("echo", _) => vec![format!("one node, C={c}"), format!("spread, C={c}")],
        ("etcd", _) => vec![format!("writes, C={c}")],
        (_, "leader") => vec![format!("writes, C={c}")],
        (_, "policy") => vec![format!("policy, C={c}")],
        (_, "one-node") => vec![format!("one node, C={c}")],
        (_, target) => vec![format!("{target}, C={c}")],
    }
}

/// x of quantile `q`: the number of nines.
fn x_of(q: f64) -> f64 {
    if q <= 0.0 {
        0.0
    } else {
        (-(1.0 - q).max(1e-4).log10()).clamp(0.0, X_MAX)
    }
}

/// The chart of every workload's latency curve.
#[must_use]
pub fn chart(report: &Report) -> String {
    let mut panels: Vec<(String, Vec<&Workload>)> = Vec::new();
    for w in &report.workloads {
        for title in panels_of(w) {
            match panels.iter_mut().find(|(t, _)| *t == title) {
                Some((_, list)) => list.push(w),
                None => panels.push((title, vec![w])),
            }
        }
    }
    let rows = panels.len().div_ceil(COLUMNS).max(1);
    let width = PANEL_W * COLUMNS as f64 + LEGEND_W;
    let height = PANEL_H * rows as f64 + 40.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="14">tessera bench {}: latency (ms, log scale) by percentile — {} cores, {}</text>"#,
        escape(&report.started),
        report.machine.cores,
        escape(&report.machine.cpu_model)
    );
    for (i, (title, workloads)) in panels.iter().enumerate() {
        let x0 = PANEL_W * (i % COLUMNS) as f64;
        let y0 = 40.0 + PANEL_H * (i / COLUMNS) as f64;
        panel(&mut svg, x0, y0, title, workloads);
    }
    svg.push_str("</svg>\n");
    svg
}

fn panel(svg: &mut String, x0: f64, y0: f64, title: &str, workloads: &[&Workload]) {
    let values = workloads
        .iter()
        .flat_map(|w| w.curve.iter().map(|&(_, ms)| ms));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| {
        (lo.min(v.max(0.001)), hi.max(v.max(0.001)))
    });
    let (lo, hi) = if lo > hi { (0.1, 10.0) } else { (lo, hi) };
    let scale = LogScale::spanning(lo, hi, 0.001);
    let plot = Frame {
        left: x0 + PLOT.left,
        top: y0 + PLOT.top,
        ..PLOT
    };
    let px = |x: f64| plot.x(x / X_MAX);
    let py = |ms: f64| plot.y(scale.fraction(ms.max(0.001)));
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" font-size="12" font-weight="bold">{}</text><rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
        plot.left,
        plot.top - 8.0,
        escape(title),
        plot.left,
        plot.top,
        plot.width,
        plot.height
    );
    for (x, label) in [
        (0.0, "0"),
        (1.0, "90"),
        (2.0, "99"),
        (3.0, "99.9"),
        (4.0, "99.99"),
    ] {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">{label}</text>"##,
            px(x),
            plot.bottom() + 14.0
        );
    }
    for ms in scale.decades() {
        let y = py(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end" fill="#555">{ms}</text>"##,
            px(0.0),
            px(X_MAX),
            px(0.0) - 4.0,
            y + 4.0
        );
    }
    for (i, w) in workloads.iter().enumerate() {
        let color = COLORS.get(i % COLORS.len()).copied().unwrap_or("#000");
        let points: Vec<String> = w
            .curve
            .iter()
            .map(|&(q, ms)| format!("{:.1},{:.1}", px(x_of(q)), py(ms)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" fill="{color}">{} ({:.0}/s)</text>"#,
            points.join(" "),
            plot.right() + 8.0,
            plot.top + 10.0 + 14.0 * i as f64,
            escape(&w.call_label()),
            w.ops_per_s
        );
    }
}

impl Workload {
    /// The short label of a curve in its panel.
    fn call_label(&self) -> String {
        match self.system {
            "tessera" => self.call.clone(),
            system if system == self.call => system.to_owned(),
            system => format!("{system} {}", self.call),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_map_to_nines() {
        assert!((x_of(0.0)).abs() < 1e-9);
        assert!((x_of(0.99) - 2.0).abs() < 1e-9);
        assert!((x_of(0.999) - 3.0).abs() < 1e-6);
        assert!((x_of(1.0) - 4.0).abs() < 1e-9);
    }
}
