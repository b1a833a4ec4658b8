//! Online crypto-shredding and a bounded database: a periodic pass on every node that makes
//! bytes no longer referenced (a destroyed key version's sealed material, overwritten rows,
//! purged log entries) leave the disk while the node serves.
//!
//! A destroyed version's sealed material lingers in three places after the destroy is
//! applied: the Raft log entry that created it, the stored snapshot taken before the destroy,
//! and sled's segment files, which keep overwritten and removed values until sled reuses the
//! segment (never, on an idle node). Each pass, if anything was applied since the last one,
//! builds a snapshot of the applied state, purges the whole log up to it (ignoring
//! `logs_kept_after_snapshot`: a follower that falls behind catches up by snapshot instead),
//! then compacts the database online ([`DurableDb::compact`]). So within one interval plus one
//! pass of a destroy being applied on a node, its material is in none of that node's files.

use std::time::{Duration, Instant};

use crate::compact::CompactError;
use crate::durable::DurableDb;
use crate::typ::{Fatal, Raft, RaftMetrics};

/// How often a pass that cannot reach its snapshot or purge yet asks again.
const POLL: Duration = Duration::from_millis(200);

/// Why a pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ShredError {
    /// The Raft core has stopped.
    #[error("the raft core stopped: {0}")]
    Stopped(#[from] Fatal),
    /// No snapshot covering `wanted` was built in time.
    #[error("no snapshot reached index {wanted} within {waited:?}")]
    Snapshot {
        /// The applied index the snapshot must cover.
        wanted: u64,
        /// How long the pass waited.
        waited: Duration,
    },
    /// Compacting the database failed.
    #[error("compacting the database failed: {0}")]
    Compact(#[from] CompactError),
}

/// What one pass did.
#[derive(Clone, Copy, Debug)]
pub struct PassReport {
    /// The snapshot the log was purged up to.
    pub snapshot_index: u64,
    /// Whether the log was purged up to it (a leader delays a purge while it still replicates
    /// those entries to a follower; the next pass tries again).
    pub purged: bool,
    /// Database bytes before and after.
    pub bytes_before: u64,
    /// Database bytes after.
    pub bytes_after: u64,
    /// How long store operations waited for the swap.
    pub paused: Duration,
}

fn snapshot_index(m: &RaftMetrics) -> u64 {
    m.snapshot.map_or(0, |id| id.index)
}

fn purged_index(m: &RaftMetrics) -> u64 {
    m.purged.map_or(0, |id| id.index)
}

/// Runs a pass every `interval` in which something was applied, until the task is aborted.
pub(crate) async fn run(raft: Raft, db: DurableDb, interval: Duration, wait: Duration) {
    let mut done_at = None;
    loop {
        tokio::time::sleep(interval).await;
        let applied = raft.metrics().borrow().last_applied.map(|id| id.index);
        if applied.is_none() || applied == done_at {
            continue;
        }
        match pass(&raft, &db, wait).await {
            Ok(report) => {
                tracing::info!(
                    snapshot = report.snapshot_index,
                    purged = report.purged,
                    bytes_before = report.bytes_before,
                    bytes_after = report.bytes_after,
                    paused_ms = report.paused.as_millis(),
                    "compacted the database online"
                );
                if report.purged {
                    done_at = applied;
                }
            }
            Err(ShredError::Stopped(_)) => return,
            Err(e) => tracing::warn!(error = %e, "online compaction pass failed; retrying later"),
        }
    }
}

/// One pass: snapshot the applied state, purge the log up to the snapshot, compact.
///
/// # Errors
/// [`ShredError`].
pub async fn pass(raft: &Raft, db: &DurableDb, wait: Duration) -> Result<PassReport, ShredError> {
    let wanted = raft
        .metrics()
        .borrow()
        .last_applied
        .map_or(0, |id| id.index);
    let started = Instant::now();
    let snapshot = loop {
        let built = snapshot_index(&raft.metrics().borrow());
        if built >= wanted {
            break built;
        }
        if started.elapsed() >= wait {
            return Err(ShredError::Snapshot {
                wanted,
                waited: started.elapsed(),
            });
        }
        // Ignored while a build is running; asked again until one covers `wanted`.
        raft.trigger().snapshot().await?;
        tokio::time::sleep(POLL).await;
    };
    raft.trigger().purge_log(snapshot).await?;
    let purged = raft
        .wait(Some(wait.saturating_sub(started.elapsed())))
        .metrics(
            |m| purged_index(m) >= snapshot,
            "log purged to the snapshot",
        )
        .await
        .is_ok();
    let compaction = db.compact().await?;
    Ok(PassReport {
        snapshot_index: snapshot,
        purged,
        bytes_before: compaction.report.bytes_before,
        bytes_after: compaction.report.bytes_after,
        paused: compaction.paused,
    })
}
