//! `tessera operator snapshot save|restore`: backups of the whole state.
//!
//! Both commands check the file here as well as on the server: a save is verified before it
//! is written (atomically: a temporary file in the same directory, fsync, rename, fsync of
//! the directory), and a restore refuses a damaged, truncated or newer-format file before
//! sending it, with the status and code the server would answer.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde_json::json;
use sha2::{Digest, Sha256};
use tessera_server::error::ApiError;
use tessera_state::backup::{Backup, BackupError, BACKUP_FORMAT_V1, MAX_BACKUP_FILE_BYTES};

use crate::args::{OutputFormat, SnapshotCommand};
use crate::commands::client;
use crate::output::{print_json, Failure};

/// Runs a snapshot command.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn run(command: SnapshotCommand) -> Result<(), Failure> {
    match command {
        SnapshotCommand::Save { file, connect } => {
            let bytes = client(&connect)?.snapshot_save().await?;
            let backup = verify(&bytes)?;
            write_atomically(&file, &bytes)
                .map_err(|e| Failure::Local(anyhow!("cannot write {}: {e}", file.display())))?;
            let sha256 = hex::encode(Sha256::digest(&bytes));
            match connect.output.format {
                OutputFormat::Json => print_json(&json!({
                    "path": file,
                    "bytes": bytes.len(),
                    "sha256": sha256,
                    "format_version": BACKUP_FORMAT_V1,
                    "cluster_id": hex::encode(backup.cluster_id),
                    "terms": backup.terms,
                    "applied_index": backup.applied_index,
                })),
                OutputFormat::Text => println!(
                    "Saved {} ({} bytes, sha256 {sha256}): cluster {}, applied index {}, barrier terms {:?}",
                    file.display(),
                    bytes.len(),
                    hex::encode(backup.cluster_id),
                    backup.applied_index,
                    backup.terms
                ),
            }
        }
        SnapshotCommand::Restore {
            file,
            force,
            connect,
        } => {
            let bytes = read(&file)?;
            verify(&bytes)?;
            let reply = client(&connect)?.snapshot_restore(&bytes, force).await?;
            match connect.output.format {
                OutputFormat::Json => print_json(&json!({
                    "cluster_id": reply.cluster_id,
                    "keys": reply.keys,
                    "source_applied_index": reply.source_applied_index,
                    "terms": reply.terms,
                    "sealed": true,
                })),
                OutputFormat::Text => println!(
                    "Restored cluster {} ({} keys, saved at applied index {}).\n\
                     Every node is sealed now: unseal each with the shares of the cluster the backup came from.",
                    reply.cluster_id, reply.keys, reply.source_applied_index
                ),
            }
        }
    }
    Ok(())
}

/// Reads a backup file, refusing one larger than any backup can be before reading it.
fn read(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| Failure::Usage(anyhow!("cannot read {}: {e}", path.display()));
    let len = fs::metadata(path).map_err(cannot)?.len();
    if len > MAX_BACKUP_FILE_BYTES as u64 {
        return Err(refusal(BackupError::TooLarge {
            len,
            max: tessera_state::backup::MAX_BACKUP_BODY_BYTES,
        }));
    }
    fs::read(path).map_err(cannot)
}

/// Decodes and checks a backup (header, checksum, body), as the server does.
fn verify(bytes: &[u8]) -> Result<Backup, Failure> {
    let backup = Backup::decode(bytes).map_err(refusal)?;
    backup.state().map_err(refusal)?;
    Ok(backup)
}

/// A local refusal with the status and code the server answers for the same file.
fn refusal(error: BackupError) -> Failure {
    let message = error.to_string();
    let (code, tessera_code) = ApiError::Backup(error).codes();
    Failure::Refusal {
        code: tessera_client::code_name(code),
        tessera_code,
        message,
    }
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of `bytes`:
/// a new temporary file beside it (mode 0600), fsync, rename over `path`, fsync of the
/// directory. The temporary file is removed on failure.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let temporary = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}
