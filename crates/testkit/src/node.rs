//! Starting one node of a harness cluster (a [`crate::TestCluster`] or the chaos harness's):
//! configuration on kernel-chosen ports, an optional tmpfs data directory, the process, and
//! the configuration pinned to the ports the node bound.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use tessera_launcher::config::{loopback, NodeConfig};
use tessera_launcher::{published_addresses, Bound, NodeFiles};
use tessera_server::Addresses;

use crate::disk::Tmpfs;
use crate::process::{tail, NodeProcess};

/// A node started by [`launch`].
pub struct Launched {
    /// Its process.
    pub process: NodeProcess,
    /// The addresses it bound.
    pub addresses: Addresses,
    /// Its data directory's own tmpfs, if it was given a quota.
    pub data_mount: Option<Tmpfs>,
}

/// Starts the node whose directory is `dir` (`config.toml`, `server.log`, `data/`): writes
/// `config(api, cluster)` on port 0, mounts a tmpfs of `data_quota_mib` MiB on its data
/// directory if asked (needs root), spawns `binary`, waits within `bound` for the addresses it
/// publishes, and rewrites the configuration on those ports, so a restart comes back on the
/// same addresses. `generator` names the harness in the file's header.
///
/// # Errors
/// If a file cannot be written, the tmpfs cannot be mounted, or the node does not publish its
/// addresses in time (the error carries the end of its log).
pub async fn launch(
    binary: &Path,
    dir: &Path,
    data_quota_mib: Option<u64>,
    bound: Bound,
    generator: &str,
    config: impl Fn(SocketAddr, SocketAddr) -> NodeConfig,
) -> Result<Launched> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.config();
    config(loopback(0), loopback(0)).write(&path, generator)?;
    let data = dir.data_dir();
    let data_mount = data_quota_mib
        .map(|mib| {
            Tmpfs::mount(&data, mib).context("a data directory on a tmpfs of its own needs root")
        })
        .transpose()?;
    let log = dir.log();
    let process = NodeProcess::spawn(binary, &path, &log);
    let addresses = bound
        .until("the node to publish its addresses", || async {
            published_addresses(&data)
        })
        .await
        .with_context(|| format!("the node did not start; log:\n{}", tail(&log, 30)))?;
    config(addresses.api, addresses.cluster).write(&path, generator)?;
    Ok(Launched {
        process,
        addresses,
        data_mount,
    })
}
