//! Region-aware clients against a three-node cluster whose nodes are labelled region-1,
//! region-2 and region-3 (the test kit's labels): calls stay in the client's region while it
//! serves, fail over to the others with no error surfaced when it dies, and come back once it
//! serves again; `operator status` with several endpoints reports every one of them.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use tessera_client::Client;
use tessera_testkit::{wait_for, ClusterOptions, TestCluster};

use crate::t38_audit::records;
use crate::tessera;

/// Node `id`'s audit records of `Encrypt` calls.
fn encrypts_recorded(cluster: &TestCluster, id: u64) -> usize {
    records(cluster, id)
        .iter()
        .filter(|r| {
            r["method"]
                .as_str()
                .is_some_and(|m| m.ends_with("/Encrypt"))
        })
        .count()
}

/// `region-N=https://…` for every node: the endpoints as a multi-region client is given them.
fn regional_endpoints(cluster: &TestCluster) -> Vec<String> {
    cluster
        .nodes
        .iter()
        .map(|n| format!("region-{}={}", n.id, n.api_addr))
        .collect()
}

fn regional_client(cluster: &TestCluster, region: &str) -> Client {
    let pki = cluster.pki();
    Client::builder()
        .endpoints(regional_endpoints(cluster))
        .region(region)
        .ca_cert_file(pki.join("ca.pem"))
        .identity_files(pki.join("admin.pem"), pki.join("admin-key.pem"))
        .build()
        .unwrap()
}

async fn encrypt_n(client: &Client, n: usize) {
    for i in 0..n {
        client
            .encrypt("geo", format!("record {i}").as_bytes(), &BTreeMap::new())
            .await
            .unwrap_or_else(|e| panic!("encrypt {i} surfaced an error: {e}"));
    }
}

/// Encrypt records per node, in node order.
fn counts(cluster: &TestCluster) -> Vec<usize> {
    cluster
        .ids()
        .iter()
        .map(|&id| encrypts_recorded(cluster, id))
        .collect()
}

#[tokio::test]
async fn t27_a_client_stays_in_its_region_fails_over_without_errors_and_comes_back() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    for id in cluster.ids() {
        assert_eq!(
            cluster.client(id).status().await.unwrap().region,
            format!("region-{id}")
        );
    }
    cluster.client(1).create_key("geo", "", "").await.unwrap();
    let client = regional_client(&cluster, "region-2");

    // While region-2 serves, every call is served there.
    let before = counts(&cluster);
    encrypt_n(&client, 40).await;
    let after = counts(&cluster);
    assert_eq!(after[1] - before[1], 40, "{before:?} → {after:?}");
    assert_eq!((after[0], after[2]), (before[0], before[2]), "{after:?}");

    // Region-2 dies: the calls go elsewhere, and the caller sees no error.
    cluster.kill(2);
    let before = counts(&cluster);
    encrypt_n(&client, 40).await;
    let after = counts(&cluster);
    assert_eq!(
        (after[0] - before[0]) + (after[2] - before[2]),
        40,
        "{before:?} → {after:?}"
    );

    // `operator status` with every endpoint reports the dead one as unreachable and the
    // others as they are.
    let pki = cluster.pki();
    let out = Command::new(tessera())
        .args(["operator", "status", "-o", "json"])
        .env("TESSERA_ADDR", regional_endpoints(&cluster).join(","))
        .env("TESSERA_CA_CERT", pki.join("ca.pem"))
        .env("TESSERA_CLIENT_CERT", pki.join("admin.pem"))
        .env("TESSERA_CLIENT_KEY", pki.join("admin-key.pem"))
        .env_remove("TESSERA_OUTPUT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let endpoints = document["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 3, "{document}");
    for (i, e) in endpoints.iter().enumerate() {
        assert_eq!(e["region"], format!("region-{}", i + 1), "{document}");
        assert_eq!(e["reachable"], i != 1, "{document}");
    }
    assert_eq!(endpoints[1]["error"]["code"], "UNAVAILABLE", "{document}");
    assert_eq!(
        document["node_id"], 1,
        "the first answering node's status: {document}"
    );

    // Region-2 comes back: once it serves, the client returns to it.
    cluster.restart(2).await;
    cluster.unseal(2).await;
    cluster.wait_serving(2).await;
    let back = counts(&cluster)[1];
    wait_for(
        "the client to return to its region",
        Duration::from_secs(30),
        || async {
            encrypt_n(&client, 1).await;
            if counts(&cluster)[1] > back {
                Ok(())
            } else {
                Err(format!("still served elsewhere: {:?}", counts(&cluster)))
            }
        },
    )
    .await;
    let before = counts(&cluster);
    encrypt_n(&client, 20).await;
    let after = counts(&cluster);
    assert_eq!(after[1] - before[1], 20, "{before:?} → {after:?}");
}
