//! The Raft log and vote on sled.
//!
//! Tree `raft_log` maps the big-endian `u64` index (so key order is index order) to a postcard
//! [`Entry`]. Tree `raft_meta` holds the vote, the last purged log id and the committed log id.
//! A vote or an append is reported durable only after [`Access::flush`] returns (sled's
//! flush and an `fdatasync` of its data file). Every operation holds one [`Access`] from its
//! first read to its flush, so an online compaction never swaps the database in between.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::durable::{Access, DurableDb};
use crate::storage_error;
use crate::typ::{Entry, LogId, StorageError, TypeConfig, Vote};

pub(crate) const LOG_TREE: &str = "raft_log";
const META_TREE: &str = "raft_meta";
const VOTE_KEY: &[u8] = b"vote";
const LAST_PURGED_KEY: &[u8] = b"last_purged";
const COMMITTED_KEY: &[u8] = b"committed";

/// The sled-backed log store. Cloning is cheap and shares the same database.
#[derive(Clone, Debug)]
pub struct LogStore {
    db: DurableDb,
}

fn log_tree(access: &Access<'_>) -> Result<sled::Tree, sled::Error> {
    access.tree(LOG_TREE)
}

fn meta_tree(access: &Access<'_>) -> Result<sled::Tree, sled::Error> {
    access.tree(META_TREE)
}

impl LogStore {
    /// Opens (or creates) the log trees in `db`.
    ///
    /// # Errors
    /// A sled error if the trees cannot be opened.
    pub fn open(db: &DurableDb) -> Result<Self, sled::Error> {
        db.tree(LOG_TREE)?;
        db.tree(META_TREE)?;
        Ok(Self { db: db.clone() })
    }

    async fn read_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let access = self.db.access().await;
        let meta = meta_tree(&access).map_err(|e| storage_error::read(&e))?;
        let Some(bytes) = meta.get(key).map_err(|e| storage_error::read(&e))? else {
            return Ok(None);
        };
        codec::decode("raft metadata", &bytes)
            .map(Some)
            .map_err(|e| storage_error::read(&e))
    }

    fn write_meta<T: Serialize>(
        access: &Access<'_>,
        key: &[u8],
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = codec::encode("raft metadata", value).map_err(|e| storage_error::write(&e))?;
        meta_tree(access)
            .and_then(|meta| meta.insert(key, bytes))
            .map_err(|e| storage_error::write(&e))?;
        Ok(())
    }

    async fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let access = self.db.access().await;
        let log = log_tree(&access).map_err(|e| storage_error::read_logs(&e))?;
        match log.last().map_err(|e| storage_error::read_logs(&e))? {
            None => Ok(None),
            Some((_, bytes)) => {
                let entry: Entry =
                    codec::decode("log entry", &bytes).map_err(|e| storage_error::read_logs(&e))?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

/// Removes the entries whose keys (see [`index_key`]) are in `range`, in one batch, and flushes.
async fn remove_entries(
    access: &Access<'_>,
    range: impl RangeBounds<[u8; 8]>,
) -> Result<(), StorageError> {
    let log = log_tree(access).map_err(|e| storage_error::read_logs(&e))?;
    let mut batch = sled::Batch::default();
    for item in log.range(range) {
        let (key, _) = item.map_err(|e| storage_error::read_logs(&e))?;
        batch.remove(key);
    }
    log.apply_batch(batch)
        .map_err(|e| storage_error::write_logs(&e))?;
    access
        .flush()
        .await
        .map_err(|e| storage_error::write_logs(&e))
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let access = self.db.access().await;
        let log = log_tree(&access).map_err(|e| storage_error::read_logs(&e))?;
        log.range::<[u8; 8], _>((start, end))
            .map(|item| {
                let (_, bytes) = item.map_err(|e| storage_error::read_logs(&e))?;
                codec::decode("log entry", &bytes).map_err(|e| storage_error::read_logs(&e))
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(LAST_PURGED_KEY).await?;
        let last_log_id = self.last_entry_id().await?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let access = self.db.access().await;
        Self::write_meta(&access, VOTE_KEY, vote)?;
        access
            .flush()
            .await
            .map_err(|e| storage_error::write_vote(&e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE_KEY).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed on its own: the next append or vote flush carries it. A committed id
        // that is lost in a crash only delays re-applying entries until the leader is heard.
        Self::write_meta(&self.db.access().await, COMMITTED_KEY, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .read_meta::<Option<LogId>>(COMMITTED_KEY)
            .await?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes =
                codec::encode("log entry", &entry).map_err(|e| storage_error::write_logs(&e))?;
            batch.insert(&index_key(entry.log_id.index), bytes);
        }
        let access = self.db.access().await;
        log_tree(&access)
            .and_then(|log| log.apply_batch(batch))
            .map_err(|e| storage_error::write_logs(&e))?;
        let flushed = access.flush().await.map_err(io::Error::from);
        callback.log_io_completed(flushed);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let access = self.db.access().await;
        remove_entries(&access, index_key(log_id.index)..).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first, so a crash mid-purge never leaves a gap that
        // `get_log_state` would not explain.
        let access = self.db.access().await;
        Self::write_meta(&access, LAST_PURGED_KEY, &log_id)?;
        remove_entries(&access, ..=index_key(log_id.index)).await
    }
}
