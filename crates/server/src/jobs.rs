//! The leader's background jobs: automatic key rotation, destruction of keys whose deletion
//! date has passed, and re-sealing blobs under the newest barrier term after a barrier
//! rotation.
//!
//! Only the leader proposes, and only from its applied state. Each attempt carries a fresh
//! request id in the reserved `job-` namespace (clients may not use it), so a refused attempt
//! is never remembered against a later one. Racing proposals (across an election, or with a
//! client) are settled by `apply`: a second rotation to the same version is a version
//! conflict, a destruction is refused before the deletion date or once the key is gone, a
//! re-seal batch is refused whole if any of its blobs changed (a destroyed version stays
//! destroyed) — a stale proposal is refused, never half-applied.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tessera_state::{CallerId, Command, KeyId, KeyVersion, Request, RequestId};

use crate::error::ApiError;
use crate::node::{Node, CLUSTER_CALLER, JOB_REQUEST_PREFIX};

/// Runs the jobs every `interval` until the task is aborted: every node reports its clock to
/// cluster time; the leader also rotates and destroys what is due.
pub async fn run(node: Arc<Node>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        report_clock(&node).await;
        if node.raft().is_leader() {
            run_once(&node).await;
        }
    }
}

/// Proposes this node's wall-clock reading (see `tessera_state::clock`), once the cluster is
/// initialised. A failed report is only logged: the next tick sends a fresh one.
async fn report_clock(node: &Node) {
    if !node.raft().shared().read().state.is_initialized() {
        return;
    }
    let voters = node
        .raft()
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .count();
    let command = Command::ReportClock {
        node_id: node.raft().id(),
        at_ms: node.now_ms(),
        voters: u32::try_from(voters).unwrap_or(u32::MAX),
    };
    let result = match job_request("clock".into(), command) {
        Ok(request) => node.propose(request).await.map(drop),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "reporting the clock to cluster time failed");
    }
}

fn job_request(what: String, command: Command) -> Result<Request, ApiError> {
    let mut nonce = [0u8; 8];
    crate::node::rand_fill(&mut nonce);
    let id = format!("{JOB_REQUEST_PREFIX}{what}-{}", hex::encode(nonce));
    let fingerprint = Sha256::digest(id.as_bytes()).into();
    let request_id = RequestId::parse(&id).map_err(|_| ApiError::Internal("job request id"))?;
    Ok(Request {
        request_id,
        caller: CallerId::of(CLUSTER_CALLER),
        fingerprint,
        bindings: Vec::new(),
        command,
    })
}

/// Most re-seal batches (of [`crate::barrier::RESEAL_BATCH`] blobs) one tick proposes, so the
/// job never holds the leader's tick for long; the rest waits for the next tick.
const RESEAL_BATCHES_PER_TICK: usize = 16;

/// Re-seals blobs left under older barrier terms, a bounded number of batches per tick.
async fn reseal(node: &Node) {
    let mut done = 0usize;
    for _ in 0..RESEAL_BATCHES_PER_TICK {
        match crate::barrier::reseal_batch(node, |command| job_request("reseal".into(), command))
            .await
        {
            Ok(0) => break,
            Ok(count) => done = done.saturating_add(count),
            Err(e) => {
                tracing::warn!(error = %e, "re-sealing blobs under the active barrier term failed; retrying on the next tick");
                break;
            }
        }
    }
    if done > 0 {
        let left: u64 = node
            .raft()
            .shared()
            .read()
            .state
            .blobs_left_by_term()
            .values()
            .sum();
        tracing::info!(
            resealed = done,
            left,
            "re-sealed blobs under the active barrier term"
        );
    }
}

async fn run_once(node: &Node) {
    if !node.seal().status().sealed {
        reseal(node).await;
    }
    let (rotations, deletions) = {
        let applied = node.raft().shared().read();
        (
            applied.state.due_rotations(node.now_ms()),
            applied.state.due_deletions(),
        )
    };
    for key_id in deletions {
        let result = destroy(node, &key_id).await;
        match result {
            Ok(()) => tracing::info!(%key_id, "key destroyed after its deletion window"),
            Err(e) => tracing::warn!(%key_id, error = %e, "scheduled key destruction failed"),
        }
    }
    if rotations.is_empty() {
        return;
    }
    if node.seal().status().sealed {
        tracing::warn!(
            due = rotations.len(),
            "keys are due for rotation but the leader is sealed; unseal it to rotate"
        );
        return;
    }
    for (key_id, version) in rotations {
        match rotate(node, &key_id, version).await {
            Ok(()) => tracing::info!(%key_id, version = version.get(), "key rotated automatically"),
            Err(e) => {
                tracing::warn!(%key_id, version = version.get(), error = %e, "automatic rotation failed")
            }
        }
    }
}

async fn destroy(node: &Node, key_id: &KeyId) -> Result<(), ApiError> {
    let request = job_request(
        format!("destroy-{key_id}"),
        Command::DestroyKey {
            key_id: key_id.clone(),
        },
    )?;
    node.propose(request).await.map(drop)
}

async fn rotate(node: &Node, key_id: &KeyId, version: KeyVersion) -> Result<(), ApiError> {
    let spec = node
        .raft()
        .shared()
        .read()
        .state
        .key(key_id)
        .map(|k| k.spec)
        .ok_or(ApiError::Internal("a key due for rotation disappeared"))?;
    let material = spec.generate_material(&mut tessera_crypto::os_rng());
    let request = job_request(
        format!("rotate-{key_id}-v{version}"),
        Command::RotateKey {
            key_id: key_id.clone(),
            version,
            sealed_material: node.seal_material(key_id, version, spec, material.as_slice())?,
            at_ms: node.now_ms(),
        },
    )?;
    node.propose(request).await.map(drop)
}
