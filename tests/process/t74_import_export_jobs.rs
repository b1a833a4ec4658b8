//! BYOK import, wrapped export, and the leader's background jobs (automatic rotation and
//! destruction after the deletion window), on the leader and on a follower.

use tessera_crypto::ciphertext;
use tessera_crypto::sign::{self, MessageType, SigningAlgorithm};
use tessera_crypto::{wrap, EncryptionContext, KeySpec, SecretKey256};
use tessera_proto::v1 as pb;
use tessera_state::key::{export_aad, import_aad};
use tessera_state::{KeyId, KeyVersion};
use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, TestCluster};
use tonic::Code;

use crate::api::{
    alias_request, answer, assert_refused, clients_on_leader_and_follower, create, crypto,
    decrypt_no_context, describe, encrypt_no_context, key_of, keys, leader_and_follower,
    schedule_deletion, sign_request, write,
};
use crate::tessera;

fn external(name: &str, spec: &str) -> pb::CreateKeyRequest {
    pb::CreateKeyRequest {
        name: name.into(),
        spec: spec.into(),
        origin: "EXTERNAL".into(),
        ..Default::default()
    }
}

/// The import AAD of the key with id `key_id`.
fn aad_of(key_id: &str) -> Vec<u8> {
    import_aad(&KeyId::parse(key_id).unwrap())
}

/// `material` wrapped to the import public key `public_key` (as an import parameters answer
/// carries it) with `aad`.
fn wrap_to(public_key: &[u8], aad: &[u8], material: &[u8]) -> Vec<u8> {
    let recipient = wrap::parse_x25519_public_key(public_key).unwrap();
    wrap::wrap(&recipient, aad, material, &mut tessera_crypto::os_rng()).unwrap()
}

fn import_request(key: &str, token: &str, wrapped: Vec<u8>) -> pb::ImportKeyMaterialRequest {
    pb::ImportKeyMaterialRequest {
        key: key.into(),
        import_token: token.into(),
        wrapped_material: wrapped,
        request_id: String::new(),
    }
}

fn export_request(key: &str, version: u32, wrapping_public_key: Vec<u8>) -> pb::ExportKeyRequest {
    pb::ExportKeyRequest {
        key: key.into(),
        version,
        wrapping_public_key,
    }
}

#[tokio::test]
async fn t74_byok_import_works_for_every_operation_of_its_spec() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    for (node, mut k, mut c) in clients_on_leader_and_follower(&cluster).await {
        // AES: encrypt in Tessera, decrypt with the imported material outside it.
        let name = format!("byok-aes-{node}");
        let key = key_of(k.create_key(external(&name, "AES256_GCM")).await);
        assert_eq!(
            (key.state.as_str(), key.origin.as_str(), key.primary_version),
            ("PENDING_IMPORT", "EXTERNAL", 0)
        );
        assert_refused(
            c.encrypt(encrypt_no_context(&name, b"x")).await,
            Code::FailedPrecondition,
            "KEY_PENDING_IMPORT",
            "import",
        );
        assert_refused(
            k.rotate_key(write(&name)).await,
            Code::FailedPrecondition,
            "WRONG_ORIGIN",
            "importing new material",
        );

        let params = answer(k.get_import_parameters(write(&name)).await);
        assert_eq!(params.wrapping_algorithm, "X25519_HKDF_SHA256_AES_256_GCM");
        assert!(params
            .public_key_pem
            .starts_with("-----BEGIN PUBLIC KEY-----"));
        let material = [0x42u8; 32];
        let aad = aad_of(&key.key_id);
        let wrapped = wrap_to(&params.public_key, &aad, &material);

        // Wrong token, wrong AAD, wrong length: refused precisely; nothing imported.
        let import = |token: &str, wrapped: Vec<u8>| import_request(&name, token, wrapped);
        assert_refused(
            k.import_key_material(import("not-the-token", wrapped.clone()))
                .await,
            Code::FailedPrecondition,
            "IMPORT_TOKEN_INVALID",
            "unknown or was already used",
        );
        for (wrapped, fragment) in [
            (
                wrap_to(&params.public_key, b"other", &material),
                "cannot be unwrapped",
            ),
            (wrap_to(&params.public_key, &aad, &[1u8; 16]), "AES256_GCM"),
        ] {
            assert_refused(
                k.import_key_material(import(&params.import_token, wrapped))
                    .await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                fragment,
            );
        }

        let imported = key_of(
            k.import_key_material(import(&params.import_token, wrapped.clone()))
                .await,
        );
        assert_eq!(
            (imported.state.as_str(), imported.primary_version),
            ("ENABLED", 1)
        );
        assert_refused(
            k.import_key_material(import(&params.import_token, wrapped))
                .await,
            Code::FailedPrecondition,
            "IMPORT_TOKEN_INVALID",
            "already used",
        );
        let sealed = answer(c.encrypt(encrypt_no_context(&name, b"byok data")).await);
        let outside = ciphertext::decrypt(
            &SecretKey256::from_bytes(material),
            &sealed.ciphertext,
            &EncryptionContext::default(),
        )
        .unwrap();
        assert_eq!(outside.as_slice(), b"byok data");

        // Importing again adds a version (rotation of an imported key).
        let params = answer(k.get_import_parameters(write(&name)).await);
        let wrapped = wrap_to(&params.public_key, &aad, &[0x43u8; 32]);
        let rotated = key_of(
            k.import_key_material(import(&params.import_token, wrapped))
                .await,
        );
        assert_eq!(rotated.primary_version, 2);
        assert_eq!(
            answer(c.decrypt(decrypt_no_context(&sealed.ciphertext)).await).plaintext,
            b"byok data"
        );

        // ECDSA P-256: sign in Tessera, verify with the public key derived outside it.
        let name = format!("byok-ec-{node}");
        let key = key_of(k.create_key(external(&name, "ECDSA_P256")).await);
        let scalar = KeySpec::EcdsaP256.generate_material(&mut tessera_crypto::os_rng());
        let params = answer(k.get_import_parameters(write(&name)).await);
        let wrapped = wrap_to(&params.public_key, &aad_of(&key.key_id), scalar.as_slice());
        k.import_key_material(import_request(&name, &params.import_token, wrapped))
            .await
            .unwrap();
        let signed = answer(c.sign(sign_request(&name, b"imported")).await);
        let public = sign::public_key_der(KeySpec::EcdsaP256, scalar.as_slice()).unwrap();
        assert!(sign::verify(
            KeySpec::EcdsaP256,
            &public,
            SigningAlgorithm::EcdsaSha256,
            b"imported",
            MessageType::Raw,
            &signed.signature
        )
        .unwrap());

        // A generated key refuses import parameters.
        let plain = format!("plain-{node}");
        create(&cluster, node, &plain, "").await;
        assert_refused(
            k.get_import_parameters(write(&plain)).await,
            Code::FailedPrecondition,
            "WRONG_ORIGIN",
            "EXTERNAL",
        );
    }
}

#[tokio::test]
async fn t75_import_tokens_expire() {
    let options = ClusterOptions {
        import_token_ttl_seconds: 1,
        ..ClusterOptions::with_nodes(1)
    };
    let cluster = TestCluster::start_unsealed(tessera(), options).await;
    let mut k = keys(&cluster, 1);
    let key = key_of(k.create_key(external("expiring", "AES256_GCM")).await);
    let params = answer(k.get_import_parameters(write("expiring")).await);
    let wrapped = wrap_to(&params.public_key, &aad_of(&key.key_id), &[7u8; 32]);
    wait_for("the import token to expire", WAIT, || async {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        if now > params.expires_at_ms {
            Ok(())
        } else {
            Err("not yet")
        }
    })
    .await;
    assert_refused(
        k.import_key_material(import_request("expiring", &params.import_token, wrapped))
            .await,
        Code::FailedPrecondition,
        "IMPORT_TOKEN_EXPIRED",
        "expired",
    );
}

#[tokio::test]
async fn t76_export_only_exportable_keys_wrapped_to_the_callers_key() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    for (node, mut k, mut c) in clients_on_leader_and_follower(&cluster).await {
        let (secret, public) = wrap::generate_wrapping_key(&mut tessera_crypto::os_rng());
        let locked = format!("locked-{node}");
        create(&cluster, node, &locked, "").await;
        assert_refused(
            k.export_key(export_request(&locked, 0, public.to_vec()))
                .await,
            Code::FailedPrecondition,
            "NOT_EXPORTABLE",
            "not created exportable",
        );

        let open = format!("open-{node}");
        let key = key_of(
            k.create_key(pb::CreateKeyRequest {
                name: open.clone(),
                exportable: true,
                ..Default::default()
            })
            .await,
        );
        assert!(key.exportable);
        let sealed = answer(c.encrypt(encrypt_no_context(&open, b"exported")).await);
        for recipient in [
            public.to_vec(),
            wrap::x25519_public_key_der(&public),
            wrap::x25519_public_key_pem(&public).into_bytes(),
        ] {
            let exported = answer(k.export_key(export_request(&open, 0, recipient)).await);
            assert_eq!(
                (exported.version, exported.spec.as_str()),
                (1, "AES256_GCM")
            );
            let aad = export_aad(&KeyId::parse(&key.key_id).unwrap(), KeyVersion::FIRST);
            let material = wrap::unwrap(&secret, &aad, &exported.wrapped_material).unwrap();
            let key256 = SecretKey256::try_from_slice(material.as_slice()).unwrap();
            let opened =
                ciphertext::decrypt(&key256, &sealed.ciphertext, &EncryptionContext::default())
                    .unwrap();
            assert_eq!(opened.as_slice(), b"exported");
        }
        for (request, code, tessera_code, fragment) in [
            (
                export_request(&open, 0, vec![1, 2, 3]),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "wrapping_public_key",
            ),
            (
                export_request(&open, 7, public.to_vec()),
                Code::NotFound,
                "VERSION_NOT_FOUND",
                "no version 7",
            ),
        ] {
            assert_refused(k.export_key(request).await, code, tessera_code, fragment);
        }
    }
}

#[tokio::test]
async fn t77_leader_jobs_rotate_and_destroy_on_schedule() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let follower = cluster.follower().await;
    let mut k = keys(&cluster, follower);
    let mut c = crypto(&cluster, follower);

    let rotating = key_of(
        k.create_key(pb::CreateKeyRequest {
            name: "auto".into(),
            rotation_period_ms: 1500,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(rotating.next_rotation_ms, rotating.created_at_ms + 1500);
    let first = answer(c.encrypt(encrypt_no_context("auto", b"v1")).await);
    let rotated = wait_for("the rotation job to add version 2", WAIT, || {
        let mut k = k.clone();
        async move {
            let key = k
                .describe_key(describe("auto"))
                .await
                .map_err(|e| e.to_string())?
                .into_inner()
                .key
                .unwrap();
            if key.primary_version >= 2 {
                Ok(key)
            } else {
                Err(format!("primary {}", key.primary_version))
            }
        }
    })
    .await;
    assert!(rotated.versions.iter().all(|v| v.state == "ENABLED"));
    assert_eq!(
        answer(c.decrypt(decrypt_no_context(&first.ciphertext)).await).plaintext,
        b"v1"
    );

    // Scheduled first, with a window that will not pass during the test.
    create(&cluster, follower, "kept", "").await;
    k.schedule_key_deletion(schedule_deletion("kept", 3600))
        .await
        .unwrap();
    create(&cluster, follower, "doomed", "").await;
    k.create_alias(alias_request("alias/doomed", "doomed"))
        .await
        .unwrap();
    let sealed = answer(c.encrypt(encrypt_no_context("doomed", b"bye")).await);
    let err = k
        .schedule_key_deletion(schedule_deletion("doomed", 1))
        .await
        .map(|_| ());
    assert!(err.is_ok(), "{err:?}");
    for id in cluster.ids() {
        let mut k = keys(&cluster, id);
        wait_for(
            &format!("node {id} to forget the destroyed key"),
            WAIT,
            || {
                let mut k = k.clone();
                async move {
                    match k.describe_key(describe("doomed")).await {
                        Err(s) if s.code() == Code::NotFound => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
        let err = k.describe_key(describe("alias/doomed")).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    assert_refused(
        c.decrypt(decrypt_no_context(&sealed.ciphertext)).await,
        Code::NotFound,
        "KEY_NOT_FOUND",
        "not found",
    );
    // The job ran several times meanwhile and left the key whose window has not passed.
    let kept = key_of(k.describe_key(describe("kept")).await);
    assert_eq!(kept.state, "PENDING_DELETION");
}

#[tokio::test]
async fn t77b_retried_import_requests_return_their_first_results() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let [leader, follower] = leader_and_follower(&cluster).await;
    let key = key_of(
        keys(&cluster, leader)
            .create_key(external("retried", "AES256_GCM"))
            .await,
    );
    let params_request = pb::KeyWriteRequest {
        key: "retried".into(),
        request_id: "params-once".into(),
    };
    let first = answer(
        keys(&cluster, leader)
            .get_import_parameters(params_request.clone())
            .await,
    );
    // The retry lands on another node and must get the same token, not a fresh unstored one.
    let again = answer(
        keys(&cluster, follower)
            .get_import_parameters(params_request)
            .await,
    );
    assert_eq!(first.import_token, again.import_token);
    assert_eq!(first.public_key, again.public_key);

    let wrapped = wrap_to(&first.public_key, &aad_of(&key.key_id), &[5u8; 32]);
    let import = pb::ImportKeyMaterialRequest {
        request_id: "import-once".into(),
        ..import_request("retried", &first.import_token, wrapped)
    };
    let done = key_of(
        keys(&cluster, follower)
            .import_key_material(import.clone())
            .await,
    );
    // The token is consumed, yet a retry of the same request returns the first result.
    let retried = key_of(keys(&cluster, leader).import_key_material(import).await);
    assert_eq!(retried, done);
    assert_eq!(retried.versions.len(), 1);

    // The job namespace of request ids is reserved.
    assert_refused(
        keys(&cluster, leader)
            .rotate_key(pb::KeyWriteRequest {
                key: "retried".into(),
                request_id: "job-rotate-x".into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "reserved",
    );
    // Deletion windows are bounded above; keys on their way out are not exported.
    assert_refused(
        keys(&cluster, leader)
            .schedule_key_deletion(schedule_deletion("retried", 31 * 24 * 3600))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "at most",
    );
    let open = keys(&cluster, leader)
        .create_key(pb::CreateKeyRequest {
            name: "leaving".into(),
            exportable: true,
            ..Default::default()
        })
        .await
        .unwrap();
    drop(open);
    keys(&cluster, leader)
        .schedule_key_deletion(schedule_deletion("leaving", 3600))
        .await
        .unwrap();
    let (_, public) = wrap::generate_wrapping_key(&mut tessera_crypto::os_rng());
    assert_refused(
        keys(&cluster, follower)
            .export_key(export_request("leaving", 0, public.to_vec()))
            .await,
        Code::FailedPrecondition,
        "KEY_PENDING_DELETION",
        "pending deletion",
    );
}
