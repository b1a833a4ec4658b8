//! Operating a node: the ops port (`/metrics`, `/health`, `/ready` over plain HTTP), the
//! standard gRPC health and reflection services on the API port, and readiness, which both
//! share.
//!
//! Readiness is one rule everywhere: a node is ready when it may answer crypto from its own
//! state right now (unsealed, holding the leader lease, caught up with what the leader had
//! committed). Load balancers probe `/ready` or the gRPC health service; both follow it.

pub mod grpc;
pub mod http;
pub mod metrics;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, LeaseProblem};
use crate::node::Node;

/// `[ops]`: the ops port.
///
/// It serves no secret and no key material (metrics, health, readiness), over plain HTTP
/// without authentication, so bind it to loopback or a monitoring network only.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpsSection {
    /// Address to bind, e.g. `127.0.0.1:7601` (port 0 picks a free port, published in
    /// `addresses.json`).
    pub listen: SocketAddr,
}

/// Why a node is not ready, as `/ready` says it in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The node is sealed (or the cluster is not initialised).
    #[error("sealed")]
    Sealed,
    /// The node holds no leader lease, or is still applying the leader's log.
    #[error("{0}")]
    Lease(LeaseProblem),
}

/// Whether `node` serves crypto right now, and if not why.
///
/// # Errors
/// [`NotReady`] with the reason.
pub fn readiness(node: &Node) -> Result<(), NotReady> {
    match node.serving_now() {
        Ok(()) => Ok(()),
        Err(ApiError::NoLease(problem)) => Err(NotReady::Lease(problem)),
        Err(_) => Err(NotReady::Sealed),
    }
}
