//! The reference a Raft write is compared with: a 3-member etcd on 127.0.0.1, with mutual TLS
//! on its client and peer ports from the same PKI as the Tessera nodes, loaded through its
//! gRPC KV API.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tessera_launcher::{pki, Bound};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::load::{over, Op, OpError};
use crate::pb::etcd::kv_client::KvClient;
use crate::pb::etcd::maintenance_client::MaintenanceClient;
use crate::pb::etcd::{PutRequest, StatusRequest};
use crate::Error;

/// Bound on the wait for the members to elect a leader.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `etcd` executable on the PATH, if there is one.
#[must_use]
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

/// A running 3-member etcd; dropping it kills the members.
#[derive(Debug)]
pub struct Etcd {
    /// Client addresses (`127.0.0.1:port`), member 1 first.
    pub client_addrs: Vec<String>,
    /// The members (killed on drop).
    members: Vec<Child>,
    /// The data directory of each member.
    pub data_dirs: Vec<PathBuf>,
}

impl Etcd {
    /// Starts three members of `exe` under `dir`, with node certificates 1–3 of `pki_dir`,
    /// and waits until they have a leader.
    ///
    /// # Errors
    /// [`Error::Etcd`] if a member cannot start, or [`Error::EtcdNoLeader`] on timeout.
    pub async fn start(exe: &Path, dir: &Path, pki_dir: &Path) -> Result<Self, Error> {
        let mut ports = Vec::new();
        for _ in 0..3 {
            ports.push(tessera_launcher::cluster::free_ports()?);
        }
        let peers: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{}=https://127.0.0.1:{peer}", i + 1))
            .collect();
        let mut etcd = Self {
            client_addrs: Vec::new(),
            members: Vec::new(),
            data_dirs: Vec::new(),
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let n = i + 1;
            let data = dir.join(format!("etcd{n}"));
            let log_path = dir.join(format!("etcd{n}.log"));
            let log = std::fs::File::create(&log_path).map_err(Error::Etcd)?;
            let log_err = log.try_clone().map_err(Error::Etcd)?;
            let cert = pki_dir.join(format!("node{n}.pem"));
            let key = pki_dir.join(format!("node{n}-key.pem"));
            let child = Command::new(exe)
                .arg(format!("--name=m{n}"))
                .arg(format!("--data-dir={}", data.display()))
                .arg(format!("--listen-client-urls=https://127.0.0.1:{client}"))
                .arg(format!(
                    "--advertise-client-urls=https://127.0.0.1:{client}"
                ))
                .arg(format!("--listen-peer-urls=https://127.0.0.1:{peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=https://127.0.0.1:{peer}"
                ))
                .arg(format!("--initial-cluster={}", peers.join(",")))
                .arg("--initial-cluster-state=new")
                .arg("--initial-cluster-token=tessera-bench")
                .args(tls_flags("", &cert, &key, &pki_dir.join(pki::CLIENT_CA)))
                .args(tls_flags("peer-", &cert, &key, &pki_dir.join(pki::NODE_CA)))
                .arg("--logger=zap")
                .arg("--log-level=warn")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .kill_on_drop(true)
                .spawn()
                .map_err(Error::Etcd)?;
            etcd.members.push(child);
            etcd.data_dirs.push(data);
            etcd.client_addrs.push(format!("127.0.0.1:{client}"));
        }
        Ok(etcd)
    }

    /// The client address of the current leader, once there is one.
    ///
    /// # Errors
    /// [`Error::EtcdNoLeader`] if no member reports a leader in time.
    pub async fn leader(&self, pki_dir: &Path) -> Result<String, Error> {
        let channels = self
            .client_addrs
            .iter()
            .map(|addr| Ok((addr, crate::tls::channel(pki_dir, addr)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        Bound::new(START_TIMEOUT, Duration::from_millis(200))
            .until("an etcd leader", || async {
                for (addr, channel) in &channels {
                    let mut client = MaintenanceClient::new(channel.clone());
                    let Ok(reply) = client.status(StatusRequest {}).await else {
                        continue;
                    };
                    let reply = reply.into_inner();
                    let member = reply.header.map_or(0, |h| h.member_id);
                    if reply.leader != 0 && reply.leader == member {
                        return Ok((*addr).clone());
                    }
                }
                Err(())
            })
            .await
            .map_err(|_| Error::EtcdNoLeader)
    }

    /// Process ids of the members.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(Child::id).collect()
    }
}

/// etcd's mutual-TLS flags for its client port (`prefix` empty) or its peer port (`prefix`
/// `peer-`): its certificate and key, and client certificates required and verified against
/// `ca`.
fn tls_flags(prefix: &str, cert: &Path, key: &Path, ca: &Path) -> [String; 4] {
    [
        format!("--{prefix}cert-file={}", cert.display()),
        format!("--{prefix}key-file={}", key.display()),
        format!("--{prefix}client-cert-auth"),
        format!("--{prefix}trusted-ca-file={}", ca.display()),
    ]
}

/// Puts `bench/<seq>` = `value` over `k` connections to `addr`.
///
/// # Errors
/// [`Error`] if the certificates cannot be read.
pub fn put_op(pki_dir: &Path, addr: &str, k: usize, value: Arc<Vec<u8>>) -> Result<Op, Error> {
    let clients = crate::tls::connections(pki_dir, addr, k, KvClient::new)?;
    Ok(over(clients, move |mut client: KvClient<Channel>, seq| {
        let request = PutRequest {
            key: format!("bench/{seq}").into_bytes(),
            value: value.to_vec(),
        };
        async move { client.put(request).await.map(drop).map_err(OpError::from) }
    }))
}
