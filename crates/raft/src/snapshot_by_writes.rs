//! Snapshots counted in writes, not entries.
//!
//! openraft's snapshot policy (`raft.snapshot_after_logs` entries since the last snapshot)
//! counts log entries. Since group commit ([`crate::group_commit`]) an entry carries up to
//! `raft.max_batch_requests` writes, so under concurrent load the policy would let hundreds of
//! times more writes pile up in the log before a snapshot lets it be purged: more disk, and
//! more for a restart to replay. This task keeps the setting's meaning in writes: once the
//! writes applied since the state was last captured ([`SharedState::writes_since_snapshot`])
//! reach the setting, it asks Raft for a snapshot. Every node runs it for its own log, as
//! openraft's own policy does.

use std::sync::Arc;

use crate::state_machine::SharedState;
use crate::typ::Raft;

/// Watches the applied index and triggers a snapshot whenever `every` writes have been applied
/// since the last capture. Returns when the node stops.
pub async fn run(raft: Raft, shared: Arc<SharedState>, every: u64) {
    let mut applied = shared.watch_applied();
    while applied.changed().await.is_ok() {
        if shared.writes_since_snapshot() >= every && raft.trigger().snapshot().await.is_err() {
            // The Raft core has stopped.
            return;
        }
    }
}
