//! A local cluster in one directory: PKI, node configurations, start, init and unseal.
//!
//! Layout of the directory: `pki/` (throw-away CAs and certificates), `node<i>/config.toml`,
//! `node<i>/data/`, `node<i>/server.log`, `node<i>.pid` and `shares.json` (the unseal shares —
//! development only). Preparing a directory that already holds `shares.json` resumes that
//! cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_client::{Client, ClientConfig};
use tessera_server::NodeId;

use crate::config::{NodeConfig, NodeOptions};
use crate::layout::NodeFiles;
use crate::process::{NodeProcess, Nodes};
use crate::wait::Bound;
use crate::{pki, Error};

/// Unseal shares made at init.
pub const SHARES: u32 = 5;
/// Shares needed to unseal.
pub const THRESHOLD: u32 = 3;
/// Bound on every wait while the cluster comes up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// Name of the file holding the unseal shares.
pub const SHARES_FILE: &str = "shares.json";

/// The unseal shares kept in [`SHARES_FILE`].
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SavedShares {
    /// Base64 shares.
    pub shares: Vec<String>,
    /// How many are needed.
    pub threshold: u32,
}

impl std::fmt::Debug for SavedShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedShares")
            .field("shares", &"REDACTED")
            .field("threshold", &self.threshold)
            .finish()
    }
}

/// A local cluster's directory and its nodes.
#[derive(Debug)]
pub struct LocalCluster {
    /// The cluster directory (absolute).
    pub dir: PathBuf,
    /// Whether the directory already held a cluster (its shares are reused).
    pub resumed: bool,
    /// The nodes, node 1 first.
    pub nodes: Nodes,
    /// How often waits for a node poll it ([`POLL_INTERVAL`] unless a caller times the
    /// waits themselves and wants finer steps).
    pub poll_interval: Duration,
}

/// API and cluster ports of node `id` when ports are laid out from `base`: API ports
/// `base..`, cluster ports `base + 100..`.
///
/// # Errors
/// [`Error::Ports`] if they do not fit below 65536.
pub fn base_ports(base: u16, id: u64) -> Result<(u16, u16), Error> {
    let too_high = Error::Ports { base, nodes: id };
    let offset = id
        .checked_sub(1)
        .and_then(|o| u16::try_from(o).ok())
        .ok_or(Error::Ports { base, nodes: id })?;
    let api = base.checked_add(offset);
    let cluster = base.checked_add(100).and_then(|p| p.checked_add(offset));
    match (api, cluster) {
        (Some(a), Some(c)) => Ok((a, c)),
        _ => Err(too_high),
    }
}

/// Node `id`'s ops port in the same layout as [`base_ports`]: `base + 200 + id - 1`.
///
/// # Errors
/// [`Error::Ports`] if it does not fit in a port number.
pub fn ops_port(base: u16, id: u64) -> Result<u16, Error> {
    id.checked_sub(1)
        .and_then(|offset| u16::try_from(offset).ok())
        .and_then(|offset| base.checked_add(200)?.checked_add(offset))
        .ok_or(Error::Ports { base, nodes: id })
}

/// Two ports on 127.0.0.1 that were free a moment ago (the OS picked them), for a cluster
/// that must not collide with others on the machine.
///
/// # Errors
/// [`Error::Io`] if no socket can be bound.
pub fn free_ports() -> Result<(u16, u16), Error> {
    let bind = || {
        std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(Error::io("bind", Path::new("127.0.0.1:0")))
    };
    // Both listeners are gone once their ports are read; two calls could return the same
    // port only if the OS reused it at once, which it does not for a just-closed socket.
    let api = bind()?;
    let mut cluster = bind()?;
    while cluster == api {
        cluster = bind()?;
    }
    Ok((api, cluster))
}

/// Prepares a fresh `dir` (PKI and `nodes` node configurations, ports from `ports(id)`, the
/// options of node `id` from `options(id)`) or finds the nodes of an existing one.
/// `generator` names the command in the files' header.
///
/// # Errors
/// [`Error::NotClusterDir`] for a non-empty directory without shares, [`Error::NoNodes`]
/// for a cluster directory without node configurations, or any file error.
pub fn prepare(
    dir: &Path,
    nodes: u64,
    mut ports: impl FnMut(u64) -> Result<(u16, u16), Error>,
    generator: &str,
    options: impl Fn(u64) -> NodeOptions,
) -> Result<LocalCluster, Error> {
    let resumed = dir.join(SHARES_FILE).exists();
    let pki_dir = dir.join("pki");
    if !resumed {
        let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
        if occupied {
            return Err(Error::NotClusterDir {
                dir: dir.to_owned(),
            });
        }
        pki::init(&pki_dir, nodes, &[])?;
    }
    let count = if resumed {
        (1..)
            .take_while(|i| dir.join(format!("node{i}")).config().exists())
            .count() as u64
    } else {
        nodes
    };
    if count == 0 {
        return Err(Error::NoNodes {
            dir: dir.to_owned(),
        });
    }
    let mut out = Vec::new();
    let mut seed_port = None;
    for id in 1..=count {
        let node_dir = dir.join(format!("node{id}"));
        let config = node_dir.config();
        if !resumed {
            let (api, cluster) = ports(id)?;
            std::fs::create_dir_all(&node_dir).map_err(Error::io("create", &node_dir))?;
            NodeConfig::local(
                &pki_dir,
                NodeId::new(id),
                (api, cluster),
                seed_port,
                &options(id),
            )
            .write(&config, generator)?;
            seed_port.get_or_insert(cluster);
        }
        out.push(NodeProcess::from_config(
            id,
            config,
            dir.join(format!("node{id}.pid")),
        )?);
    }
    Ok(LocalCluster {
        dir: dir.to_owned(),
        resumed,
        nodes: Nodes(out),
        poll_interval: POLL_INTERVAL,
    })
}

/// A client with `identity`'s certificate from the cluster's PKI.
///
/// # Errors
/// [`Error::Client`] if the files cannot be read.
pub fn client(dir: &Path, identity: &str, endpoints: Vec<String>) -> Result<Client, Error> {
    let pki = dir.join("pki");
    let config = ClientConfig::from_files(
        endpoints,
        &pki.join(pki::NODE_CA),
        &pki.join(format!("{identity}.pem")),
        &pki.join(format!("{identity}-key.pem")),
    )?;
    Ok(Client::new(config)?)
}

/// How often waits for a node poll it by default.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What a wait for the cluster last saw while it was not yet ready.
#[derive(Debug, thiserror::Error)]
pub enum Pending {
    /// A call to a node failed.
    #[error(transparent)]
    Refused(#[from] tessera_client::Error),
    /// Not every node has joined as a voter, or there is no leader yet.
    #[error("{voters} of {expected} nodes are voters, leader {leader:?}")]
    Joining {
        /// Voters so far.
        voters: usize,
        /// Nodes started.
        expected: usize,
        /// The leader, if any.
        leader: Option<u64>,
    },
}

impl LocalCluster {
    /// The bound on every wait while the cluster comes up.
    fn bound(&self) -> Bound {
        Bound::new(STARTUP_TIMEOUT, self.poll_interval)
    }

    /// A client with the `admin` certificate.
    ///
    /// # Errors
    /// As [`client`].
    pub fn admin(&self, endpoints: Vec<String>) -> Result<Client, Error> {
        client(&self.dir, pki::ADMIN_IDENTITY, endpoints)
    }

    /// The `https://` API addresses of every node.
    #[must_use]
    pub fn api_addrs(&self) -> Vec<String> {
        self.nodes.0.iter().map(|n| n.api_addr.clone()).collect()
    }

    /// Starts every node, waits until all answer and have joined, initialises the cluster (or
    /// reads the saved shares of a resumed one) and unseals every node.
    ///
    /// # Errors
    /// [`Error`] if a node cannot start or a step times out.
    pub async fn bring_up(&mut self, exe: &Path) -> Result<(), Error> {
        for node in &mut self.nodes.0 {
            node.spawn(exe)?;
        }
        for node in &self.nodes.0 {
            self.wait_answers(node).await?;
        }
        let count = self.nodes.0.len();
        let first = self.nodes.0.first().ok_or(Error::NoNodes {
            dir: self.dir.clone(),
        })?;
        let seed = self.admin(vec![first.api_addr.clone()])?;
        self.bound()
            .until("all nodes to join the cluster", || async {
                let status = seed.status().await?;
                let voters = status.members.iter().filter(|m| m.role == "voter").count();
                if voters == count && status.leader_id.is_some() {
                    Ok(())
                } else {
                    Err(Pending::Joining {
                        voters,
                        expected: count,
                        leader: status.leader_id,
                    })
                }
            })
            .await?;

        let saved = if self.resumed {
            self.saved_shares()?
        } else {
            let reply = seed.init(SHARES, THRESHOLD).await?;
            let saved = SavedShares {
                shares: reply.shares,
                threshold: reply.threshold,
            };
            let shares_path = self.dir.join(SHARES_FILE);
            let text = serde_json::to_string_pretty(&saved).map_err(|source| Error::Shares {
                path: shares_path.clone(),
                source,
            })?;
            write_private(&shares_path, &text)?;
            saved
        };
        for node in &self.nodes.0 {
            self.unseal(node, &saved).await?;
        }
        Ok(())
    }

    /// Waits until `node` answers `Status` on its API port.
    ///
    /// # Errors
    /// [`Error::Timeout`].
    pub async fn wait_answers(&self, node: &NodeProcess) -> Result<(), Error> {
        let client = self.admin(vec![node.api_addr.clone()])?;
        self.bound()
            .until(
                &format!("node {} to answer on {}", node.id, node.api_addr),
                || async { client.status().await.map_err(Pending::from) },
            )
            .await
            .map(drop)
            .map_err(Error::from)
    }

    /// Gives `node` the threshold of `saved` shares, waiting while it has not yet learnt the
    /// seal configuration.
    ///
    /// # Errors
    /// [`Error::Timeout`], or [`Error::Client`] if a share is refused.
    pub async fn unseal(&self, node: &NodeProcess, saved: &SavedShares) -> Result<(), Error> {
        let client = self.admin(vec![node.api_addr.clone()])?;
        let needed = usize::try_from(saved.threshold).unwrap_or(usize::MAX);
        for share in saved.shares.iter().take(needed) {
            // Refused with NOT_INITIALIZED until the seal configuration reaches this node.
            self.bound()
                .until(
                    &format!("node {} to accept an unseal share", node.id),
                    || async { client.unseal(share).await.map_err(Pending::from) },
                )
                .await?;
        }
        Ok(())
    }

    /// The saved unseal shares.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Shares`] if the file is missing or invalid.
    pub fn saved_shares(&self) -> Result<SavedShares, Error> {
        let path = self.dir.join(SHARES_FILE);
        let bytes = std::fs::read(&path).map_err(Error::io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Shares { path, source })
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(Error::io("write", path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ports_are_laid_out_and_bounded() {
        assert_eq!(base_ports(7401, 1).unwrap(), (7401, 7501));
        assert_eq!(base_ports(7401, 3).unwrap(), (7403, 7503));
        assert!(base_ports(65500, 1).is_err());
    }

    #[test]
    fn free_ports_differ() {
        let (api, cluster) = free_ports().unwrap();
        assert_ne!(api, cluster);
    }
}
