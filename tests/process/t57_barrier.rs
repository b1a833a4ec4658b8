//! Barrier rotation with re-seal and retirement, and rekey, on real processes: data encrypted
//! before every step decrypts on every node after it, and after a full-cluster restart only
//! the new shares unseal.

use std::collections::BTreeMap;

use serde_json::Value;
use tessera_proto::v1 as pb;
use tessera_raft::state_machine::StateMachineStore;
use tessera_state::barrier::blob_term;
use tessera_state::BarrierTerms;
use tessera_testkit::cluster::WAIT;
use tessera_testkit::{past_unavailability, wait_for, ClusterOptions, NodeFiles, TestCluster};

use crate::api::{create, crypto, encrypt, keys, write};
use crate::t60_cli::{error_document, Cli};
use crate::tessera;

/// Every ciphertext decrypts to its plaintext on every node.
async fn all_decrypt_everywhere(cluster: &TestCluster, sealed: &[(Vec<u8>, Vec<u8>)]) {
    for id in cluster.ids() {
        for (plaintext, ciphertext) in sealed {
            let client = crypto(cluster, id);
            let reply = past_unavailability("decrypt", || {
                let mut client = client.clone();
                let ciphertext = ciphertext.clone();
                async move {
                    client
                        .decrypt(pb::DecryptRequest {
                            ciphertext,
                            context: BTreeMap::new(),
                        })
                        .await
                }
            })
            .await
            .unwrap_or_else(|s| panic!("decrypt on node {id}: {s:?}"))
            .into_inner();
            assert_eq!(&reply.plaintext, plaintext, "node {id}");
        }
    }
}

/// The barrier part of `operator status` once `reseal_left` is empty on every node.
async fn wait_resealed(cluster: &TestCluster, cli: &Cli, active: u64) {
    wait_for("the re-seal job to finish", WAIT, || async {
        let status = cli.json(&["operator", "status", "-o", "json"], b"");
        let barrier = &status["barrier"];
        let done = barrier["active_term"] == active
            && barrier["reseal_left"]
                .as_object()
                .is_some_and(|m| m.is_empty());
        if done {
            Ok(())
        } else {
            Err(format!("barrier status {barrier}"))
        }
    })
    .await;
    // Every node has applied the last re-seal batch.
    cluster
        .wait_status_all("see the re-seal done", |status| {
            if status.reseal_left.is_empty() && u64::from(status.barrier_active_term) == active {
                Ok(())
            } else {
                Err(format!("{:?}", status.reseal_left))
            }
        })
        .await;
}

/// The barrier terms, blob terms and Shamir parameters in a stopped node's store.
fn stored_barrier(cluster: &TestCluster, node: u64) -> (BarrierTerms, Vec<u32>, (u8, u8)) {
    let path = cluster.node(node).data_dir().join("raft");
    let db = sled::Config::new().path(&path).open().unwrap();
    let db = tessera_raft::durable::DurableDb::open(db, &path).unwrap();
    let store = StateMachineStore::open(&db).unwrap();
    let shared = store.shared();
    let applied = shared.read();
    let state = &applied.state;
    let terms = state
        .keys_by_name()
        .flat_map(|k| k.versions.iter())
        .filter_map(|v| v.sealed_material.as_deref().and_then(blob_term))
        .collect();
    let seal = state.seal_config().unwrap();
    (state.barrier_terms(), terms, (seal.shares, seal.threshold))
}

#[tokio::test]
async fn t57_rotate_reseal_retire_and_rekey() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let cli = Cli::for_cluster(&cluster);

    // Material under several keys and versions, all sealed under term 1.
    let mut sealed = Vec::new();
    for (i, name) in ["alpha", "beta", "gamma"].into_iter().enumerate() {
        create(&cluster, 1, name, "").await;
        let plaintext = format!("{name} v1").into_bytes();
        sealed.push((
            plaintext.clone(),
            encrypt(&cluster, 2, name, &plaintext).await.ciphertext,
        ));
        if i > 0 {
            keys(&cluster, 1).rotate_key(write(name)).await.unwrap();
            let plaintext = format!("{name} v2").into_bytes();
            sealed.push((
                plaintext.clone(),
                encrypt(&cluster, 3, name, &plaintext).await.ciphertext,
            ));
        }
    }
    let before = cli.json(&["operator", "status", "-o", "json"], b"");
    assert_eq!(before["barrier"]["active_term"], 1, "{before}");
    assert_eq!(before["barrier"]["oldest_term"], 1, "{before}");

    // Rotate: a new term; the re-seal job moves the five blobs to it.
    let rotated = cli.json(&["operator", "rotate", "-o", "json"], b"");
    assert_eq!(rotated["active_term"], 2, "{rotated}");
    assert_eq!(rotated["oldest_term"], 1, "{rotated}");
    wait_resealed(&cluster, &cli, 2).await;
    all_decrypt_everywhere(&cluster, &sealed).await;

    // Retire term 1; everything still decrypts, and new versions are sealed under term 2.
    let retired = cli.json(&["operator", "rotate", "--retire-old", "-o", "json"], b"");
    assert_eq!(
        retired["retired_terms"],
        serde_json::json!([1]),
        "{retired}"
    );
    assert_eq!(retired["oldest_term"], 2, "{retired}");
    all_decrypt_everywhere(&cluster, &sealed).await;
    keys(&cluster, 2).rotate_key(write("alpha")).await.unwrap();
    let plaintext = b"alpha v2 after retirement".to_vec();
    sealed.push((
        plaintext.clone(),
        encrypt(&cluster, 1, "alpha", &plaintext).await.ciphertext,
    ));
    all_decrypt_everywhere(&cluster, &sealed).await;

    // Rekey 3-of-5 to 2-of-3 through the CLI, one old share at a time.
    let rekey_init = [
        "operator",
        "rekey",
        "--init",
        "--shares",
        "3",
        "--threshold",
        "2",
        "-o",
        "json",
    ];
    let started = cli.json(&rekey_init, b"");
    assert_eq!(started["in_progress"], true, "{started}");
    assert_eq!(started["required"], 3, "{started}");
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    let again = cli.run(&rekey_init, b"");
    assert!(!again.status.success());
    let error = error_document(&again);
    assert_eq!(
        error["error"]["tessera_code"], "REKEY_IN_PROGRESS",
        "{error}"
    );
    let old_shares = cluster.shares().to_vec();
    let mut last = Value::Null;
    for (i, share) in old_shares.iter().take(3).enumerate() {
        last = cli.json(
            &["operator", "rekey", "-", "--nonce", &nonce, "-o", "json"],
            share.as_bytes(),
        );
        if i < 2 {
            assert_eq!(last["progress"], i + 1, "{last}");
        }
    }
    assert_eq!(last["complete"], true, "{last}");
    assert_eq!(last["new_threshold"], 2, "{last}");
    let new_shares: Vec<String> = last["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new_shares.len(), 3);
    let idle = cli.json(&["operator", "rekey", "-o", "json"], b"");
    assert_eq!(idle["in_progress"], false, "{idle}");

    // Full-cluster restart: what is on disk is sealed under term 2 only, 2-of-3.
    for id in cluster.ids() {
        assert!(cluster.stop(id));
    }
    for id in cluster.ids() {
        let (terms, blob_terms, shamir) = stored_barrier(&cluster, id);
        assert_eq!(
            terms,
            BarrierTerms {
                active: 2,
                oldest: 2
            },
            "node {id}"
        );
        assert_eq!(blob_terms.len(), 6, "node {id}");
        assert!(
            blob_terms.iter().all(|t| *t == 2),
            "node {id}: {blob_terms:?}"
        );
        assert_eq!(shamir, (3, 2), "node {id}");
    }
    for id in cluster.ids() {
        cluster.restart(id).await;
    }

    // The old shares no longer unseal: two of them are a full (wrong) attempt now.
    let node1 = cluster.client(1);
    node1.unseal(&old_shares[0]).await.unwrap();
    let refused = node1.unseal(&old_shares[1]).await.unwrap_err();
    assert_eq!(refused.tessera_code(), Some("WRONG_SHARES"), "{refused}");
    assert!(
        refused.to_string().contains("do not reconstruct"),
        "{refused}"
    );
    assert!(node1.status().await.unwrap().sealed);

    // Two new shares unseal every node, and every ciphertext still decrypts.
    for id in cluster.ids() {
        let client = cluster.client(id);
        for share in &new_shares[1..] {
            client.unseal(share).await.unwrap();
        }
        assert!(!client.status().await.unwrap().sealed, "node {id}");
    }
    for id in cluster.ids() {
        cluster.wait_serving(id).await;
    }
    all_decrypt_everywhere(&cluster, &sealed).await;
}
