//! The audit trail and per-identity rate limits against real clusters: one record per call on
//! the node that served it, no caller-supplied value or secret in the files, a chain that
//! verifies (and names a tampered line), failing closed when the audit directory disappears,
//! and one identity's rate limit not touching another's calls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tessera_proto::v1 as pb;
use tessera_proto::v1::access_client::AccessClient;
use tessera_proto::v1::crypto_client::CryptoClient;
use tessera_proto::v1::keys_client::KeysClient;
use tessera_proto::v1::system_client::SystemClient;
use tessera_server::ratelimit::{ClassLimits, Limit, Override, RateLimitSection};
use tessera_testkit::cluster::WAIT;
use tessera_testkit::scan::find_needles;
use tessera_testkit::{wait_for, ClusterOptions, NodeFiles, TestCluster};
use tonic::transport::Channel;
use tonic::Code;

use crate::api::{answer, describe, key_of};
use crate::t60_cli::assert_error;
use crate::{assert_success, ctx, tessera};

/// Node `id`'s audit files, oldest first.
pub(crate) fn audit_files(cluster: &TestCluster, id: u64) -> Vec<PathBuf> {
    let dir = cluster.node(id).data_dir().join("audit");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

/// Node `id`'s audit records, oldest first.
pub(crate) fn records(cluster: &TestCluster, id: u64) -> Vec<serde_json::Value> {
    audit_files(cluster, id)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `tessera audit verify -o json FILES…`: exit status and the result document.
fn verify(files: &[PathBuf]) -> (bool, serde_json::Value) {
    let out = Command::new(tessera())
        .args(["audit", "verify", "-o", "json"])
        .args(files)
        .output()
        .unwrap();
    let document = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), document)
}

async fn create_key(cluster: &TestCluster, name: &str) -> String {
    key_of(
        KeysClient::new(cluster.channel(1))
            .create_key(pb::CreateKeyRequest {
                name: name.into(),
                ..Default::default()
            })
            .await,
    )
    .key_id
}

async fn allow_app(cluster: &TestCluster, actions: &str, key: &str) {
    AccessClient::new(cluster.channel(1))
        .put_policy(pb::PutPolicyRequest {
            name: "app-audit".into(),
            document: format!(
                r#"{{"statements":[{{"effect":"allow","identities":["app"],"actions":[{actions}],"keys":["{key}"]}}]}}"#
            ),
            ..Default::default()
        })
        .await
        .unwrap();
}

fn code_name<T>(result: &Result<T, tonic::Status>) -> &'static str {
    match result {
        Ok(_) => "OK",
        Err(status) => tessera_proto::code_name(status.code()),
    }
}

/// One call of the workload as the client saw it: method and gRPC code name.
type Seen = (String, String);

fn seen(method: &str, code: &str) -> Seen {
    (method.to_owned(), code.to_owned())
}

#[tokio::test]
async fn t38_every_call_is_recorded_once_on_its_node_without_values_and_verifies() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let key_name = "audited-key-name-needle";
    let key_id = create_key(&cluster, key_name).await;
    allow_app(&cluster, r#""kms:Encrypt""#, key_name).await;
    // Every node applied the policy (a poll that is itself audited, before the baseline).
    for id in cluster.ids() {
        wait_for("the policy on every node", WAIT, || async {
            CryptoClient::new(cluster.channel_with_cert(id, "app"))
                .encrypt(pb::EncryptRequest {
                    key: key_name.into(),
                    plaintext: b"warm-up".to_vec(),
                    context: BTreeMap::new(),
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
    }
    let before: BTreeMap<u64, usize> = cluster
        .ids()
        .into_iter()
        .map(|id| (id, records(&cluster, id).len()))
        .collect();

    let mut calls: BTreeMap<u64, Vec<Seen>> = BTreeMap::new();
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("key name".into(), key_name.as_bytes().to_vec()),
        ("missing name".into(), b"missing-name-needle".to_vec()),
        ("hash input".into(), b"hash-input-needle".to_vec()),
    ];
    let mut context_value = String::new();
    for round in 0..3 {
        for id in cluster.ids() {
            let log = calls.entry(id).or_default();
            let mut admin = CryptoClient::new(cluster.channel(id));
            let mut app = CryptoClient::new(cluster.channel_with_cert(id, "app"));
            let plaintext = format!("plaintext-needle-{id}-{round}");
            context_value = format!("context-value-needle-{id}-{round}");
            let context = ctx(&[("tenant-key-needle", &context_value)]);
            needles.push((
                format!("plaintext {id}/{round}"),
                plaintext.clone().into_bytes(),
            ));
            needles.push((
                format!("context {id}/{round}"),
                context_value.clone().into_bytes(),
            ));
            let encrypted = admin
                .encrypt(pb::EncryptRequest {
                    key: key_name.into(),
                    plaintext: plaintext.into_bytes(),
                    context: context.clone(),
                })
                .await;
            log.push(seen("/tessera.v1.Crypto/Encrypt", code_name(&encrypted)));
            let ciphertext = encrypted.unwrap().into_inner().ciphertext;
            // app may encrypt but not decrypt: one allowed, one denied.
            let denied = app
                .decrypt(pb::DecryptRequest {
                    ciphertext: ciphertext.clone(),
                    context: context.clone(),
                })
                .await
                .map(|_| ());
            assert_eq!(code_name(&denied), "PERMISSION_DENIED");
            log.push(seen("/tessera.v1.Crypto/Decrypt", code_name(&denied)));
            let allowed = app
                .encrypt(pb::EncryptRequest {
                    key: key_name.into(),
                    plaintext: b"app-plaintext-needle".to_vec(),
                    context: BTreeMap::new(),
                })
                .await
                .map(|_| ());
            log.push(seen("/tessera.v1.Crypto/Encrypt", code_name(&allowed)));
            let data_key = admin
                .generate_data_key(pb::GenerateDataKeyRequest {
                    key: key_name.into(),
                    data_key_spec: "AES_256".into(),
                    context: context.clone(),
                })
                .await;
            log.push(seen(
                "/tessera.v1.Crypto/GenerateDataKey",
                code_name(&data_key),
            ));
            let material = data_key.unwrap().into_inner().plaintext;
            needles.push((format!("data key {id}/{round}"), material.clone()));
            needles.push((
                format!("data key b64 {id}/{round}"),
                base64::engine::general_purpose::STANDARD
                    .encode(&material)
                    .into_bytes(),
            ));
            needles.push((
                format!("data key hex {id}/{round}"),
                hex::encode(&material).into_bytes(),
            ));
            let missing = KeysClient::new(cluster.channel(id))
                .describe_key(describe("missing-name-needle"))
                .await
                .map(|_| ());
            assert_eq!(code_name(&missing), "NOT_FOUND");
            log.push(seen("/tessera.v1.Keys/DescribeKey", code_name(&missing)));
            let app_status = SystemClient::new(cluster.channel_with_cert(id, "app"))
                .audit_hash(pb::AuditHashRequest {
                    value: "hash-input-needle".into(),
                })
                .await
                .map(|_| ());
            assert_eq!(code_name(&app_status), "PERMISSION_DENIED");
            log.push(seen("/tessera.v1.System/AuditHash", code_name(&app_status)));
        }
    }
    // The investigator's HMAC of the last context value, from an admin call (also audited).
    let hmac = answer(
        SystemClient::new(cluster.channel(1))
            .audit_hash(pb::AuditHashRequest {
                value: context_value.clone(),
            })
            .await,
    )
    .hmac;
    calls
        .get_mut(&1)
        .unwrap()
        .push(seen("/tessera.v1.System/AuditHash", "OK"));

    let mut hmac_found = false;
    for id in cluster.ids() {
        let all = records(&cluster, id);
        let new = &all[before[&id]..];
        let mut recorded: Vec<Seen> = new
            .iter()
            .map(|r| {
                seen(
                    r["method"].as_str().unwrap(),
                    r["grpc_code"].as_str().unwrap(),
                )
            })
            .collect();
        let mut expected = calls[&id].clone();
        recorded.sort();
        expected.sort();
        assert_eq!(
            recorded, expected,
            "node {id}: one record per call, with its outcome"
        );
        for r in new {
            assert_eq!(r["v"], 1);
            assert_eq!(r["node"], id);
            assert!(r["identity"] == "admin" || r["identity"] == "app", "{r}");
            assert_eq!(r["cert_sha256"].as_str().unwrap().len(), 64);
            if r["method"] == "/tessera.v1.Crypto/Encrypt"
                || r["method"] == "/tessera.v1.Crypto/Decrypt"
            {
                assert_eq!(r["key_id"], key_id.as_str(), "{r}");
            }
            if r["method"] == "/tessera.v1.Crypto/Decrypt" {
                assert_eq!(r["action"], "kms:Decrypt");
                assert_eq!(r["tessera_code"], "ACCESS_DENIED");
            }
            if r["method"] == "/tessera.v1.Keys/DescribeKey" {
                assert!(
                    r["hmac"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|h| h["field"] == "key_ref"),
                    "{r}"
                );
            }
            hmac_found |= r["hmac"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["field"] == "context_value" && h["hmac"] == hmac.as_str());
        }
        let (ok, document) = verify(&audit_files(&cluster, id));
        assert!(ok, "node {id}: {document}");
        assert_eq!(document["records"].as_u64().unwrap(), all.len() as u64);
    }
    assert!(
        hmac_found,
        "audit hash finds the records of a context value"
    );

    let mut audit_dirs = Vec::new();
    for id in cluster.ids() {
        audit_dirs.push(cluster.node(id).data_dir().join("audit"));
    }
    for dir in &audit_dirs {
        let found = find_needles(dir, &needles);
        assert!(
            found.is_empty(),
            "caller values or secrets in audit files: {found:?}"
        );
    }

    // The CLI asks a node for the same HMAC.
    let pki = cluster.pki();
    let out = Command::new(tessera())
        .args([
            "audit",
            "hash",
            "-o",
            "json",
            "--value",
            &context_value,
            "--addr",
        ])
        .arg(&cluster.node(2).api_addr)
        .arg("--ca-cert")
        .arg(pki.join("ca.pem"))
        .arg("--cert")
        .arg(pki.join("admin.pem"))
        .arg("--client-key")
        .arg(pki.join("admin-key.pem"))
        .output()
        .unwrap();
    assert_success(&out);
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        document["hmac"],
        hmac.as_str(),
        "one audit key on every node"
    );

    // Tampering with a copy of node 1's chain: the CLI names the line.
    let copy = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = audit_files(&cluster, 1)
        .iter()
        .map(|f| {
            let to = copy.path().join(f.file_name().unwrap());
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect();
    let last = files.last().unwrap();
    let text = std::fs::read_to_string(last).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let target = lines.len() / 2;
    let edited = lines[target].replacen("\"latency_us\":", "\"latency_us\":1", 1);
    lines[target] = &edited;
    std::fs::write(last, lines.join("\n") + "\n").unwrap();
    let (ok, document) = verify(&files);
    assert!(!ok);
    assert_eq!(document["valid"], false);
    assert_eq!(
        document["line"].as_u64().unwrap(),
        target as u64 + 1,
        "{document}"
    );
    assert_eq!(
        Path::new(document["file"].as_str().unwrap()),
        last.as_path()
    );
}

/// An encrypt of one byte under `key` through node `id`.
async fn encrypt_on(
    cluster: &TestCluster,
    id: u64,
    key: &str,
) -> Result<tonic::Response<pb::EncryptResponse>, tonic::Status> {
    CryptoClient::new(cluster.channel(id))
        .encrypt(pb::EncryptRequest {
            key: key.into(),
            plaintext: b"x".to_vec(),
            context: BTreeMap::new(),
        })
        .await
}

/// Waits until node `id` encrypts under `key`.
async fn wait_encrypts(cluster: &TestCluster, id: u64, key: &str, what: &str) {
    wait_for(what, WAIT, || async {
        encrypt_on(cluster, id, key).await.map(drop)
    })
    .await;
}

/// Node 2, which cannot write its audit trail, refuses every call with `AUDIT_UNAVAILABLE`
/// while nodes 1 and 3 keep serving.
async fn node_2_fails_closed_while_1_and_3_serve(cluster: &TestCluster, key: &str) {
    for _ in 0..3 {
        let status = encrypt_on(cluster, 2, key).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(
            status.metadata().get("tessera-error").unwrap(),
            "AUDIT_UNAVAILABLE"
        );
        encrypt_on(cluster, 1, key).await.unwrap();
        encrypt_on(cluster, 3, key).await.unwrap();
    }
}

#[tokio::test]
async fn t38_a_node_that_cannot_write_its_audit_trail_fails_closed() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let key = "fail-closed";
    create_key(&cluster, key).await;
    let encrypt = |id: u64| encrypt_on(&cluster, id, key);
    for id in cluster.ids() {
        wait_encrypts(&cluster, id, key, "encrypt on every node").await;
    }
    let dir = cluster.node(2).data_dir().join("audit");
    let moved = cluster.node(2).data_dir().join("audit.moved");
    std::fs::rename(&dir, &moved).unwrap();
    node_2_fails_closed_while_1_and_3_serve(&cluster, key).await;
    std::fs::rename(&moved, &dir).unwrap();
    encrypt(2).await.unwrap();
    for id in cluster.ids() {
        let (ok, document) = verify(&audit_files(&cluster, id));
        assert!(ok, "node {id}: {document}");
    }
    let codes: Vec<String> = records(&cluster, 2)
        .iter()
        .map(|r| r["grpc_code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.last().map(String::as_str), Some("OK"));
}

/// The same with a full disk: node 2's audit directory is its own small tmpfs, filled with a
/// ballast file while the node serves. Its calls fail closed, the other nodes (and node 2's
/// Raft data, on another filesystem) are untouched, and once space is freed calls succeed and
/// every chain verifies. Mounting needs root (CI runs as root); elsewhere the test says so.
#[tokio::test]
async fn t38_a_full_audit_disk_fails_calls_closed_until_space_is_freed() {
    if !tessera_testkit::disk::mounting_allowed() {
        eprintln!("t38 full disk needs root to mount the tmpfs it fills; not run as this user");
        return;
    }
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let key = "full-disk";
    create_key(&cluster, key).await;
    let dir = cluster.node(2).data_dir().join("audit");
    let kept = cluster.node(2).data_dir().join("audit.kept");
    cluster.stop(2);
    std::fs::rename(&dir, &kept).unwrap();
    let mount = tessera_testkit::disk::Tmpfs::mount(&dir, 4).unwrap();
    for entry in std::fs::read_dir(&kept).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    cluster.restart(2).await;
    cluster.unseal(2).await;
    let encrypt = |id: u64| encrypt_on(&cluster, id, key);
    wait_encrypts(
        &cluster,
        2,
        key,
        "node 2 to serve from its tmpfs audit directory",
    )
    .await;

    tessera_testkit::disk::fill(mount.path()).unwrap();
    // A record may still fit in the free end of the audit file's last page; once none fits,
    // every call fails.
    let mut served_after_fill = 0;
    loop {
        match encrypt(2).await {
            Ok(_) => served_after_fill += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                break;
            }
        }
        assert!(
            served_after_fill < 64,
            "node 2 kept serving with a full audit disk"
        );
    }
    node_2_fails_closed_while_1_and_3_serve(&cluster, key).await;
    tessera_testkit::disk::free(mount.path()).unwrap();
    wait_encrypts(&cluster, 2, key, "node 2 to serve once space is freed").await;
    for id in cluster.ids() {
        let (ok, document) = verify(&audit_files(&cluster, id));
        assert!(ok, "node {id}: {document}");
    }
    cluster.stop(2);
    drop(mount);
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

async fn timed_encrypts(client: &mut CryptoClient<Channel>, key: &str, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        client
            .encrypt(pb::EncryptRequest {
                key: key.into(),
                plaintext: b"b".to_vec(),
                context: BTreeMap::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("identity B refused: {e:?}"));
        samples.push(start.elapsed());
    }
    samples
}

/// Concurrent hammering tasks of identity A, and the connections they share.
const HAMMER_TASKS: usize = 8;
const HAMMER_CONNECTIONS: usize = 2;
/// Calls of identity B per measurement.
const B_CALLS: usize = 1000;

/// What one hammering task saw.
struct Hammered {
    served: u64,
    refused: u64,
    retry_after_s: Vec<u64>,
    /// The quickest refusal.
    fastest_refusal: Duration,
}

/// Encrypts as identity A until `stop`.
async fn hammer(channel: Channel, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Hammered {
    let mut a = CryptoClient::new(channel);
    let mut seen = Hammered {
        served: 0,
        refused: 0,
        retry_after_s: Vec::new(),
        fastest_refusal: Duration::MAX,
    };
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let started = Instant::now();
        match a
            .encrypt(pb::EncryptRequest {
                key: "rate-limited".into(),
                plaintext: b"a".to_vec(),
                context: BTreeMap::new(),
            })
            .await
        {
            Ok(_) => seen.served += 1,
            Err(status) => {
                seen.fastest_refusal = seen.fastest_refusal.min(started.elapsed());
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(
                    status.metadata().get("tessera-error").unwrap(),
                    "RATE_LIMITED"
                );
                seen.refused += 1;
                seen.retry_after_s.push(
                    status
                        .metadata()
                        .get("retry-after")
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap(),
                );
            }
        }
    }
    seen
}

#[tokio::test]
async fn t38_one_identity_past_its_rate_limit_does_not_slow_another() {
    let defaults = RateLimitSection::default();
    let app = Override {
        identity: "app".to_owned(),
        limits: ClassLimits {
            crypto: Limit {
                rate: 20.0,
                burst: 20.0,
            },
            ..defaults.limits.clone()
        },
    };
    let options = ClusterOptions {
        nodes: 1,
        rate_limits: RateLimitSection {
            overrides: vec![app],
            ..defaults
        },
        ..ClusterOptions::default()
    };
    let cluster = TestCluster::start_unsealed(tessera(), options).await;
    let key = "rate-limited";
    create_key(&cluster, key).await;
    allow_app(&cluster, r#""kms:Encrypt""#, key).await;
    let mut b = CryptoClient::new(cluster.channel(1));
    timed_encrypts(&mut b, key, 20).await;
    let unloaded = p99(timed_encrypts(&mut b, key, B_CALLS).await);

    // A hammers from its own runtime thread, so that its tasks compete with B's calls for the
    // node, not for B's scheduler.
    let hammer_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let channels: Vec<_> = {
        let _inside = hammer_runtime.enter();
        (0..HAMMER_CONNECTIONS)
            .map(|_| cluster.channel_with_cert(1, "app"))
            .collect()
    };
    let hammers: Vec<_> = (0..HAMMER_TASKS)
        .map(|i| {
            let channel = channels[i % HAMMER_CONNECTIONS].clone();
            hammer_runtime.spawn(hammer(channel, std::sync::Arc::clone(&stop)))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = p99(timed_encrypts(&mut b, key, B_CALLS).await);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut limited, mut fastest_refusal) = (0, 0, Duration::MAX);
    for hammer in hammers {
        let seen = hammer.await.unwrap();
        ok += seen.served;
        limited += seen.refused;
        fastest_refusal = fastest_refusal.min(seen.fastest_refusal);
        assert!(
            seen.retry_after_s.iter().all(|s| *s >= 1),
            "retry-after in whole seconds"
        );
    }
    hammer_runtime.shutdown_background();
    let after = p99(timed_encrypts(&mut b, key, B_CALLS).await);
    println!(
        "identity B encrypt p99: unloaded {unloaded:?}, while A is rate-limited {loaded:?} ({:.2}x), unloaded again {after:?}; A: {ok} served, {limited} RESOURCE_EXHAUSTED",
        loaded.as_secs_f64() / unloaded.as_secs_f64()
    );
    assert!(limited > 0, "A went past its limit");
    // Refusals are held back, so a caller looping on them is paced instead of costing the
    // node as much CPU as it can send.
    assert!(
        fastest_refusal >= Duration::from_millis(100),
        "a refusal came back after {fastest_refusal:?}"
    );
    // Generous: the figures above are the report; this only catches a node that lets one
    // identity's refusals starve the others.
    let baseline = unloaded.max(after);
    assert!(
        loaded <= baseline * 5 + Duration::from_millis(25),
        "B's p99 went from {baseline:?} to {loaded:?} while A was refused"
    );
    assert!(ok >= 20, "A's burst was served");
    let throttled = records(&cluster, 1)
        .iter()
        .filter(|r| r["tessera_code"] == "RATE_LIMITED" && r["identity"] == "app")
        .count();
    assert_eq!(throttled as u64, limited, "every refusal is audited");
}

/// Encrypts once as identity `app` through node `id`: the gRPC code name and the Tessera code.
async fn app_encrypt(cluster: &TestCluster, id: u64, key: &str) -> (&'static str, String) {
    let result = CryptoClient::new(cluster.channel_with_cert(id, "app"))
        .encrypt(pb::EncryptRequest {
            key: key.into(),
            plaintext: b"x".to_vec(),
            context: BTreeMap::new(),
        })
        .await;
    let tessera_code = match &result {
        Ok(_) => String::new(),
        Err(status) => status
            .metadata()
            .get("tessera-error")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    (code_name(&result), tessera_code)
}

/// Waits until an encrypt by `app` through node `id` is served again.
async fn wait_app_served(cluster: &TestCluster, id: u64, key: &str, what: &str) {
    tessera_testkit::wait_for(what, tessera_testkit::cluster::WAIT, || async {
        match app_encrypt(cluster, id, key).await {
            ("OK", _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn t38_rate_limit_rules_replicate_to_every_node_and_override_the_configuration() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let cluster = &cluster;
    let key = "budgeted";
    create_key(cluster, key).await;
    allow_app(cluster, r#""kms:Encrypt""#, key).await;
    let admin = crate::t60_cli::Cli::for_cluster(cluster);
    let app = crate::t60_cli::Cli::for_cluster_as(cluster, "app");
    for id in cluster.ids() {
        assert_eq!(app_encrypt(cluster, id, key).await.0, "OK");
    }

    // A rule with a zero crypto rate refuses app's crypto on every node, once it has applied
    // there; the admin is not affected.
    let rule = admin.json(
        &[
            "policy",
            "rate-limit",
            "put",
            "app",
            "--crypto",
            "0",
            "-o",
            "json",
        ],
        b"",
    );
    assert_eq!(
        rule,
        serde_json::json!({"identity": "app", "crypto": {"per_second": 0, "burst": 1},
                           "keys": null, "operator": null})
    );
    for id in cluster.ids() {
        tessera_testkit::wait_for(
            "the rule to apply on the node",
            tessera_testkit::cluster::WAIT,
            || async move {
                match app_encrypt(cluster, id, key).await {
                    ("RESOURCE_EXHAUSTED", code) if code == "RATE_LIMITED" => Ok(()),
                    other => Err(format!("node {id}: {other:?}")),
                }
            },
        )
        .await;
    }
    let out = admin.run(&["encrypt", "--key", key], b"admin");
    assert!(out.status.success(), "{out:?}");

    // A more specific rule wins over a glob; its burst bounds a quick run of calls.
    admin.json(
        &[
            "policy",
            "rate-limit",
            "put",
            "ap*",
            "--crypto",
            "1000",
            "-o",
            "json",
        ],
        b"",
    );
    admin.json(
        &[
            "policy",
            "rate-limit",
            "put",
            "app",
            "--crypto",
            "1/3",
            "--keys",
            "50/100",
            "-o",
            "json",
        ],
        b"",
    );
    let list = admin.json(&["policy", "rate-limit", "list", "-o", "json"], b"");
    let patterns: Vec<&str> = list["rate_limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identity"].as_str().unwrap())
        .collect();
    assert_eq!(patterns, ["ap*", "app"], "{list}");
    assert_eq!(list["rate_limits"][1]["keys"]["burst"], 100, "{list}");
    let node = 2;
    wait_app_served(cluster, node, key, "the 1/3 rule to apply on node 2").await;
    let started = Instant::now();
    let mut served = 1u64;
    while app_encrypt(cluster, node, key).await.0 == "OK" {
        served += 1;
        assert!(
            served <= 3 + started.elapsed().as_secs() + 1,
            "app was served {served} calls under a 1/s, burst 3 rule"
        );
    }

    // Deleting the rules gives app the node's configured budget back.
    for pattern in ["app", "ap*"] {
        let deleted = admin.json(
            &["policy", "rate-limit", "delete", pattern, "-o", "json"],
            b"",
        );
        assert_eq!(deleted["identity"], pattern);
    }
    wait_app_served(cluster, node, key, "app to be served again").await;

    // Bad input: each refused with a precise error, nothing stored.
    let refused = |cli: &crate::t60_cli::Cli, args: &[&str]| {
        let out = cli.run(args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        crate::t60_cli::error_document(&out)
    };
    let doc = refused(
        &admin,
        &["policy", "rate-limit", "put", "app", "-o", "json"],
    );
    assert_error(&doc, "INVALID_ARGUMENT", "at least one of crypto");
    let doc = refused(
        &admin,
        &[
            "policy",
            "rate-limit",
            "put",
            "app",
            "--crypto",
            "5/0",
            "-o",
            "json",
        ],
    );
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("burst"),
        "{doc}"
    );
    let doc = refused(
        &admin,
        &["policy", "rate-limit", "delete", "nobody", "-o", "json"],
    );
    assert_eq!(doc["error"]["code"], "NOT_FOUND", "{doc}");
    let doc = refused(
        &app,
        &[
            "policy",
            "rate-limit",
            "put",
            "app",
            "--crypto",
            "100000",
            "-o",
            "json",
        ],
    );
    assert_error(&doc, "PERMISSION_DENIED", "policy:PutRateLimit");
    let out = admin.run(
        &["policy", "rate-limit", "put", "app", "--crypto", "fast"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "bad usage");
    let list = admin.json(&["policy", "rate-limit", "list", "-o", "json"], b"");
    assert_eq!(list, serde_json::json!({"rate_limits": []}));
}
