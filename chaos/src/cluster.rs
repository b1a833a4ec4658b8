//! A chaos cluster: N `tessera server` processes whose every link runs through a fault proxy.
//!
//! Each node advertises a logical cluster address (`node<i>.chaos.invalid:7000`, which never
//! resolves) and is configured to dial every peer through the proxy of that directed link, so
//! the harness decides the fate of each link on its own. Clients reach node i through proxy
//! `client→i`. The harness's own administrative calls (init, unseal, status) go straight to the
//! nodes, like an operator on the machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tessera_client::{Client, ClientConfig};
use tessera_testkit::disk::{self, Tmpfs};
use tessera_testkit::process::{tail, NodeProcess};

use crate::invariants::AuditVerification;
use crate::proxy::{LinkFault, Proxy};

/// Bound on start-up and recovery waits.
pub const WAIT: Duration = Duration::from_secs(90);

/// What cluster to build.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Number of nodes.
    pub nodes: u64,
    /// The `tessera` binary.
    pub binary: PathBuf,
    /// Raft heartbeat interval.
    pub heartbeat_ms: u64,
    /// Election timeout range.
    pub election_timeout_ms: (u64, u64),
    /// Follower lease window.
    pub lease_ms: u64,
    /// Deliberate bugs to switch on (`[faults]` keys of a fault-injection build).
    pub inject: Vec<String>,
    /// If set, each node's data directory is a tmpfs of this many MiB (for disk faults).
    pub data_quota_mib: Option<u64>,
}

/// One node.
pub struct ChaosNode {
    /// Node id.
    pub id: u64,
    /// Its directory (config, log, data).
    pub dir: PathBuf,
    /// Its real API address.
    pub api: SocketAddr,
    /// Its real cluster address.
    pub cluster: SocketAddr,
    /// The proxy clients use to reach it.
    pub client_proxy: Proxy,
    process: Option<NodeProcess>,
    /// Declared after `process`, so the node is stopped before its data is unmounted.
    data_mount: Option<Tmpfs>,
}

impl ChaosNode {
    /// Its configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// Its log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Whether its process runs (it may be paused).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }
}

/// The cluster. Dropping it kills every node and closes every proxy.
pub struct ChaosCluster {
    spec: ClusterSpec,
    root: PathBuf,
    /// The nodes, node 1 first.
    pub nodes: Vec<ChaosNode>,
    links: BTreeMap<(u64, u64), Proxy>,
    shares: Vec<String>,
}

fn logical(id: u64) -> String {
    format!("node{id}.chaos.invalid:7000")
}

impl ChaosCluster {
    /// Builds, starts, joins, initialises and unseals the cluster under `root`.
    ///
    /// # Errors
    /// If the PKI cannot be made, a node does not start, or the cluster does not form.
    pub async fn start(spec: ClusterSpec, root: &Path, seed: u64) -> Result<Self> {
        let pki = root.join("pki");
        let out = Command::new(&spec.binary)
            .args(["pki", "init", "--nodes", &spec.nodes.to_string(), "--dir"])
            .arg(&pki)
            .output()
            .with_context(|| format!("cannot run {}", spec.binary.display()))?;
        if !out.status.success() {
            bail!("pki init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut links = BTreeMap::new();
        for from in 1..=spec.nodes {
            for to in (1..=spec.nodes).filter(|to| *to != from) {
                let proxy = Proxy::start(seed ^ (from << 32) ^ to).await?;
                links.insert((from, to), proxy);
            }
        }
        let mut cluster = Self {
            spec,
            root: root.to_path_buf(),
            nodes: Vec::new(),
            links,
            shares: Vec::new(),
        };
        for id in 1..=cluster.spec.nodes {
            cluster.add_node(id, seed).await?;
        }
        cluster.wait_for_voters().await?;
        let reply = cluster.admin(1)?.init(5, 3).await?;
        cluster.shares = reply.shares;
        for id in 1..=cluster.spec.nodes {
            cluster.unseal(id).await?;
        }
        Ok(cluster)
    }

    fn config_text(&self, id: u64, api: &str, cluster: &str) -> String {
        let pki = self.root.join("pki");
        let mut dial = String::new();
        for (&(from, to), proxy) in &self.links {
            if from == id {
                let _ = writeln!(dial, "\"{}\" = \"{}\"", logical(to), proxy.addr());
            }
        }
        let entry = match id {
            1 => "bootstrap = true".to_owned(),
            _ => match self.links.get(&(id, 1)) {
                Some(seed) => format!("join = [\"{}\"]", seed.addr()),
                None => "bootstrap = true".to_owned(),
            },
        };
        let mut faults = String::new();
        if !self.spec.inject.is_empty() {
            faults.push_str("\n[faults]\n");
            for flag in &self.spec.inject {
                let _ = writeln!(faults, "{} = true", flag.replace('-', "_"));
            }
        }
        format!(
            r#"node_id = {id}
data_dir = "data"
region = "region-{region}"

[api]
listen = "{api}"

[cluster]
listen = "{cluster}"
advertise = "{advertise}"
{entry}

[cluster.dial]
{dial}
[tls]
node_ca = "{pki}/ca.pem"
node_cert = "{pki}/node{id}.pem"
node_key = "{pki}/node{id}-key.pem"
client_ca = "{pki}/client-ca.pem"

[raft]
heartbeat_ms = {hb}
election_timeout_min_ms = {emin}
election_timeout_max_ms = {emax}
lease_ms = {lease}
snapshot_after_logs = 500
logs_kept_after_snapshot = 100
write_timeout_ms = 8000

[audit]
enabled = true
{faults}"#,
            region = (id - 1) % 3 + 1,
            advertise = logical(id),
            pki = pki.display(),
            hb = self.spec.heartbeat_ms,
            emin = self.spec.election_timeout_ms.0,
            emax = self.spec.election_timeout_ms.1,
            lease = self.spec.lease_ms,
        )
    }

    /// Verifies every node's audit files with `tessera audit verify` (run once no client
    /// calls are in flight, so no record is half-written).
    ///
    /// # Errors
    /// If the files cannot be listed or the binary cannot run.
    pub fn verify_audit(&self) -> Result<BTreeMap<u64, AuditVerification>> {
        let mut results = BTreeMap::new();
        for node in &self.nodes {
            let dir = node.dir.join("data").join("audit");
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect();
            files.sort();
            let out = Command::new(&self.spec.binary)
                .args(["audit", "verify", "-o", "json"])
                .args(&files)
                .output()
                .with_context(|| format!("cannot run {}", self.spec.binary.display()))?;
            let detail = if out.status.success() {
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            } else {
                String::from_utf8_lossy(&out.stderr).trim().to_owned()
            };
            results.insert(
                node.id,
                AuditVerification {
                    files: files.len(),
                    ok: out.status.success(),
                    detail,
                },
            );
        }
        Ok(results)
    }

    async fn add_node(&mut self, id: u64, seed: u64) -> Result<()> {
        let dir = self.root.join(format!("node{id}"));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("config.toml");
        std::fs::write(&config, self.config_text(id, "127.0.0.1:0", "127.0.0.1:0"))?;
        let data_mount = match self.spec.data_quota_mib {
            Some(mib) => Some(Tmpfs::mount(&dir.join("data"), mib).context(
                "the disk fault puts each node's data on a tmpfs of its own: run as root or \
                 leave `disk` out of --faults",
            )?),
            None => None,
        };
        let process = NodeProcess::spawn(&self.spec.binary, &config, &dir.join("server.log"));
        let published = dir.join("data").join("addresses.json");
        let deadline = std::time::Instant::now() + WAIT;
        let addresses: serde_json::Value = loop {
            if let Ok(text) = std::fs::read_to_string(&published) {
                if let Ok(value) = serde_json::from_str(&text) {
                    break value;
                }
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "node {id} did not start; log:\n{}",
                    tail(&dir.join("server.log"), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let parse = |field: &str| -> Result<SocketAddr> {
            addresses
                .get(field)
                .and_then(|v| v.as_str())
                .context("addresses.json lacks a field")?
                .parse()
                .context("addresses.json holds a bad address")
        };
        let (api, cluster) = (parse("api")?, parse("cluster")?);
        for (_, proxy) in self.links.iter().filter(|((_, to), _)| *to == id) {
            proxy.set_target(cluster);
        }
        let client_proxy = Proxy::start(seed ^ 0xC11E ^ id).await?;
        client_proxy.set_target(api);
        // Pin the ports the kernel chose, so a restart comes back on the same addresses.
        std::fs::write(
            &config,
            self.config_text(id, &api.to_string(), &cluster.to_string()),
        )?;
        self.nodes.push(ChaosNode {
            id,
            dir,
            api,
            cluster,
            client_proxy,
            process: Some(process),
            data_mount,
        });
        Ok(())
    }

    fn node(&self, id: u64) -> Result<&ChaosNode> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .with_context(|| format!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> Result<&mut ChaosNode> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .with_context(|| format!("no node {id}"))
    }

    fn client_to(
        &self,
        endpoint: String,
        identity: &str,
        timeout: Duration,
        retry_for: Duration,
    ) -> Result<Client> {
        let pki = self.root.join("pki");
        let mut config = ClientConfig::from_files(
            vec![endpoint],
            &pki.join("ca.pem"),
            &pki.join(format!("{identity}.pem")),
            &pki.join(format!("{identity}-key.pem")),
        )?;
        config.request_timeout = timeout;
        config.connect_timeout = Duration::from_secs(2);
        config.retry_for = retry_for;
        Ok(Client::new(config)?)
    }

    /// A workload client for node `id`, through its client proxy.
    ///
    /// # Errors
    /// If the PKI files cannot be read.
    pub fn client(&self, id: u64, timeout: Duration) -> Result<Client> {
        self.proxied_client(id, "admin", timeout)
    }

    /// A workload client for node `id` holding the unprivileged `app` certificate, through
    /// the node's client proxy: what it may do depends on the policies the workload puts.
    ///
    /// # Errors
    /// If the PKI files cannot be read.
    pub fn app_client(&self, id: u64, timeout: Duration) -> Result<Client> {
        self.proxied_client(id, "app", timeout)
    }

    fn proxied_client(&self, id: u64, identity: &str, timeout: Duration) -> Result<Client> {
        let node = self.node(id)?;
        // Each attempt is recorded on its own: the SDK must not retry behind the history's back.
        self.client_to(
            format!("https://{}", node.client_proxy.addr()),
            identity,
            timeout,
            Duration::ZERO,
        )
    }

    /// An operator client for node `id`, straight to its API port.
    ///
    /// # Errors
    /// If the PKI files cannot be read.
    pub fn admin(&self, id: u64) -> Result<Client> {
        let node = self.node(id)?;
        // Operator calls wait out elections and lease gaps, like a patient operator.
        self.client_to(
            format!("https://{}", node.api),
            "admin",
            Duration::from_secs(10),
            Duration::from_secs(60),
        )
    }

    async fn wait_for_voters(&self) -> Result<()> {
        let admin = self.admin(1)?;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Ok(status) = admin.status().await {
                let voters = status.members.iter().filter(|m| m.role == "voter").count();
                if voters as u64 == self.spec.nodes && status.leader_id.is_some() {
                    return Ok(());
                }
            }
            if std::time::Instant::now() > deadline {
                bail!("the cluster did not form within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Unseals node `id` with three shares, retrying while it lacks the seal configuration.
    ///
    /// # Errors
    /// If the node does not unseal within [`WAIT`].
    pub async fn unseal(&self, id: u64) -> Result<()> {
        let admin = self.admin(id)?;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let mut sealed = true;
            for share in self.shares.iter().take(3) {
                match admin.unseal(share).await {
                    Ok(reply) => sealed = reply.sealed,
                    Err(_) => break,
                }
            }
            if !sealed {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("node {id} did not unseal within {WAIT:?}");
            }
            let _ = admin.unseal_reset().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILLs node `id`.
    ///
    /// # Errors
    /// For an unknown node.
    pub fn kill(&mut self, id: u64) -> Result<()> {
        if let Some(process) = self.node_mut(id)?.process.take() {
            process.kill();
        }
        Ok(())
    }

    /// Stops node `id` with SIGTERM (SIGKILL after a grace period).
    ///
    /// # Errors
    /// For an unknown node.
    pub fn stop(&mut self, id: u64) -> Result<()> {
        if let Some(process) = self.node_mut(id)?.process.take() {
            process.stop(Duration::from_secs(10));
        }
        Ok(())
    }

    /// Restarts a stopped or killed node on its data directory; it comes back sealed.
    ///
    /// # Errors
    /// For an unknown node.
    pub fn restart(&mut self, id: u64) -> Result<()> {
        let binary = self.spec.binary.clone();
        let node = self.node_mut(id)?;
        if node.process.is_none() {
            node.process = Some(NodeProcess::spawn(&binary, &node.config(), &node.log()));
        }
        Ok(())
    }

    fn data_mount(&self, id: u64) -> Result<PathBuf> {
        Ok(self
            .node(id)?
            .data_mount
            .as_ref()
            .with_context(|| format!("node {id}'s data is not on a tmpfs of its own"))?
            .path()
            .to_path_buf())
    }

    /// Fills node `id`'s data filesystem until writes fail; returns the bytes it took.
    ///
    /// # Errors
    /// If the node's data is not on a tmpfs of its own or the ballast cannot be written.
    pub async fn fill_disk(&self, id: u64) -> Result<u64> {
        let path = self.data_mount(id)?;
        // Filling writes hundreds of MiB: keep it off the async workers.
        tokio::task::spawn_blocking(move || disk::fill(&path)).await?
    }

    /// Frees node `id`'s data filesystem.
    ///
    /// # Errors
    /// If the node's data is not on a tmpfs of its own or the ballast cannot be removed.
    pub fn free_disk(&self, id: u64) -> Result<()> {
        disk::free(&self.data_mount(id)?)
    }

    /// Whether node `id`'s process has exited on its own (its exit is then collected).
    ///
    /// # Errors
    /// For an unknown node.
    pub fn has_exited(&mut self, id: u64) -> Result<bool> {
        let node = self.node_mut(id)?;
        let exited = node.process.as_mut().is_some_and(NodeProcess::has_exited);
        if exited {
            node.process = None;
        }
        Ok(exited)
    }

    /// Pauses (`true`) or resumes node `id`.
    ///
    /// # Errors
    /// For an unknown node.
    pub fn pause(&self, id: u64, paused: bool) -> Result<()> {
        if let Some(process) = &self.node(id)?.process {
            if paused {
                process.pause();
            } else {
                process.resume();
            }
        }
        Ok(())
    }

    /// Sets the fault of the directed link `from → to`.
    pub fn set_link(&self, from: u64, to: u64, fault: LinkFault) {
        if let Some(proxy) = self.links.get(&(from, to)) {
            proxy.set_fault(fault);
        }
    }

    /// Puts every node-to-node and client link back to `Up`.
    pub fn heal_links(&self) {
        for proxy in self.links.values() {
            proxy.set_fault(LinkFault::Up);
        }
        for node in &self.nodes {
            node.client_proxy.set_fault(LinkFault::Up);
        }
    }

    /// Every directed node-to-node link.
    pub fn link_ids(&self) -> Vec<(u64, u64)> {
        self.links.keys().copied().collect()
    }

    /// The run's working directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The unseal shares.
    pub fn shares(&self) -> &[String] {
        &self.shares
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }
}
