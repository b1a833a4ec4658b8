//! Key lifecycle through the real cluster, on the leader and on a follower: enable/disable,
//! versions (minimum, disable, destroy), deletion windows, descriptions, tags, rotation
//! periods, aliases and listing — and the precise refusal of each bad use.

use std::collections::BTreeMap;

use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_client::CryptoClient;
use tessera_testkit::{ClusterOptions, TestCluster};
use tonic::transport::Channel;
use tonic::Code;

use crate::api::{
    alias_request, answer, assert_refused, clients_on_leader_and_follower, create, decrypt_request,
    describe, encrypt_no_context, encrypt_request, key_of, keys, schedule_deletion, version_req,
    write,
};
use crate::{ctx, tessera};

fn encrypt_req(key: &str) -> pb::EncryptRequest {
    encrypt_request(key, b"lifecycle", ctx(&[("t", "1")]))
}

fn decrypt_req(ciphertext: &[u8]) -> pb::DecryptRequest {
    decrypt_request(ciphertext, ctx(&[("t", "1")]))
}

/// Asserts that decrypting `sealed` (made under the lifecycle context) is refused as a failed
/// precondition with `tessera_code` and a message holding `fragment`.
async fn assert_decrypt_refused(
    c: &mut CryptoClient<Channel>,
    sealed: &pb::EncryptResponse,
    tessera_code: &str,
    fragment: &str,
) {
    assert_refused(
        c.decrypt(decrypt_req(&sealed.ciphertext)).await,
        Code::FailedPrecondition,
        tessera_code,
        fragment,
    );
}

/// Asserts that a call was refused because the key is in the wrong state for it.
#[track_caller]
fn assert_wrong_state<T: std::fmt::Debug>(result: Result<T, tonic::Status>, fragment: &str) {
    assert_refused(
        result,
        Code::FailedPrecondition,
        "INVALID_KEY_STATE",
        fragment,
    );
}

/// Asserts that a call was refused because what it names does not exist.
#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, tonic::Status>, tessera_code: &str) {
    assert_refused(result, Code::NotFound, tessera_code, "not found");
}

fn rotation_period(key: &str, period_ms: u64) -> pb::SetRotationPeriodRequest {
    pb::SetRotationPeriodRequest {
        key: key.into(),
        rotation_period_ms: period_ms,
        ..Default::default()
    }
}

fn delete_alias(alias: &str) -> pb::DeleteAliasRequest {
    pb::DeleteAliasRequest {
        alias: alias.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn t70_states_versions_and_deletion_windows_on_leader_and_follower() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    for (node, mut k, mut c) in clients_on_leader_and_follower(&cluster).await {
        let name = format!("life-{node}");
        create(&cluster, node, &name, "").await;
        let v1 = c.encrypt(encrypt_req(&name)).await.unwrap().into_inner();

        // Disable: crypto refused with a message naming the state; enable restores it.
        let key = key_of(k.disable_key(write(&name)).await);
        assert_eq!(key.state, "DISABLED");
        assert_refused(
            c.encrypt(encrypt_req(&name)).await,
            Code::FailedPrecondition,
            "KEY_DISABLED",
            "disabled",
        );
        assert_decrypt_refused(&mut c, &v1, "KEY_DISABLED", "disabled").await;
        assert_wrong_state(k.rotate_key(write(&name)).await, "cannot be rotated");
        k.enable_key(write(&name)).await.unwrap();
        c.decrypt(decrypt_req(&v1.ciphertext)).await.unwrap();

        // Versions: minimum decryption version, disabled version, destroyed version.
        let key = key_of(k.rotate_key(write(&name)).await);
        assert_eq!(key.primary_version, 2);
        let v2 = c.encrypt(encrypt_req(&name)).await.unwrap().into_inner();
        assert_eq!(v2.version, 2);
        k.set_min_decryption_version(version_req(&name, 2))
            .await
            .unwrap();
        assert_decrypt_refused(
            &mut c,
            &v1,
            "BELOW_MIN_DECRYPTION_VERSION",
            "minimum decryption version 2",
        )
        .await;
        assert_refused(
            k.set_min_decryption_version(version_req(&name, 3)).await,
            Code::InvalidArgument,
            "INVALID_MIN_DECRYPTION_VERSION",
            "between 1 and the primary version 2",
        );
        k.set_min_decryption_version(version_req(&name, 1))
            .await
            .unwrap();
        c.decrypt(decrypt_req(&v1.ciphertext)).await.unwrap();

        k.disable_key_version(version_req(&name, 1)).await.unwrap();
        assert_decrypt_refused(&mut c, &v1, "VERSION_DISABLED", "version 1").await;
        for (version, code, tessera_code, fragment) in [
            (
                2,
                Code::FailedPrecondition,
                "PRIMARY_VERSION",
                "primary version",
            ),
            (9, Code::NotFound, "VERSION_NOT_FOUND", "no version 9"),
        ] {
            assert_refused(
                k.disable_key_version(version_req(&name, version)).await,
                code,
                tessera_code,
                fragment,
            );
        }
        k.enable_key_version(version_req(&name, 1)).await.unwrap();
        c.decrypt(decrypt_req(&v1.ciphertext)).await.unwrap();

        let key = key_of(k.destroy_key_version(version_req(&name, 1)).await);
        assert_eq!(key.versions[0].state, "DESTROYED");
        assert!(key.versions[0].destroyed_at_ms > 0);
        assert_decrypt_refused(&mut c, &v1, "VERSION_DESTROYED", "can never be decrypted").await;
        assert_refused(
            k.enable_key_version(version_req(&name, 1)).await,
            Code::FailedPrecondition,
            "VERSION_DESTROYED",
            "destroyed",
        );
        assert_refused(
            k.destroy_key_version(version_req(&name, 2)).await,
            Code::FailedPrecondition,
            "PRIMARY_VERSION",
            "destroyed",
        );
        assert_eq!(
            answer(c.decrypt(decrypt_req(&v2.ciphertext)).await).plaintext,
            b"lifecycle"
        );
        let err = k
            .destroy_key_version(version_req(&name, 0))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);

        // Deletion: the default window is 30 days; pending deletion refuses crypto; cancel
        // brings the key back disabled.
        let before = now_ms();
        let key = key_of(k.schedule_key_deletion(schedule_deletion(&name, 0)).await);
        assert_eq!(key.state, "PENDING_DELETION");
        let thirty_days = 30 * 24 * 3600 * 1000;
        assert!(
            key.deletion_date_ms >= before + thirty_days
                && key.deletion_date_ms <= now_ms() + thirty_days
        );
        assert_refused(
            c.encrypt(encrypt_req(&name)).await,
            Code::FailedPrecondition,
            "KEY_PENDING_DELETION",
            "pending deletion",
        );
        assert_wrong_state(
            k.schedule_key_deletion(schedule_deletion(&name, 60)).await,
            "pending_deletion",
        );
        assert_wrong_state(k.enable_key(write(&name)).await, "cannot be enabled");
        let key = key_of(k.cancel_key_deletion(write(&name)).await);
        assert_eq!(key.state, "DISABLED");
        assert_eq!(key.deletion_date_ms, 0);
        assert_wrong_state(k.cancel_key_deletion(write(&name)).await, "restored");
        k.enable_key(write(&name)).await.unwrap();
        c.encrypt(encrypt_req(&name)).await.unwrap();

        // The other nodes see the final state too.
        for other in cluster.ids() {
            let seen = key_of(keys(&cluster, other).describe_key(describe(&name)).await);
            assert_eq!(seen.state, "ENABLED");
            assert_eq!(seen.versions.len(), 2);
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn t71_descriptions_tags_rotation_periods_aliases_and_listing() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    for (node, mut k, mut c) in clients_on_leader_and_follower(&cluster).await {
        let a = format!("meta-a-{node}");
        let b = format!("meta-b-{node}");
        create(&cluster, node, &a, "").await;
        let b_key = create(&cluster, node, &b, "").await;
        let mac_key = create(&cluster, node, &format!("meta-mac-{node}"), "HMAC_SHA256").await;

        let key = key_of(
            k.update_key_description(pb::UpdateKeyDescriptionRequest {
                key: a.clone(),
                description: "new words".into(),
                ..Default::default()
            })
            .await,
        );
        assert_eq!(key.description, "new words");
        let tags = BTreeMap::from([
            ("team".to_owned(), "pay".to_owned()),
            ("env".to_owned(), String::new()),
        ]);
        let key = key_of(
            k.tag_key(pb::TagKeyRequest {
                key: a.clone(),
                tags: tags.clone(),
                ..Default::default()
            })
            .await,
        );
        assert_eq!(key.tags, tags);
        let key = key_of(
            k.untag_key(pb::UntagKeyRequest {
                key: a.clone(),
                tag_keys: vec!["env".into()],
                ..Default::default()
            })
            .await,
        );
        assert_eq!(key.tags.len(), 1);
        let err = k
            .tag_key(pb::TagKeyRequest {
                key: a.clone(),
                tags: BTreeMap::from([(String::new(), "v".to_owned())]),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

        let key = key_of(k.set_rotation_period(rotation_period(&a, 86_400_000)).await);
        assert_eq!(key.rotation_period_ms, 86_400_000);
        assert_eq!(
            key.next_rotation_ms,
            key.versions[0].created_at_ms + 86_400_000
        );
        let key = key_of(k.set_rotation_period(rotation_period(&a, 0)).await);
        assert_eq!((key.rotation_period_ms, key.next_rotation_ms), (0, 0));
        assert_refused(
            k.set_rotation_period(rotation_period(&a, 10)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "at least 1000 ms",
        );

        // Aliases: usable wherever a key id is; re-pointed; deleted; precise errors.
        let alias = format!("alias/svc-{node}");
        let made = answer(k.create_alias(alias_request(&alias, &a)).await);
        assert_eq!(made.alias, alias);
        let via_alias = answer(c.encrypt(encrypt_no_context(&alias, b"x")).await);
        assert_eq!(via_alias.key_id, made.key_id);
        let described = key_of(k.describe_key(describe(&a)).await);
        assert_eq!(described.aliases, vec![alias.clone()]);
        assert_refused(
            k.create_alias(alias_request(&alias, &b)).await,
            Code::AlreadyExists,
            "ALIAS_EXISTS",
            "already exists",
        );
        k.update_alias(alias_request(&alias, &b)).await.unwrap();
        let via_alias = answer(c.encrypt(encrypt_no_context(&alias, b"x")).await);
        assert_eq!(via_alias.key_id, b_key.key_id);
        assert_refused(
            k.update_alias(alias_request(&alias, &mac_key.key_id)).await,
            Code::FailedPrecondition,
            "ALIAS_USAGE_MISMATCH",
            "GENERATE_VERIFY_MAC",
        );
        let listed = answer(
            k.list_aliases(pb::ListAliasesRequest { key: b.clone() })
                .await,
        );
        assert_eq!(listed.aliases.len(), 1);
        k.delete_alias(delete_alias(&alias)).await.unwrap();
        assert_not_found(
            c.encrypt(encrypt_no_context(&alias, b"x")).await,
            "KEY_NOT_FOUND",
        );
        assert_not_found(
            k.delete_alias(delete_alias(&alias)).await,
            "ALIAS_NOT_FOUND",
        );
        let err = k
            .create_alias(alias_request("alias/bad name", &a))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_not_found(
            k.create_alias(alias_request("alias/to-nothing", "no-such-key"))
                .await,
            "KEY_NOT_FOUND",
        );
    }

    // Listing: filters and pages over everything both rounds created.
    let mut k = keys(&cluster, cluster.follower().await);
    let all = answer(k.list_keys(pb::ListKeysRequest::default()).await);
    assert_eq!(all.keys.len(), 6);
    assert!(all.next_page_token.is_empty());
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = answer(
            k.list_keys(pb::ListKeysRequest {
                page_size: 4,
                page_token: token.clone(),
                ..Default::default()
            })
            .await,
        );
        seen.extend(page.keys.into_iter().map(|key| key.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in name order");
    assert_eq!(seen.len(), 6);
    for (filter, expected) in [
        (
            pb::ListKeysRequest {
                spec: "HMAC_SHA256".into(),
                ..Default::default()
            },
            2,
        ),
        (
            pb::ListKeysRequest {
                tag_key: "team".into(),
                tag_value: "pay".into(),
                ..Default::default()
            },
            2,
        ),
        (
            pb::ListKeysRequest {
                state: "ENABLED".into(),
                ..Default::default()
            },
            6,
        ),
    ] {
        let listed = answer(k.list_keys(filter.clone()).await);
        assert_eq!(listed.keys.len(), expected, "{filter:?}");
    }
    for (request, field) in [
        (
            pb::ListKeysRequest {
                state: "SLEEPY".into(),
                ..Default::default()
            },
            "state",
        ),
        (
            pb::ListKeysRequest {
                spec: "DES".into(),
                ..Default::default()
            },
            "spec",
        ),
        (
            pb::ListKeysRequest {
                page_token: "%%%".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        assert_refused(
            k.list_keys(request).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            field,
        );
    }
}
