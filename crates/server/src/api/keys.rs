//! `tessera.v1.Keys`: create, describe, list and rotate customer keys.

use std::sync::Arc;

use tessera_crypto::KeySpec;
use tessera_proto::v1 as pb;
use tessera_proto::v1::keys_server::Keys;
use tessera_state::{ApplyError, Command, KeyId, KeyName, Request, Response};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::{caller, key_to_proto};
use crate::error::ApiError;
use crate::node::{fingerprint, now_ms, rand_fill, request_id, Node};

/// Longest accepted key description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 8192;

/// How often a rotation is retried when another rotation of the same key wins the race.
const ROTATE_ATTEMPTS: usize = 64;

/// Implements `tessera.v1.Keys`.
pub struct KeysService {
    node: Arc<Node>,
}

impl KeysService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    async fn create(
        &self,
        req: pb::CreateKeyRequest,
        identity: String,
    ) -> Result<pb::Key, ApiError> {
        self.node.require_unsealed()?;
        let name = KeyName::parse(&req.name).map_err(|e| ApiError::invalid("name", e))?;
        let spec = if req.spec.is_empty() {
            KeySpec::Aes256Gcm
        } else {
            KeySpec::parse(&req.spec).map_err(|e| ApiError::invalid("spec", e))?
        };
        if req.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(ApiError::invalid(
                "description",
                format!("must be at most {MAX_DESCRIPTION_BYTES} bytes"),
            ));
        }
        let request_id = request_id(&req.request_id)?;
        let fp = fingerprint(
            "Keys/CreateKey",
            &pb::CreateKeyRequest {
                request_id: String::new(),
                ..req.clone()
            },
        );
        let mut id_bytes = [0u8; 16];
        rand_fill(&mut id_bytes);
        let key_id = KeyId::from_random_bytes(id_bytes);
        let material = spec.generate_material(&mut tessera_crypto::os_rng());
        let sealed_material = self.node.seal_material(&key_id, 1, material.as_slice())?;
        let command = Command::CreateKey {
            key_id,
            name,
            spec,
            description: req.description,
            sealed_material,
            at_ms: now_ms(),
            created_by: identity,
        };
        key_response(
            self.node
                .propose(Request {
                    request_id,
                    fingerprint: fp,
                    command,
                })
                .await?,
        )
    }

    async fn rotate(&self, req: pb::RotateKeyRequest) -> Result<pb::Key, ApiError> {
        self.node.require_unsealed()?;
        let request_id = request_id(&req.request_id)?;
        let fp = fingerprint(
            "Keys/RotateKey",
            &pb::RotateKeyRequest {
                request_id: String::new(),
                ..req.clone()
            },
        );
        let record = self.node.resolve_key(&req.key).await?;
        let mut next = next_version(record.latest_version())?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let material = record.spec.generate_material(&mut tessera_crypto::os_rng());
            let sealed_material =
                self.node
                    .seal_material(&record.key_id, next, material.as_slice())?;
            let request = Request {
                request_id: request_id.clone(),
                fingerprint: fp,
                command: Command::RotateKey {
                    key_id: record.key_id.clone(),
                    version: next,
                    sealed_material,
                    at_ms: now_ms(),
                },
            };
            match self.node.propose(request).await {
                // Another rotation won the race: every round has a winner, so retrying with
                // the next version converges; the bound only stops a pathological storm.
                Err(ApiError::Rejected(ApplyError::VersionConflict { latest, .. }))
                    if attempts < ROTATE_ATTEMPTS =>
                {
                    next = next_version(latest)?;
                }
                other => return key_response(other?),
            }
        }
    }
}

fn next_version(latest: u32) -> Result<u32, ApiError> {
    latest.checked_add(1).ok_or_else(|| {
        ApiError::invalid("key", "the key has reached the maximum number of versions")
    })
}

fn key_response(response: Response) -> Result<pb::Key, ApiError> {
    match response {
        Response::Key(meta) => Ok(key_to_proto(&meta)),
        _ => Err(ApiError::Internal("a key command returned no key")),
    }
}

#[tonic::async_trait]
impl Keys for KeysService {
    async fn create_key(
        &self,
        request: GrpcRequest<pb::CreateKeyRequest>,
    ) -> Result<GrpcResponse<pb::CreateKeyResponse>, Status> {
        let identity = caller(&request);
        let key = self.create(request.into_inner(), identity).await?;
        tracing::info!(key_id = %key.key_id, name = %key.name, "key created");
        Ok(GrpcResponse::new(pb::CreateKeyResponse { key: Some(key) }))
    }

    async fn describe_key(
        &self,
        request: GrpcRequest<pb::DescribeKeyRequest>,
    ) -> Result<GrpcResponse<pb::DescribeKeyResponse>, Status> {
        self.node.require_serving()?;
        let record = self.node.resolve_key(&request.get_ref().key).await?;
        Ok(GrpcResponse::new(pb::DescribeKeyResponse {
            key: Some(key_to_proto(&record.metadata())),
        }))
    }

    async fn list_keys(
        &self,
        _request: GrpcRequest<pb::ListKeysRequest>,
    ) -> Result<GrpcResponse<pb::ListKeysResponse>, Status> {
        self.node.require_serving()?;
        let keys = self
            .node
            .raft()
            .shared()
            .read()
            .state
            .keys_by_name()
            .map(|k| key_to_proto(&k.metadata()))
            .collect();
        Ok(GrpcResponse::new(pb::ListKeysResponse { keys }))
    }

    async fn rotate_key(
        &self,
        request: GrpcRequest<pb::RotateKeyRequest>,
    ) -> Result<GrpcResponse<pb::RotateKeyResponse>, Status> {
        let key = self.rotate(request.into_inner()).await?;
        tracing::info!(key_id = %key.key_id, version = key.primary_version, "key rotated");
        Ok(GrpcResponse::new(pb::RotateKeyResponse { key: Some(key) }))
    }
}
