//! The client side of the cluster port: openraft's network (AppendEntries, Vote,
//! InstallSnapshot) and Tessera's own calls (forward a write, read index, leadership handover,
//! join), carried by a [`Transport`] (mutual-TLS gRPC in production).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_proto::cluster::v1::{JoinRequest, JoinResponse, RaftPayload};
use tonic::transport::ClientTlsConfig;

use crate::codec;
use crate::limits::MAX_CLUSTER_MESSAGE_BYTES;
use crate::membership::{MembershipCall, MembershipReply, ProbeReply};
use crate::membership_guard::is_not_a_member;
use crate::rpc::{ForwardReply, ReadIndexReply, TimeoutNowReply, TimeoutNowRequest};
use crate::transport::{ClusterRpc, GrpcTransport, Transport};
use crate::typ::{NodeId, NodeInfo, TypeConfig};

/// A failed call to a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached (connection refused, TLS failure, timeout).
    #[error("peer {addr} unreachable: {status}")]
    Unreachable {
        /// The peer's cluster address.
        addr: String,
        /// The transport status.
        status: tonic::Status,
    },
    /// The peer answered with an error status.
    #[error("peer {addr} answered {}: {}", .status.code(), .status.message())]
    Status {
        /// The peer's cluster address.
        addr: String,
        /// The status.
        status: tonic::Status,
    },
    /// A payload could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    /// The message is larger than the cluster port accepts; it was not sent.
    #[error("{what} for {addr} is {len} bytes, over the cluster port's limit of {limit} bytes")]
    TooLarge {
        /// The peer's cluster address.
        addr: String,
        /// What was being sent.
        what: &'static str,
        /// The encoded message size.
        len: usize,
        /// [`MAX_CLUSTER_MESSAGE_BYTES`].
        limit: usize,
    },
    /// The peer address is not a valid endpoint.
    #[error("invalid peer address {addr}: {source}")]
    BadAddress {
        /// The address.
        addr: String,
        /// tonic's error.
        #[source]
        source: tonic::transport::Error,
    },
}

impl PeerError {
    /// Whether the request may have reached the peer (anything but a refused connection or a
    /// local encoding failure).
    pub fn may_have_been_delivered(&self) -> bool {
        match self {
            Self::Unreachable { status, .. } => status.code() != tonic::Code::Unavailable,
            Self::Status { .. } => true,
            Self::Codec(_) | Self::TooLarge { .. } | Self::BadAddress { .. } => false,
        }
    }

    /// The error for `status` from the peer at `addr`: statuses that a failed connection or
    /// an expired deadline produce make the peer [`PeerError::Unreachable`].
    pub fn from_status(addr: &str, status: tonic::Status) -> Self {
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
                Self::Unreachable {
                    addr: addr.to_owned(),
                    status,
                }
            }
            _ => Self::Status {
                addr: addr.to_owned(),
                status,
            },
        }
    }
}

/// Everything a node sends to its peers, over a [`Transport`]; cheap to clone (all clones
/// share the transport and what they learned about peers).
#[derive(Clone)]
pub struct Peers {
    transport: Arc<dyn Transport>,
    /// When each peer last answered a Raft RPC (the leader's view of who is reachable).
    contacts: Arc<Mutex<HashMap<NodeId, Instant>>>,
    /// Whether the last peer that answered refused this node as not a member of its cluster.
    refused_as_non_member: Arc<AtomicBool>,
}

impl Peers {
    /// Peers reached over mutual-TLS gRPC (see [`GrpcTransport::new`]).
    pub fn new(tls: ClientTlsConfig, dial: BTreeMap<String, String>) -> Self {
        Self::over(Arc::new(GrpcTransport::new(tls, dial)))
    }

    /// Peers reached over `transport`.
    pub fn over(transport: Arc<dyn Transport>) -> Self {
        Self {
            transport,
            contacts: Arc::new(Mutex::new(HashMap::new())),
            refused_as_non_member: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the peer that answered this node last refused it as not a member (this node
    /// was removed from the cluster, and its peers' membership says so).
    pub fn refused_as_non_member(&self) -> bool {
        self.refused_as_non_member.load(Ordering::Relaxed)
    }

    fn record_contact(&self, id: NodeId) {
        self.contacts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, Instant::now());
    }

    /// How long ago node `id` last answered a Raft RPC from this node (`None`: never since
    /// this process started). On the leader, heartbeats keep this below the heartbeat interval
    /// for every reachable member.
    pub fn last_contact(&self, id: NodeId) -> Option<Duration> {
        self.contacts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .map(Instant::elapsed)
    }

    async fn call<Req, Resp>(
        &self,
        addr: &str,
        rpc: ClusterRpc,
        what: &'static str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let payload = RaftPayload {
            data: codec::encode(what, request)?,
        };
        // tonic would refuse it too, but only by resetting the stream (an opaque INTERNAL).
        let len = payload.encoded_len();
        if len > MAX_CLUSTER_MESSAGE_BYTES {
            return Err(PeerError::TooLarge {
                addr: addr.to_owned(),
                what,
                len,
                limit: MAX_CLUSTER_MESSAGE_BYTES,
            });
        }
        let answered = self.transport.call(addr, rpc, payload, timeout).await;
        match &answered {
            Ok(_) => self.refused_as_non_member.store(false, Ordering::Relaxed),
            Err(PeerError::Status { status, .. }) if is_not_a_member(status) => {
                self.refused_as_non_member.store(true, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        Ok(codec::decode(what, &answered?.data)?)
    }

    /// Relays a write to the leader at `addr`.
    ///
    /// # Errors
    /// [`PeerError`] if the leader cannot be reached or answers with an error status.
    pub async fn forward(
        &self,
        addr: &str,
        request: &tessera_state::Request,
        timeout: Duration,
    ) -> Result<ForwardReply, PeerError> {
        self.call(
            addr,
            ClusterRpc::Forward,
            "forwarded write",
            request,
            timeout,
        )
        .await
    }

    /// Asks the leader at `addr` for a read index.
    ///
    /// # Errors
    /// [`PeerError`] if the leader cannot be reached or answers with an error status.
    pub async fn read_index(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<ReadIndexReply, PeerError> {
        self.call(addr, ClusterRpc::ReadIndex, "read index", &(), timeout)
            .await
    }

    /// Asks the voter at `addr` to take over leadership from this (sealed) leader.
    ///
    /// # Errors
    /// [`PeerError`] if the voter cannot be reached or answers with an error status.
    pub async fn timeout_now(
        &self,
        addr: &str,
        request: &TimeoutNowRequest,
        timeout: Duration,
    ) -> Result<TimeoutNowReply, PeerError> {
        self.call(
            addr,
            ClusterRpc::TimeoutNow,
            "timeout-now request",
            request,
            timeout,
        )
        .await
    }

    /// Relays a membership call to the leader at `addr`.
    ///
    /// # Errors
    /// [`PeerError`] if the leader cannot be reached or answers with an error status.
    pub async fn membership(
        &self,
        addr: &str,
        call: &MembershipCall,
        timeout: Duration,
    ) -> Result<MembershipReply, PeerError> {
        self.call(
            addr,
            ClusterRpc::Membership,
            "membership call",
            call,
            timeout,
        )
        .await
    }

    /// Asks the node at `addr` who it is and what it holds.
    ///
    /// # Errors
    /// [`PeerError`] if the node cannot be reached or answers with an error status.
    pub async fn probe(&self, addr: &str, timeout: Duration) -> Result<ProbeReply, PeerError> {
        self.call(addr, ClusterRpc::Probe, "probe", &(), timeout)
            .await
    }

    /// Asks the node at `addr` to admit `node_id` as a voter.
    ///
    /// # Errors
    /// [`PeerError`] if the node cannot be reached or refuses.
    pub async fn join(
        &self,
        addr: &str,
        node_id: NodeId,
        node: &NodeInfo,
        timeout: Duration,
    ) -> Result<JoinResponse, PeerError> {
        let request = JoinRequest {
            node_id: node_id.get(),
            api_addr: node.api_addr.clone(),
            cluster_addr: node.cluster_addr.clone(),
            region: node.region.clone(),
            zone: node.zone.clone(),
        };
        self.transport.join(addr, request, timeout).await
    }
}

impl RaftNetworkFactory<TypeConfig> for Peers {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerNetwork {
        PeerNetwork {
            peers: self.clone(),
            target,
            addr: node.cluster_addr.clone(),
        }
    }
}

/// openraft's connection to one peer.
pub struct PeerNetwork {
    peers: Peers,
    target: NodeId,
    addr: String,
}

impl PeerNetwork {
    async fn raft_call<Req, Resp, E>(
        &self,
        rpc: ClusterRpc,
        what: &'static str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let result: Result<Resp, RaftError<NodeId, E>> = self
            .peers
            .call(&self.addr, rpc, what, request, option.hard_ttl())
            .await
            .map_err(|e| match e {
                PeerError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                _ => RPCError::Network(NetworkError::new(&e)),
            })?;
        self.peers.record_contact(self.target);
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.raft_call(ClusterRpc::AppendEntries, "append entries", &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.raft_call(
            ClusterRpc::InstallSnapshot,
            "install snapshot",
            &rpc,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.raft_call(ClusterRpc::Vote, "vote", &rpc, &option)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[tokio::test]
    async fn an_invalid_peer_address_keeps_tonic_s_error_and_was_not_delivered() {
        let peers = Peers::new(ClientTlsConfig::new(), BTreeMap::new());
        let e = peers
            .read_index("not a host:port", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, PeerError::BadAddress { addr, .. } if addr == "not a host:port"),
            "{e:?}"
        );
        let source = e.source().expect("a source");
        assert!(
            source.downcast_ref::<tonic::transport::Error>().is_some(),
            "{source:?}"
        );
        assert!(!e.may_have_been_delivered());
    }
}
