//! Starting local Tessera clusters of real `tessera server` processes: a throw-away PKI,
//! typed node configurations, spawning and killing nodes by PID, init and unseal.
//!
//! One place for what every command that starts a local cluster does (and what test harnesses
//! can adopt), so a change to how a node is configured or brought up is made once.

pub mod cluster;
pub mod config;
pub mod layout;
pub mod pki;
pub mod process;
pub mod wait;

use std::path::{Path, PathBuf};

pub use cluster::{LocalCluster, SavedShares};
pub use layout::NodeFiles;
pub use process::{published_addresses, NodeProcess, Nodes};
pub use wait::{Bound, Timeout};

/// Why a local cluster could not be prepared or brought up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating the PKI failed.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// A file or directory could not be used.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file, directory or address.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A node configuration file is not valid.
    #[error("invalid node configuration {}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<tessera_server::config::ConfigError>,
    },
    /// A node configuration could not be encoded.
    #[error("cannot encode {}: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::ser::Error,
    },
    /// The shares file could not be read or written.
    #[error("{} is not valid: {source}", path.display())]
    Shares {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The port layout does not fit.
    #[error("--base-port {base} leaves no room for {nodes} nodes")]
    Ports {
        /// First API port.
        base: u16,
        /// Nodes asked for.
        nodes: u64,
    },
    /// The directory holds something other than a cluster.
    #[error("{} exists and is not a dev cluster directory (no shares.json); choose another --dir", dir.display())]
    NotClusterDir {
        /// The directory.
        dir: PathBuf,
    },
    /// The cluster directory has no node configuration.
    #[error("{} holds shares.json but no node configuration", dir.display())]
    NoNodes {
        /// The directory.
        dir: PathBuf,
    },
    /// A node process could not be started.
    #[error("cannot start node {id}: {source}")]
    Spawn {
        /// Node id.
        id: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A node process ended as soon as it started.
    #[error("node {id} exited at once")]
    ExitedAtOnce {
        /// Node id.
        id: u64,
    },
    /// A bounded wait ran out; it carries what the last attempt saw.
    #[error(transparent)]
    Timeout(Box<wait::Timeout<cluster::Pending>>),
    /// A call to a node failed.
    #[error(transparent)]
    Client(#[from] tessera_client::Error),
}

impl From<Timeout<cluster::Pending>> for Error {
    fn from(timeout: Timeout<cluster::Pending>) -> Self {
        Self::Timeout(Box::new(timeout))
    }
}

impl Error {
    /// A mapper from an I/O error on `path` while doing `action`.
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
