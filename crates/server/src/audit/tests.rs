#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use super::chain::{self, verify_files, VerifyError, GENESIS};
use super::record::Record;
use super::sink::{self, ChainHead, FileSettings, FileSink, Pending, Writer};
use super::*;
use tessera_state::KeyVersion;

fn record(n: u64) -> Record {
    Record {
        v: record::SCHEMA_VERSION,
        seq: 0,
        time_ms: 1_700_000_000_000 + n,
        node: NodeId::new(1),
        region: "region-1".into(),
        request_id: None,
        identity: Some("app".into()),
        cert_sha256: Some("ab".repeat(32)),
        method: "/tessera.v1.Crypto/Encrypt".into(),
        action: Some("kms:Encrypt"),
        key_id: Some(format!("key-{n}")),
        key_version: Some(KeyVersion::FIRST),
        grpc_code: "OK",
        tessera_code: None,
        latency_us: 42,
        hmac: Vec::new(),
        hmac_omitted: 0,
    }
}

fn settings(dir: &Path, max_file_bytes: u64, retain_files: usize) -> FileSettings {
    FileSettings {
        dir: dir.to_owned(),
        max_file_bytes,
        retain_files,
        sync: false,
    }
}

/// Writes `records` records through a writer on `dir`, in batches of `batch`.
fn write(settings: FileSettings, records: u64, batch: u64) -> Vec<Result<(), sink::WriteFailed>> {
    let (file, head) = FileSink::open(settings).unwrap();
    let mut writer = Writer {
        file: Some(file),
        stdout: false,
        head,
    };
    let mut results = Vec::new();
    let mut n = 0;
    while n < records {
        let mut pending: Vec<Pending> = (n..(n + batch).min(records))
            .map(|i| Pending {
                record: record(i),
                done: tokio::sync::oneshot::channel().0,
            })
            .collect();
        results.push(writer.write_batch_for_test(&mut pending));
        n += batch;
    }
    results
}

fn files(dir: &Path) -> Vec<PathBuf> {
    sink::list_files(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn broken_at(result: Result<chain::Verified, VerifyError>) -> (PathBuf, usize, String) {
    match result {
        Err(VerifyError::Broken { file, line, reason }) => (file, line, reason),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn records_chain_across_rotation_and_restart_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let s = || settings(dir.path(), 2500, 100);
    assert!(write(s(), 10, 3).iter().all(Result::is_ok));
    // A restart continues the chain from the newest file.
    assert!(write(s(), 10, 4).iter().all(Result::is_ok));
    let all = files(dir.path());
    assert!(all.len() > 2, "rotated into {} files", all.len());
    let verified = verify_files(&all).unwrap();
    assert_eq!(verified.records, 20);
    assert_eq!(verified.first_seq, Some(1));
    assert_eq!(verified.anchor.as_deref(), Some(GENESIS));
    // Every file stays within the size limit.
    for f in &all {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 2500, "{} has {len} bytes", f.display());
    }
    // A later file alone verifies, anchored in the file before it.
    let tail = verify_files(&all[1..]).unwrap();
    assert_ne!(tail.anchor.as_deref(), Some(GENESIS));
    // Files out of order do not.
    let mut swapped = all.clone();
    swapped.swap(0, 1);
    let (file, line, _) = broken_at(verify_files(&swapped));
    assert_eq!((file, line), (all[0].clone(), 1));
}

#[test]
fn retention_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(write(settings(dir.path(), 1000, 3), 30, 2)
        .iter()
        .all(Result::is_ok));
    let kept = files(dir.path());
    assert_eq!(kept.len(), 3);
    let verified = verify_files(&kept).unwrap();
    assert!(verified.last_hash.is_some());
    assert!(verified.first_seq.unwrap() > 1);
}

/// Applies `change` to the lines of the only audit file in `dir` and returns where
/// verification breaks.
fn tamper(change: impl FnOnce(&mut Vec<String>)) -> (usize, String) {
    let dir = tempfile::tempdir().unwrap();
    assert!(write(settings(dir.path(), 1 << 20, 10), 8, 8)
        .iter()
        .all(Result::is_ok));
    let file = files(dir.path()).remove(0);
    let mut lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    change(&mut lines);
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let (at, line, reason) = broken_at(verify_files(std::slice::from_ref(&file)));
    assert_eq!(at, file);
    (line, reason)
}

#[test]
fn an_edited_line_is_named() {
    let (line, reason) = tamper(|lines| lines[4] = lines[4].replace("key-4", "key-9"));
    assert_eq!(line, 5);
    assert!(reason.contains("was changed"), "{reason}");
}

#[test]
fn a_deleted_line_is_named() {
    let (line, reason) = tamper(|lines| {
        lines.remove(3);
    });
    assert_eq!(line, 4);
    assert!(reason.contains("does not follow"), "{reason}");
}

#[test]
fn an_inserted_line_is_named() {
    let (line, _) = tamper(|lines| {
        let copy = lines[1].clone();
        lines.insert(5, copy);
    });
    assert_eq!(line, 6);
}

#[test]
fn reordered_lines_are_named() {
    let (line, _) = tamper(|lines| lines.swap(2, 3));
    assert_eq!(line, 3);
}

#[test]
fn a_torn_last_line_is_cut_at_start_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = || settings(dir.path(), 1 << 20, 10);
    assert!(write(s(), 3, 3).iter().all(Result::is_ok));
    let file = files(dir.path()).remove(0);
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("{\"v\":1,\"seq\":4");
    std::fs::write(&file, &text).unwrap();
    assert!(matches!(
        verify_files(std::slice::from_ref(&file)),
        Err(VerifyError::Broken { line: 4, .. })
    ));
    assert!(write(s(), 2, 2).iter().all(Result::is_ok));
    assert_eq!(verify_files(&files(dir.path())).unwrap().records, 5);
}

#[test]
fn a_removed_directory_fails_writes_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    let (file, head) = FileSink::open(settings(&audit, 1 << 20, 10)).unwrap();
    let mut writer = Writer {
        file: Some(file),
        stdout: false,
        head,
    };
    let batch = |from: u64| -> Vec<Pending> {
        (from..from + 2)
            .map(|i| Pending {
                record: record(i),
                done: tokio::sync::oneshot::channel().0,
            })
            .collect()
    };
    writer.write_batch_for_test(&mut batch(0)).unwrap();
    let head_before = writer.head.clone();
    std::fs::remove_dir_all(&audit).unwrap();
    assert!(writer.write_batch_for_test(&mut batch(2)).is_err());
    assert_eq!(
        writer.head, head_before,
        "a failed batch does not advance the chain"
    );
    std::fs::create_dir(&audit).unwrap();
    writer.write_batch_for_test(&mut batch(4)).unwrap();
    let verified = verify_files(&files(&audit)).unwrap();
    assert_eq!(verified.records, 2);
    assert_eq!(verified.anchor, Some(head_before.hash));
    assert_eq!(verified.first_seq, Some(head_before.seq + 1));
}

#[test]
fn a_damaged_last_record_refuses_to_continue_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    assert!(write(settings(dir.path(), 1 << 20, 10), 2, 2)
        .iter()
        .all(Result::is_ok));
    let file = files(dir.path()).remove(0);
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("key-1", "key-7");
    std::fs::write(&file, text).unwrap();
    assert!(matches!(
        FileSink::open(settings(dir.path(), 1 << 20, 10)),
        Err(sink::OpenError::Damaged { .. })
    ));
}

#[test]
fn an_empty_directory_starts_at_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let (_, head) = FileSink::open(settings(dir.path(), 1 << 20, 10)).unwrap();
    assert_eq!(head, ChainHead::default());
}

#[tokio::test]
async fn the_auditor_acknowledges_each_record_once_written() {
    let dir = tempfile::tempdir().unwrap();
    let section = AuditSection {
        enabled: true,
        path: Some(dir.path().join("a")),
        ..AuditSection::default()
    };
    let auditor =
        std::sync::Arc::new(Auditor::start(&section, dir.path(), NodeId::new(1), "r").unwrap());
    let writes: Vec<_> = (0..50)
        .map(|i| {
            let auditor = std::sync::Arc::clone(&auditor);
            tokio::spawn(async move { auditor.record(record(i)).await })
        })
        .collect();
    for write in writes {
        write.await.unwrap().unwrap();
    }
    let verified = verify_files(&files(&dir.path().join("a"))).unwrap();
    assert_eq!(verified.records, 50);
}

#[test]
fn every_method_maps_to_its_action() {
    assert_eq!(
        action_of("/tessera.v1.Crypto/Encrypt"),
        Some(tessera_state::policy::Action::Encrypt)
    );
    assert_eq!(
        action_of("/tessera.v1.System/AuditHash"),
        Some(tessera_state::policy::Action::AuditHash)
    );
    assert_eq!(
        action_of("/tessera.v1.System/Members"),
        Some(tessera_state::policy::Action::ListMembers)
    );
    for change in ["AddLearner", "Promote", "Demote", "RemoveMember"] {
        assert_eq!(
            action_of(&format!("/tessera.v1.System/{change}")),
            Some(tessera_state::policy::Action::ChangeMembership),
            "{change}"
        );
    }
    assert_eq!(action_of("/tessera.v1.Crypto/Nope"), None);
    assert_eq!(action_of("/grpc.health.v1.Health/Check"), None);
}

#[test]
fn the_node_field_is_written_as_the_bare_number() {
    let mut typed = record(1);
    typed.node = NodeId::new(300);
    let body = typed.body(GENESIS).unwrap();
    let expected = format!(
        "{{\"v\":{},\"seq\":0,\"time_ms\":1700000000001,\"node\":300,\"region\":\"region-1\",",
        record::SCHEMA_VERSION
    );
    assert!(body.starts_with(&expected), "{body}");
    // Field for field what a bare `u64` gives.
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["node"], serde_json::json!(300u64));
}
