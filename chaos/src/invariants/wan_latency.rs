//! Across delayed regions, writes commit and crypto stays local.
//!
//! Property (`docs/operations.md`, "Placement across regions" and "WAN timing profile"): with
//! the WAN profile and about 100 ms between regions, writes commit, and a client in a region
//! is served by a node of its own region — followers serve crypto from their lease — so its
//! encrypt latency does not include a cross-region round trip. Checked from the WAN probe the
//! harness runs before the workload (see [`crate::wan`]): the round trip it measured across
//! regions is at least twice the injected one-way delay (the delay was really there), every
//! create of every region's client committed, and every region's median encrypt latency is
//! below half that measured round trip. Runs without a WAN delay pass with nothing to check.

use super::{CheckInput, Checker, Findings, Violation};

/// The wan-latency checker.
pub const CHECKER: Checker = Checker {
    name: "wan-latency",
    source: "docs/operations.md, placement across regions and the WAN timing profile",
    run,
};

fn run(input: &CheckInput<'_>) -> Findings {
    let Some(wan) = &input.final_state.wan else {
        return ("no WAN delay in this run".into(), Vec::new());
    };
    let mut violations = Vec::new();
    let mut fail = |message: String| violations.push(Violation::without_events(message));
    let floor = (wan.one_way_delay_ms * 2) as f64;
    if wan.rtt_p50_ms < floor {
        fail(format!(
            "the measured round trip across regions ({:.1} ms) is below twice the injected \
                 one-way delay ({floor:.0} ms): the delay was not applied",
            wan.rtt_p50_ms
        ));
    }
    let bound = wan.rtt_p50_ms / 2.0;
    for r in &wan.regions {
        if r.writes_committed < r.writes_attempted || r.writes_attempted == 0 {
            fail(format!(
                "region-{}: {} of {} writes through node {} committed",
                r.region, r.writes_committed, r.writes_attempted, r.node
            ));
        }
        if r.encrypts_ok == 0 {
            fail(format!(
                "region-{}: no encrypt through node {} succeeded",
                r.region, r.node
            ));
        } else if r.encrypt_p50_ms >= bound {
            fail(format!(
                "region-{}: median encrypt through node {} took {:.1} ms, not below half the \
                     measured round trip across regions ({bound:.1} ms)",
                r.region, r.node, r.encrypt_p50_ms
            ));
        }
    }
    let regions: Vec<String> = wan
        .regions
        .iter()
        .map(|r| {
            format!(
                "region-{} (node {}{}): encrypt p50 {:.1} ms, write p50 {:.1} ms, {}/{} writes",
                r.region,
                r.node,
                if r.node_was_leader { ", leader" } else { "" },
                r.encrypt_p50_ms,
                r.write_p50_ms,
                r.writes_committed,
                r.writes_attempted
            )
        })
        .collect();
    let summary = format!(
        "one-way delay {} ms, measured round trip p50 {:.1} ms over {} calls; {}",
        wan.one_way_delay_ms,
        wan.rtt_p50_ms,
        wan.rtt_samples,
        regions.join("; ")
    );
    (summary, violations)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::invariants::testing::{assert_summary_contains, input};
    use crate::invariants::{FinalState, Verdict};
    use crate::wan::{RegionLatency, WanProbe};

    fn region(region: u64, encrypt_p50_ms: f64, writes_committed: usize) -> RegionLatency {
        RegionLatency {
            region,
            node: region,
            node_was_leader: false,
            writes_committed,
            writes_attempted: 5,
            write_p50_ms: 120.0,
            encrypts_ok: 50,
            encrypts_attempted: 50,
            encrypt_p50_ms,
        }
    }

    fn run(rtt_p50_ms: f64, regions: Vec<RegionLatency>) -> Verdict {
        let final_state = FinalState {
            wan: Some(WanProbe {
                one_way_delay_ms: 50,
                rtt_p50_ms,
                rtt_samples: 20,
                regions,
            }),
            ..FinalState::default()
        };
        CHECKER.check(&input(&final_state))
    }

    #[test]
    fn local_crypto_and_committed_writes_pass() {
        let v = run(104.0, vec![region(1, 3.0, 5), region(2, 4.5, 5)]);
        assert!(v.ok, "{v:?}");
        assert_summary_contains(&v, "round trip p50 104.0 ms");
    }

    #[test]
    fn remote_crypto_lost_writes_or_a_missing_delay_fail() {
        assert!(
            !run(104.0, vec![region(1, 60.0, 5)]).ok,
            "encrypt crossed regions"
        );
        assert!(
            !run(104.0, vec![region(1, 3.0, 4)]).ok,
            "a write did not commit"
        );
        assert!(
            !run(2.0, vec![region(1, 0.5, 5)]).ok,
            "no delay was injected"
        );
    }

    #[test]
    fn runs_without_a_wan_delay_have_nothing_to_check() {
        let v = CHECKER.check(&input(&FinalState::default()));
        assert!(v.ok);
    }
}
