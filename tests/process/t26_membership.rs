//! Membership changes on a running cluster: a learner that catches up by snapshot, serves and
//! is promoted while an old voter is removed under load; a removed node that refuses to serve
//! and cannot come back with its old data; changes that would lose quorum; retried changes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tessera_client::proto::{MemberStatus, MembersResponse};
use tessera_client::{Client, NewLearner};
use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, NodeFiles, TestCluster};

use crate::t60_cli::{error_document, Cli};
use crate::{create_numbered_keys, ctx, tessera};

/// The learner description of `id` as the test cluster placed it.
fn learner(cluster: &TestCluster, id: u64) -> NewLearner {
    let node = cluster.node(id);
    NewLearner {
        node_id: id,
        api_addr: node.api_addr.trim_start_matches("https://").to_owned(),
        cluster_addr: node.cluster_addr.clone(),
        region: format!("region-{}", (id - 1) % 3 + 1),
        zone: "zone-a".into(),
    }
}

fn role_of(members: &MembersResponse, id: u64) -> Option<&str> {
    members
        .members
        .iter()
        .find(|m| m.node_id == id)
        .map(|m| m.role.as_str())
}

/// Waits until `admin` lists node `id` as a member satisfying `check` (whose error says what
/// it saw instead).
async fn wait_member(
    admin: &Client,
    id: u64,
    what: &str,
    check: impl Fn(&MemberStatus) -> Result<(), String>,
) {
    wait_for(what, WAIT, || async {
        let members = admin.members().await.map_err(|e| e.to_string())?;
        let member = members.members.iter().find(|m| m.node_id == id);
        check(member.ok_or(format!("node {id} is not a member"))?)
    })
    .await;
}

/// A follower of the current leader among `ids`.
async fn follower_among(cluster: &TestCluster, ids: &[u64]) -> u64 {
    let leader = cluster.leader().await;
    *ids.iter().find(|id| **id != leader).unwrap()
}

/// Encrypts and decrypts in a loop until `stop`, counting round trips and errors.
struct Workload {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Workload {
    fn start(client: Client, key: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (stop, done, errors) = (stop.clone(), done.clone(), errors.clone());
            async move {
                let context = ctx(&[("load", "membership")]);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let plaintext = format!("message {n}");
                    let outcome = async {
                        let sealed = client.encrypt(key, plaintext.as_bytes(), &context).await?;
                        let opened = client.decrypt(&sealed.ciphertext, &context).await?;
                        assert_eq!(opened.plaintext, plaintext.as_bytes());
                        if n % 10 == 0 {
                            client.create_key(&format!("load-{n}"), "", "").await?;
                        }
                        Ok::<_, tessera_client::Error>(())
                    }
                    .await;
                    match outcome {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => errors.lock().unwrap().push(e.to_string()),
                    }
                }
            }
        });
        Self {
            stop,
            done,
            errors,
            task,
        }
    }

    /// Waits until `more` further round trips completed (the load is really running).
    async fn advance(&self, more: u64) {
        let target = self.done.load(Ordering::Relaxed) + more;
        wait_for("the workload to make progress", WAIT, || async {
            let done = self.done.load(Ordering::Relaxed);
            if done >= target {
                Ok(())
            } else {
                Err(format!("{done}/{target} round trips"))
            }
        })
        .await;
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let errors = self.errors.lock().unwrap().clone();
        (self.done.load(Ordering::Relaxed), errors)
    }
}

#[tokio::test]
async fn t26_a_learner_catches_up_by_snapshot_serves_and_replaces_a_voter_under_load() {
    let options = ClusterOptions {
        spare_nodes: 1,
        ..ClusterOptions::snapshotting(20, 5)
    };
    let mut cluster = TestCluster::start_unsealed(tessera(), options).await;
    let admin = cluster.client_for(&[1, 2, 3]);
    admin.create_key("load", "", "").await.unwrap();
    create_numbered_keys(&admin, "history", "", 30).await;
    // The leader's log no longer starts at 1: a new member can only catch up by snapshot.
    let leader = cluster.leader().await;
    cluster
        .wait_status(leader, "the leader to compact its log", |status| {
            if status.purged_index > 0 {
                Ok(())
            } else {
                Err(format!("purged {}", status.purged_index))
            }
        })
        .await;

    let workload = Workload::start(cluster.client_for(&[1, 2, 3]), "load");
    workload.advance(5).await;

    cluster.start_spare(4).await;
    let new = learner(&cluster, 4);
    let members = admin.add_learner(&new).await.unwrap();
    assert_eq!(role_of(&members, 4), Some("learner"));
    // Retrying the completed change answers success with the current members.
    let again = admin.add_learner(&new).await.unwrap();
    assert_eq!(role_of(&again, 4), Some("learner"));

    wait_for("the learner to catch up", WAIT, || async {
        let members = admin.members().await.map_err(|e| e.to_string())?;
        let m = members
            .members
            .iter()
            .find(|m| m.node_id == 4)
            .ok_or("no node 4")?;
        match m.lag {
            Some(lag) if lag <= 5 => Ok(()),
            other => Err(format!("lag {other:?}")),
        }
    })
    .await;
    let status = cluster.client(4).status().await.unwrap();
    assert_eq!(status.role, "learner");
    assert!(
        status.snapshot_index > 0,
        "the learner holds no snapshot: {status:?}"
    );
    assert_eq!(status.region, new.region);

    // The learner serves crypto from its own state, and its ciphertexts open elsewhere.
    cluster.unseal(4).await;
    cluster.wait_serving(4).await;
    let on_learner = cluster.client(4);
    let context = ctx(&[("region", "two")]);
    let sealed = on_learner
        .encrypt("load", b"sealed by a learner", &context)
        .await
        .unwrap();
    let opened = cluster
        .client(1)
        .decrypt(&sealed.ciphertext, &context)
        .await
        .unwrap();
    assert_eq!(opened.plaintext, b"sealed by a learner");
    let sealed = cluster
        .client(2)
        .encrypt("load", b"opened by a learner", &context)
        .await
        .unwrap();
    let opened = on_learner
        .decrypt(&sealed.ciphertext, &context)
        .await
        .unwrap();
    assert_eq!(opened.plaintext, b"opened by a learner");
    // Writes through the learner are forwarded to the leader.
    on_learner
        .create_key("made-on-learner", "", "")
        .await
        .unwrap();
    cluster
        .client(1)
        .describe_key("made-on-learner")
        .await
        .unwrap();

    let members = admin.promote(4, false).await.unwrap();
    assert_eq!(role_of(&members, 4), Some("voter"));
    assert_eq!(
        role_of(&admin.promote(4, false).await.unwrap(), 4),
        Some("voter")
    );
    workload.advance(5).await;

    let old = follower_among(&cluster, &[1, 2, 3]).await;
    let members = admin.remove_member(old, false).await.unwrap();
    assert_eq!(role_of(&members, old), None);
    let voters = members.members.iter().filter(|m| m.role == "voter").count();
    assert_eq!(voters, 3, "{members:?}");
    let again = admin.remove_member(old, false).await.unwrap();
    assert_eq!(again.members.len(), members.members.len());
    workload.advance(10).await;

    let (done, errors) = workload.finish().await;
    assert!(
        errors.is_empty(),
        "{} client-visible errors: {errors:?}",
        errors.len()
    );
    assert!(done > 20, "only {done} round trips");

    // Every member shows its placement.
    let listed = admin.members().await.unwrap();
    for m in &listed.members {
        assert!(m.region.starts_with("region-"), "{m:?}");
        assert!(m.match_index.is_some(), "{m:?}");
    }
}

#[tokio::test]
async fn t26_a_removed_node_refuses_to_serve_and_cannot_return_with_its_old_data() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let admin = cluster.client_for(&[1, 2, 3]);
    admin.create_key("k", "", "").await.unwrap();
    let victim = follower_among(&cluster, &[3, 2]).await;
    let old = learner(&cluster, victim);
    admin.remove_member(victim, false).await.unwrap();

    let removed = cluster.client(victim);
    let refusal = wait_for("the removed node to refuse", WAIT, || async {
        match removed.encrypt("k", b"x", &ctx(&[])).await {
            Err(e) if e.tessera_code() == Some("NODE_REMOVED") => Ok(e),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        refusal.code(),
        tessera_client::Code::Unavailable,
        "{refusal}"
    );
    let message = refusal.to_string();
    assert!(message.contains("was removed"), "{message}");
    assert!(message.contains("wipe its data directory"), "{message}");
    let status = removed.status().await.unwrap_err();
    assert_eq!(status.tessera_code(), Some("NODE_REMOVED"), "{status}");
    let write = removed
        .create_key("from-removed", "", "")
        .await
        .unwrap_err();
    assert_eq!(write.tessera_code(), Some("NODE_REMOVED"), "{write}");

    // Re-adding the same id while it still holds its old data is refused.
    let refused = admin.add_learner(&old).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tessera_client::Code::FailedPrecondition,
        "{refused}"
    );
    assert_eq!(refused.tessera_code(), Some("STALE_NODE_DATA"));
    assert!(
        refused.to_string().contains("wipe its data directory"),
        "{refused}"
    );
    let members = admin.members().await.unwrap();
    assert_eq!(role_of(&members, victim), None);

    // Wiped, it comes back as a learner under the same id.
    cluster.stop(victim);
    cluster.start_spare(victim).await;
    let fresh = learner(&cluster, victim);
    let members = admin.add_learner(&fresh).await.unwrap();
    assert_eq!(role_of(&members, victim), Some("learner"));
    cluster.unseal(victim).await;
    cluster.wait_serving(victim).await;
    cluster.client(victim).describe_key("k").await.unwrap();
}

#[tokio::test]
async fn t26_a_change_that_would_lose_quorum_is_refused_unless_forced() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let leader = cluster.leader().await;
    let followers = cluster.ids_except(leader);
    let (dead, alive) = (followers[0], followers[1]);
    cluster.kill(dead);
    let admin = cluster.client_for(&[leader, alive]);
    // Until the leader has missed the dead node for an election timeout it counts as reachable.
    wait_member(
        &admin,
        dead,
        "the leader to miss the dead node",
        |m| match m.last_contact_ms {
            Some(ms) if ms > 2_500 && m.lease == "unknown" => Ok(()),
            other => Err(format!("last contact {other:?}, lease {}", m.lease)),
        },
    )
    .await;

    // Removing the live follower would leave {leader, dead}: one of two reachable.
    let cli = Cli::for_cluster(&cluster);
    let out = cli.run(
        &["operator", "remove", &alive.to_string(), "-o", "json"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let error = error_document(&out);
    assert_eq!(error["error"]["code"], "FAILED_PRECONDITION", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("--force"), "{message}");
    let err = admin.demote(alive, false).await.unwrap_err();
    assert_eq!(err.tessera_code(), Some("QUORUM_LOSS"), "{err}");
    let members = admin.members().await.unwrap();
    assert_eq!(role_of(&members, alive), Some("voter"));

    // Removing the dead voter keeps both live voters: allowed, and safe to repeat.
    let out = cli.run(
        &["operator", "remove", &dead.to_string(), "-o", "json"],
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<u64> = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["node_id"].as_u64().unwrap())
        .collect();
    assert!(!ids.contains(&dead), "{listed}");
    assert_eq!(listed["leader_id"], leader);
    let out = cli.run(
        &["operator", "remove", &dead.to_string(), "-o", "json"],
        b"",
    );
    assert!(out.status.success(), "{out:?}");

    // The last voter can never go; an unknown node cannot be promoted.
    admin.remove_member(alive, false).await.unwrap();
    let err = admin.remove_member(leader, true).await.unwrap_err();
    assert_eq!(err.tessera_code(), Some("LAST_VOTER"), "{err}");
    let err = admin.promote(99, false).await.unwrap_err();
    assert_eq!(err.code(), tessera_client::Code::NotFound, "{err}");
    admin.create_key("still-writable", "", "").await.unwrap();
}

#[tokio::test]
async fn t26_removing_the_leader_hands_over_and_the_others_stay_writable() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let leader = cluster.leader().await;
    let others = cluster.ids_except(leader);
    let admin = cluster.client_for(&[leader, others[0], others[1]]);
    admin.create_key("before", "", "").await.unwrap();

    let members = admin.remove_member(leader, false).await.unwrap();
    assert_eq!(role_of(&members, leader), None, "{members:?}");
    let after = cluster.client_for(&others);
    let members = wait_for("a new leader among the others", WAIT, || async {
        let members = after.members().await.map_err(|e| e.to_string())?;
        if others.contains(&members.leader_id) {
            Ok(members)
        } else {
            Err(format!("answered by {}", members.leader_id))
        }
    })
    .await;
    assert_eq!(members.members.len(), 2, "{members:?}");
    after.create_key("after", "", "").await.unwrap();
    after.describe_key("before").await.unwrap();
    let removed = cluster.client(leader);
    wait_for("the old leader to refuse", WAIT, || async {
        match removed.describe_key("after").await {
            Err(e) if e.tessera_code() == Some("NODE_REMOVED") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// Runs `tessera operator recover` on node `id`'s configuration; returns its JSON report.
fn recover(cluster: &TestCluster, id: u64, force: bool) -> std::process::Output {
    let mut command = std::process::Command::new(tessera());
    command
        .args(["operator", "recover", "-o", "json", "--config"])
        .arg(cluster.node(id).config());
    if force {
        command.arg("--force");
    }
    command.output().unwrap()
}

fn report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "recover failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn t26_quorum_loss_recovery_rebuilds_a_writable_cluster_from_one_survivor() {
    let options = ClusterOptions {
        spare_nodes: 2,
        ..ClusterOptions::default()
    };
    let mut cluster = TestCluster::start_unsealed(tessera(), options).await;
    let admin = cluster.client_for(&[1, 2, 3]);
    let context = ctx(&[("case", "quorum-loss")]);
    let mut sealed = Vec::new();
    for i in 0..5 {
        admin
            .create_key(&format!("before-{i}"), "", "")
            .await
            .unwrap();
        let ciphertext = admin
            .encrypt(
                &format!("before-{i}"),
                format!("secret {i}").as_bytes(),
                &context,
            )
            .await
            .unwrap()
            .ciphertext;
        sealed.push(ciphertext);
    }
    let last_write = admin.status().await.unwrap().applied_index;
    let survivor = follower_among(&cluster, &[1, 2, 3]).await;
    let survivor_client = cluster.client(survivor);
    wait_for("the survivor to apply every write", WAIT, || async {
        let applied = survivor_client
            .status()
            .await
            .map_err(|e| e.to_string())?
            .applied_index;
        (applied >= last_write)
            .then_some(())
            .ok_or(format!("applied {applied} < {last_write}"))
    })
    .await;

    // The majority is gone for good.
    for id in [1, 2, 3] {
        if id != survivor {
            cluster.kill(id);
        }
    }
    // A running node's data cannot be recovered underneath it.
    let running = recover(&cluster, survivor, true);
    assert_eq!(running.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&running.stderr).contains("is the node stopped?"),
        "{}",
        String::from_utf8_lossy(&running.stderr)
    );
    assert!(cluster.stop(survivor));

    // Without --force, a plan and nothing changed; the same plan again proves it.
    let plan = report(&recover(&cluster, survivor, false));
    assert_eq!(plan["recovered"], false);
    assert_eq!(plan["voters_before"], serde_json::json!([1, 2, 3]));
    assert!(plan["applied_index"].as_u64().unwrap() >= last_write);
    assert_eq!(report(&recover(&cluster, survivor, false)), plan);

    let done = report(&recover(&cluster, survivor, true));
    assert_eq!(done["recovered"], true);
    assert_eq!(done["voters_after"], serde_json::json!([survivor]));
    assert!(done["recovered_index"].as_u64().unwrap() >= last_write);

    cluster.restart(survivor).await;
    cluster.unseal(survivor).await;
    cluster.wait_serving(survivor).await;
    let alone = cluster.client(survivor);
    let members = alone.members().await.unwrap();
    assert_eq!(members.members.len(), 1, "{members:?}");
    assert_eq!(role_of(&members, survivor), Some("voter"));
    // Everything the survivor had applied is there, and it accepts writes again.
    for (i, ciphertext) in sealed.iter().enumerate() {
        let opened = alone.decrypt(ciphertext, &context).await.unwrap();
        assert_eq!(opened.plaintext, format!("secret {i}").as_bytes());
    }
    let written = past_unavailability_create(&alone, "after-recovery").await;
    assert_eq!(written, "after-recovery");

    // Two fresh nodes join, one after the other, and the cluster has three voters again.
    for new in [4, 5] {
        cluster.start_spare(new).await;
        let members = alone.add_learner(&learner(&cluster, new)).await.unwrap();
        assert_eq!(role_of(&members, new), Some("learner"));
        wait_member(
            &alone,
            new,
            &format!("node {new} to catch up"),
            |m| match m.lag {
                Some(lag) if lag <= 2 => Ok(()),
                other => Err(format!("lag {other:?}")),
            },
        )
        .await;
        cluster.unseal(new).await;
        cluster.wait_serving(new).await;
        let members = alone.promote(new, false).await.unwrap();
        assert_eq!(role_of(&members, new), Some("voter"));
    }
    let members = alone.members().await.unwrap();
    let voters: Vec<u64> = members
        .members
        .iter()
        .filter(|m| m.role == "voter")
        .map(|m| m.node_id)
        .collect();
    assert_eq!(voters.len(), 3, "{members:?}");
    let new_cluster = cluster.client_for(&[survivor, 4, 5]);
    new_cluster
        .create_key("after-rejoin", "", "")
        .await
        .unwrap();
    for id in [4, 5] {
        let node = cluster.client(id);
        node.describe_key("after-recovery").await.unwrap();
        let opened = node.decrypt(&sealed[0], &context).await.unwrap();
        assert_eq!(opened.plaintext, b"secret 0");
    }
}

/// Creates key `name` through `client`, retrying while the recovered node elects itself.
async fn past_unavailability_create(client: &Client, name: &str) -> String {
    wait_for(&format!("key {name} to be created"), WAIT, || async {
        client
            .create_key(name, "", "")
            .await
            .map(|k| k.name)
            .map_err(|e| e.to_string())
    })
    .await
}
