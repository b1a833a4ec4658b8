//! [`TestCluster`]: N real node processes with their own PKI, data directories and ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tessera_client::proto::StatusResponse;
use tessera_client::{Client, ClientConfig};
use tessera_launcher::config::{Entry, NodeConfig, NodeOptions};
use tessera_launcher::{pki, Bound, NodeFiles};
use tessera_server::config::{FaultSection, LifecycleSection, RaftSection};
use tessera_server::ops::OpsSection;
use tessera_server::ratelimit::RateLimitSection;
use tessera_server::NodeId;

use crate::disk::{self, Tmpfs};
use crate::node::launch;
use crate::process::{tail, NodeProcess};
use crate::wait::{wait_for, POLL};

/// One cluster at a time per test binary: node processes are heavy on a 2-core machine.
static CLUSTER_LOCK: Mutex<()> = Mutex::new(());

/// The one-cluster-at-a-time slot, held until dropped. Each test runs on its own runtime,
/// so holding it across `.await` blocks only other tests' clusters, as intended.
pub struct Exclusive {
    _guard: MutexGuard<'static, ()>,
}

/// Takes the one-cluster-at-a-time slot without starting a [`TestCluster`], for tests that
/// start other multi-process clusters (the chaos harness's).
pub fn exclusive() -> Exclusive {
    Exclusive {
        _guard: CLUSTER_LOCK.lock().unwrap_or_else(PoisonError::into_inner),
    }
}

/// Generous bound on cluster-level waits (elections, joins, catch-up) on a loaded machine.
pub const WAIT: Duration = Duration::from_secs(60);

/// Size and timing of a test cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Number of nodes.
    pub nodes: u64,
    /// Raft timing, snapshots and compaction of every node: by default elections after 1–2 s
    /// and a 15 s write timeout, tolerant of a loaded machine.
    pub raft: RaftSection,
    /// Lifetime of BYOK import tokens.
    pub import_token_ttl_seconds: u64,
    /// If set, each node's data directory is a tmpfs of this many MiB that a test can fill
    /// (see [`TestCluster::fill_disk`]); mounting needs root.
    pub data_quota_mib: Option<u64>,
    /// Whether every node has an ops port (on a free loopback port, published in
    /// `addresses.json`).
    pub ops_port: bool,
    /// Node certificates issued beyond `nodes`, for nodes a test starts later with
    /// [`TestCluster::start_spare`] (ids `nodes + 1 ..= nodes + spare_nodes`).
    pub spare_nodes: u64,
    /// Per-identity rate limits of every node.
    pub rate_limits: RateLimitSection,
    /// Deliberate bugs for one node of a fault-injection build: `(node id, faults)`.
    pub faults: Vec<(u64, FaultSection)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            nodes: 3,
            raft: RaftSection {
                heartbeat_ms: 100,
                election_timeout_min_ms: 1000,
                election_timeout_max_ms: 2000,
                lease_ms: 800,
                snapshot_after_logs: 10_000,
                logs_kept_after_snapshot: 1_000,
                write_timeout_ms: 15_000,
                compact_interval_ms: 300_000,
                ..RaftSection::default()
            },
            import_token_ttl_seconds: 600,
            data_quota_mib: None,
            ops_port: false,
            spare_nodes: 0,
            rate_limits: RateLimitSection::default(),
            faults: Vec::new(),
        }
    }
}

impl ClusterOptions {
    /// The default options with `nodes` nodes: the size is what most tests change.
    pub fn with_nodes(nodes: u64) -> Self {
        Self {
            nodes,
            ..Self::default()
        }
    }

    /// The default options with a snapshot every `after` applied writes, keeping `kept` entries
    /// behind it: for tests of catch-up by snapshot and of what compaction removes from disk.
    pub fn snapshotting(after: u64, kept: u64) -> Self {
        let mut options = Self::default();
        options.raft.snapshot_after_logs = after;
        options.raft.logs_kept_after_snapshot = kept;
        options
    }
}

/// One node of a [`TestCluster`].
pub struct TestNode {
    /// Node id (1-based).
    pub id: u64,
    /// The node's directory: `config.toml`, `server.log`, `data/`.
    pub dir: PathBuf,
    /// API endpoint, `https://127.0.0.1:PORT`.
    pub api_addr: String,
    /// Cluster endpoint, `127.0.0.1:PORT`.
    pub cluster_addr: String,
    process: Option<NodeProcess>,
    /// Declared after `process`, so the node is stopped before its data is unmounted.
    data_mount: Option<Tmpfs>,
}

/// `config()`, `log()` and `data_dir()` in [`TestNode::dir`].
impl NodeFiles for TestNode {
    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl TestNode {
    /// Whether the process is running (not killed or stopped by the test).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// The process, while running.
    pub fn process(&self) -> Option<&NodeProcess> {
        self.process.as_ref()
    }
}

/// A cluster of `tessera server` processes; everything is torn down on drop.
pub struct TestCluster {
    binary: PathBuf,
    root: Option<tempfile::TempDir>,
    options: ClusterOptions,
    /// The nodes, node 1 first.
    pub nodes: Vec<TestNode>,
    shares: Vec<String>,
    /// The one-cluster-at-a-time slot; `None` for a cluster started beside another
    /// ([`TestCluster::start_beside`]), whose slot covers both.
    _lock: Option<Exclusive>,
}

/// The configuration of node `id` listening at `api` and `cluster`, entering the cluster by
/// `entry`.
fn node_config(
    options: &ClusterOptions,
    pki: &Path,
    id: u64,
    (api, cluster): (SocketAddr, SocketAddr),
    entry: Entry,
) -> NodeConfig {
    let node_options = NodeOptions {
        region: format!("region-{}", (id - 1) % 3 + 1),
        raft: Some(options.raft.clone()),
        // Test-tuned: production minimums are days.
        lifecycle: Some(LifecycleSection {
            min_deletion_window_seconds: 1,
            min_rotation_period_seconds: 1,
            import_token_ttl_seconds: options.import_token_ttl_seconds,
            job_interval_ms: 200,
            ..LifecycleSection::default()
        }),
        rate_limits: options.rate_limits.clone(),
        ops: options.ops_port.then(|| OpsSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }),
        faults: options
            .faults
            .iter()
            .find(|(node, _)| *node == id)
            .map(|(_, faults)| faults.clone()),
    };
    NodeConfig::new(pki, NodeId::new(id), api, cluster, entry, &node_options)
}

impl TestCluster {
    /// Starts `options.nodes` processes of `binary`, bootstraps node 1, joins the others and
    /// waits until all are voters. The cluster is not initialised.
    pub async fn start(binary: &Path, options: ClusterOptions) -> Self {
        Self::start_holding(binary, options, Some(exclusive())).await
    }

    /// Starts a second, independent cluster (its own PKI and data directories, never
    /// initialised) while this one runs, e.g. the target of a backup restore. The slot this
    /// cluster holds covers both; drop the second one first.
    pub async fn start_beside(&self, options: ClusterOptions) -> Self {
        Self::start_holding(&self.binary, options, None).await
    }

    async fn start_holding(
        binary: &Path,
        options: ClusterOptions,
        lock: Option<Exclusive>,
    ) -> Self {
        let root = tempfile::Builder::new()
            .prefix("tessera-test-")
            .tempdir()
            .expect("temp dir");
        pki::init(
            &root.path().join("pki"),
            options.nodes + options.spare_nodes,
            &[],
        )
        .expect("test PKI");
        let mut cluster = Self {
            binary: binary.to_path_buf(),
            root: Some(root),
            options,
            nodes: Vec::new(),
            shares: Vec::new(),
            _lock: lock,
        };
        for id in 1..=cluster.options.nodes {
            let seed = cluster.nodes.first().map(|n| n.cluster_addr.clone());
            let entry = seed.map_or(Entry::Bootstrap, Entry::Join);
            cluster.add_node(id, entry).await;
        }
        cluster.wait_for_voters().await;
        cluster
    }

    /// [`TestCluster::start`], then init (5 shares, threshold 3) and unseal every node.
    pub async fn start_unsealed(binary: &Path, options: ClusterOptions) -> Self {
        let mut cluster = Self::start(binary, options).await;
        cluster.init().await;
        for id in cluster.ids() {
            cluster.unseal(id).await;
        }
        for id in cluster.ids() {
            cluster.wait_serving(id).await;
        }
        cluster
    }

    fn root(&self) -> &Path {
        self.root.as_ref().expect("root dir").path()
    }

    /// The PKI directory (`ca.pem`, `client-ca.pem`, `admin.pem`, …).
    pub fn pki(&self) -> PathBuf {
        self.root().join("pki")
    }

    /// The ids of all nodes.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The ids of all nodes but `id` (e.g. the followers of a leader, the survivors of a
    /// victim).
    pub fn ids_except(&self, id: u64) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| n.id)
            .filter(|n| *n != id)
            .collect()
    }

    /// A node by id.
    pub fn node(&self, id: u64) -> &TestNode {
        self.nodes.iter().find(|n| n.id == id).expect("node id")
    }

    fn node_mut(&mut self, id: u64) -> &mut TestNode {
        self.nodes.iter_mut().find(|n| n.id == id).expect("node id")
    }

    /// Starts node `id` with neither `bootstrap` nor `join`, so it waits until a member adds
    /// it (`operator add-learner`). A new id needs a certificate from
    /// [`ClusterOptions::spare_nodes`]; a node of this cluster must be stopped, and starts
    /// afresh on a wiped data directory (on new ports).
    pub async fn start_spare(&mut self, id: u64) {
        if let Some(index) = self.nodes.iter().position(|n| n.id == id) {
            let node = self.nodes.remove(index);
            assert!(node.process.is_none(), "node {id} is still running");
            std::fs::remove_dir_all(node.data_dir()).unwrap();
        }
        self.add_node(id, Entry::Wait).await;
    }

    async fn add_node(&mut self, id: u64, entry: Entry) {
        let dir = self.root().join(format!("node{id}"));
        let pki = self.pki();
        let launched = launch(
            &self.binary,
            &dir,
            self.options.data_quota_mib,
            Bound::new(WAIT, POLL),
            "tessera-testkit",
            |api, cluster| node_config(&self.options, &pki, id, (api, cluster), entry.clone()),
        )
        .await
        .unwrap_or_else(|e| panic!("node {id}: {e:#}"));
        self.nodes.push(TestNode {
            id,
            dir,
            api_addr: format!("https://{}", launched.addresses.api),
            cluster_addr: launched.addresses.cluster.to_string(),
            process: Some(launched.process),
            data_mount: launched.data_mount,
        });
    }

    async fn wait_for_voters(&self) {
        let expected = self.nodes.len();
        let client = self.client(1);
        wait_for("all nodes to become voters", WAIT, || async {
            let status = client.status().await.map_err(|e| e.to_string())?;
            let voters = status.members.iter().filter(|m| m.role == "voter").count();
            if voters == expected && status.leader_id.is_some() {
                Ok(())
            } else {
                Err(format!(
                    "{voters}/{expected} voters, leader {:?}",
                    status.leader_id
                ))
            }
        })
        .await;
    }

    /// A client with the admin certificate for the given nodes, in that order.
    pub fn client_for(&self, ids: &[u64]) -> Client {
        let endpoints = ids
            .iter()
            .map(|id| self.node(*id).api_addr.clone())
            .collect();
        self.client_with_cert(endpoints, pki::ADMIN_IDENTITY)
    }

    /// Every node's API endpoint, node `first`'s first: the one a client tries first.
    pub fn endpoints_from(&self, first: u64) -> Vec<String> {
        let node = self.node(first);
        let others = self.nodes.iter().filter(|n| n.id != first);
        std::iter::once(node)
            .chain(others)
            .map(|n| n.api_addr.clone())
            .collect()
    }

    /// A client with the admin certificate for one node only.
    pub fn client(&self, id: u64) -> Client {
        self.client_for(&[id])
    }

    /// A raw gRPC channel to one node with the admin certificate, for calling the generated
    /// `tessera_proto` clients directly.
    pub fn channel(&self, id: u64) -> tonic::transport::Channel {
        self.channel_with_cert(id, pki::ADMIN_IDENTITY)
    }

    /// A raw gRPC channel to one node with the certificate `pki/<identity>.pem` (`admin`, or
    /// the unprivileged `app`).
    pub fn channel_with_cert(&self, id: u64, identity: &str) -> tonic::transport::Channel {
        let pki = self.pki();
        let read = |f: &str| std::fs::read(pki.join(f)).expect("pki file");
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(pki::NODE_CA)))
            .identity(tonic::transport::Identity::from_pem(
                read(&format!("{identity}.pem")),
                read(&format!("{identity}-key.pem")),
            ));
        tonic::transport::Endpoint::from_shared(self.node(id).api_addr.clone())
            .expect("endpoint")
            .tls_config(tls)
            .expect("tls")
            .timeout(Duration::from_secs(30))
            .connect_lazy()
    }

    /// A follower, once the running nodes agree on a leader.
    pub async fn follower(&self) -> u64 {
        let leader = self.leader().await;
        self.nodes
            .iter()
            .find(|n| n.is_running() && n.id != leader)
            .map(|n| n.id)
            .expect("a running follower")
    }

    /// A client with the certificate `pki/<identity>.pem` for `endpoints`.
    pub fn client_with_cert(&self, endpoints: Vec<String>, identity: &str) -> Client {
        let pki = self.pki();
        let mut config = ClientConfig::from_files(
            endpoints,
            &pki.join(pki::NODE_CA),
            &pki.join(format!("{identity}.pem")),
            &pki.join(format!("{identity}-key.pem")),
        )
        .expect("client config");
        // Tests poll with their own bounded waits and assert exact errors: one pass only.
        config.retry_for = Duration::ZERO;
        Client::new(config).expect("client")
    }

    /// Makes [`TestCluster::unseal`] use `shares`: after a backup restore the cluster
    /// unseals with the shares of the cluster the backup came from.
    pub fn adopt_shares(&mut self, shares: Vec<String>) {
        self.shares = shares;
    }

    /// The unseal shares from [`TestCluster::init`].
    pub fn shares(&self) -> &[String] {
        &self.shares
    }

    /// Initialises the cluster through node 1 (5 shares, threshold 3).
    pub async fn init(&mut self) -> Vec<String> {
        let reply = self.client(1).init(5, 3).await.expect("init");
        self.shares = reply.shares.clone();
        reply.shares
    }

    /// Unseals a node with the first three shares, waiting until it has the seal
    /// configuration.
    pub async fn unseal(&self, id: u64) {
        let client = self.client(id);
        for share in self.shares.iter().take(3) {
            wait_for(
                &format!("node {id} to accept an unseal share"),
                WAIT,
                || async { client.unseal(share).await.map_err(|e| e.to_string()) },
            )
            .await;
        }
        let status = client.status().await.expect("status");
        assert!(!status.sealed, "node {id} still sealed after three shares");
    }

    /// Waits until a node serves reads from its local state (unsealed, holding the lease).
    pub async fn wait_serving(&self, id: u64) {
        let client = self.client(id);
        wait_for(&format!("node {id} to serve"), WAIT, || async {
            client.list_keys().await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Waits until node `id`'s status satisfies `check` (whose error says what it saw
    /// instead), for at most [`WAIT`]; panics naming `what` after that.
    pub async fn wait_status(
        &self,
        id: u64,
        what: &str,
        check: impl Fn(&StatusResponse) -> Result<(), String>,
    ) {
        let client = self.client(id);
        wait_for(what, WAIT, || async {
            let status = client.status().await.map_err(|e| e.to_string())?;
            check(&status)
        })
        .await;
    }

    /// [`TestCluster::wait_status`] on every node in turn, e.g. until all have applied a
    /// change; `what` completes "node N to …".
    pub async fn wait_status_all(
        &self,
        what: &str,
        check: impl Fn(&StatusResponse) -> Result<(), String>,
    ) {
        for id in self.ids() {
            self.wait_status(id, &format!("node {id} to {what}"), &check)
                .await;
        }
    }

    /// The leader all running nodes agree on.
    pub async fn leader(&self) -> u64 {
        let running: Vec<u64> = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect();
        wait_for("the running nodes to agree on a leader", WAIT, || async {
            let mut seen = None;
            for id in &running {
                let status = self.client(*id).status().await.map_err(|e| e.to_string())?;
                let leader = status.leader_id.ok_or("no leader yet")?;
                if !running.contains(&leader) {
                    return Err(format!("node {id} still follows stopped node {leader}"));
                }
                if seen.is_some_and(|s| s != leader) {
                    return Err("nodes disagree on the leader".into());
                }
                seen = Some(leader);
            }
            seen.ok_or_else(|| "no running node".to_owned())
        })
        .await
    }

    /// SIGKILLs a node.
    pub fn kill(&mut self, id: u64) {
        if let Some(process) = self.node_mut(id).process.take() {
            process.kill();
        }
    }

    /// Stops a node with SIGTERM (SIGKILL after 15 s); returns whether it exited cleanly.
    pub fn stop(&mut self, id: u64) -> bool {
        self.node_mut(id)
            .process
            .take()
            .is_some_and(|p| p.stop(Duration::from_secs(15)))
    }

    /// Whether node `id`'s process has exited on its own.
    pub fn has_exited(&mut self, id: u64) -> bool {
        self.node_mut(id)
            .process
            .as_mut()
            .is_some_and(NodeProcess::has_exited)
    }

    /// Waits until node `id` exits on its own and returns how it exited.
    pub async fn wait_exited(&mut self, id: u64) -> std::process::ExitStatus {
        let node = self.node_mut(id);
        let process = node.process.as_mut().expect("node is running");
        let status = wait_for(&format!("node {id} to exit"), WAIT, || {
            let status = process.exit_status();
            async move { status.ok_or("still running") }
        })
        .await;
        node.process = None;
        status
    }

    fn data_mount(&self, id: u64) -> &Tmpfs {
        self.node(id)
            .data_mount
            .as_ref()
            .expect("the cluster was started with data_quota_mib")
    }

    /// Fills node `id`'s data filesystem until writes fail ("no space left on device").
    pub fn fill_disk(&self, id: u64) {
        disk::fill(self.data_mount(id).path()).unwrap();
    }

    /// Frees node `id`'s data filesystem again.
    pub fn free_disk(&self, id: u64) {
        disk::free(self.data_mount(id).path()).unwrap();
    }

    /// Restarts a stopped or killed node on its data directory and waits for its API.
    pub async fn restart(&mut self, id: u64) {
        let binary = self.binary.clone();
        let node = self.node_mut(id);
        assert!(node.process.is_none(), "node {id} is still running");
        node.process = Some(NodeProcess::spawn(&binary, &node.config(), &node.log()));
        let client = self.client(id);
        wait_for(
            &format!("node {id} to answer after restart"),
            WAIT,
            || async { client.status().await.map_err(|e| e.to_string()) },
        )
        .await;
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.process.take();
            // Unmounted before the temporary root is removed, which cannot remove mount points.
            node.data_mount.take();
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!(
                    "----- node {} log ({}) -----\n{}",
                    node.id,
                    node.log().display(),
                    tail(&node.log(), 60)
                );
            }
            if let Some(root) = self.root.take() {
                eprintln!("test cluster files kept in {}", root.keep().display());
            }
        }
    }
}
