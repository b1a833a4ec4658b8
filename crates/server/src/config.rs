//! The node's TOML configuration file.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default). Relative paths
//! are resolved against the directory of the configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_raft::{NodeId, RaftSettings};

/// Failure to load a configuration file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error (names the line and key).
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid config {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A CA bundle (`tls.node_ca` or `tls.client_ca`) cannot be read as certificates.
    #[error("CA bundle {path}: {problem}")]
    CaBundle {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        problem: CaBundleError,
    },
    /// The node CA and client CA bundles have a certificate or a public key in common, so one
    /// CA would be trusted on both ports.
    #[error(
        "tls.node_ca {node_ca} and tls.client_ca {client_ca} share a {shared} (node CA \"{node_subject}\", client CA \"{client_subject}\"): the two ports must trust different CAs, or a client certificate could act as a node on the cluster port and a node certificate as a client on the API port; create a separate client CA (`tessera pki init` makes one)"
    )]
    SharedCa {
        /// The node CA bundle.
        node_ca: PathBuf,
        /// The client CA bundle.
        client_ca: PathBuf,
        /// What they share.
        shared: SharedCaMaterial,
        /// Subject of the shared certificate, or of the node CA certificate holding the key.
        node_subject: String,
        /// Subject of the client CA certificate holding the same certificate or key.
        client_subject: String,
    },
}

/// Why a CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaBundleError {
    /// The file cannot be read.
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// A PEM block is malformed.
    #[error("invalid PEM: {0}")]
    Pem(#[source] x509_parser::error::PEMError),
    /// A `CERTIFICATE` block does not hold an X.509 certificate.
    #[error("certificate {index} (counting from 1) is not valid X.509: {source}")]
    Certificate {
        /// Position of the certificate in the bundle.
        index: usize,
        /// The parser's error.
        #[source]
        source: x509_parser::nom::Err<x509_parser::error::X509Error>,
    },
    /// The file holds no `CERTIFICATE` block.
    #[error("no certificate found")]
    Empty,
}

/// What a node CA bundle and a client CA bundle were found to share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedCaMaterial {
    /// The same certificate (byte for byte).
    Certificate,
    /// Different certificates for the same key pair (for example a re-issued or renamed CA).
    PublicKey,
}

impl std::fmt::Display for SharedCaMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Certificate => "certificate",
            Self::PublicKey => "public key",
        })
    }
}

/// A node's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Unique, non-zero node id (an integer in the file).
    pub node_id: NodeId,
    /// Directory for the node's database and runtime files.
    pub data_dir: PathBuf,
    /// Region label.
    #[serde(default = "default_region")]
    pub region: String,
    /// Zone label.
    #[serde(default)]
    pub zone: String,
    /// The client-facing API port.
    pub api: Listener,
    /// The ops port (`[ops]`: `/metrics`, `/health`, `/ready` over plain HTTP); absent: none.
    #[serde(default)]
    pub ops: Option<crate::ops::OpsSection>,
    /// How the node writes its log lines: `text` (default) or `json` (one object per line).
    /// `tessera server --log-format` overrides it.
    #[serde(default)]
    pub log_format: LogFormat,
    /// The node-to-node port.
    pub cluster: ClusterSection,
    /// Certificates and keys.
    pub tls: TlsSection,
    /// Raft timing.
    #[serde(default)]
    pub raft: RaftSection,
    /// Key lifecycle limits and background jobs.
    #[serde(default)]
    pub lifecycle: LifecycleSection,
    /// Connection and request limits of both ports.
    #[serde(default)]
    pub limits: crate::limits::LimitsSection,
    /// Client identities allowed to run `operator init` on an uninitialised cluster; empty
    /// (the default) allows any holder of a client certificate, with a warning at startup.
    /// The initialiser becomes the cluster's first administrator.
    #[serde(default)]
    pub init_identities: Vec<String>,
    /// Deliberate bugs for the chaos harness (only in builds with the `fault-injection`
    /// feature; the section is rejected as unknown otherwise).
    #[cfg(feature = "fault-injection")]
    #[serde(default)]
    pub faults: FaultSection,
    /// The audit trail (`[audit]`), off unless enabled.
    #[serde(default)]
    pub audit: crate::audit::AuditSection,
    /// Per-identity rate limits (`[rate_limits]`), on with generous defaults.
    #[serde(default)]
    pub rate_limits: crate::ratelimit::RateLimitSection,
}

/// Deliberate bugs, to prove the chaos harness's checkers catch them. The type exists in
/// every build so launchers can write the section; only a `fault-injection` build reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSection {
    /// Serve crypto from local state without holding the leader lease: a partitioned node
    /// keeps using keys that were disabled elsewhere.
    pub serve_without_lease: bool,
    /// Run this node's lease clock at a tenth of real time: it holds leases ten times too
    /// long, as a node whose clock runs slow would (a clock fault).
    pub slow_lease_clock: bool,
    /// Remember every allowed (identity, action, key) and keep allowing it: authorization
    /// that ignores a later deny or a removed allow, as a never-invalidated cache would.
    pub sticky_access_decisions: bool,
    /// Offset this node's wall clock by this many milliseconds (negative: behind), as a bad
    /// NTP source or a VM restored from an old image would.
    pub clock_skew_ms: i64,
}

/// Key lifecycle limits and the leader's background jobs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSection {
    /// Shortest deletion waiting window accepted (default 7 days).
    pub min_deletion_window_seconds: u64,
    /// Window used when a request gives none (default 30 days).
    pub default_deletion_window_seconds: u64,
    /// Longest deletion waiting window accepted (default 30 days).
    pub max_deletion_window_seconds: u64,
    /// Shortest automatic rotation period accepted (default 1 day).
    pub min_rotation_period_seconds: u64,
    /// How long an import token stays valid (default 24 hours).
    pub import_token_ttl_seconds: u64,
    /// How often the leader looks for due rotations and deletions, and every node reports its
    /// wall clock to cluster time (default 10 s).
    pub job_interval_ms: u64,
}

impl Default for LifecycleSection {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            min_deletion_window_seconds: 7 * DAY,
            default_deletion_window_seconds: 30 * DAY,
            max_deletion_window_seconds: 30 * DAY,
            min_rotation_period_seconds: DAY,
            import_token_ttl_seconds: DAY,
            job_interval_ms: 10_000,
        }
    }
}

/// A listening socket and the address others should use to reach it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Address to bind, e.g. `127.0.0.1:7401` (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Address to advertise; defaults to the bound address (required when binding a
    /// wildcard address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
}

/// The cluster port and how this node enters the cluster.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Address to advertise to peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// Start a new one-node cluster if this node has no Raft state yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bootstrap: bool,
    /// Cluster addresses of existing members to ask for admission if this node has no Raft
    /// state yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join: Vec<String>,
    /// Address translation: a peer's advertised cluster address → the address to dial, for a
    /// proxy or NAT between nodes. Peers not listed are dialled as advertised.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dial: std::collections::BTreeMap<String, String>,
}

/// The format of the node's log lines.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields), for log pipelines.
    Json,
}

/// A log format name other than `text` or `json`.
#[derive(Debug, thiserror::Error)]
#[error("unknown log format {0:?} (expected \"text\" or \"json\")")]
pub struct UnknownLogFormat(String);

impl std::str::FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// TLS files. The node certificate serves both ports and authenticates this node to peers.
///
/// The files are read again on SIGHUP and whenever their contents change (checked every
/// `reload_poll_ms`); see [`crate::tls_reload`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// CA of node certificates: the only CA the cluster port trusts.
    pub node_ca: PathBuf,
    /// This node's certificate.
    pub node_cert: PathBuf,
    /// This node's private key.
    pub node_key: PathBuf,
    /// CA of client certificates: the only CA the API port trusts.
    pub client_ca: PathBuf,
    /// How often the files are checked for changes, in milliseconds (default 5 s).
    #[serde(default = "default_reload_poll_ms")]
    pub reload_poll_ms: u64,
}

/// Default of `tls.reload_poll_ms`: how often the TLS files are checked for changes.
pub const DEFAULT_RELOAD_POLL_MS: u64 = 5_000;

fn default_reload_poll_ms() -> u64 {
    DEFAULT_RELOAD_POLL_MS
}

/// One certificate of a CA bundle: its DER bytes, public key (SubjectPublicKeyInfo DER) and
/// subject.
struct CaCertificate {
    der: Vec<u8>,
    public_key: Vec<u8>,
    subject: String,
}

impl TlsSection {
    /// Checks that the node CA and client CA bundles have no certificate and no public key in
    /// common.
    ///
    /// The two ports are kept apart only by trusting different CAs: the cluster port accepts
    /// node certificates (which carry the client-auth usage, because nodes present them when
    /// they dial each other), the API port client certificates. A CA in both bundles, or one
    /// key under two certificates, would let a client certificate act as a node and a node
    /// certificate call the API.
    ///
    /// # Errors
    /// [`ConfigError::CaBundle`] if a bundle cannot be read, [`ConfigError::SharedCa`] naming
    /// both files and what they share.
    pub fn check_ca_separation(&self) -> Result<(), ConfigError> {
        let node = ca_bundle(&self.node_ca)?;
        let client = ca_bundle(&self.client_ca)?;
        for shared in [SharedCaMaterial::Certificate, SharedCaMaterial::PublicKey] {
            let same = |n: &CaCertificate, c: &CaCertificate| match shared {
                SharedCaMaterial::Certificate => n.der == c.der,
                SharedCaMaterial::PublicKey => n.public_key == c.public_key,
            };
            for n in &node {
                if let Some(c) = client.iter().find(|c| same(n, c)) {
                    return Err(ConfigError::SharedCa {
                        node_ca: self.node_ca.clone(),
                        client_ca: self.client_ca.clone(),
                        shared,
                        node_subject: n.subject.clone(),
                        client_subject: c.subject.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Every certificate in the PEM bundle at `path` (blocks other than `CERTIFICATE` are
/// skipped).
fn ca_bundle(path: &Path) -> Result<Vec<CaCertificate>, ConfigError> {
    let error = |problem| ConfigError::CaBundle {
        path: path.to_owned(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| error(CaBundleError::Read(e)))?;
    let mut certificates = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(&pem) {
        let block = block.map_err(|e| error(CaBundleError::Pem(e)))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let index = certificates.len() + 1;
        let parsed = block
            .parse_x509()
            .map_err(|source| error(CaBundleError::Certificate { index, source }))?;
        let certificate = CaCertificate {
            public_key: parsed.public_key().raw.to_vec(),
            subject: parsed.subject().to_string(),
            der: block.contents.clone(),
        };
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(error(CaBundleError::Empty));
    }
    Ok(certificates)
}

/// Raft timing, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSection {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Lower bound of the election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the election timeout.
    pub election_timeout_max_ms: u64,
    /// Follower lease window (shorter than the minimum election timeout).
    pub lease_ms: u64,
    /// Writes between snapshots (a group-commit entry counts each of its writes).
    pub snapshot_after_logs: u64,
    /// Entries kept behind a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// How long a write may wait for commit.
    pub write_timeout_ms: u64,
    /// Interval of the online compaction pass (snapshot, purge, compact the database):
    /// destroyed key material leaves every file within this plus one pass.
    pub compact_interval_ms: u64,
    /// Most concurrent writes the leader commits as one log entry (group commit); 1 never
    /// batches, for a rolling upgrade from a build that cannot decode a batch.
    pub max_batch_requests: usize,
}

/// Upper bound of `raft.max_batch_requests`: beyond it a batch is bounded by its encoded size
/// (one entry's worth) anyway, so a larger value is a typo.
pub const MAX_BATCH_REQUESTS_LIMIT: usize = 4096;

impl Default for RaftSection {
    fn default() -> Self {
        let d = RaftSettings::default();
        Self {
            heartbeat_ms: millis(d.heartbeat),
            election_timeout_min_ms: millis(d.election_timeout_min),
            election_timeout_max_ms: millis(d.election_timeout_max),
            lease_ms: millis(d.lease),
            snapshot_after_logs: d.snapshot_after_logs,
            logs_kept_after_snapshot: d.logs_kept_after_snapshot,
            write_timeout_ms: millis(d.write_timeout),
            compact_interval_ms: millis(d.compact_interval),
            max_batch_requests: d.max_batch_requests,
        }
    }
}

impl RaftSection {
    /// The WAN profile of `docs/operations.md`, for about 100 ms round trips between regions:
    /// slower heartbeats and longer elections so delayed packets cause no spurious elections,
    /// and a lease that survives one lost renewal yet ends before any election can complete.
    /// The snapshot settings keep their defaults.
    pub fn wan() -> Self {
        Self {
            heartbeat_ms: 300,
            election_timeout_min_ms: 1500,
            election_timeout_max_ms: 3000,
            lease_ms: 1000,
            write_timeout_ms: 15_000,
            ..Self::default()
        }
    }

    /// The settings for the Raft layer.
    pub fn settings(&self) -> RaftSettings {
        RaftSettings {
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            election_timeout_min: Duration::from_millis(self.election_timeout_min_ms),
            election_timeout_max: Duration::from_millis(self.election_timeout_max_ms),
            lease: Duration::from_millis(self.lease_ms),
            snapshot_after_logs: self.snapshot_after_logs,
            logs_kept_after_snapshot: self.logs_kept_after_snapshot,
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            compact_interval: Duration::from_millis(self.compact_interval_ms),
            max_batch_requests: self.max_batch_requests,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn default_region() -> String {
    "local".into()
}

impl ServerConfig {
    /// Reads, parses and validates a configuration file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text read from `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the problem.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base);
        config.validate().map_err(|reason| ConfigError::Invalid {
            path: path.to_owned(),
            reason,
        })?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.data_dir,
            &mut self.tls.node_ca,
            &mut self.tls.node_cert,
            &mut self.tls.node_key,
            &mut self.tls.client_ca,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = self.audit.path.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
    }

    /// The identities `init_identities` names (validated by [`ServerConfig::load`]; an
    /// invalid one, possible only in a config built in code, is left out).
    pub fn init_identities(&self) -> Vec<tessera_state::policy::Identity> {
        self.init_identities
            .iter()
            .filter_map(|i| tessera_state::policy::Identity::parse(i).ok())
            .collect()
    }

    fn validate(&self) -> Result<(), String> {
        if self.node_id == NodeId::new(0) {
            return Err("node_id must be at least 1".into());
        }
        if let Some(e) = self
            .init_identities
            .iter()
            .find_map(|i| tessera_state::policy::Identity::parse(i).err())
        {
            return Err(format!("init_identities: {e}"));
        }
        if self.cluster.bootstrap && !self.cluster.join.is_empty() {
            return Err("cluster.bootstrap and cluster.join are mutually exclusive".into());
        }
        for (name, listener, advertise) in [
            ("api", self.api.listen, &self.api.advertise),
            ("cluster", self.cluster.listen, &self.cluster.advertise),
        ] {
            if listener.ip().is_unspecified() && advertise.is_none() {
                return Err(format!(
                    "{name}.listen binds a wildcard address; set {name}.advertise to the address peers and clients should use"
                ));
            }
        }
        if self.tls.reload_poll_ms == 0 {
            return Err("tls.reload_poll_ms must be positive".into());
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0 {
            return Err("raft.heartbeat_ms must be positive".into());
        }
        if r.election_timeout_min_ms <= r.heartbeat_ms {
            return Err("raft.election_timeout_min_ms must exceed raft.heartbeat_ms".into());
        }
        if r.election_timeout_max_ms <= r.election_timeout_min_ms {
            return Err(
                "raft.election_timeout_max_ms must exceed raft.election_timeout_min_ms".into(),
            );
        }
        if r.lease_ms == 0 || r.lease_ms >= r.election_timeout_min_ms {
            return Err(format!(
                "raft.lease_ms ({}) must be positive and shorter than raft.election_timeout_min_ms ({}): \
                 a node serves from its own state for one lease after the leader last confirmed it, \
                 and a new leader may commit changes one minimum election timeout after the old one \
                 went quiet (see the WAN profile in docs/operations.md)",
                r.lease_ms, r.election_timeout_min_ms
            ));
        }
        if r.snapshot_after_logs == 0 {
            return Err("raft.snapshot_after_logs must be positive".into());
        }
        if r.write_timeout_ms == 0 {
            return Err("raft.write_timeout_ms must be positive".into());
        }
        if r.compact_interval_ms == 0 {
            return Err("raft.compact_interval_ms must be positive".into());
        }
        if r.max_batch_requests == 0 || r.max_batch_requests > MAX_BATCH_REQUESTS_LIMIT {
            return Err(format!(
                "raft.max_batch_requests ({}) must be between 1 (never batch writes; set it \
                 while a rolling upgrade from a build without batches runs) and {MAX_BATCH_REQUESTS_LIMIT}",
                r.max_batch_requests
            ));
        }
        self.limits.validate(r.write_timeout_ms)?;
        let l = &self.lifecycle;
        if l.min_deletion_window_seconds == 0 {
            return Err("lifecycle.min_deletion_window_seconds must be positive".into());
        }
        if l.default_deletion_window_seconds < l.min_deletion_window_seconds {
            return Err(
                "lifecycle.default_deletion_window_seconds must be at least lifecycle.min_deletion_window_seconds"
                    .into(),
            );
        }
        if l.max_deletion_window_seconds < l.default_deletion_window_seconds {
            return Err(
                "lifecycle.max_deletion_window_seconds must be at least lifecycle.default_deletion_window_seconds"
                    .into(),
            );
        }
        if l.min_rotation_period_seconds == 0 || l.import_token_ttl_seconds == 0 {
            return Err(
                "lifecycle.min_rotation_period_seconds and lifecycle.import_token_ttl_seconds must be positive"
                    .into(),
            );
        }
        if l.job_interval_ms == 0 {
            return Err("lifecycle.job_interval_ms must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
node_id = 1
data_dir = "data"
[api]
listen = "127.0.0.1:7401"
[cluster]
listen = "127.0.0.1:7501"
bootstrap = true
[tls]
node_ca = "pki/ca.pem"
node_cert = "pki/node1.pem"
node_key = "pki/node1-key.pem"
client_ca = "pki/client-ca.pem"
"#;

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let c = ServerConfig::parse(MINIMAL, Path::new("/etc/tessera/node.toml")).unwrap();
        assert_eq!(c.node_id, NodeId::new(1));
        assert_eq!(c.data_dir, Path::new("/etc/tessera/data"));
        assert_eq!(c.tls.node_ca, Path::new("/etc/tessera/pki/ca.pem"));
        assert_eq!(c.region, "local");
        assert_eq!(c.raft.lease_ms, 300);
        assert_eq!(c.lifecycle.min_deletion_window_seconds, 7 * 24 * 3600);
        assert_eq!(c.lifecycle.default_deletion_window_seconds, 30 * 24 * 3600);
    }

    #[test]
    fn audit_and_rate_limit_sections_have_defaults_and_resolve_paths() {
        let c = ServerConfig::parse(MINIMAL, Path::new("/etc/tessera/node.toml")).unwrap();
        assert!(!c.audit.enabled);
        assert_eq!(
            c.audit.dir(&c.data_dir),
            Path::new("/etc/tessera/data/audit")
        );
        assert!(c.rate_limits.enabled);
        let text = format!(
            "{MINIMAL}[audit]\nenabled = true\npath = \"trail\"\nsync = true\n\
             [rate_limits]\ncrypto = {{ rate = 10.0, burst = 20.0 }}\n\
             [[rate_limits.overrides]]\nidentity = \"batch-*\"\nkeys = {{ rate = 1, burst = 1 }}\n"
        );
        let c = ServerConfig::parse(&text, Path::new("/etc/tessera/node.toml")).unwrap();
        assert!(c.audit.enabled && c.audit.sync && c.audit.file && !c.audit.stdout);
        assert_eq!(c.audit.dir(&c.data_dir), Path::new("/etc/tessera/trail"));
        assert_eq!(c.rate_limits.limits.crypto.burst, 20.0);
        assert_eq!(c.rate_limits.overrides.len(), 1);
        let text = format!("{MINIMAL}[audit]\nenabeld = true\n");
        assert!(ServerConfig::parse(&text, Path::new("x.toml")).is_err());
    }

    #[test]
    fn the_node_id_is_a_bare_integer_in_the_file() {
        let text = MINIMAL.replace("node_id = 1", "node_id = 300");
        let c = ServerConfig::parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(c.node_id, NodeId::new(300));
        for wrong in ["node_id = \"3\"", "node_id = -1", "node_id = { id = 3 }"] {
            let text = MINIMAL.replace("node_id = 1", wrong);
            assert!(
                ServerConfig::parse(&text, Path::new("x.toml")).is_err(),
                "{wrong}"
            );
        }
    }

    #[test]
    fn init_identities_default_to_anyone_and_must_be_identities() {
        let c = ServerConfig::parse(MINIMAL, Path::new("x.toml")).unwrap();
        assert!(c.init_identities().is_empty());
        let text = MINIMAL.replace(
            "node_id = 1",
            "node_id = 1\ninit_identities = [\"admin\", \"spiffe://prod/ops\"]",
        );
        let c = ServerConfig::parse(&text, Path::new("x.toml")).unwrap();
        let names: Vec<String> = c.init_identities().iter().map(|i| i.to_string()).collect();
        assert_eq!(names, ["admin", "spiffe://prod/ops"]);
        let text = MINIMAL.replace("node_id = 1", "node_id = 1\ninit_identities = [\"\"]");
        let err = ServerConfig::parse(&text, Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("init_identities"), "{err}");
    }

    #[test]
    fn the_ops_port_and_log_format_are_optional() {
        let c = ServerConfig::parse(MINIMAL, Path::new("x.toml")).unwrap();
        assert!(c.ops.is_none());
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.tls.reload_poll_ms, 5_000);
        let text = MINIMAL.replace("node_id = 1", "node_id = 1\nlog_format = \"json\"")
            + "[ops]\nlisten = \"127.0.0.1:7601\"\n";
        let c = ServerConfig::parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(c.ops.unwrap().listen, "127.0.0.1:7601".parse().unwrap());
        assert_eq!(c.log_format, LogFormat::Json);
        let text = MINIMAL.replace("node_id = 1", "node_id = 1\nlog_format = \"xml\"");
        let err = ServerConfig::parse(&text, Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("log_format"), "{err}");
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("xml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = MINIMAL.replace("node_id = 1", "node_id = 1\nnode_idd = 2");
        let err = ServerConfig::parse(&text, Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("node_idd"), "{err}");
    }

    #[test]
    fn inconsistent_values_are_rejected_with_reasons() {
        for (from, to, needle) in [
            ("node_id = 1", "node_id = 0", "node_id"),
            (
                "bootstrap = true",
                "bootstrap = true\njoin = [\"x:1\"]",
                "mutually exclusive",
            ),
            (
                "listen = \"127.0.0.1:7401\"",
                "listen = \"0.0.0.0:7401\"",
                "api.advertise",
            ),
        ] {
            let text = MINIMAL.replace(from, to);
            let err = ServerConfig::parse(&text, Path::new("x.toml")).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        let text = format!("{MINIMAL}[raft]\nlease_ms = 5000\n");
        let err = ServerConfig::parse(&text, Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("lease_ms (5000)"), "{err}");
        assert!(
            err.to_string().contains("election_timeout_min_ms (400)"),
            "{err}"
        );
    }

    #[test]
    fn max_batch_requests_defaults_to_batching_and_is_validated() {
        let c = ServerConfig::parse(MINIMAL, Path::new("x.toml")).unwrap();
        assert_eq!(
            c.raft.settings().max_batch_requests,
            tessera_raft::raft_node::DEFAULT_MAX_BATCH_REQUESTS
        );
        assert!(
            c.raft.max_batch_requests > 1,
            "group commit is on by default"
        );
        let text = format!("{MINIMAL}[raft]\nmax_batch_requests = 1\n");
        let c = ServerConfig::parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(c.raft.settings().max_batch_requests, 1);
        for bad in [0, MAX_BATCH_REQUESTS_LIMIT + 1] {
            let text = format!("{MINIMAL}[raft]\nmax_batch_requests = {bad}\n");
            let err = ServerConfig::parse(&text, Path::new("x.toml")).unwrap_err();
            assert!(err.to_string().contains("raft.max_batch_requests"), "{err}");
        }
    }

    /// The WAN profile of `docs/operations.md` (about 100 ms between regions), verbatim.
    const WAN_PROFILE: &str = "[raft]
heartbeat_ms = 300
election_timeout_min_ms = 1500
election_timeout_max_ms = 3000
lease_ms = 1000
write_timeout_ms = 15000
";

    #[test]
    fn the_documented_wan_profile_is_valid_and_keeps_the_lease_rules() {
        let c =
            ServerConfig::parse(&format!("{MINIMAL}{WAN_PROFILE}"), Path::new("x.toml")).unwrap();
        assert_eq!(
            c.raft,
            RaftSection::wan(),
            "the code's profile is the documented one"
        );
        let r = c.raft.settings();
        // The lease ends before anyone can be elected in its place.
        assert!(r.lease < r.election_timeout_min);
        // A renewal (every third of the lease) survives one lost round trip of 100 ms.
        let rtt = std::time::Duration::from_millis(100);
        assert!(r.lease / 3 * 2 + rtt < r.lease);
        // Several heartbeats fit in the shortest election timeout, even with 100 ms jitter.
        assert!((r.heartbeat + rtt) * 3 < r.election_timeout_min);
        let docs = include_str!("../../../docs/operations.md");
        assert!(
            docs.contains(WAN_PROFILE),
            "docs/operations.md lost the WAN profile"
        );
    }

    /// A self-signed CA certificate (PEM) named `name` for `key`.
    fn ca(name: &str, key: &rcgen::KeyPair) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(key).unwrap().pem()
    }

    /// Runs the CA separation check on the two bundles, written to files in `dir`.
    fn separation(dir: &Path, node_ca: &str, client_ca: &str) -> Result<(), ConfigError> {
        let tls = TlsSection {
            node_ca: dir.join("node-ca.pem"),
            node_cert: dir.join("node.pem"),
            node_key: dir.join("node-key.pem"),
            client_ca: dir.join("client-ca.pem"),
            reload_poll_ms: default_reload_poll_ms(),
        };
        std::fs::write(&tls.node_ca, node_ca).unwrap();
        std::fs::write(&tls.client_ca, client_ca).unwrap();
        tls.check_ca_separation()
    }

    #[test]
    fn node_and_client_cas_must_share_no_certificate_and_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let node_key = rcgen::KeyPair::generate().unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let node_ca = ca("node CA", &node_key);
        let client_ca = ca("client CA", &client_key);
        separation(dir.path(), &node_ca, &client_ca).unwrap();

        // The same certificate, alone or inside a bundle.
        for client_bundle in [node_ca.clone(), format!("{client_ca}{node_ca}")] {
            let (shared, subjects, message) = shared_ca(dir.path(), &node_ca, &client_bundle);
            assert_eq!(shared, SharedCaMaterial::Certificate);
            assert_eq!(subjects, ("CN=node CA".into(), "CN=node CA".into()));
            for file in ["node-ca.pem", "client-ca.pem"] {
                let path = dir.path().join(file).display().to_string();
                assert!(message.contains(&path), "{message}");
            }
            assert!(message.contains("share a certificate"), "{message}");
        }

        // Another certificate for the node CA's key.
        let renamed = ca("renamed CA", &node_key);
        let (shared, subjects, message) = shared_ca(dir.path(), &node_ca, &renamed);
        assert_eq!(shared, SharedCaMaterial::PublicKey);
        assert_eq!(subjects, ("CN=node CA".into(), "CN=renamed CA".into()));
        assert!(message.contains("share a public key"), "{message}");
    }

    /// The separation check's [`ConfigError::SharedCa`] for the two bundles: what they share,
    /// the (node, client) subjects it names, and its message.
    fn shared_ca(
        dir: &Path,
        node_ca: &str,
        client_ca: &str,
    ) -> (SharedCaMaterial, (String, String), String) {
        let err = separation(dir, node_ca, client_ca).unwrap_err();
        let ConfigError::SharedCa {
            shared,
            node_subject,
            client_subject,
            ..
        } = &err
        else {
            panic!("not a shared-CA error: {err}");
        };
        (
            *shared,
            (node_subject.clone(), client_subject.clone()),
            err.to_string(),
        )
    }

    #[test]
    fn unusable_ca_bundles_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = ca("client CA", &rcgen::KeyPair::generate().unwrap());
        let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for (bundle, expected) in [
            ("", "no certificate found"),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n", "invalid PEM"),
            (
                not_der,
                "certificate 1 (counting from 1) is not valid X.509",
            ),
        ] {
            let err = separation(dir.path(), bundle, &good).unwrap_err();
            assert!(matches!(err, ConfigError::CaBundle { .. }), "{err}");
            let message = err.to_string();
            assert!(message.contains("node-ca.pem"), "{message}");
            assert!(message.contains(expected), "{message}");
        }
        let missing = TlsSection {
            node_ca: dir.path().join("absent.pem"),
            node_cert: dir.path().join("node.pem"),
            node_key: dir.path().join("node-key.pem"),
            client_ca: dir.path().join("client-ca.pem"),
            reload_poll_ms: default_reload_poll_ms(),
        };
        let err = missing.check_ca_separation().unwrap_err();
        assert!(
            err.to_string().contains("absent.pem: cannot read it"),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let err = ServerConfig::parse("node_id = [", Path::new("x.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }));
    }
}
