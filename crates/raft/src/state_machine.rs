//! The replicated state machine on sled, and the shared read handle the API serves from.
//!
//! Tree `sm` holds the rows of [`tessera_state::State`] under `r/…` and the Raft pointers
//! (`m/last_applied`, `m/membership`) beside them; each applied batch of entries is written
//! with one atomic `apply_batch`. Tree `sm_snapshot` holds the latest snapshot (`current`).
//! This module only decodes, calls `State::apply` and persists: no domain logic lives here.
//!
//! The stored snapshot never goes backwards: openraft builds snapshots in a task of their own,
//! so a build of older state can finish after a newer snapshot was installed, and the log may
//! already be purged past the older one. A snapshot therefore replaces the stored one only if
//! its last log id is at least the stored one's, checked and written in one sled transaction;
//! an install writes its rows, pointers and snapshot in one transaction across both trees.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::Transactional;
use tessera_state::{Command, Response, State};
use tokio::sync::watch;

use crate::codec::{self, CodecError};
use crate::durable::{Access, DurableDb};
use crate::storage_error;
use crate::typ::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const SM_TREE: &str = "sm";
const SNAPSHOT_TREE: &str = "sm_snapshot";
const ROW_PREFIX: &[u8] = b"r/";
const LAST_APPLIED_KEY: &[u8] = b"m/last_applied";
const MEMBERSHIP_KEY: &[u8] = b"m/membership";
const CURRENT_SNAPSHOT_KEY: &[u8] = b"current";

/// The applied state plus the Raft pointers that go with it.
#[derive(Debug, Default)]
pub struct AppliedState {
    /// The model.
    pub state: State,
    /// The last log id applied to `state`.
    pub last_applied: Option<LogId>,
    /// The membership as of `last_applied`.
    pub membership: StoredMembership,
}

/// Read access to the applied state, shared by the state machine and the API services.
#[derive(Debug)]
pub struct SharedState {
    applied: RwLock<AppliedState>,
    applied_index: watch::Sender<u64>,
    /// Counts applied `RestoreSnapshot` entries, so the node can seal itself after one.
    restores: watch::Sender<u64>,
    /// Writes applied since the state was last captured for a snapshot, a batch counting each
    /// of its writes (see [`SharedState::writes_since_snapshot`]).
    writes_since_snapshot: AtomicU64,
}

impl SharedState {
    fn new(applied: AppliedState) -> Arc<Self> {
        let index = applied.last_applied.map_or(0, |id| id.index);
        Arc::new(Self {
            applied: RwLock::new(applied),
            applied_index: watch::Sender::new(index),
            restores: watch::Sender::new(0),
            writes_since_snapshot: AtomicU64::new(0),
        })
    }

    /// Writes applied since the state was last captured for a snapshot (or installed from
    /// one). openraft's snapshot policy counts entries, and a group-commit entry carries up to
    /// hundreds of writes, so the node also snapshots by this count: otherwise the log since
    /// the last snapshot, and what a restart replays, would grow with the batch size.
    pub fn writes_since_snapshot(&self) -> u64 {
        self.writes_since_snapshot.load(Ordering::Relaxed)
    }

    /// Subscribes to the applied index.
    pub fn watch_applied(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }

    /// A read guard on the applied state. Hold it briefly and never across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, AppliedState> {
        self.applied
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        *self.applied_index.borrow()
    }

    /// Waits until the applied index reaches `index`; returns whether it did before `timeout`.
    pub async fn wait_applied(&self, index: u64, timeout: std::time::Duration) -> bool {
        let mut rx = self.applied_index.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Changes whenever this node applies a backup restore (`Response::Restored`): the
    /// state's seal configuration was replaced, so a node unsealed under the old one must
    /// seal itself.
    pub fn watch_restores(&self) -> watch::Receiver<u64> {
        self.restores.subscribe()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, AppliedState> {
        self.applied
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, last_applied: Option<LogId>) {
        let index = last_applied.map_or(0, |id| id.index);
        self.applied_index.send_replace(index);
    }
}

/// One encoded `m/` pointer: its key and value.
type PointerRow = (&'static [u8], Vec<u8>);

/// The value under `current` in the snapshot tree.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The leading field of a [`StoredSnapshot`], decoded without the (large) data to compare the
/// stored snapshot with a new one.
#[derive(Deserialize)]
struct StoredSnapshotHead {
    meta: SnapshotMeta,
}

/// Inside a transaction on the snapshot tree: stores `encoded` (the encoding of a snapshot
/// described by `meta`) as the current snapshot unless the stored one is newer. Returns
/// whether it was stored.
fn store_if_not_older(
    snapshots: &TransactionalTree,
    meta: &SnapshotMeta,
    encoded: &[u8],
) -> ConflictableTransactionResult<bool, CodecError> {
    if let Some(current) = snapshots.get(CURRENT_SNAPSHOT_KEY)? {
        let head: StoredSnapshotHead = codec::decode_prefix("stored snapshot", &current)
            .map_err(ConflictableTransactionError::Abort)?;
        if head.meta.last_log_id > meta.last_log_id {
            return Ok(false);
        }
    }
    snapshots.insert(CURRENT_SNAPSHOT_KEY, encoded)?;
    Ok(true)
}

/// A failed snapshot transaction as openraft's storage error: an undecodable stored snapshot
/// is a read error, anything sled reports a write error.
fn snapshot_transaction_error(
    meta: &SnapshotMeta,
    error: &TransactionError<CodecError>,
) -> StorageError {
    let signature = Some(meta.signature());
    match error {
        TransactionError::Abort(e) => storage_error::read_snapshot(signature, e),
        TransactionError::Storage(e) => storage_error::write_snapshot(signature, e),
    }
}

/// The sled-backed state machine store. Every operation reaches the trees through one
/// [`Access`], held until its flush (see [`crate::durable`]).
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    db: DurableDb,
    shared: Arc<SharedState>,
}

/// The rows tree and the snapshot tree of the database in use.
fn trees(access: &Access<'_>) -> Result<(sled::Tree, sled::Tree), sled::Error> {
    Ok((access.tree(SM_TREE)?, access.tree(SNAPSHOT_TREE)?))
}

impl StateMachineStore {
    /// Opens the state machine trees in `db` and loads the applied state from its rows.
    ///
    /// # Errors
    /// A [`StorageError`] if a row does not decode.
    pub fn open(db: &DurableDb) -> Result<Self, StorageError> {
        let tree = db
            .tree(SM_TREE)
            .map_err(|e| storage_error::read_state_machine(&e))?;
        db.tree(SNAPSHOT_TREE)
            .map_err(|e| storage_error::read_snapshot(None, &e))?;
        let mut rows = Vec::new();
        for item in tree.scan_prefix(ROW_PREFIX) {
            let (key, value) = item.map_err(|e| storage_error::read_state_machine(&e))?;
            let key = key.get(ROW_PREFIX.len()..).unwrap_or_default().to_vec();
            rows.push((key, value.to_vec()));
        }
        let state = State::from_rows(rows).map_err(|e| storage_error::read_state_machine(&e))?;
        let last_applied = read_value(&tree, LAST_APPLIED_KEY)?.flatten();
        let membership = read_value(&tree, MEMBERSHIP_KEY)?.unwrap_or_default();
        Ok(Self {
            db: db.clone(),
            shared: SharedState::new(AppliedState {
                state,
                last_applied,
                membership,
            }),
        })
    }

    /// The shared read handle on the applied state.
    pub fn shared(&self) -> Arc<SharedState> {
        Arc::clone(&self.shared)
    }

    /// The encoded `m/` pointers, as (key, value) pairs to write beside the rows.
    fn pointer_rows(
        last_applied: &Option<LogId>,
        membership: &StoredMembership,
    ) -> Result<[PointerRow; 2], StorageError> {
        let applied = codec::encode("last applied", last_applied)
            .map_err(|e| storage_error::write_state_machine(&e))?;
        let membership = codec::encode("membership", membership)
            .map_err(|e| storage_error::write_state_machine(&e))?;
        Ok([(LAST_APPLIED_KEY, applied), (MEMBERSHIP_KEY, membership)])
    }

    async fn read_current_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let access = self.db.access().await;
        let Some(bytes) = access
            .tree(SNAPSHOT_TREE)
            .and_then(|snapshots| snapshots.get(CURRENT_SNAPSHOT_KEY))
            .map_err(|e| storage_error::read_snapshot(None, &e))?
        else {
            return Ok(None);
        };
        codec::decode("snapshot", &bytes)
            .map(Some)
            .map_err(|e| storage_error::read_snapshot(None, &e))
    }

    /// Stores `stored` as the current snapshot unless a newer one is stored already, and
    /// flushes. Returns whether it was stored.
    async fn save_snapshot(&self, stored: &StoredSnapshot) -> Result<bool, StorageError> {
        let encoded = codec::encode("snapshot", stored)
            .map_err(|e| storage_error::write_snapshot(Some(stored.meta.signature()), &e))?;
        let access = self.db.access().await;
        let saved = access
            .tree(SNAPSHOT_TREE)
            .map_err(|e| storage_error::write_snapshot(Some(stored.meta.signature()), &e))?
            .transaction(|snapshots| store_if_not_older(snapshots, &stored.meta, &encoded))
            .map_err(|e| snapshot_transaction_error(&stored.meta, &e))?;
        if saved {
            Self::flush_snapshot(&access, &stored.meta).await?;
        }
        Ok(saved)
    }

    async fn flush_snapshot(access: &Access<'_>, meta: &SnapshotMeta) -> Result<(), StorageError> {
        access
            .flush()
            .await
            .map_err(|e| storage_error::write_snapshot(Some(meta.signature()), &e))?;
        Ok(())
    }
}

fn read_value<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    key: &[u8],
) -> Result<Option<T>, StorageError> {
    let Some(bytes) = tree
        .get(key)
        .map_err(|e| storage_error::read_state_machine(&e))?
    else {
        return Ok(None);
    };
    codec::decode("state machine pointer", &bytes)
        .map(Some)
        .map_err(|e| storage_error::read_state_machine(&e))
}

fn row_key(key: &[u8]) -> Vec<u8> {
    [ROW_PREFIX, key].concat()
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.shared.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // The rows are written to sled after the lock is released: readers (every crypto call)
        // wait only for the in-memory apply, not for sled. Entries are applied by one task in
        // log order, so no other write can slip in between.
        let access = self.db.access().await;
        let (responses, last_applied, batch, restored) = {
            let mut applied = self.shared.write();
            let mut responses = Vec::new();
            let mut restored = false;
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => Response::Noop,
                    EntryPayload::Normal(request) => {
                        let writes = match &request.command {
                            Command::Batch(requests) => requests.len() as u64,
                            _ => 1,
                        };
                        self.shared
                            .writes_since_snapshot
                            .fetch_add(writes, Ordering::Relaxed);
                        applied.state.apply(entry.log_id.index, &request)
                    }
                    EntryPayload::Membership(membership) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                        Response::Noop
                    }
                };
                restored |= match &response {
                    Response::Restored { .. } => true,
                    // A batch holds no batch (`ApplyError::NestedBatch`).
                    Response::Batch(parts) => parts
                        .iter()
                        .any(|part| matches!(part, Response::Restored { .. })),
                    _ => false,
                };
                responses.push(response);
            }
            let mut batch = sled::Batch::default();
            for change in applied
                .state
                .take_changes()
                .map_err(|e| storage_error::write_state_machine(&e))?
            {
                match change.value {
                    Some(value) => batch.insert(row_key(&change.key), value),
                    None => batch.remove(row_key(&change.key)),
                }
            }
            for (key, value) in Self::pointer_rows(&applied.last_applied, &applied.membership)? {
                batch.insert(key, value);
            }
            (responses, applied.last_applied, batch, restored)
        };
        access
            .tree(SM_TREE)
            .and_then(|tree| tree.apply_batch(batch))
            .map_err(|e| storage_error::write_state_machine(&e))?;
        drop(access);
        self.shared.publish(last_applied);
        if restored {
            self.shared
                .restores
                .send_modify(|count| *count = count.wrapping_add(1));
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let signature = Some(meta.signature());
        let state = State::decode_snapshot(&data)
            .map_err(|e| storage_error::read_snapshot(signature.clone(), &e))?;
        let rows: Vec<(Vec<u8>, Vec<u8>)> = state
            .all_rows()
            .map_err(|e| storage_error::write_state_machine(&e))?
            .into_iter()
            .map(|(key, value)| (row_key(&key), value))
            .collect();
        let access = self.db.access().await;
        let (tree, snapshots) =
            trees(&access).map_err(|e| storage_error::read_state_machine(&e))?;
        let mut stale = Vec::new();
        for item in tree.scan_prefix(ROW_PREFIX) {
            let (key, _) = item.map_err(|e| storage_error::read_state_machine(&e))?;
            stale.push(key);
        }
        let pointers = Self::pointer_rows(&meta.last_log_id, &meta.last_membership)?;
        let encoded = codec::encode(
            "snapshot",
            &StoredSnapshot {
                meta: meta.clone(),
                data,
            },
        )
        .map_err(|e| storage_error::write_snapshot(signature, &e))?;
        // Rows, pointers and snapshot in one transaction: a crash leaves either the old state
        // with its snapshot or the installed one with its snapshot.
        let saved = (&tree, &snapshots)
            .transaction(|(rows_tree, snapshots)| {
                for key in &stale {
                    rows_tree.remove(key)?;
                }
                for (key, value) in &rows {
                    rows_tree.insert(key.as_slice(), value.as_slice())?;
                }
                for (key, value) in &pointers {
                    rows_tree.insert(*key, value.as_slice())?;
                }
                store_if_not_older(snapshots, meta, &encoded)
            })
            .map_err(|e| snapshot_transaction_error(meta, &e))?;
        if !saved {
            tracing::info!(
                installed = ?meta.last_log_id,
                "a newer snapshot is already stored; installed the state and kept that snapshot"
            );
        }
        Self::flush_snapshot(&access, meta).await?;
        drop(access);
        {
            let mut applied = self.shared.write();
            applied.state = state;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            self.shared
                .writes_since_snapshot
                .store(0, Ordering::Relaxed);
        }
        self.shared.publish(meta.last_log_id);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.read_current_snapshot().await?.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

/// Builds snapshots from the applied state.
#[derive(Debug)]
pub struct SnapshotBuilder {
    store: StateMachineStore,
}

impl SnapshotBuilder {
    /// Encodes the applied state as it is now, with its metadata: the part of a build that
    /// reads the state. Storing it may happen after other snapshots were stored or installed.
    fn capture(&self) -> Result<StoredSnapshot, StorageError> {
        let (data, last_applied, membership) = {
            let applied = self.store.shared.read();
            let data = applied
                .state
                .encode_snapshot()
                .map_err(|e| storage_error::write_snapshot(None, &e))?;
            // Applies take the write lock, so none ran since the state was encoded.
            self.store
                .shared
                .writes_since_snapshot
                .store(0, Ordering::Relaxed);
            (data, applied.last_applied, applied.membership.clone())
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}-{nanos}", id.leader_id, id.index),
            None => format!("empty-{nanos}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        Ok(StoredSnapshot { meta, data })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let stored = self.capture()?;
        if !self.store.save_snapshot(&stored).await? {
            // openraft ignores a built snapshot older than the one it knows of.
            tracing::info!(
                built = ?stored.meta.last_log_id,
                "a newer snapshot was stored while this one was built; keeping the newer one"
            );
        }
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

#[cfg(test)]
mod tests;
