//! Carries out the fault schedule against the cluster and records every fault's start and end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tessera_client::Client;
use tokio::sync::Mutex;

use crate::cluster::{wait_serving, ChaosCluster};
use crate::history::{Phase, Recorder, StatusSample};
use crate::proxy::LinkFault;
use crate::schedule::{cut_between, Action, Planned, RegionMode, RegionTarget, Target};
use crate::topology::Topology;

/// The node that reports itself leader (the first to answer so), if any.
pub async fn current_leader(admins: &[(u64, Client)]) -> Option<u64> {
    for (_, admin) in admins {
        let status = tokio::time::timeout(Duration::from_secs(1), admin.status()).await;
        if let Ok(Ok(status)) = status {
            if status.role == "leader" {
                return Some(status.node_id);
            }
        }
    }
    None
}

async fn resolve(target: Target, admins: &[(u64, Client)]) -> u64 {
    match target {
        Target::Node(id) => id,
        Target::Leader => current_leader(admins).await.unwrap_or(1),
    }
}

/// The region to take out and its nodes: the leader's region is resolved when the fault starts
/// (node 1's if no leader is known).
async fn resolve_region(
    target: RegionTarget,
    topology: &Topology,
    admins: &[(u64, Client)],
) -> (u64, Vec<u64>) {
    let region = match target {
        RegionTarget::Region(region) => region,
        RegionTarget::Leader => topology.region_of(resolve(Target::Leader, admins).await),
    };
    (region, topology.members(region))
}

fn set_links(cluster: &ChaosCluster, links: &[(u64, u64)], fault: LinkFault) {
    for &(from, to) in links {
        cluster.set_link(from, to, fault);
    }
}

/// Runs the schedule to its end. Every fault is undone before the next starts.
///
/// # Errors
/// If a killed or restarted node cannot be brought back.
pub async fn run(
    cluster: Arc<Mutex<ChaosCluster>>,
    schedule: Vec<Planned>,
    recorder: Recorder,
    admins: Vec<(u64, Client)>,
) -> Result<()> {
    let started = Instant::now();
    for fault in schedule {
        tokio::time::sleep(fault.at.saturating_sub(started.elapsed())).await;
        let kind = fault.action.kind();
        match &fault.action {
            Action::Kill { target } => {
                let id = resolve(*target, &admins).await;
                cluster.lock().await.kill(id)?;
                recorder.fault(kind, Phase::Start, format!("kill node {id}"), vec![id]);
                tokio::time::sleep(fault.duration).await;
                let mut c = cluster.lock().await;
                c.restart(id)?;
                c.unseal(id).await?;
                recorder.fault(
                    kind,
                    Phase::End,
                    format!("node {id} restarted and unsealed"),
                    vec![id],
                );
            }
            Action::Pause { target } => {
                let id = resolve(*target, &admins).await;
                cluster.lock().await.pause(id, true)?;
                recorder.fault(kind, Phase::Start, format!("pause node {id}"), vec![id]);
                tokio::time::sleep(fault.duration).await;
                cluster.lock().await.pause(id, false)?;
                recorder.fault(kind, Phase::End, format!("resume node {id}"), vec![id]);
            }
            Action::Partition { cuts, .. } => {
                degrade_links(&cluster, &recorder, &fault, cuts, LinkFault::Down).await;
            }
            Action::Delay {
                links,
                fixed_ms,
                jitter_ms,
            } => {
                let delay = LinkFault::Delay {
                    fixed: Duration::from_millis(*fixed_ms),
                    jitter: Duration::from_millis(*jitter_ms),
                };
                degrade_links(&cluster, &recorder, &fault, links, delay).await;
            }
            Action::Drop { links, probability } => {
                let drop = LinkFault::Drop {
                    probability: *probability,
                };
                degrade_links(&cluster, &recorder, &fault, links, drop).await;
            }
            Action::DiskFull { target } => {
                let id = resolve(*target, &admins).await;
                let filled = cluster.lock().await.fill_disk(id).await?;
                recorder.fault(
                    kind,
                    Phase::Start,
                    format!("fill node {id}'s disk ({} MiB of ballast)", filled >> 20),
                    vec![id],
                );
                tokio::time::sleep(fault.duration).await;
                let mut c = cluster.lock().await;
                c.free_disk(id)?;
                // A node whose storage failed has exited (crash-only): the operator restarts it.
                let outcome = if c.has_exited(id)? {
                    c.restart(id)?;
                    c.unseal(id).await?;
                    format!("disk freed; node {id} had stopped on its storage error and was restarted and unsealed")
                } else {
                    format!("disk freed; node {id} kept running")
                };
                recorder.fault(kind, Phase::End, outcome, vec![id]);
            }
            Action::Region { target, mode } => {
                let topology = cluster.lock().await.spec().topology.clone();
                let (region, members) = resolve_region(*target, &topology, &admins).await;
                let label = Topology::label(region);
                match mode {
                    RegionMode::Isolate => {
                        let others: Vec<u64> =
                            topology.ids().filter(|id| !members.contains(id)).collect();
                        let cuts = cut_between(&members, &others);
                        set_links(&*cluster.lock().await, &cuts, LinkFault::Down);
                        recorder.fault(
                            kind,
                            Phase::Start,
                            format!("isolate {label} (nodes {members:?})"),
                            members.clone(),
                        );
                        tokio::time::sleep(fault.duration).await;
                        set_links(&*cluster.lock().await, &cuts, LinkFault::Up);
                        recorder.fault(kind, Phase::End, format!("{label} healed"), members);
                    }
                    RegionMode::Kill => {
                        {
                            let mut c = cluster.lock().await;
                            for id in &members {
                                c.kill(*id)?;
                            }
                        }
                        recorder.fault(
                            kind,
                            Phase::Start,
                            format!("kill every node of {label} (nodes {members:?})"),
                            members.clone(),
                        );
                        tokio::time::sleep(fault.duration).await;
                        let mut c = cluster.lock().await;
                        for id in &members {
                            c.restart(*id)?;
                        }
                        for id in &members {
                            c.unseal(*id).await?;
                        }
                        recorder.fault(
                            kind,
                            Phase::End,
                            format!("{label} restarted and unsealed"),
                            members,
                        );
                    }
                }
            }
            Action::Rolling => {
                for (id, admin) in &admins {
                    recorder.fault(kind, Phase::Start, format!("restart node {id}"), vec![*id]);
                    {
                        let mut c = cluster.lock().await;
                        c.stop(*id)?;
                        c.restart(*id)?;
                        c.unseal(*id).await?;
                    }
                    let serving = wait_serving(*id, admin).await.is_ok();
                    recorder.fault(
                        kind,
                        Phase::End,
                        format!("node {id} back (serving: {serving})"),
                        vec![*id],
                    );
                }
            }
        }
    }
    Ok(())
}

/// Puts `links` in the `degraded` state for the fault's duration, then back up, recording the
/// fault's start and end (partitions, delays and drops differ only in the link state).
async fn degrade_links(
    cluster: &Mutex<ChaosCluster>,
    recorder: &Recorder,
    fault: &Planned,
    links: &[(u64, u64)],
    degraded: LinkFault,
) {
    let kind = fault.action.kind();
    set_links(&*cluster.lock().await, links, degraded);
    let nodes = involved(links);
    recorder.fault(kind, Phase::Start, fault.action.describe(), nodes.clone());
    tokio::time::sleep(fault.duration).await;
    set_links(&*cluster.lock().await, links, LinkFault::Up);
    recorder.fault(kind, Phase::End, "healed".into(), nodes);
}

fn involved(links: &[(u64, u64)]) -> Vec<u64> {
    let mut nodes: Vec<u64> = links.iter().flat_map(|(a, b)| [*a, *b]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// Samples every node's status every `every` until the task is aborted (for the
/// single-leader and convergence checks and the timeline).
pub async fn sample_statuses(admins: Vec<(u64, Client)>, recorder: Recorder, every: Duration) {
    loop {
        let polls = admins.iter().map(|(id, admin)| async move {
            let status = tokio::time::timeout(Duration::from_millis(800), admin.status()).await;
            (*id, status)
        });
        for (id, status) in futures::future::join_all(polls).await {
            if let Ok(Ok(s)) = status {
                recorder.status(StatusSample {
                    time_us: 0,
                    node: id,
                    term: s.term,
                    role: s.role,
                    leader_id: s.leader_id,
                    applied_index: s.applied_index,
                    state_digest: s.state_digest,
                });
            }
        }
        tokio::time::sleep(every).await;
    }
}
