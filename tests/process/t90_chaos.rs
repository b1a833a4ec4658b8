//! The chaos harness tears everything down when a run is cancelled (what Ctrl-C does): no node
//! process, no listening port, no mount and no temporary directory survives it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tessera_chaos::run::{run, RunConfig};
use tessera_chaos::schedule::FaultKind;
use tessera_chaos::topology::Topology;
use tessera_launcher::{published_addresses, NodeFiles};
use tessera_testkit::process::wait_gone;
use tessera_testkit::{exclusive, wait_for};

use crate::tessera;

/// `(pid, api address)` of every node of the run under `parent`.
fn published(parent: &std::path::Path) -> Vec<(u32, SocketAddr)> {
    let mut out = Vec::new();
    for run in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        for node in std::fs::read_dir(run.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(addresses) = published_addresses(&node.path().data_dir()) {
                out.push((addresses.pid, addresses.api));
            }
        }
    }
    out
}

/// The lines of `/proc/self/mounts` that name a path under `parent`.
fn mounts_under(parent: &std::path::Path) -> Vec<String> {
    let parent = parent.to_string_lossy();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.contains(parent.as_ref()))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_a_cancelled_chaos_run_leaves_no_process_port_or_directory() {
    // A chaos cluster is as heavy as a test cluster: one at a time.
    let _serial = exclusive();
    let parent = tempfile::tempdir().unwrap();
    let mut faults = vec![FaultKind::Partition, FaultKind::Pause];
    // Where it may mount (as root, in CI), every node's data is on a tmpfs of its own.
    let disk = tessera_testkit::disk::mounting_allowed();
    if disk {
        faults.push(FaultKind::Disk);
    }
    let report = tempfile::tempdir().unwrap();
    let config = RunConfig {
        seed: 5,
        duration: Duration::from_secs(120),
        topology: Topology::spread(3),
        wan_delay: Duration::ZERO,
        faults,
        clients: 2,
        keys: 2,
        binary: PathBuf::from(tessera()),
        out: report.path().to_path_buf(),
        inject: Vec::new(),
        lease_ms: Some(800),
        work_parent: Some(parent.path().to_path_buf()),
    };
    let parent_path = parent.path().to_path_buf();
    let running = tokio::spawn(run(config));
    let nodes = wait_for(
        "the chaos cluster to start three nodes",
        Duration::from_secs(120),
        || {
            assert!(
                !running.is_finished(),
                "the run ended before it was cancelled"
            );
            let found = published(&parent_path);
            let listing = format!("{:?}", tessera_testkit::scan::files_under(&parent_path));
            async move {
                if found.len() == 3 {
                    Ok(found)
                } else {
                    Err(format!("{} nodes so far; files: {listing}", found.len()))
                }
            }
        },
    )
    .await;
    let mounts_seen_during_run = mounts_under(&parent_path).len() == 3;
    // Let the workload and the first faults run a little, then cancel like Ctrl-C does.
    tokio::time::sleep(Duration::from_secs(6)).await;
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());

    for (pid, api) in nodes {
        wait_gone(pid, Duration::from_secs(30)).await;
        assert!(
            std::net::TcpStream::connect(api).is_err(),
            "{api} still accepts connections"
        );
    }
    let mounted = mounts_under(parent.path());
    assert!(mounted.is_empty(), "mounts left behind: {mounted:?}");
    if disk {
        assert!(
            mounts_seen_during_run,
            "the data directories were on their own tmpfs"
        );
    }
    let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "temporary directories left behind: {left:?}"
    );
}
