//! The command-line grammar. Names, flags and JSON fields are a contract scripts rely on
//! (see `docs/operations.md`): extend, never rename.

mod access;
mod alias;
mod crypto;
mod envelope;
mod key;
mod signing;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use access::{
    CertCommand, CertRevokeArgs, GrantCommand, PolicyCheckArgs, PolicyCommand, RateLimitCommand,
};
pub use alias::AliasCommand;
pub use crypto::{
    DataKeyArgs, DataKeyPairArgs, DecryptArgs, DecryptBatchArgs, EncryptArgs, EncryptBatchArgs,
    RandomArgs, ReEncryptArgs,
};
pub use envelope::{DecryptFileArgs, EncryptFileArgs, Files};
pub use key::{KeyCommand, Origin};
pub use signing::{
    MacArgs, PublicKeyArgs, PublicKeyFormat, SignArgs, SignedMessage, VerifyArgs, VerifyMacArgs,
};

/// Tessera: a distributed key management service.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    Text,
    /// Exactly one JSON document on stdout.
    Json,
}

/// How to reach the cluster, shared by every command that talks to a node.
#[derive(Debug, Clone, Args)]
pub struct Connect {
    /// Node API endpoints (comma-separated); with several, calls fail over. Each may name its
    /// region: `eu=https://10.0.0.1:7401`.
    #[arg(long, env = "TESSERA_ADDR", value_delimiter = ',')]
    pub addr: Vec<String>,
    /// This client's region: calls go to the endpoints of this region first. (`--region`
    /// names a node's region in `operator add-learner`.)
    #[arg(long = "client-region", env = "TESSERA_REGION")]
    pub client_region: Option<String>,
    /// CA that signed the server certificates.
    #[arg(long = "ca-cert", env = "TESSERA_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, env = "TESSERA_CLIENT_CERT")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM). (`--key` always names a Tessera key.)
    #[arg(long = "client-key", env = "TESSERA_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// Output format.
    #[command(flatten)]
    pub output: Output,
}

/// The `-o` flag.
#[derive(Debug, Clone, Copy, Args)]
pub struct Output {
    /// Output format: text or json.
    #[arg(
        short = 'o',
        long = "output",
        env = "TESSERA_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    pub format: OutputFormat,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node.
    Server {
        /// The node's TOML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Shut down when standard input reaches end of file: a supervisor that holds the
        /// other end of a pipe takes its nodes down with it, even if it is killed.
        #[arg(long)]
        stop_on_stdin_eof: bool,
        /// Log line format, `text` or `json` (one object per line); overrides `log_format` in
        /// the configuration file.
        #[arg(long, env = "TESSERA_LOG_FORMAT")]
        log_format: Option<tessera_server::config::LogFormat>,
    },
    /// Run a real local cluster of node processes: throw-away PKI, bootstrap, init, unseal.
    Dev(DevArgs),
    /// Measure a 3-node cluster side by side with a bare mTLS echo server and etcd.
    Bench(Box<BenchArgs>),
    /// Certificates for tests and demos.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Seal lifecycle and cluster status.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Customer keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Aliases: stable alias/NAME references to keys.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Encrypt data under a key (input: --in FILE or stdin).
    Encrypt(EncryptArgs),
    /// Decrypt a base64 ciphertext (input: --in FILE or stdin).
    Decrypt(DecryptArgs),
    /// Decrypt a base64 ciphertext and encrypt it again (under the same or another key)
    /// without the plaintext leaving the server.
    Reencrypt(ReEncryptArgs),
    /// Encrypt many plaintexts in one call (input: one base64 plaintext per line).
    EncryptBatch(EncryptBatchArgs),
    /// Decrypt many ciphertexts in one call (input: one base64 ciphertext per line).
    DecryptBatch(DecryptBatchArgs),
    /// A fresh data key, in plaintext and encrypted under a key (envelope encryption).
    Datakey(DataKeyArgs),
    /// Encrypt a file or stream of any size (envelope encryption; see docs/envelope.md).
    EncryptFile(EncryptFileArgs),
    /// Decrypt what encrypt-file wrote; a file output appears only once it authenticates.
    DecryptFile(DecryptFileArgs),
    /// A fresh asymmetric key pair, its private key encrypted under a key.
    DatakeyPair(DataKeyPairArgs),
    /// Sign a message (input: --in FILE or stdin) with an asymmetric key.
    Sign(SignArgs),
    /// Verify a signature over a message (input: --in FILE or stdin).
    ///
    /// Exit status 1 when the signature is not valid.
    Verify(VerifyArgs),
    /// The public key of an asymmetric key.
    PublicKey(PublicKeyArgs),
    /// The MAC of a message (input: --in FILE or stdin) under an HMAC key.
    Mac(MacArgs),
    /// Verify a MAC over a message (input: --in FILE or stdin).
    ///
    /// Exit status 1 when the MAC is not valid.
    VerifyMac(VerifyMacArgs),
    /// Random bytes from a node's CSPRNG.
    Random(RandomArgs),
    /// The identity this client certificate authenticates as, its fingerprint and the
    /// policies that apply to it.
    Whoami {
        #[command(flatten)]
        connect: Connect,
    },
    /// Access policies: named JSON or TOML documents of allow and deny statements.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Grants: some operations on one key for one identity.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// The replicated deny-list of client certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Maintenance of a stopped node's storage.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// The audit trail: verify a node's files, compute the HMAC of a value to search them.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `tessera audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that audit files form one unbroken hash chain; names the first broken record by
    /// file and line. Give a node's rotated files oldest first (name order).
    ///
    /// Exit status 1 when the chain is broken.
    Verify {
        /// The files, oldest first (e.g. `data/audit/audit-*.jsonl`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
    /// The audit HMAC of a value (computed by a node; needs `audit:Hash`), to search records'
    /// `hmac` fields for it.
    Hash {
        /// The value, e.g. an encryption-context value or a key name.
        #[arg(long)]
        value: String,
        #[command(flatten)]
        connect: Connect,
    },
}

/// `tessera storage …`.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Rewrite a stopped node's database with only its live data, so that purged log entries,
    /// overwritten rows and destroyed key versions leave the disk.
    Compact {
        /// The node's TOML configuration file (its data_dir is compacted).
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        output: Output,
    },
}

/// `tessera dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Number of node processes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Working directory (PKI, node data, env.sh, shares.json); an existing dev cluster there is
    /// restarted and unsealed again.
    #[arg(long, default_value = "tessera-dev")]
    pub dir: PathBuf,
    /// First API port; node i listens on P+i-1 (API) and P+100+i-1 (cluster).
    #[arg(long, default_value_t = 7401)]
    pub base_port: u16,
    /// Spread the nodes over this many regions, round robin (node i in region
    /// `region-((i-1) mod R)+1`), labelled in their configurations and in `env.sh`'s
    /// endpoints; applies when the directory is created.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub regions: u64,
    /// Output format of the start-up summary.
    #[command(flatten)]
    pub output: Output,
}

/// `tessera bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Smoke run (under a minute): every workload with tiny windows and key count, one
    /// failover, no etcd. Its numbers only show that everything runs.
    #[arg(long)]
    pub quick: bool,
    /// Print the report as JSON (every number) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the latency distributions as an SVG chart to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Workload groups to run, comma-separated: crypto, policy, writes, failover, keys.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(tessera_bench::Group))]
    pub workloads: Vec<tessera_bench::Group>,
    /// Measured window of each repetition (default 3s; --quick 250ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Warm-up before each window (default 1s; --quick 50ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<std::time::Duration>,
    /// Repetitions of each workload (default 3; --quick 1).
    #[arg(long)]
    pub reps: Option<u32>,
    /// Keys (N) to create before measuring memory, disk and restart (default 100000;
    /// --quick 200).
    #[arg(long)]
    pub keys: Option<u64>,
    /// Requests in flight (C) to try, comma-separated (default 1,16,64).
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Vec<usize>,
    /// Leader kills to take the failover median of (default 5; --quick 1).
    #[arg(long)]
    pub failover_tries: Option<u32>,
    /// Request payload in bytes (default 1024).
    #[arg(long)]
    pub payload: Option<usize>,
    /// Do not start etcd even if it is on the PATH.
    #[arg(long)]
    pub no_etcd: bool,
    /// Keep the cluster files in this (new or empty) directory instead of a temporary one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Serve the echo reference with the PKI in DIR until standard input closes (the bench
    /// starts itself this way).
    #[arg(long, hide = true, value_name = "DIR")]
    pub serve_echo: Option<PathBuf>,
}

/// `tessera pki …`.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a node CA, a client CA, node certificates and an admin client certificate.
    Init {
        /// Directory to write into.
        #[arg(long)]
        dir: PathBuf,
        /// Number of node certificates (node1 … nodeN).
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Extra host names or IPs for the node certificates.
        #[arg(long)]
        san: Vec<String>,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
    /// Issue another client certificate from the client CA in DIR.
    IssueClient {
        /// Directory holding the PKI.
        #[arg(long)]
        dir: PathBuf,
        /// The identity (certificate CN).
        #[arg(long)]
        name: String,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
}

/// `tessera operator …`.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Initialise the cluster and print the unseal shares (shown once).
    Init {
        /// Number of shares.
        #[arg(long, default_value_t = 5)]
        shares: u32,
        /// Shares needed to unseal.
        #[arg(long, default_value_t = 3)]
        threshold: u32,
        #[command(flatten)]
        connect: Connect,
    },
    /// Submit one unseal share to the node (SHARE, or read from stdin when omitted or "-").
    Unseal {
        /// The share.
        share: Option<String>,
        /// Discard the shares submitted so far instead.
        #[arg(long, conflicts_with = "share")]
        reset: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// Seal the node: it forgets its keys until unsealed again.
    Seal {
        #[command(flatten)]
        connect: Connect,
    },
    /// The node's seal state, Raft role and the cluster members.
    Status {
        #[command(flatten)]
        connect: Connect,
    },
    /// The cluster's members as the leader sees them: addresses, region, zone, voter or
    /// learner, match index, lag, last contact, lease.
    Members {
        #[command(flatten)]
        connect: Connect,
    },
    /// Add a running node (empty data directory, neither `bootstrap` nor `join`) as a learner.
    AddLearner {
        /// Its node id (its node certificate names `node-<ID>`).
        #[arg(long)]
        id: u64,
        /// Where clients reach it, host:port.
        #[arg(long)]
        api_addr: String,
        /// Where peers reach it, host:port.
        #[arg(long)]
        cluster_addr: String,
        /// Region label.
        #[arg(long, default_value = "")]
        region: String,
        /// Zone label.
        #[arg(long, default_value = "")]
        zone: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Rotate the barrier keyring: new material is sealed under a new term and the leader
    /// re-seals older blobs in the background (watch `reseal_left` in `operator status`). With
    /// --retire-old, drop the terms older than the active one instead: refused while any blob
    /// still uses one.
    Rotate {
        /// Drop the old terms instead of adding one.
        #[arg(long)]
        retire_old: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// Replace the unseal key with new shares: --init --shares N --threshold K starts it, then
    /// each holder submits a current share (SHARE, or "-" for stdin) to the same node; the
    /// last one prints the new shares (shown once). --cancel drops it; no argument shows its
    /// progress.
    Rekey(RekeyArgs),
    /// Make a learner a voter.
    Promote(MemberChange),
    /// Make a voter a learner.
    Demote(MemberChange),
    /// Remove a voter or learner from the cluster.
    Remove(MemberChange),
    /// Quorum-loss recovery on a STOPPED node: make it the sole voter of a one-node cluster
    /// holding every entry of its log. Without `--force`, only shows what it would do.
    Recover {
        /// The surviving node's TOML configuration file (its data_dir and node_id).
        #[arg(long)]
        config: PathBuf,
        /// Rewrite the membership (the other members must never start again on their data).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Backups of the whole (still sealed) state: save one, restore one into a fresh cluster.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

/// `tessera operator snapshot …`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a consistent backup of the whole state to FILE (written atomically, mode 0600).
    /// Key material in it stays sealed: restoring needs the cluster's unseal shares.
    Save {
        /// Where to write the backup.
        file: PathBuf,
        #[command(flatten)]
        connect: Connect,
    },
    /// Replace the cluster's whole state with the backup in FILE. The cluster must be
    /// uninitialized (fresh data directories), or the same cluster with --force. Afterwards
    /// every node is sealed: unseal with the backup's shares.
    Restore {
        /// The backup to restore.
        file: PathBuf,
        /// Replace the state of an initialized cluster (only the cluster the backup came from).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        connect: Connect,
    },
}

/// `tessera operator rekey`: one step of a rekey.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Start a rekey.
    #[arg(long, requires_all = ["shares", "threshold"], conflicts_with_all = ["cancel", "share"])]
    pub init: bool,
    /// New number of shares (with --init).
    #[arg(long, requires = "init")]
    pub shares: Option<u32>,
    /// New threshold (with --init).
    #[arg(long, requires = "init")]
    pub threshold: Option<u32>,
    /// Cancel the rekey in progress.
    #[arg(long, conflicts_with = "share")]
    pub cancel: bool,
    /// A current unseal share ("-": read it from stdin).
    pub share: Option<String>,
    /// The rekey attempt the share is for, as --init printed it (default: the one in
    /// progress).
    #[arg(long, default_value = "")]
    pub nonce: String,
    #[command(flatten)]
    pub connect: Connect,
}

/// A change to one member.
#[derive(Debug, Args)]
pub struct MemberChange {
    /// The member's node id.
    pub id: u64,
    /// Apply even if the reachable voters would no longer be a majority (the cluster may then
    /// stop accepting writes until the missing voters return).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub connect: Connect,
}
