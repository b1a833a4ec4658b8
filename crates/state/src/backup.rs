//! The backup file that `tessera operator snapshot save` writes and `restore` reads.
//!
//! A backup wraps one state snapshot (the unchanged [`State::encode_snapshot`] encoding, whose
//! secrets are barrier-sealed blobs) in a header that names the cluster it came from and is
//! closed by a SHA-256 over every byte before it. All integers are big-endian:
//!
//! ```text
//! offset      size  field
//! 0           4     magic "TBAK"
//! 4           1     format version 0x01 (BACKUP_FORMAT_V1)
//! 5           32    cluster id (tessera_crypto::cluster_id)
//! 37          4     n: number of barrier terms (1..=MAX_BARRIER_TERMS)
//! 41          4·n   the keyring's terms, ascending
//! 41+4n       8     applied index of the state
//! 49+4n       8     L: body length (at most MAX_BACKUP_BODY_BYTES)
//! 57+4n       L     body: the state snapshot ("TSNP" …)
//! 57+4n+L     32    SHA-256 of bytes 0 .. 57+4n+L
//! ```
//!
//! Decoding checks, in this order, so each damage gets its own error: length of the fixed
//! part, magic, format version (a newer format may lay out the rest differently), header
//! fields, the exact total length (truncated or trailing bytes), the checksum, and finally
//! (in [`Backup::state`]) that the body decodes to an initialised state.

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::machine::State;

/// Magic bytes that open a backup file.
pub const BACKUP_MAGIC: &[u8; 4] = b"TBAK";
/// The backup format this build writes and reads.
pub const BACKUP_FORMAT_V1: u8 = 1;
/// Length of the cluster id field.
pub const CLUSTER_ID_LEN: usize = 32;
/// Most barrier terms a header may list (a bound for the decoder, far above any keyring).
pub const MAX_BARRIER_TERMS: u32 = 4096;
/// Largest body a backup may carry: the restore is replicated as one Raft log entry, and the
/// cluster port's message cap must hold an `AppendEntries` batch of ordinary entries plus two
/// such entries (see `tessera_raft::limits`).
pub const MAX_BACKUP_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Length of the trailing checksum.
const CHECKSUM_LEN: usize = 32;
/// Bytes before the term list: magic, version, cluster id, term count.
const FIXED_HEAD: usize = 4 + 1 + CLUSTER_ID_LEN + 4;
/// Largest file a backup of this format can be.
pub const MAX_BACKUP_FILE_BYTES: usize =
    FIXED_HEAD + 4 * MAX_BARRIER_TERMS as usize + 16 + MAX_BACKUP_BODY_BYTES + CHECKSUM_LEN;

/// Why a backup was refused. Each message starts with the stable code of [`BackupError::code`],
/// so scripts can match it in the CLI's output as in the API's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupError {
    /// The file ends before its declared end.
    #[error("SNAPSHOT_TRUNCATED: the snapshot file is truncated: {len} bytes, at least {needed} expected")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header (or the fixed part) requires.
        needed: usize,
    },
    /// The file does not start with the backup magic.
    #[error("SNAPSHOT_NOT_A_SNAPSHOT: this is not a Tessera snapshot file (no \"TBAK\" magic)")]
    NotABackup,
    /// A format version this build does not know (typically written by a newer Tessera).
    #[error("SNAPSHOT_FORMAT_UNSUPPORTED: snapshot format version {version} is not supported (this build reads version {BACKUP_FORMAT_V1}); restore it with the Tessera release that wrote it or a newer one")]
    UnsupportedFormat {
        /// The version found.
        version: u8,
    },
    /// Bytes after the checksum.
    #[error("SNAPSHOT_TRAILING_BYTES: the snapshot file has {extra} bytes after its checksum")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The checksum does not match the content: a byte changed.
    #[error("SNAPSHOT_CHECKSUM_MISMATCH: the snapshot file's SHA-256 does not match its content; the file is corrupt")]
    ChecksumMismatch,
    /// The body is larger than a restore can replicate.
    #[error("SNAPSHOT_TOO_LARGE: the state snapshot is {len} bytes, more than the {max} bytes a restore can replicate")]
    TooLarge {
        /// Body length (declared or actual).
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A header field is impossible (no terms, too many, or not ascending).
    #[error("SNAPSHOT_CORRUPT: the snapshot header lists an invalid set of {count} barrier terms")]
    BadTerms {
        /// The declared count.
        count: u32,
    },
    /// The checksum matched but the body is not a state snapshot this build decodes.
    #[error("SNAPSHOT_CORRUPT: the state inside the snapshot does not decode: {0}")]
    Body(#[source] Error),
    /// The body is the state of a cluster that was never initialised: nothing to restore.
    #[error("SNAPSHOT_UNINITIALIZED: the snapshot holds an uninitialized cluster; there is nothing to restore")]
    Uninitialized,
    /// The target cluster is initialised with another cluster id.
    #[error("SNAPSHOT_FOREIGN_CLUSTER: the snapshot is of cluster {file}, but this cluster is {target}; restore it into a fresh (uninitialized) cluster")]
    ForeignCluster {
        /// The file's cluster id, hex.
        file: String,
        /// The target's cluster id, hex.
        target: String,
    },
    /// The target is this very cluster and the caller did not ask to overwrite it.
    #[error("SNAPSHOT_TARGET_INITIALIZED: this cluster ({target}) is initialized and holds data; pass --force to replace its whole state with the snapshot")]
    TargetInitialized {
        /// The target's cluster id, hex.
        target: String,
    },
}

impl BackupError {
    /// The stable machine code (also the first word of the message).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "SNAPSHOT_TRUNCATED",
            Self::NotABackup => "SNAPSHOT_NOT_A_SNAPSHOT",
            Self::UnsupportedFormat { .. } => "SNAPSHOT_FORMAT_UNSUPPORTED",
            Self::TrailingBytes { .. } => "SNAPSHOT_TRAILING_BYTES",
            Self::ChecksumMismatch => "SNAPSHOT_CHECKSUM_MISMATCH",
            Self::TooLarge { .. } => "SNAPSHOT_TOO_LARGE",
            Self::BadTerms { .. } | Self::Body(_) => "SNAPSHOT_CORRUPT",
            Self::Uninitialized => "SNAPSHOT_UNINITIALIZED",
            Self::ForeignCluster { .. } => "SNAPSHOT_FOREIGN_CLUSTER",
            Self::TargetInitialized { .. } => "SNAPSHOT_TARGET_INITIALIZED",
        }
    }
}

/// A decoded (or to-be-encoded) backup.
#[derive(Clone, PartialEq, Eq)]
pub struct Backup {
    /// The cluster the state belongs to.
    pub cluster_id: [u8; CLUSTER_ID_LEN],
    /// The barrier terms of its keyring, ascending (the blobs inside are sealed under these).
    pub terms: Vec<u32>,
    /// The log index the state was applied up to when it was taken.
    pub applied_index: u64,
    /// The state snapshot encoding.
    pub body: Vec<u8>,
}

/// Names the backup by its header; the body is sealed blobs, but long.
impl std::fmt::Debug for Backup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backup")
            .field("cluster_id", &hex::encode(self.cluster_id))
            .field("terms", &self.terms)
            .field("applied_index", &self.applied_index)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Reads the header fields in order, failing with `Truncated` past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BackupError> {
        let end = self.at.saturating_add(n);
        let taken = self.bytes.get(self.at..end).ok_or(BackupError::Truncated {
            len: self.bytes.len(),
            needed: end,
        })?;
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BackupError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

impl Backup {
    /// Encodes the file: header, body, checksum.
    ///
    /// # Errors
    /// [`BackupError::TooLarge`] for a body beyond [`MAX_BACKUP_BODY_BYTES`];
    /// [`BackupError::BadTerms`] for an empty, oversized or unordered term list.
    pub fn encode(&self) -> Result<Vec<u8>, BackupError> {
        if self.body.len() > MAX_BACKUP_BODY_BYTES {
            return Err(BackupError::TooLarge {
                len: self.body.len() as u64,
                max: MAX_BACKUP_BODY_BYTES,
            });
        }
        let count = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        check_terms(count, &self.terms)?;
        let mut out = Vec::with_capacity(FIXED_HEAD + 4 * self.terms.len() + 16 + self.body.len());
        out.extend_from_slice(BACKUP_MAGIC);
        out.push(BACKUP_FORMAT_V1);
        out.extend_from_slice(&self.cluster_id);
        out.extend_from_slice(&count.to_be_bytes());
        for term in &self.terms {
            out.extend_from_slice(&term.to_be_bytes());
        }
        out.extend_from_slice(&self.applied_index.to_be_bytes());
        out.extend_from_slice(&(self.body.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.body);
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        Ok(out)
    }

    /// Decodes and verifies a file (everything but the body's content; see
    /// [`Backup::state`]).
    ///
    /// # Errors
    /// The [`BackupError`] of the first check that fails, in the order of the module docs.
    pub fn decode(bytes: &[u8]) -> Result<Self, BackupError> {
        let magic_len = BACKUP_MAGIC.len().min(bytes.len());
        if bytes.get(..magic_len) != BACKUP_MAGIC.get(..magic_len) {
            return Err(BackupError::NotABackup);
        }
        let mut reader = Reader { bytes, at: 0 };
        reader.take(BACKUP_MAGIC.len())?;
        let [version] = reader.array::<1>()?;
        if version != BACKUP_FORMAT_V1 {
            return Err(BackupError::UnsupportedFormat { version });
        }
        let cluster_id = reader.array::<CLUSTER_ID_LEN>()?;
        let count = u32::from_be_bytes(reader.array()?);
        if count == 0 || count > MAX_BARRIER_TERMS {
            return Err(BackupError::BadTerms { count });
        }
        let mut terms = Vec::new();
        for _ in 0..count {
            terms.push(u32::from_be_bytes(reader.array()?));
        }
        check_terms(count, &terms)?;
        let applied_index = u64::from_be_bytes(reader.array()?);
        let declared = u64::from_be_bytes(reader.array()?);
        let body_len = usize::try_from(declared)
            .ok()
            .filter(|len| *len <= MAX_BACKUP_BODY_BYTES)
            .ok_or(BackupError::TooLarge {
                len: declared,
                max: MAX_BACKUP_BODY_BYTES,
            })?;
        let content_len = reader.at + body_len;
        let total = content_len + CHECKSUM_LEN;
        if bytes.len() < total {
            return Err(BackupError::Truncated {
                len: bytes.len(),
                needed: total,
            });
        }
        if bytes.len() > total {
            return Err(BackupError::TrailingBytes {
                extra: bytes.len() - total,
            });
        }
        let body = reader.take(body_len)?.to_vec();
        let checksum = reader.take(CHECKSUM_LEN)?;
        let content = bytes.get(..content_len).ok_or(BackupError::Truncated {
            len: bytes.len(),
            needed: content_len,
        })?;
        if Sha256::digest(content).as_slice() != checksum {
            return Err(BackupError::ChecksumMismatch);
        }
        Ok(Self {
            cluster_id,
            terms,
            applied_index,
            body,
        })
    }

    /// Decodes the body to the state it holds, which must be initialised.
    ///
    /// # Errors
    /// [`BackupError::Body`] or [`BackupError::Uninitialized`].
    pub fn state(&self) -> Result<State, BackupError> {
        let state = State::decode_snapshot(&self.body).map_err(BackupError::Body)?;
        if state.is_initialized() {
            Ok(state)
        } else {
            Err(BackupError::Uninitialized)
        }
    }
}

/// Terms are at least one, at most [`MAX_BARRIER_TERMS`], and strictly ascending.
fn check_terms(count: u32, terms: &[u32]) -> Result<(), BackupError> {
    let ascending = terms.windows(2).all(|w| matches!(w, [a, b] if a < b));
    if count == 0 || count > MAX_BARRIER_TERMS || !ascending {
        return Err(BackupError::BadTerms { count });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
