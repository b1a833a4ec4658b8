//! The writer: one thread that appends batches of records to the file sink (rotated by size,
//! old files removed beyond a count) and to standard output, chaining each record to the one
//! before, and tells every waiting request whether its record was written.
//!
//! Files are `audit-<20-digit number>.jsonl` in the audit directory, numbered upwards, so
//! name order is chain order. On start the chain continues from the newest file's last record;
//! a torn last line (a crash in the middle of a write) is cut off first. Before each batch the
//! writer checks that the open file is still the one at its path: a deleted or replaced file or
//! directory is reopened by path, and if that fails the batch fails, so records are never
//! written into a file nobody can read.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use super::chain::{self, GENESIS};
use super::record::Record;

/// Most records written in one batch.
const MAX_BATCH: usize = 512;

/// Why a batch was not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteFailed {
    /// The file sink failed.
    #[error("cannot write audit file {}: {kind}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        kind: io::ErrorKind,
    },
    /// Standard output failed.
    #[error("cannot write audit records to standard output: {0}")]
    Stdout(io::ErrorKind),
    /// A record could not be encoded.
    #[error("cannot encode an audit record")]
    Encode,
}

/// A record waiting to be written, and who waits for it.
pub struct Pending {
    /// The record (`seq` is assigned by the writer).
    pub record: Record,
    /// Told the outcome.
    pub done: oneshot::Sender<Result<(), WriteFailed>>,
}

/// The position of the chain: the last record's `seq` and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// `seq` of the last record (0 before the first).
    pub seq: u64,
    /// Its hash ([`GENESIS`] before the first).
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// Failure to open the audit directory at start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory or a file cannot be created or read.
    #[error("audit directory {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The newest file's last record is damaged, so the chain cannot continue from it.
    #[error("the last audit record in {} is damaged ({reason}); verify the files with `tessera audit verify` and move the damaged one away", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: chain::LineError,
    },
}

/// Name of audit file `number`.
pub fn file_name(number: u64) -> String {
    format!("audit-{number:020}.jsonl")
}

fn file_number(name: &str) -> Option<u64> {
    name.strip_prefix("audit-")?
        .strip_suffix(".jsonl")
        .filter(|digits| digits.len() == 20)?
        .parse()
        .ok()
}

/// The audit files in `dir`, oldest first.
///
/// # Errors
/// If the directory cannot be read.
pub fn list_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let number = file_number(entry.file_name().to_str()?)?;
            Some((number, entry.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The size and rotation of the file sink.
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// The directory.
    pub dir: PathBuf,
    /// A file is rotated before a batch would take it past this size.
    pub max_file_bytes: u64,
    /// Files kept, the current one included.
    pub retain_files: usize,
    /// `fdatasync` after every batch.
    pub sync: bool,
}

/// The file sink.
pub struct FileSink {
    settings: FileSettings,
    number: u64,
    file: Option<File>,
    size: u64,
}

impl FileSink {
    /// Opens the audit directory (created with mode 0700 if missing) and recovers the chain
    /// head from its newest file.
    ///
    /// # Errors
    /// [`OpenError`].
    pub fn open(settings: FileSettings) -> Result<(Self, ChainHead), OpenError> {
        let dir = settings.dir.clone();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| OpenError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(&dir))?;
        }
        let files = list_files(&dir).map_err(io(&dir))?;
        let number = files.last().map_or(1, |(n, _)| *n);
        if let Some((_, newest)) = files.last() {
            cut_torn_line(newest).map_err(io(newest))?;
        }
        let mut head = ChainHead::default();
        for (_, path) in files.iter().rev() {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            if let Some(line) = text.lines().last() {
                let link = chain::parse_line(line).map_err(|reason| OpenError::Damaged {
                    path: path.clone(),
                    reason,
                })?;
                head = ChainHead {
                    seq: link.seq,
                    hash: link.hash,
                };
                break;
            }
        }
        Ok((
            Self {
                settings,
                number,
                file: None,
                size: 0,
            },
            head,
        ))
    }

    fn path(&self) -> PathBuf {
        self.settings.dir.join(file_name(self.number))
    }

    /// Appends `bytes` (whole lines), rotating first if they would overflow the file.
    /// On failure the file is cut back to its previous length, so no partial line stays.
    fn append(&mut self, bytes: &[u8]) -> Result<(), WriteFailed> {
        let fail = |path: PathBuf| {
            move |e: io::Error| WriteFailed::File {
                path,
                kind: e.kind(),
            }
        };
        self.check_open_file();
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if self.file.is_none() {
            self.open_current()?;
        }
        if self.size > 0 && self.size.saturating_add(len) > self.settings.max_file_bytes {
            self.number += 1;
            self.open_current()?;
            self.apply_retention();
        }
        let path = self.path();
        let Some(file) = self.file.as_mut() else {
            return Err(WriteFailed::File {
                path,
                kind: io::ErrorKind::NotFound,
            });
        };
        let written = file.write_all(bytes).and_then(|()| {
            if self.settings.sync {
                file.sync_data()
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                self.size = self.size.saturating_add(len);
                Ok(())
            }
            Err(e) => {
                // Best effort: a record that is not acknowledged must not stay half-written.
                let _ = file.set_len(self.size);
                self.file = None;
                Err(fail(path)(e))
            }
        }
    }

    /// Opens (creating) the current file for appending.
    fn open_current(&mut self) -> Result<(), WriteFailed> {
        self.file = None;
        let path = self.path();
        let fail = |e: io::Error| WriteFailed::File {
            path: path.clone(),
            kind: e.kind(),
        };
        let file = open_append(&path).map_err(fail)?;
        self.size = file.metadata().map_err(fail)?.len();
        self.file = Some(file);
        Ok(())
    }

    /// Drops the open file if the path no longer leads to it (deleted, replaced, directory
    /// removed), so the next write reopens by path or fails.
    fn check_open_file(&mut self) {
        let Some(file) = &self.file else { return };
        let same = match (file.metadata(), std::fs::metadata(self.path())) {
            #[cfg(unix)]
            (Ok(open), Ok(at_path)) => {
                use std::os::unix::fs::MetadataExt;
                open.ino() == at_path.ino() && open.dev() == at_path.dev()
            }
            #[cfg(not(unix))]
            (Ok(_), Ok(_)) => true,
            _ => false,
        };
        if !same {
            self.file = None;
        }
    }

    /// Removes the oldest files beyond `retain_files`.
    fn apply_retention(&self) {
        let Ok(files) = list_files(&self.settings.dir) else {
            return;
        };
        let excess = files
            .len()
            .saturating_sub(self.settings.retain_files.max(1));
        for (_, path) in files.iter().take(excess) {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove an old audit file");
            }
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Cuts a trailing line without newline (a torn write) off `path`.
fn cut_torn_line(path: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    if text.last().is_none_or(|b| *b == b'\n') {
        return Ok(());
    }
    let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    tracing::warn!(file = %path.display(), bytes = text.len() - keep, "cutting off a torn audit record");
    file.set_len(u64::try_from(keep).unwrap_or(0))?;
    file.seek(SeekFrom::End(0))?;
    file.sync_data()
}

/// The writer's sinks and chain position.
pub struct Writer {
    /// The file sink, if enabled.
    pub file: Option<FileSink>,
    /// Whether records also go to standard output.
    pub stdout: bool,
    /// The chain head.
    pub head: ChainHead,
}

impl Writer {
    /// Writes batches from `rx` until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            let result = self.write_batch(&mut batch);
            for pending in batch {
                // A request that gave up waiting is gone; nothing to tell.
                let _ = pending.done.send(result.clone());
            }
        }
    }

    /// [`Writer::write_batch`] for tests, which drive the writer without its thread.
    #[cfg(test)]
    pub fn write_batch_for_test(&mut self, batch: &mut [Pending]) -> Result<(), WriteFailed> {
        self.write_batch(batch)
    }

    /// Chains and writes one batch; the head advances once the file (or, without one,
    /// standard output) took it.
    fn write_batch(&mut self, batch: &mut [Pending]) -> Result<(), WriteFailed> {
        let mut head = self.head.clone();
        let mut text = String::new();
        for pending in batch.iter_mut() {
            pending.record.seq = head.seq + 1;
            let body = pending
                .record
                .body(&head.hash)
                .map_err(|_| WriteFailed::Encode)?;
            let (line, hash) = chain::seal(&body);
            text.push_str(&line);
            text.push('\n');
            head = ChainHead {
                seq: pending.record.seq,
                hash,
            };
        }
        if let Some(file) = self.file.as_mut() {
            file.append(text.as_bytes())?;
            // The file holds the batch now: the chain continues after it even if standard
            // output fails below (the requests still fail, recorded).
            self.head = head.clone();
        }
        if self.stdout {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| WriteFailed::Stdout(e.kind()))?;
        }
        self.head = head;
        Ok(())
    }
}
