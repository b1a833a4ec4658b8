//! Leader failure and node restarts: a new leader takes over, a restarted node comes back
//! sealed and catches up by log replay or by snapshot installation.

use std::collections::BTreeMap;

use tessera_client::proto::EncryptResponse;
use tessera_client::Client;
use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, TestCluster};

use crate::{ctx, tessera};

#[tokio::test]
async fn t20_killing_the_leader_elects_a_new_one_and_service_continues() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let context = ctx(&[("app", "ledger")]);
    let before = cluster.client_for(&[1, 2, 3]);
    before.create_key("survivor", "", "").await.unwrap();
    let early = before
        .encrypt("survivor", b"written before the crash", &context)
        .await
        .unwrap();

    let old_leader = cluster.leader().await;
    cluster.kill(old_leader);
    let survivors = cluster.ids_except(old_leader);
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    assert!(survivors.contains(&new_leader));

    // Create, encrypt and decrypt through the survivors; the first may wait for the election.
    let a = cluster.client(survivors[0]);
    let b = cluster.client(survivors[1]);
    wait_for("a create after the leader died", WAIT, || {
        a.create_key("after-crash", "", "")
    })
    .await;
    round_trip(&a, &b, "after-crash", b"after the crash", &context).await;
    assert_eq!(
        b.decrypt(&early.ciphertext, &context)
            .await
            .unwrap()
            .plaintext,
        b"written before the crash"
    );
}

/// Asserts that `id` is sealed and refuses crypto with a clear "sealed" error.
async fn assert_sealed_refusal(cluster: &TestCluster, id: u64) {
    let client = cluster.client(id);
    let status = client.status().await.unwrap();
    assert!(status.sealed, "node {id} must come back sealed");
    assert!(status.initialized);
    let err = client.encrypt("any", b"x", &ctx(&[])).await.unwrap_err();
    assert_eq!(
        err.code(),
        tessera_client::Code::FailedPrecondition,
        "{err}"
    );
    assert_eq!(err.tessera_code(), Some("SEALED"));
    assert!(err.to_string().contains("sealed"), "{err}");
    let err = client.describe_key("any").await.unwrap_err();
    assert_eq!(
        err.code(),
        tessera_client::Code::FailedPrecondition,
        "{err}"
    );
}

/// Encrypts `plaintext` under `key` through `encrypter` and decrypts the result through
/// `decrypter`, each retried while it fails (a node may be between leases or electing); asserts
/// the round trip and returns the encryption.
async fn round_trip(
    encrypter: &Client,
    decrypter: &Client,
    key: &str,
    plaintext: &[u8],
    context: &BTreeMap<String, String>,
) -> EncryptResponse {
    let sealed = wait_for(&format!("an encrypt under {key}"), WAIT, || {
        encrypter.encrypt(key, plaintext, context)
    })
    .await;
    let opened = wait_for("a decrypt on another node", WAIT, || {
        decrypter.decrypt(&sealed.ciphertext, context)
    })
    .await;
    assert_eq!(opened.plaintext, plaintext);
    sealed
}

/// Restarts `victim`, which must come back sealed, then unseals it and waits until it serves.
async fn restart_sealed_then_unseal(cluster: &mut TestCluster, victim: u64) {
    cluster.restart(victim).await;
    assert_sealed_refusal(cluster, victim).await;
    cluster.unseal(victim).await;
    cluster.wait_serving(victim).await;
}

/// Creates the keys `names` through `writer` while a node is down (the first may wait for an
/// election).
async fn create_keys(writer: &Client, names: &[String]) {
    for name in names {
        wait_for("a create while a node is down", WAIT, || {
            writer.create_key(name, "", "")
        })
        .await;
    }
}

#[tokio::test]
async fn t21_restarted_node_is_sealed_then_catches_up_from_the_log() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let victim = cluster.leader().await;
    let others = cluster.ids_except(victim);
    cluster.kill(victim);

    let writer = cluster.client_for(&others);
    let names: Vec<String> = (0..5).map(|i| format!("while-down-{i}")).collect();
    create_keys(&writer, &names).await;

    restart_sealed_then_unseal(&mut cluster, victim).await;
    let client = cluster.client(victim);
    let other = cluster.client(others[0]);
    let context = ctx(&[("n", "1")]);
    // Each call is retried while a node is between leases (`UNAVAILABLE`, retry by contract).
    for name in &names {
        let key = wait_for(&format!("describe {name}"), WAIT, || {
            client.describe_key(name)
        })
        .await;
        let sealed = round_trip(
            &client,
            &other,
            name,
            b"served by the restarted node",
            &context,
        )
        .await;
        assert_eq!(sealed.key_id, key.key_id);
    }
}

#[tokio::test]
async fn t22_restarted_node_catches_up_by_snapshot_after_log_compaction() {
    let options = ClusterOptions::snapshotting(5, 0);
    let mut cluster = TestCluster::start_unsealed(tessera(), options).await;
    let leader = cluster.leader().await;
    let victim = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let victim_applied = cluster.client(victim).status().await.unwrap().applied_index;
    cluster.kill(victim);

    let others = cluster.ids_except(victim);
    let writer = cluster.client_for(&others);
    let names: Vec<String> = (0..12).map(|i| format!("compacted-{i}")).collect();
    create_keys(&writer, &names).await;
    // The leader must have purged the entries the victim lacks, so only a snapshot can bring
    // it up to date.
    let leader_client = cluster.client(cluster.leader().await);
    wait_for(
        "the leader to purge its log past the victim",
        WAIT,
        || async {
            let status = leader_client.status().await.map_err(|e| e.to_string())?;
            if status.purged_index > victim_applied + 1 {
                Ok(())
            } else {
                Err(format!(
                    "purged {} vs victim applied {victim_applied}",
                    status.purged_index
                ))
            }
        },
    )
    .await;

    restart_sealed_then_unseal(&mut cluster, victim).await;
    let client = cluster.client(victim);
    for name in &names {
        wait_for(&format!("describe {name}"), WAIT, || {
            client.describe_key(name)
        })
        .await;
    }
    let status = client.status().await.unwrap();
    assert!(
        status.snapshot_index > victim_applied,
        "node {victim} holds snapshot {} but was at {victim_applied} before",
        status.snapshot_index
    );
    let context = ctx(&[]);
    let other = cluster.client(others[0]);
    round_trip(
        &client,
        &other,
        &names[11],
        b"after snapshot install",
        &context,
    )
    .await;
}

#[tokio::test]
async fn t23_isolated_node_stops_serving_after_its_lease_and_resumes_when_healed() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let context = ctx(&[]);
    let lonely = cluster.leader().await;
    let client = cluster.client(lonely);
    client.create_key("leased", "", "").await.unwrap();
    let sealed = client.encrypt("leased", b"x", &context).await.unwrap();

    // Pause both peers: the remaining node (the leader) loses its quorum.
    let peers = cluster.ids_except(lonely);
    for id in &peers {
        cluster.node(*id).process().unwrap().pause();
    }
    let err = wait_for("the isolated node to refuse crypto", WAIT, || async {
        match client.encrypt("leased", b"x", &context).await {
            Ok(_) => Err("still serving".to_owned()),
            Err(e) => Ok(e),
        }
    })
    .await;
    assert_eq!(err.code(), tessera_client::Code::Unavailable, "{err}");
    assert_eq!(err.tessera_code(), Some("NO_LEASE"));
    assert!(err.to_string().contains("lease"), "{err}");
    let err = client
        .decrypt(&sealed.ciphertext, &context)
        .await
        .unwrap_err();
    assert_eq!(err.tessera_code(), Some("NO_LEASE"), "{err}");

    for id in &peers {
        cluster.node(*id).process().unwrap().resume();
    }
    let opened = wait_for("the healed node to serve again", WAIT, || {
        client.decrypt(&sealed.ciphertext, &context)
    })
    .await;
    assert_eq!(opened.plaintext, b"x");
}
