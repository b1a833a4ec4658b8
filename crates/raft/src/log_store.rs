//! The Raft log and vote on sled.
//!
//! Tree `raft_log` maps the big-endian `u64` index (so key order is index order) to a postcard
//! [`Entry`]. Tree `raft_meta` holds the vote, the last purged log id and the committed log id.
//! A vote or an append is reported durable only after [`DurableDb::flush`] returns (sled's
//! flush and an `fdatasync` of its data file).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::durable::DurableDb;
use crate::storage_error;
use crate::typ::{Entry, LogId, StorageError, TypeConfig, Vote};

pub(crate) const LOG_TREE: &str = "raft_log";
const META_TREE: &str = "raft_meta";
const VOTE_KEY: &[u8] = b"vote";
const LAST_PURGED_KEY: &[u8] = b"last_purged";
const COMMITTED_KEY: &[u8] = b"committed";

/// The sled-backed log store. Cloning is cheap and shares the same trees.
#[derive(Clone, Debug)]
pub struct LogStore {
    db: DurableDb,
    log: sled::Tree,
    meta: sled::Tree,
}

impl LogStore {
    /// Opens (or creates) the log trees in `db`.
    ///
    /// # Errors
    /// A sled error if the trees cannot be opened.
    pub fn open(db: &DurableDb) -> Result<Self, sled::Error> {
        Ok(Self {
            db: db.clone(),
            log: db.db().open_tree(LOG_TREE)?,
            meta: db.db().open_tree(META_TREE)?,
        })
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self.meta.get(key).map_err(|e| storage_error::read(&e))? else {
            return Ok(None);
        };
        codec::decode("raft metadata", &bytes)
            .map(Some)
            .map_err(|e| storage_error::read(&e))
    }

    fn write_meta<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let bytes = codec::encode("raft metadata", value).map_err(|e| storage_error::write(&e))?;
        self.meta
            .insert(key, bytes)
            .map_err(|e| storage_error::write(&e))?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), sled::Error> {
        self.db.flush().await
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        match self.log.last().map_err(|e| storage_error::read_logs(&e))? {
            None => Ok(None),
            Some((_, bytes)) => {
                let entry: Entry =
                    codec::decode("log entry", &bytes).map_err(|e| storage_error::read_logs(&e))?;
                Ok(Some(entry.log_id))
            }
        }
    }
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
        self.log
            .range::<[u8; 8], _>((start, end))
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
        let last_purged_log_id: Option<LogId> = self.read_meta(LAST_PURGED_KEY)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(VOTE_KEY, vote)?;
        self.flush()
            .await
            .map_err(|e| storage_error::write_vote(&e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE_KEY)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed on its own: the next append or vote flush carries it. A committed id
        // that is lost in a crash only delays re-applying entries until the leader is heard.
        self.write_meta(COMMITTED_KEY, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(COMMITTED_KEY)?.flatten())
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
        self.log
            .apply_batch(batch)
            .map_err(|e| storage_error::write_logs(&e))?;
        let flushed = self.flush().await.map_err(io::Error::from);
        callback.log_io_completed(flushed);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(index_key(log_id.index)..) {
            let (key, _) = item.map_err(|e| storage_error::read_logs(&e))?;
            batch.remove(key);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| storage_error::write_logs(&e))?;
        self.flush()
            .await
            .map_err(|e| storage_error::write_logs(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first, so a crash mid-purge never leaves a gap that
        // `get_log_state` would not explain.
        self.write_meta(LAST_PURGED_KEY, &log_id)?;
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=index_key(log_id.index)) {
            let (key, _) = item.map_err(|e| storage_error::read_logs(&e))?;
            batch.remove(key);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| storage_error::write_logs(&e))?;
        self.flush()
            .await
            .map_err(|e| storage_error::write_logs(&e))
    }
}
