//! Backups: save the whole (still sealed) state to a file, restore one into a cluster. Both
//! fail over like the other cluster-wide calls: a save is a read, and a restore carries one
//! request id across attempts, so a retry after a lost answer is answered from the first.

use tessera_proto::v1 as pb;
use tessera_proto::v1::system_client::SystemClient;

use super::{new_request_id, Client};
use crate::error::Error;

/// Bytes per message of a restore upload (the server accepts up to its API message limit).
pub const RESTORE_CHUNK_BYTES: usize = 1024 * 1024;

impl Client {
    /// The backup file of the whole state (needs `operator:SnapshotSave`; the answering node
    /// must be unsealed). The server checks nothing on the client's behalf here: verify the
    /// file before relying on it (the CLI does).
    ///
    /// # Errors
    /// [`Error`] from the cluster, including a stream that broke off.
    pub async fn snapshot_save(&self) -> Result<Vec<u8>, Error> {
        self.with_failover(|channel| {
            let request = self.request(pb::SnapshotSaveRequest {});
            async move {
                let mut stream = SystemClient::new(channel)
                    .snapshot_save(request)
                    .await?
                    .into_inner();
                let mut file = Vec::new();
                while let Some(chunk) = stream.message().await? {
                    file.extend_from_slice(&chunk.data);
                }
                Ok(tonic::Response::new(file))
            }
        })
        .await
    }

    /// Replaces the cluster's whole state with the backup `file` (needs
    /// `operator:SnapshotRestore`, or on an uninitialised cluster the right to `Init`). The
    /// target must be uninitialised, or the same cluster with `force`. Afterwards every node
    /// is sealed and unseals with the backup's shares.
    ///
    /// # Errors
    /// [`Error`]; a refused file carries a `SNAPSHOT_*` code and changes nothing.
    pub async fn snapshot_restore(
        &self,
        file: &[u8],
        force: bool,
    ) -> Result<pb::SnapshotRestoreResponse, Error> {
        let request_id = new_request_id();
        let messages = |request_id: &str| {
            let mut messages: Vec<pb::SnapshotRestoreRequest> = file
                .chunks(RESTORE_CHUNK_BYTES)
                .map(|data| pb::SnapshotRestoreRequest {
                    data: data.to_vec(),
                    force,
                    request_id: request_id.to_owned(),
                })
                .collect();
            if messages.is_empty() {
                messages.push(pb::SnapshotRestoreRequest {
                    data: Vec::new(),
                    force,
                    request_id: request_id.to_owned(),
                });
            }
            messages
        };
        self.with_failover(|channel| {
            let request = self.request(futures::stream::iter(messages(&request_id)));
            async move { SystemClient::new(channel).snapshot_restore(request).await }
        })
        .await
    }
}
