//! What a run across delayed regions measures before its workload starts: the round trip
//! between regions, and whether writes commit and a region-local client's crypto stays local.
//!
//! The round trip is measured, not assumed: `Status` calls (answered by the node alone)
//! from a client in another region, through a proxy with the run's one-way WAN delay. Each
//! region's client then talks to a node of its own region (the undelayed client proxy),
//! preferably a follower, whose crypto is served from its lease without a cross-region trip:
//! it times writes (creates, which need the leader and a quorum across regions; recorded in
//! the history like the workload's, so every checker covers them) and encrypts. The
//! `wan-latency` checker compares them.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tessera_client::Client;

use crate::cluster::{wait_serving, ChaosCluster};
use crate::history::Recorder;
use crate::proxy::Proxy;
use crate::report::stats::percentile;
use crate::topology::Topology;
use crate::workload::create_key;

/// Timed round trips across regions.
const RTT_SAMPLES: usize = 20;
/// Timed creates per region.
const WRITES_PER_REGION: usize = 5;
/// Timed encrypts per region.
const ENCRYPTS_PER_REGION: usize = 50;
/// Per-call bound of the probe's clients.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The measurements of one region's client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionLatency {
    /// Region number.
    pub region: u64,
    /// The node of that region the client used.
    pub node: u64,
    /// Whether that node led the cluster when the probe started.
    pub node_was_leader: bool,
    /// Creates that committed.
    pub writes_committed: usize,
    /// Creates attempted.
    pub writes_attempted: usize,
    /// Median create latency, milliseconds.
    pub write_p50_ms: f64,
    /// Encrypts that succeeded.
    pub encrypts_ok: usize,
    /// Encrypts attempted.
    pub encrypts_attempted: usize,
    /// Median encrypt latency, milliseconds.
    pub encrypt_p50_ms: f64,
}

/// Everything the probe measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WanProbe {
    /// The injected one-way delay between regions, milliseconds.
    pub one_way_delay_ms: u64,
    /// Median round trip of a call across regions, milliseconds.
    pub rtt_p50_ms: f64,
    /// Round trips timed.
    pub rtt_samples: usize,
    /// One entry per region.
    pub regions: Vec<RegionLatency>,
}

fn millis(samples: &mut [u64]) -> f64 {
    samples.sort_unstable();
    percentile(samples, 50) as f64 / 1e3
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs the probe on a cluster whose every node serves; `delay` is the one-way WAN delay.
///
/// # Errors
/// If a node does not serve, or no node of another region than node 1's exists to time a
/// round trip to.
pub async fn probe(
    cluster: &ChaosCluster,
    delay: Duration,
    recorder: &Recorder,
) -> Result<WanProbe> {
    let topology = &cluster.spec().topology;
    let mut admins = Vec::new();
    for node in &cluster.nodes {
        let admin = cluster.admin(node.id)?;
        wait_serving(node.id, &admin).await?;
        admins.push((node.id, admin));
    }
    let leader = crate::nemesis::current_leader(&admins).await;
    let mut rtt = round_trips(cluster, topology, delay).await?;
    let mut regions = Vec::new();
    for region in topology.regions() {
        let members = topology.members(region);
        let Some(node) = members
            .iter()
            .copied()
            .find(|id| Some(*id) != leader)
            .or_else(|| members.first().copied())
        else {
            continue;
        };
        let client = cluster.client(node, CALL_TIMEOUT)?;
        let probe = RegionProbe {
            client: &client,
            region,
            node,
            recorder,
        };
        regions.push(probe.measure(leader == Some(node)).await);
    }
    Ok(WanProbe {
        one_way_delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        rtt_samples: rtt.len(),
        rtt_p50_ms: millis(&mut rtt),
        regions,
    })
}

/// Times `Status` calls from node 1's region to a node of another region, through a proxy
/// with the WAN delay (the first calls, which set up the connection, are not timed).
async fn round_trips(
    cluster: &ChaosCluster,
    topology: &Topology,
    delay: Duration,
) -> Result<Vec<u64>> {
    let remote = cluster
        .nodes
        .iter()
        .find(|n| topology.crosses(1, n.id))
        .ok_or_else(|| anyhow::anyhow!("no node outside node 1's region to time a round trip"))?;
    let proxy = Proxy::start(0x0057_4A4E).await?;
    proxy.set_target(remote.api);
    proxy.set_latency(delay);
    let client = cluster.client_via(proxy.addr(), CALL_TIMEOUT)?;
    for _ in 0..2 {
        client.status().await?;
    }
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for _ in 0..RTT_SAMPLES {
        let started = Instant::now();
        client.status().await?;
        samples.push(micros(started.elapsed()));
    }
    Ok(samples)
}

/// One region's client: through node `node` of `region`.
struct RegionProbe<'a> {
    client: &'a Client,
    region: u64,
    node: u64,
    recorder: &'a Recorder,
}

impl RegionProbe<'_> {
    /// Times creates (each until its outcome is known) and encrypts.
    async fn measure(&self, node_was_leader: bool) -> RegionLatency {
        let (client, region, node) = (self.client, self.region, self.node);
        let mut writes = Vec::new();
        for i in 0..WRITES_PER_REGION {
            let started = Instant::now();
            let name = format!("wan-probe-{}-{i}", Topology::label(region));
            if create_key(self.recorder, 0, node, client, &name, &name).await {
                writes.push(micros(started.elapsed()));
            }
        }
        let key = format!("wan-probe-{}-0", Topology::label(region));
        let context = std::collections::BTreeMap::new();
        // Until the node has applied its own create (and holds a lease), encrypts may fail; those
        // are not timed.
        for _ in 0..50 {
            if client.encrypt(&key, b"probe", &context).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut encrypts = Vec::new();
        for _ in 0..ENCRYPTS_PER_REGION {
            let started = Instant::now();
            if client.encrypt(&key, b"probe", &context).await.is_ok() {
                encrypts.push(micros(started.elapsed()));
            }
        }
        RegionLatency {
            region,
            node,
            node_was_leader,
            writes_committed: writes.len(),
            writes_attempted: WRITES_PER_REGION,
            write_p50_ms: millis(&mut writes),
            encrypts_ok: encrypts.len(),
            encrypts_attempted: ENCRYPTS_PER_REGION,
            encrypt_p50_ms: millis(&mut encrypts),
        }
    }
}
