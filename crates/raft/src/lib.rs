//! Raft replication for Tessera.
//!
//! This crate wires openraft 0.9 (storage v2) to sled and to a mutual-TLS gRPC network:
//!
//! - [`log_store`] and [`state_machine`]: the durable log, vote and state machine on one sled
//!   database per node. A log append or vote is acknowledged only after sled has flushed it.
//! - [`network`] and [`service`]: the cluster port, where peers exchange AppendEntries, Vote
//!   and InstallSnapshot, followers forward writes to the leader, and new nodes join;
//!   [`transport`] carries these calls (mutual-TLS gRPC, or in process for tests).
//!   [`membership_guard`] admits only current members to it (but for `Join`), and [`limits`]
//!   caps its message size.
//! - [`raft_node`]: a running member and the operations the API layer needs (propose from any
//!   node, read barrier, lease check); [`group_commit`] lets concurrent writes share one
//!   entry on the leader.
//! - [`membership`] and [`admin`]: membership administration (list, add a learner, promote,
//!   demote, remove) with its quorum rules, run on the leader; [`network`] relays it there.
//! - [`leadership`]: a sealed node hands leadership to an unsealed voter and does not
//!   campaign while one can win.
//! - [`shred`]: the periodic online pass (snapshot, purge, [`compact`]ion) that bounds the
//!   database and removes destroyed material from disk.
//! - `testing` (feature `testing`): an in-process cluster on real storage with a router that
//!   partitions nodes, fails and delays their RPCs, for fast tests of the paths above.
//! - [`tls`]: rustls configuration shared by the cluster and API ports, and [`accept`]: the
//!   limits on what a port's accept loop takes on.
//!
//! What it is not: it holds no domain logic. Commands are applied by
//! [`tessera_state::State::apply`]; this crate decodes, applies and persists.

// openraft's storage traits fix `StorageError` (224 bytes) as the error type; boxing it in
// helpers would only add conversions at every trait boundary.
#![allow(clippy::result_large_err)]

pub mod accept;
pub mod admin;
mod coalesce;
pub mod codec;
pub mod compact;
pub mod durable;
pub mod error;
pub mod group_commit;
pub mod leadership;
pub mod lease;
pub mod limits;
pub mod log_store;
pub mod membership;
pub mod membership_guard;
pub mod network;
pub mod raft_node;
pub mod recover;
mod retry;
pub mod rpc;
pub mod service;
pub mod shred;
pub mod snapshot_by_writes;
pub mod state_machine;
mod storage_error;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod transport;
pub mod typ;

pub use error::{CoreStopped, EnterError, ProposeError, ReadIndexError, StartError};
pub use lease::LeaseState;
pub use raft_node::{role_name, Applied, NodeConfig, RaftNode, RaftSettings};
pub use typ::{NodeId, NodeInfo};
