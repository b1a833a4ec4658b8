//! The errors of a running Raft member ([`crate::raft_node::RaftNode`]). Each variant keeps the
//! error it comes from, so callers can tell causes apart without parsing messages; the API
//! layer maps every variant to a status explicitly (none is `#[non_exhaustive]`, so a new
//! variant is a compile error there until it is mapped). openraft's errors are boxed: they
//! are hundreds of bytes, and these errors travel up every API call's `Result`.

use std::path::PathBuf;
use std::time::Duration;

use crate::tls::TlsError;
use crate::typ::{ClientWriteError, Fatal, InitializeError, StorageError};

/// Failure to start a node.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory's database cannot be opened.
    #[error("cannot open the database in {path}: {source}")]
    Storage {
        /// The database path.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// An interrupted compaction of the database could not be finished or undone.
    #[error("cannot recover an interrupted compaction: {0}")]
    Recover(#[source] std::io::Error),
    /// Stored Raft state does not load.
    #[error("stored state does not load: {0}")]
    State(#[source] Box<StorageError>),
    /// TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The lease would outlast the time a new leader needs to be elected, so two nodes could
    /// serve at once.
    #[error("invalid raft settings: lease ({lease:?}) must be shorter than the minimum election timeout ({election_timeout_min:?})")]
    LeaseTooLong {
        /// The configured lease.
        lease: Duration,
        /// The configured minimum election timeout.
        election_timeout_min: Duration,
    },
    /// openraft refused the Raft settings.
    #[error("invalid raft settings: {0}")]
    Settings(#[source] Box<openraft::ConfigError>),
    /// openraft failed to start.
    #[error("raft failed to start: {0}")]
    Raft(#[source] Box<Fatal>),
}

/// Why a write could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// No leader could be found or reached before the deadline; the write was not applied.
    #[error("no Raft leader is reachable (waited {waited:?}); the write was not applied")]
    NoLeader {
        /// How long the node tried.
        waited: Duration,
    },
    /// The write was handed to a leader but its commit was not confirmed in time. It may or
    /// may not be applied; retrying with the same request id is safe.
    #[error("the write was not confirmed in time; its outcome is unknown — retry with the same request id")]
    Unknown,
    /// Raft refused the write for a reason other than leadership (not expected for
    /// application writes).
    #[error("Raft refused the write: {0}")]
    Refused(#[source] Box<ClientWriteError>),
    /// The Raft core stopped (for example on a storage failure). A write in flight may or
    /// may not be applied: its entry may have been replicated before the core stopped.
    #[error("the Raft core of this node has stopped ({0}); a write's outcome is unknown — retry with the same request id on another node")]
    Fatal(#[source] Box<Fatal>),
    /// This node was removed from the cluster while the write was being proposed; the leader
    /// no longer accepts it. If the write was already handed over, its outcome is unknown.
    #[error("node {node_id} was removed from the cluster; if the write was already handed to the leader its outcome is unknown — retry with the same request id on another node")]
    Removed {
        /// This node's id.
        node_id: crate::typ::NodeId,
    },
}

/// Why a linearizable read barrier failed (cloned to every caller a merged barrier answers).
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadIndexError {
    /// No leader confirmed a read index before the deadline.
    #[error("cannot confirm the latest state with the leader: no leader confirmed a read index within {timeout:?}")]
    NoLeader {
        /// How long the node tried.
        timeout: Duration,
    },
    /// The leader confirmed a read index, but this node did not apply up to it in time.
    #[error("cannot confirm the latest state with the leader: this node did not apply up to index {index} in time")]
    NotApplied {
        /// The read index.
        index: u64,
    },
    /// This node is the leader and its Raft core has stopped.
    #[error("cannot confirm the latest state with the leader: the Raft core of this node has stopped ({0})")]
    Fatal(#[source] Box<Fatal>),
}

/// Why this node could not enter a cluster (bootstrap or join).
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    /// The Raft core has stopped.
    #[error("the Raft core of this node has stopped: {0}")]
    Fatal(#[source] Box<Fatal>),
    /// openraft refused to make this node a one-member cluster (it already has a log, or it is
    /// not in the membership it was given).
    #[error("cannot bootstrap a one-member cluster: {0}")]
    Initialize(#[source] Box<InitializeError>),
}

/// Why the Raft core of a running node stopped (see [`crate::raft_node::RaftNode::stopped`]).
#[derive(Debug, thiserror::Error)]
pub enum CoreStopped {
    /// The core reported a fatal error (a storage write failed, a task panicked) or stopped.
    #[error(transparent)]
    Fatal(Box<Fatal>),
    /// The core exited without reporting why.
    #[error("the Raft core exited")]
    Exited,
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::time::Duration;

    use super::*;
    use crate::raft_node::{NodeConfig, RaftNode, RaftSettings};
    use crate::tls::TlsFiles;
    use crate::typ::NodeId;

    fn config(dir: &std::path::Path, settings: RaftSettings) -> NodeConfig {
        NodeConfig {
            id: NodeId::new(1),
            info: crate::typ::NodeInfo::default(),
            data_dir: dir.to_owned(),
            tls: TlsFiles {
                trusted_ca: dir.join("missing-ca.pem"),
                cert: dir.join("missing.pem"),
                key: dir.join("missing-key.pem"),
            },
            settings,
            dial: Default::default(),
            accept: Default::default(),
        }
    }

    async fn start(settings: RaftSettings) -> StartError {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        match RaftNode::start(config(dir.path(), settings), listener).await {
            Ok(_) => panic!("the node started"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn a_lease_outlasting_an_election_is_refused_with_both_values() {
        let e = start(RaftSettings {
            lease: Duration::from_millis(1500),
            election_timeout_min: Duration::from_millis(1500),
            ..RaftSettings::default()
        })
        .await;
        assert!(
            matches!(
                e,
                StartError::LeaseTooLong { lease, election_timeout_min }
                    if lease == election_timeout_min
                        && lease == Duration::from_millis(1500)
            ),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn settings_openraft_refuses_keep_openraft_s_error() {
        let e = start(RaftSettings {
            lease: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(3000),
            election_timeout_max: Duration::from_millis(2000),
            ..RaftSettings::default()
        })
        .await;
        assert!(matches!(e, StartError::Settings(_)), "{e:?}");
        let source = e.source().expect("a source");
        assert!(
            source
                .downcast_ref::<Box<openraft::ConfigError>>()
                .is_some(),
            "{source:?}"
        );
    }

    #[tokio::test]
    async fn unreadable_tls_material_names_the_file_and_keeps_the_io_error() {
        let e = start(RaftSettings::default()).await;
        match &e {
            StartError::Tls(TlsError::Read { path, .. }) => {
                assert!(path.ends_with("missing-ca.pem") || path.ends_with("missing.pem"));
            }
            other => panic!("expected a TLS read error, got {other:?}"),
        }
        let source = e.source().expect("a source");
        assert!(
            source.downcast_ref::<std::io::Error>().is_some(),
            "{source:?}"
        );
    }

    #[test]
    fn raft_core_failures_keep_openraft_s_error() {
        let errors: [&dyn std::error::Error; 4] = [
            &ProposeError::Fatal(Box::new(Fatal::Panicked)),
            &ReadIndexError::Fatal(Box::new(Fatal::Panicked)),
            &EnterError::Fatal(Box::new(Fatal::Panicked)),
            &StartError::Raft(Box::new(Fatal::Panicked)),
        ];
        for e in errors {
            let source = e.source().expect("a source");
            assert_eq!(
                source.downcast_ref::<Box<Fatal>>().map(|f| &**f),
                Some(&Fatal::Panicked),
                "{e}"
            );
            assert!(e.to_string().contains("panicked"), "{e}");
        }
        let stopped = CoreStopped::Fatal(Box::new(Fatal::Stopped));
        assert_eq!(stopped.to_string(), Fatal::Stopped.to_string());
    }
}
