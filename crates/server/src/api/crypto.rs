//! `tessera.v1.Crypto`: every cryptographic operation, served from this node's applied state.

mod envelope;
mod signing;

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_crypto::{EncryptionContext, KeyUsage, SecretBytes};
use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_server::Crypto;
use tessera_state::policy::Action;
use tessera_state::{KeyRecord, KeyVersion};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use crate::authz::{split, Caller};
use crate::error::ApiError;
use crate::node::Node;

/// Most items in one batch request.
pub const MAX_BATCH_ITEMS: usize = 256;
/// Largest `GenerateRandom` request, in bytes.
pub const MAX_RANDOM_BYTES: u32 = 1024;

/// Implements `tessera.v1.Crypto`.
pub struct CryptoService {
    node: Arc<Node>,
}

impl CryptoService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// The primary version of `record` and its unsealed material.
    fn primary_material(&self, record: &KeyRecord) -> Result<(KeyVersion, SecretBytes), ApiError> {
        let (version, sealed) = record.primary()?;
        Ok((
            version,
            self.node
                .unseal_material(&record.key_id, version, record.spec, sealed)?,
        ))
    }

    /// A version allowed to decrypt or verify and its unsealed material.
    fn readable_material(
        &self,
        record: &KeyRecord,
        version: KeyVersion,
    ) -> Result<(KeyVersion, SecretBytes), ApiError> {
        let (version, sealed) = record.decryptable(version)?;
        Ok((
            version,
            self.node
                .unseal_material(&record.key_id, version, record.spec, sealed)?,
        ))
    }

    /// Resolves a key, checks `caller` may perform `action` on it with `context`, and checks
    /// the key has `usage`.
    async fn key_for(
        &self,
        access: Access<'_>,
        key: &str,
        usage: KeyUsage,
        operation: &'static str,
    ) -> Result<KeyRecord, ApiError> {
        let record = self.node.resolve_key(key).await?;
        access.check(&self.node, &record)?;
        require_usage(&record, usage, operation)?;
        Ok(record)
    }
}

/// Who asks for which action with which encryption context: checked once the key is known.
#[derive(Clone, Copy)]
struct Access<'a> {
    caller: &'a Caller,
    action: Action,
    context: &'a BTreeMap<String, String>,
}

/// The context of calls that have none.
static NO_CONTEXT: BTreeMap<String, String> = BTreeMap::new();

impl<'a> Access<'a> {
    /// `action` by `caller` with encryption `context`.
    fn new(caller: &'a Caller, action: Action, context: &'a EncryptionContext) -> Self {
        Self {
            caller,
            action,
            context: context.as_map(),
        }
    }

    /// `action` by `caller`, with no encryption context.
    fn without_context(caller: &'a Caller, action: Action) -> Self {
        Self {
            caller,
            action,
            context: &NO_CONTEXT,
        }
    }

    /// Fails unless the access is allowed on `record`.
    fn check(self, node: &Node, record: &KeyRecord) -> Result<(), ApiError> {
        node.authorize(self.caller, self.action, Some(record), self.context)
    }
}

fn require_usage(
    record: &KeyRecord,
    usage: KeyUsage,
    operation: &'static str,
) -> Result<(), ApiError> {
    if record.usage == usage {
        Ok(())
    } else {
        Err(ApiError::WrongUsage {
            key_id: record.key_id.to_string(),
            usage: record.usage.name(),
            operation,
        })
    }
}

fn context(pairs: BTreeMap<String, String>) -> Result<EncryptionContext, ApiError> {
    context_field("context", pairs)
}

/// Validates an encryption context given in the request field `field`.
fn context_field(
    field: &'static str,
    pairs: BTreeMap<String, String>,
) -> Result<EncryptionContext, ApiError> {
    let context = EncryptionContext::new(pairs);
    context
        .validate()
        .map_err(|e| ApiError::invalid(field, e))?;
    Ok(context)
}

/// The error of one batch item, as the status it would have had alone.
fn item_error(error: ApiError) -> pb::ItemError {
    let (code, tessera_code) = error.codes();
    pb::ItemError {
        code: tessera_proto::code_name(code).into(),
        message: error.to_string(),
        tessera_code: tessera_code.into(),
    }
}

rpcs! {
    impl Crypto for CryptoService, first [require_serving];
    encrypt(EncryptRequest) -> EncryptResponse = encrypt_one;
    decrypt(DecryptRequest) -> DecryptResponse = decrypt_one;
    re_encrypt(ReEncryptRequest) -> ReEncryptResponse = re_encrypt_one;
    batch_encrypt(BatchEncryptRequest) -> BatchEncryptResponse = encrypt_batch;
    batch_decrypt(BatchDecryptRequest) -> BatchDecryptResponse = decrypt_batch;
    generate_data_key(GenerateDataKeyRequest) -> GenerateDataKeyResponse = data_key(true);
    generate_data_key_without_plaintext(GenerateDataKeyRequest) -> GenerateDataKeyResponse
        = data_key(false);
    generate_data_key_pair(GenerateDataKeyPairRequest) -> GenerateDataKeyPairResponse
        = data_key_pair;
    sign(SignRequest) -> SignResponse = sign_one;
    verify(VerifyRequest) -> VerifyResponse = verify_one;
    get_public_key(GetPublicKeyRequest) -> GetPublicKeyResponse = public_key;
    generate_mac(GenerateMacRequest) -> GenerateMacResponse = mac_one;
    verify_mac(VerifyMacRequest) -> VerifyMacResponse = verify_mac_one;
    {
        // Random bytes need no key and no lease: an unsealed node answers.
        async fn generate_random(
            &self,
            request: GrpcRequest<pb::GenerateRandomRequest>,
        ) -> Result<GrpcResponse<pb::GenerateRandomResponse>, Status> {
            self.node.require_unsealed()?;
            let (caller, req) = split(request)?;
            self.node
                .authorize(&caller, Action::GenerateRandom, None, &BTreeMap::new())?;
            let n = req.number_of_bytes;
            if n == 0 || n > MAX_RANDOM_BYTES {
                return Err(ApiError::invalid(
                    "number_of_bytes",
                    format!("must be 1..={MAX_RANDOM_BYTES}, got {n}"),
                )
                .into());
            }
            let mut random = vec![0u8; n as usize];
            crate::node::rand_fill(&mut random);
            Ok(GrpcResponse::new(pb::GenerateRandomResponse { random }))
        }
    }
}
