//! Operating a node: the ops port (`/metrics` parsed as Prometheus text exposition, counters
//! that move with a workload, `/health`, `/ready` flipping with seal and lease), the gRPC health
//! and reflection services behind mutual TLS, JSON logs, and certificate reload on SIGHUP (new
//! connections see the new certificate on both ports, a stream of calls on an open connection
//! sees no error, a bad file is refused and the node keeps serving).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_client::CryptoClient;
use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, NodeFiles, TestCluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use crate::api::answer;
use crate::tessera;

/// A cluster whose nodes all have an ops port on a free loopback port.
async fn cluster_with_ops_ports(nodes: u64) -> TestCluster {
    TestCluster::start_unsealed(
        tessera(),
        ClusterOptions {
            nodes,
            ops_port: true,
            ..ClusterOptions::default()
        },
    )
    .await
}

/// Node `id`'s ops address, from the addresses it publishes.
fn ops_addr(cluster: &TestCluster, id: u64) -> SocketAddr {
    let path = cluster.node(id).data_dir().join("addresses.json");
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    published["ops"]
        .as_str()
        .expect("an ops address")
        .parse()
        .unwrap()
}

/// `GET path` over HTTP/1.1: status code and body.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, body.to_owned()))
}

/// Scrapes `/metrics`, checking that every line is a comment or a sample the parser reads.
pub async fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let (status, body) = get(addr, "/metrics").await.unwrap();
    assert_eq!(status, 200, "{body}");
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(
            matches!(
                prometheus_parse::LineInfo::parse(line),
                prometheus_parse::LineInfo::Sample { .. }
            ),
            "not a sample line: {line:?}"
        );
    }
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// `tessera_tls_reloads_total` with this outcome (`reloaded` or `refused`).
fn tls_reloads(scrape: &prometheus_parse::Scrape, outcome: &str) -> f64 {
    value(scrape, "tessera_tls_reloads_total", &[("outcome", outcome)])
}

/// The value of the sample `metric` whose labels include `labels` (0 if there is none).
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{metric}: unexpected value {other:?}"),
        })
        .sum()
}

/// Waits until node `id`'s `/ready` answers `status` with a body containing `reason`.
async fn wait_ready(cluster: &TestCluster, id: u64, status: u16, reason: &str) {
    let addr = ops_addr(cluster, id);
    wait_for(
        &format!("node {id} /ready to answer {status} ({reason})"),
        WAIT,
        || async {
            let (got, body) = get(addr, "/ready").await?;
            if got == status && body.contains(reason) {
                Ok(())
            } else {
                Err(format!("{got} {body}"))
            }
        },
    )
    .await;
}

/// The gRPC health status of `service` on node `id`.
async fn health(cluster: &TestCluster, id: u64, service: &str) -> ServingStatus {
    let reply = answer(
        HealthClient::new(cluster.channel(id))
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await,
    );
    ServingStatus::try_from(reply.status).unwrap()
}

/// Waits until node `id`'s overall gRPC health is `expected`.
async fn wait_health(cluster: &TestCluster, id: u64, expected: ServingStatus) {
    wait_for(&format!("node {id} health {expected:?}"), WAIT, || async {
        let got = health(cluster, id, "").await;
        if got == expected {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn t55_metrics_health_readiness_and_reflection() {
    let cluster = cluster_with_ops_ports(3).await;
    let ops = ops_addr(&cluster, 1);
    assert_eq!(get(ops, "/health").await.unwrap(), (200, "ok\n".to_owned()));
    for id in cluster.ids() {
        wait_ready(&cluster, id, 200, "ready").await;
    }
    assert_eq!(get(ops, "/nothing").await.unwrap().0, 404);

    // Counters move with a workload served by node 1.
    let encrypt_ok = [("action", "kms:Encrypt"), ("code", "OK")];
    let before = scrape(ops).await;
    let client = cluster.client(1);
    let key = client.create_key("metered", "", "").await.unwrap();
    for i in 0..20u8 {
        client
            .encrypt(&key.key_id, &[i], &Default::default())
            .await
            .unwrap();
    }
    let missing = client
        .encrypt("no-such-key", b"x", &Default::default())
        .await;
    assert!(missing.is_err());
    let after = scrape(ops).await;
    let counted = |s: &prometheus_parse::Scrape, labels: &[(&str, &str)]| {
        value(s, "tessera_requests_total", labels)
    };
    assert_eq!(
        counted(&after, &encrypt_ok) - counted(&before, &encrypt_ok),
        20.0
    );
    let not_found = [("action", "kms:Encrypt"), ("code", "NOT_FOUND")];
    assert_eq!(
        counted(&after, &not_found) - counted(&before, &not_found),
        1.0
    );
    let latency = after
        .samples
        .iter()
        .find(|s| {
            s.metric == "tessera_request_duration_seconds"
                && s.labels.get("action") == Some("kms:Encrypt")
        })
        .expect("an encrypt latency histogram");
    assert!(matches!(&latency.value, prometheus_parse::Value::Histogram(b) if !b.is_empty()));
    assert!(
        value(&after, "tessera_raft_applied_index", &[])
            > value(&before, "tessera_raft_applied_index", &[])
    );
    assert!(value(&after, "tessera_raft_term", &[]) >= 1.0);
    assert!(value(&after, "tessera_raft_commit_index", &[]) >= 1.0);
    assert!(value(&after, "tessera_raft_leader_changes_total", &[]) >= 1.0);
    assert_eq!(value(&after, "tessera_sealed", &[]), 0.0);
    assert_eq!(value(&after, "tessera_ready", &[]), 1.0);
    assert!(value(&after, "tessera_storage_bytes", &[]) > 0.0);
    assert!(value(&after, "tessera_lease_age_seconds", &[]) >= 0.0);
    let leader = cluster.leader().await;
    let on_leader = scrape(ops_addr(&cluster, leader)).await;
    let lags: Vec<_> = on_leader
        .samples
        .iter()
        .filter(|s| s.metric == "tessera_raft_replication_lag_entries")
        .collect();
    assert_eq!(lags.len(), 3, "one lag per member on the leader: {lags:?}");
    assert_eq!(value(&on_leader, "tessera_raft_is_leader", &[]), 1.0);

    // Readiness and gRPC health follow the seal.
    let sealed = if leader == 2 { 3 } else { 2 };
    assert_eq!(health(&cluster, sealed, "").await, ServingStatus::Serving);
    cluster.client(sealed).seal().await.unwrap();
    wait_ready(&cluster, sealed, 503, "sealed").await;
    wait_health(&cluster, sealed, ServingStatus::NotServing).await;
    assert_eq!(
        health(&cluster, sealed, "tessera.v1.Crypto").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        health(&cluster, sealed, "tessera.v1.System").await,
        ServingStatus::Serving,
        "System unseals a sealed node, so it stays SERVING"
    );
    assert_eq!(
        value(
            &scrape(ops_addr(&cluster, sealed)).await,
            "tessera_sealed",
            &[]
        ),
        1.0
    );
    cluster.unseal(sealed).await;
    wait_ready(&cluster, sealed, 200, "ready").await;
    wait_health(&cluster, sealed, ServingStatus::Serving).await;

    // ... and the lease: a node cut off from the others (paused) loses it.
    let alone = sealed;
    let others = cluster.ids_except(alone);
    for id in &others {
        cluster.node(*id).process().unwrap().pause();
    }
    wait_ready(&cluster, alone, 503, "no contact with a Raft leader").await;
    wait_health(&cluster, alone, ServingStatus::NotServing).await;
    for id in &others {
        cluster.node(*id).process().unwrap().resume();
    }
    wait_ready(&cluster, alone, 200, "ready").await;

    // Reflection lists the public services (and health), not the cluster protocol.
    let services = list_services(cluster.channel(1)).await.unwrap();
    for expected in [
        "tessera.v1.System",
        "tessera.v1.Keys",
        "tessera.v1.Crypto",
        "tessera.v1.Access",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected}: {services:?}"
        );
    }
    assert!(
        !services.iter().any(|s| s.contains("cluster")),
        "{services:?}"
    );
    // Like every call on the API port, it needs a client certificate.
    let pki = cluster.pki();
    let anonymous = tonic::transport::Endpoint::from_shared(cluster.node(1).api_addr.clone())
        .unwrap()
        .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(
            tonic::transport::Certificate::from_pem(std::fs::read(pki.join("ca.pem")).unwrap()),
        ))
        .unwrap()
        .connect_lazy();
    assert!(list_services(anonymous).await.is_err());
}

/// The services reflection lists on `channel`.
async fn list_services(channel: tonic::transport::Channel) -> Result<Vec<String>, tonic::Status> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    let reply = replies
        .message()
        .await?
        .ok_or_else(|| tonic::Status::unknown("no reply"))?;
    match reply.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => panic!("unexpected reflection reply {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn t55_json_log_format() {
    let mut cluster = TestCluster::start(tessera(), ClusterOptions::with_nodes(1)).await;
    assert!(cluster.stop(1));
    let config = cluster.node(1).config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("log_format = \"json\"\n{text}")).unwrap();
    let log = cluster.node(1).log();
    let before = std::fs::read_to_string(&log).unwrap().len();
    cluster.restart(1).await;
    let lines = wait_for("the node to log its start", WAIT, || async {
        let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
        let new = text.get(before..).unwrap_or_default().to_owned();
        if new.contains("node started") {
            Ok(new)
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    let mut started = false;
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            record["timestamp"].is_string() && record["level"].is_string(),
            "{record}"
        );
        started |= record["fields"]["message"] == "node started (sealed)";
    }
    assert!(started, "{lines}");
}

/// SHA-256 of the leaf certificate the TLS server at `addr` presents to a client holding
/// `identity` (`pki/<identity>.pem`), trusting every CA in `pki/ca.pem`.
async fn presented_certificate(pki: &Path, addr: &str, identity: &str) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.join("ca.pem")).map_err(|e| e.to_string())? {
        roots
            .add(ca.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let chain = CertificateDer::pem_file_iter(pki.join(format!("{identity}.pem")))
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(pki.join(format!("{identity}-key.pem")))
        .map_err(|e| e.to_string())?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr.trim_start_matches("https://"))
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or("no server certificate")?;
    Ok(hex::encode(Sha256::digest(leaf.as_ref())))
}

/// SHA-256 of the first certificate in the PEM file `path`.
fn file_fingerprint(path: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_file(path).unwrap();
    hex::encode(Sha256::digest(der.as_ref()))
}

/// Waits until node `id` presents the certificate `expected` on its API port (to `admin`) and
/// its cluster port (to node 2, a peer).
async fn wait_presented(cluster: &TestCluster, id: u64, expected: &str) {
    let pki = cluster.pki();
    let node = cluster.node(id);
    for (addr, identity) in [(&node.api_addr, "admin"), (&node.cluster_addr, "node2")] {
        wait_for(
            &format!("node {id} to present certificate {expected} at {addr}"),
            WAIT,
            || async {
                let got = presented_certificate(&pki, addr, identity).await?;
                if got == expected {
                    Ok(())
                } else {
                    Err(got)
                }
            },
        )
        .await;
    }
}

/// Sends SIGHUP to node `id`.
fn hang_up(cluster: &TestCluster, id: u64) {
    let pid = cluster.node(id).process().unwrap().pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn t55_certificates_reload_on_sighup_without_dropping_calls() {
    let cluster = cluster_with_ops_ports(3).await;
    let pki = cluster.pki();
    let cert = pki.join("node1.pem");
    let key = pki.join("node1-key.pem");
    let old = file_fingerprint(&cert);
    wait_presented(&cluster, 1, &old).await;
    let created = cluster
        .client(1)
        .create_key("rotation", "", "")
        .await
        .unwrap();

    // A stream of calls on one open connection to node 1, for the whole rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let stream = tokio::spawn({
        let mut crypto = CryptoClient::new(cluster.channel(1));
        let (stop, calls, key_id) = (Arc::clone(&stop), Arc::clone(&calls), created.key_id);
        async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let request = pb::EncryptRequest {
                    key: key_id.clone(),
                    plaintext: b"in flight".to_vec(),
                    context: Default::default(),
                };
                if let Err(status) = crypto.encrypt(request).await {
                    errors.push(status);
                }
                calls.fetch_add(1, Ordering::SeqCst);
            }
            errors
        }
    });
    wait_for("the stream of calls to run", WAIT, || async {
        (calls.load(Ordering::SeqCst) >= 20)
            .then_some(())
            .ok_or("fewer than 20 calls")
    })
    .await;

    // Issue a new certificate under the node CA, move it into place, SIGHUP.
    let issued = tessera_launcher::pki::issue_node(&pki, 1, "node1-next", &[]).unwrap();
    let new = file_fingerprint(&issued.cert);
    assert_ne!(new, old);
    std::fs::rename(&issued.key, &key).unwrap();
    std::fs::rename(&issued.cert, &cert).unwrap();
    hang_up(&cluster, 1);
    wait_presented(&cluster, 1, &new).await;
    let at_reload = calls.load(Ordering::SeqCst);
    wait_for("calls to go on after the reload", WAIT, || async {
        (calls.load(Ordering::SeqCst) >= at_reload + 20)
            .then_some(())
            .ok_or("fewer than 20 calls since the reload")
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let errors = stream.await.unwrap();
    assert!(
        errors.is_empty(),
        "calls on the open connection failed: {errors:?}"
    );
    // The cluster still replicates through node 1 with its new certificate.
    let client = cluster.client(1);
    client.create_key("after-rotation", "", "").await.unwrap();
    for id in [2, 3] {
        cluster.wait_serving(id).await;
        wait_for(&format!("node {id} to see the new key"), WAIT, || async {
            cluster.client(id).describe_key("after-rotation").await
        })
        .await;
    }

    // A bad certificate file is refused: the node keeps the one in use and serves.
    let log = cluster.node(1).log();
    let refusals = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("new TLS files refused")
            .count()
    };
    let refused_before = refusals();
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    hang_up(&cluster, 1);
    wait_for("the bad certificate to be refused", WAIT, || async {
        (refusals() > refused_before)
            .then_some(())
            .ok_or("no refusal logged yet")
    })
    .await;
    wait_presented(&cluster, 1, &new).await;
    cluster
        .client(1)
        .encrypt("after-rotation", b"still serving", &Default::default())
        .await
        .unwrap();
    let metrics = scrape(ops_addr(&cluster, 1)).await;
    assert!(tls_reloads(&metrics, "reloaded") >= 1.0);
    assert!(tls_reloads(&metrics, "refused") >= 1.0);
}

/// Sends SIGHUP to every running node and waits until each presents `certs[id]` (a
/// fingerprint) on both ports.
async fn reload_all(cluster: &TestCluster, certs: &[(u64, String)]) {
    for (id, fingerprint) in certs {
        hang_up(cluster, *id);
        wait_presented(cluster, *id, fingerprint).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn t55_the_node_ca_rotates_without_a_restart() {
    let mut cluster = cluster_with_ops_ports(3).await;
    let pki = cluster.pki();
    let old_ca = std::fs::read_to_string(pki.join("ca.pem")).unwrap();
    // A new node CA with certificates for the same node identities.
    let next = pki.parent().unwrap().join("next-pki");
    let made = std::process::Command::new(tessera())
        .args(["pki", "init", "--nodes", "3", "--dir"])
        .arg(&next)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let new_ca = std::fs::read_to_string(next.join("ca.pem")).unwrap();
    let old: Vec<(u64, String)> = cluster
        .ids()
        .into_iter()
        .map(|id| (id, file_fingerprint(&pki.join(format!("node{id}.pem")))))
        .collect();

    // 1. Every node trusts both CAs (the bundle is shared by the test cluster's nodes).
    std::fs::write(pki.join("ca.pem"), format!("{old_ca}{new_ca}")).unwrap();
    reload_all(&cluster, &old).await;
    // 2. Node by node, the certificate from the new CA.
    let mut new = Vec::new();
    for id in cluster.ids() {
        for suffix in ["-key.pem", ".pem"] {
            let file = format!("node{id}{suffix}");
            std::fs::copy(next.join(&file), pki.join(format!("{file}.next"))).unwrap();
            std::fs::rename(pki.join(format!("{file}.next")), pki.join(&file)).unwrap();
        }
        let fingerprint = file_fingerprint(&pki.join(format!("node{id}.pem")));
        reload_all(&cluster, &[(id, fingerprint.clone())]).await;
        new.push((id, fingerprint));
        cluster
            .client(id)
            .create_key(&format!("during-rotation-{id}"), "", "")
            .await
            .unwrap();
    }
    // 3. Only the new CA is trusted.
    std::fs::write(pki.join("ca.pem"), &new_ca).unwrap();
    reload_all(&cluster, &new).await;

    // A node restarted now is reached only by peers that dial with their new certificates.
    assert!(cluster.stop(3));
    cluster
        .client(1)
        .create_key("after-rotation", "", "")
        .await
        .unwrap();
    cluster.restart(3).await;
    cluster.unseal(3).await;
    cluster.wait_serving(3).await;
    wait_for("node 3 to catch up after the rotation", WAIT, || async {
        cluster.client(3).describe_key("after-rotation").await
    })
    .await;
    let metrics = scrape(ops_addr(&cluster, 1)).await;
    assert_eq!(
        tls_reloads(&metrics, "refused"),
        0.0,
        "no step of the runbook is refused"
    );
}
