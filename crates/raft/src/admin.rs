//! The leader's side of membership administration: it lists the members with their
//! replication progress and runs changes as openraft joint-consensus steps, after the checks
//! of [`crate::membership`]. Followers relay calls here ([`crate::raft_node::RaftNode::membership`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};

use crate::leadership::Leadership;
use crate::lease::{Lease, LeaseState};
use crate::membership::{
    plan, Change, ChangeRequest, Current, LeaseReport, Member, MemberList, MembershipCall,
    MembershipError, MembershipReply, Plan, ProbeReply,
};
use crate::network::Peers;
use crate::rpc::LeaderHint;
use crate::state_machine::SharedState;
use crate::typ::{NodeId, NodeInfo, Raft};

/// How long the leader waits for a member's probe answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs membership calls on this node when it leads, and answers probes.
#[derive(Clone)]
pub struct MembershipAdmin {
    id: NodeId,
    raft: Raft,
    peers: Peers,
    lease: Arc<Lease>,
    shared: Arc<SharedState>,
    leadership: Arc<Leadership>,
    /// A voter the leader heard from within this long counts as reachable.
    reachable_within: Duration,
}

/// Why a change could not be run here.
enum Outcome {
    NotLeader,
    Refused(MembershipError),
}

impl From<MembershipError> for Outcome {
    fn from(e: MembershipError) -> Self {
        Self::Refused(e)
    }
}

impl MembershipAdmin {
    /// An administrator for node `id`; voters count as reachable if the leader heard from them
    /// within `reachable_within` (the maximum election timeout).
    pub fn new(
        id: NodeId,
        raft: Raft,
        peers: Peers,
        lease: Arc<Lease>,
        shared: Arc<SharedState>,
        leadership: Arc<Leadership>,
        reachable_within: Duration,
    ) -> Self {
        Self {
            id,
            raft,
            peers,
            lease,
            shared,
            leadership,
            reachable_within,
        }
    }

    /// Whether this node may serve from its own applied state now.
    pub fn lease_state(&self) -> LeaseState {
        let single_voter_leader = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            metrics.state == ServerState::Leader
                && metrics
                    .membership_config
                    .membership()
                    .voter_ids()
                    .eq([self.id])
                && metrics.last_applied.map(|l| l.leader_id.term) == Some(metrics.current_term)
        };
        if single_voter_leader {
            return LeaseState::Valid;
        }
        self.lease
            .check(Instant::now(), self.shared.applied_index())
    }

    /// What this node says about itself to a probe.
    pub async fn probe_reply(&self) -> ProbeReply {
        let member = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&self.id)
            .is_some();
        ProbeReply {
            node_id: self.id,
            // A stopped core cannot tell; report state held so the node is never re-added.
            initialized: self.raft.is_initialized().await.unwrap_or(true),
            member,
            lease: match self.lease_state() {
                LeaseState::Valid => LeaseReport::Valid,
                LeaseState::Expired => LeaseReport::Expired,
                LeaseState::CatchingUp { .. } => LeaseReport::CatchingUp,
            },
            sealed: self.leadership.is_sealed(),
        }
    }

    /// Runs `call` if this node leads.
    pub async fn run(&self, call: MembershipCall) -> MembershipReply {
        let outcome = match call {
            MembershipCall::List => self.list().await,
            MembershipCall::Change(request) => match self.change(request).await {
                Ok(()) => self.list().await,
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(list) => MembershipReply::Members(list),
            Err(Outcome::NotLeader) => MembershipReply::NotLeader(LeaderHint::of(&self.raft)),
            Err(Outcome::Refused(e)) => MembershipReply::Refused(e),
        }
    }

    fn require_leader(&self) -> Result<(), Outcome> {
        let leads = self.raft.metrics().borrow().state == ServerState::Leader;
        if leads && !self.leadership.refuses_writes() {
            Ok(())
        } else {
            Err(Outcome::NotLeader)
        }
    }

    /// The members with the leader's view of their progress, each probed for its lease.
    async fn list(&self) -> Result<MemberList, Outcome> {
        self.require_leader()?;
        let (members, last_log) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
            let last_log = metrics.last_log_index.unwrap_or(0);
            let matched = |id: NodeId| {
                if id == self.id {
                    Some(last_log)
                } else {
                    metrics
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&id).copied().flatten())
                        .map(|l| l.index)
                }
            };
            let members: Vec<(NodeId, NodeInfo, bool, Option<u64>)> = membership
                .nodes()
                .map(|(id, info)| (*id, info.clone(), voters.contains(id), matched(*id)))
                .collect();
            (members, last_log)
        };
        let probes = members.iter().map(|(id, info, _, _)| self.probe(*id, info));
        let probes = futures::future::join_all(probes).await;
        let members = members
            .into_iter()
            .zip(probes)
            .map(|((id, info, voter, match_index), probe)| Member {
                id,
                info,
                voter,
                match_index,
                lag: match_index.map(|m| last_log.saturating_sub(m)),
                last_contact_ms: self.last_contact(id).map(millis),
                probe,
            })
            .collect();
        Ok(MemberList {
            leader_id: self.id,
            members,
        })
    }

    async fn probe(&self, id: NodeId, info: &NodeInfo) -> Option<ProbeReply> {
        if id == self.id {
            return Some(self.probe_reply().await);
        }
        self.peers
            .probe(&info.cluster_addr, PROBE_TIMEOUT)
            .await
            .ok()
            .filter(|reply| reply.node_id == id)
    }

    fn last_contact(&self, id: NodeId) -> Option<Duration> {
        if id == self.id {
            Some(Duration::ZERO)
        } else {
            self.peers.last_contact(id)
        }
    }

    /// Checks and runs one change ([`plan`]). Returns once openraft committed it (or it was
    /// already in effect).
    async fn change(&self, request: ChangeRequest) -> Result<(), Outcome> {
        self.require_leader()?;
        let id = request.change.node_id();
        let current = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
            Current {
                lag: metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id).copied().flatten())
                    .map(|l| metrics.last_log_index.unwrap_or(0).saturating_sub(l.index)),
                existing: membership.get_node(&id).cloned(),
                // Over every member, learners included: a learner being promoted counts
                // toward the new majority when the leader hears from it.
                reachable: self.reachable(membership.nodes().map(|(id, _)| *id)),
                voters,
            }
        };
        match plan(&request, &current)? {
            Plan::Done => Ok(()),
            Plan::AddLearner => {
                if let Change::AddLearner { info, .. } = &request.change {
                    self.admissible(id, info).await?;
                    self.add_learner(id, info.clone()).await?;
                }
                Ok(())
            }
            Plan::Change { members, retain } => {
                self.raft
                    .change_membership(members, retain)
                    .await
                    .map(drop)
                    .map_err(refusal)?;
                if let Change::Remove { .. } = request.change {
                    // Removing a voter with `retain == false` drops it in the same change; a
                    // learner left behind by an interrupted earlier attempt goes now.
                    self.remove_leftover_learner(id).await?;
                }
                Ok(())
            }
        }
    }

    async fn remove_leftover_learner(&self, id: NodeId) -> Result<(), Outcome> {
        let still_there = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .is_some();
        if still_there {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map(drop)
                .map_err(refusal)?;
        }
        Ok(())
    }

    /// The members among `ids` (and this leader) heard from recently.
    fn reachable(&self, ids: impl Iterator<Item = NodeId>) -> BTreeSet<NodeId> {
        ids.filter(|id| {
            self.last_contact(*id)
                .is_some_and(|since| since <= self.reachable_within)
        })
        .collect()
    }

    /// Refuses a node that is unreachable, another node, or still holds Raft data.
    async fn admissible(&self, id: NodeId, info: &NodeInfo) -> Result<(), Outcome> {
        let addr = info.cluster_addr.clone();
        let reply = self.peers.probe(&addr, PROBE_TIMEOUT).await.map_err(|e| {
            MembershipError::Unreachable {
                id,
                addr: addr.clone(),
                reason: e.to_string(),
            }
        })?;
        if reply.node_id != id {
            return Err(MembershipError::WrongNode {
                addr,
                expected: id,
                found: reply.node_id,
            }
            .into());
        }
        if reply.initialized {
            return Err(MembershipError::StaleData { id, addr }.into());
        }
        Ok(())
    }

    async fn add_learner(&self, id: NodeId, info: NodeInfo) -> Result<(), Outcome> {
        // Not blocking: the learner catches up (by snapshot if the log was compacted) while
        // `operator members` shows its lag.
        self.raft
            .add_learner(id, info, false)
            .await
            .map(drop)
            .map_err(refusal)
    }
}

fn refusal(e: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>) -> Outcome {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => Outcome::NotLeader,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(_),
        )) => Outcome::Refused(MembershipError::InProgress),
        other => Outcome::Refused(MembershipError::Raft(Box::new(other))),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
