//! A node whose wall clock runs far ahead cannot destroy keys before their waiting window has
//! passed (fault-injection builds: `[faults] clock_skew_ms`).

use std::time::{Duration, Instant};

use tessera_server::config::FaultSection;
use tessera_testkit::{wait_for, ClusterOptions, NodeFiles, TestCluster};

use crate::tessera;

const YEAR_MS: i64 = 365 * 24 * 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t29_a_leader_whose_clock_jumps_a_year_ahead_destroys_nothing_early() {
    let mut cluster = TestCluster::start_unsealed(
        tessera(),
        ClusterOptions {
            faults: vec![(
                1,
                FaultSection {
                    clock_skew_ms: YEAR_MS,
                    ..FaultSection::default()
                },
            )],
            ..ClusterOptions::default()
        },
    )
    .await;
    // Node 1 must lead, so that its deletion job is the one that runs: restart whoever else
    // leads until node 1 wins an election.
    for _ in 0..10 {
        let leader = cluster.leader().await;
        if leader == 1 {
            break;
        }
        cluster.stop(leader);
        let _ = cluster.leader().await;
        cluster.restart(leader).await;
        cluster.unseal(leader).await;
    }
    assert_eq!(cluster.leader().await, 1, "node 1 did not become leader");

    // Scheduled through an honest node; node 1 leads and runs the deletion job.
    let honest = cluster.client(2);
    honest.create_key("doomed", "", "").await.unwrap();
    let window = Duration::from_secs(3);
    let scheduled_at = Instant::now();
    let pending = honest
        .schedule_key_deletion("doomed", Some(window))
        .await
        .unwrap();
    let wall_now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        pending.deletion_date_ms < wall_now_ms + 60_000,
        "the deletion date follows the honest clocks: {} vs now {wall_now_ms}",
        pending.deletion_date_ms
    );

    let gone_after = wait_for(
        "the key to be destroyed",
        Duration::from_secs(90),
        || async {
            match honest.describe_key_linearizable("doomed").await {
                Ok(key) => Err(format!("still {}", key.state)),
                Err(e) if e.to_string().contains("not found") => Ok(scheduled_at.elapsed()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    assert!(
        gone_after >= window,
        "destroyed {gone_after:?} after scheduling with a {window:?} window"
    );
    let log = std::fs::read_to_string(cluster.node(1).log()).unwrap();
    assert!(
        log.contains("wall clock is skewed"),
        "node 1 ran with the skew"
    );
}
