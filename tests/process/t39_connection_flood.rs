//! No client can take a node down by opening connections: 5,000 TCP connections that never
//! send a byte and 500 that stall in the middle of their TLS handshake, held open against one
//! node's API port, leave that node up and serving, its cluster port working and its memory
//! bounded.
//!
//! The nodes start with the soft open-file limit most systems give a process (1024), as in a
//! plain deployment; a node raises it to the hard limit itself.

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tessera_testkit::cluster::WAIT;
use tessera_testkit::{wait_for, ClusterOptions, TestCluster};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::{ctx, tessera};

/// Connections that never send a byte.
const IDLE: usize = 5_000;
/// Connections that send part of a ClientHello and then nothing.
const STALLED: usize = 500;
/// The usual default soft limit on open files.
const USUAL_OPEN_FILES: u64 = 1024;
/// Growth of the node's resident memory the flood may cause (generous: the flood holds no
/// state once refused).
const RSS_GROWTH_BOUND_KIB: u64 = 256 * 1024;

/// Descriptors a node keeps back from API connections (`limits.fd_reserve`, default).
const FD_RESERVE: u64 = 512;

/// A TLS record header announcing a 512-byte ClientHello, and its first bytes.
const PARTIAL_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, // handshake record, TLS 1.0 framing, 512 bytes follow
    0x01, 0x00, 0x01, 0xfc, // ClientHello of 508 bytes
    0x03, 0x03, // legacy version TLS 1.2
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // the first bytes of the random
];

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The number of descriptors process `pid` has open.
fn open_files(pid: u32) -> u64 {
    let count = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    u64::try_from(count).unwrap()
}

/// The soft open-file limit of process `pid`.
fn open_file_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
        .unwrap()
}

/// Opens `count` connections to `target` from the loopback address `source` (so the flood
/// is one host, and the well-behaved client on 127.0.0.1 another), each writing `first`.
/// Returns the connections that were established within a bounded wait.
async fn flood(source: [u8; 4], target: SocketAddr, count: usize, first: &[u8]) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let connects = chunk.iter().map(|_| async {
            let socket = TcpSocket::new_v4().ok()?;
            socket
                .bind(SocketAddr::from((source, 0)))
                .expect("bind a loopback source address");
            let mut stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(target))
                .await
                .ok()?
                .ok()?;
            if !first.is_empty() {
                stream.write_all(first).await.ok()?;
            }
            Some(stream)
        });
        open.extend(
            futures::future::join_all(connects)
                .await
                .into_iter()
                .flatten(),
        );
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t39_a_connection_flood_leaves_the_node_up_and_serving() {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, USUAL_OPEN_FILES.min(hard), hard).unwrap();
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    // The flood needs more descriptors than the default allows this test process.
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();

    let target = cluster.follower().await;
    let other = *cluster.ids().iter().find(|id| **id != target).unwrap();
    let pid = cluster.node(target).process().unwrap().pid();
    let context = ctx(&[("flood", "yes")]);
    let client = cluster.client(target);
    client.create_key("before-flood", "", "").await.unwrap();
    let sealed = client
        .encrypt("before-flood", b"served throughout", &context)
        .await
        .unwrap();
    let rss_before = resident_kib(pid);

    let api: SocketAddr = cluster
        .node(target)
        .api_addr
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let idle = flood([127, 0, 0, 2], api, IDLE, &[]).await;
    let stalled = flood([127, 0, 0, 3], api, STALLED, PARTIAL_CLIENT_HELLO).await;
    let mut most_open = open_files(pid);
    eprintln!(
        "flood: {} of {IDLE} idle and {} of {STALLED} stalled connections established",
        idle.len(),
        stalled.len()
    );

    // With the flood held open: the client connected before it is served…
    let plaintext = wait_for("the existing client to decrypt", WAIT, || async {
        client.decrypt(&sealed.ciphertext, &context).await
    })
    .await;
    assert_eq!(plaintext.plaintext, b"served throughout");
    // …a client connecting now is served…
    let fresh = cluster.client(target);
    wait_for("a new client to encrypt", WAIT, || async {
        fresh.encrypt("before-flood", b"new", &context).await
    })
    .await;
    // …and the cluster stays writable: a key created through another node reaches the
    // flooded node over its cluster port.
    wait_for("a key to be created through another node", WAIT, || async {
        cluster
            .client(other)
            .create_key("during-flood", "", "")
            .await
    })
    .await;
    wait_for("the flooded node to use the new key", WAIT, || async {
        client.encrypt("during-flood", b"x", &context).await
    })
    .await;

    most_open = most_open.max(open_files(pid));
    let limit = open_file_limit(pid);
    eprintln!("node {target}: at most {most_open} of {limit} descriptors open during the flood");
    assert!(
        most_open + FD_RESERVE <= limit,
        "the flood took the node to {most_open} open files of {limit}: the reserve of {FD_RESERVE} for the cluster port is gone"
    );

    let status = client.status().await.unwrap();
    assert!(!status.sealed, "the flooded node must stay up and unsealed");
    let rss_after = resident_kib(pid);
    eprintln!(
        "node {target} resident memory: {rss_before} KiB before, {rss_after} KiB during the flood"
    );
    assert!(
        rss_after < rss_before + RSS_GROWTH_BOUND_KIB,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    drop((idle, stalled));
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
}
