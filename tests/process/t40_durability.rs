//! A write acknowledged to the client survives SIGKILL of any node, and of all nodes at once,
//! followed by restart: logs are flushed before they are acknowledged.

use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, TestCluster};

use crate::tessera;

async fn restart_and_unseal(cluster: &mut TestCluster, ids: &[u64]) {
    for id in ids {
        cluster.restart(*id).await;
    }
    for id in ids {
        cluster.unseal(*id).await;
    }
    for id in ids {
        cluster.wait_serving(*id).await;
    }
}

async fn assert_keys_everywhere(cluster: &TestCluster, names: &[String]) {
    for id in cluster.ids() {
        let client = cluster.client(id);
        for name in names {
            let found = wait_for(&format!("{name} on node {id}"), WAIT, || async {
                client.describe_key(name).await.map_err(|e| e.to_string())
            })
            .await;
            assert_eq!(&found.name, name);
        }
    }
}

#[tokio::test]
async fn t40_acked_writes_survive_sigkill_of_each_node() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let mut acked = Vec::new();
    for victim in cluster.ids() {
        let writer = cluster.ids().into_iter().find(|id| *id != victim).unwrap();
        let name = format!("acked-before-kill-{victim}");
        // Written through the victim itself when it can serve, else through another node.
        let through = if victim % 2 == 0 { victim } else { writer };
        let client = cluster.client(through);
        wait_for("an acknowledged create", WAIT, || async {
            client
                .create_key(&name, "", "")
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        acked.push(name);
        cluster.kill(victim);
        restart_and_unseal(&mut cluster, &[victim]).await;
        assert_keys_everywhere(&cluster, &acked).await;
    }
}

#[tokio::test]
async fn t41_acked_writes_survive_sigkill_of_all_nodes_at_once() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let mut acked = Vec::new();
    for round in 0..2 {
        let client = cluster.client_for(&[3, 2, 1]);
        for i in 0..3 {
            let name = format!("round-{round}-key-{i}");
            client.create_key(&name, "", "").await.unwrap();
            acked.push(name);
        }
        let rotated = client.rotate_key(&acked[0]).await.unwrap();
        for id in cluster.ids() {
            cluster.kill(id);
        }
        let ids = cluster.ids();
        restart_and_unseal(&mut cluster, &ids).await;
        assert_keys_everywhere(&cluster, &acked).await;
        let after = cluster.client(1).describe_key(&acked[0]).await.unwrap();
        assert!(after.primary_version >= rotated.primary_version);
    }
}
