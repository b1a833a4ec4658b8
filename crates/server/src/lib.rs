//! A Tessera node.
//!
//! One process per node: it owns a Raft member ([`tessera_raft::RaftNode`]), a seal manager
//! ([`seal::SealManager`]) and the public gRPC API on a mutual-TLS port. Writes received by any
//! node are forwarded to the leader; crypto is served from the node's own applied state while
//! it holds the leader lease. Every node starts sealed after every restart.
//!
//! What it is not: the Raft wiring lives in `tessera-raft`, the model in `tessera-state`, the
//! cryptography in `tessera-crypto`; this crate joins them and maps every error to a gRPC
//! status in one place ([`error`]).

pub mod api;
pub mod audit;
pub mod authz;
pub mod barrier;
pub mod config;
pub mod error;
pub mod jobs;
pub mod launch;
pub mod limits;
pub mod node;
pub mod ops;
pub mod ratelimit;
pub mod seal;
pub mod tls_reload;

pub use config::ServerConfig;
pub use launch::{run, Addresses, LaunchError, ADDRESSES_FILE};
/// Offline compaction of a stopped node's database (`tessera storage compact`).
pub use tessera_raft::compact;
/// Quorum-loss recovery of a stopped node's data directory (`tessera operator recover`).
pub use tessera_raft::recover;
/// Re-exported so the crates that write or read node configurations name node ids without
/// depending on the Raft crate for it.
pub use tessera_raft::NodeId;
