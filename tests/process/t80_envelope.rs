//! Envelope encryption end to end: the SDK and `tessera encrypt-file`/`decrypt-file` read each
//! other's messages, a 1 GiB stream passes through in bounded memory, and killing the node a
//! client uses surfaces no error.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_client::{Client, RetryPolicy};
use tessera_testkit::{ClusterOptions, TestCluster};

use crate::t60_cli::{error_document, Cli};
use crate::{assert_success, ctx, tessera};

/// Deterministic, non-repeating-looking test data: byte i of a stream.
/// Output options of a command that prints a JSON document.
const JSON: &[&str] = &["-o", "json"];

/// The arguments of a file command: `args`, the file tests' encryption context
/// (`tenant=acme`, `purpose=backup`), then `output`.
fn in_context<'a>(args: &[&'a str], output: &[&'a str]) -> Vec<&'a str> {
    let context = ["--context", "tenant=acme", "--context", "purpose=backup"];
    [args, &context, output].concat()
}

fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = offset + i as u64;
        *b = (x ^ (x >> 8) ^ (x >> 17)).wrapping_mul(31) as u8;
    }
}

fn pattern_vec(len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    pattern(0, &mut v);
    v
}

/// A client of every node, `first` preferred, retrying through a failover.
fn client(cluster: &TestCluster, first: u64) -> Client {
    let pki = cluster.pki();
    Client::builder()
        .endpoints(cluster.endpoints_from(first))
        .ca_cert_file(pki.join("ca.pem"))
        .identity_files(pki.join("admin.pem"), pki.join("admin-key.pem"))
        .retry(RetryPolicy {
            retry_for: Duration::from_secs(30),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap()
}

/// The `tessera` command for `cluster` with `first` as its preferred endpoint.
fn command(cluster: &TestCluster, first: u64, args: &[&str]) -> Command {
    let pki = cluster.pki();
    let addrs = cluster.endpoints_from(first);
    let mut cmd = Command::new(tessera());
    cmd.args(args)
        .env_remove("TESSERA_OUTPUT")
        .env("TESSERA_ADDR", addrs.join(","))
        .env("TESSERA_CA_CERT", pki.join("ca.pem"))
        .env("TESSERA_CLIENT_CERT", pki.join("admin.pem"))
        .env("TESSERA_CLIENT_KEY", pki.join("admin-key.pem"));
    cmd
}

/// Starts `cmd` with its standard input, output and error piped to the test.
fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `cmd` with `input` on stdin, fed from a thread (the command streams: it writes stdout
/// while it still reads stdin), and collects its output.
fn pipe_through(mut cmd: Command, input: Vec<u8>) -> std::process::Output {
    let mut child = spawn_piped(&mut cmd);
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    out
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect()
}

#[tokio::test]
async fn t80_sdk_and_cli_read_each_others_envelope_files() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let sdk = client(&cluster, 1);
    sdk.create_key("files", "", "").await.unwrap();
    let cli = Cli::for_cluster(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let context = ctx(&[("tenant", "acme"), ("purpose", "backup")]);
    let plain = pattern_vec(1024 * 1024 + 7);

    // SDK → CLI.
    let mut message = Vec::new();
    sdk.encrypt_stream("files", &context, &mut plain.as_slice(), &mut message)
        .await
        .unwrap();
    std::fs::write(path("sdk.tsr"), &message).unwrap();
    let summary = cli.json(
        &in_context(
            &[
                "decrypt-file",
                "--in",
                &path("sdk.tsr"),
                "--out",
                &path("sdk.out"),
            ],
            JSON,
        ),
        b"",
    );
    assert_eq!(summary["plaintext_bytes"], plain.len() as u64);
    assert_eq!(summary["frames"], 17);
    assert!(std::fs::read(path("sdk.out")).unwrap() == plain);

    // CLI → SDK, through files and through stdin/stdout.
    std::fs::write(path("plain"), &plain).unwrap();
    let encrypt = [
        "encrypt-file",
        "--key",
        "files",
        "--in",
        &path("plain"),
        "--out",
        &path("cli.tsr"),
    ];
    let summary = cli.json(&in_context(&encrypt, JSON), b"");
    assert_eq!(summary["plaintext_bytes"], plain.len() as u64);
    let from_cli = std::fs::read(path("cli.tsr")).unwrap();
    let mut decrypted = Vec::new();
    sdk.decrypt_stream(&context, &mut from_cli.as_slice(), &mut decrypted)
        .await
        .unwrap();
    assert!(decrypted == plain);
    let encrypt = in_context(&["encrypt-file", "--key", "files"], &[]);
    let piped = pipe_through(command(&cluster, 1, &encrypt), plain.clone());
    assert_success(&piped);
    let decrypt = in_context(&["decrypt-file"], &[]);
    let back = pipe_through(command(&cluster, 1, &decrypt), piped.stdout.clone());
    assert_success(&back);
    assert!(back.stdout == plain);
    assert!(
        sdk.decrypt_envelope(&piped.stdout, &context)
            .await
            .unwrap()
            .as_slice()
            == plain
    );

    // Another context, or one flipped bit: exit 1, a clear error, no output file, no
    // temporary file left behind.
    let wrong = cli.run(
        &[
            "decrypt-file",
            "--in",
            &path("cli.tsr"),
            "--out",
            &path("wrong.out"),
            "--context",
            "tenant=other",
            "--context",
            "purpose=backup",
            "-o",
            "json",
        ],
        b"",
    );
    assert_eq!(wrong.status.code(), Some(1));
    let error = error_document(&wrong);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("encryption context"),
        "{error}"
    );
    let mut tampered = from_cli.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x10;
    std::fs::write(path("tampered.tsr"), &tampered).unwrap();
    let decrypt_file = |input: &str, output: &str| {
        let (input, output) = (path(input), path(output));
        cli.run(
            &in_context(&["decrypt-file", "--in", &input, "--out", &output], &[]),
            b"",
        )
    };
    let bad = decrypt_file("tampered.tsr", "tampered.out");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("does not authenticate"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let truncated = &from_cli[..from_cli.len() - 20];
    std::fs::write(path("truncated.tsr"), truncated).unwrap();
    let cut = decrypt_file("truncated.tsr", "truncated.out");
    assert_eq!(cut.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cut.stderr).contains("truncated"));
    for name in ["wrong.out", "tampered.out", "truncated.out"] {
        assert!(!dir.path().join(name).exists(), "{name} was written");
    }
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    // -o json needs a data file: stdout carries the JSON document.
    let usage = cli.run(&["encrypt-file", "--key", "files", "-o", "json"], b"x");
    assert_eq!(usage.status.code(), Some(2));
}

/// The process's peak resident set size (VmHWM) in KiB, while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Samples the peak RSS of `pid` until `done`; returns the last sample.
fn watch_rss(pid: u32, done: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !done.load(Ordering::SeqCst) {
            if let Some(kib) = peak_rss_kib(pid) {
                peak = peak.max(kib);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    })
}

#[tokio::test]
async fn t81_a_gib_round_trips_through_encrypt_file_and_decrypt_file_in_bounded_memory() {
    const TOTAL: u64 = 1 << 30;
    const LIMIT_KIB: u64 = 64 * 1024;
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    client(&cluster, 1)
        .create_key("stream", "", "")
        .await
        .unwrap();
    let context = ["--context", "run=t81"];
    let encrypt_args = [&["encrypt-file", "--key", "stream"][..], &context].concat();
    let mut encrypt = spawn_piped(&mut command(&cluster, 1, &encrypt_args));
    let mut decrypt = command(&cluster, 1, &[&["decrypt-file"][..], &context].concat())
        .stdin(encrypt.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let encrypt_rss = watch_rss(encrypt.id(), Arc::clone(&done));
    let decrypt_rss = watch_rss(decrypt.id(), Arc::clone(&done));
    let started = Instant::now();
    let mut stdin = encrypt.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = 0;
        while offset < TOTAL {
            pattern(offset, &mut buf);
            stdin.write_all(&buf).unwrap();
            offset += buf.len() as u64;
        }
    });
    let mut out = decrypt.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut expected = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        pattern(offset, &mut expected[..n]);
        assert!(
            buf[..n] == expected[..n],
            "plaintext differs near byte {offset}"
        );
        offset += n as u64;
    }
    let elapsed = started.elapsed();
    feeder.join().unwrap();
    let wait = |child: &mut Child, what: &str| {
        let status = child.wait().unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "{what} failed: {err}");
    };
    done.store(true, Ordering::SeqCst);
    let (enc_peak, dec_peak) = (encrypt_rss.join().unwrap(), decrypt_rss.join().unwrap());
    wait(&mut encrypt, "encrypt-file");
    wait(&mut decrypt, "decrypt-file");
    assert_eq!(offset, TOTAL);
    let mib_s = TOTAL as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64();
    println!(
        "t81: 1 GiB through encrypt-file | decrypt-file (two processes, pipes): {mib_s:.1} MiB/s; \
         peak RSS encrypt-file {} MiB, decrypt-file {} MiB (raw AES-GCM next to the format: \
         tessera-client's throughput_next_to_raw_aes_gcm)",
        enc_peak / 1024,
        dec_peak / 1024
    );
    assert!(enc_peak > 0 && dec_peak > 0, "no RSS samples");
    assert!(enc_peak < LIMIT_KIB, "encrypt-file peak RSS {enc_peak} KiB");
    assert!(dec_peak < LIMIT_KIB, "decrypt-file peak RSS {dec_peak} KiB");
}

#[tokio::test]
async fn t82_killing_the_clients_node_mid_workload_surfaces_no_error() {
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    // The client prefers the leader: killing it also costs an election.
    let victim = cluster.leader().await;
    let sdk = Arc::new(client(&cluster, victim));
    sdk.create_key("workload", "", "").await.unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let workload = {
        let (sdk, done) = (Arc::clone(&sdk), Arc::clone(&done));
        tokio::spawn(async move {
            let context = ctx(&[("app", "t82")]);
            for i in 0..500u64 {
                let record = format!("record {i}").into_bytes();
                let message = sdk.encrypt_envelope("workload", &record, &context).await?;
                let back = sdk.decrypt_envelope(&message, &context).await?;
                assert_eq!(back.as_slice(), record, "record {i}");
                done.store(i + 1, Ordering::SeqCst);
            }
            Ok::<_, tessera_client::Error>(())
        })
    };
    while done.load(Ordering::SeqCst) < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let create = {
        let sdk = Arc::clone(&sdk);
        tokio::spawn(async move { sdk.create_key("made-during-the-kill", "", "").await })
    };
    cluster.kill(victim);
    let killed_at = done.load(Ordering::SeqCst);
    workload
        .await
        .unwrap()
        .expect("no error surfaces to the caller");
    let key = create
        .await
        .unwrap()
        .expect("CreateKey during the kill succeeds");
    let keys = sdk.list_keys().await.unwrap();
    let made: Vec<_> = keys
        .iter()
        .filter(|k| k.name == "made-during-the-kill")
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].key_id, key.key_id);
    assert!(killed_at < 500, "the kill came after the workload ended");
}

#[tokio::test]
async fn t83_killing_the_clis_node_mid_encrypt_file_surfaces_no_error() {
    const TOTAL: usize = 100 * 1024 * 1024;
    let mut cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let victim = cluster.leader().await;
    client(&cluster, victim)
        .create_key("big", "", "")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut plain = vec![0u8; TOTAL];
    pattern(0, &mut plain);
    let sealed = dir.path().join("big.tsr");
    let mut encrypt = spawn_piped(
        command(
            &cluster,
            victim,
            &["encrypt-file", "--key", "big", "--context", "run=t83"],
        )
        .arg("--out")
        .arg(&sealed),
    );
    // The first half goes in, then the node dies, then the rest: the kill falls in the middle
    // of the stream whatever the speed of the machine.
    let mut stdin = encrypt.stdin.take().unwrap();
    let (first, rest) = plain.split_at(TOTAL / 2);
    stdin.write_all(first).unwrap();
    cluster.kill(victim);
    stdin.write_all(rest).unwrap();
    drop(stdin);
    let out = encrypt.wait_with_output().unwrap();
    assert_success(&out);
    assert!(leftovers(dir.path()).is_empty());
    // Decrypt with the killed node still first in the list: the CLI fails over.
    let restored = dir.path().join("restored");
    let out = command(&cluster, victim, &["decrypt-file", "--context", "run=t83"])
        .arg("--in")
        .arg(&sealed)
        .arg("--out")
        .arg(&restored)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(std::fs::read(&restored).unwrap() == plain);
}
