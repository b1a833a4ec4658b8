//! sled, made durable for real, and swappable for online compaction.
//!
//! sled 0.34 on Linux makes a flush "stable" with `sync_file_range(WAIT_BEFORE | WRITE |
//! WAIT_AFTER)`: the pages reach the device, but neither the drive's volatile write cache nor
//! the file's metadata is flushed, so an append Tessera acknowledged could be lost in a power
//! failure. Every flush that Tessera reports as durable goes through [`Access::flush`], which
//! after sled's flush calls `fdatasync` on sled's data file (a sync through any descriptor of a
//! file covers all of its written pages).
//!
//! sled keeps overwritten and removed values in its segment files until it happens to reuse
//! them (its segment-cleanup settings are no-ops in 0.34), so a destroyed key version can stay
//! on disk indefinitely. [`DurableDb::compact`] copies the live trees into a fresh database and
//! swaps it in while the node runs (see [`crate::compact`]). Every store operation therefore
//! reaches the database through an [`Access`], which the swap waits out.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{RwLock as Gate, RwLockReadGuard};

use crate::compact::{self, CompactError, CompactReport};

/// The name of sled 0.34's data file inside its directory.
const SLED_DATA_FILE: &str = "db";

/// What an online compaction did.
#[derive(Clone, Copy, Debug)]
pub struct OnlineCompaction {
    /// Sizes before and after.
    pub report: CompactReport,
    /// How long store operations were held off (the final copy and the swap).
    pub paused: Duration,
}

/// An open sled database and its data file.
#[derive(Clone, Debug)]
struct Open {
    db: sled::Db,
    /// `None` for a temporary database, whose contents do not outlive the process anyway.
    file: Option<Arc<std::fs::File>>,
}

#[derive(Debug)]
struct Inner {
    /// The database in use; `None` only if reopening after a failed swap failed too.
    current: RwLock<Option<Open>>,
    /// Held shared by every store operation from its first read or write to its flush, and
    /// exclusively by the final copy and swap of an online compaction.
    gate: Gate<()>,
    /// The database directory (`None` for a temporary database).
    path: Option<PathBuf>,
}

/// A sled database whose flushes end with an `fdatasync` of its data file. Cloning is cheap
/// and shares the database.
#[derive(Clone, Debug)]
pub struct DurableDb {
    inner: Arc<Inner>,
}

/// Shared access to the database for one store operation: while it lives, no compaction swaps
/// the database underneath it. Hold it from the first read to the flush.
#[derive(Debug)]
pub struct Access<'a> {
    db: &'a DurableDb,
    _gate: RwLockReadGuard<'a, ()>,
}

fn closed() -> sled::Error {
    sled::Error::Io(io::Error::other(
        "the database is closed: reopening it after a failed compaction failed",
    ))
}

impl DurableDb {
    /// `db`, opened at `path`.
    ///
    /// # Errors
    /// If sled's data file in `path` cannot be opened.
    pub fn open(db: sled::Db, path: &Path) -> io::Result<Self> {
        let file = std::fs::File::open(path.join(SLED_DATA_FILE))?;
        Ok(Self::new(
            Open {
                db,
                file: Some(Arc::new(file)),
            },
            Some(path.to_path_buf()),
        ))
    }

    /// A temporary database (tests): flushed by sled alone, never compacted.
    pub fn temporary(db: sled::Db) -> Self {
        Self::new(Open { db, file: None }, None)
    }

    fn new(open: Open, path: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: RwLock::new(Some(open)),
                gate: Gate::new(()),
                path,
            }),
        }
    }

    fn current(&self) -> Result<Open, sled::Error> {
        self.inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(closed)
    }

    /// Puts `open` in use; returns the database that was.
    fn replace(&self, open: Option<Open>) -> Option<Open> {
        std::mem::replace(
            &mut *self
                .inner
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            open,
        )
    }

    /// The tree `name`, without holding off a compaction: only for reads at start, before the
    /// node runs. Store operations use [`DurableDb::access`].
    ///
    /// # Errors
    /// sled's error.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, sled::Error> {
        self.current()?.db.open_tree(name)
    }

    /// Access for one store operation; waits while a compaction swaps the database.
    pub async fn access(&self) -> Access<'_> {
        Access {
            db: self,
            _gate: self.inner.gate.read().await,
        }
    }

    /// Compacts the database while it stays in use: copies the live trees into a fresh
    /// database beside it; then, holding off every store operation, brings the copy up to date
    /// (one ordered pass over both, writing what differs), closes the copy, swaps it in with
    /// [`compact`]'s crash-safe renames and reopens it; then closes the old database and
    /// removes its files. Store operations wait only for that second step, whose cost is reading
    /// both databases once, writing what changed during the first copy, and closing and
    /// reopening the copy.
    ///
    /// # Errors
    /// [`CompactError`]. If it fails before the swap the database in use is untouched; if the
    /// swap itself fails the interrupted swap is undone or finished and the database reopened.
    pub async fn compact(&self) -> Result<OnlineCompaction, CompactError> {
        let Some(path) = self.inner.path.clone() else {
            return Err(CompactError::Temporary);
        };
        let data_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let bytes_before = compact::dir_size(&path);
        let fresh_path = data_dir.join(compact::NEW_DIR);
        let old = self.current().map_err(CompactError::Copy)?.db;
        let fresh = blocking(move || compact::start_copy(&old, &fresh_path)).await??;

        let exclusive = self.inner.gate.write().await;
        let paused_at = Instant::now();
        let old = self.current().map_err(CompactError::Copy)?.db;
        let fresh_path = data_dir.join(compact::NEW_DIR);
        let finished = blocking(move || compact::finish_copy(&old, fresh, &fresh_path)).await?;
        if let Err(e) = finished {
            if let Err(cleanup) = std::fs::remove_dir_all(data_dir.join(compact::NEW_DIR)) {
                tracing::warn!(error = %cleanup, "removing an unfinished compaction copy failed");
            }
            return Err(e);
        }
        // The old database stays open through the renames: idle, sled touches it only through
        // its open file (it writes by path only for new large values and at open), and closing
        // it takes a while, so it is closed after the gate is released.
        let old = self.replace(None);
        let (swap_dir, reopen_path) = (data_dir.clone(), path.clone());
        let (swapped, reopened, old) = blocking(move || {
            let swapped = compact::swap(&swap_dir);
            if swapped.is_err() {
                // The old database may be back in place: close it before reopening it.
                drop(old);
                // Finish or undo the interrupted swap, then reopen whichever database is in place.
                if let Err(e) = compact::recover(&swap_dir) {
                    return (
                        swapped,
                        Err(compact::io_step("recovering the swap")(e)),
                        None,
                    );
                }
                return (swapped, reopen(&reopen_path), None);
            }
            (swapped, reopen(&reopen_path), old)
        })
        .await?;
        let reopened = reopened?;
        self.replace(Some(reopened));
        drop(exclusive);
        let paused = paused_at.elapsed();
        blocking(move || drop(old)).await?;
        swapped?;
        blocking(move || compact::remove_old(&data_dir)).await??;
        Ok(OnlineCompaction {
            report: CompactReport {
                bytes_before,
                bytes_after: compact::dir_size(&path),
            },
            paused,
        })
    }
}

/// Opens the database at `path` again after a swap.
fn reopen(path: &Path) -> Result<Open, CompactError> {
    let db = compact::open_closed(path)?;
    let file = std::fs::File::open(path.join(SLED_DATA_FILE))
        .map_err(compact::io_step("opening the data file"))?;
    Ok(Open {
        db,
        file: Some(Arc::new(file)),
    })
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CompactError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| compact::io_step("a compaction task")(io::Error::other(e)))
}

impl Access<'_> {
    /// The tree `name` of the database in use.
    ///
    /// # Errors
    /// sled's error.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, sled::Error> {
        self.db.tree(name)
    }

    /// Flushes sled's buffers, then the data file to stable storage.
    ///
    /// # Errors
    /// sled's flush error, or the `fdatasync` error as [`sled::Error::Io`].
    pub async fn flush(&self) -> Result<(), sled::Error> {
        let open = self.db.current()?;
        open.db.flush_async().await?;
        let Some(file) = open.file else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| sled::Error::Io(io::Error::other(e)))?
            .map_err(sled::Error::Io)
    }
}

#[cfg(test)]
mod tests;
