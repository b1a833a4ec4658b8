//! Runs every fuzz target over the committed corpus (`fuzz/corpus/<target>/`) and over
//! deterministic mutations of valid inputs: each truncation, each single-byte change at every
//! position, and inserted bytes. A panic fails the test, naming the target and input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use openraft::raft::VoteRequest;
use openraft::{CommittedLeaderId, LogId, Vote};
use tessera_fuzzing::{seeds, TARGETS};
use tessera_raft::codec::decode;
use tessera_raft::NodeId;

fn target(name: &str) -> tessera_fuzzing::Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no target {name}"))
}

fn run(name: &str, input: &[u8]) {
    let f = target(name);
    let owned = input.to_vec();
    if std::panic::catch_unwind(move || f(&owned)).is_err() {
        panic!("target {name} panicked on {:02x?}", input);
    }
}

/// Every mutation of `seed` the test tries.
fn mutations(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for len in 0..seed.len() {
        out.push(seed[..len].to_vec());
    }
    for i in 0..seed.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff, seed[i] ^ 0x01] {
            let mut m = seed.to_vec();
            m[i] = value;
            out.push(m);
        }
        let mut inserted = seed.to_vec();
        inserted.insert(i, 0xff);
        out.push(inserted);
    }
    let mut longer = seed.to_vec();
    longer.extend_from_slice(&[0xff; 16]);
    out.push(longer);
    out
}

#[test]
fn every_target_refuses_mutations_of_valid_inputs_without_panicking() {
    let seeds = seeds();
    for (name, _) in TARGETS {
        assert!(
            seeds.iter().any(|(n, _)| n == name),
            "target {name} has no seed"
        );
    }
    for (name, seed) in &seeds {
        run(name, seed);
        for m in mutations(seed) {
            run(name, &m);
        }
    }
}

fn corpus_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn every_target_survives_its_committed_corpus() {
    let root = corpus_root();
    let mut files = 0;
    for (name, _) in TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus directory {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            run(name, &std::fs::read(&path).unwrap());
            files += 1;
        }
    }
    assert!(files >= TARGETS.len(), "only {files} corpus files");
}

/// The committed cluster-message seed was written while node ids were bare `u64`s: the seed
/// built with typed node ids is byte for byte the same, and the bytes decode to it.
#[test]
fn the_committed_vote_request_is_the_typed_seed() {
    let committed = std::fs::read(corpus_root().join("cluster_message/seed-7")).unwrap();
    let (_, seed) = seeds()
        .into_iter()
        .find(|(name, _)| *name == "cluster_message")
        .unwrap();
    assert_eq!(seed, committed);
    let vote: VoteRequest<NodeId> = decode("vote request", &committed).unwrap();
    assert_eq!(vote.vote, Vote::new(3, NodeId::new(1)));
    assert_eq!(
        vote.last_log_id,
        Some(LogId::new(CommittedLeaderId::new(2, NodeId::new(1)), 9))
    );
}
