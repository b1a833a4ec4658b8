//! `tessera bench`: the load generator and the reference baselines it is compared with.
//!
//! One run on one machine starts what it measures — a 3-node cluster of real `tessera server`
//! processes ([`tessera_launcher`]), a bare tonic + rustls mutual-TLS echo server ([`echo`])
//! and, when an `etcd` binary is on the PATH, a 3-member etcd ([`etcd`]) — drives closed-loop
//! load against each ([`load`]) and reports every number with its ratio to the matching
//! reference ([`report`], [`svg`]). It is a library so the production CLI only adds a thin
//! subcommand, and so the bench always measures the very `tessera` binary that runs it.

pub mod echo;
pub mod etcd;
pub mod load;
pub mod machine;
mod pb;
pub mod report;
mod run;
pub mod svg;
pub mod tessera;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

pub use report::Report;
pub use run::run;

/// The groups of workloads a run may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// Encrypt, decrypt, data key, sign and MAC against one node and spread, with the echo
    /// reference.
    Crypto,
    /// Encrypt with a 50-statement policy set against none.
    Policy,
    /// CreateKey and RotateKey on the leader, with etcd put as reference.
    Writes,
    /// Leader SIGKILL to the first acknowledged write.
    Failover,
    /// N keys, then memory, data directory size and restart to serving.
    Keys,
}

impl Group {
    /// Every group, in run order.
    pub const ALL: [Self; 5] = [
        Self::Crypto,
        Self::Policy,
        Self::Writes,
        Self::Failover,
        Self::Keys,
    ];
}

/// A workload group name that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("unknown workload group {0:?} (crypto, policy, writes, failover, keys)")]
pub struct UnknownGroup(String);

impl std::str::FromStr for Group {
    type Err = UnknownGroup;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "crypto" => Ok(Self::Crypto),
            "policy" => Ok(Self::Policy),
            "writes" => Ok(Self::Writes),
            "failover" => Ok(Self::Failover),
            "keys" => Ok(Self::Keys),
            other => Err(UnknownGroup(other.to_owned())),
        }
    }
}

/// How a run is done.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `tessera` executable to start nodes (and the echo server) from.
    pub exe: PathBuf,
    /// Where clusters put their files; a temporary directory (removed afterwards) if `None`.
    pub work_dir: Option<PathBuf>,
    /// Which groups to run.
    pub groups: Vec<Group>,
    /// Measured window per repetition.
    pub duration: Duration,
    /// Warm-up before each window.
    pub warmup: Duration,
    /// Repetitions per workload.
    pub reps: u32,
    /// Requests in flight to try (C).
    pub concurrency: Vec<usize>,
    /// Keys to create before the memory and restart measurements (N).
    pub keys: u64,
    /// Leader kills to take the median of.
    pub failover_tries: u32,
    /// Request payload size.
    pub payload_bytes: usize,
    /// Whether to start etcd when it is on the PATH.
    pub etcd: bool,
    /// Whether this is the `--quick` smoke run.
    pub quick: bool,
    /// Whether to draw a progress bar (only on a terminal).
    pub progress: bool,
}

impl Options {
    /// The full run's defaults.
    #[must_use]
    pub fn full(exe: PathBuf) -> Self {
        Self {
            exe,
            work_dir: None,
            groups: Group::ALL.to_vec(),
            duration: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
            reps: 3,
            concurrency: vec![1, 16, 64],
            keys: 100_000,
            failover_tries: 5,
            payload_bytes: 1024,
            etcd: true,
            quick: false,
            progress: true,
        }
    }

    /// The `--quick` smoke run: every workload, tiny windows and N, one failover, no etcd.
    #[must_use]
    pub fn quick(exe: PathBuf) -> Self {
        Self {
            duration: Duration::from_millis(250),
            warmup: Duration::from_millis(50),
            reps: 1,
            keys: 200,
            failover_tries: 1,
            etcd: false,
            quick: true,
            ..Self::full(exe)
        }
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Tessera cluster could not be started or driven, or a file or address could not be
    /// used (the launcher's [`tessera_launcher::Error::Io`], so both report it alike).
    #[error(transparent)]
    Launcher(#[from] tessera_launcher::Error),
    /// A Tessera call outside the measured load failed.
    #[error(transparent)]
    Client(#[from] tessera_client::Error),
    /// An endpoint could not be configured.
    #[error("endpoint {addr}: {source}")]
    Endpoint {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The echo server failed to serve.
    #[error("echo server: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// The echo server process could not start.
    #[error("cannot start the echo server: {0}")]
    Echo(#[source] std::io::Error),
    /// An etcd member could not start.
    #[error("cannot start etcd: {0}")]
    Etcd(#[source] std::io::Error),
    /// etcd elected no leader in time.
    #[error("etcd elected no leader in time")]
    EtcdNoLeader,
    /// The latency histogram could not be created.
    #[error("histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    /// The cluster has no leader, or no node to play a role.
    #[error("no {role} node in the cluster")]
    NoNode {
        /// The role: leader or follower.
        role: &'static str,
    },
    /// A failover try saw no acknowledged write in time.
    #[error("no write was acknowledged within {0:?} of the leader's kill")]
    FailoverTimeout(Duration),
}

/// Item `seq % len` of `items` (none if empty): how request `seq` picks its connection.
fn pick<T>(items: &[T], seq: u64) -> Option<&T> {
    let len = u64::try_from(items.len()).ok().filter(|&l| l > 0)?;
    items.get(usize::try_from(seq % len).ok()?)
}
