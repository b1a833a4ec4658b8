//! The configuration file of a launched node, built from the server's own typed sections and
//! written as TOML.
//!
//! Every launcher (`tessera dev`, `tessera bench`, the test kit and the chaos harness) builds
//! its node configurations here, so a change to the server's configuration schema is a compile
//! error in one place rather than a broken text template at run time. Sections a launcher
//! leaves alone are not written, and the server's `serde` defaults apply to them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tessera_server::config::{
    ClusterSection, FaultSection, LifecycleSection, Listener, RaftSection, TlsSection,
    DEFAULT_RELOAD_POLL_MS,
};
use tessera_server::ops::OpsSection;
use tessera_server::ratelimit::RateLimitSection;
use tessera_server::NodeId;

use crate::{pki, Error};

/// `[audit]`: launched nodes keep the audit trail on, as production nodes should.
#[derive(Clone, Debug, Serialize)]
struct Audit {
    enabled: bool,
}

/// How a node enters its cluster.
#[derive(Clone, Debug)]
pub enum Entry {
    /// Start a new one-node cluster.
    Bootstrap,
    /// Ask the member at this cluster address for admission.
    Join(String),
    /// Neither: wait until a member adds it (`operator add-learner`).
    Wait,
}

/// What a launcher may choose about its nodes beyond their addresses and PKI. Every field
/// left at its default keeps the server's own default.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Region label (the launchers' default: `local`).
    pub region: String,
    /// Raft timing and snapshot settings (`None`: the server's defaults).
    pub raft: Option<RaftSection>,
    /// Key lifecycle limits and job interval (`None`: the server's defaults).
    pub lifecycle: Option<LifecycleSection>,
    /// Per-identity rate limits (the server's default: on, generous).
    pub rate_limits: RateLimitSection,
    /// Deliberate bugs for a `fault-injection` build (`None`: no `[faults]` section, which
    /// any build accepts).
    pub faults: Option<FaultSection>,
    /// The ops port (`/metrics`, `/health`, `/ready`; `None`: none).
    pub ops: Option<OpsSection>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            region: "local".to_owned(),
            raft: None,
            lifecycle: None,
            rate_limits: RateLimitSection::default(),
            faults: None,
            ops: None,
        }
    }
}

impl NodeOptions {
    /// The options without per-identity rate limits, for a benchmark that measures capacity.
    #[must_use]
    pub fn without_rate_limits() -> Self {
        Self {
            rate_limits: RateLimitSection {
                enabled: false,
                ..RateLimitSection::default()
            },
            ..Self::default()
        }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The configuration of one node of a local cluster. Its sections are the server's own
/// types, public so a caller can adjust any of them (a test that breaks a rule on purpose).
#[derive(Clone, Debug, Serialize)]
pub struct NodeConfig {
    /// Node id.
    pub node_id: NodeId,
    /// Data directory, relative to the configuration file.
    pub data_dir: PathBuf,
    /// Region label.
    pub region: String,
    /// `[api]`.
    pub api: Listener,
    /// `[ops]`, if the node has an ops port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<OpsSection>,
    /// `[cluster]`.
    pub cluster: ClusterSection,
    /// `[tls]`.
    pub tls: TlsSection,
    /// `[raft]`, if not the server's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raft: Option<RaftSection>,
    /// `[lifecycle]`, if not the server's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleSection>,
    /// `[faults]`, only for a `fault-injection` build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultSection>,
    audit: Audit,
    /// `[rate_limits]`, if not the server's defaults.
    #[serde(skip_serializing_if = "is_default")]
    pub rate_limits: RateLimitSection,
}

impl NodeConfig {
    /// Node `id` listening at `api` and `cluster` (port 0: the kernel picks, and the node
    /// publishes what it bound), with the certificates of the PKI in `pki_dir` and its data in
    /// `data` next to its configuration file.
    #[must_use]
    pub fn new(
        pki_dir: &Path,
        id: NodeId,
        api: SocketAddr,
        cluster: SocketAddr,
        entry: Entry,
        options: &NodeOptions,
    ) -> Self {
        let (bootstrap, join) = match entry {
            Entry::Bootstrap => (true, Vec::new()),
            Entry::Join(seed) => (false, vec![seed]),
            Entry::Wait => (false, Vec::new()),
        };
        Self {
            node_id: id,
            data_dir: PathBuf::from(crate::layout::DATA_DIR),
            region: options.region.clone(),
            api: Listener {
                listen: api,
                advertise: None,
            },
            ops: options.ops.clone(),
            cluster: ClusterSection {
                listen: cluster,
                advertise: None,
                bootstrap,
                join,
                dial: BTreeMap::new(),
            },
            tls: TlsSection {
                node_ca: pki_dir.join(pki::NODE_CA),
                node_cert: pki_dir.join(format!("node{id}.pem")),
                node_key: pki_dir.join(format!("node{id}-key.pem")),
                client_ca: pki_dir.join(pki::CLIENT_CA),
                reload_poll_ms: DEFAULT_RELOAD_POLL_MS,
            },
            raft: options.raft.clone(),
            lifecycle: options.lifecycle.clone(),
            faults: options.faults.clone(),
            audit: Audit { enabled: true },
            rate_limits: options.rate_limits.clone(),
        }
    }

    /// Node `id` on 127.0.0.1 at `api_port` and `cluster_port`. Without `seed` it bootstraps
    /// the cluster; with it, it joins through that cluster port.
    #[must_use]
    pub fn local(
        pki_dir: &Path,
        id: NodeId,
        (api_port, cluster_port): (u16, u16),
        seed: Option<u16>,
        options: &NodeOptions,
    ) -> Self {
        let entry = seed.map_or(Entry::Bootstrap, |port| {
            Entry::Join(loopback(port).to_string())
        });
        Self::new(
            pki_dir,
            id,
            loopback(api_port),
            loopback(cluster_port),
            entry,
            options,
        )
    }

    /// The file's text, headed by a comment naming `generator`.
    ///
    /// # Errors
    /// [`toml::ser::Error`] if a path is not valid UTF-8.
    pub fn to_toml(&self, generator: &str) -> Result<String, toml::ser::Error> {
        Ok(format!(
            "# Generated by `{generator}`.\n{}",
            toml::to_string(self)?
        ))
    }

    /// Writes the file to `path`, headed by a comment naming `generator`.
    ///
    /// # Errors
    /// [`Error::Encode`] if it cannot be encoded, [`Error::Io`] if it cannot be written.
    pub fn write(&self, path: &Path, generator: &str) -> Result<(), Error> {
        let text = self.to_toml(generator).map_err(|source| Error::Encode {
            path: path.to_owned(),
            source,
        })?;
        std::fs::write(path, text).map_err(Error::io("write", path))
    }
}

/// `127.0.0.1:port`.
#[must_use]
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(config: &NodeConfig, dir: &Path) -> tessera_server::ServerConfig {
        let text = config.to_toml("tessera dev").unwrap();
        tessera_server::ServerConfig::parse(
            &text,
            &dir.join(format!("node{}/config.toml", config.node_id)),
        )
        .unwrap()
    }

    #[test]
    fn the_node_id_is_written_and_read_as_a_bare_integer() {
        let dir = Path::new("/tmp/dev");
        let node = NodeConfig::local(
            &dir.join("pki"),
            NodeId::new(300),
            (7400, 7500),
            None,
            &NodeOptions::default(),
        );
        let text = node.to_toml("tessera dev").unwrap();
        assert!(
            text.starts_with("# Generated by `tessera dev`.\nnode_id = 300\n"),
            "{text}"
        );
        assert_eq!(parse(&node, dir).node_id, NodeId::new(300));
    }

    #[test]
    fn generated_config_parses() {
        let dir = Path::new("/tmp/dev");
        for (id, seed) in [(1, None), (2, Some(7501))] {
            let node = NodeConfig::local(
                &dir.join("pki"),
                NodeId::new(id),
                (7400 + id as u16, 7500 + id as u16),
                seed,
                &NodeOptions::default(),
            );
            let config = parse(&node, dir);
            assert_eq!(config.node_id, NodeId::new(id));
            assert_eq!(config.region, "local");
            assert_eq!(config.cluster.bootstrap, seed.is_none());
            assert_eq!(
                config.cluster.join,
                seed.map(|p| vec![format!("127.0.0.1:{p}")])
                    .unwrap_or_default()
            );
            assert_eq!(config.data_dir, dir.join(format!("node{id}/data")));
            assert_eq!(config.tls.node_cert, dir.join(format!("pki/node{id}.pem")));
            assert!(config.audit.enabled);
            assert!(config.rate_limits.enabled);
        }
    }

    #[test]
    fn every_option_reaches_the_server() {
        let dir = Path::new("/tmp/test");
        let raft = RaftSection {
            heartbeat_ms: 50,
            snapshot_after_logs: 500,
            ..RaftSection::default()
        };
        let lifecycle = LifecycleSection {
            job_interval_ms: 200,
            ..LifecycleSection::default()
        };
        let options = NodeOptions {
            region: "region-2".to_owned(),
            raft: Some(raft.clone()),
            lifecycle: Some(lifecycle.clone()),
            ..NodeOptions::without_rate_limits()
        };
        let mut node = NodeConfig::new(
            &dir.join("pki"),
            NodeId::new(2),
            loopback(0),
            loopback(0),
            Entry::Join("node1.invalid:7000".to_owned()),
            &options,
        );
        node.cluster.advertise = Some("node2.invalid:7000".to_owned());
        node.cluster
            .dial
            .insert("node1.invalid:7000".to_owned(), "127.0.0.1:9".to_owned());
        let config = parse(&node, dir);
        assert_eq!(config.region, "region-2");
        assert_eq!(config.raft, raft);
        assert_eq!(config.lifecycle, lifecycle);
        assert!(!config.rate_limits.enabled);
        assert_eq!(config.cluster.join, vec!["node1.invalid:7000"]);
        assert_eq!(config.cluster.advertise, node.cluster.advertise);
        assert_eq!(config.cluster.dial, node.cluster.dial);
    }
}
