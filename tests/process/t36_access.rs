//! Access control against real clusters: the `admin` certificate initialised the cluster (so it
//! is the administrator), the `app` certificate starts with no privileges. Policies, grants and
//! certificate revocations are written through one node and must hold on every node within a
//! bounded poll.

use std::collections::BTreeMap;

use tessera_proto::v1 as pb;
use tessera_proto::v1::access_client::AccessClient;
use tessera_proto::v1::crypto_client::CryptoClient;
use tessera_proto::v1::keys_client::KeysClient;
use tessera_proto::v1::system_client::SystemClient;
use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, NodeFiles, TestCluster};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::api::{answer, assert_status, decrypt_request, describe, key_of};
use crate::{ctx, tessera};

fn access(cluster: &TestCluster, id: u64) -> AccessClient<Channel> {
    AccessClient::new(cluster.channel(id))
}

/// Who the `app` certificate is, as node 1 sees it.
async fn app_identity(cluster: &TestCluster) -> pb::WhoAmIResponse {
    let mut app_access = AccessClient::new(cluster.channel_with_cert(1, "app"));
    answer(app_access.who_am_i(pb::WhoAmIRequest {}).await)
}

/// Grants `app` `kms:Decrypt` on `key` through node `id`.
async fn grant_app_decrypt(cluster: &TestCluster, id: u64, key: &str) -> pb::Grant {
    answer(
        access(cluster, id)
            .create_grant(pb::CreateGrantRequest {
                key: key.into(),
                grantee: "app".into(),
                actions: vec!["kms:Decrypt".into()],
                ..Default::default()
            })
            .await,
    )
}

fn app_crypto(cluster: &TestCluster, id: u64) -> CryptoClient<Channel> {
    CryptoClient::new(cluster.channel_with_cert(id, "app"))
}

async fn create_key(cluster: &TestCluster, name: &str, tags: &[(&str, &str)]) -> String {
    key_of(
        KeysClient::new(cluster.channel(1))
            .create_key(pb::CreateKeyRequest {
                name: name.into(),
                tags: ctx(tags),
                ..Default::default()
            })
            .await,
    )
    .key_id
}

async fn put_policy(cluster: &TestCluster, name: &str, document: &str) {
    access(cluster, 1)
        .put_policy(pb::PutPolicyRequest {
            name: name.into(),
            document: document.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn encrypt(
    client: &mut CryptoClient<Channel>,
    key: &str,
    context: BTreeMap<String, String>,
) -> Result<pb::EncryptResponse, Status> {
    client
        .encrypt(pb::EncryptRequest {
            key: key.into(),
            plaintext: b"orders".to_vec(),
            context,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn decrypt(
    client: &mut CryptoClient<Channel>,
    ciphertext: &[u8],
) -> Result<pb::DecryptResponse, Status> {
    client
        .decrypt(decrypt_request(ciphertext, BTreeMap::new()))
        .await
        .map(tonic::Response::into_inner)
}

/// Polls until `check` holds on every node.
async fn on_every_node<F, Fut>(cluster: &TestCluster, what: &str, check: F)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    for id in cluster.ids() {
        wait_for(&format!("{what} on node {id}"), WAIT, || check(id)).await;
    }
}

fn denied(result: Result<impl std::fmt::Debug, Status>) -> Result<Status, String> {
    match result {
        Err(s) if s.code() == Code::PermissionDenied => Ok(s),
        other => Err(format!("not denied yet: {other:?}")),
    }
}

#[tokio::test]
async fn t36_policy_allows_only_encrypt_on_app_keys_everywhere() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let orders = create_key(&cluster, "app-orders", &[("team", "shop")]).await;
    let billing = create_key(&cluster, "billing-key", &[]).await;
    let sealed = encrypt(
        &mut CryptoClient::new(cluster.channel(1)),
        &orders,
        ctx(&[]),
    )
    .await
    .unwrap();

    // Before any policy, app may do nothing but ask who it is.
    let who = access(&cluster, 2)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap();
    assert!(who.get_ref().admin);
    let mut app_access = AccessClient::new(cluster.channel_with_cert(2, "app"));
    let me = answer(app_access.who_am_i(pb::WhoAmIRequest {}).await);
    assert_eq!(me.identity, "app");
    assert!(!me.admin);
    assert_eq!(me.certificate_fingerprint_sha256.len(), 64);
    let refused = encrypt(&mut app_crypto(&cluster, 1), &orders, ctx(&[]))
        .await
        .unwrap_err();
    assert_status(
        &refused,
        Code::PermissionDenied,
        "ACCESS_DENIED",
        "kms:Encrypt",
    );

    put_policy(
        &cluster,
        "app-encrypt",
        r#"{ "statements": [
          { "sid": "enc", "effect": "allow", "identities": ["app"],
            "actions": ["kms:Encrypt"], "keys": ["app-*"] },
          { "sid": "tenant", "effect": "allow", "identities": ["app"],
            "actions": ["kms:Decrypt"], "keys": ["billing-*"],
            "conditions": { "context": [ { "key": "tenant", "equals": "a" } ] } },
          { "sid": "tagged", "effect": "allow", "identities": ["app"],
            "actions": ["kms:DescribeKey"],
            "conditions": { "tags": [ { "key": "team", "equals": "shop" } ] } } ] }"#,
    )
    .await;

    // 1: encrypt with app-orders through every node; everything else is refused, naming the
    // action and the key.
    on_every_node(&cluster, "app may encrypt with app-orders", |id| {
        let cluster = &cluster;
        async move {
            encrypt(&mut app_crypto(cluster, id), "app-orders", ctx(&[]))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    for id in cluster.ids() {
        let mut crypto = app_crypto(&cluster, id);
        let s = decrypt(&mut crypto, &sealed.ciphertext).await.unwrap_err();
        assert_status(&s, Code::PermissionDenied, "ACCESS_DENIED", "kms:Decrypt");
        assert!(s.message().contains(&orders), "{s:?}");
        assert!(
            !s.message().contains("app-encrypt"),
            "names no policy: {s:?}"
        );
        let s = encrypt(&mut crypto, "billing-key", ctx(&[]))
            .await
            .unwrap_err();
        assert_status(&s, Code::PermissionDenied, "ACCESS_DENIED", &billing);
        let s = KeysClient::new(cluster.channel_with_cert(id, "app"))
            .create_key(pb::CreateKeyRequest {
                name: "app-new".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_status(&s, Code::PermissionDenied, "ACCESS_DENIED", "kms:CreateKey");
        let s = SystemClient::new(cluster.channel_with_cert(id, "app"))
            .seal(pb::SealRequest {})
            .await
            .unwrap_err();
        assert_status(&s, Code::PermissionDenied, "ACCESS_DENIED", "operator:Seal");
        // Status answers everyone, but the full-state digest only operators.
        let status = SystemClient::new(cluster.channel_with_cert(id, "app"))
            .status(pb::StatusRequest {
                with_state_digest: true,
            })
            .await
            .unwrap();
        assert_eq!(
            status.get_ref().state_digest,
            "",
            "node {id} showed app the digest"
        );
    }
    // 5: the node stays unsealed, and the admin (the initialiser) may still seal it.
    for id in cluster.ids() {
        assert!(!cluster.client(id).status().await.unwrap().sealed);
    }

    // 2: a context condition (app may decrypt for tenant a only) and a tag condition.
    let mut admin_crypto = CryptoClient::new(cluster.channel(1));
    let mut crypto = app_crypto(&cluster, 1);
    for (tenant, allowed) in [("a", true), ("b", false)] {
        let context = ctx(&[("tenant", tenant)]);
        let sealed = encrypt(&mut admin_crypto, "billing-key", context.clone()).await;
        let ciphertext = sealed.unwrap().ciphertext;
        let opened = crypto
            .decrypt(pb::DecryptRequest {
                ciphertext,
                context,
            })
            .await;
        if allowed {
            opened.unwrap();
        } else {
            let s = opened.unwrap_err();
            assert_status(&s, Code::PermissionDenied, "ACCESS_DENIED", "kms:Decrypt");
        }
    }
    let mut app_keys = KeysClient::new(cluster.channel_with_cert(1, "app"));
    app_keys.describe_key(describe("app-orders")).await.unwrap();
    let s = app_keys
        .describe_key(describe("billing-key"))
        .await
        .unwrap_err();
    assert_status(
        &s,
        Code::PermissionDenied,
        "ACCESS_DENIED",
        "kms:DescribeKey",
    );

    // 2: a deny beats the allow, on every node.
    put_policy(
        &cluster,
        "no-orders",
        r#"{ "statements": [ { "effect": "deny", "identities": ["*"],
            "actions": ["kms:Encrypt"], "keys": ["app-orders"] } ] }"#,
    )
    .await;
    on_every_node(&cluster, "the deny to win", |id| {
        let cluster = &cluster;
        async move {
            denied(encrypt(&mut app_crypto(cluster, id), "app-orders", ctx(&[])).await).map(|_| ())
        }
    })
    .await;
    // The deny names everyone, the admin included.
    let s = encrypt(
        &mut CryptoClient::new(cluster.channel(3)),
        "app-orders",
        ctx(&[]),
    )
    .await
    .unwrap_err();
    assert_status(&s, Code::PermissionDenied, "ACCESS_DENIED", "kms:Encrypt");
    let check = answer(
        access(&cluster, 1)
            .check_policy(pb::CheckPolicyRequest {
                identity: "app".into(),
                action: "kms:Encrypt".into(),
                key: "app-orders".into(),
                context: BTreeMap::new(),
            })
            .await,
    );
    assert!(!check.allowed);
    assert!(check.decided_by.contains("no-orders"), "{check:?}");

    // Only an operator identity seals: the admin may.
    let sealed_reply = SystemClient::new(cluster.channel(3))
        .seal(pb::SealRequest {})
        .await
        .unwrap();
    assert!(sealed_reply.get_ref().sealed);
}

#[tokio::test]
async fn t36_grants_and_revoked_certificates_apply_on_every_node() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let key = create_key(&cluster, "shared", &[]).await;
    let sealed = encrypt(&mut CryptoClient::new(cluster.channel(1)), &key, ctx(&[]))
        .await
        .unwrap();

    // 3: a grant lets app decrypt with that one key, then its revocation refuses it
    // everywhere.
    let grant = grant_app_decrypt(&cluster, 2, "shared").await;
    assert_eq!(grant.key_id, key);
    on_every_node(&cluster, "the grant to allow decrypt", |id| {
        let cluster = &cluster;
        let ciphertext = sealed.ciphertext.clone();
        async move {
            decrypt(&mut app_crypto(cluster, id), &ciphertext)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    let s = encrypt(&mut app_crypto(&cluster, 1), "shared", ctx(&[]))
        .await
        .unwrap_err();
    assert_status(&s, Code::PermissionDenied, "ACCESS_DENIED", "kms:Encrypt");
    access(&cluster, 3)
        .revoke_grant(pb::RevokeGrantRequest {
            grant_id: grant.grant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    on_every_node(&cluster, "the revoked grant to refuse decrypt", |id| {
        let cluster = &cluster;
        let ciphertext = sealed.ciphertext.clone();
        async move { denied(decrypt(&mut app_crypto(cluster, id), &ciphertext).await).map(|_| ()) }
    })
    .await;

    // 3: an expiring grant allows until cluster time passes its expiry, then refuses.
    access(&cluster, 1)
        .create_grant(pb::CreateGrantRequest {
            key: "shared".into(),
            grantee: "app".into(),
            actions: vec!["kms:Decrypt".into()],
            expires_in_seconds: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    wait_for("the expiring grant to allow decrypt", WAIT, || {
        let cluster = &cluster;
        let ciphertext = sealed.ciphertext.clone();
        async move {
            decrypt(&mut app_crypto(cluster, 1), &ciphertext)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await;
    on_every_node(&cluster, "the expired grant to refuse decrypt", |id| {
        let cluster = &cluster;
        let ciphertext = sealed.ciphertext.clone();
        async move { denied(decrypt(&mut app_crypto(cluster, id), &ciphertext).await).map(|_| ()) }
    })
    .await;

    // 4: revoking app's certificate by fingerprint refuses its already-open channels and
    // new connections on every node; the admin is unaffected.
    put_policy(
        &cluster,
        "app-random",
        r#"{ "statements": [ { "effect": "allow", "identities": ["app"],
            "actions": ["kms:GenerateRandom"] } ] }"#,
    )
    .await;
    let open: Vec<CryptoClient<Channel>> = cluster
        .ids()
        .into_iter()
        .map(|id| app_crypto(&cluster, id))
        .collect();
    for (mut client, id) in open.iter().cloned().zip(cluster.ids()) {
        wait_for(
            &format!("app to draw random bytes on node {id}"),
            WAIT,
            || {
                let mut client = client.clone();
                async move {
                    client
                        .generate_random(pb::GenerateRandomRequest { number_of_bytes: 8 })
                        .await
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await;
        client
            .generate_random(pb::GenerateRandomRequest { number_of_bytes: 8 })
            .await
            .unwrap();
    }
    let fingerprint = app_identity(&cluster).await.certificate_fingerprint_sha256;
    access(&cluster, 2)
        .revoke_certificate(pb::RevokeCertificateRequest {
            certificate: Some(
                pb::revoke_certificate_request::Certificate::FingerprintSha256Hex(fingerprint),
            ),
            ..Default::default()
        })
        .await
        .unwrap();
    for (client, id) in open.into_iter().zip(cluster.ids()) {
        let s = wait_for(
            &format!("the open channel to node {id} to be refused"),
            WAIT,
            || {
                let mut client = client.clone();
                async move {
                    denied(
                        client
                            .generate_random(pb::GenerateRandomRequest { number_of_bytes: 8 })
                            .await,
                    )
                }
            },
        )
        .await;
        assert_status(&s, Code::PermissionDenied, "CERTIFICATE_REVOKED", "revoked");
        let s = app_crypto(&cluster, id)
            .generate_random(pb::GenerateRandomRequest { number_of_bytes: 8 })
            .await
            .unwrap_err();
        assert_status(&s, Code::PermissionDenied, "CERTIFICATE_REVOKED", "revoked");
        // Not even the calls every identity may make are answered.
        let s = SystemClient::new(cluster.channel_with_cert(id, "app"))
            .status(pb::StatusRequest::default())
            .await
            .unwrap_err();
        assert_status(&s, Code::PermissionDenied, "CERTIFICATE_REVOKED", "revoked");
        // The admin is unaffected.
        CryptoClient::new(cluster.channel(id))
            .generate_random(pb::GenerateRandomRequest { number_of_bytes: 8 })
            .await
            .unwrap();
    }
    let listed = answer(
        access(&cluster, 3)
            .list_revoked_certificates(pb::ListRevokedCertificatesRequest {})
            .await,
    );
    assert_eq!(listed.certificates.len(), 1);
}

#[tokio::test]
async fn t36_access_state_survives_leader_kill_and_restart() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    create_key(&cluster, "kept", &[]).await;
    put_policy(
        &cluster,
        "kept-policy",
        r#"{ "statements": [ { "effect": "allow", "identities": ["app"],
            "actions": ["kms:Encrypt"], "keys": ["kept"] } ] }"#,
    )
    .await;
    let grant = grant_app_decrypt(&cluster, 1, "kept").await;
    let serial = app_identity(&cluster).await.certificate_serial;
    access(&cluster, 1)
        .revoke_certificate(pb::RevokeCertificateRequest {
            certificate: Some(pb::revoke_certificate_request::Certificate::SerialHex(
                serial.clone(),
            )),
            ..Default::default()
        })
        .await
        .unwrap();

    // 6: SIGKILL the leader, bring it back, and every node holds the same access state.
    let leader = cluster.leader().await;
    cluster.kill(leader);
    cluster.restart(leader).await;
    cluster.unseal(leader).await;
    let digests = wait_for("every node to reach the same state digest", WAIT, || {
        let cluster = &cluster;
        async move {
            let mut seen = Vec::new();
            for id in cluster.ids() {
                let status = cluster
                    .client(id)
                    .status_with_digest()
                    .await
                    .map_err(|e| e.to_string())?;
                seen.push((status.applied_index, status.state_digest));
            }
            let first = seen.first().cloned().unwrap_or_default();
            if !first.1.is_empty() && seen.iter().all(|s| *s == first) {
                Ok(first)
            } else {
                Err(format!("{seen:?}"))
            }
        }
    })
    .await;
    assert_eq!(digests.1.len(), 64);
    cluster.wait_serving(leader).await;
    let mut restarted = access(&cluster, leader);
    let policy = answer(
        restarted
            .get_policy(pb::GetPolicyRequest {
                name: "kept-policy".into(),
            })
            .await,
    );
    assert_eq!(policy.version, 1);
    assert!(policy.document.contains("kms:Encrypt"), "{policy:?}");
    let grants = answer(
        restarted
            .list_grants(pb::ListGrantsRequest { key: "kept".into() })
            .await,
    );
    assert_eq!(grants.grants, vec![grant]);
    let revoked = answer(
        restarted
            .list_revoked_certificates(pb::ListRevokedCertificatesRequest {})
            .await,
    );
    assert_eq!(revoked.certificates.len(), 1);
    assert!(revoked.certificates[0].entry.starts_with("serial/"));
    // The revoked certificate is refused by the restarted node.
    let s = encrypt(&mut app_crypto(&cluster, leader), "kept", ctx(&[]))
        .await
        .unwrap_err();
    assert_status(&s, Code::PermissionDenied, "CERTIFICATE_REVOKED", "revoked");
}

/// `init_identities` in a node's configuration: `Init` through that node from another identity
/// is refused with `PERMISSION_DENIED` and initialises nothing; a listed identity initialises.
#[tokio::test]
async fn t36_init_identities_refuse_other_initialisers() {
    let mut cluster = TestCluster::start(tessera(), ClusterOptions::default()).await;
    cluster.stop(1);
    let config = cluster.node(1).config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("init_identities = [\"admin\"]\n{text}")).unwrap();
    cluster.restart(1).await;

    let init = pb::InitRequest {
        shares: 3,
        threshold: 2,
        request_id: "init-by-app".into(),
    };
    let s = SystemClient::new(cluster.channel_with_cert(1, "app"))
        .init(init)
        .await
        .unwrap_err();
    assert_status(&s, Code::PermissionDenied, "ACCESS_DENIED", "operator:Init");
    for id in cluster.ids() {
        let status = cluster.client(id).status().await.unwrap();
        assert!(
            !status.initialized,
            "node {id} initialised by a refused Init"
        );
    }

    let shares = cluster.init().await;
    assert_eq!(
        shares.len(),
        5,
        "the listed identity initialises the cluster"
    );
    cluster
        .wait_status_all("see the cluster initialised", |status| {
            if status.initialized {
                Ok(())
            } else {
                Err("not initialised yet".to_owned())
            }
        })
        .await;
}
