//! Leadership: a follower that forwards writes while the leader is gone backs off instead of
//! spinning.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, TestCluster};

use crate::tessera;

/// The log line a follower writes when forwarding a write to the leader fails.
const FORWARD_FAILED: &str = "forwarding a write failed; retrying";

/// Forward failures recorded in `log` after byte `from`: every matching line counts the
/// failures it stands for (`failures=N`, the rate-limited form), or one.
fn forward_failures(log: &std::path::Path, from: usize) -> u64 {
    let text = std::fs::read(log).unwrap();
    let text = String::from_utf8_lossy(text.get(from..).unwrap_or_default());
    text.lines()
        .filter(|line| line.contains(FORWARD_FAILED))
        .map(|line| {
            line.split_once("failures=")
                .and_then(|(_, rest)| {
                    rest.split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|n| n.parse().ok())
                })
                .unwrap_or(1)
        })
        .sum()
}

#[tokio::test]
async fn t24_a_follower_backs_off_forwarding_while_the_leader_is_gone() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower().await;
    let log = cluster.node(follower).log();

    // Writers keep creating keys through the follower, which forwards them to the leader.
    let stop = Arc::new(AtomicBool::new(false));
    let applied = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = cluster.client(follower);
            let stop = Arc::clone(&stop);
            let applied = Arc::clone(&applied);
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    if client
                        .create_key(&format!("forwarded-{w}-{n}"), "", "")
                        .await
                        .is_ok()
                    {
                        applied.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    wait_for("writes through the follower", WAIT, || async {
        (applied.load(Ordering::SeqCst) >= 4)
            .then_some(())
            .ok_or("no write applied yet")
    })
    .await;

    let from = usize::try_from(std::fs::metadata(&log).unwrap().len()).unwrap();
    cluster.kill(leader);
    let killed = Instant::now();
    let before = applied.load(Ordering::SeqCst);
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    // Writes through the follower succeed again once the new leader is known.
    wait_for("a forwarded write after the election", WAIT, || async {
        (applied.load(Ordering::SeqCst) > before + 4)
            .then_some(())
            .ok_or("no write applied since the leader died")
    })
    .await;
    let outage = killed.elapsed();
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }

    let failures = forward_failures(&log, from);
    // Spinning made about 6,600 attempts per second; backing off makes a few per writer.
    let bound = 200.0 * outage.as_secs_f64().max(1.0);
    assert!(
        (failures as f64) < bound,
        "{failures} failed forwards in {outage:?} of outage (bound {bound:.0})"
    );
}
