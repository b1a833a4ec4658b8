//! A chaos cluster: N `tessera server` processes whose every link runs through a fault proxy.
//!
//! Each node advertises a logical cluster address (`node<i>.chaos.invalid:7000`, which never
//! resolves) and is configured to dial every peer through the proxy of that directed link, so
//! the harness decides the fate of each link on its own. Clients reach node i through proxy
//! `client→i`. The harness's own administrative calls (init, unseal, status) go straight to the
//! nodes, like an operator on the machine.
//!
//! Nodes carry the region labels of the run's [`Topology`]; with a WAN delay, every link
//! between nodes of different regions holds its traffic for that long in each direction (the
//! proxy's latency, which faults add to and healing keeps), while links within a region and
//! client links stay undelayed, as for clients in the node's own region.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tessera_client::{Client, ClientConfig};
use tessera_launcher::config::{Entry, NodeConfig, NodeOptions};
use tessera_launcher::{pki, Bound, NodeFiles};
use tessera_server::config::{FaultSection, RaftSection};
use tessera_server::{Addresses, NodeId};
use tessera_testkit::disk::{self, Tmpfs};
use tessera_testkit::node::launch;
use tessera_testkit::process::NodeProcess;

use crate::invariants::AuditVerification;
use crate::proxy::{LinkFault, Proxy};
use crate::topology::Topology;

/// Bound on start-up and recovery waits.
pub const WAIT: Duration = Duration::from_secs(90);
/// Start-up and recovery waits: up to [`WAIT`], trying every 200 ms.
pub const RECOVERY: Bound = Bound::new(WAIT, Duration::from_millis(200));

/// What cluster to build.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The nodes and their regions.
    pub topology: Topology,
    /// One-way delay of every link between nodes of different regions (zero: none).
    pub wan_delay: Duration,
    /// The `tessera` binary.
    pub binary: PathBuf,
    /// Raft timing of every node (see [`raft_timing`]).
    pub raft: RaftSection,
    /// Deliberate bugs to switch on (needs a fault-injection build); see [`injected`].
    pub faults: Option<FaultSection>,
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

/// `config()`, `log()` and `data_dir()` in [`ChaosNode::dir`].
impl NodeFiles for ChaosNode {
    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl ChaosNode {
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

/// The nodes' Raft timing: the WAN profile of `docs/operations.md` for runs across delayed
/// regions, otherwise a heartbeat of 100 ms and elections after 1–2 s; `lease_ms` overrides
/// the lease window. Snapshots every 500 entries (keeping 100), so that runs exercise
/// snapshot installs.
pub fn raft_timing(wan: bool, lease_ms: Option<u64>) -> RaftSection {
    let base = if wan {
        RaftSection::wan()
    } else {
        RaftSection {
            heartbeat_ms: 100,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            lease_ms: 800,
            write_timeout_ms: 8000,
            ..RaftSection::default()
        }
    };
    RaftSection {
        lease_ms: lease_ms.unwrap_or(base.lease_ms),
        snapshot_after_logs: 500,
        logs_kept_after_snapshot: 100,
        ..base
    }
}

/// Waits until the node `admin` calls (node `id`) reports that it serves (unsealed, with a
/// lease), bounded by [`WAIT`]; each status call gets 2 s.
///
/// # Errors
/// If it does not serve within [`WAIT`], with what its last status said.
pub async fn wait_serving(id: u64, admin: &Client) -> Result<()> {
    RECOVERY
        .until(&format!("node {id} to serve"), || async {
            match tokio::time::timeout(Duration::from_secs(2), admin.status()).await {
                Ok(Ok(status)) if status.serving => Ok(()),
                Ok(Ok(_)) => Err(anyhow!("not serving")),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(anyhow!("no status within 2 s")),
            }
        })
        .await?;
    Ok(())
}

/// The `[faults]` section that switches on the deliberate bugs named in `flags` (the section's
/// keys, `-` or `_` between words); `None` for no flags.
///
/// # Errors
/// For a name that is not a deliberate bug.
pub fn injected(flags: &[String]) -> Result<Option<FaultSection>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let table: toml::Table = flags
        .iter()
        .map(|flag| (flag.replace('-', "_"), toml::Value::Boolean(true)))
        .collect();
    let faults = toml::Value::Table(table)
        .try_into::<FaultSection>()
        .with_context(|| format!("--inject {}", flags.join(",")))?;
    Ok(Some(faults))
}

impl ChaosCluster {
    /// Builds, starts, joins, initialises and unseals the cluster under `root`.
    ///
    /// # Errors
    /// If the PKI cannot be made, a node does not start, or the cluster does not form.
    pub async fn start(spec: ClusterSpec, root: &Path, seed: u64) -> Result<Self> {
        pki::init(&root.join("pki"), spec.topology.nodes(), &[])?;
        let mut links = BTreeMap::new();
        for from in spec.topology.ids() {
            for to in spec.topology.ids().filter(|to| *to != from) {
                let proxy = Proxy::start(seed ^ (from << 32) ^ to).await?;
                if spec.topology.crosses(from, to) {
                    proxy.set_latency(spec.wan_delay);
                }
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
        for id in cluster.spec.topology.ids() {
            cluster.add_node(id, seed).await?;
        }
        cluster.wait_for_voters().await?;
        let reply = cluster.admin(1)?.init(5, 3).await?;
        cluster.shares = reply.shares;
        for id in cluster.spec.topology.ids() {
            cluster.unseal(id).await?;
        }
        Ok(cluster)
    }

    /// Node `id`'s configuration: listening at `api` and `cluster`, advertising its logical
    /// address, dialling every peer through the proxy of that link, and joining through the
    /// proxy to node 1.
    fn node_config(&self, id: u64, api: SocketAddr, cluster: SocketAddr) -> NodeConfig {
        let entry = match self.links.get(&(id, 1)) {
            Some(seed) if id != 1 => Entry::Join(seed.addr().to_string()),
            _ => Entry::Bootstrap,
        };
        let options = NodeOptions {
            region: Topology::label(self.spec.topology.region_of(id)),
            raft: Some(self.spec.raft.clone()),
            faults: self.spec.faults.clone(),
            ..NodeOptions::default()
        };
        let mut config = NodeConfig::new(
            &self.root.join("pki"),
            NodeId::new(id),
            api,
            cluster,
            entry,
            &options,
        );
        config.cluster.advertise = Some(logical(id));
        config.cluster.dial = self
            .links
            .iter()
            .filter(|((from, _), _)| *from == id)
            .map(|((_, to), proxy)| (logical(*to), proxy.addr().to_string()))
            .collect();
        config
    }

    /// Verifies every node's audit files with `tessera audit verify` (run once no client
    /// calls are in flight, so no record is half-written).
    ///
    /// # Errors
    /// If the files cannot be listed or the binary cannot run.
    pub fn verify_audit(&self) -> Result<BTreeMap<u64, AuditVerification>> {
        let mut results = BTreeMap::new();
        for node in &self.nodes {
            let dir = node.data_dir().join("audit");
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
        let launched = launch(
            &self.spec.binary,
            &dir,
            self.spec.data_quota_mib,
            RECOVERY,
            "tessera-chaos",
            |api, cluster| self.node_config(id, api, cluster),
        )
        .await
        .with_context(|| format!("node {id}"))?;
        let Addresses { api, cluster, .. } = launched.addresses;
        for (_, proxy) in self.links.iter().filter(|((_, to), _)| *to == id) {
            proxy.set_target(cluster);
        }
        let client_proxy = Proxy::start(seed ^ 0xC11E ^ id).await?;
        client_proxy.set_target(api);
        self.nodes.push(ChaosNode {
            id,
            dir,
            api,
            cluster,
            client_proxy,
            process: Some(launched.process),
            data_mount: launched.data_mount,
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
            &pki.join(pki::NODE_CA),
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
        self.proxied_client(id, pki::ADMIN_IDENTITY, timeout)
    }

    /// A workload client for node `id` holding the unprivileged `app` certificate, through
    /// the node's client proxy: what it may do depends on the policies the workload puts.
    ///
    /// # Errors
    /// If the PKI files cannot be read.
    pub fn app_client(&self, id: u64, timeout: Duration) -> Result<Client> {
        self.proxied_client(id, pki::APP_IDENTITY, timeout)
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

    /// An operator client that reaches a node API at `addr` (for example through a proxy of
    /// the caller's own), without retries.
    ///
    /// # Errors
    /// If the PKI files cannot be read.
    pub fn client_via(&self, addr: SocketAddr, timeout: Duration) -> Result<Client> {
        self.client_to(
            format!("https://{addr}"),
            pki::ADMIN_IDENTITY,
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
            pki::ADMIN_IDENTITY,
            Duration::from_secs(10),
            Duration::from_secs(60),
        )
    }

    async fn wait_for_voters(&self) -> Result<()> {
        let admin = self.admin(1)?;
        let expected = self.spec.topology.nodes();
        RECOVERY
            .until("the cluster to form", || async {
                let status = admin.status().await?;
                let voters = status.members.iter().filter(|m| m.role == "voter").count();
                if voters as u64 == expected && status.leader_id.is_some() {
                    Ok(())
                } else {
                    Err(anyhow!(
                        "{voters} of {expected} voters, leader {:?}",
                        status.leader_id
                    ))
                }
            })
            .await?;
        Ok(())
    }

    /// Unseals node `id` with three shares, retrying while it lacks the seal configuration
    /// (a failed round is reset, so the next starts from no shares).
    ///
    /// # Errors
    /// If the node does not unseal within [`WAIT`].
    pub async fn unseal(&self, id: u64) -> Result<()> {
        let admin = self.admin(id)?;
        RECOVERY
            .until(&format!("node {id} to unseal"), || async {
                let round = self.unseal_round(&admin).await;
                if round.is_err() {
                    let _ = admin.unseal_reset().await;
                }
                round
            })
            .await?;
        Ok(())
    }

    /// Gives `admin`'s node three shares; fails if one is refused or it stays sealed.
    async fn unseal_round(&self, admin: &Client) -> Result<()> {
        let mut sealed = true;
        for share in self.shares.iter().take(3) {
            sealed = admin.unseal(share).await?.sealed;
        }
        if sealed {
            Err(anyhow!("still sealed after three shares"))
        } else {
            Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn injected_flags_become_the_faults_section() {
        assert_eq!(injected(&[]).unwrap(), None);
        let flags = [
            "serve-without-lease".to_owned(),
            "slow_lease_clock".to_owned(),
        ];
        let faults = injected(&flags).unwrap().unwrap();
        assert_eq!(
            faults,
            FaultSection {
                serve_without_lease: true,
                slow_lease_clock: true,
                ..FaultSection::default()
            }
        );
        assert!(injected(&["no-such-bug".to_owned()]).is_err());
    }
}
