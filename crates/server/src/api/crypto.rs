//! `tessera.v1.Crypto`: encrypt and decrypt, served from this node's applied state.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_crypto::ciphertext::{self, MAX_PLAINTEXT_BYTES};
use tessera_crypto::{EncryptionContext, KeyUsage};
use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_server::Crypto;
use tessera_state::{KeyId, KeyRecord};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use crate::error::ApiError;
use crate::node::Node;

/// Implements `tessera.v1.Crypto`.
pub struct CryptoService {
    node: Arc<Node>,
}

impl CryptoService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    async fn encrypt(&self, req: pb::EncryptRequest) -> Result<pb::EncryptResponse, ApiError> {
        self.node.require_serving()?;
        if req.plaintext.is_empty() {
            return Err(ApiError::invalid("plaintext", "must not be empty"));
        }
        if req.plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(ApiError::invalid(
                "plaintext",
                format!(
                    "is {} bytes; the maximum is {MAX_PLAINTEXT_BYTES} (use a data key for larger data)",
                    req.plaintext.len()
                ),
            ));
        }
        let context = context(req.context)?;
        let record = self.node.resolve_key(&req.key).await?;
        check_encrypt_usage(&record)?;
        let version = record.primary_version;
        let key = self.node.open_version(&record, version)?;
        let ciphertext = ciphertext::encrypt(
            &key,
            record.key_id.as_str(),
            version,
            &context,
            &req.plaintext,
            &mut tessera_crypto::os_rng(),
        )
        .map_err(|e| ApiError::invalid("plaintext", e))?;
        Ok(pb::EncryptResponse {
            ciphertext,
            key_id: record.key_id.to_string(),
            version,
        })
    }

    async fn decrypt(&self, req: pb::DecryptRequest) -> Result<pb::DecryptResponse, ApiError> {
        self.node.require_serving()?;
        let context = context(req.context)?;
        let header = ciphertext::parse_header(&req.ciphertext)
            .map_err(|e| ApiError::invalid("ciphertext", e))?;
        let key_id = KeyId::parse(&header.key_id).map_err(|_| {
            ApiError::invalid("ciphertext", "it names a key id that Tessera never issues")
        })?;
        let record = self
            .node
            .resolve_key_version(key_id.as_str(), header.version)
            .await?;
        check_encrypt_usage(&record)?;
        let key = self.node.open_version(&record, header.version)?;
        let plaintext =
            ciphertext::decrypt(&key, &req.ciphertext, &context).map_err(|e| match e {
                tessera_crypto::Error::Decrypt => ApiError::Undecryptable,
                other => ApiError::invalid("ciphertext", other),
            })?;
        Ok(pb::DecryptResponse {
            plaintext: plaintext.as_slice().to_vec(),
            key_id: record.key_id.to_string(),
            version: header.version,
        })
    }
}

fn context(pairs: BTreeMap<String, String>) -> Result<EncryptionContext, ApiError> {
    let context = EncryptionContext::new(pairs);
    context
        .validate()
        .map_err(|e| ApiError::invalid("context", e))?;
    Ok(context)
}

fn check_encrypt_usage(record: &KeyRecord) -> Result<(), ApiError> {
    match record.usage {
        KeyUsage::EncryptDecrypt => Ok(()),
    }
}

#[tonic::async_trait]
impl Crypto for CryptoService {
    async fn encrypt(
        &self,
        request: GrpcRequest<pb::EncryptRequest>,
    ) -> Result<GrpcResponse<pb::EncryptResponse>, Status> {
        Ok(GrpcResponse::new(self.encrypt(request.into_inner()).await?))
    }

    async fn decrypt(
        &self,
        request: GrpcRequest<pb::DecryptRequest>,
    ) -> Result<GrpcResponse<pb::DecryptResponse>, Status> {
        Ok(GrpcResponse::new(self.decrypt(request.into_inner()).await?))
    }
}
