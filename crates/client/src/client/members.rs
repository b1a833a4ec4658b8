//! Cluster membership: list the members, add a learner, promote, demote, remove. Every call
//! can go to any node (it relays to the leader) and fails over like the other cluster-wide
//! calls; every change is idempotent, so a retry after a lost answer is safe. Each answers the
//! members after the call.

use tessera_proto::v1 as pb;
use tessera_proto::v1::system_client::SystemClient;
use tonic::transport::Channel;

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
    /// A `System` membership call with failover; `message` is cloned for each attempt.
    async fn members_call<M, F, Fut>(
        &self,
        message: M,
        call: F,
    ) -> Result<pb::MembersResponse, Error>
    where
        M: Clone,
        F: Fn(SystemClient<Channel>, tonic::Request<M>) -> Fut,
        Fut: std::future::Future<
            Output = Result<tonic::Response<pb::MembersResponse>, tonic::Status>,
        >,
    {
        self.with_failover(|channel| {
            call(SystemClient::new(channel), self.request(message.clone()))
        })
        .await
    }

    /// The members as the leader sees them (needs `operator:ListMembers`).
    ///
    /// # Errors
    /// [`Error`] from the cluster.
    pub async fn members(&self) -> Result<pb::MembersResponse, Error> {
        self.members_call(pb::MembersRequest {}, |mut c, r| async move {
            c.members(r).await
        })
        .await
    }

    /// Adds a node as a learner (needs `operator:ChangeMembership`). The node must run with an
    /// empty data directory; one holding data of an earlier membership is refused
    /// (`FAILED_PRECONDITION`, `STALE_NODE_DATA`).
    ///
    /// # Errors
    /// [`Error`] from the cluster.
    pub async fn add_learner(&self, learner: &NewLearner) -> Result<pb::MembersResponse, Error> {
        let message = pb::AddLearnerRequest {
            node_id: learner.node_id,
            api_addr: learner.api_addr.clone(),
            cluster_addr: learner.cluster_addr.clone(),
            region: learner.region.clone(),
            zone: learner.zone.clone(),
        };
        self.members_call(message, |mut c, r| async move { c.add_learner(r).await })
            .await
    }

    /// Makes learner `node_id` a voter.
    ///
    /// # Errors
    /// [`Error`]; `FAILED_PRECONDITION` if it would lose quorum (unless `force`) or the learner
    /// is far behind.
    pub async fn promote(&self, node_id: u64, force: bool) -> Result<pb::MembersResponse, Error> {
        let message = pb::MemberChangeRequest { node_id, force };
        self.members_call(message, |mut c, r| async move { c.promote(r).await })
            .await
    }

    /// Makes voter `node_id` a learner.
    ///
    /// # Errors
    /// [`Error`]; `FAILED_PRECONDITION` if it would lose quorum (unless `force`).
    pub async fn demote(&self, node_id: u64, force: bool) -> Result<pb::MembersResponse, Error> {
        let message = pb::MemberChangeRequest { node_id, force };
        self.members_call(message, |mut c, r| async move { c.demote(r).await })
            .await
    }

    /// Removes `node_id` from the cluster.
    ///
    /// # Errors
    /// [`Error`]; `FAILED_PRECONDITION` if it would lose quorum (unless `force`).
    pub async fn remove_member(
        &self,
        node_id: u64,
        force: bool,
    ) -> Result<pb::MembersResponse, Error> {
        let message = pb::MemberChangeRequest { node_id, force };
        self.members_call(message, |mut c, r| async move { c.remove_member(r).await })
            .await
    }
}
