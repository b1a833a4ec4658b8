//! Quorum-loss recovery: rebuild a one-node cluster from a surviving node's data directory.
//!
//! When a majority of the voters is gone for good, no write can ever commit again: Raft needs a
//! majority to change the membership too. [`recover`] runs on the **stopped** survivor (sled's
//! lock refuses a running node) and makes it the sole voter of its cluster, like etcd's
//! `--force-new-cluster`:
//!
//! 1. every entry in the survivor's log past its applied index is applied, committed or not
//!    (with the majority gone, the survivor's log is the best history there is);
//! 2. a snapshot of the result is installed with a membership of this node alone, as a voter,
//!    at the last applied log id;
//! 3. the whole log is purged up to that log id and the committed pointer set to it.
//!
//! On its next start the node elects itself and accepts writes; fresh nodes then join with
//! `operator add-learner` and `operator promote`. What can be lost: a write acknowledged by the
//! old majority that never reached the survivor's log. What can appear: an entry the survivor
//! held that was never committed (its client saw a timeout or an error, and may have retried;
//! request ids make retried writes apply once). The old members must never be started again
//! on their old data: their certificates name ids outside the new membership, so the survivor
//! refuses their calls, and re-adding an id with its old data is refused (`STALE_NODE_DATA`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{Membership, RaftLogReader};

use crate::compact::DB_DIR;
use crate::durable::DurableDb;
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;
use crate::storage_error;
use crate::typ::{LogId, NodeId, SnapshotMeta, StorageError, StoredMembership};

/// Why recovery was refused or failed. Before [`RecoverError::Storage`] nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The database cannot be opened (a running node holds its lock, or there is none).
    #[error("cannot open the node database in {path} (is the node stopped?): {source}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The node never joined a cluster: there is nothing to recover.
    #[error("the data directory holds no cluster state (the node never joined a cluster); nothing to recover")]
    NoClusterState,
    /// The data says this node is not a member (it was removed): its state is stale.
    #[error("node {id} is not a member in its own data (it was removed from the cluster); recover from a node that was still a member")]
    NotAMember {
        /// The node id of the configuration.
        id: NodeId,
    },
    /// Reading or writing the Raft storage failed.
    #[error("raft storage: {0}")]
    Storage(#[from] StorageError),
}

/// What recovery found and did (or, for a dry run, would do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoverPlan {
    /// The surviving node.
    pub node_id: NodeId,
    /// Index applied before recovery.
    pub applied_index: u64,
    /// Index of the last entry in the node's log.
    pub last_log_index: u64,
    /// Index the node knew to be committed.
    pub committed_index: u64,
    /// Voters of the membership the node held.
    pub voters_before: BTreeSet<NodeId>,
    /// Learners of the membership the node held.
    pub learners_before: BTreeSet<NodeId>,
    /// Index the recovered cluster starts from: every entry up to it is applied.
    pub recovered_index: u64,
}

/// Inspects the stopped node's data in `data_dir` and, unless `dry_run`, makes `node_id` the
/// sole voter of a one-node cluster holding everything in its log (see the module docs).
///
/// # Errors
/// [`RecoverError`]; a refusal writes nothing.
pub async fn recover(
    data_dir: &Path,
    node_id: NodeId,
    dry_run: bool,
) -> Result<RecoverPlan, RecoverError> {
    let db = open(data_dir)?;
    let mut log = LogStore::open(&db).map_err(|e| open_error(data_dir, e))?;
    let mut machine = StateMachineStore::open(&db)?;
    let (applied, membership) = machine.applied_state().await?;
    let log_state = log.get_log_state().await?;
    let committed = log.read_committed().await?;
    let info = membership.membership().get_node(&node_id).cloned().ok_or(
        if membership.log_id().is_none() {
            RecoverError::NoClusterState
        } else {
            RecoverError::NotAMember { id: node_id }
        },
    )?;
    let applied_index = index(applied);
    let last_log_index = index(log_state.last_log_id).max(applied_index);
    let mut plan = RecoverPlan {
        node_id,
        applied_index,
        last_log_index,
        committed_index: index(committed),
        voters_before: membership.membership().voter_ids().collect(),
        learners_before: membership.membership().learner_ids().collect(),
        recovered_index: last_log_index,
    };
    if dry_run {
        return Ok(plan);
    }

    let tail = log
        .try_get_log_entries(applied_index.saturating_add(1)..=last_log_index)
        .await?;
    machine.apply(tail).await?;
    let (applied, _) = machine.applied_state().await?;
    let Some(last) = applied else {
        return Err(RecoverError::NoClusterState);
    };
    plan.recovered_index = last.index;

    let alone = Membership::new(
        vec![BTreeSet::from([node_id])],
        BTreeMap::from([(node_id, info)]),
    );
    let data = machine
        .shared()
        .read()
        .state
        .encode_snapshot()
        .map_err(|e| storage_error::write_snapshot(None, &e))?;
    let meta = SnapshotMeta {
        last_log_id: Some(last),
        last_membership: StoredMembership::new(Some(last), alone),
        snapshot_id: format!("recovered-{}-{}", last.leader_id, last.index),
    };
    machine
        .install_snapshot(&meta, Box::new(Cursor::new(data)))
        .await?;
    truncate_and_purge(&mut log, last).await?;
    log.save_committed(Some(last)).await?;
    db.access()
        .await
        .flush()
        .await
        .map_err(|e| storage_error::write(&e))?;
    Ok(plan)
}

/// Removes every log entry: those past `last` (all applied by now) and those up to it.
async fn truncate_and_purge(log: &mut LogStore, last: LogId) -> Result<(), StorageError> {
    let next = LogId::new(last.leader_id, last.index.saturating_add(1));
    log.truncate(next).await?;
    log.purge(last).await
}

fn index(id: Option<LogId>) -> u64 {
    id.map_or(0, |id| id.index)
}

fn open_error(data_dir: &Path, source: impl Into<std::io::Error>) -> RecoverError {
    RecoverError::Open {
        path: data_dir.join(DB_DIR),
        source: source.into(),
    }
}

fn open(data_dir: &Path) -> Result<DurableDb, RecoverError> {
    crate::compact::recover(data_dir).map_err(|e| open_error(data_dir, e))?;
    let path = data_dir.join(DB_DIR);
    if !path.join("conf").exists() {
        return Err(open_error(
            data_dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no node database"),
        ));
    }
    let db = sled::Config::new()
        .path(&path)
        .open()
        .map_err(|e| open_error(data_dir, e))?;
    DurableDb::open(db, &path).map_err(|e| open_error(data_dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use openraft::{CommittedLeaderId, Entry, EntryPayload};
    use tessera_state::{CallerId, Command, Request, RequestId};

    use super::*;
    use crate::typ::{NodeInfo, TypeConfig};

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(1, NodeId::new(1)), index)
    }

    /// Entry 1 makes nodes 1, 2 and 3 voters; later ones each report a clock reading, so the
    /// state differs at every index.
    fn entry(index: u64) -> Entry<TypeConfig> {
        let payload = if index == 1 {
            let voters: BTreeSet<NodeId> = (1..=3).map(NodeId::new).collect();
            let nodes: BTreeMap<NodeId, NodeInfo> =
                voters.iter().map(|id| (*id, NodeInfo::default())).collect();
            EntryPayload::Membership(Membership::new(vec![voters], nodes))
        } else {
            EntryPayload::Normal(Request {
                request_id: RequestId::parse(&format!("r{index}")).unwrap(),
                caller: CallerId::of("test"),
                fingerprint: [7; 32],
                bindings: Vec::new(),
                command: Command::ReportClock {
                    node_id: NodeId::new(1),
                    at_ms: index,
                    voters: 3,
                },
            })
        };
        Entry {
            log_id: log_id(index),
            payload,
        }
    }

    /// A data directory whose log holds entries 1..=5, of which 1..=3 are applied.
    async fn survivor() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_DIR);
        let db = DurableDb::open(sled::Config::new().path(&path).open().unwrap(), &path).unwrap();
        let log = db.tree(crate::log_store::LOG_TREE).unwrap();
        for index in 1..=5 {
            let bytes = crate::codec::encode("log entry", &entry(index)).unwrap();
            log.insert(index.to_be_bytes(), bytes).unwrap();
        }
        let mut machine = StateMachineStore::open(&db).unwrap();
        machine
            .apply((1..=3).map(entry).collect::<Vec<_>>())
            .await
            .unwrap();
        let mut store = LogStore::open(&db).unwrap();
        store.save_committed(Some(log_id(3))).await.unwrap();
        db.access().await.flush().await.unwrap();
        dir
    }

    async fn reopen(dir: &Path) -> (LogStore, StateMachineStore) {
        let db = open(dir).unwrap();
        (
            LogStore::open(&db).unwrap(),
            StateMachineStore::open(&db).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_dry_run_reports_the_plan_and_writes_nothing() {
        let dir = survivor().await;
        let plan = recover(dir.path(), NodeId::new(2), true).await.unwrap();
        assert_eq!(
            (
                plan.applied_index,
                plan.committed_index,
                plan.last_log_index
            ),
            (3, 3, 5)
        );
        assert_eq!(
            plan.voters_before,
            BTreeSet::from([1, 2, 3].map(NodeId::new))
        );
        let (mut log, mut machine) = reopen(dir.path()).await;
        assert_eq!(machine.applied_state().await.unwrap().0, Some(log_id(3)));
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(5))
        );
    }

    #[tokio::test]
    async fn recovery_applies_the_whole_log_and_leaves_this_node_the_only_voter() {
        let dir = survivor().await;
        let expected = {
            let (_, mut machine) = reopen(dir.path()).await;
            machine
                .apply((4..=5).map(entry).collect::<Vec<_>>())
                .await
                .unwrap();
            let state = machine.shared().read().state.encode_snapshot().unwrap();
            state
        };
        let dir = survivor().await;
        let plan = recover(dir.path(), NodeId::new(2), false).await.unwrap();
        assert_eq!(plan.recovered_index, 5);

        let (mut log, mut machine) = reopen(dir.path()).await;
        let (applied, membership) = machine.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(5)));
        assert_eq!(
            membership.membership().voter_ids().collect::<Vec<_>>(),
            vec![NodeId::new(2)]
        );
        assert_eq!(membership.membership().nodes().count(), 1);
        assert_eq!(
            machine.shared().read().state.encode_snapshot().unwrap(),
            expected
        );
        let log_state = log.get_log_state().await.unwrap();
        assert_eq!(log_state.last_purged_log_id, Some(log_id(5)));
        assert_eq!(log_state.last_log_id, Some(log_id(5)));
        assert!(log.try_get_log_entries(0..).await.unwrap().is_empty());
        assert_eq!(log.read_committed().await.unwrap(), Some(log_id(5)));
        let snapshot = machine.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(5)));
        assert_eq!(snapshot.meta.last_membership, membership);
    }

    #[tokio::test]
    async fn a_node_outside_its_own_membership_or_without_a_cluster_is_refused() {
        let dir = survivor().await;
        assert!(matches!(
            recover(dir.path(), NodeId::new(9), false).await,
            Err(RecoverError::NotAMember { id }) if id == NodeId::new(9)
        ));
        let (_, mut machine) = reopen(dir.path()).await;
        assert_eq!(machine.applied_state().await.unwrap().0, Some(log_id(3)));

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            recover(empty.path(), NodeId::new(1), false).await,
            Err(RecoverError::Open { .. })
        ));
        let path = empty.path().join(DB_DIR);
        drop(sled::Config::new().path(&path).open().unwrap());
        assert!(matches!(
            recover(empty.path(), NodeId::new(1), false).await,
            Err(RecoverError::NoClusterState)
        ));
    }
}
