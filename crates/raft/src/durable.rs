//! sled, made durable for real.
//!
//! sled 0.34 on Linux makes a flush "stable" with `sync_file_range(WAIT_BEFORE | WRITE |
//! WAIT_AFTER)`: the pages reach the device, but neither the drive's volatile write cache nor
//! the file's metadata is flushed, so an append Tessera acknowledged could be lost in a power
//! failure. Every flush that Tessera reports as durable goes through [`DurableDb::flush`],
//! which after sled's flush calls `fdatasync` on sled's data file (a sync through any
//! descriptor of a file covers all of its written pages).

use std::io;
use std::path::Path;
use std::sync::Arc;

/// The name of sled 0.34's data file inside its directory.
const SLED_DATA_FILE: &str = "db";

/// A sled database whose flushes end with an `fdatasync` of its data file.
#[derive(Clone, Debug)]
pub struct DurableDb {
    db: sled::Db,
    /// `None` for a temporary database, whose contents do not outlive the process anyway.
    file: Option<Arc<std::fs::File>>,
}

impl DurableDb {
    /// `db`, opened at `path`.
    ///
    /// # Errors
    /// If sled's data file in `path` cannot be opened.
    pub fn open(db: sled::Db, path: &Path) -> io::Result<Self> {
        let file = std::fs::File::open(path.join(SLED_DATA_FILE))?;
        Ok(Self {
            db,
            file: Some(Arc::new(file)),
        })
    }

    /// A temporary database (tests): flushed by sled alone.
    pub fn temporary(db: sled::Db) -> Self {
        Self { db, file: None }
    }

    /// The database.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flushes sled's buffers, then the data file to stable storage.
    ///
    /// # Errors
    /// sled's flush error, or the `fdatasync` error as [`sled::Error::Io`].
    pub async fn flush(&self) -> Result<(), sled::Error> {
        self.db.flush_async().await?;
        let Some(file) = &self.file else {
            return Ok(());
        };
        let file = Arc::clone(file);
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| sled::Error::Io(io::Error::other(e)))?
            .map_err(sled::Error::Io)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_flushed_write_is_in_the_data_file_it_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db-dir");
        let db = sled::Config::new().path(&path).open().unwrap();
        let durable = DurableDb::open(db.clone(), &path).unwrap();
        db.insert(b"k", b"a value only this write holds".to_vec())
            .unwrap();
        durable.flush().await.unwrap();
        let bytes = std::fs::read(path.join(SLED_DATA_FILE)).unwrap();
        assert!(bytes
            .windows(29)
            .any(|w| w == b"a value only this write holds"));
    }

    #[test]
    fn a_directory_without_sled_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        assert!(DurableDb::open(db, dir.path()).is_err());
    }
}
