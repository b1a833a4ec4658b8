//! Forwarding, read index, leases and join on an in-process cluster (`tessera_raft::testing`):
//! real nodes on real sled storage, the cluster service's handlers called through a router that
//! partitions nodes, fails and delays their calls. Each test takes seconds; every wait is
//! bounded and no assertion depends on how long something took.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::ServerState;
use tessera_crypto::spec::KeySpec;
use tessera_raft::testing::{poll, TestCluster, WAIT};
use tessera_raft::{LeaseState, NodeId, ProposeError, RaftNode, RaftSettings, ReadIndexError};
use tessera_state::{
    CallerId, Command, KeyId, KeyName, KeyOrigin, NewKey, Request, RequestId, Response,
};

mod support;

use support::init_seal;

/// A write that creates key number `n` (an imported key, which needs no key material), and
/// that key's id.
fn create_key(n: u32) -> (KeyId, Request) {
    let mut bytes = [0u8; 16];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    let key_id = KeyId::from_random_bytes(bytes);
    let request = Request {
        request_id: RequestId::parse(&format!("create-{n}")).unwrap(),
        caller: CallerId::of("test"),
        fingerprint: [0; 32],
        bindings: Vec::new(),
        command: Command::CreateKey(NewKey {
            key_id: key_id.clone(),
            name: KeyName::parse(&format!("key-{n}")).unwrap(),
            spec: KeySpec::Aes256Gcm,
            origin: KeyOrigin::External,
            description: String::new(),
            sealed_material: None,
            rotation_period_ms: None,
            exportable: false,
            tags: BTreeMap::new(),
            at_ms: 1,
            created_by: "test".into(),
        }),
    };
    (key_id, request)
}

/// A three-node cluster whose state is initialised (a seal configuration stored, as `init`
/// does), so that keys can be created.
async fn initialised_cluster() -> TestCluster {
    initialised_cluster_with(tessera_raft::testing::settings()).await
}

/// [`initialised_cluster`] with other Raft settings.
async fn initialised_cluster_with(settings: RaftSettings) -> TestCluster {
    let cluster = TestCluster::with_settings(3, settings).await.unwrap();
    let leader = cluster.leader().await.unwrap();
    let init = init_seal("test", 1, 1);
    let applied = cluster.node(leader).unwrap().propose(init).await.unwrap();
    assert!(
        matches!(applied.response, Response::Initialized { .. }),
        "{:?}",
        applied.response
    );
    cluster
}

/// [`initialised_cluster`], its leader and a follower.
async fn initialised_with_follower() -> (TestCluster, NodeId, NodeId) {
    let cluster = initialised_cluster().await;
    let leader = cluster.leader().await.unwrap();
    (cluster, leader, follower_of(leader, None))
}

fn has_key(node: &RaftNode, key_id: &KeyId) -> bool {
    node.shared().read().state.key(key_id).is_some()
}

/// A voter of a three-node cluster other than `leader` and, if given, `not`.
fn follower_of(leader: NodeId, not: Option<NodeId>) -> NodeId {
    (1..=3)
        .map(NodeId::new)
        .find(|id| *id != leader && Some(*id) != not)
        .unwrap()
}

async fn wait_lease(cluster: &TestCluster, id: NodeId, what: &str, want: LeaseState) {
    let node = cluster.node(id).unwrap();
    poll(what, WAIT, || {
        let state = node.lease_state();
        if state == want {
            Ok(())
        } else {
            Err(format!("{state:?}"))
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_follower_is_forwarded_and_then_visible_on_the_follower() {
    let (cluster, leader, follower) = initialised_with_follower().await;
    // A slow link: the leader's answer arrives before the follower has the entry.
    cluster.router().delay(follower, Duration::from_millis(30));
    let (key_id, write) = create_key(1);

    let applied = cluster
        .node(follower)
        .unwrap()
        .propose(write)
        .await
        .unwrap();

    assert!(
        matches!(&applied.response, Response::Key(meta) if meta.key_id == key_id),
        "{:?}",
        applied.response
    );
    let on_leader = cluster.node(leader).unwrap();
    assert!(on_leader.shared().applied_index() >= applied.index);
    assert!(has_key(on_leader, &key_id), "the leader did not apply it");
    assert!(
        has_key(cluster.node(follower).unwrap(), &key_id),
        "the follower returned before applying its own write"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_cut_off_from_the_leader_fails_its_write_as_not_applied_instead_of_hanging() {
    let (cluster, leader, follower) = initialised_with_follower().await;
    cluster.router().isolate(follower);
    let (key_id, write) = create_key(2);

    let outcome = tokio::time::timeout(WAIT, cluster.node(follower).unwrap().propose(write))
        .await
        .expect("propose gives up after its write timeout");

    // Nothing reached the leader, so the write is known not to be applied.
    assert!(
        matches!(outcome, Err(ProposeError::NoLeader { .. })),
        "{outcome:?}"
    );
    assert!(!has_key(cluster.node(leader).unwrap(), &key_id));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_barrier_on_a_lagging_follower_returns_once_it_applied_what_the_leader_committed() {
    let (cluster, leader, follower) = initialised_with_follower().await;
    // The leader commits three writes with the third node while the follower is cut off.
    cluster.router().isolate(follower);
    let mut last_key = None;
    for n in 10..13 {
        let (key_id, write) = create_key(n);
        cluster.node(leader).unwrap().propose(write).await.unwrap();
        last_key = Some(key_id);
    }
    let last_key = last_key.unwrap();
    let committed = cluster.node(leader).unwrap().shared().applied_index();
    let lagging = cluster.node(follower).unwrap();
    assert!(!has_key(lagging, &last_key));
    cluster.router().heal(follower);

    lagging.read_barrier().await.unwrap();

    assert!(
        lagging.shared().applied_index() >= committed,
        "the barrier returned at {} before the leader's commit {committed}",
        lagging.shared().applied_index()
    );
    assert!(has_key(lagging, &last_key));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_barrier_on_a_cut_off_follower_fails_instead_of_hanging() {
    let (cluster, _, follower) = initialised_with_follower().await;
    cluster.router().isolate(follower);

    let outcome = tokio::time::timeout(WAIT, cluster.node(follower).unwrap().read_barrier())
        .await
        .expect("the barrier gives up after its timeout");

    assert!(
        matches!(outcome, Err(ReadIndexError::NoLeader { .. })),
        "{outcome:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_s_lease_lapses_and_is_renewed_once_it_is_reconnected() {
    let (cluster, leader, follower) = initialised_with_follower().await;
    wait_lease(
        &cluster,
        follower,
        "the follower's lease",
        LeaseState::Valid,
    )
    .await;

    cluster.router().isolate(follower);
    wait_lease(
        &cluster,
        follower,
        "the cut-off follower's lease to lapse",
        LeaseState::Expired,
    )
    .await;
    // The others go on without it.
    let (key_id, write) = create_key(20);
    cluster.node(leader).unwrap().propose(write).await.unwrap();
    assert!(!has_key(cluster.node(follower).unwrap(), &key_id));

    cluster.router().heal(follower);
    wait_lease(
        &cluster,
        follower,
        "the reconnected follower's lease",
        LeaseState::Valid,
    )
    .await;
    // A valid lease means it applied what the leader had committed when it renewed.
    assert!(has_key(cluster.node(follower).unwrap(), &key_id));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_majority_loses_its_lease_before_another_is_elected() {
    let cluster = TestCluster::start(3).await.unwrap();
    let old = cluster.leader().await.unwrap();
    wait_lease(&cluster, old, "the leader's lease", LeaseState::Valid).await;
    let mut others: Vec<_> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != old)
        .map(|id| cluster.node(id).unwrap().watch_metrics())
        .collect();

    cluster.router().isolate(old);
    // Whichever of the others wins first: look at the old leader's lease the moment it does.
    let elections = others.iter_mut().map(|rx| {
        Box::pin(async move {
            rx.wait_for(|m| m.state == ServerState::Leader)
                .await
                .map(|m| m.id)
        })
    });
    let (elected, _, _) = tokio::time::timeout(WAIT, futures::future::select_all(elections))
        .await
        .expect("the majority elects a leader");
    let old_lease = cluster.node(old).unwrap().lease_state();

    let new = elected.unwrap();
    assert_ne!(new, old);
    assert_ne!(
        old_lease,
        LeaseState::Valid,
        "node {old} could still serve when node {new} was elected"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_joins_through_a_follower_and_catches_up() {
    let mut cluster = initialised_cluster().await;
    let leader = cluster.leader().await.unwrap();
    let seed = follower_of(leader, None);
    let (before, write) = create_key(30);
    cluster.node(leader).unwrap().propose(write).await.unwrap();
    let committed = cluster.node(leader).unwrap().shared().applied_index();

    let fresh = NodeId::new(4);
    cluster.start_node(fresh).await.unwrap();
    cluster.join(fresh, seed).await.unwrap();

    cluster
        .wait_metrics(fresh, "to be a voter and apply the leader's log", |m| {
            m.membership_config
                .membership()
                .voter_ids()
                .any(|id| id == fresh)
                && m.last_applied.is_some_and(|l| l.index >= committed)
        })
        .await
        .unwrap();
    let joined = cluster.node(fresh).unwrap();
    assert!(has_key(joined, &before));
    // It takes part: its writes are forwarded and committed.
    let (after, write) = create_key(31);
    joined.propose(write).await.unwrap();
    assert!(has_key(cluster.node(leader).unwrap(), &after));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_through_the_majority_while_a_follower_s_calls_fail_at_random() {
    let cluster = initialised_cluster().await;
    let leader = cluster.leader().await.unwrap();
    let flaky = follower_of(leader, None);
    let steady = follower_of(leader, Some(flaky));
    cluster.router().fail(flaky, 0.3);

    let mut keys = Vec::new();
    for n in 40..60 {
        // Through the steady nodes, and some through the flaky one (forwarding retries).
        let proposer = if n % 4 == 0 { flaky } else { steady };
        let (key_id, write) = create_key(n);
        cluster
            .node(proposer)
            .unwrap()
            .propose(write)
            .await
            .unwrap_or_else(|e| panic!("write {n} through node {proposer}: {e}"));
        keys.push(key_id);
    }
    assert!(
        cluster.router().injected_failures() > 0,
        "no call of node {flaky} failed"
    );

    cluster.router().fail(flaky, 0.0);
    for id in cluster.ids() {
        let node = cluster.node(id).unwrap();
        poll(&format!("node {id} to apply every write"), WAIT, || {
            let missing = keys.iter().filter(|k| !has_key(node, k)).count();
            if missing == 0 {
                Ok(())
            } else {
                Err(format!("{missing} missing"))
            }
        })
        .await
        .unwrap();
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_count_writes_so_batched_entries_do_not_delay_them() {
    // 300 concurrent writes share a handful of group-commit entries: far fewer than the 100
    // entries openraft's own policy waits for, but three times the 100 writes the setting names.
    let settings = RaftSettings {
        snapshot_after_logs: 100,
        ..tessera_raft::testing::settings()
    };
    let cluster = initialised_cluster_with(settings).await;
    let leader = cluster.leader().await.unwrap();
    let node = cluster.node(leader).unwrap();
    let writes = (1000..1300).map(|n| node.propose(create_key(n).1));
    let mut last = 0;
    for outcome in futures::future::join_all(writes).await {
        let applied = outcome.unwrap();
        assert!(
            matches!(applied.response, Response::Key(_)),
            "{:?}",
            applied.response
        );
        last = last.max(applied.index);
    }
    assert!(
        last < 100,
        "the writes took {last} entries: not batched, so the test shows nothing"
    );

    for id in cluster.ids() {
        let metrics = cluster
            .wait_metrics(id, "a snapshot after the batched writes", |m| {
                m.snapshot.is_some_and(|s| s.index > 1)
            })
            .await
            .unwrap();
        assert!(metrics.snapshot.is_some());
        assert!(cluster.node(id).unwrap().shared().writes_since_snapshot() < 100);
    }
    cluster.shutdown().await;
}
