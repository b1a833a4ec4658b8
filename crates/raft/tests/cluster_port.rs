//! The cluster port against real nodes over mutual TLS: only current members may call it (a
//! node joining is admitted as before), and messages over the size cap are refused on both
//! sides without harming the node. Also the accept loop's connection budget, which the API
//! port uses, and group commit: concurrent writes, the leader's own and those followers
//! forward through this port, share entries and each get their own result.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::ServerState;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tessera_crypto::spec::KeySpec;
use tessera_proto::cluster::v1::cluster_client::ClusterClient;
use tessera_proto::cluster::v1::cluster_server::{Cluster, ClusterServer};
use tessera_proto::cluster::v1::{JoinRequest, JoinResponse, RaftPayload};
use tessera_raft::limits::MAX_CLUSTER_MESSAGE_BYTES;
use tessera_raft::network::{PeerError, Peers};
use tessera_raft::rpc::TimeoutNowRequest;
use tessera_raft::tls::{self, TlsFiles, TlsIncoming};
use tessera_raft::typ::{SnapshotMeta, TypeConfig, Vote};
use tessera_raft::{NodeConfig, NodeId, NodeInfo, RaftNode, RaftSettings};
use tessera_state::{
    CallerId, Command, KeyId, KeyName, KeyOrigin, NewKey, Request, RequestId, Response,
};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

mod support;

use support::init_seal;

const WAIT: Duration = Duration::from_secs(60);

/// A node CA and node certificates for `ids`, as `tessera pki init` lays them out.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(ids: &[u64]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "test node CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        for id in ids {
            let mut params =
                CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                    .unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("node-{id}"));
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(dir.path().join(format!("node{id}.pem")), cert.pem()).unwrap();
            std::fs::write(
                dir.path().join(format!("node{id}-key.pem")),
                key.serialize_pem(),
            )
            .unwrap();
        }
        Self { dir }
    }

    fn files(&self, id: u64) -> TlsFiles {
        let path = |name: String| -> PathBuf { self.dir.path().join(name) };
        TlsFiles {
            trusted_ca: path("ca.pem".into()),
            cert: path(format!("node{id}.pem")),
            key: path(format!("node{id}-key.pem")),
        }
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start_node(pki: &Pki, id: u64, data: &Path) -> (RaftNode, String) {
    start_node_batching(pki, id, data, RaftSettings::default().max_batch_requests).await
}

/// A node whose leader puts at most `max_batch_requests` writes in one entry.
async fn start_node_batching(
    pki: &Pki,
    id: u64,
    data: &Path,
    max_batch_requests: usize,
) -> (RaftNode, String) {
    tls::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = NodeConfig {
        id: NodeId::new(id),
        info: NodeInfo {
            api_addr: "127.0.0.1:1".into(),
            cluster_addr: addr.clone(),
            region: String::new(),
            zone: String::new(),
        },
        data_dir: data.join(format!("node{id}")),
        tls: pki.files(id),
        settings: RaftSettings {
            heartbeat: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            lease: Duration::from_millis(300),
            max_batch_requests,
            ..RaftSettings::default()
        },
        dial: Default::default(),
        accept: Default::default(),
    };
    (RaftNode::start(config, listener).await.unwrap(), addr)
}

async fn bootstrapped_leader(pki: &Pki, data: &Path) -> (RaftNode, String) {
    let (node, addr) = start_node(pki, 1, data).await;
    node.bootstrap().await.unwrap();
    eventually("node 1 to lead", || async {
        node.metrics().state == ServerState::Leader
    })
    .await;
    (node, addr)
}

/// A raw cluster-port client presenting node `id`'s certificate, without size limits of its own.
fn client_as(pki: &Pki, id: u64, addr: &str) -> ClusterClient<Channel> {
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls::client_config(&pki.files(id)).unwrap())
        .unwrap()
        .connect_lazy();
    ClusterClient::new(channel)
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX)
}

fn payload<T: serde::Serialize>(value: &T) -> tonic::Request<RaftPayload> {
    tonic::Request::new(RaftPayload {
        data: tessera_raft::codec::encode("test payload", value).unwrap(),
    })
}

fn forwarded_write(description: String) -> Request {
    Request {
        request_id: RequestId::parse("test-write").unwrap(),
        caller: CallerId::of("test"),
        fingerprint: [0; 32],
        bindings: Vec::new(),
        command: Command::UpdateDescription {
            key_id: KeyId::from_random_bytes([1; 16]),
            description,
        },
    }
}

fn high_vote(from: u64) -> Vote {
    Vote::new_committed(1000, NodeId::new(from))
}

fn code_of<T>(result: Result<T, tonic::Status>) -> (Code, String) {
    match result {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_a_non_member_is_refused_on_every_cluster_rpc() {
    // Node 9 holds a valid certificate from the node CA but was never added.
    let pki = Pki::new(&[1, 9]);
    let data = tempfile::tempdir().unwrap();
    let (node, addr) = bootstrapped_leader(&pki, data.path()).await;
    let term = node.metrics().current_term;
    let mut spare = client_as(&pki, 9, &addr);

    let append = AppendEntriesRequest::<TypeConfig> {
        vote: high_vote(9),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    let calls = [
        (
            "AppendEntries",
            code_of(spare.append_entries(payload(&append)).await),
        ),
        (
            "Vote",
            code_of(
                spare
                    .vote(payload(&VoteRequest::new(high_vote(9), None)))
                    .await,
            ),
        ),
        (
            "InstallSnapshot",
            code_of(
                spare
                    .install_snapshot(payload(&InstallSnapshotRequest::<TypeConfig> {
                        vote: high_vote(9),
                        meta: SnapshotMeta::default(),
                        offset: 0,
                        data: Vec::new(),
                        done: false,
                    }))
                    .await,
            ),
        ),
        (
            "Forward",
            code_of(spare.forward(payload(&forwarded_write("x".into()))).await),
        ),
        ("ReadIndex", code_of(spare.read_index(payload(&())).await)),
        (
            "TimeoutNow",
            code_of(
                spare
                    .timeout_now(payload(&TimeoutNowRequest {
                        leader_id: NodeId::new(9),
                        term: 1000,
                        last_log_index: 0,
                    }))
                    .await,
            ),
        ),
    ];
    for (rpc, (code, message)) in calls {
        assert_eq!(code, Code::PermissionDenied, "{rpc}: {message}");
        assert!(
            message.contains("node 9 is not a member"),
            "{rpc}: {message}"
        );
    }
    let metrics = node.metrics();
    assert_eq!(metrics.state, ServerState::Leader);
    assert_eq!(
        metrics.current_term, term,
        "a refused vote changed the term"
    );

    // A member passes the guard: its vote request reaches Raft and is answered.
    let mut member = client_as(&pki, 1, &addr);
    let stale = VoteRequest::<NodeId>::new(Vote::new(0, NodeId::new(1)), None);
    assert_eq!(code_of(member.vote(payload(&stale)).await).0, Code::Ok);
    node.shutdown().await;
}

/// Joins `joiner` (node 2) through `leader` (node 1, at `leader_addr`) and waits until both
/// see the voters {1, 2} led by node 1.
async fn join_second_voter(leader: &RaftNode, leader_addr: &str, joiner: &RaftNode) {
    tokio::time::timeout(WAIT, joiner.join(&[leader_addr.to_owned()]))
        .await
        .expect("node 2 joins in time")
        .unwrap();
    eventually("node 2 to become a voter that follows node 1", || async {
        [leader, joiner].iter().all(|node| {
            let metrics = node.metrics();
            metrics
                .membership_config
                .membership()
                .voter_ids()
                .eq([1, 2].map(NodeId::new))
                && metrics.current_leader == Some(NodeId::new(1))
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_is_added_and_then_admitted_as_a_member() {
    let pki = Pki::new(&[1, 2]);
    let data = tempfile::tempdir().unwrap();
    let (leader, leader_addr) = bootstrapped_leader(&pki, data.path()).await;
    let (joiner, joiner_addr) = start_node(&pki, 2, data.path()).await;
    join_second_voter(&leader, &leader_addr, &joiner).await;
    // Now each accepts the other's certificate.
    let stale = VoteRequest::<NodeId>::new(Vote::new(0, NodeId::new(2)), None);
    let mut to_leader = client_as(&pki, 2, &leader_addr);
    assert_eq!(code_of(to_leader.vote(payload(&stale)).await).0, Code::Ok);
    let stale = VoteRequest::<NodeId>::new(Vote::new(0, NodeId::new(1)), None);
    let mut to_joiner = client_as(&pki, 1, &joiner_addr);
    assert_eq!(code_of(to_joiner.vote(payload(&stale)).await).0, Code::Ok);
    joiner.shutdown().await;
    leader.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_refused_and_the_node_keeps_serving() {
    let pki = Pki::new(&[1]);
    let data = tempfile::tempdir().unwrap();
    let (node, addr) = bootstrapped_leader(&pki, data.path()).await;
    let mut member = client_as(&pki, 1, &addr);

    let oversized = tonic::Request::new(RaftPayload {
        data: vec![0; MAX_CLUSTER_MESSAGE_BYTES + 1],
    });
    let (code, message) = code_of(member.append_entries(oversized).await);
    assert_eq!(code, Code::OutOfRange, "{message}");
    assert!(message.contains("message length too large"), "{message}");

    let stale = VoteRequest::<NodeId>::new(Vote::new(0, NodeId::new(1)), None);
    assert_eq!(code_of(member.vote(payload(&stale)).await).0, Code::Ok);
    assert_eq!(node.metrics().state, ServerState::Leader);

    // The node's own client does not send an oversized message, and knows it was not sent.
    let peers = Peers::new(
        tls::client_config(&pki.files(1)).unwrap(),
        Default::default(),
    );
    let huge = forwarded_write("d".repeat(MAX_CLUSTER_MESSAGE_BYTES));
    match peers.forward(&addr, &huge, WAIT).await {
        Err(e @ PeerError::TooLarge { len, limit, .. }) => {
            assert!(len > limit && limit == MAX_CLUSTER_MESSAGE_BYTES, "{e}");
            assert!(!e.may_have_been_delivered());
        }
        other => panic!("expected a refusal to send, got {other:?}"),
    }
    node.shutdown().await;
}

/// A cluster port that answers every read index with more than the cap.
struct OversizedReplies;

fn oversized_reply() -> Result<tonic::Response<RaftPayload>, tonic::Status> {
    Ok(tonic::Response::new(RaftPayload {
        data: vec![0; MAX_CLUSTER_MESSAGE_BYTES + 1],
    }))
}

/// `impl Cluster for OversizedReplies`: each RPC listed answers with [`oversized_reply`].
macro_rules! oversized_replies {
    ($($rpc:ident),*) => {
        #[tonic::async_trait]
        impl Cluster for OversizedReplies {
            $(
                async fn $rpc(
                    &self,
                    _: tonic::Request<RaftPayload>,
                ) -> Result<tonic::Response<RaftPayload>, tonic::Status> {
                    oversized_reply()
                }
            )*
            async fn join(
                &self,
                _: tonic::Request<JoinRequest>,
            ) -> Result<tonic::Response<JoinResponse>, tonic::Status> {
                Err(tonic::Status::unimplemented("not in this test"))
            }
        }
    };
}

oversized_replies!(
    append_entries,
    vote,
    install_snapshot,
    forward,
    read_index,
    timeout_now,
    membership,
    probe
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_reply_is_refused_by_the_client() {
    let pki = Pki::new(&[1, 2]);
    let (incoming, addr) = tls_port(&pki, 2, "cluster", tls::AcceptLimits::default()).await;
    let addr = addr.to_string();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ClusterServer::new(OversizedReplies).max_encoding_message_size(usize::MAX))
            .serve_with_incoming(incoming),
    );
    let peers = Peers::new(
        tls::client_config(&pki.files(1)).unwrap(),
        Default::default(),
    );
    match peers.read_index(&addr, WAIT).await {
        Err(PeerError::Status { status, .. }) => {
            assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
            assert!(status
                .message()
                .contains("decoded message length too large"));
        }
        other => panic!("expected an OUT_OF_RANGE refusal, got {other:?}"),
    }
    server.abort();
}

/// A TLS port named `port` on a free loopback port, presenting node `id`'s certificate, and its
/// address.
async fn tls_port(
    pki: &Pki,
    id: u64,
    port: &'static str,
    limits: tls::AcceptLimits,
) -> (TlsIncoming, std::net::SocketAddr) {
    tls::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = tls::server_config(&pki.files(id)).unwrap();
    (TlsIncoming::new(listener, config, port, limits), addr)
}

/// A TLS client presenting node `id`'s certificate.
fn tls_connector(pki: &Pki, id: u64) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let files = pki.files(id);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.trusted_ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&files.key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// Connects to `addr` and completes a TLS handshake.
async fn handshake(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

/// A port at its connection budget stops accepting: a further client's handshake is not
/// answered while the budget is used, and completes once a connection closes. (The API port
/// gets such a budget so that descriptors remain for the cluster port.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_at_its_connection_budget_accepts_again_once_a_connection_closes() {
    use futures::StreamExt;

    let pki = Pki::new(&[1, 2]);
    let limits = tls::AcceptLimits {
        max_connections: Some(1),
        ..tls::AcceptLimits::default()
    };
    let (mut incoming, addr) = tls_port(&pki, 2, "api", limits).await;
    let connector = tls_connector(&pki, 1);
    let first_client = handshake(&connector, addr).await.unwrap();
    let first = incoming.next().await.unwrap().unwrap();

    let second_client = tokio::spawn({
        let connector = connector.clone();
        async move { handshake(&connector, addr).await }
    });
    // Whatever the machine's load, the port does not answer while its budget is used.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !second_client.is_finished(),
        "a handshake completed beyond the connection budget"
    );

    drop((first, first_client));
    let second_client = tokio::time::timeout(WAIT, second_client)
        .await
        .expect("the second handshake completes once the first connection closed")
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(WAIT, incoming.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop((second, second_client));
}

/// Without `TCP_NODELAY` a response written as several small TLS records waits for the
/// peer's delayed ACK: 1 KiB calls took ~44 ms instead of well under one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_connections_have_nagle_turned_off() {
    use futures::StreamExt as _;
    let pki = Pki::new(&[1, 2]);
    let (mut incoming, addr) = tls_port(&pki, 1, "cluster", tls::AcceptLimits::default()).await;
    let connector = tls_connector(&pki, 2);
    let client = tokio::spawn(async move { handshake(&connector, addr).await });
    let accepted = tokio::time::timeout(WAIT, incoming.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(accepted.tcp().nodelay().unwrap());
    client.await.unwrap().unwrap();
}

/// A write creating key `n` (its id and name derive from `n`), as caller `n` would send it.
fn create_key(n: u8) -> Request {
    Request {
        request_id: RequestId::parse(&format!("create-{n}")).unwrap(),
        caller: CallerId::of(&format!("app-{n}")),
        fingerprint: [n; 32],
        bindings: Vec::new(),
        command: Command::CreateKey(NewKey {
            key_id: KeyId::from_random_bytes([n; 16]),
            name: KeyName::parse(&format!("key-{n}")).unwrap(),
            spec: KeySpec::Aes256Gcm,
            origin: KeyOrigin::Tessera,
            description: String::new(),
            sealed_material: Some(vec![n; 61]),
            rotation_period_ms: None,
            exportable: false,
            tags: Default::default(),
            at_ms: 10,
            created_by: "app".into(),
        }),
    }
}

/// A two-voter cluster (node 1 leads) whose state is initialised, so keys can be created.
async fn initialised_pair(
    pki: &Pki,
    data: &Path,
    max_batch_requests: usize,
) -> (std::sync::Arc<RaftNode>, std::sync::Arc<RaftNode>) {
    let (leader, leader_addr) = start_node_batching(pki, 1, data, max_batch_requests).await;
    leader.bootstrap().await.unwrap();
    eventually("node 1 to lead", || async {
        leader.metrics().state == ServerState::Leader
    })
    .await;
    let (follower, _) = start_node_batching(pki, 2, data, max_batch_requests).await;
    join_second_voter(&leader, &leader_addr, &follower).await;
    // Unsealed, so that once initialised the leader keeps leading (a sealed one hands over).
    leader.set_sealed(false);
    follower.set_sealed(false);
    assert!(matches!(
        leader
            .propose(init_seal("admin", 5, 3))
            .await
            .unwrap()
            .response,
        Response::Initialized { .. }
    ));
    (std::sync::Arc::new(leader), std::sync::Arc::new(follower))
}

/// Sends writes `0..count` at once, the even ones through `leader`, the odd ones through
/// `follower` (which forwards them); returns each write's entry index, by write.
async fn create_concurrently(
    leader: &std::sync::Arc<RaftNode>,
    follower: &std::sync::Arc<RaftNode>,
    count: u8,
) -> Vec<u64> {
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..count {
        let node = if n % 2 == 0 {
            leader.clone()
        } else {
            follower.clone()
        };
        writes.spawn(async move { (n, node.propose(create_key(n)).await) });
    }
    let mut indexes = vec![0; usize::from(count)];
    while let Some(joined) = writes.join_next().await {
        let (n, applied) = joined.unwrap();
        let applied = applied.unwrap();
        // Each caller gets its own request's result, not a neighbour's.
        match applied.response {
            Response::Key(key) => {
                assert_eq!(key.key_id, KeyId::from_random_bytes([n; 16]));
                assert_eq!(key.name.as_str(), format!("key-{n}"));
            }
            other => panic!("write {n} got {other:?}"),
        }
        *indexes.get_mut(usize::from(n)).unwrap() = applied.index;
    }
    indexes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_entries_and_each_gets_its_own_result() {
    let pki = Pki::new(&[1, 2]);
    let data = tempfile::tempdir().unwrap();
    let (leader, follower) = initialised_pair(
        &pki,
        data.path(),
        RaftSettings::default().max_batch_requests,
    )
    .await;
    let before = leader.metrics().last_log_index.unwrap();
    let writes: u8 = 96;
    let indexes = create_concurrently(&leader, &follower, writes).await;
    let entries = leader.metrics().last_log_index.unwrap() - before;
    eprintln!("{writes} concurrent writes, batches on: {entries} entries");
    assert!(
        entries < u64::from(writes),
        "{writes} concurrent writes took {entries} entries"
    );
    let distinct = |parity: usize| {
        indexes
            .iter()
            .skip(parity)
            .step_by(2)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert!(
        distinct(0) < usize::from(writes / 2),
        "the leader's own writes share entries"
    );
    assert!(
        distinct(1) < usize::from(writes / 2),
        "forwarded writes share entries"
    );
    // The follower applied the batches as the leader did: every key, under its own name.
    let last = *indexes.iter().max().unwrap();
    assert!(follower.shared().wait_applied(last, WAIT).await);
    {
        let applied = follower.shared().read();
        for n in 0..writes {
            let key = applied
                .state
                .resolve(&tessera_state::KeyRef::parse(&format!("key-{n}")).unwrap())
                .unwrap();
            assert_eq!(key.key_id, KeyId::from_random_bytes([n; 16]));
        }
    }
    for node in [leader, follower] {
        std::sync::Arc::into_inner(node).unwrap().shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_batches_off_every_write_is_an_entry_of_its_own() {
    let pki = Pki::new(&[1, 2]);
    let data = tempfile::tempdir().unwrap();
    let (leader, follower) = initialised_pair(&pki, data.path(), 1).await;
    let before = leader.metrics().last_log_index.unwrap();
    let writes: u8 = 96;
    let indexes = create_concurrently(&leader, &follower, writes).await;
    let entries = leader.metrics().last_log_index.unwrap() - before;
    eprintln!("{writes} concurrent writes, batches off: {entries} entries");
    // An election on a slow machine may add a blank entry; no write shares one.
    assert!(entries >= u64::from(writes), "{entries} entries");
    let distinct: std::collections::BTreeSet<_> = indexes.iter().collect();
    assert_eq!(distinct.len(), usize::from(writes));
    for node in [leader, follower] {
        std::sync::Arc::into_inner(node).unwrap().shutdown().await;
    }
}
