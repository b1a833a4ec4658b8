//! The openraft type configuration and the aliases the rest of Tessera uses.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A node's id: unique in the cluster, fixed for the node's lifetime. Defined by the `state`
/// crate (the replicated clock reports carry one) and re-exported here, where it is openraft's
/// node id type, so the crates above name it as the Raft member id it is.
pub use tessera_state::NodeId;

/// What the cluster knows about a member: where to reach it and where it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// API endpoint clients use, `host:port`.
    pub api_addr: String,
    /// Cluster endpoint peers use, `host:port`.
    pub cluster_addr: String,
    /// Region label (for multi-region placement and client affinity).
    pub region: String,
    /// Zone label within the region.
    pub zone: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "api={} cluster={} region={}",
            self.api_addr, self.cluster_addr, self.region
        )
    }
}

openraft::declare_raft_types!(
    /// Tessera's Raft types: requests and responses of the `state` crate, sled-backed storage,
    /// snapshots as in-memory byte buffers.
    pub TypeConfig:
        D = tessera_state::Request,
        R = tessera_state::Response,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A running Raft instance.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// Membership as stored with the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
/// A snapshot with its data.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// A storage error.
pub type StorageError = openraft::StorageError<NodeId>;
/// Why the Raft core stopped (or cannot run).
pub type Fatal = openraft::error::Fatal<NodeId>;
/// openraft's refusal of a write.
pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, NodeInfo>;
/// openraft's refusal to initialise a cluster.
pub type InitializeError = openraft::error::InitializeError<NodeId, NodeInfo>;
/// Raft metrics.
pub type RaftMetrics = openraft::RaftMetrics<NodeId, NodeInfo>;
/// A node's Raft role.
pub use openraft::ServerState;

#[cfg(test)]
mod tests;
