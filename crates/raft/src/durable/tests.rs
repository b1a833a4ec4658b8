#![allow(clippy::unwrap_used)]

use super::*;

/// Whether any file under `dir` holds `needle`.
fn contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|e| {
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            contains(&path, needle)
        } else {
            let bytes = std::fs::read(&path).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        }
    })
}

fn open_at(data_dir: &Path) -> DurableDb {
    let path = data_dir.join(compact::DB_DIR);
    DurableDb::open(compact::open_closed(&path).unwrap(), &path).unwrap()
}

async fn insert(db: &DurableDb, key: &[u8], value: &[u8]) {
    let access = db.access().await;
    access.tree("t").unwrap().insert(key, value).unwrap();
    access.flush().await.unwrap();
}

#[tokio::test]
async fn a_flushed_write_is_in_the_data_file_it_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_at(dir.path());
    insert(&db, b"k", b"a value only this write holds").await;
    let bytes = std::fs::read(dir.path().join(compact::DB_DIR).join(SLED_DATA_FILE)).unwrap();
    assert!(bytes
        .windows(29)
        .any(|w| w == b"a value only this write holds"));
}

#[test]
fn a_directory_without_sled_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new().temporary(true).open().unwrap();
    assert!(DurableDb::open(db, dir.path()).is_err());
}

#[tokio::test]
async fn online_compaction_drops_overwritten_bytes_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_at(dir.path());
    let secret = b"overwritten-secret-value-0123456789";
    insert(&db, b"k", secret).await;
    insert(&db, b"k", b"live").await;
    insert(&db, b"other", b"kept").await;
    assert!(contains(dir.path(), secret), "sled keeps the old value");

    let report = db.compact().await.unwrap();
    assert!(report.report.bytes_after > 0);
    assert!(!contains(dir.path(), secret), "the old value is gone");
    let tree = db.tree("t").unwrap();
    assert_eq!(tree.get("k").unwrap().unwrap().as_ref(), b"live");
    assert_eq!(tree.get("other").unwrap().unwrap().as_ref(), b"kept");
    drop(tree);

    // The database in use is the compacted one: a write after it survives a reopen.
    insert(&db, b"after", b"written after").await;
    drop(db);
    let db = open_at(dir.path());
    let tree = db.tree("t").unwrap();
    assert_eq!(
        tree.get("after").unwrap().unwrap().as_ref(),
        b"written after"
    );
    assert!(!dir.path().join(compact::NEW_DIR).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_an_online_compaction_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_at(dir.path());
    for i in 0..2_000u32 {
        let access = db.access().await;
        access
            .tree("t")
            .unwrap()
            .insert(i.to_be_bytes(), vec![1; 100])
            .unwrap();
    }
    let compacted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Overwrites, removals and new keys, from before the compaction starts until it is done.
    let writer = {
        let (db, compacted) = (db.clone(), Arc::clone(&compacted));
        tokio::spawn(async move {
            let mut i = 0u32;
            while i < 2_000 || !compacted.load(std::sync::atomic::Ordering::SeqCst) {
                let access = db.access().await;
                let tree = access.tree("t").unwrap();
                tree.insert(i.to_be_bytes(), vec![2; 100]).unwrap();
                if i % 3 == 1 {
                    tree.remove(i.to_be_bytes()).unwrap();
                }
                drop(tree);
                access.flush().await.unwrap();
                i += 1;
            }
            i
        })
    };
    let report = db.compact().await.unwrap();
    compacted.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await.unwrap();
    assert!(written > 2_000 || report.paused > Duration::ZERO);
    drop(db);
    let db = open_at(dir.path());
    let tree = db.tree("t").unwrap();
    for i in 0..written.max(2_000) {
        let value = tree.get(i.to_be_bytes()).unwrap();
        match (i % 3 == 1, i < written) {
            (true, true) => assert!(value.is_none(), "key {i} was removed"),
            (false, true) => assert_eq!(value.unwrap().as_ref(), &[2; 100][..], "key {i}"),
            (_, false) => assert_eq!(value.unwrap().as_ref(), &[1; 100][..], "key {i}"),
        }
    }
}

#[tokio::test]
async fn a_temporary_database_is_not_compacted() {
    let db = DurableDb::temporary(sled::Config::new().temporary(true).open().unwrap());
    assert!(matches!(db.compact().await, Err(CompactError::Temporary)));
}
