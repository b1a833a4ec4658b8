//! A write sent through a node that lags behind must act on the key its reference names when
//! the write is applied, never on the key the lagging node believed it named.

use std::time::Duration;

use tessera_chaos::cluster::{raft_timing, ChaosCluster, ClusterSpec};
use tessera_chaos::proxy::LinkFault;
use tessera_chaos::topology::Topology;
use tessera_testkit::{exclusive, wait_for};

use crate::tessera;

fn version_state(key: &tessera_proto::v1::Key, version: u32) -> String {
    key.versions
        .iter()
        .find(|v| v.version == version)
        .map(|v| v.state.clone())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t28_a_destroy_through_a_lagging_node_never_hits_the_key_an_alias_used_to_name() {
    let _serial = exclusive();
    let root = tempfile::tempdir().unwrap();
    let spec = ClusterSpec {
        topology: Topology::spread(3),
        wan_delay: Duration::ZERO,
        binary: tessera().to_path_buf(),
        raft: raft_timing(false, None),
        faults: None,
        data_quota_mib: None,
    };
    let cluster = ChaosCluster::start(spec, root.path(), 24).await.unwrap();
    let admin = cluster.admin(1).unwrap();
    let leader = wait_for("a leader", Duration::from_secs(60), || async {
        admin
            .status()
            .await
            .map_err(|e| e.to_string())?
            .leader_id
            .ok_or_else(|| "no leader".to_owned())
    })
    .await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    let leader_client = cluster.admin(leader).unwrap();

    // Two keys with two versions each; alias/prod names the first.
    let first = leader_client.create_key("first", "", "").await.unwrap();
    let second = leader_client.create_key("second", "", "").await.unwrap();
    for key in ["first", "second"] {
        leader_client.rotate_key(key).await.unwrap();
    }
    leader_client
        .create_alias("alias/prod", "first")
        .await
        .unwrap();

    // The lagging node has applied all of that, then stops receiving the leader's log.
    let lagging_client = cluster.client(lagging, Duration::from_secs(20)).unwrap();
    let target = leader_client.status().await.unwrap().applied_index;
    wait_for(
        "the lagging node to catch up",
        Duration::from_secs(60),
        || async {
            let applied = lagging_client
                .status()
                .await
                .map_err(|e| e.to_string())?
                .applied_index;
            if applied >= target {
                Ok(())
            } else {
                Err(format!("applied {applied} of {target}"))
            }
        },
    )
    .await;
    cluster.set_link(leader, lagging, LinkFault::Down);

    // The alias moves through the leader and is acknowledged.
    leader_client
        .update_alias("alias/prod", "second")
        .await
        .unwrap();
    let moved_at = leader_client.status().await.unwrap().applied_index;
    let lagging_applied = lagging_client.status().await.unwrap().applied_index;
    assert!(
        lagging_applied < moved_at,
        "node {lagging} must still lag ({lagging_applied} vs {moved_at})"
    );

    // Destroying version 1 of alias/prod through the lagging node: it forwards the write
    // (its link to the leader works), but its own state still says alias/prod → first.
    let during = lagging_client.destroy_key_version("alias/prod", 1).await;
    let check = cluster.admin(leader).unwrap();
    let first_now = check.describe_key(&first.key_id).await.unwrap();
    assert_eq!(
        version_state(&first_now, 1),
        "ENABLED",
        "version 1 of the key alias/prod used to name was destroyed (result through the \
         lagging node: {during:?})"
    );

    // Once the link heals, the write goes through and hits the key alias/prod names now.
    cluster.heal_links();
    let destroyed = wait_for(
        "the destroy through the healed node",
        Duration::from_secs(60),
        || lagging_client.destroy_key_version("alias/prod", 1),
    )
    .await;
    assert_eq!(destroyed.key_id, second.key_id);
    assert_eq!(version_state(&destroyed, 1), "DESTROYED");
    let first_after = check.describe_key(&first.key_id).await.unwrap();
    assert_eq!(version_state(&first_after, 1), "ENABLED");
}
