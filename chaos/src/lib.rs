//! Tessera's fault-injection harness.
//!
//! A run starts a real cluster of `tessera server` processes on loopback with its own PKI,
//! routes every node-to-node link and every client link through an in-process
//! [`proxy::Proxy`], drives a recorded workload of concurrent clients, and injects faults
//! from a seeded schedule: process kills and restarts, pauses (SIGSTOP/SIGCONT), partitions of
//! any shape (including one-way and bridge), delay, loss, full disks and the loss of a whole
//! [`topology`] region; cross-region links can carry a fixed WAN delay. At the end it heals everything,
//! restarts and unseals every node like an operator would, collects the final state, and runs
//! the [`invariants`] checkers over the history. The report (text, JSON, SVG timeline) says
//! what broke and how to reproduce it.
//!
//! What it is not: a model checker. It explores schedules a seed chooses; a pass is evidence,
//! not proof.

pub mod cluster;
pub mod history;
pub mod invariants;
pub mod nemesis;
pub mod proxy;
pub mod report;
pub mod run;
pub mod schedule;
pub mod topology;
pub mod wan;
pub mod workload;
