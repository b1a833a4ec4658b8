//! An in-process Raft cluster for tests (feature `testing`): real [`RaftNode`]s on real sled
//! storage in a temporary directory, connected by a [`Router`] instead of the cluster port.
//!
//! Every node runs the code it runs in production (openraft, the stores, write forwarding,
//! read index, the leases, join, the leadership supervisor, and the cluster service's
//! handlers, which the router calls); only TLS and the bytes on the wire are skipped. The
//! router cuts nodes off, fails a share of their calls and delays them, so partitions and
//! flaky links take seconds to test, without processes or ports. Waits are bounded and report
//! what they last saw: on openraft's metrics ([`TestCluster::wait_metrics`]) or, for what
//! metrics do not carry (leases, applied state), by polling ([`poll`]).

pub mod router;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use openraft::ServerState;

pub use self::router::Router;
use crate::error::{EnterError, StartError};
use crate::network::Peers;
use crate::raft_node::{RaftNode, RaftSettings, Storage};
use crate::typ::{NodeId, NodeInfo, RaftMetrics};

/// Bound on every wait of the fixture: generous, because a test fails only by running into it.
pub const WAIT: Duration = Duration::from_secs(30);

/// Pause between two looks of [`poll`].
const POLL: Duration = Duration::from_millis(10);

/// Raft timing for in-process tests: the shape of the production defaults (heartbeat well
/// under the lease, lease under the minimum election timeout), scaled so that an election
/// after a partition takes one to two seconds, and a write or read barrier gives up after
/// three.
pub fn settings() -> RaftSettings {
    RaftSettings {
        heartbeat: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(500),
        election_timeout_max: Duration::from_millis(1000),
        lease: Duration::from_millis(300),
        write_timeout: Duration::from_secs(3),
        ..RaftSettings::default()
    }
}

/// A bounded wait that ran out.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what}; last saw: {last}")]
pub struct WaitTimeout {
    /// What was awaited.
    pub what: String,
    /// How long.
    pub waited: Duration,
    /// What the last look saw.
    pub last: String,
}

/// Why the fixture could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The temporary data directory could not be created.
    #[error("cannot create a temporary data directory: {0}")]
    DataDir(#[source] std::io::Error),
    /// A node did not start.
    #[error("node {id} did not start: {source}")]
    Start {
        /// The node.
        id: NodeId,
        /// Why.
        #[source]
        source: StartError,
    },
    /// A node could not bootstrap or join.
    #[error("node {id} did not enter the cluster: {source}")]
    Enter {
        /// The node.
        id: NodeId,
        /// Why.
        #[source]
        source: EnterError,
    },
    /// The cluster has no running node with this id.
    #[error("no running node {0}")]
    NoSuchNode(NodeId),
    /// A wait ran out.
    #[error(transparent)]
    Wait(#[from] WaitTimeout),
}

/// Calls `check` every few milliseconds until it returns `Ok`, for at most `timeout`.
///
/// # Errors
/// [`WaitTimeout`] naming `what`, with the last `Err` `check` returned.
pub async fn poll<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, WaitTimeout> {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(WaitTimeout {
                what: what.to_owned(),
                waited,
                last,
            });
        }
        tokio::time::sleep(POLL.min(timeout - waited)).await;
    }
}

/// What a node's metrics say, in one line (for wait failures).
pub fn describe(metrics: &RaftMetrics) -> String {
    format!(
        "node {} {:?} term {} leader {:?} applied {:?} voters {:?}",
        metrics.id,
        metrics.state,
        metrics.current_term,
        metrics.current_leader,
        metrics.last_applied.map(|l| l.index),
        metrics
            .membership_config
            .membership()
            .voter_ids()
            .collect::<Vec<_>>(),
    )
}

/// N nodes in one process, on sled in a temporary directory, connected by a [`Router`].
pub struct TestCluster {
    router: Router,
    settings: RaftSettings,
    nodes: BTreeMap<NodeId, RaftNode>,
    data: tempfile::TempDir,
}

impl TestCluster {
    /// The cluster address of node `id` (the router's key for it).
    pub fn address(id: NodeId) -> String {
        format!("node-{id}.in-process")
    }

    /// What node `id` advertises.
    pub fn info(id: NodeId) -> NodeInfo {
        NodeInfo {
            api_addr: format!("node-{id}.in-process-api"),
            cluster_addr: Self::address(id),
            region: String::new(),
            zone: String::new(),
        }
    }

    /// A cluster of voters 1 to `size` with the fixture's [`settings`]: node 1 bootstraps, the
    /// others join through it, as the process tests' clusters do. Returns once every node
    /// counts all of them as voters and follows the same leader.
    ///
    /// # Errors
    /// [`FixtureError`] if a node does not start, enter, or agree in time.
    pub async fn start(size: u64) -> Result<Self, FixtureError> {
        Self::with_settings(size, settings()).await
    }

    /// [`Self::start`] with other timing.
    ///
    /// # Errors
    /// [`FixtureError`] if a node does not start, enter, or agree in time.
    pub async fn with_settings(size: u64, settings: RaftSettings) -> Result<Self, FixtureError> {
        let mut cluster = Self {
            router: Router::new(),
            settings,
            nodes: BTreeMap::new(),
            data: tempfile::tempdir().map_err(FixtureError::DataDir)?,
        };
        let voters: Vec<NodeId> = (1..=size).map(NodeId::new).collect();
        let first = NodeId::new(1);
        cluster.start_node(first).await?;
        cluster
            .node(first)?
            .bootstrap()
            .await
            .map_err(|source| FixtureError::Enter { id: first, source })?;
        for &id in voters.iter().skip(1) {
            cluster.start_node(id).await?;
            cluster.join(id, first).await?;
        }
        for &id in &voters {
            cluster
                .wait_metrics(id, "every node to be a voter", |m| {
                    m.membership_config
                        .membership()
                        .voter_ids()
                        .eq(voters.iter().copied())
                })
                .await?;
        }
        cluster.leader().await?;
        Ok(cluster)
    }

    /// Starts node `id` on a fresh data directory and attaches it to the router; it is in no
    /// cluster until it bootstraps or [`Self::join`]s.
    ///
    /// # Errors
    /// [`FixtureError::Start`] if it does not start.
    pub async fn start_node(&mut self, id: NodeId) -> Result<&RaftNode, FixtureError> {
        let start = |source| FixtureError::Start { id, source };
        let data_dir = self.data.path().join(format!("node{id}"));
        let storage = Storage::open(&data_dir, &self.settings).map_err(start)?;
        let (node, service) = RaftNode::assemble(
            id,
            Self::info(id),
            self.settings.clone(),
            storage,
            Peers::over(self.router.transport(id)),
        )
        .await
        .map_err(start)?;
        // As in a serving cluster: a sealed node would hand leadership away.
        node.set_sealed(false);
        self.router.attach(&Self::address(id), id, service);
        Ok(self.nodes.entry(id).or_insert(node))
    }

    /// Makes node `id` join the cluster through node `seed` (which redirects it to the leader
    /// if it is a follower); returns once it is admitted.
    ///
    /// # Errors
    /// [`FixtureError`] if it is not admitted within [`WAIT`].
    pub async fn join(&self, id: NodeId, seed: NodeId) -> Result<(), FixtureError> {
        let joined = tokio::time::timeout(WAIT, self.node(id)?.join(&[Self::address(seed)])).await;
        match joined {
            Ok(result) => result.map_err(|source| FixtureError::Enter { id, source }),
            Err(_) => Err(FixtureError::Wait(WaitTimeout {
                what: format!("node {id} to be admitted through node {seed}"),
                waited: WAIT,
                last: describe(&self.node(id)?.metrics()),
            })),
        }
    }

    /// Running node `id`.
    ///
    /// # Errors
    /// [`FixtureError::NoSuchNode`] if there is none.
    pub fn node(&self, id: NodeId) -> Result<&RaftNode, FixtureError> {
        self.nodes.get(&id).ok_or(FixtureError::NoSuchNode(id))
    }

    /// The ids of the running nodes.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The network between the nodes, to inject faults.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Waits until node `id`'s metrics satisfy `ready`, for at most [`WAIT`]; returns them.
    ///
    /// # Errors
    /// [`FixtureError`] if there is no such node or the wait runs out.
    pub async fn wait_metrics(
        &self,
        id: NodeId,
        what: &str,
        ready: impl Fn(&RaftMetrics) -> bool,
    ) -> Result<RaftMetrics, FixtureError> {
        let mut metrics = self.node(id)?.watch_metrics();
        let start = Instant::now();
        let seen = tokio::time::timeout(WAIT, metrics.wait_for(|m| ready(m)))
            .await
            .map(|seen| seen.map(|m| m.clone()));
        match seen {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(FixtureError::Wait(WaitTimeout {
                what: format!("node {id}: {what}"),
                waited: start.elapsed(),
                last: "its metrics channel closed (the Raft core stopped)".into(),
            })),
            Err(_) => Err(FixtureError::Wait(WaitTimeout {
                what: format!("node {id}: {what}"),
                waited: start.elapsed(),
                last: describe(&metrics.borrow()),
            })),
        }
    }

    /// Waits until one node leads and every node the router has not cut off follows it;
    /// returns its id.
    ///
    /// # Errors
    /// [`FixtureError::Wait`] if they do not agree within [`WAIT`].
    pub async fn leader(&self) -> Result<NodeId, FixtureError> {
        let connected: Vec<&RaftNode> = self
            .nodes
            .values()
            .filter(|node| !self.router.is_isolated(node.id()))
            .collect();
        let leader = poll("the connected nodes to agree on a leader", WAIT, || {
            let metrics: Vec<RaftMetrics> = connected.iter().map(|n| n.metrics()).collect();
            let leader = metrics
                .iter()
                .find(|m| m.state == ServerState::Leader)
                .map(|m| m.id);
            match leader {
                Some(id) if metrics.iter().all(|m| m.current_leader == Some(id)) => Ok(id),
                _ => Err(metrics.iter().map(describe).collect::<Vec<_>>().join("; ")),
            }
        })
        .await?;
        Ok(leader)
    }

    /// Stops node `id` and detaches it from the router.
    ///
    /// # Errors
    /// [`FixtureError::NoSuchNode`] if it is not running.
    pub async fn stop_node(&mut self, id: NodeId) -> Result<(), FixtureError> {
        let node = self.nodes.remove(&id).ok_or(FixtureError::NoSuchNode(id))?;
        self.router.detach(&Self::address(id));
        node.shutdown().await;
        Ok(())
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for (id, node) in self.nodes {
            self.router.detach(&Self::address(id));
            node.shutdown().await;
        }
    }
}
