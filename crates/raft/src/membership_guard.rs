//! Who may call the cluster port.
//!
//! The TLS handshake only proves that a peer holds a certificate from the node CA. That is not
//! enough: a removed node keeps its certificate, and a spare certificate from the same CA names
//! a node that was never added. Either could otherwise send `AppendEntries` with a high term,
//! start elections or push writes. So every cluster RPC but `Join` requires the certificate to
//! name `node-<id>` (see [`node_identity`]) for an `id` in this node's current membership
//! (voter or learner).
//!
//! Two cases need no membership:
//!
//! - `Join` itself, which a node sends before it is a member; it checks instead that the
//!   certificate names the node id being joined (`crate::service`).
//! - A node that is in no cluster yet (started with `join`, not yet added) accepts any node
//!   identity: the leader adding it as a learner sends its first `AppendEntries` before this node
//!   can know the membership, which arrives in that replication. It has no state to protect.
//!
//! Membership is read from openraft's metrics (the effective configuration, including a learner
//! being added); until the Raft core has reported it after a start, from the membership stored
//! with the applied state.

use std::sync::Arc;

use openraft::Membership;
use tonic::Status;

use crate::state_machine::SharedState;
use crate::tls;
use crate::typ::{NodeId, NodeInfo, Raft};

/// The identity a node certificate carries to act as node `id`: `node-<id>`, as its first URI
/// SAN or else its subject CN.
pub fn node_identity(id: NodeId) -> String {
    format!("node-{id}")
}

/// The node id a certificate identity names, if it is exactly `node-<id>` in the form
/// [`node_identity`] writes (no sign, no leading zeros).
pub fn node_id_of(identity: &str) -> Option<NodeId> {
    let id: NodeId = identity.strip_prefix("node-")?.parse().ok()?;
    (node_identity(id) == identity).then_some(id)
}

/// Why a cluster RPC was refused. Sent to the caller as `PERMISSION_DENIED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request did not come over mutual TLS, or the certificate names nothing.
    #[error("the peer certificate names no identity")]
    NoIdentity,
    /// The certificate names something other than `node-<id>`.
    #[error("the peer certificate names {identity:?}, not a node (node-<id>)")]
    NotANode {
        /// The identity the certificate names.
        identity: String,
    },
    /// The certificate names a node that is not in this node's membership.
    #[error("node {id} is not a member of this cluster")]
    NotAMember {
        /// The node the certificate names.
        id: NodeId,
    },
}

/// Metadata key on a refusal naming why, so that a removed node can tell from its leader's
/// answer that it is no longer a member.
pub const REFUSAL_METADATA: &str = "tessera-cluster-refusal";

/// [`REFUSAL_METADATA`] value of [`Refusal::NotAMember`].
const NOT_A_MEMBER: &str = "not-a-member";

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let mut status = Status::permission_denied(refusal.to_string());
        if let Refusal::NotAMember { .. } = refusal {
            status.metadata_mut().insert(
                REFUSAL_METADATA,
                tonic::metadata::MetadataValue::from_static(NOT_A_MEMBER),
            );
        }
        status
    }
}

/// Whether `status` is a peer's refusal because the caller is not in its membership.
pub fn is_not_a_member(status: &Status) -> bool {
    status.code() == tonic::Code::PermissionDenied
        && status
            .metadata()
            .get(REFUSAL_METADATA)
            .is_some_and(|v| v == NOT_A_MEMBER)
}

/// Whether a caller whose certificate names `identity` may call the cluster port of a node
/// whose membership is `membership`. Returns the caller's node id.
///
/// # Errors
/// [`Refusal`] naming what is missing.
pub fn check(
    identity: Option<&str>,
    membership: &Membership<NodeId, NodeInfo>,
) -> Result<NodeId, Refusal> {
    let identity = identity.ok_or(Refusal::NoIdentity)?;
    let id = node_id_of(identity).ok_or_else(|| Refusal::NotANode {
        identity: identity.to_owned(),
    })?;
    if is_empty(membership) || membership.get_node(&id).is_some() {
        Ok(id)
    } else {
        Err(Refusal::NotAMember { id })
    }
}

fn is_empty(membership: &Membership<NodeId, NodeInfo>) -> bool {
    membership.nodes().next().is_none()
}

/// Applies [`check`] to incoming cluster RPCs with this node's current membership.
#[derive(Clone)]
pub struct MembershipGuard {
    raft: Raft,
    shared: Arc<SharedState>,
}

impl MembershipGuard {
    /// A guard reading the membership of `raft`, falling back to the applied state in `shared`
    /// until `raft` has reported one.
    pub fn new(raft: Raft, shared: Arc<SharedState>) -> Self {
        Self { raft, shared }
    }

    /// Admits `request` if its peer certificate names a current member.
    ///
    /// # Errors
    /// `PERMISSION_DENIED` naming the reason.
    pub fn admit<T>(&self, request: &tonic::Request<T>) -> Result<NodeId, Status> {
        let identity = tls::peer_identity(request);
        check(identity.as_deref(), &self.membership()).map_err(|refusal| {
            tracing::info!(%refusal, "cluster RPC refused");
            Status::from(refusal)
        })
    }

    fn membership(&self) -> Membership<NodeId, NodeInfo> {
        let effective = Arc::clone(&self.raft.metrics().borrow().membership_config);
        if is_empty(effective.membership()) {
            self.shared.read().membership.membership().clone()
        } else {
            effective.membership().clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn membership(voters: &[u64], learners: &[u64]) -> Membership<NodeId, NodeInfo> {
        let nodes: BTreeMap<NodeId, NodeInfo> = voters
            .iter()
            .chain(learners)
            .map(|id| (NodeId::new(*id), NodeInfo::default()))
            .collect();
        let config = vec![voters
            .iter()
            .copied()
            .map(NodeId::new)
            .collect::<BTreeSet<_>>()];
        Membership::new(config, nodes)
    }

    #[test]
    fn node_identities_parse_only_in_canonical_form() {
        assert_eq!(node_id_of("node-1"), Some(NodeId::new(1)));
        assert_eq!(
            node_id_of(&node_identity(NodeId::new(u64::MAX))),
            Some(NodeId::new(u64::MAX))
        );
        for other in [
            "node-", "node-01", "node-+1", "node--1", "node-1x", "Node-1", "node1", "admin", "",
        ] {
            assert_eq!(node_id_of(other), None, "{other:?}");
        }
    }

    #[test]
    fn voters_and_learners_are_admitted() {
        let m = membership(&[1, 2], &[3]);
        assert_eq!(check(Some("node-2"), &m), Ok(NodeId::new(2)));
        assert_eq!(check(Some("node-3"), &m), Ok(NodeId::new(3)));
    }

    #[test]
    fn a_node_outside_the_membership_is_refused() {
        let m = membership(&[1, 2], &[3]);
        assert_eq!(
            check(Some("node-9"), &m),
            Err(Refusal::NotAMember { id: NodeId::new(9) })
        );
        let status = Status::from(Refusal::NotAMember { id: NodeId::new(9) });
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(is_not_a_member(&status));
        assert!(!is_not_a_member(&Status::from(Refusal::NoIdentity)));
    }

    #[test]
    fn a_certificate_without_a_node_identity_is_refused_even_before_membership() {
        for m in [membership(&[1], &[]), membership(&[], &[])] {
            assert_eq!(check(None, &m), Err(Refusal::NoIdentity));
            assert_eq!(
                check(Some("admin"), &m),
                Err(Refusal::NotANode {
                    identity: "admin".into()
                })
            );
        }
    }

    #[test]
    fn a_node_in_no_cluster_yet_admits_any_node_so_it_can_be_added() {
        assert_eq!(
            check(Some("node-7"), &membership(&[], &[])),
            Ok(NodeId::new(7))
        );
    }
}
