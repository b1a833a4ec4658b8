//! Cluster membership: list the members, add a learner, promote, demote, remove. Every call
//! can go to any node (it relays to the leader) and fails over like the other cluster-wide
//! calls; every change is idempotent, so a retry after a lost answer is safe. Each answers the
//! members after the call.

use tessera_proto::v1 as pb;
use tessera_proto::v1::system_client::SystemClient;

use super::Client;
use crate::error::Error;

/// A node to add as a learner: its id, addresses and placement labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewLearner {
    /// Its node id (its node certificate names `node-<id>`).
    pub node_id: u64,
    /// Where clients reach it, `host:port`.
    pub api_addr: String,
    /// Where peers reach it, `host:port`.
    pub cluster_addr: String,
    /// Region label.
    pub region: String,
    /// Zone label.
    pub zone: String,
}

impl Client {
    rpc_methods! {
        /// The members as the leader sees them (needs `operator:ListMembers`).
        ///
        /// # Errors
        /// [`Error`] from the cluster.
        pub async fn members(&self) -> pb::MembersResponse
            = call(SystemClient::members, pb::MembersRequest {});

        /// Adds a node as a learner (needs `operator:ChangeMembership`). The node must run with
        /// an empty data directory; one holding data of an earlier membership is refused
        /// (`FAILED_PRECONDITION`, `STALE_NODE_DATA`).
        ///
        /// # Errors
        /// [`Error`] from the cluster.
        pub async fn add_learner(&self, learner: &NewLearner) -> pb::MembersResponse
            = call(SystemClient::add_learner, pb::AddLearnerRequest {
                node_id: learner.node_id,
                api_addr: learner.api_addr.clone(),
                cluster_addr: learner.cluster_addr.clone(),
                region: learner.region.clone(),
                zone: learner.zone.clone(),
            });

        /// Makes learner `node_id` a voter.
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` if it would lose quorum (unless `force`) or the
        /// learner is far behind.
        pub async fn promote(&self, node_id: u64, force: bool) -> pb::MembersResponse
            = call(SystemClient::promote, pb::MemberChangeRequest { node_id, force });

        /// Makes voter `node_id` a learner.
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` if it would lose quorum (unless `force`).
        pub async fn demote(&self, node_id: u64, force: bool) -> pb::MembersResponse
            = call(SystemClient::demote, pb::MemberChangeRequest { node_id, force });

        /// Removes `node_id` from the cluster.
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` if it would lose quorum (unless `force`).
        pub async fn remove_member(&self, node_id: u64, force: bool) -> pb::MembersResponse
            = call(SystemClient::remove_member, pb::MemberChangeRequest { node_id, force });
    }
}
