//! Backup and restore (`operator snapshot save|restore`): a save under a running workload,
//! restored into a brand-new cluster that unseals with the original shares and holds every
//! key, version, alias, policy, grant and rate-limit rule, and decrypts every ciphertext made
//! before the save. Damaged, truncated, newer-format and foreign backups are refused with
//! their codes, through the CLI (which checks first) and straight at the server (which
//! trusts no client), and leave the target unchanged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tessera_client::{Client, CreateGrantOptions, NewLearner, PolicyFormat, RateLimit};
use tessera_testkit::{ClusterOptions, TestCluster};

use crate::t60_cli::{error_document, Cli};
use crate::{create_numbered_keys, ctx, tessera};

const POLICY: &str = r#"{ "statements": [
  { "sid": "enc", "effect": "allow", "identities": ["app"],
    "actions": ["kms:Encrypt", "kms:Decrypt"], "keys": ["orders"] } ] }"#;

/// A ciphertext with the context and plaintext it was made from.
type Made = (Vec<u8>, BTreeMap<String, String>, Vec<u8>);

/// What the source cluster held before the save, to find again after the restore.
struct Expected {
    keys: Vec<tessera_client::proto::Key>,
    aliases: Vec<(String, String)>,
    policy_version: u64,
    grant_ids: Vec<String>,
    rate_limits: Vec<String>,
    ciphertexts: Vec<Made>,
}

/// Keys with several versions and a destroyed one, an alias, a policy, a grant, a rule and
/// ciphertexts under several versions.
async fn populate(client: &Client) -> Expected {
    let orders = client.create_key("orders", "AES256_GCM", "").await.unwrap();
    let mut ciphertexts = Vec::new();
    for round in 0..3u8 {
        let context = ctx(&[("tenant", "a"), ("round", &round.to_string())]);
        let plaintext = format!("order {round}").into_bytes();
        let made = client
            .encrypt("orders", &plaintext, &context)
            .await
            .unwrap();
        ciphertexts.push((made.ciphertext, context, plaintext));
        client.rotate_key("orders").await.unwrap();
    }
    // Versions 1..=4; version 1's ciphertext stays undecryptable once it is destroyed.
    ciphertexts.remove(0);
    client.destroy_key_version("orders", 1).await.unwrap();
    client
        .create_key("tokens", "HMAC_SHA256", "")
        .await
        .unwrap();
    client.create_key("signer", "ED25519", "").await.unwrap();
    client.create_alias("alias/front", "orders").await.unwrap();
    client.create_alias("alias/mac", "tokens").await.unwrap();
    let policy_version = client
        .put_policy("app-orders", POLICY, PolicyFormat::Json)
        .await
        .unwrap()
        .version;
    let grant = client
        .create_grant(CreateGrantOptions {
            key: orders.key_id.clone(),
            grantee: "app".into(),
            actions: vec!["kms:Decrypt".into()],
            ..CreateGrantOptions::default()
        })
        .await
        .unwrap();
    client
        .put_rate_limit(RateLimit {
            identity: "batch-*".into(),
            crypto: Some(tessera_client::Budget {
                per_second: 50,
                burst: 100,
            }),
            keys: None,
            operator: None,
        })
        .await
        .unwrap();
    snapshot_of(client, policy_version, vec![grant.grant_id], ciphertexts).await
}

async fn snapshot_of(
    client: &Client,
    policy_version: u64,
    grant_ids: Vec<String>,
    ciphertexts: Vec<Made>,
) -> Expected {
    Expected {
        keys: client.list_keys().await.unwrap(),
        aliases: aliases(client).await,
        policy_version,
        grant_ids,
        rate_limits: rate_limits(client).await,
        ciphertexts,
    }
}

async fn aliases(client: &Client) -> Vec<(String, String)> {
    client
        .list_aliases(None)
        .await
        .unwrap()
        .aliases
        .into_iter()
        .map(|a| (a.alias, a.key_id))
        .collect()
}

async fn rate_limits(client: &Client) -> Vec<String> {
    client
        .list_rate_limits()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.identity)
        .collect()
}

/// Checks that the node behind `node` holds every key with its versions and the aliases, and
/// decrypts every ciphertext made before the save.
async fn assert_holds(node: &Client, id: u64, expected: &Expected) {
    let keys = node.list_keys().await.unwrap();
    let states = |k: &tessera_client::proto::Key| {
        k.versions
            .iter()
            .map(|v| (v.version, v.state.clone()))
            .collect::<Vec<_>>()
    };
    for key in &expected.keys {
        let found = keys
            .iter()
            .find(|k| k.key_id == key.key_id)
            .unwrap_or_else(|| panic!("node {id} lacks key {}", key.name));
        assert_eq!(found.name, key.name);
        assert_eq!(found.primary_version, key.primary_version);
        assert_eq!(
            states(found),
            states(key),
            "versions of {} on node {id}",
            key.name
        );
    }
    let orders = keys.iter().find(|k| k.name == "orders").unwrap();
    assert_eq!(
        orders.versions.first().map(|v| v.state.as_str()),
        Some("DESTROYED")
    );
    assert_eq!(aliases(node).await, expected.aliases, "node {id}");
    for (ciphertext, context, plaintext) in &expected.ciphertexts {
        let opened = node.decrypt(ciphertext, context).await.unwrap();
        assert_eq!(&opened.plaintext, plaintext, "node {id}");
    }
}

/// A task that encrypts and creates keys until told to stop; returns how many calls succeeded.
fn workload(client: Client, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let done = AtomicU64::new(0);
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            if client
                .encrypt("orders", b"busy", &BTreeMap::new())
                .await
                .is_ok()
            {
                done.fetch_add(1, Ordering::Relaxed);
            }
            if client
                .create_key(&format!("busy-{round}"), "AES256_GCM", "")
                .await
                .is_ok()
            {
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
        done.load(Ordering::Relaxed)
    })
}

/// `tessera operator snapshot restore FILE OPTIONS… -o json`.
fn restore_args<'a>(file: &'a Path, options: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["operator", "snapshot", "restore", file.to_str().unwrap()];
    args.extend_from_slice(options);
    args.extend(["-o", "json"]);
    args
}

/// Runs a CLI restore that must be refused with `code`/`tessera_code` (exit status 1).
fn assert_cli_refuses(cli: &Cli, file: &Path, code: &str, tessera_code: &str) {
    let out = cli.run(&restore_args(file, &[]), b"");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{file:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let error = error_document(&out);
    assert_eq!(error["error"]["code"], code, "{error}");
    assert_eq!(error["error"]["tessera_code"], tessera_code, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{tessera_code}: ")),
        "{message}"
    );
}

/// Sends `file` straight to the server (no CLI checks): refused with `code`/`tessera_code`.
async fn assert_server_refuses(client: &Client, file: &[u8], code: &str, tessera_code: &str) {
    let error = client.snapshot_restore(file, false).await.unwrap_err();
    assert_eq!(error.code_name(), code, "{error}");
    assert_eq!(error.tessera_code(), Some(tessera_code), "{error}");
    assert!(error.to_string().contains(tessera_code), "{error}");
}

/// What must not change when a restore into an uninitialised cluster is refused:
/// initialisation, seal and the whole applied state (which no clock reading changes before
/// `Init`).
async fn fingerprint(client: &Client) -> (bool, bool, String) {
    let status = client.status_with_digest().await.unwrap();
    (status.initialized, status.sealed, status.state_digest)
}

/// What must not change when a restore into an initialised cluster is refused: the seal,
/// every key with its versions, the aliases and the policies (the state digest also moves
/// with the cluster clock).
/// The names of the keys `client` lists.
async fn key_names(client: &Client) -> Vec<String> {
    let keys = client.list_keys().await.unwrap();
    keys.into_iter().map(|k| k.name).collect()
}

async fn contents(
    client: &Client,
) -> (
    bool,
    Vec<(String, u32, usize)>,
    Vec<(String, String)>,
    usize,
) {
    let sealed = client.status().await.unwrap().sealed;
    let keys = client
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.key_id, k.primary_version, k.versions.len()))
        .collect();
    let policies = client.list_policies().await.unwrap().policies.len();
    (sealed, keys, aliases(client).await, policies)
}

#[tokio::test]
async fn t56_save_under_load_restore_into_a_fresh_cluster_and_refuse_bad_backups() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("backup.tsnap");

    // The source: a populated cluster, saved through the CLI while a workload runs.
    let source = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let admin = source.client_for(&source.ids());
    let expected = populate(&admin).await;
    let shares = source.shares().to_vec();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = workload(source.client_for(&source.ids()), Arc::clone(&stop));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let saved = Cli::for_cluster(&source).json(
        &[
            "operator",
            "snapshot",
            "save",
            file.to_str().unwrap(),
            "-o",
            "json",
        ],
        b"",
    );
    stop.store(true, Ordering::Relaxed);
    let calls = busy.await.unwrap();
    assert!(calls > 0, "the workload made no call");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(saved["bytes"], bytes.len());
    assert_eq!(saved["format_version"], 1);
    assert!(saved["applied_index"].as_u64().unwrap() > 0, "{saved}");
    assert_eq!(saved["cluster_id"].as_str().unwrap().len(), 64, "{saved}");
    assert_eq!(bytes.get(..4).unwrap(), b"TBAK");
    // Still sealed: no plaintext of the ciphertexts' keys could be in it, and the HMAC and
    // signing seeds are barrier blobs; at least no plaintext message is.
    for (_, _, plaintext) in &expected.ciphertexts {
        assert!(!bytes
            .windows(plaintext.len())
            .any(|w| w == plaintext.as_slice()));
    }
    drop(admin);
    drop(source);

    // The target: a brand-new cluster, never initialised.
    // Short snapshots, so that a node added later can only get the restore by snapshot.
    let target_options = ClusterOptions {
        spare_nodes: 1,
        ..ClusterOptions::snapshotting(20, 5)
    };
    let mut target = TestCluster::start(tessera(), target_options).await;
    let cli = Cli::for_cluster(&target);
    let client = target.client_for(&target.ids());
    let before = fingerprint(&client).await;
    assert!(!before.0, "the target must start uninitialized");

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    *flipped.get_mut(middle).unwrap() ^= 0x20;
    let truncated = bytes.get(..bytes.len() - 100).unwrap().to_vec();
    let mut newer = bytes.clone();
    *newer.get_mut(4).unwrap() = 2;
    let cases: [(&str, &[u8], &str, &str); 3] = [
        (
            "flipped",
            &flipped,
            "INVALID_ARGUMENT",
            "SNAPSHOT_CHECKSUM_MISMATCH",
        ),
        (
            "truncated",
            &truncated,
            "INVALID_ARGUMENT",
            "SNAPSHOT_TRUNCATED",
        ),
        (
            "newer",
            &newer,
            "FAILED_PRECONDITION",
            "SNAPSHOT_FORMAT_UNSUPPORTED",
        ),
    ];
    for (name, content, code, tessera_code) in cases {
        let path = work.path().join(name);
        std::fs::write(&path, content).unwrap();
        assert_cli_refuses(&cli, &path, code, tessera_code);
        assert_server_refuses(&client, content, code, tessera_code).await;
        assert_eq!(
            fingerprint(&client).await,
            before,
            "{name} changed the target"
        );
    }

    // The restore itself, then the original shares unseal every node.
    let restored = cli.json(&restore_args(&file, &[]), b"");
    assert_eq!(restored["cluster_id"], saved["cluster_id"]);
    assert_eq!(restored["sealed"], true);
    assert!(restored["keys"].as_u64().unwrap() >= expected.keys.len() as u64);
    target.adopt_shares(shares);
    for id in target.ids() {
        target.unseal(id).await;
    }
    for id in target.ids() {
        target.wait_serving(id).await;
    }

    // Every key, version, alias, policy, grant and rule, and every ciphertext.
    for id in target.ids() {
        assert_holds(&target.client(id), id, &expected).await;
    }
    let policy = client.get_policy("app-orders").await.unwrap();
    assert_eq!(policy.version, expected.policy_version);
    let grants: Vec<String> = client
        .list_grants(None)
        .await
        .unwrap()
        .grants
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    assert_eq!(grants, expected.grant_ids);
    assert_eq!(rate_limits(&client).await, expected.rate_limits);

    // A node added afterwards receives the restored state in its snapshot: the leader's log
    // no longer holds the restore entry.
    let restored_at = client.status().await.unwrap().applied_index;
    create_numbered_keys(&client, "after", "AES256_GCM", 30).await;
    let leader = target.leader().await;
    target
        .wait_status(leader, "the leader to purge the restore entry", |status| {
            if status.purged_index > restored_at {
                Ok(())
            } else {
                Err(format!("purged {} of {restored_at}", status.purged_index))
            }
        })
        .await;
    target.start_spare(4).await;
    let spare = target.node(4);
    client
        .add_learner(&NewLearner {
            node_id: 4,
            api_addr: spare.api_addr.trim_start_matches("https://").to_owned(),
            cluster_addr: spare.cluster_addr.clone(),
            region: "region-1".into(),
            zone: "zone-a".into(),
        })
        .await
        .unwrap();
    target.unseal(4).await;
    target.wait_serving(4).await;
    assert_holds(&target.client(4), 4, &expected).await;

    // The same cluster again without --force: refused, nothing changes.
    let after = contents(&client).await;
    assert_cli_refuses(
        &cli,
        &file,
        "FAILED_PRECONDITION",
        "SNAPSHOT_TARGET_INITIALIZED",
    );
    assert_eq!(contents(&client).await, after);

    // With --force the same cluster rolls back to the backup: the keys written since are
    // gone, and every node, unsealed until then, seals itself and unseals with the shares.
    let rolled_back = cli.json(&restore_args(&file, &["--force"]), b"");
    assert_eq!(rolled_back["cluster_id"], saved["cluster_id"]);
    target
        .wait_status_all("seal after the restore", |status| {
            if status.sealed {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        })
        .await;
    for id in target.ids() {
        target.unseal(id).await;
    }
    for id in target.ids() {
        target.wait_serving(id).await;
        assert_holds(&target.client(id), id, &expected).await;
    }
    let names = key_names(&client).await;
    assert!(
        !names.iter().any(|n| n.starts_with("after-")),
        "keys written after the backup survived the rollback: {names:?}"
    );

    // A cluster initialised on its own is another cluster: refused, nothing changes.
    let mut other = target.start_beside(ClusterOptions::with_nodes(1)).await;
    other.init().await;
    other.unseal(1).await;
    other.wait_serving(1).await;
    let other_client = other.client(1);
    other_client
        .create_key("theirs", "AES256_GCM", "")
        .await
        .unwrap();
    let other_before = contents(&other_client).await;
    assert_cli_refuses(
        &Cli::for_cluster(&other),
        &file,
        "FAILED_PRECONDITION",
        "SNAPSHOT_FOREIGN_CLUSTER",
    );
    assert_server_refuses(
        &other_client,
        &bytes,
        "FAILED_PRECONDITION",
        "SNAPSHOT_FOREIGN_CLUSTER",
    )
    .await;
    assert_eq!(contents(&other_client).await, other_before);
    assert_eq!(key_names(&other_client).await, ["theirs"]);
    drop(other);
}
