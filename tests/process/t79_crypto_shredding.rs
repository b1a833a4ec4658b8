//! Destroying a key version crypto-shreds it: after log compaction and `tessera storage
//! compact`, its sealed material is in no file of any node, and its ciphertexts can never be
//! decrypted again.

use std::collections::BTreeMap;
use std::process::Command;

use tessera_crypto::{root, UnsealShare};
use tessera_proto::v1 as pb;
use tessera_raft::state_machine::StateMachineStore;
use tessera_state::KeyRef;
use tessera_testkit::cluster::WAIT;
use tessera_testkit::scan::find_needles;
use tessera_testkit::{past_unavailability, wait_for, ClusterOptions, TestCluster};
use tonic::Code;

use crate::api::{assert_status, create, crypto, keys, version_req, write};
use crate::tessera;

/// The sealed blob of `key`'s `version`, read from a stopped node's store.
fn sealed_version(cluster: &TestCluster, node: u64, key: &str, version: u32) -> Vec<u8> {
    let db = sled::Config::new()
        .path(cluster.node(node).data_dir().join("raft"))
        .open()
        .unwrap();
    let db =
        tessera_raft::durable::DurableDb::open(db, &cluster.node(node).data_dir().join("raft"))
            .unwrap();
    let store = StateMachineStore::open(&db).unwrap();
    let shared = store.shared();
    let applied = shared.read();
    let record = applied.state.resolve(&KeyRef::parse(key).unwrap()).unwrap();
    // Prove the blob is real: it opens to 32 bytes of material with the cluster's shares.
    let shares: Vec<UnsealShare> = cluster.shares()[..3]
        .iter()
        .map(|s| UnsealShare::decode(s).unwrap())
        .collect();
    let config = applied.state.seal_config().unwrap();
    let unsealed = root::unseal(&shares, &config.sealed_root_key, &config.sealed_keyring).unwrap();
    let sealed = record
        .versions
        .get(version)
        .unwrap()
        .sealed_material
        .clone()
        .unwrap();
    let material = unsealed
        .keyring
        .open(
            &tessera_state::key::version_aad(&record.key_id, version, record.spec),
            &sealed,
        )
        .unwrap();
    assert_eq!(material.len(), 32);
    sealed
}

async fn restart_all(cluster: &mut TestCluster) {
    for id in cluster.ids() {
        cluster.restart(id).await;
    }
    for id in cluster.ids() {
        cluster.unseal(id).await;
    }
    for id in cluster.ids() {
        cluster.wait_serving(id).await;
    }
}

#[tokio::test]
async fn t79_destroyed_version_bytes_are_gone_after_compaction() {
    let options = ClusterOptions {
        snapshot_after_logs: 5,
        logs_kept_after_snapshot: 0,
        ..ClusterOptions::default()
    };
    let mut cluster = TestCluster::start_unsealed(tessera(), options).await;
    create(&cluster, 1, "shred", "").await;
    let old = crypto(&cluster, 2)
        .encrypt(pb::EncryptRequest {
            key: "shred".into(),
            plaintext: b"under v1".to_vec(),
            context: BTreeMap::new(),
        })
        .await
        .unwrap()
        .into_inner();
    keys(&cluster, 1).rotate_key(write("shred")).await.unwrap();
    let fresh = crypto(&cluster, 3)
        .encrypt(pb::EncryptRequest {
            key: "shred".into(),
            plaintext: b"under v2".to_vec(),
            context: BTreeMap::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.version, 2);

    for id in cluster.ids() {
        assert!(cluster.stop(id));
    }
    let sealed_v1 = sealed_version(&cluster, 1, "shred", 1);
    let needle = vec![("sealed v1".to_owned(), sealed_v1)];
    for node in &cluster.nodes {
        assert!(
            !find_needles(&node.dir, &needle).is_empty(),
            "the scan must see v1 on node {} before",
            node.id
        );
    }
    restart_all(&mut cluster).await;

    let destroyer = keys(&cluster, 2);
    let key = past_unavailability("destroy version 1", || {
        let mut destroyer = destroyer.clone();
        async move { destroyer.destroy_key_version(version_req("shred", 1)).await }
    })
    .await
    .unwrap()
    .into_inner()
    .key
    .unwrap();
    assert_eq!(key.versions[0].state, "DESTROYED");
    let destroyed_at = cluster.client(2).status().await.unwrap().applied_index;
    // Enough writes for every node to snapshot past the destruction and purge its log.
    for i in 0..12 {
        create(&cluster, 1 + i % 3, &format!("filler-{i}"), "").await;
    }
    for id in cluster.ids() {
        let client = cluster.client(id);
        wait_for(
            &format!("node {id} to purge its log past the destruction"),
            WAIT,
            || async {
                let s = client.status().await.map_err(|e| e.to_string())?;
                if s.snapshot_index > destroyed_at && s.purged_index > destroyed_at {
                    Ok(())
                } else {
                    Err(format!(
                        "snapshot {} purged {} destroyed at {destroyed_at}",
                        s.snapshot_index, s.purged_index
                    ))
                }
            },
        )
        .await;
    }
    for id in cluster.ids() {
        assert!(cluster.stop(id));
    }
    for node in &cluster.nodes {
        let out = Command::new(tessera())
            .args(["storage", "compact", "-o", "json", "--config"])
            .arg(node.config())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "compact failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(report["bytes_after"].as_u64().unwrap() > 0);
        let found = find_needles(&node.dir, &needle);
        assert!(
            found.is_empty(),
            "destroyed material still on disk of node {}: {found:?}",
            node.id
        );
    }

    restart_all(&mut cluster).await;
    for id in cluster.ids() {
        let c = crypto(&cluster, id);
        let decrypt = |ciphertext: &[u8]| {
            let mut c = c.clone();
            let request = pb::DecryptRequest {
                ciphertext: ciphertext.to_vec(),
                context: BTreeMap::new(),
            };
            async move { c.decrypt(request).await }
        };
        let err = past_unavailability("decrypt under v1", || decrypt(&old.ciphertext))
            .await
            .unwrap_err();
        assert_status(
            &err,
            Code::FailedPrecondition,
            "VERSION_DESTROYED",
            "can never be decrypted",
        );
        let opened = past_unavailability("decrypt under v2", || decrypt(&fresh.ciphertext))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(opened.plaintext, b"under v2");
    }
    // A running node's database cannot be compacted underneath it.
    let out = Command::new(tessera())
        .args(["storage", "compact", "--config"])
        .arg(cluster.node(1).config())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the node stopped"));
}
