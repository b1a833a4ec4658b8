//! The stored snapshot against overlapping builds and installs, checked on disk after the
//! store is re-opened.

use std::path::Path;

use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use tessera_state::{CallerId, Command, NodeId, Request, RequestId, SealConfig};

use super::*;

/// A write that changes the state at every index (the first initialises the seal, later ones
/// add a clock reading each), so the state differs at every index.
fn request(index: u64) -> Request {
    let command = if index == 1 {
        Command::InitSeal(SealConfig {
            shares: 5,
            threshold: 3,
            sealed_root_key: vec![1; 60],
            sealed_keyring: vec![2; 80],
            initialized_at_ms: 1,
        })
    } else {
        Command::ReportClock {
            node_id: NodeId::new(index),
            at_ms: index,
            voters: 1,
        }
    };
    Request {
        request_id: RequestId::parse(&format!("r{index}")).unwrap(),
        caller: CallerId::of("test"),
        fingerprint: [7; 32],
        bindings: Vec::new(),
        command,
    }
}

fn log_id(index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(1, NodeId::new(1)), index)
}

fn open(dir: &Path) -> (sled::Db, StateMachineStore) {
    let db = sled::Config::new().path(dir).open().unwrap();
    let store = StateMachineStore::open(&crate::durable::DurableDb::open(db.clone(), dir).unwrap())
        .unwrap();
    (db, store)
}

async fn apply(store: &mut StateMachineStore, indexes: std::ops::RangeInclusive<u64>) {
    let entries = indexes.map(|index| Entry::<TypeConfig> {
        log_id: log_id(index),
        payload: EntryPayload::Normal(request(index)),
    });
    store.apply(entries.collect::<Vec<_>>()).await.unwrap();
}

/// A snapshot at index 10 from another replica, to install.
async fn leader_snapshot() -> (Snapshot, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (_db, mut leader) = open(dir.path());
    apply(&mut leader, 1..=10).await;
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let digest = leader.shared().read().state.digest().unwrap();
    (snapshot, digest.to_vec())
}

/// What a re-opened store holds: the stored snapshot's last log id, the applied pointer and
/// the state digest loaded from the rows.
async fn on_disk(dir: &Path) -> (Option<LogId<NodeId>>, Option<LogId<NodeId>>, Vec<u8>) {
    let (_db, mut store) = open(dir);
    let snapshot = store.get_current_snapshot().await.unwrap().unwrap();
    let stored_state = State::decode_snapshot(snapshot.snapshot.get_ref()).unwrap();
    let (applied, _) = store.applied_state().await.unwrap();
    let digest = store.shared().read().state.digest().unwrap().to_vec();
    assert_eq!(
        stored_state.digest().unwrap().to_vec(),
        digest,
        "the stored snapshot holds other state than the rows"
    );
    (snapshot.meta.last_log_id, applied, digest)
}

#[tokio::test]
async fn an_install_after_a_finished_build_replaces_the_stored_snapshot() {
    let (installed, leader_digest) = leader_snapshot().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let (_db, mut follower) = open(dir.path());
        apply(&mut follower, 1..=3).await;
        let built = follower
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id(3)));
        follower
            .install_snapshot(&installed.meta, installed.snapshot)
            .await
            .unwrap();
    }
    let (snapshot, applied, digest) = on_disk(dir.path()).await;
    assert_eq!(snapshot, Some(log_id(10)));
    assert_eq!(applied, Some(log_id(10)));
    assert_eq!(digest, leader_digest);
}

#[tokio::test]
async fn a_stale_build_finishing_after_an_install_keeps_the_installed_snapshot() {
    let (installed, leader_digest) = leader_snapshot().await;
    let dir = tempfile::tempdir().unwrap();
    let stale_stored = {
        let (_db, mut follower) = open(dir.path());
        apply(&mut follower, 1..=3).await;
        let builder = follower.get_snapshot_builder().await;
        // The build has read the state at index 3; the install overtakes it.
        let stale = builder.capture().unwrap();
        follower
            .install_snapshot(&installed.meta, installed.snapshot)
            .await
            .unwrap();
        builder.store.save_snapshot(&stale).await.unwrap()
    };
    let (snapshot, applied, digest) = on_disk(dir.path()).await;
    assert_eq!(snapshot, Some(log_id(10)));
    assert_eq!(applied, Some(log_id(10)));
    assert_eq!(digest, leader_digest);
    assert!(
        !stale_stored,
        "the stale build reported its snapshot as stored"
    );
}

#[tokio::test]
async fn a_build_at_the_stored_index_or_later_replaces_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_db, mut store) = open(dir.path());
        apply(&mut store, 1..=3).await;
        let builder = store.get_snapshot_builder().await;
        let first = builder.capture().unwrap();
        assert!(builder.store.save_snapshot(&first).await.unwrap());
        let again = builder.capture().unwrap();
        assert!(builder.store.save_snapshot(&again).await.unwrap());
        let current = store.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.snapshot_id, again.meta.snapshot_id);
        apply(&mut store, 4..=5).await;
        let later = store
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(later.meta.last_log_id, Some(log_id(5)));
    }
    let (snapshot, applied, _) = on_disk(dir.path()).await;
    assert_eq!(snapshot, Some(log_id(5)));
    assert_eq!(applied, Some(log_id(5)));
}
