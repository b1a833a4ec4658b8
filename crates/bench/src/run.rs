//! One run: start the cluster and the references, run the chosen groups of workloads in
//! order, and collect the [`Report`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera_client::{Client, PolicyFormat};
use tessera_launcher::cluster::{self, Pending};
use tessera_launcher::config::NodeOptions;
use tessera_launcher::Bound;
use tessera_launcher::{LocalCluster, NodeProcess, SavedShares};

use crate::echo::EchoProcess;
use crate::etcd::Etcd;
use crate::load::{closed_loop, fixed_count, LoadSpec, Measured, Op};
use crate::machine::{dir_size, own_cpu_time, rss_bytes, Machine};
use crate::report::{Failover, KeyLoad, NodeUsage, PolicyCost, Report, Restart, Workload};
use crate::tessera::{self, CryptoCall, Fixture};
use crate::{Error, Group, Options};

/// Nodes in the measured cluster.
const NODES: u64 = 3;
/// Statements in the policy set of the policy workload.
const POLICY_STATEMENTS: usize = 50;
/// Requests in flight while creating the N keys.
const BULK_CONCURRENCY: usize = 64;
/// Keys the RotateKey workload rotates in turn.
const ROTATE_POOL: u64 = 64;
/// Bound on one failover try and on a restarted node coming back.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Step of the waits that are timed.
const TIMED_POLL: Duration = Duration::from_millis(10);
/// The timed waits for a recovery: fine steps, bounded by [`RECOVERY_TIMEOUT`].
const RECOVERY: Bound = Bound::new(RECOVERY_TIMEOUT, TIMED_POLL);
/// Value size of an etcd put (about a CreateKey's log entry).
const ETCD_VALUE_BYTES: usize = 256;
const MIB: f64 = 1024.0 * 1024.0;

/// K for C requests in flight: one connection per request up to four.
fn connections(concurrency: usize) -> usize {
    concurrency.clamp(1, 4)
}

/// Runs the bench.
///
/// # Errors
/// [`Error`] if the cluster or a reference cannot be started, or a set-up call fails.
pub async fn run(options: &Options) -> Result<Report, Error> {
    let wall = Instant::now();
    let cpu = own_cpu_time();
    let temp;
    let work = match &options.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("tessera-bench-")
                .tempdir()
                .map_err(|source| tessera_launcher::Error::Io {
                    action: "create",
                    path: std::env::temp_dir(),
                    source,
                })?;
            temp.path().to_owned()
        }
    };
    let mut bench = Bench::start(options, &work).await?;
    for group in Group::ALL {
        if options.groups.contains(&group) {
            bench.group(group).await?;
        }
    }
    bench.progress.finish_and_clear();
    let mut report = bench.report;
    report.load_cpu_s = own_cpu_time().saturating_sub(cpu).as_secs_f64();
    report.wall_s = wall.elapsed().as_secs_f64();
    report.notes.push(format!(
        "the load generator ran on the same {} cores as every server; the {:.1} CPU seconds it \
         used were not available to them, so on a small machine every ratio is pessimistic",
        report.machine.cores, report.load_cpu_s
    ));
    Ok(report)
}

struct Bench<'a> {
    options: &'a Options,
    cluster: LocalCluster,
    pki: PathBuf,
    shares: SavedShares,
    echo: EchoProcess,
    etcd: Option<(Etcd, String)>,
    fixture: Fixture,
    progress: ProgressBar,
    report: Report,
    /// Keys the bench created, as far as it knows.
    keys: u64,
}

impl<'a> Bench<'a> {
    async fn start(options: &'a Options, work: &Path) -> Result<Self, Error> {
        let progress = progress_bar(options);
        progress.set_message("starting a 3-node cluster");
        let dir = work.join("cluster");
        let mut cluster = cluster::prepare(
            &dir,
            NODES,
            |_| cluster::free_ports(),
            "tessera bench",
            // The bench measures capacity, so the per-identity rate limits (which would answer
            // its one identity `RESOURCE_EXHAUSTED` long before the nodes are saturated) are off.
            |_| NodeOptions::without_rate_limits(),
        )?;
        cluster.bring_up(&options.exe).await?;
        cluster.poll_interval = TIMED_POLL;
        let pki = dir.join("pki");
        let shares = cluster.saved_shares()?;
        progress.set_message("starting the echo server");
        let echo = EchoProcess::start(&options.exe, &pki).await?;
        let mut notes = Vec::new();
        let etcd = if options.etcd && options.groups.contains(&Group::Writes) {
            match crate::etcd::find() {
                Some(exe) => {
                    progress.set_message("starting a 3-member etcd");
                    let etcd = Etcd::start(&exe, work, &pki).await?;
                    let leader = etcd.leader(&pki).await?;
                    Some((etcd, leader))
                }
                None => {
                    notes.push(
                        "etcd is not on the PATH: the write workloads have no reference \
                         (install etcd-server for that column)"
                            .to_owned(),
                    );
                    None
                }
            }
        } else {
            if options.groups.contains(&Group::Writes) {
                notes.push(
                    "etcd not started (--quick or --no-etcd): writes have no reference".to_owned(),
                );
            }
            None
        };
        let admin = cluster.admin(cluster.api_addrs())?;
        let payload = vec![0x5a; options.payload_bytes];
        let fixture = Fixture::create(&admin, payload).await?;
        let report = Report {
            format: 1,
            started: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            quick: options.quick,
            machine: Machine::describe(),
            duration_s: options.duration.as_secs_f64(),
            warmup_s: options.warmup.as_secs_f64(),
            reps: options.reps,
            payload_bytes: options.payload_bytes,
            workloads: Vec::new(),
            policy: None,
            failover: None,
            keys: None,
            restart: None,
            nodes: Vec::new(),
            etcd_data_dir_mb: Vec::new(),
            notes,
            load_cpu_s: 0.0,
            wall_s: 0.0,
        };
        progress.set_length(planned_steps(options, etcd.is_some()));
        Ok(Self {
            options,
            cluster,
            pki,
            shares,
            echo,
            etcd,
            fixture,
            progress,
            report,
            keys: 3,
        })
    }

    async fn group(&mut self, group: Group) -> Result<(), Error> {
        match group {
            Group::Crypto => self.crypto().await,
            Group::Policy => self.policy().await,
            Group::Writes => self.writes().await,
            Group::Failover => self.failover().await,
            Group::Keys => self.bulk_keys().await,
        }
    }

    fn spec(&self, concurrency: usize) -> LoadSpec {
        LoadSpec {
            concurrency,
            warmup: self.options.warmup,
            duration: self.options.duration,
            reps: self.options.reps,
        }
    }

    /// Measures `op` and appends its workload; returns its index in the report.
    async fn measure(
        &mut self,
        op: &Op,
        workload: (&'static str, &str, &'static str),
        concurrency: usize,
        k: usize,
    ) -> Result<usize, Error> {
        let (system, call, target) = workload;
        self.progress
            .set_message(format!("{system} {call} {target} C={concurrency} K={k}"));
        let measured = closed_loop(op, &self.spec(concurrency)).await?;
        self.record(workload, concurrency, k, &measured);
        Ok(self.report.workloads.len() - 1)
    }

    fn record(
        &mut self,
        (system, call, target): (&'static str, &str, &'static str),
        concurrency: usize,
        k: usize,
        measured: &Measured,
    ) {
        self.report.workloads.push(Workload::new(
            system,
            call,
            target,
            concurrency,
            k,
            measured,
        ));
        self.progress.inc(1);
    }

    fn compare(&mut self, index: usize, reference: Option<usize>) {
        let Some(reference) = reference.and_then(|r| self.report.workloads.get(r).cloned()) else {
            return;
        };
        if let Some(w) = self.report.workloads.get_mut(index) {
            w.compare_with(&reference);
        }
    }

    /// Status of every running node (from each node itself).
    async fn statuses(&self) -> Vec<Option<tessera_client::proto::StatusResponse>> {
        let mut out = Vec::new();
        for node in &self.cluster.nodes.0 {
            let status = match self.cluster.admin(vec![node.api_addr.clone()]) {
                Ok(client) if node.is_running() => client.status().await.ok(),
                _ => None,
            };
            out.push(status);
        }
        out
    }

    /// Index of the leader and of one follower, once a leader is known.
    async fn roles(&self) -> Result<(usize, usize), Error> {
        let nodes = &self.cluster.nodes.0;
        let leader = RECOVERY
            .until("a leader", || async {
                let statuses = self.statuses().await;
                let leader_id = statuses.iter().flatten().find_map(|s| s.leader_id);
                leader_id
                    .and_then(|id| nodes.iter().position(|n| n.id == id))
                    .ok_or(())
            })
            .await
            .map_err(|_| Error::NoNode { role: "leader" })?;
        let follower = (0..nodes.len())
            .find(|&i| i != leader && nodes.get(i).is_some_and(|n| n.is_running()))
            .ok_or(Error::NoNode { role: "follower" })?;
        Ok((leader, follower))
    }

    fn endpoint(&self, index: usize) -> Vec<String> {
        self.cluster
            .nodes
            .0
            .get(index)
            .map(|n| vec![n.api_addr.clone()])
            .unwrap_or_default()
    }

    async fn crypto(&mut self) -> Result<(), Error> {
        let (_, follower) = self.roles().await?;
        let one = self.endpoint(follower);
        let all = self.cluster.api_addrs();
        let mut echo = Vec::new();
        for &c in &self.options.concurrency.clone() {
            let k = connections(c);
            let op = crate::echo::op(&self.pki, &self.echo.addr, k, self.fixture.payload.clone())?;
            echo.push(
                self.measure(&op, ("echo", "echo", "one-node"), c, k)
                    .await?,
            );
        }
        for call in CryptoCall::ALL {
            for (target, endpoints) in [("one-node", &one), ("spread", &all)] {
                for (i, &c) in self.options.concurrency.clone().iter().enumerate() {
                    let k = if target == "spread" {
                        connections(c).max(endpoints.len())
                    } else {
                        connections(c)
                    };
                    let clients = tessera::clients(&self.cluster, endpoints, k)?;
                    let op = tessera::crypto_op(clients, call, &self.fixture);
                    let index = self
                        .measure(&op, ("tessera", call.name(), target), c, k)
                        .await?;
                    self.compare(index, echo.get(i).copied());
                }
            }
        }
        Ok(())
    }

    async fn policy(&mut self) -> Result<(), Error> {
        let (leader, follower) = self.roles().await?;
        let c = self
            .options
            .concurrency
            .iter()
            .copied()
            .filter(|&c| c <= 16)
            .max()
            .unwrap_or(16);
        let k = connections(c);
        let one = self.endpoint(follower);
        let clients = tessera::clients(&self.cluster, &one, k)?;
        let op = tessera::crypto_op(clients, CryptoCall::Encrypt, &self.fixture);
        let without = self
            .measure(&op, ("tessera", "encrypt-0-statements", "policy"), c, k)
            .await?;
        let admin = self.cluster.admin(self.endpoint(leader))?;
        let name = "bench-policy-set";
        admin
            .put_policy(
                name,
                &tessera::policy_document(POLICY_STATEMENTS),
                PolicyFormat::Json,
            )
            .await?;
        // The follower applies the policy within a heartbeat; the warm-up covers the rest.
        let with = self
            .measure(
                &op,
                (
                    "tessera",
                    &format!("encrypt-{POLICY_STATEMENTS}-statements"),
                    "policy",
                ),
                c,
                k,
            )
            .await;
        // Later workloads run without the set, whatever happened.
        admin.delete_policy(name).await?;
        let with = with?;
        self.compare(with, Some(without));
        let get = |i: usize| {
            self.report
                .workloads
                .get(i)
                .map(|w| w.name.clone())
                .unwrap_or_default()
        };
        self.report.policy = Some(PolicyCost {
            statements: POLICY_STATEMENTS,
            without: get(without),
            with: get(with),
            ratio_ops: self.report.workloads.get(with).and_then(|w| w.ratio_ops),
        });
        Ok(())
    }

    async fn writes(&mut self) -> Result<(), Error> {
        let (leader, _) = self.roles().await?;
        let on_leader = self.endpoint(leader);
        let admin = self.cluster.admin(on_leader.clone())?;
        let mut pool = Vec::new();
        for i in 0..ROTATE_POOL {
            pool.push(
                admin
                    .create_key(&format!("bench-rotate-{i}"), "AES256_GCM", "")
                    .await?
                    .key_id,
            );
        }
        self.keys += ROTATE_POOL;
        let pool = Arc::new(pool);
        for &c in &self.options.concurrency.clone() {
            let k = connections(c);
            let reference = match &self.etcd {
                Some((_, addr)) => {
                    let op = crate::etcd::put_op(
                        &self.pki,
                        addr,
                        k,
                        Arc::new(vec![0x5a; ETCD_VALUE_BYTES]),
                    )?;
                    Some(self.measure(&op, ("etcd", "put", "leader"), c, k).await?)
                }
                None => None,
            };
            let clients = tessera::clients(&self.cluster, &on_leader, k)?;
            let create = tessera::create_key_op(clients.clone(), &format!("bench-create-c{c}"));
            self.progress
                .set_message(format!("create-key leader C={c} K={k}"));
            let measured = closed_loop(&create, &self.spec(c)).await?;
            self.keys += measured.issued;
            self.record(("tessera", "create-key", "leader"), c, k, &measured);
            self.compare(self.report.workloads.len() - 1, reference);
            let rotate = tessera::rotate_key_op(clients, pool.clone());
            let index = self
                .measure(&rotate, ("tessera", "rotate-key", "leader"), c, k)
                .await?;
            self.compare(index, reference);
        }
        if let Some((etcd, _)) = &self.etcd {
            self.report.etcd_data_dir_mb = etcd
                .data_dirs
                .iter()
                .map(|d| dir_size(d) as f64 / 1e6)
                .collect();
        }
        Ok(())
    }

    /// Restarts node `index` after it was stopped or killed: spawn, unseal, and wait until it
    /// serves again. Returns (listening, unsealed, serving) seconds from the spawn.
    async fn restart(&mut self, index: usize) -> Result<(f64, f64, f64), Error> {
        let exe = self.options.exe.clone();
        let node = node_mut(&mut self.cluster, index, "restarted")?;
        let start = Instant::now();
        node.spawn(&exe)?;
        let pid = node.pid();
        RECOVERY
            .until("the restarted node to publish its addresses", || async {
                match node.addresses() {
                    Some(a) if Some(a.pid) == pid => Ok(()),
                    _ => Err(()),
                }
            })
            .await
            .map_err(|_| Error::NoNode { role: "restarted" })?;
        let listening = start.elapsed();
        let node = self
            .cluster
            .nodes
            .0
            .get(index)
            .ok_or(Error::NoNode { role: "restarted" })?;
        self.cluster.unseal(node, &self.shares).await?;
        let unsealed = start.elapsed();
        let client = self.cluster.admin(vec![node.api_addr.clone()])?;
        let key = self.fixture.encrypt_key().to_owned();
        let payload = self.fixture.payload.clone();
        RECOVERY
            .until("the restarted node to serve", || async {
                client
                    .encrypt(&key, &payload, &Default::default())
                    .await
                    .map(drop)
                    .map_err(Pending::from)
            })
            .await
            .map_err(tessera_launcher::Error::from)?;
        Ok((
            listening.as_secs_f64(),
            unsealed.as_secs_f64(),
            start.elapsed().as_secs_f64(),
        ))
    }

    async fn failover(&mut self) -> Result<(), Error> {
        let mut tries = Vec::new();
        for attempt in 0..self.options.failover_tries.max(1) {
            self.progress
                .set_message(format!("failover try {}", attempt + 1));
            let (leader, _) = self.roles().await?;
            let survivors: Vec<String> = self
                .cluster
                .api_addrs()
                .into_iter()
                .enumerate()
                .filter(|&(i, _)| i != leader)
                .map(|(_, a)| a)
                .collect();
            let client = self.cluster.admin(survivors)?;
            let node = node_mut(&mut self.cluster, leader, "leader")?;
            let start = Instant::now();
            node.kill().await;
            let elapsed = first_write(&client, attempt, start).await?;
            tries.push(elapsed.as_secs_f64());
            self.keys += 1;
            self.restart(leader).await?;
            self.progress.inc(1);
        }
        let mut sorted = tries.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        self.report.failover = Some(Failover {
            tries_s: tries,
            median_s: median,
        });
        Ok(())
    }

    async fn bulk_keys(&mut self) -> Result<(), Error> {
        let (leader, _) = self.roles().await?;
        let n = self.options.keys;
        self.progress.set_message(format!("creating {n} keys"));
        let clients = tessera::clients(
            &self.cluster,
            &self.endpoint(leader),
            connections(BULK_CONCURRENCY),
        )?;
        let op = tessera::create_key_op(clients, "bench-bulk");
        let counted = fixed_count(&op, n, BULK_CONCURRENCY).await;
        self.keys += counted.ok;
        if let Some(error) = &counted.first_error {
            self.report.notes.push(format!(
                "{} of {n} key creations failed; the first: {error}",
                counted.errors
            ));
        }
        self.report.keys = Some(KeyLoad {
            created: counted.ok,
            total_keys: self.keys,
            seconds: counted.elapsed.as_secs_f64(),
            concurrency: BULK_CONCURRENCY,
        });
        self.progress.inc(1);

        // Idle: after the writes have settled.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pids: Vec<Option<u32>> = self.cluster.nodes.0.iter().map(|n| n.pid()).collect();
        let idle: Vec<u64> = pids
            .iter()
            .map(|p| p.and_then(rss_bytes).unwrap_or(0))
            .collect();

        // Under load: encrypt spread over every node at the highest C, sampling memory.
        let c = self.options.concurrency.iter().copied().max().unwrap_or(64);
        let all = self.cluster.api_addrs();
        let k = connections(c).max(all.len());
        let clients = tessera::clients(&self.cluster, &all, k)?;
        let op = tessera::crypto_op(clients, CryptoCall::Encrypt, &self.fixture);
        self.progress
            .set_message(format!("encrypt with {} keys, C={c}", self.keys));
        let spec = self.spec(c);
        let load = closed_loop(&op, &spec);
        tokio::pin!(load);
        let mut peak = idle.clone();
        let measured = loop {
            tokio::select! {
                measured = &mut load => break measured?,
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    for (p, pid) in peak.iter_mut().zip(&pids) {
                        *p = (*p).max(pid.and_then(rss_bytes).unwrap_or(0));
                    }
                }
            }
        };
        self.record(("tessera", "encrypt", "with-keys"), c, k, &measured);
        self.report.nodes = self
            .cluster
            .nodes
            .0
            .iter()
            .enumerate()
            .map(|(i, n)| NodeUsage {
                node_id: n.id,
                leader: i == leader,
                rss_idle_mib: idle.get(i).copied().unwrap_or(0) as f64 / MIB,
                rss_load_mib: peak.get(i).copied().unwrap_or(0) as f64 / MIB,
                data_dir_mb: dir_size(&n.data_dir) as f64 / 1e6,
            })
            .collect();

        // Restart to serving: a follower stopped as an operator would, then started again.
        let (_, follower) = self.roles().await?;
        self.progress.set_message("restarting a node");
        if let Some(node) = self.cluster.nodes.0.get_mut(follower) {
            node.stop().await;
        }
        let (listening_s, unsealed_s, serving_s) = self.restart(follower).await?;
        self.report.restart = Some(Restart {
            node_id: self.cluster.nodes.0.get(follower).map_or(0, |n| n.id),
            keys: self.keys,
            listening_s,
            unsealed_s,
            serving_s,
        });
        self.progress.inc(1);
        Ok(())
    }
}

/// Writes through `client` (the survivors) until one is acknowledged; the time since `start`.
async fn first_write(client: &Client, attempt: u32, start: Instant) -> Result<Duration, Error> {
    let mut n = 0u32;
    RECOVERY
        .until("a write on the survivors", || {
            n += 1;
            let name = format!("bench-failover-{attempt}-{n}");
            async move { client.create_key(&name, "AES256_GCM", "").await }
        })
        .await
        .map(|_| start.elapsed())
        .map_err(|_| Error::FailoverTimeout(RECOVERY_TIMEOUT))
}

fn planned_steps(options: &Options, etcd: bool) -> u64 {
    let c = options.concurrency.len() as u64;
    options
        .groups
        .iter()
        .map(|group| match group {
            Group::Crypto => c * (1 + 2 * CryptoCall::ALL.len() as u64),
            Group::Policy => 2,
            Group::Writes => c * (2 + u64::from(etcd)),
            Group::Failover => u64::from(options.failover_tries.max(1)),
            Group::Keys => 3,
        })
        .sum()
}

fn progress_bar(options: &Options) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if options.progress && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// Node `index` of `cluster`, the one to play `role` (named in the error when there is none).
fn node_mut<'a>(
    cluster: &'a mut LocalCluster,
    index: usize,
    role: &'static str,
) -> Result<&'a mut NodeProcess, Error> {
    cluster.nodes.0.get_mut(index).ok_or(Error::NoNode { role })
}
