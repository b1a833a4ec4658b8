//! Compaction of a node's database: copy the live trees into a fresh sled database and swap it
//! in, so bytes that are no longer referenced (purged log entries, overwritten rows, destroyed
//! key versions) leave the disk. The analogue of `etcdctl defrag`. [`compact`] runs on a
//! stopped node (sled's lock refuses a running one); a running node compacts its own database
//! with [`crate::durable::DurableDb::compact`], built from the same steps.
//!
//! The swap is three renames: `raft` → `raft.pre-compact`, `raft.compact` → `raft`, then the
//! old copy is removed. [`recover`] (run at every start) finishes or undoes a swap that a crash
//! interrupted.

use std::io;
use std::path::{Path, PathBuf};

/// Directory of the node's sled database inside its data directory.
pub const DB_DIR: &str = "raft";
pub(crate) const NEW_DIR: &str = "raft.compact";
const OLD_DIR: &str = "raft.pre-compact";

/// A compaction failure.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The database cannot be opened (a running node holds its lock, or it does not exist).
    #[error("cannot open the database in {path} (is the node stopped?): {source}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// Copying or flushing failed.
    #[error("copying the database failed: {0}")]
    Copy(#[from] sled::Error),
    /// A temporary database has no files to compact.
    #[error("a temporary database is not compacted")]
    Temporary,
    /// A filesystem step failed.
    #[error("{step} failed: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Sizes before and after compaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactReport {
    /// Bytes on disk before.
    pub bytes_before: u64,
    /// Bytes on disk after.
    pub bytes_after: u64,
}

/// Bytes of the files under `path`.
pub(crate) fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Maps an I/O error to [`CompactError::Io`] for `step`.
pub(crate) fn io_step(step: &'static str) -> impl FnOnce(io::Error) -> CompactError {
    move |source| CompactError::Io { step, source }
}

/// Finishes or undoes a compaction that a crash interrupted; a no-op otherwise.
///
/// # Errors
/// An I/O error if the leftover directories cannot be moved or removed.
pub fn recover(data_dir: &Path) -> io::Result<()> {
    let (db, new, old) = (
        data_dir.join(DB_DIR),
        data_dir.join(NEW_DIR),
        data_dir.join(OLD_DIR),
    );
    if old.exists() {
        if db.exists() {
            // The new database was swapped in; only the removal of the old one was cut short.
            std::fs::remove_dir_all(&old)?;
        } else {
            // Cut short between the two renames: put the original back.
            std::fs::rename(&old, &db)?;
        }
    }
    if new.exists() {
        // An unfinished copy: the original is intact.
        std::fs::remove_dir_all(&new)?;
    }
    Ok(())
}

/// Compacts the database in `data_dir`. The node must be stopped.
///
/// # Errors
/// [`CompactError`]; on failure before the swap the original database is untouched.
pub fn compact(data_dir: &Path) -> Result<CompactReport, CompactError> {
    recover(data_dir).map_err(io_step("recovering an earlier compaction"))?;
    let (db_path, new_path) = (data_dir.join(DB_DIR), data_dir.join(NEW_DIR));
    if !db_path.join("conf").exists() {
        return Err(CompactError::Io {
            step: "finding the database",
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!("no node database in {}", db_path.display()),
            ),
        });
    }
    let bytes_before = dir_size(&db_path);
    {
        let old = sled::Config::new()
            .path(&db_path)
            .open()
            .map_err(|source| CompactError::Open {
                path: db_path.clone(),
                source,
            })?;
        let new = start_copy(&old, &new_path)?;
        finish_copy(&old, new, &new_path)?;
    }
    swap(data_dir)?;
    remove_old(data_dir)?;
    Ok(CompactReport {
        bytes_before,
        bytes_after: dir_size(&db_path),
    })
}

/// Attempts to open a database just closed: sled's file lock can outlive the last handle by
/// the time its background flusher takes to stop.
const OPEN_ATTEMPTS: u32 = 50;
const OPEN_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Opens the database at `path` with the node's cache size, waiting out the lock of a handle
/// just dropped.
///
/// # Errors
/// [`CompactError::Open`].
pub(crate) fn open_closed(path: &Path) -> Result<sled::Db, CompactError> {
    let mut attempt = 0;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(crate::raft_node::SLED_CACHE_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(_) if attempt < OPEN_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(OPEN_PAUSE);
            }
            Err(source) => {
                return Err(CompactError::Open {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Creates a fresh database at `path` (replacing a leftover one), copies `from`'s trees into
/// it, and reopens it: sled replays on open everything written since it last opened, so the
/// reopen here keeps the one after [`finish_copy`] short. `from` may change meanwhile:
/// [`finish_copy`] brings the copy up to date.
///
/// # Errors
/// [`CompactError`]; the fresh database is removed again.
pub(crate) fn start_copy(from: &sled::Db, path: &Path) -> Result<sled::Db, CompactError> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(io_step("removing an unfinished copy"))?;
    }
    let copied = sled::Config::new()
        .path(path)
        .create_new(true)
        .open()
        .map_err(CompactError::from)
        .and_then(|to| {
            copy_trees(from, &to)?;
            to.flush()?;
            drop(to);
            open_closed(path)
        });
    if copied.is_err() {
        if let Err(e) = std::fs::remove_dir_all(path) {
            tracing::warn!(error = %e, "removing an unfinished compaction copy failed");
        }
    }
    copied
}

/// Brings the copy `to` at `path` up to date with `from` (which must not change meanwhile):
/// one ordered pass over every tree writes only what differs since [`start_copy`]. Then makes
/// the copy durable and closes it.
///
/// Every tree is compared in full rather than only the keys written since the first copy:
/// sled's subscriptions (`watch_prefix`) missed writes made while the copy ran, under
/// concurrency, so they cannot be what decides which keys are copied again.
///
/// # Errors
/// [`CompactError`].
pub(crate) fn finish_copy(from: &sled::Db, to: sled::Db, path: &Path) -> Result<(), CompactError> {
    copy_trees(from, &to)?;
    to.flush()?;
    drop(to);
    // sled's flush does not reach the drive's cache (see `crate::durable`).
    std::fs::File::open(path.join("db"))
        .and_then(|file| file.sync_data())
        .map_err(io_step("syncing the copy"))
}

/// Makes every tree of `to` equal to the same tree of `from`, writing only the difference.
fn copy_trees(from: &sled::Db, to: &sled::Db) -> Result<(), CompactError> {
    for name in from.tree_names() {
        sync_tree(&from.open_tree(&name)?, &to.open_tree(&name)?)?;
    }
    Ok(())
}

/// One ordered pass over both trees: inserts what `to` lacks or holds differently, removes
/// what `from` no longer holds.
fn sync_tree(from: &sled::Tree, to: &sled::Tree) -> Result<(), sled::Error> {
    let mut batch = sled::Batch::default();
    let mut theirs = to.iter();
    let mut next = theirs.next().transpose()?;
    for item in from.iter() {
        let (key, value) = item?;
        while let Some((stale, _)) = next.as_ref().filter(|(k, _)| *k < key) {
            batch.remove(stale.clone());
            next = theirs.next().transpose()?;
        }
        match next.take() {
            Some((k, v)) if k == key => {
                if v != value {
                    batch.insert(key, value);
                }
                next = theirs.next().transpose()?;
            }
            other => {
                batch.insert(key, value);
                next = other;
            }
        }
    }
    while let Some((stale, _)) = next {
        batch.remove(stale);
        next = theirs.next().transpose()?;
    }
    to.apply_batch(batch)
}

/// Swaps the closed copy in for the closed database: two renames and a sync of the data
/// directory, so that [`recover`] can finish or undo an interrupted swap. The old database is
/// left for [`remove_old`].
///
/// # Errors
/// [`CompactError::Io`] naming the failed step.
pub(crate) fn swap(data_dir: &Path) -> Result<(), CompactError> {
    let (db_path, new_path, old_path) = (
        data_dir.join(DB_DIR),
        data_dir.join(NEW_DIR),
        data_dir.join(OLD_DIR),
    );
    std::fs::rename(&db_path, &old_path).map_err(io_step("moving the old database aside"))?;
    std::fs::rename(&new_path, &db_path).map_err(io_step("moving the new database in"))?;
    sync_dir(data_dir)
}

/// Removes the old database a [`swap`] left.
///
/// # Errors
/// [`CompactError::Io`] naming the failed step.
pub(crate) fn remove_old(data_dir: &Path) -> Result<(), CompactError> {
    std::fs::remove_dir_all(data_dir.join(OLD_DIR))
        .map_err(io_step("removing the old database"))?;
    sync_dir(data_dir)
}

/// Makes renames and removals in `dir` durable, not only the files they point at.
fn sync_dir(dir: &Path) -> Result<(), CompactError> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_step("syncing the data directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path) -> sled::Db {
        sled::Config::new().path(dir.join(DB_DIR)).open().unwrap()
    }

    #[test]
    fn compaction_keeps_live_data_and_drops_overwritten_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let secret = b"overwritten-secret-value-0123456789".to_vec();
        {
            let db = db(dir.path());
            let tree = db.open_tree("t").unwrap();
            tree.insert("k", secret.clone()).unwrap();
            db.flush().unwrap();
            tree.insert("k", b"live".to_vec()).unwrap();
            tree.insert("other", b"kept".to_vec()).unwrap();
            db.flush().unwrap();
        }
        compact(dir.path()).unwrap();
        let db = db(dir.path());
        let tree = db.open_tree("t").unwrap();
        assert_eq!(tree.get("k").unwrap().unwrap().as_ref(), b"live");
        assert_eq!(tree.get("other").unwrap().unwrap().as_ref(), b"kept");
        drop(tree);
        drop(db);
        for file in walk(&dir.path().join(DB_DIR)) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "{} still holds the overwritten value",
                file.display()
            );
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }

    #[test]
    fn a_running_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _running = db(dir.path());
        assert!(matches!(
            compact(dir.path()),
            Err(CompactError::Open { .. })
        ));
    }

    #[test]
    fn a_missing_database_is_an_error_not_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(compact(dir.path()), Err(CompactError::Io { .. })));
        assert!(!dir.path().join(DB_DIR).exists());
    }

    #[test]
    fn interrupted_swaps_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        drop(db(dir.path()));
        // Cut between the two renames: only the old copy exists.
        std::fs::rename(dir.path().join(DB_DIR), dir.path().join(OLD_DIR)).unwrap();
        std::fs::create_dir(dir.path().join(NEW_DIR)).unwrap();
        recover(dir.path()).unwrap();
        assert!(dir.path().join(DB_DIR).exists());
        assert!(!dir.path().join(OLD_DIR).exists());
        assert!(!dir.path().join(NEW_DIR).exists());
    }
}
