//! Test support for Tessera: real clusters of `tessera server` processes on loopback.
//!
//! [`cluster::TestCluster`] creates a throw-away PKI and node configurations with
//! `tessera_launcher` (the code `tessera dev` runs), starts node processes on ports the kernel
//! picks, joins them, and (optionally) initialises and unseals them. Every process is killed
//! when its guard drops, so a failing test leaves nothing running; node logs are printed when a
//! test panics. Waits are the launcher's bounded polls ([`wait`]), never fixed sleeps. Cluster
//! tests take a process-wide lock so a 2-core machine runs one cluster at a time; a test that
//! starts another kind of cluster (`tessera dev`, the chaos harness) takes it with
//! [`exclusive`].
//!
//! This crate is test support: a failed setup panics with a message, which fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod cluster;
pub mod disk;
pub mod node;
pub mod ports;
pub mod process;
pub mod scan;
pub mod wait;

pub use cluster::{exclusive, ClusterOptions, Exclusive, TestCluster};
pub use tessera_launcher::NodeFiles;
pub use wait::{past_unavailability, wait_for};
