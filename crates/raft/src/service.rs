//! The server side of the cluster port: openraft RPCs from peers, writes forwarded by
//! followers, read-index requests, leadership handover requests and join requests.
//!
//! Every RPC but `Join` is admitted only from a current member ([`MembershipGuard`]); `Join`
//! requires the certificate to name the node id being joined, and `TimeoutNow` the leader
//! asking. Messages are capped at
//! [`MAX_CLUSTER_MESSAGE_BYTES`] in both directions.

use std::collections::BTreeSet;
use std::sync::Arc;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::Serialize;
use tessera_proto::cluster::v1::cluster_server::{Cluster, ClusterServer};
use tessera_proto::cluster::v1::{JoinRequest, JoinResponse, RaftPayload};
use tonic::{Request, Response, Status};

use crate::admin::MembershipAdmin;
use crate::codec;
use crate::group_commit::{GroupCommit, WriteFailure};
use crate::leadership::Leadership;
use crate::limits::MAX_CLUSTER_MESSAGE_BYTES;
use crate::membership::MembershipCall;
use crate::membership_guard::{node_id_of, node_identity, MembershipGuard};
use crate::rpc::{ForwardReply, LeaderHint, ReadIndexReply, TimeoutNowRequest};
use crate::state_machine::SharedState;
use crate::tls;
use crate::typ::{NodeId, NodeInfo, Raft};

/// Fails with `PERMISSION_DENIED` unless the caller's node certificate names node `id`, the
/// node it claims to act as (`acting`, for the message).
fn require_identity(peer: Option<String>, id: NodeId, acting: &str) -> Result<(), Status> {
    let expected = node_identity(id);
    if peer.as_deref() == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "a node {acting} {id} must present a certificate for {expected:?}, got {peer:?}"
        )))
    }
}

/// Implements the `tessera.cluster.v1.Cluster` gRPC service.
pub struct ClusterService {
    raft: Raft,
    guard: MembershipGuard,
    write_timeout: std::time::Duration,
    leadership: Arc<Leadership>,
    admin: MembershipAdmin,
    writes: GroupCommit,
}

impl ClusterService {
    /// A service driving `raft`, whose applied state is `shared`; forwarded writes wait at
    /// most `write_timeout` for commit, and are refused while `leadership` hands leadership
    /// over; membership calls and probes are answered by `admin`. Forwarded writes join the
    /// leader's shared entries through `writes`, with its own callers' writes.
    pub fn new(
        raft: Raft,
        shared: Arc<SharedState>,
        write_timeout: std::time::Duration,
        leadership: Arc<Leadership>,
        admin: MembershipAdmin,
        writes: GroupCommit,
    ) -> Self {
        Self {
            guard: MembershipGuard::new(raft.clone(), shared),
            raft,
            write_timeout,
            leadership,
            admin,
            writes,
        }
    }

    /// The gRPC server for this service, with the cluster port's message size limits.
    pub fn into_server(self) -> ClusterServer<Self> {
        ClusterServer::new(self)
            .max_decoding_message_size(MAX_CLUSTER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_CLUSTER_MESSAGE_BYTES)
    }

    /// Admits a node as a voter; must run on the leader.
    async fn admit(&self, id: NodeId, node: NodeInfo) -> Result<(), AdmitError> {
        if self.leadership.refuses_writes() {
            return Err(AdmitError::NotLeader);
        }
        let known = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            let is_voter = membership.voter_ids().any(|v| v == id);
            (is_voter, membership.get_node(&id).cloned())
        };
        match known {
            (true, Some(existing)) if existing == node => return Ok(()),
            (_, Some(existing)) if existing != node => {
                return Err(AdmitError::Refused(Status::already_exists(format!(
                    "node id {id} is already a member with addresses {existing}"
                ))))
            }
            _ => {}
        }
        self.raft
            .add_learner(id, node, true)
            .await
            .map_err(AdmitError::from_raft)?;
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(AdmitError::from_raft)?;
        Ok(())
    }
}

enum AdmitError {
    NotLeader,
    Refused(Status),
}

impl AdmitError {
    fn from_raft(e: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>) -> Self {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => Self::NotLeader,
            RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::InProgress(_),
            )) => Self::Refused(Status::unavailable(
                "another membership change is in progress; retry",
            )),
            other => Self::Refused(Status::internal(format!(
                "membership change failed: {other}"
            ))),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    req: Request<RaftPayload>,
) -> Result<T, Status> {
    codec::decode(what, &req.into_inner().data)
        .map_err(|e| Status::invalid_argument(format!("undecodable {e}")))
}

fn reply<T: Serialize>(what: &'static str, value: &T) -> Result<Response<RaftPayload>, Status> {
    codec::encode(what, value)
        .map(|data| Response::new(RaftPayload { data }))
        .map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.guard.admit(&request)?;
        let rpc: openraft::raft::AppendEntriesRequest<crate::typ::TypeConfig> =
            decode("append entries", request)?;
        let result = self.raft.append_entries(rpc).await;
        reply("append entries result", &result)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.guard.admit(&request)?;
        let rpc = decode("vote", request)?;
        let result = self.raft.vote(rpc).await;
        reply("vote result", &result)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.guard.admit(&request)?;
        let rpc = decode("install snapshot", request)?;
        let result = self.raft.install_snapshot(rpc).await;
        reply("install snapshot result", &result)
    }

    async fn forward(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.guard.admit(&request)?;
        let write: tessera_state::Request = decode("forwarded write", request)?;
        if self.leadership.refuses_writes() {
            // Handing leadership over: the follower retries and reaches the next leader.
            return reply(
                "forward reply",
                &ForwardReply::NotLeader(LeaderHint::of(&self.raft)),
            );
        }
        let outcome = tokio::time::timeout(self.write_timeout, self.writes.write(write)).await;
        let answer = match outcome {
            Ok(Ok(written)) => ForwardReply::Applied {
                index: written.index,
                response: written.response,
            },
            Ok(Err(WriteFailure::Raft(e)))
                if matches!(
                    *e,
                    RaftError::APIError(ClientWriteError::ForwardToLeader(_))
                ) =>
            {
                ForwardReply::NotLeader(LeaderHint::of(&self.raft))
            }
            Ok(Err(e)) => ForwardReply::Failed {
                reason: e.to_string(),
            },
            Err(_) => ForwardReply::Failed {
                reason: "the leader did not commit the write in time".into(),
            },
        };
        reply("forward reply", &answer)
    }

    async fn read_index(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.guard.admit(&request)?;
        let answer = match self.raft.get_read_log_id().await {
            Ok((read_log_id, _)) => ReadIndexReply::Index(read_log_id.map_or(0, |id| id.index)),
            Err(RaftError::APIError(_)) => ReadIndexReply::NotLeader(LeaderHint::of(&self.raft)),
            Err(e) => ReadIndexReply::Failed {
                reason: e.to_string(),
            },
        };
        reply("read index reply", &answer)
    }

    async fn timeout_now(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.guard.admit(&request)?;
        let peer = tls::peer_identity(&request);
        let ask: TimeoutNowRequest = decode("timeout-now request", request)?;
        require_identity(peer, ask.leader_id, "asking for a handover as leader")?;
        let answer = self.leadership.answer_timeout_now(&self.raft, &ask).await;
        reply("timeout-now reply", &answer)
    }

    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let peer = tls::peer_identity(&request);
        let req = request.into_inner();
        let id = NodeId::new(req.node_id);
        require_identity(peer, id, "joining as")?;
        let node = NodeInfo {
            api_addr: req.api_addr.clone(),
            cluster_addr: req.cluster_addr.clone(),
            region: req.region.clone(),
            zone: req.zone.clone(),
        };
        match self.admit(id, node).await {
            Ok(()) => Ok(Response::new(JoinResponse {
                admitted: true,
                leader_id: self.raft.metrics().borrow().id.get(),
                leader_cluster_addr: String::new(),
            })),
            Err(AdmitError::Refused(status)) => Err(status),
            Err(AdmitError::NotLeader) => {
                let hint = LeaderHint::of(&self.raft);
                Ok(Response::new(JoinResponse {
                    admitted: false,
                    leader_id: hint.leader_id.unwrap_or_default().get(),
                    leader_cluster_addr: hint.leader.map(|n| n.cluster_addr).unwrap_or_default(),
                }))
            }
        }
    }

    async fn membership(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.guard.admit(&request)?;
        let call: MembershipCall = decode("membership call", request)?;
        let answer = self.admin.run(call).await;
        reply("membership reply", &answer)
    }

    async fn probe(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        // The leader probes a node before it is a member: any node certificate will do.
        let peer = tls::peer_identity(&request);
        if peer.as_deref().and_then(node_id_of).is_none() {
            return Err(Status::permission_denied(format!(
                "a probe must come from a node certificate (node-<id>), got {peer:?}"
            )));
        }
        let () = decode("probe", request)?;
        reply("probe reply", &self.admin.probe_reply().await)
    }
}
