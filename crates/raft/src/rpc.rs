//! Replies of Tessera's own cluster RPCs (write forwarding and read index), postcard-encoded
//! inside `RaftPayload`. The Raft RPCs carry openraft's own request and result types.

use serde::{Deserialize, Serialize};
use tessera_state::Response;

use crate::typ::{NodeId, NodeInfo};

/// Where the leader is, as far as the answering node knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    /// The leader's id, if known.
    pub leader_id: Option<NodeId>,
    /// The leader's addresses, if known.
    pub leader: Option<NodeInfo>,
}

/// The leader's answer to a forwarded write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardReply {
    /// Committed and applied at `index` with this result.
    Applied {
        /// Log index of the write.
        index: u64,
        /// Replicated result.
        response: Response,
    },
    /// The node is not (or no longer) the leader.
    NotLeader(LeaderHint),
    /// The leader failed the write for a reason other than leadership; the outcome is unknown.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// The leader's answer to a read-index request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadIndexReply {
    /// Everything committed before the request is at or below this index.
    Index(u64),
    /// The node is not (or no longer) the leader.
    NotLeader(LeaderHint),
    /// The leader could not confirm its leadership.
    Failed {
        /// What went wrong.
        reason: String,
    },
}
