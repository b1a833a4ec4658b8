//! Raw gRPC access for the API tests: typed clients per node and status assertions.

use std::collections::BTreeMap;

use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_client::CryptoClient;
use tessera_proto::v1::keys_client::KeysClient;
use tessera_testkit::TestCluster;
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

pub fn keys(cluster: &TestCluster, id: u64) -> KeysClient<Channel> {
    KeysClient::new(cluster.channel(id))
}

pub fn crypto(cluster: &TestCluster, id: u64) -> CryptoClient<Channel> {
    CryptoClient::new(cluster.channel(id))
}

/// Asserts a status: gRPC code, stable Tessera code, and a fragment of the message.
#[track_caller]
pub fn assert_status(status: &Status, code: Code, tessera_code: &str, fragment: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let got = status
        .metadata()
        .get("tessera-error")
        .and_then(|v| v.to_str().ok());
    assert_eq!(got, Some(tessera_code), "{status:?}");
    assert!(
        status
            .message()
            .to_lowercase()
            .contains(&fragment.to_lowercase()),
        "expected {fragment:?} in {:?}",
        status.message()
    );
}

/// Asserts that a call was refused with `code`, the stable Tessera code and a message holding
/// `fragment` ([`assert_status`]); panics with the answer if it succeeded.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    tessera_code: &str,
    fragment: &str,
) {
    match result {
        Ok(answer) => panic!("expected a refusal ({tessera_code}), got {answer:?}"),
        Err(status) => assert_status(&status, code, tessera_code, fragment),
    }
}

/// The answer of a call that must succeed; panics with the status otherwise.
#[track_caller]
pub fn answer<T>(result: Result<Response<T>, Status>) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("expected an answer, got {status:?}"),
    }
}

/// The key in the answer of a key call that must succeed.
#[track_caller]
pub fn key_of(result: Result<Response<pb::KeyResponse>, Status>) -> pb::Key {
    answer(result).key.expect("a key in the answer")
}

/// Encrypts `plaintext` under `key` through node `id`, without an encryption context.
pub async fn encrypt(
    cluster: &TestCluster,
    id: u64,
    key: &str,
    plaintext: &[u8],
) -> pb::EncryptResponse {
    answer(
        crypto(cluster, id)
            .encrypt(encrypt_no_context(key, plaintext))
            .await,
    )
}

/// Creates a key with the given spec through `id` and returns it.
pub async fn create(cluster: &TestCluster, id: u64, name: &str, spec: &str) -> pb::Key {
    keys(cluster, id)
        .create_key(pb::CreateKeyRequest {
            name: name.into(),
            spec: spec.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("create {name} ({spec}) on node {id}: {s:?}"))
        .into_inner()
        .key
        .unwrap()
}

pub fn write(key: &str) -> pb::KeyWriteRequest {
    pb::KeyWriteRequest {
        key: key.into(),
        request_id: String::new(),
    }
}

/// A request to encrypt `plaintext` under `key` with `context`.
pub fn encrypt_request(
    key: &str,
    plaintext: &[u8],
    context: BTreeMap<String, String>,
) -> pb::EncryptRequest {
    pb::EncryptRequest {
        key: key.into(),
        plaintext: plaintext.to_vec(),
        context,
    }
}

/// A request to decrypt `ciphertext` with `context`.
pub fn decrypt_request(ciphertext: &[u8], context: BTreeMap<String, String>) -> pb::DecryptRequest {
    pb::DecryptRequest {
        ciphertext: ciphertext.to_vec(),
        context,
    }
}

/// A request to encrypt `plaintext` under `key` without an encryption context.
pub fn encrypt_no_context(key: &str, plaintext: &[u8]) -> pb::EncryptRequest {
    encrypt_request(key, plaintext, BTreeMap::new())
}

/// A request to decrypt `ciphertext` made without an encryption context.
pub fn decrypt_no_context(ciphertext: &[u8]) -> pb::DecryptRequest {
    decrypt_request(ciphertext, BTreeMap::new())
}

/// A describe request with the default consistency.
pub fn describe(key: &str) -> pb::DescribeKeyRequest {
    pb::DescribeKeyRequest {
        key: key.into(),
        consistency: String::new(),
    }
}

pub fn version_req(key: &str, version: u32) -> pb::KeyVersionRequest {
    pb::KeyVersionRequest {
        key: key.into(),
        version,
        request_id: String::new(),
    }
}

/// A request to sign `message` (raw, not a digest) under `key` with its default algorithm.
pub fn sign_request(key: &str, message: &[u8]) -> pb::SignRequest {
    pb::SignRequest {
        key: key.into(),
        message: message.to_vec(),
        ..Default::default()
    }
}

/// A request for the public key of `key`'s primary version.
pub fn public_key_request(key: &str) -> pb::GetPublicKeyRequest {
    pb::GetPublicKeyRequest {
        key: key.into(),
        version: 0,
    }
}

/// A request to schedule the deletion of `key` after `window_seconds` (0: the default window).
pub fn schedule_deletion(key: &str, window_seconds: u64) -> pb::ScheduleKeyDeletionRequest {
    pb::ScheduleKeyDeletionRequest {
        key: key.into(),
        pending_window_seconds: window_seconds,
        ..Default::default()
    }
}

/// A request to point `alias` at `key` (to create or update it).
pub fn alias_request(alias: &str, key: &str) -> pb::AliasRequest {
    pb::AliasRequest {
        alias: alias.into(),
        key: key.into(),
        ..Default::default()
    }
}

/// The leader and one follower: every operation is exercised on both.
pub async fn leader_and_follower(cluster: &TestCluster) -> [u64; 2] {
    [cluster.leader().await, cluster.follower().await]
}

/// The leader and one follower, each with a key API and a crypto API client.
pub async fn clients_on_leader_and_follower(
    cluster: &TestCluster,
) -> [(u64, KeysClient<Channel>, CryptoClient<Channel>); 2] {
    leader_and_follower(cluster)
        .await
        .map(|node| (node, keys(cluster, node), crypto(cluster, node)))
}
