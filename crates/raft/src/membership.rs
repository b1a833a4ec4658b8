//! Membership administration: the calls an operator makes (list, add a learner, promote,
//! demote, remove), what the leader answers, and the pure rules it applies before it asks
//! openraft for a joint-consensus change.
//!
//! Every change is idempotent: re-issuing a completed change (promoting a voter, demoting a
//! learner, removing a node that is no longer a member, adding a learner that is already there
//! with the same addresses) answers the current members, so a caller that lost the answer can
//! simply retry. A change that would leave the voters without a reachable majority is refused
//! unless forced ([`check_quorum`]); no change may leave the cluster without a voter.

use std::collections::BTreeSet;

use openraft::error::RaftError;
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};

use crate::rpc::LeaderHint;
use crate::typ::{ClientWriteError, NodeId, NodeInfo};

/// Most entries a learner may lag behind the leader's log and still be promoted without
/// `force`: a voter far behind cannot acknowledge new entries until it caught up, so promoting
/// it early only adds a voter that does not help commit.
pub const PROMOTE_MAX_LAG: u64 = 1_000;

/// One membership change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Add a non-voting member that replicates the log (and serves reads under a lease).
    AddLearner {
        /// Its node id (its certificate must name `node-<id>`).
        id: NodeId,
        /// Its addresses and placement labels.
        info: NodeInfo,
    },
    /// Make a learner a voter.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Make a voter a learner.
    Demote {
        /// The voter.
        id: NodeId,
    },
    /// Remove a voter or learner from the cluster.
    Remove {
        /// The member.
        id: NodeId,
    },
}

impl Change {
    /// The node the change is about.
    pub fn node_id(&self) -> NodeId {
        match self {
            Self::AddLearner { id, .. }
            | Self::Promote { id }
            | Self::Demote { id }
            | Self::Remove { id } => *id,
        }
    }
}

/// A change and whether to skip the quorum check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequest {
    /// The change.
    pub change: Change,
    /// Skip [`check_quorum`]'s majority rule (never its last-voter rule).
    pub force: bool,
}

/// A membership call relayed to the leader on the cluster port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipCall {
    /// List the members with their replication progress.
    List,
    /// Change the membership, then list.
    Change(ChangeRequest),
}

/// The leader's answer to a [`MembershipCall`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipReply {
    /// The members after the call.
    Members(MemberList),
    /// The answering node is not (or no longer) the leader.
    NotLeader(LeaderHint),
    /// The change was refused.
    Refused(MembershipError),
}

/// The members as the leader sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberList {
    /// The leader that answered.
    pub leader_id: NodeId,
    /// Every member, by id.
    pub members: Vec<Member>,
}

/// One member as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its node id.
    pub id: NodeId,
    /// Its addresses and labels.
    pub info: NodeInfo,
    /// Voter (true) or learner.
    pub voter: bool,
    /// The highest log index the leader knows it holds.
    pub match_index: Option<u64>,
    /// The leader's last log index minus `match_index`.
    pub lag: Option<u64>,
    /// Milliseconds since the leader last had an answer from it (0 for the leader itself).
    pub last_contact_ms: Option<u64>,
    /// What it said about itself when listed; `None` if it did not answer in time.
    pub probe: Option<ProbeReply>,
}

/// Whether a node may serve from its own state, as it reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseReport {
    /// The lease holds.
    Valid,
    /// No leader contact within the lease window.
    Expired,
    /// In contact, still applying what the leader had committed.
    CatchingUp,
}

impl LeaseReport {
    /// The API name: `valid`, `expired` or `catching-up`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expired => "expired",
            Self::CatchingUp => "catching-up",
        }
    }
}

/// A node's answer to a probe: who it is and what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReply {
    /// Its node id.
    pub node_id: NodeId,
    /// Whether it has Raft state (a log, a vote or a snapshot) in its data directory.
    pub initialized: bool,
    /// Whether its own view of the membership contains it.
    pub member: bool,
    /// Its lease.
    pub lease: LeaseReport,
    /// Whether it is sealed.
    pub sealed: bool,
}

/// Why the leader refused a membership call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// After the change the reachable voters would not be a majority, so the cluster could not
    /// commit anything.
    #[error("refused: after this change the voters would be {voters_after:?}, of which only {reachable_after:?} are reachable from the leader, not a majority; the cluster could not commit writes. Bring the missing voters back first, or repeat with --force")]
    QuorumLoss {
        /// The voters after the change.
        voters_after: Vec<NodeId>,
        /// Those the leader heard from within the maximum election timeout.
        reachable_after: Vec<NodeId>,
    },
    /// The change would leave no voter.
    #[error("refused: node {id} is the last voter, and a cluster needs at least one (add and promote another node first)")]
    LastVoter {
        /// The last voter.
        id: NodeId,
    },
    /// The node is not a member (for promote and demote).
    #[error("node {id} is not a member of this cluster")]
    NotAMember {
        /// The node.
        id: NodeId,
    },
    /// The id is taken by a member with other addresses.
    #[error("node id {id} is already a member with addresses {existing}; remove it first to re-add it elsewhere")]
    AddressConflict {
        /// The node.
        id: NodeId,
        /// The member's current addresses and labels.
        existing: NodeInfo,
    },
    /// The node to add still holds Raft data of an earlier membership: it was removed from
    /// this cluster (or belonged to another one). Replicating into that data would mix two
    /// histories under one identity.
    #[error("refused: node {id} at {addr} still holds Raft data from an earlier membership (it was removed from this cluster, or belongs to another one). Stop it, wipe its data directory, start it again with neither `bootstrap` nor `join`, and repeat add-learner")]
    StaleData {
        /// The node.
        id: NodeId,
        /// Its cluster address.
        addr: String,
    },
    /// The node at the given address is another node.
    #[error("refused: the node at {addr} is node {found}, not node {expected}")]
    WrongNode {
        /// The cluster address.
        addr: String,
        /// The id asked for.
        expected: NodeId,
        /// The id the node reports.
        found: NodeId,
    },
    /// The node to add did not answer.
    #[error("cannot reach node {id} at {addr} ({reason}); start it (with neither `bootstrap` nor `join`) and retry")]
    Unreachable {
        /// The node.
        id: NodeId,
        /// Its cluster address.
        addr: String,
        /// The transport error.
        reason: String,
    },
    /// The learner is too far behind the leader's log to be promoted yet.
    #[error("refused: learner {id} is {} entries behind the leader; wait until `operator members` shows it caught up, or repeat with --force", lag.map_or_else(|| "an unknown number of".to_owned(), |l| l.to_string()))]
    Lagging {
        /// The learner.
        id: NodeId,
        /// Its lag, if the leader knows it.
        lag: Option<u64>,
    },
    /// Another membership change has not finished.
    #[error("another membership change is in progress; retry")]
    InProgress,
    /// No leader could be reached in time.
    #[error("no Raft leader is reachable; the membership was not changed")]
    NoLeader,
    /// openraft refused the change for another reason (or its core stopped).
    #[error("Raft refused the membership change: {0}")]
    Raft(#[source] Box<RaftError<NodeId, ClientWriteError>>),
}

/// What the leader knows when it decides a change.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// The voters.
    pub voters: BTreeSet<NodeId>,
    /// The member the change is about, if it is one.
    pub existing: Option<NodeInfo>,
    /// How far that member is behind the leader's log, if known.
    pub lag: Option<u64>,
    /// The voters the leader heard from recently (itself included).
    pub reachable: BTreeSet<NodeId>,
}

/// What the leader does for a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The change is already in effect: answer the current members.
    Done,
    /// Probe the node (it must answer with its id and no Raft state), then add it as a learner.
    AddLearner,
    /// Ask openraft for this change; `retain` keeps removed voters as learners.
    Change {
        /// The openraft change.
        members: ChangeMembers<NodeId, NodeInfo>,
        /// Whether removed voters stay as learners.
        retain: bool,
    },
}

/// Decides `request` against the current membership: a no-op for a change already in effect
/// (so retries succeed), a refusal, or the openraft change to make.
///
/// # Errors
/// [`MembershipError::AddressConflict`], [`MembershipError::NotAMember`],
/// [`MembershipError::Lagging`], or the refusals of [`check_quorum`].
pub fn plan(request: &ChangeRequest, current: &Current) -> Result<Plan, MembershipError> {
    let ChangeRequest { change, force } = request;
    let id = change.node_id();
    let is_voter = current.voters.contains(&id);
    let one = || BTreeSet::from([id]);
    let plan = match (change, &current.existing) {
        (Change::AddLearner { info, .. }, Some(existing)) if info == existing => Plan::Done,
        (Change::AddLearner { .. }, Some(existing)) => {
            return Err(MembershipError::AddressConflict {
                id,
                existing: existing.clone(),
            })
        }
        (Change::AddLearner { .. }, None) => Plan::AddLearner,
        (Change::Remove { .. }, None) => Plan::Done,
        (Change::Promote { .. } | Change::Demote { .. }, None) => {
            return Err(MembershipError::NotAMember { id })
        }
        (Change::Promote { .. }, Some(_)) if is_voter => Plan::Done,
        (Change::Demote { .. }, Some(_)) if !is_voter => Plan::Done,
        (Change::Promote { .. }, Some(_)) => {
            if !force && current.lag.is_none_or(|l| l > PROMOTE_MAX_LAG) {
                return Err(MembershipError::Lagging {
                    id,
                    lag: current.lag,
                });
            }
            Plan::Change {
                members: ChangeMembers::AddVoterIds(one()),
                retain: false,
            }
        }
        (Change::Demote { .. }, Some(_)) => Plan::Change {
            members: ChangeMembers::RemoveVoters(one()),
            retain: true,
        },
        (Change::Remove { .. }, Some(_)) if is_voter => Plan::Change {
            members: ChangeMembers::RemoveVoters(one()),
            retain: false,
        },
        (Change::Remove { .. }, Some(_)) => Plan::Change {
            members: ChangeMembers::RemoveNodes(one()),
            retain: false,
        },
    };
    if let (Plan::Change { .. }, Some(after)) = (&plan, voters_after(&current.voters, change)) {
        check_quorum(id, &current.voters, &after, &current.reachable, *force)?;
    }
    Ok(plan)
}

/// The voters after `change`, given the voters before. `None` if the change does not alter
/// the voters (adding a learner, removing a learner, promoting a voter, demoting a learner).
pub fn voters_after(voters: &BTreeSet<NodeId>, change: &Change) -> Option<BTreeSet<NodeId>> {
    let mut after = voters.clone();
    let altered = match change {
        Change::AddLearner { .. } => false,
        Change::Promote { id } => after.insert(*id),
        Change::Demote { id } | Change::Remove { id } => after.remove(id),
    };
    altered.then_some(after)
}

/// Whether a change from `before` to `after` voters keeps a reachable majority in both
/// configurations (joint consensus needs both). `reachable` are the nodes the leader heard from
/// recently (itself included). With `force`, only the last-voter rule applies.
///
/// # Errors
/// [`MembershipError::LastVoter`] if `after` is empty (`id` names the node being changed),
/// [`MembershipError::QuorumLoss`] if either configuration lacks a reachable majority.
pub fn check_quorum(
    id: NodeId,
    before: &BTreeSet<NodeId>,
    after: &BTreeSet<NodeId>,
    reachable: &BTreeSet<NodeId>,
    force: bool,
) -> Result<(), MembershipError> {
    if after.is_empty() {
        return Err(MembershipError::LastVoter { id });
    }
    if force {
        return Ok(());
    }
    let has_majority = |voters: &BTreeSet<NodeId>| {
        let up = voters.intersection(reachable).count();
        up.saturating_mul(2) > voters.len()
    };
    if has_majority(before) && has_majority(after) {
        Ok(())
    } else {
        Err(MembershipError::QuorumLoss {
            voters_after: after.iter().copied().collect(),
            reachable_after: after.intersection(reachable).copied().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().copied().map(NodeId::new).collect()
    }

    fn check(
        change: &Change,
        voters: &[u64],
        up: &[u64],
        force: bool,
    ) -> Result<(), MembershipError> {
        let before = set(voters);
        let after = voters_after(&before, change).unwrap_or_else(|| before.clone());
        check_quorum(change.node_id(), &before, &after, &set(up), force)
    }

    #[test]
    fn removing_a_dead_voter_keeps_the_live_majority() {
        assert_eq!(
            check(
                &Change::Remove { id: NodeId::new(3) },
                &[1, 2, 3],
                &[1, 2],
                false
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &Change::Demote { id: NodeId::new(3) },
                &[1, 2, 3],
                &[1, 2],
                false
            ),
            Ok(())
        );
    }

    #[test]
    fn removing_a_live_voter_while_another_is_down_is_refused_unless_forced() {
        let refused = check(
            &Change::Remove { id: NodeId::new(2) },
            &[1, 2, 3],
            &[1, 2],
            false,
        );
        assert_eq!(
            refused,
            Err(MembershipError::QuorumLoss {
                voters_after: vec![NodeId::new(1), NodeId::new(3)],
                reachable_after: vec![NodeId::new(1)],
            })
        );
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("--force"), "{message}");
        assert_eq!(
            check(
                &Change::Remove { id: NodeId::new(2) },
                &[1, 2, 3],
                &[1, 2],
                true
            ),
            Ok(())
        );
    }

    #[test]
    fn the_last_voter_cannot_go_even_when_forced() {
        for force in [false, true] {
            assert_eq!(
                check(&Change::Remove { id: NodeId::new(1) }, &[1], &[1], force),
                Err(MembershipError::LastVoter { id: NodeId::new(1) })
            );
            assert_eq!(
                check(&Change::Demote { id: NodeId::new(1) }, &[1], &[1], force),
                Err(MembershipError::LastVoter { id: NodeId::new(1) })
            );
        }
    }

    #[test]
    fn promoting_an_unreachable_learner_to_a_single_voter_is_refused() {
        assert!(matches!(
            check(&Change::Promote { id: NodeId::new(2) }, &[1], &[1], false),
            Err(MembershipError::QuorumLoss { .. })
        ));
        assert_eq!(
            check(
                &Change::Promote { id: NodeId::new(2) },
                &[1],
                &[1, 2],
                false
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &Change::Promote { id: NodeId::new(4) },
                &[1, 2, 3],
                &[1, 2, 3],
                false
            ),
            Ok(())
        );
    }

    #[test]
    fn a_change_from_a_configuration_without_a_live_majority_is_refused() {
        // Joint consensus needs the old configuration too.
        assert!(matches!(
            check(
                &Change::Remove { id: NodeId::new(5) },
                &[1, 2, 3, 4, 5],
                &[1, 2],
                false
            ),
            Err(MembershipError::QuorumLoss { .. })
        ));
    }

    fn current(voters: &[u64], existing: Option<NodeInfo>, lag: Option<u64>) -> Current {
        Current {
            voters: set(voters),
            existing,
            lag,
            reachable: set(voters),
        }
    }

    fn request(change: Change) -> ChangeRequest {
        ChangeRequest {
            change,
            force: false,
        }
    }

    fn node(addr: &str) -> NodeInfo {
        NodeInfo {
            cluster_addr: addr.into(),
            ..NodeInfo::default()
        }
    }

    #[test]
    fn a_change_already_in_effect_is_done_so_retries_succeed() {
        let member = Some(node("n4:1"));
        let add = request(Change::AddLearner {
            id: NodeId::new(4),
            info: node("n4:1"),
        });
        assert_eq!(
            plan(&add, &current(&[1, 2, 3], member.clone(), None)),
            Ok(Plan::Done)
        );
        let promote = request(Change::Promote { id: NodeId::new(4) });
        assert_eq!(
            plan(&promote, &current(&[1, 4], member.clone(), None)),
            Ok(Plan::Done)
        );
        let demote = request(Change::Demote { id: NodeId::new(4) });
        assert_eq!(
            plan(&demote, &current(&[1, 2, 3], member, None)),
            Ok(Plan::Done)
        );
        let remove = request(Change::Remove { id: NodeId::new(4) });
        assert_eq!(
            plan(&remove, &current(&[1, 2, 3], None, None)),
            Ok(Plan::Done)
        );
    }

    #[test]
    fn each_change_maps_to_its_openraft_step() {
        let member = Some(node("n4:1"));
        let add = request(Change::AddLearner {
            id: NodeId::new(4),
            info: node("n4:1"),
        });
        assert_eq!(
            plan(&add, &current(&[1, 2, 3], None, None)),
            Ok(Plan::AddLearner)
        );
        assert_eq!(
            plan(
                &request(Change::Promote { id: NodeId::new(4) }),
                &current(&[1, 2, 3], member.clone(), Some(0))
            ),
            Ok(Plan::Change {
                members: ChangeMembers::AddVoterIds(set(&[4])),
                retain: false
            })
        );
        assert_eq!(
            plan(
                &request(Change::Demote { id: NodeId::new(4) }),
                &current(&[1, 2, 3, 4], member.clone(), None)
            ),
            Ok(Plan::Change {
                members: ChangeMembers::RemoveVoters(set(&[4])),
                retain: true
            })
        );
        assert_eq!(
            plan(
                &request(Change::Remove { id: NodeId::new(4) }),
                &current(&[1, 2, 3, 4], member.clone(), None)
            ),
            Ok(Plan::Change {
                members: ChangeMembers::RemoveVoters(set(&[4])),
                retain: false
            })
        );
        assert_eq!(
            plan(
                &request(Change::Remove { id: NodeId::new(4) }),
                &current(&[1, 2, 3], member, None)
            ),
            Ok(Plan::Change {
                members: ChangeMembers::RemoveNodes(set(&[4])),
                retain: false
            })
        );
    }

    #[test]
    fn conflicts_unknown_nodes_and_lagging_learners_are_refused() {
        let add = request(Change::AddLearner {
            id: NodeId::new(4),
            info: node("elsewhere:1"),
        });
        assert!(matches!(
            plan(&add, &current(&[1], Some(node("n4:1")), None)),
            Err(MembershipError::AddressConflict { id, .. }) if id == NodeId::new(4)
        ));
        for change in [
            Change::Promote { id: NodeId::new(9) },
            Change::Demote { id: NodeId::new(9) },
        ] {
            assert_eq!(
                plan(&request(change), &current(&[1], None, None)),
                Err(MembershipError::NotAMember { id: NodeId::new(9) })
            );
        }
        let member = Some(node("n4:1"));
        for lag in [None, Some(PROMOTE_MAX_LAG + 1)] {
            assert_eq!(
                plan(
                    &request(Change::Promote { id: NodeId::new(4) }),
                    &current(&[1], member.clone(), lag)
                ),
                Err(MembershipError::Lagging {
                    id: NodeId::new(4),
                    lag
                })
            );
        }
        let forced = ChangeRequest {
            change: Change::Promote { id: NodeId::new(4) },
            force: true,
        };
        assert!(plan(&forced, &current(&[1], member, None)).is_ok());
    }

    #[test]
    fn a_planned_voter_change_passes_the_quorum_check() {
        let mut now = current(&[1, 2, 3], Some(node("n2:1")), None);
        now.reachable = set(&[1, 2]);
        assert!(matches!(
            plan(&request(Change::Remove { id: NodeId::new(2) }), &now),
            Err(MembershipError::QuorumLoss { .. })
        ));
        // Removing a learner changes no voter and needs no quorum check.
        now.voters = set(&[1, 3]);
        assert!(plan(&request(Change::Remove { id: NodeId::new(2) }), &now).is_ok());
    }

    #[test]
    fn changes_that_keep_the_voters_are_recognised() {
        let voters = set(&[1, 2]);
        assert_eq!(
            voters_after(&voters, &Change::Promote { id: NodeId::new(2) }),
            None
        );
        assert_eq!(
            voters_after(&voters, &Change::Demote { id: NodeId::new(3) }),
            None
        );
        assert_eq!(
            voters_after(&voters, &Change::Remove { id: NodeId::new(3) }),
            None
        );
        assert_eq!(
            voters_after(
                &voters,
                &Change::AddLearner {
                    id: NodeId::new(3),
                    info: NodeInfo::default()
                }
            ),
            None
        );
        assert_eq!(
            voters_after(&voters, &Change::Remove { id: NodeId::new(2) }),
            Some(set(&[1]))
        );
    }
}
