//! Bad input gets a precise status and message, never a panic or a hang: TLS refusals at the
//! handshake, malformed and tampered ciphertexts, wrong context, unknown keys, size limits,
//! crypto on a sealed node, wrong unseal shares, and a configuration whose two ports would
//! trust the same CA.

use std::time::Duration;

use tessera_client::Code;
use tessera_launcher::config::{loopback, Entry, NodeConfig, NodeOptions};
use tessera_proto::cluster::v1::cluster_client::ClusterClient;
use tessera_proto::cluster::v1::RaftPayload;
use tessera_proto::v1::system_client::SystemClient;
use tessera_proto::v1::StatusRequest;
use tessera_server::NodeId;
use tessera_testkit::{ClusterOptions, NodeFiles, TestCluster};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::{ctx, tessera};

fn assert_status(err: &tessera_client::Error, code: Code, needle: &str) {
    assert_eq!(err.code(), code, "{err}");
    assert!(
        err.to_string()
            .to_lowercase()
            .contains(&needle.to_lowercase()),
        "expected {needle:?} in {err}"
    );
}

/// A status call over a channel built with `tls`; must fail at connect or at the first call.
async fn refused(endpoint: &str, tls: ClientTlsConfig) -> String {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    let channel = match channel.connect().await {
        Ok(channel) => channel,
        Err(e) => return format!("{e:?}"),
    };
    match SystemClient::new(channel)
        .status(StatusRequest::default())
        .await
    {
        Ok(_) => panic!("{endpoint} served a client it must refuse"),
        Err(status) => format!("{status:?}"),
    }
}

/// Waits until node 1's log records the handshake refusal (the client side may see either the
/// server's TLS alert or just a closed connection, depending on timing).
async fn assert_logged(cluster: &TestCluster, needle: &str, client_side: &str) {
    let log = cluster.node(1).log();
    tessera_testkit::wait_for(
        &format!("{needle:?} in the node log (client saw {client_side})"),
        Duration::from_secs(10),
        || async {
            let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
            if text.contains(needle) {
                Ok(())
            } else {
                Err("not yet".to_owned())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn t30_handshake_refuses_missing_and_foreign_client_certificates() {
    let cluster = TestCluster::start(tessera(), ClusterOptions::with_nodes(1)).await;
    let pki = cluster.pki();
    let ca = Certificate::from_pem(std::fs::read(pki.join("ca.pem")).unwrap());
    let endpoint = cluster.node(1).api_addr.clone();

    // Without a client certificate.
    let no_cert = refused(&endpoint, ClientTlsConfig::new().ca_certificate(ca.clone())).await;
    assert_logged(&cluster, "error=peer sent no certificates", &no_cert).await;

    // With a certificate from another CA.
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tessera())
        .args(["pki", "init", "--nodes", "1", "--dir"])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let foreign = Identity::from_pem(
        std::fs::read(other.path().join("admin.pem")).unwrap(),
        std::fs::read(other.path().join("admin-key.pem")).unwrap(),
    );
    let foreign_err = refused(
        &endpoint,
        ClientTlsConfig::new()
            .ca_certificate(ca.clone())
            .identity(foreign),
    )
    .await;
    assert_logged(
        &cluster,
        "error=invalid peer certificate: UnknownIssuer",
        &foreign_err,
    )
    .await;

    // A valid client certificate is refused on the cluster port (it trusts only the node CA).
    let admin = Identity::from_pem(
        std::fs::read(pki.join("admin.pem")).unwrap(),
        std::fs::read(pki.join("admin-key.pem")).unwrap(),
    );
    let cluster_endpoint = format!("https://{}", cluster.node(1).cluster_addr);
    let channel = Endpoint::from_shared(cluster_endpoint)
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(ca).identity(admin))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    let refused_on_cluster = match channel.connect().await {
        Err(_) => true,
        Ok(channel) => ClusterClient::new(channel)
            .vote(RaftPayload { data: vec![] })
            .await
            .is_err_and(|s| s.code() != tonic::Code::InvalidArgument),
    };
    assert!(
        refused_on_cluster,
        "a client certificate reached the cluster service"
    );

    // The SDK turns a refused handshake into a clear connection error.
    let foreign_client = tessera_client::Client::new(
        tessera_client::ClientConfig::from_files(
            vec![endpoint.clone()],
            &pki.join("ca.pem"),
            &other.path().join("admin.pem"),
            &other.path().join("admin-key.pem"),
        )
        .unwrap(),
    )
    .unwrap();
    let err = foreign_client.status().await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(
        err.to_string().contains(&endpoint),
        "the error names the endpoint: {err}"
    );
    let client = cluster.client_with_cert(vec![endpoint], "admin");
    client
        .status()
        .await
        .expect("the admin certificate is accepted");
}

#[tokio::test]
async fn t31_malformed_ciphertexts_contexts_keys_and_sizes() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let client = cluster.client(2);
    client.create_key("strict", "", "").await.unwrap();
    let context = ctx(&[("tenant", "a")]);
    let good = client
        .encrypt("strict", b"payload", &context)
        .await
        .unwrap()
        .ciphertext;

    // Truncations anywhere, header and body.
    for len in [0, 1, 5, 20, good.len() / 2, good.len() - 1] {
        let err = client.decrypt(&good[..len], &context).await.unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "truncated to {len}: {err}"
        );
    }
    // A flipped bit in the body or in the authenticated header.
    for position in [good.len() - 1, good.len() - 20, 40, 45] {
        let mut flipped = good.clone();
        flipped[position] ^= 0x01;
        let err = client.decrypt(&flipped, &context).await.unwrap_err();
        assert!(
            matches!(err.code(), Code::InvalidArgument | Code::NotFound),
            "bit {position}: {err}"
        );
    }
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 0x80;
    assert_status(
        &client.decrypt(&flipped, &context).await.unwrap_err(),
        Code::InvalidArgument,
        "modified",
    );
    // Foreign bytes: an unknown format version.
    let err = client
        .decrypt(b"\x07not a tessera ciphertext at all", &context)
        .await
        .unwrap_err();
    assert_status(&err, Code::InvalidArgument, "version");
    // Well-formed, but for a key that does not exist.
    let mut unknown = good.clone();
    let id_start = 2;
    unknown[id_start..id_start + 8].copy_from_slice(b"00000000");
    assert_status(
        &client.decrypt(&unknown, &context).await.unwrap_err(),
        Code::NotFound,
        "not found",
    );
    // Wrong, missing and extra context.
    for wrong in [
        ctx(&[("tenant", "b")]),
        ctx(&[]),
        ctx(&[("tenant", "a"), ("x", "y")]),
    ] {
        assert_status(
            &client.decrypt(&good, &wrong).await.unwrap_err(),
            Code::InvalidArgument,
            "encryption context",
        );
    }
    // The right context still works after all that.
    assert_eq!(
        client.decrypt(&good, &context).await.unwrap().plaintext,
        b"payload"
    );

    // Unknown keys and malformed references.
    for (key, code, fragment) in [
        ("nope", Code::NotFound, "not found"),
        ("alias/nope", Code::NotFound, "not found"),
        ("bad name!", Code::InvalidArgument, "key"),
    ] {
        let err = client.encrypt(key, b"x", &context).await.unwrap_err();
        assert_status(&err, code, fragment);
    }
    assert_status(
        &client.describe_key("nope").await.unwrap_err(),
        Code::NotFound,
        "not found",
    );
    assert_status(
        &client.rotate_key("nope").await.unwrap_err(),
        Code::NotFound,
        "not found",
    );

    // Sizes: empty and one byte over the documented 65536-byte maximum.
    assert_status(
        &client.encrypt("strict", b"", &context).await.unwrap_err(),
        Code::InvalidArgument,
        "empty",
    );
    let max = vec![7u8; 65536];
    let at_max = client.encrypt("strict", &max, &context).await.unwrap();
    assert_eq!(
        client
            .decrypt(&at_max.ciphertext, &context)
            .await
            .unwrap()
            .plaintext,
        max
    );
    let over = vec![7u8; 65537];
    assert_status(
        &client.encrypt("strict", &over, &context).await.unwrap_err(),
        Code::InvalidArgument,
        "65536",
    );

    // Context limits and bad key arguments.
    let too_many: std::collections::BTreeMap<String, String> =
        (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    assert_status(
        &client.encrypt("strict", b"x", &too_many).await.unwrap_err(),
        Code::InvalidArgument,
        "context",
    );
    assert_status(
        &client
            .encrypt("strict", b"x", &ctx(&[("", "v")]))
            .await
            .unwrap_err(),
        Code::InvalidArgument,
        "context",
    );
    assert_status(
        &client.create_key("strict", "", "").await.unwrap_err(),
        Code::AlreadyExists,
        "already exists",
    );
    assert_status(
        &client.create_key("has space", "", "").await.unwrap_err(),
        Code::InvalidArgument,
        "name",
    );
    assert_status(
        &client.create_key("ok-name", "DES", "").await.unwrap_err(),
        Code::InvalidArgument,
        "spec",
    );
    assert_status(
        &client
            .create_key("long-description", "", &"d".repeat(8193))
            .await
            .unwrap_err(),
        Code::InvalidArgument,
        "description",
    );
    // Nothing was half-applied by the refused writes.
    assert_eq!(client.list_keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn t32_sealed_node_refuses_crypto_naming_the_seal() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let client = cluster.client(3);
    client.create_key("sealed-test", "", "").await.unwrap();
    let context = ctx(&[]);
    let sealed_ct = client
        .encrypt("sealed-test", b"x", &context)
        .await
        .unwrap()
        .ciphertext;
    assert!(client.seal().await.unwrap().sealed);
    for err in [
        client
            .encrypt("sealed-test", b"x", &context)
            .await
            .unwrap_err(),
        client.decrypt(&sealed_ct, &context).await.unwrap_err(),
        client.create_key("while-sealed", "", "").await.unwrap_err(),
        client.describe_key("sealed-test").await.unwrap_err(),
    ] {
        assert_status(&err, Code::FailedPrecondition, "sealed");
        assert_eq!(err.tessera_code(), Some("SEALED"));
    }
    // The other nodes still serve.
    let other = cluster.client(1);
    assert_eq!(
        other.decrypt(&sealed_ct, &context).await.unwrap().plaintext,
        b"x"
    );
}

#[tokio::test]
async fn t33_wrong_unseal_shares_reset_progress_and_right_ones_still_unseal() {
    let mut cluster = TestCluster::start(tessera(), ClusterOptions::with_nodes(1)).await;
    let client = cluster.client(1);

    // Before init: unseal is refused with a clear precondition.
    let err = client
        .unseal("AQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .unwrap_err();
    assert_status(&err, Code::FailedPrecondition, "not initialized");

    let shares = cluster.init().await;
    let err = client.init(5, 3).await.unwrap_err();
    assert_status(&err, Code::FailedPrecondition, "already initialized");

    // Shares of another cluster's unseal key: decode fine, combine to the wrong key.
    let other = foreign_shares();
    client.unseal(&shares[0]).await.unwrap();
    client.unseal(&shares[1]).await.unwrap();
    let err = client.unseal(&other[2]).await.unwrap_err();
    assert_status(&err, Code::InvalidArgument, "do not reconstruct");
    assert_eq!(err.tessera_code(), Some("WRONG_SHARES"));
    let status = client.status().await.unwrap();
    assert!(status.sealed);
    assert_eq!(status.unseal_progress, 0, "progress must be reset");

    // Garbage and duplicate shares are refused without changing progress.
    assert_status(
        &client.unseal("not base64 !!").await.unwrap_err(),
        Code::InvalidArgument,
        "share",
    );
    client.unseal(&shares[3]).await.unwrap();
    assert_status(
        &client.unseal(&shares[3]).await.unwrap_err(),
        Code::InvalidArgument,
        "already submitted",
    );
    assert_eq!(client.status().await.unwrap().unseal_progress, 1);
    let reset = client.unseal_reset().await.unwrap();
    assert_eq!(reset.progress, 0);

    // The right shares (any three) still unseal.
    for share in [&shares[4], &shares[0], &shares[2]] {
        client.unseal(share).await.unwrap();
    }
    assert!(!client.status().await.unwrap().sealed);
    cluster.wait_serving(1).await;
}

#[tokio::test]
async fn t35_a_node_refuses_to_start_when_both_ports_would_trust_one_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    tessera_launcher::pki::init(&pki, 1, &[]).unwrap();
    // The node CA named as the client CA too: client certificates would be node certificates.
    let config = dir.path().join("node.toml");
    let mut node = NodeConfig::new(
        &pki,
        NodeId::new(1),
        loopback(0),
        loopback(0),
        Entry::Bootstrap,
        &NodeOptions::default(),
    );
    node.tls.client_ca = node.tls.node_ca.clone();
    node.write(&config, "t35").unwrap();
    let log = dir.path().join("server.log");
    let mut node = tessera_testkit::process::NodeProcess::spawn(tessera(), &config, &log);
    let status = tessera_testkit::wait_for(
        "the node to refuse to start",
        Duration::from_secs(30),
        || {
            let status = node.exit_status();
            async move { status.ok_or("still running") }
        },
    )
    .await;
    assert!(!status.success(), "{status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let ca = pki.join("ca.pem").display().to_string();
    assert!(
        text.contains(&format!(
            "tls.node_ca {ca} and tls.client_ca {ca} share a certificate"
        )),
        "{text}"
    );
    assert!(!dir.path().join("data").join("addresses.json").exists());
}

/// Shares of an unrelated unseal key: they decode fine but combine to the wrong key.
fn foreign_shares() -> Vec<String> {
    let material = tessera_crypto::root::initialize(5, 3, &mut tessera_crypto::os_rng()).unwrap();
    material
        .shares
        .iter()
        .map(|s| s.encode().to_string())
        .collect()
}
