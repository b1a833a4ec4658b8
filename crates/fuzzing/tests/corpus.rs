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

use tessera_fuzzing::{seeds, TARGETS};

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

#[test]
fn every_target_survives_its_committed_corpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
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
