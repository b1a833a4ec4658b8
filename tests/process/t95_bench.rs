//! `tessera bench --quick`: the smoke run CI does. Checks that every workload ran and
//! reported numbers; no timing is asserted.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tessera_testkit::{ClusterOptions, TestCluster};

use crate::{assert_success, tessera};

/// Generous: the smoke run takes well under a minute on an idle machine.
const BOUND: Duration = Duration::from_secs(600);

fn expected_workloads() -> Vec<String> {
    let cs = [1, 16, 64];
    let mut names: Vec<String> = cs.iter().map(|c| format!("echo one-node c{c}")).collect();
    for call in ["encrypt", "decrypt", "generate-data-key", "sign", "mac"] {
        for target in ["one-node", "spread"] {
            names.extend(cs.iter().map(|c| format!("{call} {target} c{c}")));
        }
    }
    names.push("encrypt-0-statements policy c16".into());
    names.push("encrypt-50-statements policy c16".into());
    for call in ["create-key", "rotate-key"] {
        names.extend(cs.iter().map(|c| format!("{call} leader c{c}")));
    }
    names.push("encrypt with-keys c64".into());
    names
}

#[tokio::test]
async fn t95_bench_quick_reports_every_workload_with_operations() {
    // Shares the cluster lock: the bench's cluster is as heavy as a test cluster.
    let _serial = TestCluster::start(tessera(), ClusterOptions::with_nodes(1)).await;
    let child = tokio::process::Command::new(tessera())
        .args(["bench", "--quick", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .expect("tessera bench --quick did not finish")
        .unwrap();
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["quick"], true);

    let workloads = report["workloads"].as_array().unwrap();
    for name in expected_workloads() {
        let w = workloads
            .iter()
            .find(|w| w["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no workload {name:?} in {workloads:#?}"));
        assert!(
            w["ops"].as_u64().unwrap() > 0,
            "{name}: no operations: {w:#}"
        );
        assert!(w["ops_per_s"].as_f64().unwrap() > 0.0, "{name}: {w:#}");
        assert!(w["p50_ms"].as_f64().unwrap() > 0.0, "{name}: {w:#}");
    }
    // Crypto calls carry their echo reference; the policy set its ratio.
    let encrypt = workloads
        .iter()
        .find(|w| w["name"] == "encrypt one-node c1")
        .unwrap();
    assert_eq!(encrypt["reference"], "echo one-node c1");
    assert!(encrypt["ratio_ops"].as_f64().unwrap() > 0.0);
    assert!(report["policy"]["ratio_ops"].as_f64().unwrap() > 0.0);

    let failover = &report["failover"];
    assert_eq!(failover["tries_s"].as_array().unwrap().len(), 1);
    assert!(failover["median_s"].as_f64().unwrap() > 0.0);
    assert_eq!(report["keys"]["created"], 200);
    let restart = &report["restart"];
    for stage in ["listening_s", "unsealed_s", "serving_s"] {
        assert!(
            restart[stage].as_f64().unwrap() > 0.0,
            "{stage}: {restart:#}"
        );
    }
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        assert!(node["rss_idle_mib"].as_f64().unwrap() > 0.0, "{node:#}");
        assert!(node["rss_load_mib"].as_f64().unwrap() > 0.0, "{node:#}");
        assert!(node["data_dir_mb"].as_f64().unwrap() > 0.0, "{node:#}");
    }
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(report["load_cpu_s"].as_f64().unwrap() > 0.0);
}
