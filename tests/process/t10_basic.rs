//! A 3-node cluster end to end: keys created through a follower, encrypt on one node and
//! decrypt on another, rotation, idempotent creates.

use tessera_testkit::{ClusterOptions, TestCluster};

use crate::{ctx, tessera};

#[tokio::test]
async fn t10_create_through_follower_encrypt_on_1_decrypt_on_3() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let leader = cluster.leader().await;
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();

    let key = cluster
        .client(follower)
        .create_key("payments", "", "created through a follower")
        .await
        .unwrap();
    assert_eq!(key.name, "payments");
    assert_eq!(key.spec, "AES256_GCM");
    assert_eq!(key.primary_version, 1);
    assert_eq!(key.created_by, "admin");

    let context = ctx(&[("tenant", "acme"), ("purpose", "test")]);
    let plaintext = b"the original bytes \x00\x01\xff".to_vec();
    let sealed = cluster
        .client(1)
        .encrypt("payments", &plaintext, &context)
        .await
        .unwrap();
    assert_eq!(sealed.key_id, key.key_id);
    assert_eq!(sealed.version, 1);
    assert_ne!(sealed.ciphertext, plaintext);

    let opened = cluster
        .client(3)
        .decrypt(&sealed.ciphertext, &context)
        .await
        .unwrap();
    assert_eq!(opened.plaintext, plaintext);
    assert_eq!(opened.key_id, key.key_id);

    // Every node lists and describes the key, by name and by id.
    for id in cluster.ids() {
        let client = cluster.client(id);
        assert_eq!(
            client.describe_key("payments").await.unwrap().key_id,
            key.key_id
        );
        assert_eq!(
            client.describe_key(&key.key_id).await.unwrap().name,
            "payments"
        );
        assert_eq!(client.list_keys().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn t11_rotation_new_version_encrypts_old_still_decrypts() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let client = cluster.client_for(&[2, 1, 3]);
    client.create_key("rotating", "", "").await.unwrap();
    let context = ctx(&[("k", "v")]);
    let old = client
        .encrypt("rotating", b"before rotation", &context)
        .await
        .unwrap();
    assert_eq!(old.version, 1);

    let rotated = client.rotate_key("rotating").await.unwrap();
    assert_eq!(rotated.primary_version, 2);
    assert_eq!(rotated.versions.len(), 2);

    let new = client
        .encrypt("rotating", b"after rotation", &context)
        .await
        .unwrap();
    assert_eq!(new.version, 2);
    for id in cluster.ids() {
        let node = cluster.client(id);
        let stale = node.decrypt(&old.ciphertext, &context).await.unwrap();
        assert_eq!(stale.plaintext, b"before rotation");
        let fresh = node.decrypt(&new.ciphertext, &context).await.unwrap();
        assert_eq!(fresh.plaintext, b"after rotation");
        assert_eq!(fresh.version, 2);
    }
}

#[tokio::test]
async fn t12_same_create_request_twice_creates_one_key() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let first = cluster
        .client(2)
        .create_key_with_id("once", "", "", "req-create-once")
        .await
        .unwrap();
    // The retry lands on another node; it must return the first result, not a new key or a
    // name conflict.
    let second = cluster
        .client(3)
        .create_key_with_id("once", "", "", "req-create-once")
        .await
        .unwrap();
    assert_eq!(first.key_id, second.key_id);
    assert_eq!(cluster.client(1).list_keys().await.unwrap().len(), 1);

    // The same id for a different request is refused.
    let err = cluster
        .client(1)
        .create_key_with_id("other", "", "", "req-create-once")
        .await
        .unwrap_err();
    assert_eq!(err.code(), tessera_client::Code::InvalidArgument, "{err}");
    assert!(err.to_string().contains("already used"), "{err}");
}

#[tokio::test]
async fn t13_concurrent_rotations_through_different_nodes_all_apply() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    cluster
        .client(1)
        .create_key("contended", "", "")
        .await
        .unwrap();
    let clients: Vec<_> = [1, 2, 3, 1, 2, 3]
        .iter()
        .map(|id| cluster.client(*id))
        .collect();
    let rotations = clients.iter().map(|c| c.rotate_key("contended"));
    let results = futures::future::join_all(rotations).await;
    let mut versions: Vec<u32> = results
        .into_iter()
        .map(|r| r.unwrap().primary_version)
        .collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        vec![2, 3, 4, 5, 6, 7],
        "every rotation got its own version"
    );
    let key = cluster.client(3).describe_key("contended").await.unwrap();
    assert_eq!(key.primary_version, 7);
    assert_eq!(key.versions.len(), 7);
}
