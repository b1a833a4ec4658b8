//! One chaos run from start to report: cluster up, workload and faults, heal, full restart,
//! final state, checkers, report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use base64::Engine;
use tessera_client::Client;
use tessera_launcher::{Bound, NodeFiles};
use tessera_state::KeyVersion;
use tokio::sync::{watch, Mutex};

use crate::cluster::{injected, raft_timing, wait_serving, ChaosCluster, ClusterSpec};
use crate::history::{write_jsonl, ErrorInfo, EventKind, Op, Recorder, Records};
use crate::invariants::{self, CheckInput, FinalKey, FinalState, Verdict};
use crate::report::{self, RunInfo, ScheduledFault};
use crate::schedule::{self, FaultKind};
use crate::topology::Topology;
use crate::workload::{self, Pools, Worker};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Size of each node's data filesystem in runs with disk faults: room for a long run's data,
/// small enough that filling it is quick.
const DATA_QUOTA_MIB: u64 = 256;

/// Everything that defines a run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Seed of the schedule and the workload.
    pub seed: u64,
    /// Length of the faulty phase.
    pub duration: Duration,
    /// The nodes and their regions.
    pub topology: Topology,
    /// One-way delay of every link between regions; non-zero also gives the nodes the WAN
    /// timing profile and runs the WAN probe ([`crate::wan`]) before the workload.
    pub wan_delay: Duration,
    /// Fault kinds to inject.
    pub faults: Vec<FaultKind>,
    /// Concurrent clients.
    pub clients: u32,
    /// Keys created before the faults start.
    pub keys: u32,
    /// The `tessera` binary.
    pub binary: PathBuf,
    /// Where the report goes.
    pub out: PathBuf,
    /// Deliberate bugs to switch on in the nodes (fault-injection builds only).
    pub inject: Vec<String>,
    /// Follower lease window of the nodes (default: that of the timing profile).
    pub lease_ms: Option<u64>,
    /// Where the temporary working directory is made (default: the system's temp dir).
    pub work_parent: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// One verdict per checker.
    pub verdicts: Vec<Verdict>,
    /// The report directory.
    pub report_dir: PathBuf,
}

impl Outcome {
    /// Whether every checker passed.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.ok)
    }
}

/// Runs the whole scenario. The nodes' working files live in a temporary directory that is
/// removed on return, panic or cancellation; on failure node logs are copied into the report.
///
/// # Errors
/// If the faults include `region` and no region of the topology can be lost with a majority
/// left (before anything is created), or the cluster cannot be built or recovered; checker
/// failures are not errors (see [`Outcome::passed`]).
pub async fn run(config: RunConfig) -> Result<Outcome> {
    if config.faults.contains(&FaultKind::Region) && config.topology.losable_regions().is_empty() {
        anyhow::bail!(
            "no region of {} can be lost with a majority of the nodes left: region faults \
             would stop the cluster (try --topology 2+2+1)",
            config.topology
        );
    }
    std::fs::create_dir_all(&config.out)
        .with_context(|| format!("cannot create {}", config.out.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix("tessera-chaos-");
    let work = match &config.work_parent {
        Some(parent) => builder.tempdir_in(parent)?,
        None => builder.tempdir()?,
    };
    let wan = !config.wan_delay.is_zero();
    let raft = raft_timing(wan, config.lease_ms);
    let lease_ms = raft.lease_ms;
    let nodes = config.topology.nodes();
    let spec = ClusterSpec {
        topology: config.topology.clone(),
        wan_delay: config.wan_delay,
        binary: config.binary.clone(),
        raft,
        faults: injected(&config.inject)?,
        data_quota_mib: config
            .faults
            .contains(&FaultKind::Disk)
            .then_some(DATA_QUOTA_MIB),
    };
    tracing::info!(
        seed = config.seed,
        nodes,
        topology = %config.topology,
        "starting the cluster"
    );
    let cluster = ChaosCluster::start(spec, work.path(), config.seed).await?;
    let recorder = Recorder::new();
    let wan_probe = if wan {
        tracing::info!("measuring latencies across regions");
        Some(crate::wan::probe(&cluster, config.wan_delay, &recorder).await?)
    } else {
        None
    };
    let op_timeout = Duration::from_secs(1);
    let ids: Vec<u64> = cluster.nodes.iter().map(|n| n.id).collect();
    let admins = |cluster: &ChaosCluster| -> Result<Vec<(u64, Client)>> {
        cluster
            .nodes
            .iter()
            .map(|n| cluster.admin(n.id).map(|c| (n.id, c)))
            .collect()
    };
    let (sampler_admins, nemesis_admins, final_admins) =
        (admins(&cluster)?, admins(&cluster)?, admins(&cluster)?);
    let pools = Arc::new(Pools::default());
    let seed_client = cluster.client(1, op_timeout)?;
    workload::seed_keys(&recorder, &pools, 1, &seed_client, config.keys).await;

    let plan = schedule::plan(
        config.seed,
        &config.topology,
        config.duration,
        &config.faults,
    );
    let cluster = Arc::new(Mutex::new(cluster));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = Vec::new();
    for process in 1..=config.clients {
        let (clients, app_clients) = {
            let c = cluster.lock().await;
            (
                connections(&c, &ids, op_timeout, ChaosCluster::client)?,
                connections(&c, &ids, op_timeout, ChaosCluster::app_client)?,
            )
        };
        let worker = Worker {
            process,
            clients,
            app_clients,
        };
        workers.push(tokio::spawn(worker.run(
            recorder.clone(),
            Arc::clone(&pools),
            config.seed,
            stop_rx.clone(),
        )));
    }
    let prober = {
        let c = cluster.lock().await;
        workload::AccessProber {
            process: config.clients.saturating_add(1),
            clients: connections(&c, &ids, op_timeout, ChaosCluster::client)?,
            app_clients: connections(&c, &ids, op_timeout, ChaosCluster::app_client)?,
            settle: Duration::from_millis(lease_ms.saturating_mul(2).saturating_add(200)),
        }
    };
    workers.push(tokio::spawn(prober.run(recorder.clone(), stop_rx.clone())));
    let sampler = tokio::spawn(crate::nemesis::sample_statuses(
        sampler_admins,
        recorder.clone(),
        Duration::from_millis(300),
    ));
    let started = Instant::now();
    let nemesis = crate::nemesis::run(
        Arc::clone(&cluster),
        plan.clone(),
        recorder.clone(),
        nemesis_admins,
    )
    .await;
    if let Err(e) = nemesis {
        // The cluster could not be brought back from a fault: keep what happened for a person
        // to look at, then report the failure.
        stop_tx.send_replace(true);
        let records = recorder.snapshot();
        write_records(&config.out, &records, &FinalState::default())?;
        copy_logs(&*cluster.lock().await, &config.out)?;
        return Err(e.context(format!(
            "a fault could not be undone; history and node logs are in {}",
            config.out.display()
        )));
    }
    tokio::time::sleep(config.duration.saturating_sub(started.elapsed())).await;
    stop_tx.send_replace(true);
    for worker in workers {
        let _ = worker.await;
    }

    tracing::info!("healing and restarting every node");
    let healed_at_us = recorder.now_us();
    let mut guard = cluster.lock().await;
    guard.heal_links();
    for id in &ids {
        guard.pause(*id, false)?;
        guard.restart(*id)?;
    }
    for id in &ids {
        guard.stop(*id)?;
    }
    for id in &ids {
        guard.restart(*id)?;
    }
    for id in &ids {
        guard.unseal(*id).await?;
    }
    drop(guard);
    for (id, admin) in &final_admins {
        wait_serving(*id, admin).await?;
    }
    let records = recorder.snapshot();
    let mut final_state = collect_final_state(&records, &final_admins).await?;
    sampler.abort();
    let _ = sampler.await;
    final_state.audit = cluster.lock().await.verify_audit()?;
    final_state.wan = wan_probe;
    let records = recorder.snapshot();

    let verdicts: Vec<Verdict> = {
        let input = CheckInput {
            history: &records.events,
            statuses: &records.statuses,
            faults: &records.faults,
            final_state: &final_state,
            lease_window_ms: lease_ms,
            healed_at_us: Some(healed_at_us),
        };
        invariants::all().iter().map(|c| c.check(&input)).collect()
    };
    let info = RunInfo {
        seed: config.seed,
        nodes,
        duration_ms: u64::try_from(config.duration.as_millis()).unwrap_or(u64::MAX),
        faults: config.faults.iter().map(|f| f.name().to_owned()).collect(),
        lease_window_ms: lease_ms,
        topology: config.topology.flag(),
        wan_delay_ms: u64::try_from(config.wan_delay.as_millis()).unwrap_or(u64::MAX),
        healed_at_us: Some(healed_at_us),
        schedule: plan
            .iter()
            .map(|p| ScheduledFault {
                at_ms: u64::try_from(p.at.as_millis()).unwrap_or(u64::MAX),
                duration_ms: u64::try_from(p.duration.as_millis()).unwrap_or(u64::MAX),
                fault: p.action.kind().name().to_owned(),
                detail: p.action.describe(),
            })
            .collect(),
    };
    write_records(&config.out, &records, &final_state)?;
    report::write_report(&config.out, &info, &records, &verdicts)?;
    let outcome = Outcome {
        verdicts,
        report_dir: config.out.clone(),
    };
    if !outcome.passed() {
        copy_logs(&*cluster.lock().await, &config.out)?;
    }
    Ok(outcome)
}

/// Re-runs every checker over the files a run wrote to `dir` (after changing a checker, or
/// to look at a run again).
///
/// # Errors
/// If a file is missing or does not parse.
pub fn recheck(dir: &Path) -> Result<Vec<Verdict>> {
    let records = Records {
        events: crate::history::read_jsonl(&dir.join("history.jsonl"))?,
        statuses: crate::history::read_jsonl(&dir.join("statuses.jsonl"))?,
        faults: crate::history::read_jsonl(&dir.join("faults.jsonl"))?,
    };
    let final_state: FinalState = serde_json::from_slice(
        &std::fs::read(dir.join("final-state.json")).context("final-state.json")?,
    )?;
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).context("report.json")?)?;
    let lease_window_ms = report
        .pointer("/info/lease_window_ms")
        .and_then(serde_json::Value::as_u64)
        .context("report.json lacks info.lease_window_ms")?;
    let healed_at_us = report
        .pointer("/info/healed_at_us")
        .and_then(serde_json::Value::as_u64);
    let input = CheckInput {
        history: &records.events,
        statuses: &records.statuses,
        faults: &records.faults,
        final_state: &final_state,
        lease_window_ms,
        healed_at_us,
    };
    Ok(invariants::all().iter().map(|c| c.check(&input)).collect())
}

fn write_records(dir: &Path, records: &Records, final_state: &FinalState) -> Result<()> {
    write_jsonl(&dir.join("history.jsonl"), &records.events)?;
    write_jsonl(&dir.join("statuses.jsonl"), &records.statuses)?;
    write_jsonl(&dir.join("faults.jsonl"), &records.faults)?;
    std::fs::write(
        dir.join("final-state.json"),
        serde_json::to_vec_pretty(final_state)?,
    )?;
    Ok(())
}

fn copy_logs(cluster: &ChaosCluster, dir: &Path) -> Result<()> {
    for node in &cluster.nodes {
        let target = dir.join(format!("node{}.log", node.id));
        std::fs::copy(node.log(), &target)
            .with_context(|| format!("cannot copy the log of node {}", node.id))?;
    }
    Ok(())
}

/// Reads every key on every node (linearizably, before touching anything), re-enables
/// disabled keys like an operator would, decrypts every ciphertext ever returned on every
/// node, and compares state digests once the nodes agree on the applied index.
async fn collect_final_state(records: &Records, admins: &[(u64, Client)]) -> Result<FinalState> {
    let mut names: Vec<String> = records
        .events
        .iter()
        .filter(|e| matches!(e.op, Op::CreateKey { .. }))
        .map(|e| e.op.key_name().to_owned())
        .collect();
    names.sort();
    names.dedup();
    let mut state = FinalState::default();
    for (id, admin) in admins {
        // One linearizable read makes the node apply everything committed so far; the
        // listing that follows is then current.
        if let Some(name) = names.first() {
            let _ = admin.describe_key_linearizable(name).await;
        }
        let keys = admin
            .list_keys()
            .await?
            .into_iter()
            .map(|key| {
                let versions = u32::try_from(key.versions.len()).unwrap_or(u32::MAX);
                (
                    key.name,
                    FinalKey {
                        key_id: key.key_id,
                        state: key.state,
                        primary_version: KeyVersion::new(key.primary_version),
                        versions,
                    },
                )
            })
            .collect();
        state.keys.insert(*id, keys);
    }
    if let Some((_, admin)) = admins.first() {
        if let Some(keys) = state.keys.values().next() {
            for (name, key) in keys {
                if key.state == "DISABLED" {
                    admin.enable_key(name).await?;
                }
            }
        }
    }
    // A linearizable read on each node makes it apply the enables before it decrypts.
    if let Some(name) = names.first() {
        for (_, admin) in admins {
            let _ = admin.describe_key_linearizable(name).await;
        }
    }
    let ciphertexts: Vec<(u64, Vec<u8>)> = records
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Ok)
        .filter_map(|e| {
            let ciphertext = e.value.as_ref()?.ciphertext.as_ref()?;
            Some((e.index, B64.decode(ciphertext).ok()?))
        })
        .collect();
    for (id, admin) in admins {
        let mut results = BTreeMap::new();
        for chunk in ciphertexts.chunks(256) {
            let items = chunk
                .iter()
                .map(|(_, ct)| tessera_client::proto::DecryptRequest {
                    ciphertext: ct.clone(),
                    context: BTreeMap::new(),
                })
                .collect();
            let reply = admin.batch_decrypt(items).await?;
            for ((index, _), result) in chunk.iter().zip(reply.results) {
                use tessera_client::proto::batch_decrypt_result::Result as R;
                let outcome = match result.result {
                    Some(R::Ok(ok)) => Ok(B64.encode(ok.plaintext)),
                    Some(R::Error(e)) => Err(ErrorInfo {
                        code: e.code,
                        tessera_code: Some(e.tessera_code),
                        message: e.message,
                    }),
                    None => Err(ErrorInfo {
                        code: "INTERNAL".into(),
                        tessera_code: None,
                        message: "empty batch result".into(),
                    }),
                };
                results.insert(*index, outcome);
            }
        }
        state.decryptions.insert(*id, results);
    }
    // Best effort: after the bound, the digests as last seen (the convergence checker
    // judges them).
    let bound = Bound::new(Duration::from_secs(30), Duration::from_millis(200));
    state.digests = bound
        .until("every node to apply the same index", || async {
            let mut digests = BTreeMap::new();
            for (id, admin) in admins {
                if let Ok(status) = admin.status_with_digest().await {
                    digests.insert(*id, (status.applied_index, status.state_digest));
                }
            }
            let indexes: std::collections::BTreeSet<_> =
                digests.values().map(|(index, _)| index).collect();
            if digests.len() == admins.len() && indexes.len() == 1 {
                Ok(digests)
            } else {
                Err(digests)
            }
        })
        .await
        .unwrap_or_else(|timeout| timeout.last);
    Ok(state)
}

/// One client per node in `ids`, made by `identity` (admin or `app`), each through that node's
/// client proxy.
fn connections(
    cluster: &ChaosCluster,
    ids: &[u64],
    op_timeout: Duration,
    identity: fn(&ChaosCluster, u64, Duration) -> Result<Client>,
) -> Result<Vec<(u64, Client)>> {
    ids.iter()
        .map(|id| identity(cluster, *id, op_timeout).map(|client| (*id, client)))
        .collect()
}
