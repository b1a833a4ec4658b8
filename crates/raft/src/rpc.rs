//! Messages of Tessera's own cluster RPCs (write forwarding, read index, leadership handover),
//! postcard-encoded inside `RaftPayload`. The Raft RPCs carry openraft's own request and result
//! types.

use serde::{Deserialize, Serialize};
use tessera_state::Response;

use crate::typ::{NodeId, NodeInfo, Raft};

/// Where the leader is, as far as the answering node knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    /// The leader's id, if known.
    pub leader_id: Option<NodeId>,
    /// The leader's addresses, if known.
    pub leader: Option<NodeInfo>,
}

impl LeaderHint {
    /// What `raft`'s metrics say of the leader now.
    pub fn of(raft: &Raft) -> Self {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let leader_id = metrics.current_leader;
        let leader = leader_id.and_then(|id| {
            metrics
                .membership_config
                .membership()
                .get_node(&id)
                .cloned()
        });
        Self { leader_id, leader }
    }
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

/// A sealed leader's request to a voter to take over leadership (Raft's `TimeoutNow`): start an
/// election at once, if it may lead and is up to date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutNowRequest {
    /// The asking leader; the voter must follow it (a stale request changes nothing).
    pub leader_id: NodeId,
    /// The leader's term.
    pub term: u64,
    /// The leader's last log index; the voter must have reached it to win the election.
    pub last_log_index: u64,
}

/// A voter's answer to [`TimeoutNowRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeoutNowReply {
    /// The voter started an election.
    Campaigning,
    /// The voter could lead but lacks part of the leader's log; ask again once it caught up.
    Behind {
        /// Its last log index.
        last_log_index: u64,
    },
    /// The voter is sealed too and does not campaign.
    Sealed,
    /// The voter does not follow the asking leader in its term (or is not a voter).
    NotFollowing,
    /// The voter's Raft core has stopped.
    Stopped,
}
