//! What carries a node's cluster RPCs to a peer.
//!
//! [`crate::network::Peers`] does everything a node sends to another (openraft's RPCs, write
//! forwarding, read index, handover, membership relay, join): it encodes the payload, checks
//! the size cap, and records who answered. Only the last step, getting the encoded request to
//! the peer's cluster service and its answer back, goes through a [`Transport`], so that it
//! can be replaced as a whole. In production that is [`GrpcTransport`], mutual-TLS gRPC to the
//! peer's cluster port; the in-process test fixture (`crate::testing`, feature `testing`) hands
//! the request to the peer's [`crate::service::ClusterService`] directly, so its tests run the
//! same client and handler code with only the bytes on the wire skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tessera_proto::cluster::v1::cluster_client::ClusterClient;
use tessera_proto::cluster::v1::{JoinRequest, JoinResponse, RaftPayload};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::limits::MAX_CLUSTER_MESSAGE_BYTES;
use crate::network::PeerError;

/// How long to wait for a TCP+TLS connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A cluster-port RPC whose request and answer are a postcard [`RaftPayload`] (every RPC but
/// `Join`, which has its own protobuf messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterRpc {
    /// openraft's AppendEntries.
    AppendEntries,
    /// openraft's Vote.
    Vote,
    /// openraft's InstallSnapshot.
    InstallSnapshot,
    /// A write a follower forwards to the leader.
    Forward,
    /// A follower asking the leader for a read index.
    ReadIndex,
    /// A sealed leader asking a voter to take over.
    TimeoutNow,
    /// A membership call relayed to the leader.
    Membership,
    /// The leader asking a node who it is and what it holds.
    Probe,
}

/// Calls the method named after `rpc` on `target` with `request` and awaits its answer: the one
/// table from [`ClusterRpc`] to the cluster service's methods, shared by the gRPC client
/// ([`GrpcTransport`]) and the in-process fixture's handler calls (`crate::testing`), whose
/// methods have the same names. A new RPC is added here once and reaches both.
macro_rules! call_cluster_rpc {
    ($target:expr, $rpc:expr, $request:expr) => {
        match $rpc {
            ClusterRpc::AppendEntries => $target.append_entries($request).await,
            ClusterRpc::Vote => $target.vote($request).await,
            ClusterRpc::InstallSnapshot => $target.install_snapshot($request).await,
            ClusterRpc::Forward => $target.forward($request).await,
            ClusterRpc::ReadIndex => $target.read_index($request).await,
            ClusterRpc::TimeoutNow => $target.timeout_now($request).await,
            ClusterRpc::Membership => $target.membership($request).await,
            ClusterRpc::Probe => $target.probe($request).await,
        }
    };
}
#[cfg_attr(not(feature = "testing"), allow(unused_imports))]
pub(crate) use call_cluster_rpc;

/// Delivers one cluster RPC to the node whose advertised cluster address is `addr` and returns
/// its answer. Implementations report a peer that cannot be reached, or that does not answer
/// within `timeout`, as [`PeerError::Unreachable`], and an error status the peer answered
/// with as [`PeerError::Status`] (see [`PeerError::from_status`]).
#[tonic::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends `payload` as `rpc`.
    ///
    /// # Errors
    /// [`PeerError`] if the peer cannot be reached or answers with an error status.
    async fn call(
        &self,
        addr: &str,
        rpc: ClusterRpc,
        payload: RaftPayload,
        timeout: Duration,
    ) -> Result<RaftPayload, PeerError>;

    /// Sends a join request.
    ///
    /// # Errors
    /// [`PeerError`] if the peer cannot be reached or answers with an error status.
    async fn join(
        &self,
        addr: &str,
        request: JoinRequest,
        timeout: Duration,
    ) -> Result<JoinResponse, PeerError>;
}

/// A cluster-port client on `channel` that sends and accepts messages up to
/// [`MAX_CLUSTER_MESSAGE_BYTES`].
fn cluster_client(channel: Channel) -> ClusterClient<Channel> {
    ClusterClient::new(channel)
        .max_decoding_message_size(MAX_CLUSTER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_CLUSTER_MESSAGE_BYTES)
}

/// Mutual-TLS gRPC to peers' cluster ports over lazily connected channels, keyed by advertised
/// address.
pub struct GrpcTransport {
    tls: Mutex<ClientTlsConfig>,
    dial: BTreeMap<String, String>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl GrpcTransport {
    /// Peers reached with the given client TLS configuration (node certificate + node CA).
    /// `dial` translates a peer's advertised address to the address actually dialled (for a
    /// proxy or NAT between nodes); addresses not in it are dialled as advertised.
    pub fn new(tls: ClientTlsConfig, dial: BTreeMap<String, String>) -> Self {
        Self {
            tls: Mutex::new(tls),
            dial,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the client TLS configuration (a reloaded node certificate or CA bundle). Cached
    /// channels are forgotten, so the next call to each peer dials with the new identity; calls
    /// in flight keep the channel they hold and finish on it.
    pub fn set_tls(&self, tls: ClientTlsConfig) {
        *self
            .tls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tls;
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn client(&self, addr: &str) -> Result<ClusterClient<Channel>, PeerError> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = channels.get(addr) {
            return Ok(cluster_client(channel.clone()));
        }
        let bad = |source| PeerError::BadAddress {
            addr: addr.to_owned(),
            source,
        };
        let target = self.dial.get(addr).map_or(addr, String::as_str);
        let channel = Endpoint::from_shared(format!("https://{target}"))
            .map_err(bad)?
            .tls_config(
                self.tls
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone(),
            )
            .map_err(bad)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(cluster_client(channel))
    }
}

#[tonic::async_trait]
impl Transport for GrpcTransport {
    async fn call(
        &self,
        addr: &str,
        rpc: ClusterRpc,
        payload: RaftPayload,
        timeout: Duration,
    ) -> Result<RaftPayload, PeerError> {
        let mut client = self.client(addr)?;
        let mut req = tonic::Request::new(payload);
        req.set_timeout(timeout);
        call_cluster_rpc!(client, rpc, req)
            .map(tonic::Response::into_inner)
            .map_err(|status| PeerError::from_status(addr, status))
    }

    async fn join(
        &self,
        addr: &str,
        request: JoinRequest,
        timeout: Duration,
    ) -> Result<JoinResponse, PeerError> {
        let mut client = self.client(addr)?;
        let mut req = tonic::Request::new(request);
        req.set_timeout(timeout);
        client
            .join(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| PeerError::from_status(addr, status))
    }
}
