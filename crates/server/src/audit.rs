//! The audit trail: one hash-chained JSON record per API request, written before the response
//! is released, and the per-identity rate limits enforced at the same place.
//!
//! - [`record`]: the record schema (version 1);
//! - [`chain`]: the hash chain and its verification (`tessera audit verify`);
//! - [`sink`]: the writer thread, file rotation and retention, standard output;
//! - [`notes`]: what handlers note about a request (key, version, caller-supplied values);
//! - [`layer`]: the tower layer on the API port that ties them together.
//!
//! Caller-supplied values are recorded only as HMAC-SHA256 under the audit key
//! ([`tessera_crypto::AuditKey`], derived from the barrier), so a sealed node records them as a
//! count only. The format is documented in `docs/security.md` ("Audit trail").

pub mod chain;
pub mod layer;
pub mod notes;
pub mod record;
pub mod sink;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_state::policy::Action;
use tessera_state::NodeId;
use tokio::sync::{mpsc, oneshot};

use self::record::Record;
use self::sink::{FileSettings, FileSink, OpenError, Pending, WriteFailed, Writer};

/// Records waiting for the writer before requests wait to enqueue theirs.
const QUEUE: usize = 8192;

/// The `[audit]` section of the node configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Whether requests are audited.
    #[serde(default)]
    pub enabled: bool,
    /// The file sink's directory; default `<data_dir>/audit`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Whether records go to files in `path`.
    #[serde(default = "yes")]
    pub file: bool,
    /// A file is rotated before it would grow past this size.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Files kept (the current one included); older ones are removed.
    #[serde(default = "default_retain_files")]
    pub retain_files: usize,
    /// Whether each batch is made durable (`fdatasync`) before the responses leave.
    #[serde(default)]
    pub sync: bool,
    /// Whether records are also written to standard output.
    #[serde(default)]
    pub stdout: bool,
    /// How long a request waits for its record before it fails with `AUDIT_UNAVAILABLE`
    /// (a stuck sink, e.g. a full pipe on standard output).
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
}

fn yes() -> bool {
    true
}

fn default_max_file_bytes() -> u64 {
    64 << 20
}

fn default_retain_files() -> usize {
    16
}

fn default_write_timeout_ms() -> u64 {
    5000
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            enabled: false,
            path: None,
            file: true,
            max_file_bytes: default_max_file_bytes(),
            retain_files: default_retain_files(),
            sync: false,
            stdout: false,
            write_timeout_ms: default_write_timeout_ms(),
        }
    }
}

impl AuditSection {
    /// The file sink's directory for a node whose data directory is `data_dir`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.path.clone().unwrap_or_else(|| data_dir.join("audit"))
    }
}

/// Why a record was not written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A sink failed.
    #[error(transparent)]
    Write(#[from] WriteFailed),
    /// The writer did not answer within `write_timeout_ms`.
    #[error("the audit writer did not write the record in time")]
    Timeout,
    /// The writer has stopped.
    #[error("the audit writer has stopped")]
    Stopped,
}

/// A node's handle on its audit writer.
pub struct Auditor {
    queue: Option<mpsc::Sender<Pending>>,
    node_id: NodeId,
    region: String,
    timeout: Duration,
}

impl Auditor {
    /// Opens the sinks `section` enables and starts the writer thread (nothing when auditing
    /// is disabled).
    ///
    /// # Errors
    /// [`OpenError`] if the audit directory cannot be used.
    pub fn start(
        section: &AuditSection,
        data_dir: &Path,
        node_id: NodeId,
        region: &str,
    ) -> Result<Self, OpenError> {
        let mut auditor = Self {
            queue: None,
            node_id,
            region: region.to_owned(),
            timeout: Duration::from_millis(section.write_timeout_ms),
        };
        if !section.enabled {
            return Ok(auditor);
        }
        let (file, head) = if section.file {
            let (sink, head) = FileSink::open(FileSettings {
                dir: section.dir(data_dir),
                max_file_bytes: section.max_file_bytes,
                retain_files: section.retain_files,
                sync: section.sync,
            })?;
            (Some(sink), head)
        } else {
            (None, sink::ChainHead::default())
        };
        tracing::info!(
            seq = head.seq,
            file = section.file,
            stdout = section.stdout,
            "audit trail on"
        );
        let writer = Writer {
            file,
            stdout: section.stdout,
            head,
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| OpenError::Io {
                path: section.dir(data_dir),
                source,
            })?;
        auditor.queue = Some(tx);
        Ok(auditor)
    }

    /// Whether records are written.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// This node's id, for records.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// This node's region, for records.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Writes `record` (its `seq` assigned by the writer) and waits until it is written.
    ///
    /// # Errors
    /// [`AuditError`] if it is not written.
    pub async fn record(&self, record: Record) -> Result<(), AuditError> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let (done, written) = oneshot::channel();
        let wait = async {
            queue
                .send(Pending { record, done })
                .await
                .map_err(|_| AuditError::Stopped)?;
            written
                .await
                .map_err(|_| AuditError::Stopped)?
                .map_err(AuditError::from)
        };
        tokio::time::timeout(self.timeout, wait)
            .await
            .map_err(|_| AuditError::Timeout)?
    }
}

/// Notes the caller-supplied values an access check sees: the encryption context's keys and
/// values and, for a key being created (no id yet), its name and tags.
pub fn note_access(
    key: Option<&tessera_state::policy::KeyAttributes>,
    context: &std::collections::BTreeMap<String, String>,
) {
    if let Some(key) = key.filter(|k| k.id.is_none()) {
        if let Some(name) = &key.name {
            notes::value("key_name", name.as_str());
        }
        for (tag, value) in &key.tags {
            notes::value("tag_key", tag);
            notes::value("tag_value", value);
        }
    }
    for (name, value) in context {
        notes::value("context_key", name);
        notes::value("context_value", value);
    }
}

/// The policy action of a gRPC method path (`/tessera.v1.Crypto/Encrypt` → `kms:Encrypt`);
/// `None` for a path that is no Tessera method.
pub fn action_of(path: &str) -> Option<Action> {
    Action::of_rpc(path.strip_prefix("/tessera.v1.")?)
}

#[cfg(test)]
mod tests;
