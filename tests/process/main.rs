//! Black-box tests against real `tessera server` processes on loopback.
//!
//! Files are numbered by area: t10 basic flows, t20 leader failure and restarts, t24
//! leadership (forwarding backoff, sealed leaders), t26 membership changes (learners, promote,
//! remove, quorum refusals), t27 region-aware clients, t28 lagging nodes, t29 clock faults (needs a
//! fault-injection build), t30 bad input, t36 access control, t38 connection floods, t40
//! durability, t50 secrets at rest, t55 operations (metrics, health, reflection, logs, certificate reload), t56 backup and restore, t57 barrier rotation and rekey, t60 the CLI contract (t62 the full API, t64 the access-control commands), t70 key
//! lifecycle, t72 crypto operations, t74 import/export and background jobs, t78
//! interoperability, t79 crypto-shredding, t80 envelope encryption (SDK and CLI), t90 the chaos harness, t95 the benchmark smoke
//! run. Every test starts its own cluster (one at a time; see `tessera_testkit`), bounds every
//! wait, and kills its processes when it ends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod api;
mod t10_basic;
mod t20_failover;
mod t24_leadership;
mod t26_membership;
mod t27_regions;
mod t28_stale_references;
#[cfg(feature = "fault-injection")]
mod t29_clock_skew;
mod t30_bad_input;
mod t34_oversized_input;
mod t36_access;
mod t38_audit;
mod t39_connection_flood;
mod t40_durability;
mod t50_secrets_at_rest;
mod t55_ops;
mod t56_backup;
mod t57_barrier;
mod t60_cli;
mod t62_cli_api;
mod t64_cli_access;
mod t70_key_lifecycle;
mod t72_crypto_operations;
mod t74_import_export_jobs;
mod t78_interop;
mod t79_crypto_shredding;
mod t80_envelope;
mod t90_chaos;
mod t95_bench;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

/// The `tessera` binary under test.
pub fn tessera() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
}

/// An encryption context from pairs.
pub fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Creates the keys `PREFIX-0`, `PREFIX-1`, … (`count` of them, of `spec`) through `client`,
/// one write each: e.g. enough entries for the log to be compacted.
pub async fn create_numbered_keys(
    client: &tessera_client::Client,
    prefix: &str,
    spec: &str,
    count: usize,
) {
    for i in 0..count {
        client
            .create_key(&format!("{prefix}-{i}"), spec, "")
            .await
            .unwrap();
    }
}

/// Asserts that a command exited successfully; its standard error explains a failure.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
