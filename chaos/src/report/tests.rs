use super::stats::*;
use super::svg::*;
use super::*;
use crate::history::{EventKind, FaultEvent, OkValue, Op, Phase, StatusSample};
use crate::invariants::{Verdict, Violation};
use crate::schedule::FaultKind;
use tessera_state::KeyVersion;

fn event(index: u64, time_ms: u64, process: u32, kind: EventKind, op: &Op) -> Event {
    Event {
        index,
        time_us: time_ms * 1000,
        process,
        node: 1,
        kind,
        op: op.clone(),
        value: (kind == EventKind::Ok).then(|| OkValue {
            version: Some(KeyVersion::FIRST),
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

fn fault(time_ms: u64, fault: FaultKind, phase: Phase, nodes: &[u64]) -> FaultEvent {
    FaultEvent {
        time_us: time_ms * 1000,
        fault,
        phase,
        detail: format!("{} <{nodes:?}> & co", fault.event_name()),
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
            fault(100, FaultKind::Partition, Phase::Start, &[2]),
            fault(200, FaultKind::Kill, Phase::Start, &[3]),
            fault(900, FaultKind::Kill, Phase::End, &[3]),
            fault(1000, FaultKind::Partition, Phase::End, &[2]),
            fault(1200, FaultKind::Pause, Phase::Start, &[1]),
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
        ..RunInfo::default()
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
        ..RunInfo::default()
    };
    let pass = Verdict {
        checker: "convergence",
        source: "Raft",
        ok: true,
        summary: "compared 3 nodes".into(),
        violations: Vec::new(),
    };
    let paths = write_report(dir.path(), &info, &records(), std::slice::from_ref(&pass)).unwrap();
    assert!(paths.violations.is_none());
    let text = std::fs::read_to_string(&paths.text).unwrap();
    assert!(text.starts_with("Tessera chaos run: PASS"), "{text}");
    assert!(text
        .contains("tessera-chaos run --seed 42 --duration 60s --nodes 3 --faults kill,partition"));

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

#[test]
fn the_reproduce_command_keeps_topology_wan_delay_and_no_faults() {
    let info = RunInfo {
        seed: 2026,
        nodes: 5,
        duration_ms: 300_000,
        topology: Some("2+2+1".into()),
        wan_delay_ms: 50,
        ..RunInfo::default()
    };
    assert_eq!(
        text::reproduce_command(&info),
        "tessera-chaos run --seed 2026 --duration 300s --topology 2+2+1 --wan-delay 50ms \
         --faults none"
    );
}
