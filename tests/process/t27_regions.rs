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

/// `REGION=https://…` for every node, each labelled with the region its `Status` reports:
/// the endpoints as a multi-region client is given them.
async fn regional_endpoints(cluster: &TestCluster) -> Vec<String> {
    let mut endpoints = Vec::new();
    for node in &cluster.nodes {
        let region = cluster.client(node.id).status().await.unwrap().region;
        endpoints.push(format!("{region}={}", node.api_addr));
    }
    endpoints
}

async fn regional_client(cluster: &TestCluster, region: &str) -> Client {
    let pki = cluster.pki();
    Client::builder()
        .endpoints(regional_endpoints(cluster).await)
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
    let endpoints = regional_endpoints(&cluster).await;
    let client = regional_client(&cluster, "region-2").await;

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
        .env("TESSERA_ADDR", endpoints.join(","))
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

#[tokio::test]
async fn t27_losing_a_whole_region_of_a_2_2_1_cluster_surfaces_no_error_and_it_catches_up() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::with_nodes(5)).await;
    // The test kit labels nodes round robin: region-1 {1, 4}, region-2 {2, 5}, region-3 {3}.
    let mut layout = BTreeMap::<String, Vec<u64>>::new();
    for id in cluster.ids() {
        let region = cluster.client(id).status().await.unwrap().region;
        layout.entry(region).or_default().push(id);
    }
    assert_eq!(
        layout.values().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 1],
        "{layout:?}"
    );
    let lost = layout["region-1"].clone();
    cluster.client(2).create_key("geo", "", "").await.unwrap();

    // A client in region-1 runs encrypts and key creations throughout.
    let client = std::sync::Arc::new(regional_client(&cluster, "region-1").await);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workload = tokio::spawn({
        let (client, done, stop) = (client.clone(), done.clone(), stop.clone());
        async move {
            let mut created = Vec::new();
            let mut errors = Vec::new();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let result = if i % 5 == 0 {
                    let name = format!("during-{i}");
                    let r = client.create_key(&name, "", "").await.map(|_| ());
                    if r.is_ok() {
                        created.push(name);
                    }
                    r
                } else {
                    client
                        .encrypt("geo", b"regional", &BTreeMap::new())
                        .await
                        .map(|_| ())
                };
                if let Err(e) = result {
                    errors.push(format!("op {i}: {e}"));
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i += 1;
            }
            (created, errors)
        }
    });
    let progress = |at_least: u64, what: &'static str| {
        let done = done.clone();
        async move {
            wait_for(what, Duration::from_secs(120), || async {
                let n = done.load(std::sync::atomic::Ordering::Relaxed);
                if n >= at_least {
                    Ok(())
                } else {
                    Err(format!("{n} operations so far"))
                }
            })
            .await;
        }
    };
    progress(30, "the workload to run").await;

    // SIGKILL the whole region: the other three nodes keep a majority.
    for &id in &lost {
        cluster.kill(id);
    }
    let at_kill = done.load(std::sync::atomic::Ordering::Relaxed);
    progress(at_kill + 60, "the workload to go on without region-1").await;

    // Region-1 comes back, catches up and serves.
    for &id in &lost {
        cluster.restart(id).await;
        cluster.unseal(id).await;
    }
    for &id in &lost {
        cluster.wait_serving(id).await;
    }
    let back = done.load(std::sync::atomic::Ordering::Relaxed);
    progress(back + 30, "the workload to go on with region-1 back").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (created, errors) = workload.await.unwrap();
    assert!(
        errors.is_empty(),
        "errors surfaced to the caller: {errors:?}"
    );
    assert!(created.len() >= 20, "{} keys created", created.len());
    for &id in &lost {
        let node = cluster.client(id);
        wait_for(
            "a returning node to hold every key created while it was away",
            Duration::from_secs(60),
            || async {
                let names: Vec<String> = node
                    .list_keys()
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|k| k.name)
                    .collect();
                match created.iter().find(|c| !names.contains(c)) {
                    None => Ok(()),
                    Some(missing) => Err(format!("node {id} lacks {missing}")),
                }
            },
        )
        .await;
    }
}
