//! Oversized strings: every string field of every public request (map keys and values and
//! repeated strings included), filled with 1 MiB, gets the precise status documented for that
//! field with a short message, never a transport error. The cases are a table of request
//! builders run against one cluster.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_client::CryptoClient;
use tessera_proto::v1::keys_client::KeysClient;
use tessera_proto::v1::system_client::SystemClient;
use tessera_testkit::{past_unavailability, ClusterOptions, TestCluster};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::tessera;

/// The size of the probe value: far beyond every limit, well below the 4 MiB message limit.
const PROBE_LEN: usize = 1 << 20;
/// The longest error message accepted: echoed input must have been cut.
const MAX_MESSAGE_LEN: usize = 1024;

const AES: &str = "probe-aes";
const SIGN: &str = "probe-sign";
const MAC: &str = "probe-mac";
const EXTERNAL: &str = "probe-external";
const ALIAS: &str = "alias/probe";

/// The generated clients of one node.
#[derive(Clone)]
struct Api {
    system: SystemClient<Channel>,
    keys: KeysClient<Channel>,
    crypto: CryptoClient<Channel>,
}

type Call = Box<dyn Fn(Api, String) -> Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>>;

/// One request with one string field set to the probe value.
struct Case {
    rpc: &'static str,
    field: &'static str,
    code: Code,
    call: Call,
}

/// `case!("Rpc", "field", CODE, |api, big| call)`: `call` is a future of a gRPC result built
/// from `api` (mutable) and the probe value `big`.
macro_rules! case {
    ($rpc:literal, $field:literal, $code:ident, |$api:ident, $big:ident| $call:expr) => {
        Case {
            rpc: $rpc,
            field: $field,
            code: Code::$code,
            call: Box::new(|api: Api, big: String| {
                Box::pin(async move {
                    #[allow(unused_mut)]
                    let mut $api = api;
                    let $big = big;
                    $call.await.map(drop)
                })
            }),
        }
    };
}

fn map(key: &str, value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(key.to_owned(), value.to_owned())])
}

fn encrypt(key: &str, context: BTreeMap<String, String>) -> pb::EncryptRequest {
    pb::EncryptRequest {
        key: key.into(),
        plaintext: b"probe".to_vec(),
        context,
    }
}

fn write(key: &str, request_id: &str) -> pb::KeyWriteRequest {
    pb::KeyWriteRequest {
        key: key.into(),
        request_id: request_id.into(),
    }
}

fn version(key: &str, request_id: &str) -> pb::KeyVersionRequest {
    pb::KeyVersionRequest {
        key: key.into(),
        version: 1,
        request_id: request_id.into(),
    }
}

fn alias(alias: &str, key: &str, request_id: &str) -> pb::AliasRequest {
    pb::AliasRequest {
        alias: alias.into(),
        key: key.into(),
        request_id: request_id.into(),
    }
}

/// A batch item's error as the status the item would have got alone.
fn item_status(error: pb::ItemError) -> Status {
    let code = [
        Code::InvalidArgument,
        Code::NotFound,
        Code::FailedPrecondition,
    ]
    .into_iter()
    .find(|c| tessera_proto::code_name(*c) == error.code)
    .unwrap_or(Code::Unknown);
    Status::new(code, error.message)
}

async fn batch_encrypt(mut api: Api, item: pb::EncryptRequest) -> Result<(), Status> {
    let results = api
        .crypto
        .batch_encrypt(pb::BatchEncryptRequest { items: vec![item] })
        .await?
        .into_inner()
        .results;
    match results.into_iter().next().and_then(|r| r.result) {
        Some(pb::batch_encrypt_result::Result::Error(e)) => Err(item_status(e)),
        _ => Ok(()),
    }
}

async fn batch_decrypt(mut api: Api, item: pb::DecryptRequest) -> Result<(), Status> {
    let results = api
        .crypto
        .batch_decrypt(pb::BatchDecryptRequest { items: vec![item] })
        .await?
        .into_inner()
        .results;
    match results.into_iter().next().and_then(|r| r.result) {
        Some(pb::batch_decrypt_result::Result::Error(e)) => Err(item_status(e)),
        _ => Ok(()),
    }
}

/// Every string field of `tessera.v1.System`.
fn system_cases() -> Vec<Case> {
    vec![
        case!("Init", "request_id", InvalidArgument, |api, big| api
            .system
            .init(pb::InitRequest {
                shares: 1,
                threshold: 1,
                request_id: big,
            })),
        case!("Unseal", "share", InvalidArgument, |api, big| api
            .system
            .unseal(pb::UnsealRequest {
                share: big,
                reset: false,
            })),
    ]
}

/// Every string field of `tessera.v1.Keys`.
#[allow(clippy::too_many_lines)]
fn keys_cases() -> Vec<Case> {
    vec![
        case!("CreateKey", "name", InvalidArgument, |api, big| api
            .keys
            .create_key(pb::CreateKeyRequest {
                name: big,
                ..Default::default()
            })),
        case!("CreateKey", "spec", InvalidArgument, |api, big| api
            .keys
            .create_key(pb::CreateKeyRequest {
                name: "probe-new".into(),
                spec: big,
                ..Default::default()
            })),
        case!("CreateKey", "description", InvalidArgument, |api, big| api
            .keys
            .create_key(pb::CreateKeyRequest {
                name: "probe-new".into(),
                description: big,
                ..Default::default()
            })),
        case!("CreateKey", "request_id", InvalidArgument, |api, big| api
            .keys
            .create_key(pb::CreateKeyRequest {
                name: "probe-new".into(),
                request_id: big,
                ..Default::default()
            })),
        case!("CreateKey", "origin", InvalidArgument, |api, big| api
            .keys
            .create_key(pb::CreateKeyRequest {
                name: "probe-new".into(),
                origin: big,
                ..Default::default()
            })),
        case!("CreateKey", "tags (key)", InvalidArgument, |api, big| api
            .keys
            .create_key(pb::CreateKeyRequest {
                name: "probe-new".into(),
                tags: map(&big, "v"),
                ..Default::default()
            })),
        case!("CreateKey", "tags (value)", InvalidArgument, |api, big| api
            .keys
            .create_key(pb::CreateKeyRequest {
                name: "probe-new".into(),
                tags: map("team", &big),
                ..Default::default()
            })),
        case!("DescribeKey", "key", InvalidArgument, |api, big| api
            .keys
            .describe_key(pb::DescribeKeyRequest {
                key: big,
                consistency: String::new(),
            })),
        case!("DescribeKey", "consistency", InvalidArgument, |api, big| {
            api.keys.describe_key(pb::DescribeKeyRequest {
                key: AES.into(),
                consistency: big,
            })
        }),
        case!("ListKeys", "page_token", InvalidArgument, |api, big| api
            .keys
            .list_keys(pb::ListKeysRequest {
                page_token: big,
                ..Default::default()
            })),
        case!("ListKeys", "state", InvalidArgument, |api, big| api
            .keys
            .list_keys(pb::ListKeysRequest {
                state: big,
                ..Default::default()
            })),
        case!("ListKeys", "spec", InvalidArgument, |api, big| api
            .keys
            .list_keys(pb::ListKeysRequest {
                spec: big,
                ..Default::default()
            })),
        case!("ListKeys", "tag_key", InvalidArgument, |api, big| api
            .keys
            .list_keys(pb::ListKeysRequest {
                tag_key: big,
                ..Default::default()
            })),
        case!("ListKeys", "tag_value", InvalidArgument, |api, big| api
            .keys
            .list_keys(pb::ListKeysRequest {
                tag_key: "team".into(),
                tag_value: big,
                ..Default::default()
            })),
        case!("RotateKey", "key", InvalidArgument, |api, big| api
            .keys
            .rotate_key(write(&big, ""))),
        case!("RotateKey", "request_id", InvalidArgument, |api, big| api
            .keys
            .rotate_key(write(AES, &big))),
        case!("EnableKey", "key", InvalidArgument, |api, big| api
            .keys
            .enable_key(write(&big, ""))),
        case!("EnableKey", "request_id", InvalidArgument, |api, big| api
            .keys
            .enable_key(write(AES, &big))),
        case!("DisableKey", "key", InvalidArgument, |api, big| api
            .keys
            .disable_key(write(&big, ""))),
        case!("DisableKey", "request_id", InvalidArgument, |api, big| api
            .keys
            .disable_key(write(AES, &big))),
        case!("ScheduleKeyDeletion", "key", InvalidArgument, |api, big| {
            api.keys
                .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
                    key: big,
                    ..Default::default()
                })
        }),
        case!(
            "ScheduleKeyDeletion",
            "request_id",
            InvalidArgument,
            |api, big| api
                .keys
                .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
                    key: AES.into(),
                    request_id: big,
                    ..Default::default()
                })
        ),
        case!("CancelKeyDeletion", "key", InvalidArgument, |api, big| api
            .keys
            .cancel_key_deletion(write(&big, ""))),
        case!(
            "CancelKeyDeletion",
            "request_id",
            InvalidArgument,
            |api, big| api.keys.cancel_key_deletion(write(AES, &big))
        ),
        case!(
            "SetMinDecryptionVersion",
            "key",
            InvalidArgument,
            |api, big| api.keys.set_min_decryption_version(version(&big, ""))
        ),
        case!(
            "SetMinDecryptionVersion",
            "request_id",
            InvalidArgument,
            |api, big| api.keys.set_min_decryption_version(version(AES, &big))
        ),
        case!("EnableKeyVersion", "key", InvalidArgument, |api, big| api
            .keys
            .enable_key_version(version(&big, ""))),
        case!(
            "EnableKeyVersion",
            "request_id",
            InvalidArgument,
            |api, big| api.keys.enable_key_version(version(AES, &big))
        ),
        case!("DisableKeyVersion", "key", InvalidArgument, |api, big| api
            .keys
            .disable_key_version(version(&big, ""))),
        case!(
            "DisableKeyVersion",
            "request_id",
            InvalidArgument,
            |api, big| api.keys.disable_key_version(version(AES, &big))
        ),
        case!("DestroyKeyVersion", "key", InvalidArgument, |api, big| api
            .keys
            .destroy_key_version(version(&big, ""))),
        case!(
            "DestroyKeyVersion",
            "request_id",
            InvalidArgument,
            |api, big| api.keys.destroy_key_version(version(AES, &big))
        ),
        case!(
            "UpdateKeyDescription",
            "key",
            InvalidArgument,
            |api, big| api
                .keys
                .update_key_description(pb::UpdateKeyDescriptionRequest {
                    key: big,
                    ..Default::default()
                })
        ),
        case!(
            "UpdateKeyDescription",
            "description",
            InvalidArgument,
            |api, big| api
                .keys
                .update_key_description(pb::UpdateKeyDescriptionRequest {
                    key: AES.into(),
                    description: big,
                    ..Default::default()
                })
        ),
        case!(
            "UpdateKeyDescription",
            "request_id",
            InvalidArgument,
            |api, big| api
                .keys
                .update_key_description(pb::UpdateKeyDescriptionRequest {
                    key: AES.into(),
                    request_id: big,
                    ..Default::default()
                })
        ),
        case!("TagKey", "key", InvalidArgument, |api, big| api
            .keys
            .tag_key(pb::TagKeyRequest {
                key: big,
                tags: map("team", "a"),
                ..Default::default()
            })),
        case!("TagKey", "tags (key)", InvalidArgument, |api, big| api
            .keys
            .tag_key(pb::TagKeyRequest {
                key: AES.into(),
                tags: map(&big, "a"),
                ..Default::default()
            })),
        case!("TagKey", "tags (value)", InvalidArgument, |api, big| api
            .keys
            .tag_key(pb::TagKeyRequest {
                key: AES.into(),
                tags: map("team", &big),
                ..Default::default()
            })),
        case!("TagKey", "request_id", InvalidArgument, |api, big| api
            .keys
            .tag_key(pb::TagKeyRequest {
                key: AES.into(),
                tags: map("team", "a"),
                request_id: big,
            })),
        case!("UntagKey", "key", InvalidArgument, |api, big| api
            .keys
            .untag_key(pb::UntagKeyRequest {
                key: big,
                tag_keys: vec!["team".into()],
                ..Default::default()
            })),
        case!("UntagKey", "tag_keys", InvalidArgument, |api, big| api
            .keys
            .untag_key(pb::UntagKeyRequest {
                key: AES.into(),
                tag_keys: vec![big],
                ..Default::default()
            })),
        case!("UntagKey", "request_id", InvalidArgument, |api, big| api
            .keys
            .untag_key(pb::UntagKeyRequest {
                key: AES.into(),
                tag_keys: vec!["team".into()],
                request_id: big,
            })),
        case!("SetRotationPeriod", "key", InvalidArgument, |api, big| api
            .keys
            .set_rotation_period(pb::SetRotationPeriodRequest {
                key: big,
                ..Default::default()
            })),
        case!(
            "SetRotationPeriod",
            "request_id",
            InvalidArgument,
            |api, big| api.keys.set_rotation_period(pb::SetRotationPeriodRequest {
                key: AES.into(),
                request_id: big,
                ..Default::default()
            })
        ),
        case!("CreateAlias", "alias", InvalidArgument, |api, big| api
            .keys
            .create_alias(alias(&big, AES, ""))),
        case!("CreateAlias", "key", InvalidArgument, |api, big| api
            .keys
            .create_alias(alias("alias/probe-new", &big, ""))),
        case!("CreateAlias", "request_id", InvalidArgument, |api, big| api
            .keys
            .create_alias(alias("alias/probe-new", AES, &big))),
        case!("UpdateAlias", "alias", InvalidArgument, |api, big| api
            .keys
            .update_alias(alias(&big, AES, ""))),
        case!("UpdateAlias", "key", InvalidArgument, |api, big| api
            .keys
            .update_alias(alias(ALIAS, &big, ""))),
        case!("UpdateAlias", "request_id", InvalidArgument, |api, big| api
            .keys
            .update_alias(alias(ALIAS, AES, &big))),
        case!("DeleteAlias", "alias", InvalidArgument, |api, big| api
            .keys
            .delete_alias(pb::DeleteAliasRequest {
                alias: big,
                request_id: String::new(),
            })),
        case!("DeleteAlias", "request_id", InvalidArgument, |api, big| api
            .keys
            .delete_alias(pb::DeleteAliasRequest {
                alias: ALIAS.into(),
                request_id: big,
            })),
        case!("ListAliases", "key", InvalidArgument, |api, big| api
            .keys
            .list_aliases(pb::ListAliasesRequest { key: big })),
        case!("GetImportParameters", "key", InvalidArgument, |api, big| {
            api.keys.get_import_parameters(write(&big, ""))
        }),
        case!(
            "GetImportParameters",
            "request_id",
            InvalidArgument,
            |api, big| api.keys.get_import_parameters(write(EXTERNAL, &big))
        ),
        case!("ImportKeyMaterial", "key", InvalidArgument, |api, big| api
            .keys
            .import_key_material(pb::ImportKeyMaterialRequest {
                key: big,
                ..Default::default()
            })),
        // A token that is not the key's current one, as documented.
        case!(
            "ImportKeyMaterial",
            "import_token",
            FailedPrecondition,
            |api, big| api.keys.import_key_material(pb::ImportKeyMaterialRequest {
                key: EXTERNAL.into(),
                import_token: big,
                ..Default::default()
            })
        ),
        case!(
            "ImportKeyMaterial",
            "request_id",
            InvalidArgument,
            |api, big| api.keys.import_key_material(pb::ImportKeyMaterialRequest {
                key: EXTERNAL.into(),
                request_id: big,
                ..Default::default()
            })
        ),
        case!("ExportKey", "key", InvalidArgument, |api, big| api
            .keys
            .export_key(pb::ExportKeyRequest {
                key: big,
                ..Default::default()
            })),
    ]
}

/// Every string field of `tessera.v1.Crypto` (batch items through their per-item errors).
#[allow(clippy::too_many_lines)]
fn crypto_cases() -> Vec<Case> {
    vec![
        case!("Encrypt", "key", InvalidArgument, |api, big| api
            .crypto
            .encrypt(encrypt(&big, BTreeMap::new()))),
        case!("Encrypt", "context (key)", InvalidArgument, |api, big| api
            .crypto
            .encrypt(encrypt(AES, map(&big, "v")))),
        case!("Encrypt", "context (value)", InvalidArgument, |api, big| {
            api.crypto.encrypt(encrypt(AES, map("k", &big)))
        }),
        case!("Decrypt", "context (key)", InvalidArgument, |api, big| api
            .crypto
            .decrypt(pb::DecryptRequest {
                ciphertext: vec![1],
                context: map(&big, "v"),
            })),
        case!("Decrypt", "context (value)", InvalidArgument, |api, big| {
            api.crypto.decrypt(pb::DecryptRequest {
                ciphertext: vec![1],
                context: map("k", &big),
            })
        }),
        case!(
            "ReEncrypt",
            "source_context (key)",
            InvalidArgument,
            |api, big| api.crypto.re_encrypt(pb::ReEncryptRequest {
                ciphertext: vec![1],
                source_context: map(&big, "v"),
                ..Default::default()
            })
        ),
        case!(
            "ReEncrypt",
            "source_context (value)",
            InvalidArgument,
            |api, big| api.crypto.re_encrypt(pb::ReEncryptRequest {
                ciphertext: vec![1],
                source_context: map("k", &big),
                ..Default::default()
            })
        ),
        case!(
            "ReEncrypt",
            "destination_key",
            InvalidArgument,
            |api, big| {
                let ciphertext = api
                    .crypto
                    .encrypt(encrypt(AES, BTreeMap::new()))
                    .await?
                    .into_inner()
                    .ciphertext;
                api.crypto.re_encrypt(pb::ReEncryptRequest {
                    ciphertext,
                    destination_key: big,
                    ..Default::default()
                })
            }
        ),
        case!(
            "ReEncrypt",
            "destination_context (key)",
            InvalidArgument,
            |api, big| api.crypto.re_encrypt(pb::ReEncryptRequest {
                ciphertext: vec![1],
                destination_context: map(&big, "v"),
                ..Default::default()
            })
        ),
        case!(
            "ReEncrypt",
            "destination_context (value)",
            InvalidArgument,
            |api, big| api.crypto.re_encrypt(pb::ReEncryptRequest {
                ciphertext: vec![1],
                destination_context: map("k", &big),
                ..Default::default()
            })
        ),
        case!("BatchEncrypt", "items.key", InvalidArgument, |api, big| {
            batch_encrypt(api, encrypt(&big, BTreeMap::new()))
        }),
        case!(
            "BatchEncrypt",
            "items.context (key)",
            InvalidArgument,
            |api, big| batch_encrypt(api, encrypt(AES, map(&big, "v")))
        ),
        case!(
            "BatchEncrypt",
            "items.context (value)",
            InvalidArgument,
            |api, big| batch_encrypt(api, encrypt(AES, map("k", &big)))
        ),
        case!(
            "BatchDecrypt",
            "items.context (key)",
            InvalidArgument,
            |api, big| batch_decrypt(
                api,
                pb::DecryptRequest {
                    ciphertext: vec![1],
                    context: map(&big, "v"),
                }
            )
        ),
        case!(
            "BatchDecrypt",
            "items.context (value)",
            InvalidArgument,
            |api, big| batch_decrypt(
                api,
                pb::DecryptRequest {
                    ciphertext: vec![1],
                    context: map("k", &big),
                }
            )
        ),
        case!("GenerateDataKey", "key", InvalidArgument, |api, big| api
            .crypto
            .generate_data_key(pb::GenerateDataKeyRequest {
                key: big,
                ..Default::default()
            })),
        case!(
            "GenerateDataKey",
            "data_key_spec",
            InvalidArgument,
            |api, big| api.crypto.generate_data_key(pb::GenerateDataKeyRequest {
                key: AES.into(),
                data_key_spec: big,
                ..Default::default()
            })
        ),
        case!(
            "GenerateDataKey",
            "context (key)",
            InvalidArgument,
            |api, big| api.crypto.generate_data_key(pb::GenerateDataKeyRequest {
                key: AES.into(),
                context: map(&big, "v"),
                ..Default::default()
            })
        ),
        case!(
            "GenerateDataKeyWithoutPlaintext",
            "data_key_spec",
            InvalidArgument,
            |api, big| api
                .crypto
                .generate_data_key_without_plaintext(pb::GenerateDataKeyRequest {
                    key: AES.into(),
                    data_key_spec: big,
                    ..Default::default()
                })
        ),
        case!(
            "GenerateDataKeyWithoutPlaintext",
            "context (value)",
            InvalidArgument,
            |api, big| api
                .crypto
                .generate_data_key_without_plaintext(pb::GenerateDataKeyRequest {
                    key: AES.into(),
                    context: map("k", &big),
                    ..Default::default()
                })
        ),
        case!("GenerateDataKeyPair", "key", InvalidArgument, |api, big| {
            api.crypto
                .generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                    key: big,
                    key_pair_spec: "ED25519".into(),
                    ..Default::default()
                })
        }),
        case!(
            "GenerateDataKeyPair",
            "key_pair_spec",
            InvalidArgument,
            |api, big| api
                .crypto
                .generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                    key: AES.into(),
                    key_pair_spec: big,
                    ..Default::default()
                })
        ),
        case!(
            "GenerateDataKeyPair",
            "context (key)",
            InvalidArgument,
            |api, big| api
                .crypto
                .generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                    key: AES.into(),
                    key_pair_spec: "ED25519".into(),
                    context: map(&big, "v"),
                    ..Default::default()
                })
        ),
        case!("Sign", "key", InvalidArgument, |api, big| api.crypto.sign(
            pb::SignRequest {
                key: big,
                message: b"m".to_vec(),
                ..Default::default()
            }
        )),
        case!("Sign", "message_type", InvalidArgument, |api, big| api
            .crypto
            .sign(pb::SignRequest {
                key: SIGN.into(),
                message: b"m".to_vec(),
                message_type: big,
                ..Default::default()
            })),
        case!("Sign", "algorithm", InvalidArgument, |api, big| api
            .crypto
            .sign(pb::SignRequest {
                key: SIGN.into(),
                message: b"m".to_vec(),
                algorithm: big,
                ..Default::default()
            })),
        case!("Verify", "key", InvalidArgument, |api, big| api
            .crypto
            .verify(pb::VerifyRequest {
                key: big,
                message: b"m".to_vec(),
                signature: vec![1],
                ..Default::default()
            })),
        case!("Verify", "message_type", InvalidArgument, |api, big| api
            .crypto
            .verify(pb::VerifyRequest {
                key: SIGN.into(),
                message: b"m".to_vec(),
                signature: vec![1],
                message_type: big,
                ..Default::default()
            })),
        case!("Verify", "algorithm", InvalidArgument, |api, big| api
            .crypto
            .verify(pb::VerifyRequest {
                key: SIGN.into(),
                message: b"m".to_vec(),
                signature: vec![1],
                algorithm: big,
                ..Default::default()
            })),
        case!("GetPublicKey", "key", InvalidArgument, |api, big| api
            .crypto
            .get_public_key(pb::GetPublicKeyRequest {
                key: big,
                version: 0,
            })),
        case!("GenerateMac", "key", InvalidArgument, |api, big| api
            .crypto
            .generate_mac(pb::GenerateMacRequest {
                key: big,
                message: b"m".to_vec(),
                ..Default::default()
            })),
        case!("GenerateMac", "algorithm", InvalidArgument, |api, big| api
            .crypto
            .generate_mac(pb::GenerateMacRequest {
                key: MAC.into(),
                message: b"m".to_vec(),
                algorithm: big,
            })),
        case!("VerifyMac", "key", InvalidArgument, |api, big| api
            .crypto
            .verify_mac(pb::VerifyMacRequest {
                key: big,
                message: b"m".to_vec(),
                mac: vec![1],
                ..Default::default()
            })),
        case!("VerifyMac", "algorithm", InvalidArgument, |api, big| api
            .crypto
            .verify_mac(pb::VerifyMacRequest {
                key: MAC.into(),
                message: b"m".to_vec(),
                mac: vec![1],
                algorithm: big,
                ..Default::default()
            })),
    ]
}

/// Creates the keys and the alias the cases refer to.
async fn fixtures(api: &mut Api) {
    for (name, spec, origin) in [
        (AES, "AES256_GCM", ""),
        (SIGN, "ECDSA_P256", ""),
        (MAC, "HMAC_SHA256", ""),
        (EXTERNAL, "AES256_GCM", "EXTERNAL"),
    ] {
        api.keys
            .create_key(pb::CreateKeyRequest {
                name: name.into(),
                spec: spec.into(),
                origin: origin.into(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("create {name}: {s:?}"));
    }
    api.keys
        .create_alias(alias(ALIAS, AES, ""))
        .await
        .expect("create the alias");
    api.keys
        .get_import_parameters(write(EXTERNAL, ""))
        .await
        .expect("import parameters");
}

#[tokio::test]
async fn t34_oversized_strings_in_every_field_get_a_short_precise_error() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::with_nodes(1)).await;
    let channel = cluster.channel(1);
    let mut api = Api {
        system: SystemClient::new(channel.clone()),
        keys: KeysClient::new(channel.clone()),
        crypto: CryptoClient::new(channel),
    };
    fixtures(&mut api).await;
    let big = "x".repeat(PROBE_LEN);

    let cases: Vec<Case> = [system_cases(), keys_cases(), crypto_cases()]
        .into_iter()
        .flatten()
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let what = format!("{} {}", case.rpc, case.field);
        let result = past_unavailability(&what, || (case.call)(api.clone(), big.clone())).await;
        let problem = match result {
            Ok(()) => Some("succeeded".to_owned()),
            Err(status) if status.code() != case.code => Some(format!(
                "{:?} instead of {:?}: {}",
                status.code(),
                case.code,
                status.message().chars().take(200).collect::<String>()
            )),
            Err(status) if status.message().len() >= MAX_MESSAGE_LEN => Some(format!(
                "a message of {} bytes: {}…",
                status.message().len(),
                status.message().chars().take(200).collect::<String>()
            )),
            Err(status) if status.message().is_empty() => Some("an empty message".to_owned()),
            Err(_) => None,
        };
        if let Some(problem) = problem {
            failures.push(format!("{what}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // The node is still healthy and nothing was half-applied.
    let listed = api
        .keys
        .list_keys(pb::ListKeysRequest::default())
        .await
        .expect("list keys")
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed
        .iter()
        .all(|k| k.tags.is_empty() && k.description.is_empty()));
}
