//! Destroying a key version crypto-shreds it: its sealed material leaves every file of every
//! node online, within the compaction interval (`raft.compact_interval_ms`) plus one pass, and
//! also after `tessera storage compact` on stopped nodes; its ciphertexts can never be
//! decrypted again.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tessera_crypto::{root, UnsealShare};
use tessera_proto::v1 as pb;
use tessera_raft::state_machine::StateMachineStore;
use tessera_state::{KeyRef, KeyVersion};
use tessera_testkit::cluster::WAIT;
use tessera_testkit::scan::find_needles;
use tessera_testkit::{past_unavailability, wait_for, ClusterOptions, NodeFiles, TestCluster};
use tonic::Code;

use crate::api::{
    assert_status, create, crypto, decrypt_request, encrypt, encrypt_request, key_of, keys,
    version_req, write,
};
use crate::{assert_success, tessera};

/// The sealed blob of `key`'s `version`, read from a stopped node's store.
fn sealed_version(cluster: &TestCluster, node: u64, key: &str, version: KeyVersion) -> Vec<u8> {
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

/// Encrypts on `node` once it encrypts under `version`: a follower serves from what it has
/// applied, so right after a rotation elsewhere it may still use the previous version.
async fn encrypt_under(
    cluster: &TestCluster,
    node: u64,
    key: &str,
    plaintext: &[u8],
    version: u32,
) -> pb::EncryptResponse {
    wait_for(
        &format!("node {node} to encrypt under version {version}"),
        WAIT,
        || async {
            let out = encrypt(cluster, node, key, plaintext).await;
            if out.version == version {
                Ok(out)
            } else {
                Err(format!("encrypted under version {}", out.version))
            }
        },
    )
    .await
}

/// Decrypting `ciphertext` on `node`, retried past unavailability.
async fn decrypt_on(
    cluster: &TestCluster,
    node: u64,
    ciphertext: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    let c = crypto(cluster, node);
    past_unavailability("decrypt", || {
        let mut c = c.clone();
        let request = decrypt_request(ciphertext, BTreeMap::new());
        async move { c.decrypt(request).await }
    })
    .await
    .map(|r| r.into_inner().plaintext)
}

/// Every node refuses `destroyed` as destroyed and still decrypts each of `live`.
async fn assert_shredded(cluster: &TestCluster, destroyed: &[u8], live: &[(&[u8], &[u8])]) {
    for id in cluster.ids() {
        let err = decrypt_on(cluster, id, destroyed).await.unwrap_err();
        assert_status(
            &err,
            Code::FailedPrecondition,
            "VERSION_DESTROYED",
            "can never be decrypted",
        );
        for (ciphertext, plaintext) in live {
            assert_eq!(
                decrypt_on(cluster, id, ciphertext).await.unwrap(),
                *plaintext
            );
        }
    }
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
    let options = ClusterOptions::snapshotting(5, 0);
    let mut cluster = TestCluster::start_unsealed(tessera(), options).await;
    create(&cluster, 1, "shred", "").await;
    let old = encrypt(&cluster, 2, "shred", b"under v1").await;
    keys(&cluster, 1).rotate_key(write("shred")).await.unwrap();
    let fresh = encrypt_under(&cluster, 3, "shred", b"under v2", 2).await;

    for id in cluster.ids() {
        assert!(cluster.stop(id));
    }
    let sealed_v1 = sealed_version(&cluster, 1, "shred", KeyVersion::FIRST);
    let needle = vec![("sealed v1".to_owned(), sealed_v1)];
    for node in &cluster.nodes {
        assert!(
            !find_needles(&node.dir, &needle).is_empty(),
            "the scan must see v1 on node {} before",
            node.id
        );
    }
    restart_all(&mut cluster).await;

    destroy(&cluster, 2, "shred", 1).await;
    let destroyed_at = cluster.client(2).status().await.unwrap().applied_index;
    // Enough writes for every node to snapshot past the destruction and purge its log.
    for i in 0..12 {
        create(&cluster, 1 + i % 3, &format!("filler-{i}"), "").await;
    }
    cluster
        .wait_status_all("purge its log past the destruction", |s| {
            if s.snapshot_index > destroyed_at && s.purged_index > destroyed_at {
                Ok(())
            } else {
                Err(format!(
                    "snapshot {} purged {} destroyed at {destroyed_at}",
                    s.snapshot_index, s.purged_index
                ))
            }
        })
        .await;
    for id in cluster.ids() {
        assert!(cluster.stop(id));
    }
    for node in &cluster.nodes {
        let out = Command::new(tessera())
            .args(["storage", "compact", "-o", "json", "--config"])
            .arg(node.config())
            .output()
            .unwrap();
        assert_success(&out);
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
    assert_shredded(
        &cluster,
        &old.ciphertext,
        &[(fresh.ciphertext.as_slice(), b"under v2")],
    )
    .await;
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

/// The destroy of `version` of `key`, through `node`.
async fn destroy(cluster: &TestCluster, node: u64, key: &str, version: u32) {
    let destroyer = keys(cluster, node);
    let key = key_of(
        past_unavailability("destroy the version", || {
            let mut destroyer = destroyer.clone();
            async move {
                destroyer
                    .destroy_key_version(version_req(key, version))
                    .await
            }
        })
        .await,
    );
    assert_eq!(key.versions[0].state, "DESTROYED");
}

#[tokio::test]
async fn t79_a_destroyed_version_leaves_every_file_online() {
    // Default snapshot and log settings: the online pass, not a snapshot policy tuned for the
    // test, is what removes the material.
    let mut options = ClusterOptions::default();
    options.raft.compact_interval_ms = 2_000;
    let mut cluster = TestCluster::start_unsealed(tessera(), options).await;
    create(&cluster, 1, "shred", "").await;
    create(&cluster, 2, "other", "").await;
    let old = encrypt(&cluster, 2, "shred", b"under v1").await;
    keys(&cluster, 1).rotate_key(write("shred")).await.unwrap();
    let fresh = encrypt_under(&cluster, 3, "shred", b"under v2", 2).await;
    let other = encrypt(&cluster, 1, "other", b"another key").await;

    // The needle, read from node 3's store while it is stopped, before anything is destroyed.
    assert!(cluster.stop(3));
    let needle = vec![(
        "sealed v1".to_owned(),
        sealed_version(&cluster, 3, "shred", KeyVersion::FIRST),
    )];
    cluster.restart(3).await;
    cluster.unseal(3).await;
    cluster.wait_serving(3).await;
    for node in &cluster.nodes {
        assert!(
            !find_needles(&node.dir, &needle).is_empty(),
            "the scan must see v1 on node {} before",
            node.id
        );
    }

    // A client encrypts through every node throughout; no node stops from here on.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let encryptor = {
        let clients: Vec<_> = cluster
            .ids()
            .into_iter()
            .map(|id| crypto(&cluster, id))
            .collect();
        let (stop, served, failed) = (Arc::clone(&stop), Arc::clone(&served), Arc::clone(&failed));
        tokio::spawn(async move {
            for mut client in clients.into_iter().cycle() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let request = encrypt_request("other", b"during the shredding", BTreeMap::new());
                match client.encrypt(request).await {
                    Ok(_) => served.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        eprintln!("encrypt failed: {e}");
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        })
    };

    destroy(&cluster, 2, "shred", 1).await;
    wait_for(
        "the destroyed material to leave every file of every node",
        WAIT,
        || async {
            let found: Vec<_> = cluster
                .nodes
                .iter()
                .flat_map(|node| find_needles(&node.dir, &needle))
                .collect();
            if found.is_empty() {
                Ok(())
            } else {
                Err(format!("still on disk: {found:?}"))
            }
        },
    )
    .await;

    stop.store(true, Ordering::SeqCst);
    encryptor.await.unwrap();
    assert!(served.load(Ordering::SeqCst) > 0);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "encryption failed during the shredding"
    );
    assert_shredded(
        &cluster,
        &old.ciphertext,
        &[
            (fresh.ciphertext.as_slice(), b"under v2"),
            (other.ciphertext.as_slice(), b"another key"),
        ],
    )
    .await;
}
