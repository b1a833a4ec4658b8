//! The database stays bounded under a long write history: 50,000 key creations and 200,000
//! updates go through the real sled log and state-machine stores (append, apply, snapshot,
//! purge, exactly what openraft calls) with the online compaction pass's steps (snapshot, purge
//! the whole log, `DurableDb::compact`) every 50,000 entries: about the writes of a
//! 5-minute `raft.compact_interval_ms` at a few hundred writes a second. Between passes the
//! directory grows with the writes since the last one; each pass brings it back to about the
//! live data's size (docs/performance.md, "Disk").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use tessera_crypto::spec::KeySpec;
use tessera_raft::durable::DurableDb;
use tessera_raft::log_store::LogStore;
use tessera_raft::state_machine::StateMachineStore;
use tessera_raft::typ::TypeConfig;
use tessera_raft::NodeId;
use tessera_state::{
    CallerId, Command, KeyId, KeyName, KeyOrigin, NewKey, Request, RequestId, SealConfig,
};

const KEYS: u64 = 50_000;
const UPDATES: u64 = 200_000;
/// Entries per append and apply (openraft's payload size on the cluster port).
const BATCH: u64 = 256;
/// Entries between compaction passes.
const PASS_EVERY: u64 = 50_000;
/// The documented bounds for this history (docs/performance.md, "Disk"): right after a pass
/// (measured 85–105 MB; without passes the directory reaches 190 MB and keeps growing), and
/// at any time (measured peak 137–159 MB, just before a pass).
const AFTER_PASS_BYTES: u64 = 128 * 1024 * 1024;
const BOUND_BYTES: u64 = 192 * 1024 * 1024;

fn key_id(n: u64) -> KeyId {
    // Bytes 6 and 8 carry the UUID's version and variant bits: the number goes after them.
    let mut bytes = [0u8; 16];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0;
    KeyId::from_random_bytes(bytes)
}

/// The command at log index `index` (1-based): the seal, then the creations, then updates
/// cycling over the keys.
fn command(index: u64) -> Command {
    match index {
        1 => Command::InitSeal(SealConfig {
            shares: 5,
            threshold: 3,
            sealed_root_key: vec![1; 60],
            sealed_keyring: vec![2; 80],
            initialized_at_ms: 1,
        }),
        i if i <= KEYS + 1 => {
            let n = i - 2;
            Command::CreateKey(NewKey {
                key_id: key_id(n),
                name: KeyName::parse(&format!("key-{n}")).unwrap(),
                spec: KeySpec::Aes256Gcm,
                origin: KeyOrigin::Tessera,
                description: String::new(),
                // Distinct bytes per key, like real sealed material (sled does not compress).
                sealed_material: Some(
                    (0..61u64)
                        .map(|b| (n.wrapping_mul(31).wrapping_add(b * 7) % 251) as u8)
                        .collect(),
                ),
                rotation_period_ms: None,
                exportable: false,
                tags: BTreeMap::new(),
                at_ms: 10,
                created_by: "app".into(),
            })
        }
        i => Command::UpdateDescription {
            key_id: key_id((i - KEYS - 2) % KEYS),
            description: format!("description written at index {i}"),
        },
    }
}

fn entry(index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, NodeId::new(1)), index),
        payload: EntryPayload::Normal(Request {
            request_id: RequestId::parse(&format!("r{index}")).unwrap(),
            caller: CallerId::of("app"),
            fingerprint: [7; 32],
            bindings: Vec::new(),
            command: command(index),
        }),
    }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                dir_size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_keys_and_two_hundred_thousand_updates_stay_under_the_bound() {
    let data_dir = tempfile::tempdir().unwrap();
    let path = data_dir.path().join(tessera_raft::compact::DB_DIR);
    let sled = sled::Config::new()
        .path(&path)
        .cache_capacity(tessera_raft::raft_node::SLED_CACHE_BYTES)
        .open()
        .unwrap();
    let db = DurableDb::open(sled, &path).unwrap();
    let mut log = LogStore::open(&db).unwrap();
    let mut machine = StateMachineStore::open(&db).unwrap();

    let last = 1 + KEYS + UPDATES;
    let mut largest = 0;
    let mut index = 1;
    while index <= last {
        let end = (index + BATCH - 1).min(last);
        let entries: Vec<_> = (index..=end).map(entry).collect();
        log.blocking_append(entries.clone()).await.unwrap();
        let responses = machine.apply(entries).await.unwrap();
        assert!(
            responses
                .iter()
                .all(|r| !matches!(r, tessera_state::Response::Rejected(_))),
            "a write was refused in {index}..={end}: {:?}",
            responses
                .iter()
                .find(|r| matches!(r, tessera_state::Response::Rejected(_)))
        );
        if end / PASS_EVERY != (index - 1) / PASS_EVERY || end == last {
            let snapshot = machine.get_snapshot_builder().await.build_snapshot().await;
            let upto = snapshot.unwrap().meta.last_log_id.unwrap();
            log.purge(upto).await.unwrap();
            let pass = db.compact().await.unwrap();
            largest = largest.max(pass.report.bytes_before);
            assert!(
                pass.report.bytes_after < AFTER_PASS_BYTES,
                "{} bytes after the pass at {end}",
                pass.report.bytes_after
            );
            eprintln!(
                "at {end}: {} bytes before the pass, {} after, store operations paused {:?}",
                pass.report.bytes_before, pass.report.bytes_after, pass.paused
            );
        }
        index = end + 1;
    }
    let size = dir_size(data_dir.path());
    eprintln!("final: {size} bytes; largest before a pass: {largest}");
    assert!(largest < BOUND_BYTES, "{largest} bytes before a pass");
    assert!(size < AFTER_PASS_BYTES, "{size} bytes at the end");

    // The compacted database still holds the whole state.
    drop((log, machine, db));
    let sled = sled::Config::new().path(&path).open().unwrap();
    let machine = StateMachineStore::open(&DurableDb::open(sled, &path).unwrap()).unwrap();
    let shared = machine.shared();
    let applied = shared.read();
    assert_eq!(applied.last_applied.unwrap().index, last);
    let key = applied
        .state
        .resolve(&tessera_state::KeyRef::parse("key-49999").unwrap())
        .unwrap();
    assert_eq!(
        key.description,
        format!("description written at index {}", last)
    );
}
