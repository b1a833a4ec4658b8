//! The access prober: one client that, on a key of its own, allows `app` `kms:Encrypt`, waits
//! past the lease window, encrypts as `app` through every node, then denies it, waits past the
//! window again and encrypts as `app` through every node once more — over and over.
//!
//! The random workers allow, deny and use `app`'s access too, but whether a use through a
//! given node lands after a deny and its window is left to chance. The prober makes every run
//! exercise revoke-then-use on every node that serves, so the `revoked-access` checker catches
//! a node that keeps allowing a revoked action every time, not only on lucky seeds.

use std::time::Duration;

use base64::Engine;
use tessera_client::Client;
use tokio::sync::watch;

use super::{app_policy, create_key, encrypt, record, B64};
use crate::history::{Op, Recorder};

/// The key the prober works on (not in the workers' pool).
pub const PROBE_KEY: &str = "access-probe";

/// The access prober's connections and pace.
pub struct AccessProber {
    /// Client number in the history.
    pub process: u32,
    /// `(node id, admin client through that node's proxy)`: policy changes go through each
    /// node in turn.
    pub clients: Vec<(u64, Client)>,
    /// `(node id, `app` client through that node's proxy)`.
    pub app_clients: Vec<(u64, Client)>,
    /// How long to wait after a policy change before using it: longer than the lease window.
    pub settle: Duration,
}

impl AccessProber {
    /// Runs allow/use/deny/use rounds until `stop` turns true.
    pub async fn run(self, recorder: Recorder, mut stop: watch::Receiver<bool>) {
        let p = self.process;
        if !self.create_probe_key(&recorder, &mut stop).await {
            return;
        }
        let mut turn = 0usize;
        while !*stop.borrow() {
            for op in [
                Op::AllowApp {
                    name: PROBE_KEY.into(),
                },
                Op::DenyApp {
                    name: PROBE_KEY.into(),
                },
            ] {
                let Some((node, client)) = self.clients.get(turn % self.clients.len().max(1))
                else {
                    return;
                };
                turn = turn.wrapping_add(1);
                record(&recorder, p, *node, op.clone(), || app_policy(client, &op)).await;
                if pause(&mut stop, self.settle).await {
                    return;
                }
                for (node, app) in &self.app_clients {
                    let plaintext = B64.encode(format!("probe-{turn}-{node}"));
                    let op = Op::AppEncrypt {
                        name: PROBE_KEY.into(),
                        plaintext: plaintext.clone(),
                    };
                    encrypt(&recorder, p, *node, app, op, &plaintext).await;
                }
            }
        }
    }

    /// Creates the probe key, through the nodes in turn until one succeeds; `false` if the run
    /// ended first.
    async fn create_probe_key(
        &self,
        recorder: &Recorder,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        for (node, client) in self.clients.iter().cycle() {
            if *stop.borrow() {
                return false;
            }
            if create_key(recorder, self.process, *node, client, PROBE_KEY, PROBE_KEY).await {
                return true;
            }
            if pause(stop, Duration::from_millis(500)).await {
                return false;
            }
        }
        false
    }
}

/// Sleeps for `duration`; `true` if the run ended meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
