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

#[tonic::async_trait]
impl Crypto for CryptoService {
    async fn encrypt(
        &self,
        request: GrpcRequest<pb::EncryptRequest>,
    ) -> Result<GrpcResponse<pb::EncryptResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.encrypt_one(req, &caller).await?))
    }

    async fn decrypt(
        &self,
        request: GrpcRequest<pb::DecryptRequest>,
    ) -> Result<GrpcResponse<pb::DecryptResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.decrypt_one(req, &caller).await?))
    }

    async fn re_encrypt(
        &self,
        request: GrpcRequest<pb::ReEncryptRequest>,
    ) -> Result<GrpcResponse<pb::ReEncryptResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.re_encrypt(req, &caller).await?))
    }

    async fn batch_encrypt(
        &self,
        request: GrpcRequest<pb::BatchEncryptRequest>,
    ) -> Result<GrpcResponse<pb::BatchEncryptResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.batch_encrypt(req, &caller).await?))
    }

    async fn batch_decrypt(
        &self,
        request: GrpcRequest<pb::BatchDecryptRequest>,
    ) -> Result<GrpcResponse<pb::BatchDecryptResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.batch_decrypt(req, &caller).await?))
    }

    async fn generate_data_key(
        &self,
        request: GrpcRequest<pb::GenerateDataKeyRequest>,
    ) -> Result<GrpcResponse<pb::GenerateDataKeyResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.data_key(req, true, &caller).await?))
    }

    async fn generate_data_key_without_plaintext(
        &self,
        request: GrpcRequest<pb::GenerateDataKeyRequest>,
    ) -> Result<GrpcResponse<pb::GenerateDataKeyResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.data_key(req, false, &caller).await?))
    }

    async fn generate_data_key_pair(
        &self,
        request: GrpcRequest<pb::GenerateDataKeyPairRequest>,
    ) -> Result<GrpcResponse<pb::GenerateDataKeyPairResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.data_key_pair(req, &caller).await?))
    }

    async fn sign(
        &self,
        request: GrpcRequest<pb::SignRequest>,
    ) -> Result<GrpcResponse<pb::SignResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.sign(req, &caller).await?))
    }

    async fn verify(
        &self,
        request: GrpcRequest<pb::VerifyRequest>,
    ) -> Result<GrpcResponse<pb::VerifyResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.verify(req, &caller).await?))
    }

    async fn get_public_key(
        &self,
        request: GrpcRequest<pb::GetPublicKeyRequest>,
    ) -> Result<GrpcResponse<pb::GetPublicKeyResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.public_key(req, &caller).await?))
    }

    async fn generate_mac(
        &self,
        request: GrpcRequest<pb::GenerateMacRequest>,
    ) -> Result<GrpcResponse<pb::GenerateMacResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.generate_mac(req, &caller).await?))
    }

    async fn verify_mac(
        &self,
        request: GrpcRequest<pb::VerifyMacRequest>,
    ) -> Result<GrpcResponse<pb::VerifyMacResponse>, Status> {
        self.node.require_serving().await?;
        let (caller, req) = split(request)?;
        Ok(GrpcResponse::new(self.verify_mac(req, &caller).await?))
    }

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
