//! No plaintext secret reaches the disk: after real use (init, keys, rotations, encryptions,
//! snapshots), the real key material is recovered in-process from the nodes' stores and every
//! file under every node's directory — database, snapshots, logs — is searched for it.

use base64::Engine;
use tessera_crypto::{root, shamir, UnsealShare};
use tessera_raft::state_machine::StateMachineStore;
use tessera_state::key::version_aad;
use tessera_testkit::scan::find_needles;
use tessera_testkit::{ClusterOptions, NodeFiles, TestCluster};

use crate::{ctx, tessera};

/// The 32-byte barrier keys inside an encoded keyring:
/// `[0x01][active u32][count u32] then count × ([term u32][32 key bytes])`.
fn barrier_keys(encoded: &[u8]) -> Vec<Vec<u8>> {
    let count = u32::from_be_bytes(encoded[5..9].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| {
            let start = 9 + i * 36 + 4;
            encoded[start..start + 32].to_vec()
        })
        .collect()
}

#[tokio::test]
async fn t50_no_secret_bytes_in_any_file_of_any_node() {
    let options = ClusterOptions::snapshotting(4, 2);
    let mut cluster = TestCluster::start_unsealed(tessera(), options).await;
    let client = cluster.client_for(&[2, 3, 1]);
    let plaintext: Vec<u8> = (0u8..48)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    for name in ["alpha", "beta", "gamma"] {
        client.create_key(name, "", "").await.unwrap();
    }
    client.rotate_key("alpha").await.unwrap();
    client.rotate_key("alpha").await.unwrap();
    let sealed = client
        .encrypt("alpha", &plaintext, &ctx(&[("c", "1")]))
        .await
        .unwrap();
    assert_eq!(
        client
            .decrypt(&sealed.ciphertext, &ctx(&[("c", "1")]))
            .await
            .unwrap()
            .plaintext,
        plaintext
    );
    let shares = cluster.shares().to_vec();
    for id in cluster.ids() {
        assert!(cluster.stop(id), "node {id} did not stop cleanly");
    }

    let decoded: Vec<UnsealShare> = shares
        .iter()
        .map(|s| UnsealShare::decode(s).unwrap())
        .collect();
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, text) in shares.iter().enumerate() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        needles.push((format!("share {i} (text)"), text.as_bytes().to_vec()));
        needles.push((format!("share {i} (value)"), raw[2..].to_vec()));
    }
    let unseal_key = shamir::combine(&decoded[..3]).unwrap();
    needles.push(("unseal key".into(), unseal_key.as_bytes().to_vec()));
    needles.push(("plaintext".into(), plaintext.clone()));

    let mut sealed_blobs = Vec::new();
    for node in &cluster.nodes {
        let db = sled::Config::new()
            .path(node.data_dir().join("raft"))
            .open()
            .unwrap();
        let db = tessera_raft::durable::DurableDb::open(db, &node.data_dir().join("raft")).unwrap();
        let store = StateMachineStore::open(&db).unwrap();
        let shared = store.shared();
        let applied = shared.read();
        let config = applied.state.seal_config().expect("initialized");
        let unsealed = root::unseal(
            &decoded[..3],
            &config.sealed_root_key,
            &config.sealed_keyring,
        )
        .unwrap();
        needles.push((
            format!("root key (node {})", node.id),
            unsealed.root_key.as_bytes().to_vec(),
        ));
        for (i, key) in barrier_keys(unsealed.keyring.to_bytes().as_slice())
            .into_iter()
            .enumerate()
        {
            needles.push((format!("barrier key {i} (node {})", node.id), key));
        }
        let mut versions = 0;
        for key in applied.state.keys_by_name() {
            for stored in &key.versions {
                let version = &stored.version;
                let sealed = stored
                    .sealed_material
                    .clone()
                    .expect("no version is destroyed");
                let material = unsealed
                    .keyring
                    .open(&version_aad(&key.key_id, *version, key.spec), &sealed)
                    .unwrap();
                assert_eq!(material.len(), 32);
                needles.push((
                    format!("{} v{version} material", key.name),
                    material.as_slice().to_vec(),
                ));
                sealed_blobs.push(sealed);
                versions += 1;
            }
        }
        assert_eq!(versions, 5, "three keys, one rotated twice");
    }

    for node in &cluster.nodes {
        let found = find_needles(&node.dir, &needles);
        assert!(
            found.is_empty(),
            "secret bytes on disk of node {}: {found:?}",
            node.id
        );
        // The scan itself must be able to see what is there: sealed blobs are stored verbatim.
        let sealed_needles: Vec<(String, Vec<u8>)> = sealed_blobs
            .iter()
            .map(|b| ("sealed".to_owned(), b.clone()))
            .collect();
        assert!(
            !find_needles(&node.dir, &sealed_needles).is_empty(),
            "the scan found not even the sealed blobs on node {}",
            node.id
        );
    }
}
