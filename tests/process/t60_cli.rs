//! The `tessera` command-line contract: JSON documents, exit codes, error documents, and the
//! one-command dev cluster.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tessera_testkit::ports::dev_base_port;
use tessera_testkit::process::{alive, wait_gone};
use tessera_testkit::{exclusive, wait_for, ClusterOptions, TestCluster};

use crate::{assert_success, tessera};

pub struct Cli {
    env: Vec<(String, String)>,
}

impl Cli {
    pub fn for_cluster(cluster: &TestCluster) -> Self {
        Self::for_cluster_as(cluster, "admin")
    }

    /// The CLI with the client certificate `pki/<identity>.pem`.
    pub fn for_cluster_as(cluster: &TestCluster, identity: &str) -> Self {
        let pki = cluster.pki();
        let addrs: Vec<String> = cluster.nodes.iter().map(|n| n.api_addr.clone()).collect();
        Self::with_env(&addrs.join(","), &pki, identity)
    }

    fn with_env(addr: &str, pki: &Path, identity: &str) -> Self {
        Self {
            env: vec![
                ("TESSERA_ADDR".into(), addr.to_owned()),
                (
                    "TESSERA_CA_CERT".into(),
                    pki.join("ca.pem").display().to_string(),
                ),
                (
                    "TESSERA_CLIENT_CERT".into(),
                    pki.join(format!("{identity}.pem")).display().to_string(),
                ),
                (
                    "TESSERA_CLIENT_KEY".into(),
                    pki.join(format!("{identity}-key.pem"))
                        .display()
                        .to_string(),
                ),
            ],
        }
    }

    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(tessera())
            .args(args)
            .env_remove("TESSERA_OUTPUT")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn json(&self, args: &[&str], stdin: &[u8]) -> Value {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed no single JSON document ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `tessera key create --name NAME OPTIONS… -o json`, which must succeed: the new key.
    pub fn create_key(&self, name: &str, options: &[&str]) -> Value {
        let mut args = vec!["key", "create", "--name", name];
        args.extend_from_slice(options);
        args.extend(["-o", "json"]);
        self.json(&args, b"")
    }
}

/// Asserts that an error document names the gRPC code `code` and a message holding `fragment`.
#[track_caller]
pub fn assert_error(doc: &Value, code: &str, fragment: &str) {
    assert_eq!(doc["error"]["code"], code, "{doc}");
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(fragment), "{doc}");
}

pub fn error_document(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON error in {stderr}"));
    serde_json::from_str(line).unwrap()
}

#[tokio::test]
async fn t60_json_documents_exit_codes_and_errors() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let cli = Cli::for_cluster(&cluster);

    let key = cli.create_key("cli-key", &["--description", "d"]);
    for field in [
        "key_id",
        "name",
        "spec",
        "usage",
        "state",
        "primary_version",
        "versions",
        "aliases",
        "created_at",
    ] {
        assert!(key.get(field).is_some(), "key JSON lacks {field}: {key}");
    }
    assert_eq!(key["name"], "cli-key");
    assert_eq!(key["versions"][0]["version"], 1);
    assert!(key["versions"][0]["created_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    let described = cli.json(&["key", "describe", "cli-key", "-o", "json"], b"");
    assert_eq!(described["key_id"], key["key_id"]);
    let rotated = cli.json(&["key", "rotate", "cli-key", "-o", "json"], b"");
    assert_eq!(rotated["primary_version"], 2);
    let list = cli.json(&["key", "list", "-o", "json"], b"");
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);

    // encrypt (text: base64) → decrypt (text: raw bytes).
    let out = cli.run(
        &["encrypt", "--key", "cli-key", "--context", "a=1"],
        b"secret bytes\n",
    );
    assert_success(&out);
    let ciphertext = String::from_utf8(out.stdout).unwrap();
    let out = cli.run(&["decrypt", "--context", "a=1"], ciphertext.as_bytes());
    assert_success(&out);
    assert_eq!(out.stdout, b"secret bytes\n");

    let enc = cli.json(
        &[
            "encrypt",
            "--key",
            "cli-key",
            "-o",
            "json",
            "--context",
            "a=1",
        ],
        b"json",
    );
    assert_eq!(enc["version"], 2);
    assert_eq!(enc["key_id"], key["key_id"]);
    let dec = cli.json(
        &["decrypt", "-o", "json", "--context", "a=1"],
        enc["ciphertext"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(dec["plaintext"], "anNvbg==");
    assert_eq!(dec["version"], 2);

    // A refused request: exit 1, message on stderr, JSON error document, nothing on stdout.
    let out = cli.run(
        &["decrypt", "-o", "json", "--context", "a=2"],
        enc["ciphertext"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let doc = error_document(&out);
    assert_eq!(doc["error"]["code"], "INVALID_ARGUMENT");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("encryption context"));
    let out = cli.run(&["key", "describe", "missing", "-o", "json"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(error_document(&out)["error"]["code"], "NOT_FOUND");

    // Bad usage: exit 2.
    assert_eq!(cli.run(&["key", "create"], b"").status.code(), Some(2));
    assert_eq!(
        cli.run(
            &["encrypt", "--key", "cli-key", "--context", "novalue"],
            b"x"
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        cli.run(&["decrypt"], b"%%% not base64").status.code(),
        Some(2)
    );
    assert_eq!(cli.run(&["frobnicate"], b"").status.code(), Some(2));

    // Operator documents.
    let status = cli.json(&["operator", "status", "-o", "json"], b"");
    for field in [
        "node_id",
        "initialized",
        "sealed",
        "role",
        "leader_id",
        "term",
        "applied_index",
        "region",
        "members",
    ] {
        assert!(
            status.get(field).is_some(),
            "status JSON lacks {field}: {status}"
        );
    }
    assert_eq!(status["members"].as_array().unwrap().len(), 3);
    for field in ["node_id", "api_addr", "region", "role"] {
        assert!(
            status["members"][0].get(field).is_some(),
            "member lacks {field}"
        );
    }
    let unseal = cli.json(
        &["operator", "unseal", "-o", "json", &cluster.shares()[0]],
        b"",
    );
    assert_eq!(
        unseal,
        serde_json::json!({"sealed": false, "progress": 0, "threshold": 3})
    );

    // An unreachable node: exit 1 with UNAVAILABLE.
    let dead = Cli::with_env("https://127.0.0.1:1", &cluster.pki(), "admin");
    let out = dead.run(&["operator", "status", "-o", "json"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(error_document(&out)["error"]["code"], "UNAVAILABLE");
}

/// `tessera dev` with `nodes` nodes over `regions` regions in `dir` from `base_port`, printing
/// its summary as JSON on a piped standard output.
fn spawn_dev(
    dir: &Path,
    (nodes, regions): (u64, u64),
    base_port: u16,
    stderr: Stdio,
) -> std::process::Child {
    Command::new(tessera())
        .args([
            "dev",
            "--nodes",
            &nodes.to_string(),
            "--regions",
            &regions.to_string(),
            "-o",
            "json",
            "--base-port",
        ])
        .arg(base_port.to_string())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn t61_dev_starts_a_three_node_cluster_and_stops_it_on_sigterm() {
    // Shares the cluster lock: a dev cluster is as heavy as a test cluster.
    let _serial = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let refused = Command::new(tessera())
        .args(["dev", "--nodes", "2", "--regions", "3", "--dir"])
        .arg(dir.path().join("too-many-regions"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--regions 3 needs"),
        "{refused:?}"
    );
    let base = dev_base_port(3);
    let mut dev = spawn_dev(&dir.path().join("dev"), (3, 3), base, Stdio::piped());
    // Every stderr line, drained so that dev never blocks on a full pipe.
    let (err_tx, err_rx) = std::sync::mpsc::channel::<String>();
    let stderr = dev.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = dev.stdout.take().unwrap();
    let mut dev = KillOnDrop(dev);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("dev printed its summary");
    let summary: Value = serde_json::from_str(&line).unwrap();
    let nodes = summary["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    // Every node has an ops port in the layout (base + 200 + i - 1) serving /metrics.
    for (i, node) in nodes.iter().enumerate() {
        let ops = node["ops_addr"].as_str().unwrap();
        assert_eq!(ops, format!("http://127.0.0.1:{}", base + 200 + i as u16));
        let addr = ops.strip_prefix("http://").unwrap().parse().unwrap();
        let scrape = crate::t55_ops::scrape(addr).await;
        assert!(
            scrape
                .samples
                .iter()
                .any(|s| s.metric.starts_with("tessera_")),
            "no Tessera metric on {ops}"
        );
    }

    let dev_dir = dir.path().join("dev");
    let env = std::fs::read_to_string(dev_dir.join("env.sh")).unwrap();
    let get = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap()
            .to_owned()
    };
    // --regions 3: one node per region, labelled in the nodes and in env.sh's endpoints.
    let addrs = get("TESSERA_ADDR");
    let labelled: Vec<&str> = addrs.split(',').collect();
    assert_eq!(labelled.len(), 3);
    for (i, node) in nodes.iter().enumerate() {
        let region = format!("region-{}", i + 1);
        assert_eq!(node["region"], region.as_str(), "{summary}");
        assert!(
            labelled[i].starts_with(&format!("{region}=https://")),
            "{addrs}"
        );
    }
    let cli = Cli {
        env: [
            "TESSERA_ADDR",
            "TESSERA_CA_CERT",
            "TESSERA_CLIENT_CERT",
            "TESSERA_CLIENT_KEY",
        ]
        .iter()
        .map(|k| ((*k).to_owned(), get(k)))
        .collect(),
    };
    let shares: Value =
        serde_json::from_slice(&std::fs::read(dev_dir.join("shares.json")).unwrap()).unwrap();
    assert_eq!(shares["shares"].as_array().unwrap().len(), 5);
    assert_eq!(shares["threshold"], 3);
    cli.create_key("dev-key", &[]);
    // Each node reports the region it was given, as `operator status` asks every endpoint.
    let status = cli.json(&["operator", "status", "-o", "json"], b"");
    let endpoints = status["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 3, "{status}");
    for (i, e) in endpoints.iter().enumerate() {
        assert_eq!(e["region"], format!("region-{}", i + 1), "{status}");
        assert_eq!(e["node_region"], e["region"], "{status}");
    }

    // The walkthrough's access control: env.sh names the unprivileged app certificate, and
    // the example policy lets it encrypt with `demo`.
    assert_eq!(summary["app"]["identity"], "app", "{summary}");
    let example = summary["app"]["example_policy"].as_str().unwrap();
    cli.create_key("demo", &[]);
    cli.json(&["policy", "put", "app-demo", example, "-o", "json"], b"");
    let app = Cli {
        env: cli
            .env
            .iter()
            .map(|(k, v)| match k.as_str() {
                "TESSERA_CLIENT_CERT" => (k.clone(), get("TESSERA_APP_CERT")),
                "TESSERA_CLIENT_KEY" => (k.clone(), get("TESSERA_APP_KEY")),
                _ => (k.clone(), v.clone()),
            })
            .collect(),
    };
    assert_eq!(app.json(&["whoami", "-o", "json"], b"")["identity"], "app");
    wait_for(
        "app to encrypt under the example policy",
        Duration::from_secs(30),
        || {
            let out = app.run(&["encrypt", "--key", "demo"], b"hi");
            async move {
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).into_owned())
                }
            }
        },
    )
    .await;
    let out = app.run(&["encrypt", "--key", "dev-key", "-o", "json"], b"hi");
    assert_eq!(error_document(&out)["error"]["code"], "PERMISSION_DENIED");
    let pids: Vec<u32> = (1..=3)
        .map(|i| {
            std::fs::read_to_string(dev_dir.join(format!("node{i}.pid")))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    for id in 1..=3 {
        let status = cli.json(
            &[
                "operator",
                "status",
                "-o",
                "json",
                "--addr",
                &format!("https://127.0.0.1:{}", base + id - 1),
            ],
            b"",
        );
        assert_eq!(status["sealed"], false);
    }

    // A node that dies is reported, with its log and how to start it again.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[2] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let report = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = err_rx
            .recv_timeout(left)
            .expect("tessera dev reports the killed node");
        if line.contains("node 3 exited") {
            break line;
        }
    };
    assert!(report.contains("node3/server.log"), "{report}");
    assert!(report.contains("tessera server --config"), "{report}");
    assert!(!dev_dir.join("node3.pid").exists(), "its pid file is gone");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dev.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let exited = wait_for(
        "tessera dev to exit after SIGTERM",
        Duration::from_secs(60),
        || {
            let status = dev.0.try_wait();
            async move {
                match status {
                    Ok(Some(status)) => Ok(status),
                    _ => Err("still running"),
                }
            }
        },
    )
    .await;
    assert!(exited.success());
    for pid in pids {
        assert!(!alive(pid), "node process {pid} outlived tessera dev");
    }
}

#[tokio::test]
async fn t63_nodes_exit_when_tessera_dev_is_killed_outright() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let mut dev = spawn_dev(
        &dir.path().join("dev"),
        (2, 1),
        dev_base_port(2),
        Stdio::null(),
    );
    let stdout = dev.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(120));
    let pids: Vec<u32> = (1..=2)
        .filter_map(|i| std::fs::read_to_string(dir.path().join(format!("dev/node{i}.pid"))).ok())
        .map(|p| p.trim().parse().unwrap())
        .collect();
    // SIGKILL: no destructor, no signal handler runs in `tessera dev`.
    dev.kill().unwrap();
    dev.wait().unwrap();
    assert!(line.is_ok(), "dev did not come up");
    assert_eq!(pids.len(), 2);
    for pid in pids {
        wait_gone(pid, Duration::from_secs(60)).await;
    }
}
