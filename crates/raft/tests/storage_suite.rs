//! openraft's storage conformance suite against Tessera's sled log and state-machine stores.

#![allow(clippy::expect_used)]

use openraft::testing::{StoreBuilder, Suite};
use tessera_raft::durable::DurableDb;
use tessera_raft::log_store::LogStore;
use tessera_raft::state_machine::StateMachineStore;
use tessera_raft::typ::{StorageError, TypeConfig};

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::Config::new()
            .path(dir.path())
            .open()
            .expect("sled opens");
        let db = DurableDb::open(db, dir.path()).expect("sled's data file opens");
        let log = LogStore::open(&db).expect("log store opens");
        let sm = StateMachineStore::open(&db).expect("state machine opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn sled_stores_pass_the_openraft_suite() {
    Suite::test_all(SledBuilder).expect("storage suite");
}
