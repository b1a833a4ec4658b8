//! `System/SnapshotSave` and `System/SnapshotRestore`: backups of the whole state.
//!
//! A save is taken at a linearizable point (the leader's read index, applied on the answering
//! node) and wrapped in the backup file of `tessera_state::backup`. A restore checks the file
//! again (the server trusts no client), checks that the target is uninitialised or the same
//! cluster with `force`, and replaces the state in one Raft entry whose apply re-checks what
//! the proposer saw. Every node seals itself when it applies a restore.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tessera_proto::v1 as pb;
use tessera_state::backup::{Backup, BackupError, MAX_BACKUP_BODY_BYTES, MAX_BACKUP_FILE_BYTES};
use tessera_state::dedup::DedupHit;
use tessera_state::machine::seal_digest;
use tessera_state::policy::Action;
use tessera_state::{CallerId, Command, Request, Response};

use crate::authz::Caller;
use crate::error::ApiError;
use crate::node::{request_id, Node};

/// Size of the chunks a save streams (well under the API's message limit).
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// The backup file in chunks, ready to stream. Everything that can fail happens before the
/// first chunk, so a refusal is the call's status (and its audit record's outcome).
///
/// # Errors
/// [`ApiError::PermissionDenied`], [`ApiError::Sealed`], [`ApiError::ReadIndex`] when no
/// leader confirms the read point, [`ApiError::Backup`] for a state too large to restore.
pub async fn save(node: &Node, caller: &Caller) -> Result<Vec<pb::SnapshotChunk>, ApiError> {
    node.authorize(caller, Action::SnapshotSave, None, &BTreeMap::new())?;
    node.require_member()?;
    let (cluster_id, terms) = node.cluster_id().ok_or(ApiError::Sealed)?;
    node.raft().read_barrier().await?;
    let backup = {
        let applied = node.raft().shared().read();
        Backup {
            cluster_id,
            terms,
            applied_index: applied.last_applied.map_or(0, |l| l.index),
            body: applied
                .state
                .encode_snapshot()
                .map_err(|_| ApiError::Internal("state snapshot encoding"))?,
        }
    };
    let file = backup.encode()?;
    tracing::info!(
        cluster_id = %hex::encode(backup.cluster_id),
        applied_index = backup.applied_index,
        bytes = file.len(),
        "snapshot saved"
    );
    Ok(file
        .chunks(CHUNK_BYTES)
        .map(|data| pb::SnapshotChunk {
            data: data.to_vec(),
        })
        .collect())
}

/// A restore request after its stream was read.
pub struct RestoreUpload {
    /// The whole file.
    pub file: Vec<u8>,
    /// From the first message.
    pub force: bool,
    /// From the first message.
    pub request_id: String,
}

/// Appends one streamed message to `upload`, refusing a file larger than any valid backup
/// before it is buffered.
///
/// # Errors
/// [`BackupError::TooLarge`].
pub fn receive(
    upload: &mut RestoreUpload,
    first: bool,
    message: pb::SnapshotRestoreRequest,
) -> Result<(), ApiError> {
    if first {
        upload.force = message.force;
        upload.request_id = message.request_id;
    }
    let len = upload.file.len().saturating_add(message.data.len());
    if len > MAX_BACKUP_FILE_BYTES {
        return Err(BackupError::TooLarge {
            len: len as u64,
            max: MAX_BACKUP_BODY_BYTES,
        }
        .into());
    }
    upload.file.extend_from_slice(&message.data);
    Ok(())
}

/// Checks that `caller` may restore: the restore action on an initialised cluster, the
/// initialisation rule (`init_identities`) on an uninitialised one, which has no access
/// model yet.
///
/// # Errors
/// [`ApiError::PermissionDenied`] and the other refusals of [`Node::authorize`].
pub fn authorize_restore(node: &Node, caller: &Caller) -> Result<(), ApiError> {
    node.require_member()?;
    if node.raft().shared().read().state.is_initialized() {
        return node.authorize(caller, Action::SnapshotRestore, None, &BTreeMap::new());
    }
    node.require_not_revoked(caller)?;
    let allowed = node.init_identities();
    if !allowed.is_empty() && !allowed.contains(caller.identity()) {
        return Err(ApiError::PermissionDenied {
            action: Action::SnapshotRestore,
            key: None,
        });
    }
    Ok(())
}

/// Verifies the file and replaces the state with it.
///
/// # Errors
/// [`ApiError::Backup`] for a damaged, foreign, newer or oversized file or an initialised
/// target without `force`; [`ApiError::Sealed`] when the target is initialised and this node
/// sealed (its cluster id is unknown then); the errors of [`Node::propose`].
pub async fn restore(
    node: &Node,
    caller: &Caller,
    upload: RestoreUpload,
) -> Result<pb::SnapshotRestoreResponse, ApiError> {
    let backup = Backup::decode(&upload.file)?;
    let keys = backup.state()?.key_count() as u64;
    let request_id = request_id(&upload.request_id)?;
    let fingerprint = restore_fingerprint(upload.force, &upload.file);
    let caller_id = CallerId::of(caller.name());
    // Read before the state lock is taken: the keyring sync takes it under the seal lock.
    let this_cluster = node.cluster_id();
    let replaces = {
        let applied = node.raft().shared().read();
        if let DedupHit::Retry(first) =
            applied
                .state
                .dedup()
                .check(&caller_id, &request_id, &fingerprint)
        {
            return answer(&backup, *first);
        }
        match applied.state.seal_config() {
            None => None,
            Some(_) => {
                let (target, _) = this_cluster.ok_or(ApiError::Sealed)?;
                if target != backup.cluster_id {
                    return Err(BackupError::ForeignCluster {
                        file: hex::encode(backup.cluster_id),
                        target: hex::encode(target),
                    }
                    .into());
                }
                if !upload.force {
                    return Err(BackupError::TargetInitialized {
                        target: hex::encode(target),
                    }
                    .into());
                }
                seal_digest(&applied.state)
            }
        }
    };
    tracing::warn!(
        cluster_id = %hex::encode(backup.cluster_id),
        source_applied_index = backup.applied_index,
        keys,
        replacing = replaces.is_some(),
        "restoring the state from a backup"
    );
    let response = node
        .propose(Request {
            request_id,
            caller: caller_id,
            fingerprint,
            bindings: Vec::new(),
            command: Command::RestoreSnapshot {
                body: backup.body.clone(),
                replaces,
            },
        })
        .await?;
    answer(&backup, response)
}

/// The API answer for the replicated result of a restore.
fn answer(backup: &Backup, response: Response) -> Result<pb::SnapshotRestoreResponse, ApiError> {
    match response {
        Response::Restored { keys, .. } => Ok(pb::SnapshotRestoreResponse {
            cluster_id: hex::encode(backup.cluster_id),
            keys,
            source_applied_index: backup.applied_index,
            terms: backup.terms.clone(),
        }),
        Response::Rejected(e) => Err(ApiError::Rejected(e)),
        _ => Err(ApiError::Internal("restore returned another result")),
    }
}

/// The de-duplication fingerprint of a restore: the method, `force` and the file.
fn restore_fingerprint(force: bool, file: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(Action::SnapshotRestore.rpc().as_bytes());
    hash.update([0, u8::from(force)]);
    hash.update(file);
    hash.finalize().into()
}

/// Seals this node whenever it applies a restore: the seal configuration it was unsealed
/// under was replaced, and the restored cluster unseals only with the backup's shares. Runs
/// until the node stops.
pub async fn seal_after_restores(node: Arc<Node>) {
    let mut restores = node.raft().shared().watch_restores();
    while restores.changed().await.is_ok() {
        node.seal_now();
        tracing::warn!("the state was restored from a backup: node sealed; unseal it with the shares of the restored cluster");
    }
}
