//! [`RaftNode`]: one member of the Raft group — storage, openraft, the cluster port — and the
//! operations the API layer needs from it: propose a write from any node, wait for a read
//! index, check the serving lease, and report status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::admin::MembershipAdmin;
use crate::coalesce::Coalescer;
use crate::durable::DurableDb;
pub use crate::error::{CoreStopped, EnterError, ProposeError, ReadIndexError, StartError};
use crate::group_commit::{GroupCommit, WriteFailure};
use crate::leadership::{self, Leadership};
use crate::lease::{Lease, LeaseState};
use crate::limits;
use crate::log_store::LogStore;
use crate::membership::{MemberList, MembershipCall, MembershipError, MembershipReply};
use crate::network::Peers;
use crate::retry::{self, Backoff, LogLimiter};
use crate::rpc::{ForwardReply, LeaderHint, ReadIndexReply};
use crate::service::ClusterService;
use crate::state_machine::{SharedState, StateMachineStore};
use crate::tls::{self, AcceptLimits, ServerTls, ServerTlsSender, TlsError, TlsFiles, TlsIncoming};
use crate::transport::{GrpcTransport, Transport};
use crate::typ::{Fatal, NodeId, NodeInfo, Raft, RaftMetrics};

/// sled's page cache. sled's default is 1 GiB, and it fills with every page written, so a
/// node's memory grew with its write history (330–370 MiB after 100k keys) although every
/// read is served from the in-memory state, not from sled. The log and rows are read only at
/// start, on apply of a batch and when building a snapshot, so a small cache costs nothing on
/// the serving path.
pub const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Upper bound on one join attempt (adding a learner waits for it to catch up).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Raft timing and log-compaction settings.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Lower bound of the randomised election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomised election timeout.
    pub election_timeout_max: Duration,
    /// Follower lease window; must be shorter than `election_timeout_min`.
    pub lease: Duration,
    /// Build a snapshot after this many applied writes since the last one (a group-commit
    /// entry counts each of its writes; [`crate::snapshot_by_writes`]).
    pub snapshot_after_logs: u64,
    /// Entries kept in the log behind the latest snapshot (for slow followers).
    pub logs_kept_after_snapshot: u64,
    /// How long a write may wait for commit before its outcome is reported unknown.
    pub write_timeout: Duration,
    /// Interval of the online compaction pass ([`crate::shred`]): snapshot, purge the log,
    /// compact the database. Destroyed material leaves the disk within this plus one pass.
    pub compact_interval: Duration,
    /// Most writes the leader puts in one entry ([`crate::group_commit`]); 1 never batches,
    /// which a cluster needs while any of its nodes runs a build that cannot decode a batch.
    pub max_batch_requests: usize,
}

/// The default of [`RaftSettings::max_batch_requests`]. Entries are also capped at
/// [`limits::MAX_ENTRY_BYTES`], which usually binds first for large requests.
pub const DEFAULT_MAX_BATCH_REQUESTS: usize = 256;

/// The defaults bound failover: openraft's follower campaigns once it has heard nothing for
/// `election_timeout_max` (its leader lease) plus a random election timeout, 1.2–1.6 s here, so
/// a write through the survivors is acknowledged again about 1.5 s after a leader dies. The
/// serving lease (300 ms, renewed every 100 ms) stays shorter than `election_timeout_min`, as
/// the lease argument requires.
impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(400),
            election_timeout_max: Duration::from_millis(800),
            lease: Duration::from_millis(300),
            snapshot_after_logs: 10_000,
            logs_kept_after_snapshot: 1_000,
            write_timeout: Duration::from_secs(10),
            compact_interval: Duration::from_secs(300),
            max_batch_requests: DEFAULT_MAX_BATCH_REQUESTS,
        }
    }
}

/// Everything needed to start a node's Raft side.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id.
    pub id: NodeId,
    /// The addresses and labels this node advertises to the cluster.
    pub info: NodeInfo,
    /// Directory for the sled database.
    pub data_dir: PathBuf,
    /// Node certificate, its key, and the node CA (the only CA the cluster port trusts).
    pub tls: TlsFiles,
    /// Timing settings.
    pub settings: RaftSettings,
    /// Advertised peer address → address to dial (see [`Peers::new`]).
    pub dial: BTreeMap<String, String>,
    /// What the cluster port's accept loop takes on (no connection budget: the cluster port
    /// is what the descriptor reserve is kept for).
    pub accept: AcceptLimits,
}

/// A committed and applied write.
#[derive(Clone, Debug)]
pub struct Applied {
    /// Its log index.
    pub index: u64,
    /// Its replicated result.
    pub response: tessera_state::Response,
}

/// A running Raft member.
pub struct RaftNode {
    id: NodeId,
    info: NodeInfo,
    raft: Raft,
    shared: Arc<SharedState>,
    lease: Arc<Lease>,
    leadership: Arc<Leadership>,
    admin: MembershipAdmin,
    peers: Peers,
    settings: RaftSettings,
    /// Repeated failures to reach the leader, logged at most once a second each.
    forward_failures: LogLimiter,
    leader_failures: LogLimiter,
    read_index_failures: LogLimiter,
    /// Merges concurrent read barriers.
    barriers: Coalescer<ReadIndexError>,
    /// Merges concurrent writes into shared entries while this node leads.
    writes: GroupCommit,
    /// The TLS configurations a certificate reload swaps; `None` on a node whose peers are
    /// reached in process (tests), which uses no TLS.
    tls: Option<ClusterTls>,
    tasks: Vec<JoinHandle<()>>,
}

/// Where a node's cluster TLS configuration lives: the cluster port's server side and the
/// gRPC transport to its peers.
struct ClusterTls {
    server: ServerTlsSender,
    client: Arc<GrpcTransport>,
}

/// A node's opened storage and checked settings: what [`RaftNode::assemble`] starts openraft on.
pub(crate) struct Storage {
    log_store: LogStore,
    state_machine: StateMachineStore,
    compactor: DurableDb,
    raft_config: Arc<openraft::Config>,
}

impl Storage {
    /// Checks `settings`, finishes or undoes an interrupted compaction in `data_dir`, and opens
    /// the sled database there.
    pub(crate) fn open(data_dir: &Path, settings: &RaftSettings) -> Result<Self, StartError> {
        if settings.lease >= settings.election_timeout_min {
            return Err(StartError::LeaseTooLong {
                lease: settings.lease,
                election_timeout_min: settings.election_timeout_min,
            });
        }
        crate::compact::recover(data_dir).map_err(StartError::Recover)?;
        let db_path = data_dir.join(crate::compact::DB_DIR);
        let db = sled::Config::new()
            .path(&db_path)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()
            .map_err(|source| StartError::Storage {
                path: db_path.clone(),
                source,
            })?;
        let db = DurableDb::open(db, &db_path).map_err(|e| StartError::Storage {
            path: db_path.clone(),
            source: sled::Error::Io(e),
        })?;
        let log_store = LogStore::open(&db).map_err(|source| StartError::Storage {
            path: db_path.clone(),
            source,
        })?;
        let state_machine =
            StateMachineStore::open(&db).map_err(|e| StartError::State(Box::new(e)))?;

        let raft_config = openraft::Config {
            cluster_name: "tessera".into(),
            heartbeat_interval: millis(settings.heartbeat),
            election_timeout_min: millis(settings.election_timeout_min),
            election_timeout_max: millis(settings.election_timeout_max),
            install_snapshot_timeout: millis(settings.write_timeout),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_after_logs),
            max_in_snapshot_log_to_keep: settings.logs_kept_after_snapshot,
            purge_batch_size: 1,
            // The cluster port's message cap is sized for these (see `limits`).
            max_payload_entries: limits::MAX_PAYLOAD_ENTRIES,
            snapshot_max_chunk_size: limits::SNAPSHOT_CHUNK_BYTES,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Settings(Box::new(e)))?;
        Ok(Self {
            log_store,
            state_machine,
            compactor: db,
            raft_config: Arc::new(raft_config),
        })
    }
}

impl RaftNode {
    /// Opens storage in `config.data_dir`, starts openraft and serves the cluster port on
    /// `cluster_listener`.
    ///
    /// # Errors
    /// [`StartError`] if storage, TLS or settings are unusable.
    pub async fn start(
        config: NodeConfig,
        cluster_listener: TcpListener,
    ) -> Result<Self, StartError> {
        let storage = Storage::open(&config.data_dir, &config.settings)?;
        let grpc = Arc::new(GrpcTransport::new(
            tls::client_config(&config.tls)?,
            config.dial.clone(),
        ));
        let (cluster_tls, server_tls) = ServerTls::reloadable(tls::server_config(&config.tls)?);
        let (mut node, service) = Self::assemble(
            config.id,
            config.info,
            config.settings,
            storage,
            Peers::over(Arc::clone(&grpc) as Arc<dyn Transport>),
        )
        .await?;
        let incoming = TlsIncoming::new(
            cluster_listener,
            server_tls,
            "cluster",
            config.accept.clone(),
        );
        node.tasks.push(tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(service.into_server())
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "cluster port stopped");
            }
        }));
        node.tls = Some(ClusterTls {
            server: cluster_tls,
            client: grpc,
        });
        Ok(node)
    }

    /// Starts openraft on `storage` and the node's background tasks, with `peers` carrying
    /// what it sends. Returns the node and the service that must receive what its peers send
    /// it (the cluster port in production, an in-process router in tests).
    pub(crate) async fn assemble(
        id: NodeId,
        info: NodeInfo,
        settings: RaftSettings,
        storage: Storage,
        peers: Peers,
    ) -> Result<(Self, ClusterService), StartError> {
        let Storage {
            log_store,
            state_machine,
            compactor,
            raft_config,
        } = storage;
        let shared = state_machine.shared();
        let raft = Raft::new(id, raft_config, peers.clone(), log_store, state_machine)
            .await
            .map_err(|e| StartError::Raft(Box::new(e)))?;

        let lease = Arc::new(Lease::new(settings.lease));
        let leadership = Arc::new(Leadership::new(Arc::clone(&shared)));
        let admin = MembershipAdmin::new(
            id,
            raft.clone(),
            peers.clone(),
            Arc::clone(&lease),
            Arc::clone(&shared),
            Arc::clone(&leadership),
            settings.election_timeout_max,
        );
        let (writes, proposer) = GroupCommit::start(
            raft.clone(),
            settings.max_batch_requests,
            settings.write_timeout,
        );
        let service = ClusterService::new(
            raft.clone(),
            Arc::clone(&shared),
            settings.write_timeout,
            Arc::clone(&leadership),
            admin.clone(),
            writes.clone(),
        );
        let leader_lease = tokio::spawn(track_leader_lease(raft.clone(), Arc::clone(&lease), id));
        let follower_lease = tokio::spawn(renew_follower_lease(
            raft.clone(),
            peers.clone(),
            Arc::clone(&lease),
        ));
        let shredder = tokio::spawn(crate::shred::run(
            raft.clone(),
            compactor,
            settings.compact_interval,
            settings.write_timeout,
        ));
        let snapshots = tokio::spawn(crate::snapshot_by_writes::run(
            raft.clone(),
            Arc::clone(&shared),
            settings.snapshot_after_logs,
        ));
        let supervisor = tokio::spawn(leadership::supervise(
            raft.clone(),
            peers.clone(),
            Arc::clone(&lease),
            Arc::clone(&leadership),
            leadership::Timing::new(&settings),
        ));

        let node = Self {
            id,
            info,
            raft,
            shared,
            lease,
            leadership,
            admin,
            peers,
            settings,
            forward_failures: LogLimiter::new(retry::LOG_INTERVAL),
            leader_failures: LogLimiter::new(retry::LOG_INTERVAL),
            read_index_failures: LogLimiter::new(retry::LOG_INTERVAL),
            barriers: Coalescer::new(),
            writes,
            tls: None,
            tasks: vec![
                leader_lease,
                follower_lease,
                supervisor,
                shredder,
                proposer,
                snapshots,
            ],
        };
        Ok((node, service))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's advertised addresses and labels.
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// Tells the Raft side whether this node is sealed. A sealed node of an initialised cluster
    /// cannot do the leader's work, so it hands leadership to an unsealed voter and does not
    /// campaign while one can win (see [`crate::leadership`]). Nodes start sealed.
    pub fn set_sealed(&self, sealed: bool) {
        self.leadership.set_sealed(sealed);
    }

    /// The applied state.
    pub fn shared(&self) -> &Arc<SharedState> {
        &self.shared
    }

    /// The latest Raft metrics.
    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    /// A receiver of every change of the Raft metrics (to count leader changes).
    pub fn watch_metrics(&self) -> tokio::sync::watch::Receiver<RaftMetrics> {
        self.raft.metrics()
    }

    /// Time since this node's lease was last confirmed (by a quorum on the leader, by a read
    /// index on a follower), or `None` if it holds no confirmation.
    pub fn lease_age(&self) -> Option<Duration> {
        self.lease.age(Instant::now())
    }

    /// Loads `files` again (node certificate, key, node CA) and, only if all of them make a
    /// valid configuration, uses them for connections the cluster port accepts from now on and
    /// for connections to peers dialled from now on. Established connections keep their
    /// sessions; on error nothing changes. A node whose peers are reached in process (the test
    /// fixture) uses no TLS: for it the files are only checked.
    ///
    /// # Errors
    /// [`TlsError`] naming the file that cannot be used.
    pub fn reload_tls(&self, files: &TlsFiles) -> Result<(), TlsError> {
        let server = tls::server_config(files)?;
        let client = tls::client_config(files)?;
        if let Some(tls) = &self.tls {
            tls.server.send_replace(server);
            tls.client.set_tls(client);
        }
        Ok(())
    }

    /// Resolves when the Raft core stops on its own (a storage write failed, a disk is full,
    /// a task panicked), with the reason. A node whose core stopped can no longer vote, apply
    /// or serve; the process should exit so that a supervisor restarts it on its data
    /// directory, which recovers from the durable log.
    pub async fn stopped(&self) -> CoreStopped {
        let mut metrics = self.raft.metrics();
        loop {
            let running = metrics.borrow().running_state.clone();
            if let Err(fatal) = running {
                return CoreStopped::Fatal(Box::new(fatal));
            }
            if metrics.changed().await.is_err() {
                return CoreStopped::Exited;
            }
        }
    }

    /// Whether this node has Raft state (bootstrapped, or joined and replicated).
    ///
    /// # Errors
    /// [`Fatal`] if the Raft core has stopped.
    pub async fn is_initialized(&self) -> Result<bool, Fatal> {
        self.raft.is_initialized().await
    }

    /// Makes this node a one-member cluster, unless it already has Raft state.
    ///
    /// # Errors
    /// [`EnterError`] if the Raft core has stopped or openraft refuses.
    pub async fn bootstrap(&self) -> Result<(), EnterError> {
        if self
            .is_initialized()
            .await
            .map_err(|e| EnterError::Fatal(Box::new(e)))?
        {
            return Ok(());
        }
        self.raft
            .initialize(BTreeMap::from([(self.id, self.info.clone())]))
            .await
            .map_err(|e| match e {
                RaftError::APIError(refused) => EnterError::Initialize(Box::new(refused)),
                RaftError::Fatal(fatal) => EnterError::Fatal(Box::new(fatal)),
            })
    }

    /// Asks the cluster (through any of `seeds`, following leader redirects) to admit this
    /// node as a voter, retrying until admitted. Does nothing if this node already has Raft
    /// state.
    ///
    /// # Errors
    /// [`EnterError::Fatal`] if the Raft core has stopped.
    pub async fn join(&self, seeds: &[String]) -> Result<(), EnterError> {
        if self
            .is_initialized()
            .await
            .map_err(|e| EnterError::Fatal(Box::new(e)))?
        {
            return Ok(());
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            for seed in seeds {
                let mut addr = seed.clone();
                // At most one redirect: from a follower to the leader it knows.
                for _ in 0..2 {
                    match self
                        .peers
                        .join(&addr, self.id, &self.info, JOIN_TIMEOUT)
                        .await
                    {
                        Ok(reply) if reply.admitted => {
                            tracing::info!(leader = reply.leader_id, "joined the cluster");
                            return Ok(());
                        }
                        Ok(reply) if !reply.leader_cluster_addr.is_empty() => {
                            addr = reply.leader_cluster_addr;
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::info!(seed = %addr, error = %e, "join attempt failed; will retry");
                            break;
                        }
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Commits a write through the leader, from any node, and returns once it is applied on
    /// the leader. When the write was forwarded, it also waits (within the write timeout) until
    /// this node has applied it, so a read here sees it; if that wait runs out, the write is
    /// still reported as done, because it is committed.
    ///
    /// # Errors
    /// [`ProposeError`]; on [`ProposeError::Unknown`] the write may have been applied.
    pub async fn propose(&self, request: tessera_state::Request) -> Result<Applied, ProposeError> {
        let started = Instant::now();
        let deadline = started + self.settings.write_timeout;
        let mut handed_over = false;
        let mut backoff = Backoff::new(retry::BACKOFF_BASE, retry::BACKOFF_CAP);
        let mut metrics = self.raft.metrics();
        loop {
            if self.is_removed() {
                return Err(ProposeError::Removed { node_id: self.id });
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(if handed_over {
                    ProposeError::Unknown
                } else {
                    ProposeError::NoLeader {
                        waited: started.elapsed(),
                    }
                });
            }
            let hint = LeaderHint::of(&self.raft);
            match hint.leader_id {
                // A leader handing over takes no new writes; the next leader will.
                Some(leader) if leader == self.id && !self.leadership.refuses_writes() => {
                    // From here on the entry may be in the log: a retry relies on the request
                    // id to apply it at most once. Concurrent writes share entries
                    // (`group_commit`); the outcome of a shared entry is every caller's.
                    handed_over = true;
                    match tokio::time::timeout(remaining, self.writes.write(request.clone())).await
                    {
                        Ok(Ok(written)) => {
                            return Ok(Applied {
                                index: written.index,
                                response: written.response,
                            })
                        }
                        Ok(Err(WriteFailure::Raft(e))) => match *e {
                            RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {}
                            RaftError::APIError(e) => {
                                return Err(ProposeError::Refused(Box::new(e)))
                            }
                            RaftError::Fatal(e) => return Err(ProposeError::Fatal(Box::new(e))),
                        },
                        Ok(Err(
                            WriteFailure::TimedOut
                            | WriteFailure::Mismatched
                            | WriteFailure::Stopped,
                        ))
                        | Err(_) => return Err(ProposeError::Unknown),
                    }
                }
                Some(leader) if leader != self.id => {
                    if let Some(leader) = hint.leader {
                        match self
                            .peers
                            .forward(&leader.cluster_addr, &request, remaining)
                            .await
                        {
                            Ok(ForwardReply::Applied { index, response }) => {
                                if !self.shared.wait_applied(index, remaining).await {
                                    tracing::warn!(
                                        index,
                                        "the write is committed but not yet applied here; \
                                         a read on this node may not see it yet"
                                    );
                                }
                                return Ok(Applied { index, response });
                            }
                            Ok(ForwardReply::NotLeader(_)) => {}
                            Ok(ForwardReply::Failed { reason }) => {
                                handed_over = true;
                                if let Some(failures) = self.leader_failures.admit(Instant::now()) {
                                    tracing::warn!(
                                        failures,
                                        %reason,
                                        "leader failed a forwarded write; retrying"
                                    );
                                }
                            }
                            Err(e) => {
                                handed_over |= e.may_have_been_delivered();
                                if let Some(failures) = self.forward_failures.admit(Instant::now())
                                {
                                    tracing::warn!(
                                        failures,
                                        error = %e,
                                        "forwarding a write failed; retrying"
                                    );
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
            retry::pause(&mut backoff, &mut metrics, hint.leader_id, deadline).await;
        }
    }

    /// A linearizable read barrier: returns once this node has applied everything committed
    /// before the call.
    ///
    /// Concurrent callers share barriers (see `crate::coalesce`): one runs at a time, and
    /// everyone who arrived while it ran shares the next, so a burst of reads of unknown keys
    /// costs two round trips to the leader, not one each.
    ///
    /// # Errors
    /// [`ReadIndexError`] if no leader confirms in time, this node does not apply up to the
    /// read index in time, or its Raft core has stopped.
    pub async fn read_barrier(&self) -> Result<(), ReadIndexError> {
        self.barriers.run(|| self.confirm_read_index()).await
    }

    /// One read barrier: asks the leader for its read index and waits to apply up to it.
    async fn confirm_read_index(&self) -> Result<(), ReadIndexError> {
        let deadline = Instant::now() + self.settings.write_timeout;
        let mut backoff = Backoff::new(retry::BACKOFF_BASE, retry::BACKOFF_CAP);
        let mut metrics = self.raft.metrics();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ReadIndexError::NoLeader {
                    timeout: self.settings.write_timeout,
                });
            }
            let hint = LeaderHint::of(&self.raft);
            let index = match (hint.leader_id, hint.leader) {
                (Some(id), _) if id == self.id => match self.raft.get_read_log_id().await {
                    Ok((read, _)) => Some(read.map_or(0, |l| l.index)),
                    Err(RaftError::APIError(_)) => None,
                    Err(RaftError::Fatal(e)) => return Err(ReadIndexError::Fatal(Box::new(e))),
                },
                (Some(_), Some(leader)) => {
                    match self.peers.read_index(&leader.cluster_addr, remaining).await {
                        Ok(ReadIndexReply::Index(index)) => Some(index),
                        Ok(ReadIndexReply::NotLeader(_)) => None,
                        Ok(ReadIndexReply::Failed { reason }) => {
                            self.note_read_index_failure(&reason);
                            None
                        }
                        Err(e) => {
                            self.note_read_index_failure(&e);
                            None
                        }
                    }
                }
                _ => None,
            };
            if let Some(index) = index {
                return if self.shared.wait_applied(index, remaining).await {
                    Ok(())
                } else {
                    Err(ReadIndexError::NotApplied { index })
                };
            }
            retry::pause(&mut backoff, &mut metrics, hint.leader_id, deadline).await;
        }
    }

    fn note_read_index_failure(&self, error: &dyn std::fmt::Display) {
        if let Some(failures) = self.read_index_failures.admit(Instant::now()) {
            tracing::info!(failures, %error, "read index request failed; retrying");
        }
    }

    /// Whether this node is the Raft leader right now.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Runs this node's lease clock at `rate` times real time (fault-injection builds only;
    /// see [`Lease::set_clock_rate`]).
    #[cfg(feature = "fault-injection")]
    pub fn set_lease_clock_rate(&self, rate: f64) {
        self.lease.set_clock_rate(rate);
    }

    /// Whether this node may serve requests from its own applied state now.
    pub fn lease_state(&self) -> LeaseState {
        self.admin.lease_state()
    }

    /// Whether this node was removed from the cluster: its own view of the membership no
    /// longer contains it, or the last peer it called refused it as not a member (a node
    /// removed in joint consensus usually never receives the final configuration). A removed
    /// node must not serve: no leader will renew its lease again.
    pub fn is_removed(&self) -> bool {
        let dropped = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            membership.nodes().next().is_some() && membership.get_node(&self.id).is_none()
        };
        dropped || self.peers.refused_as_non_member()
    }

    /// Runs a membership call on the leader, relaying it there from any node, until the leader
    /// answers or `write_timeout` runs out. Changes are idempotent, so a relay that failed
    /// after the leader ran the change is simply repeated.
    ///
    /// # Errors
    /// [`MembershipError`]: the leader's refusal, [`MembershipError::InProgress`] if another
    /// change was still running at the deadline, else [`MembershipError::NoLeader`].
    pub async fn membership(&self, call: MembershipCall) -> Result<MemberList, MembershipError> {
        let deadline = Instant::now() + self.settings.write_timeout;
        let mut backoff = Backoff::new(retry::BACKOFF_BASE, retry::BACKOFF_CAP);
        let mut metrics = self.raft.metrics();
        let mut in_progress = false;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(if in_progress {
                    MembershipError::InProgress
                } else {
                    MembershipError::NoLeader
                });
            }
            let hint = LeaderHint::of(&self.raft);
            let reply = match (hint.leader_id, hint.leader) {
                (Some(id), _) if id == self.id => Some(self.admin.run(call.clone()).await),
                (Some(_), Some(leader)) => self
                    .peers
                    .membership(&leader.cluster_addr, &call, remaining)
                    .await
                    .inspect_err(|e| tracing::info!(error = %e, "relaying a membership call failed; retrying"))
                    .ok(),
                _ => None,
            };
            in_progress = false;
            match reply {
                Some(MembershipReply::Members(list)) => return Ok(list),
                // The joint configuration of the previous change is about to settle.
                Some(MembershipReply::Refused(MembershipError::InProgress)) => in_progress = true,
                Some(MembershipReply::NotLeader(_)) | None => {}
                Some(MembershipReply::Refused(e)) => return Err(e),
            }
            retry::pause(&mut backoff, &mut metrics, hint.leader_id, deadline).await;
        }
    }

    /// The lease window.
    pub fn lease_window(&self) -> Duration {
        self.lease.window()
    }

    /// Triggers a snapshot now and waits (bounded) until it is built.
    ///
    /// # Errors
    /// [`Fatal`] if the Raft core has stopped.
    pub async fn snapshot(&self) -> Result<(), Fatal> {
        self.raft.trigger().snapshot().await
    }

    /// Stops Raft and the cluster port.
    pub async fn shutdown(self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown reported an error");
        }
        for task in self.tasks {
            task.abort();
        }
    }
}

/// The API name of a Raft role: `leader`, `follower`, `candidate`, `learner` or `shutdown`.
pub fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Keeps the lease of a follower current by asking the leader for a read index every third of
/// the lease window. The leader answers only after a quorum has confirmed its leadership, so a
/// deposed leader cut off in a minority cannot extend its followers' leases. The lease runs
/// from before the request was sent.
async fn renew_follower_lease(raft: Raft, peers: Peers, lease: Arc<Lease>) {
    let interval = lease.window() / 3;
    loop {
        let round = Instant::now();
        let leader = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            let is_follower = matches!(metrics.state, ServerState::Follower | ServerState::Learner);
            metrics
                .current_leader
                .filter(|id| is_follower && *id != metrics.id)
                .and_then(|id| {
                    metrics
                        .membership_config
                        .membership()
                        .get_node(&id)
                        .cloned()
                })
        };
        if let Some(leader) = leader {
            let asked = Instant::now();
            match peers.read_index(&leader.cluster_addr, lease.window()).await {
                Ok(ReadIndexReply::Index(commit_index)) => lease.renew(asked, commit_index),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "lease renewal failed"),
            }
        }
        tokio::time::sleep(interval.saturating_sub(round.elapsed())).await;
    }
}

/// Keeps the lease of a leader current: a leader holds the lease from the last time a quorum
/// acknowledged it. Metrics carry the age of that acknowledgement at the time they are
/// reported; if reports stop, the lease simply runs out.
async fn track_leader_lease(raft: Raft, lease: Arc<Lease>, id: NodeId) {
    let mut rx = raft.metrics();
    loop {
        let (state, acked_ms, applied, own_term_applied) = {
            let m = rx.borrow_and_update();
            let applied_term = m.last_applied.map(|l| l.leader_id.term);
            (
                m.state,
                m.millis_since_quorum_ack,
                m.last_applied.map_or(0, |l| l.index),
                applied_term == Some(m.current_term),
            )
        };
        match (state, acked_ms) {
            // A new leader serves only once it has applied an entry of its own term: by log
            // matching it has then applied everything earlier leaders committed.
            (ServerState::Leader, Some(ms)) if own_term_applied => {
                let acked_at = Instant::now()
                    .checked_sub(Duration::from_millis(ms))
                    .unwrap_or_else(Instant::now);
                lease.renew(acked_at, applied);
            }
            (ServerState::Candidate, _) => lease.revoke(),
            _ => {}
        }
        if rx.changed().await.is_err() {
            tracing::debug!(
                node = id.get(),
                "metrics channel closed; leader lease tracking ends"
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower campaigns once it has heard nothing for `election_timeout_max` plus a random
    /// election timeout (openraft 0.9). With the old defaults (1.5–3 s) that was 4.5–6 s, and a
    /// leader's death stopped writes for 5–6 s.
    #[test]
    fn default_timing_elects_within_two_seconds_and_keeps_the_lease_shorter() {
        let settings = RaftSettings::default();
        let latest_campaign = settings.election_timeout_max * 2;
        assert!(
            latest_campaign < Duration::from_secs(2),
            "{latest_campaign:?}"
        );
        assert!(settings.lease < settings.election_timeout_min);
        assert!(settings.heartbeat * 3 < settings.election_timeout_min);
    }
}
