//! Leadership: a follower that forwards writes while the leader is gone backs off instead of
//! spinning, a sealed leader hands leadership to an unsealed voter, and a sealed node does not
//! win an election an unsealed voter can win.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, NodeFiles, TestCluster};

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

/// The leader as `id` reports it, with whether that leader says it is sealed.
async fn leader_seen_by(cluster: &TestCluster, id: u64) -> Result<(u64, bool), String> {
    let status = cluster
        .client(id)
        .status()
        .await
        .map_err(|e| e.to_string())?;
    let leader = status.leader_id.ok_or("no leader known")?;
    let sealed = cluster
        .client(leader)
        .status()
        .await
        .map_err(|e| e.to_string())?
        .sealed;
    Ok((leader, sealed))
}

#[tokio::test]
async fn t25_sealing_the_leader_hands_leadership_to_an_unsealed_voter() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let old_leader = cluster.leader().await;
    let others = cluster.ids_except(old_leader);
    let writer = cluster.client_for(&others);
    writer.create_key("rotating", "", "").await.unwrap();

    assert!(cluster.client(old_leader).seal().await.unwrap().sealed);
    let new_leader = wait_for("an unsealed leader", WAIT, || async {
        match leader_seen_by(&cluster, others[0]).await? {
            (leader, false) if leader != old_leader => Ok(leader),
            (leader, sealed) => Err(format!("leader {leader} (sealed: {sealed})")),
        }
    })
    .await;
    assert!(others.contains(&new_leader));
    let status = cluster.client(old_leader).status().await.unwrap();
    assert!(status.sealed);
    assert_eq!(status.role, "follower");

    // Writes keep working, and the unsealed leader runs the rotation job (a sealed leader
    // cannot seal the new version's material).
    wait_for("a write after the handover", WAIT, || {
        writer.create_key("after-handover", "", "")
    })
    .await;
    wait_for("a rotation period", WAIT, || {
        writer.set_rotation_period("rotating", Some(Duration::from_secs(1)))
    })
    .await;
    wait_for("the leader's job to rotate the key", WAIT, || async {
        let key = writer
            .describe_key("rotating")
            .await
            .map_err(|e| e.to_string())?;
        (key.primary_version >= 2)
            .then_some(())
            .ok_or(format!("primary version {}", key.primary_version))
    })
    .await;
    // The sealed node does not take leadership back.
    assert_eq!(
        leader_seen_by(&cluster, old_leader).await.unwrap(),
        (new_leader, false)
    );
}

#[tokio::test]
async fn t26_a_sealed_node_does_not_win_an_election_an_unsealed_voter_can_win() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::with_nodes(5)).await;
    let old_leader = cluster.leader().await;
    let followers = cluster.ids_except(old_leader);
    // Every follower but one is sealed: that one is the only node that may win.
    let (unsealed, sealed) = followers.split_last().unwrap();
    for id in sealed {
        assert!(cluster.client(*id).seal().await.unwrap().sealed);
    }
    // The unsealed node can only win with a log as long as the sealed voters' (they refuse to
    // vote for a shorter one, and then win themselves once they campaign): kill the leader
    // only once it has applied what the leader has.
    let (leader_client, candidate) = (cluster.client(old_leader), cluster.client(*unsealed));
    wait_for("the unsealed follower to catch up", WAIT, || async {
        let leader = leader_client.status().await.map_err(|e| e.to_string())?;
        let follower = candidate.status().await.map_err(|e| e.to_string())?;
        (follower.applied_index >= leader.applied_index)
            .then_some(())
            .ok_or(format!(
                "applied {} of {}",
                follower.applied_index, leader.applied_index
            ))
    })
    .await;
    cluster.kill(old_leader);
    let new_leader = cluster.leader().await;
    assert_eq!(
        new_leader, *unsealed,
        "sealed nodes {sealed:?} must not win"
    );
    let writer = cluster.client(sealed[0]);
    let unsealed_writer = cluster.client(*unsealed);
    wait_for("a write through the new leader", WAIT, || {
        unsealed_writer.create_key("after-election", "", "")
    })
    .await;
    // A sealed node refuses writes itself, naming the seal.
    let err = writer.create_key("refused", "", "").await.unwrap_err();
    assert_eq!(err.tessera_code(), Some("SEALED"), "{err}");
}

#[tokio::test]
async fn t27_a_cluster_whose_nodes_are_all_sealed_still_elects_a_leader() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let old_leader = cluster.leader().await;
    for id in cluster.ids() {
        assert!(cluster.client(id).seal().await.unwrap().sealed);
    }
    cluster.kill(old_leader);
    // No unsealed voter is left, so a sealed one campaigns after a delay.
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    // Unsealing a node hands leadership to it if the leader is another, sealed one.
    let survivor = cluster
        .ids()
        .into_iter()
        .find(|id| *id != old_leader && *id != new_leader)
        .unwrap();
    cluster.unseal(survivor).await;
    wait_for("the unsealed node to lead", WAIT, || async {
        match leader_seen_by(&cluster, new_leader).await? {
            (leader, false) if leader == survivor => Ok(()),
            (leader, sealed) => Err(format!("leader {leader} (sealed: {sealed})")),
        }
    })
    .await;
}
