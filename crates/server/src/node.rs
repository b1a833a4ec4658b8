//! [`Node`]: what the API services share — the Raft member, the seal manager — and the checks
//! and lookups every handler needs.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tessera_crypto::SecretKey256;
use tessera_raft::{LeaseState, RaftNode};
use tessera_state::{key::version_aad, KeyRecord, KeyRef, Request, RequestId, Response};

use crate::error::{ApiError, LeaseProblem};
use crate::seal::SealManager;

/// Shared state of a running node.
pub struct Node {
    raft: RaftNode,
    seal: SealManager,
}

impl Node {
    /// Wraps a started Raft member; the node starts sealed.
    pub fn new(raft: RaftNode) -> Self {
        Self {
            raft,
            seal: SealManager::new(),
        }
    }

    /// The Raft member.
    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// Gives up the node, returning its Raft member (for shutdown).
    pub fn into_raft(self) -> RaftNode {
        self.raft
    }

    /// The seal manager.
    pub fn seal(&self) -> &SealManager {
        &self.seal
    }

    /// Fails unless the node is unsealed.
    ///
    /// # Errors
    /// [`ApiError::Sealed`].
    pub fn require_unsealed(&self) -> Result<(), ApiError> {
        if self.seal.status().sealed {
            Err(ApiError::Sealed)
        } else {
            Ok(())
        }
    }

    /// Fails unless the node is unsealed and holds the leader lease, i.e. may answer from its
    /// own applied state.
    ///
    /// # Errors
    /// [`ApiError::Sealed`] or [`ApiError::NoLease`].
    pub fn require_serving(&self) -> Result<(), ApiError> {
        self.require_unsealed()?;
        match self.raft.lease_state() {
            LeaseState::Valid => Ok(()),
            other => Err(ApiError::NoLease(LeaseProblem(other))),
        }
    }

    /// Resolves a key reference in the applied state. A miss is confirmed with a read barrier
    /// first, so a key created through any node is found on every node.
    ///
    /// # Errors
    /// [`ApiError::InvalidArgument`] for a malformed reference, [`ApiError::KeyNotFound`].
    pub async fn resolve_key(&self, key: &str) -> Result<KeyRecord, ApiError> {
        let key_ref = KeyRef::parse(key).map_err(|e| ApiError::invalid("key", e))?;
        if let Some(record) = self.lookup(&key_ref) {
            return Ok(record);
        }
        self.raft.read_barrier().await?;
        self.lookup(&key_ref).ok_or_else(|| ApiError::KeyNotFound {
            key: key_ref.to_string(),
        })
    }

    /// Resolves a key that must have `version`; like [`Node::resolve_key`], a missing version
    /// is confirmed with a read barrier first (it may have been created a moment ago).
    ///
    /// # Errors
    /// As [`Node::resolve_key`], and [`ApiError::VersionNotFound`].
    pub async fn resolve_key_version(
        &self,
        key: &str,
        version: u32,
    ) -> Result<KeyRecord, ApiError> {
        let record = self.resolve_key(key).await?;
        if record.versions.contains_key(&version) {
            return Ok(record);
        }
        self.raft.read_barrier().await?;
        let record = self
            .lookup(&KeyRef::Id(record.key_id.clone()))
            .unwrap_or(record);
        if record.versions.contains_key(&version) {
            Ok(record)
        } else {
            Err(ApiError::VersionNotFound {
                key_id: record.key_id.to_string(),
                version,
            })
        }
    }

    fn lookup(&self, key: &KeyRef) -> Option<KeyRecord> {
        self.raft.shared().read().state.resolve(key).cloned()
    }

    /// Opens the material of `record`'s `version` with the barrier keyring.
    ///
    /// # Errors
    /// [`ApiError::Sealed`], [`ApiError::VersionNotFound`], or [`ApiError::Internal`] if the
    /// stored blob does not open (corruption).
    pub fn open_version(&self, record: &KeyRecord, version: u32) -> Result<SecretKey256, ApiError> {
        let stored = record
            .versions
            .get(&version)
            .ok_or_else(|| ApiError::VersionNotFound {
                key_id: record.key_id.to_string(),
                version,
            })?;
        let aad = version_aad(&record.key_id, version);
        let opened = self
            .seal
            .with_keyring(|keyring| keyring.open(&aad, &stored.sealed_material))
            .ok_or(ApiError::Sealed)?
            .map_err(|_| {
                ApiError::Internal("stored key material does not open under the barrier")
            })?;
        SecretKey256::try_from_slice(opened.as_slice())
            .map_err(|_| ApiError::Internal("stored key material has the wrong length"))
    }

    /// Seals `material` for `record_id`'s `version` under the active barrier term.
    ///
    /// # Errors
    /// [`ApiError::Sealed`], or [`ApiError::Internal`] if sealing fails.
    pub fn seal_material(
        &self,
        key_id: &tessera_state::KeyId,
        version: u32,
        material: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        let aad = version_aad(key_id, version);
        let mut rng = tessera_crypto::os_rng();
        self.seal
            .with_keyring(|keyring| keyring.seal(&aad, material, &mut rng))
            .ok_or(ApiError::Sealed)?
            .map_err(|_| ApiError::Internal("sealing key material failed"))
    }

    /// Proposes a write and returns its replicated result, turning a rejection into an error.
    ///
    /// # Errors
    /// [`ApiError::Rejected`] or [`ApiError::Propose`].
    pub async fn propose(&self, request: Request) -> Result<Response, ApiError> {
        let applied = self.raft.propose(request).await?;
        match applied.response {
            Response::Rejected(e) => Err(ApiError::Rejected(e)),
            other => Ok(other),
        }
    }
}

/// Milliseconds since the Unix epoch, from this node's clock (the proposer's timestamp).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The request id to use: the client's, validated, or a fresh random one.
///
/// # Errors
/// [`ApiError::InvalidArgument`] if the client's id is malformed.
pub fn request_id(client: &str) -> Result<RequestId, ApiError> {
    if client.is_empty() {
        let mut bytes = [0u8; 16];
        rand_fill(&mut bytes);
        let id = tessera_state::KeyId::from_random_bytes(bytes);
        RequestId::parse(id.as_str()).map_err(|_| ApiError::Internal("generated request id"))
    } else {
        RequestId::parse(client).map_err(|e| ApiError::invalid("request_id", e))
    }
}

/// Fills `buf` from the OS CSPRNG.
pub fn rand_fill(buf: &mut [u8]) {
    use tessera_crypto::rand_core::Rng;
    tessera_crypto::os_rng().fill_bytes(buf);
}

/// The fingerprint of a client request: SHA-256 over the method name and the request's
/// protobuf encoding with its request id cleared. A retry must match it.
pub fn fingerprint<M: prost::Message>(method: &str, request_without_id: &M) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(request_without_id.encode_to_vec());
    hasher.finalize().into()
}
