//! The recipes in `deploy/` stay true to the server they deploy: every node configuration
//! parses with the server's own loader, the compose file's services match the configurations
//! they mount, the YAML parses, and the systemd unit passes `systemd-analyze verify` where
//! that tool exists.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tessera_server::config::ServerConfig;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn yaml(path: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_node_configuration_parses_with_the_server_loader() {
    let configs = files_with_extension(&deploy(), "toml");
    assert!(configs.len() >= 6, "{configs:?}");
    for path in configs {
        let config = ServerConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !config.region.is_empty() && config.region != "local",
            "{}: set a real region",
            path.display()
        );
        assert!(!config.zone.is_empty(), "{}: set a zone", path.display());
        assert!(
            !config.init_identities.is_empty(),
            "{}: production configs name their initialisers",
            path.display()
        );
    }
}

#[test]
fn every_yaml_file_parses() {
    let files = files_with_extension(&deploy(), "yaml");
    assert!(!files.is_empty());
    for path in files {
        assert!(!yaml(&path).is_empty(), "{}: no document", path.display());
    }
}

/// The host part of `host:port`.
fn host(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}

#[test]
fn the_compose_services_match_the_configurations_they_mount() {
    let dir = deploy().join("compose");
    let docs = yaml(&dir.join("compose.yaml"));
    let services = docs[0]["services"].as_hash().unwrap();
    let names: BTreeSet<String> = services
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let pki_command = services[&Yaml::String("pki".into())]["command"][0]
        .as_str()
        .unwrap()
        .to_owned();

    let mut regions: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    let mut bootstraps = 0;
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let mounts: Vec<&str> = service["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let Some(config_mount) = mounts
            .iter()
            .find(|m| m.ends_with(":/etc/tessera/tessera.toml:ro"))
        else {
            continue;
        };
        let local = config_mount.split(':').next().unwrap();
        let config = ServerConfig::load(&dir.join(local)).unwrap_or_else(|e| panic!("{e}"));
        assert!(ids.insert(config.node_id), "{name}: node id used twice");
        assert_eq!(service["hostname"].as_str(), Some(name));
        for advertised in [&config.api.advertise, &config.cluster.advertise] {
            assert_eq!(host(advertised.as_deref().unwrap()), name, "{name}");
        }
        assert_eq!(
            config.tls.node_cert,
            PathBuf::from(format!("/pki/node{}.pem", config.node_id)),
            "{name}: its own certificate"
        );
        assert!(
            mounts.contains(&"pki:/pki:ro"),
            "{name}: the PKI, read-only"
        );
        assert!(
            mounts
                .iter()
                .any(|m| m.ends_with(":/var/lib/tessera") && m.starts_with(name)),
            "{name}: a data volume of its own"
        );
        assert_eq!(
            service["labels"]["org.tessera.region"].as_str(),
            Some(config.region.as_str()),
            "{name}"
        );
        for peer in &config.cluster.join {
            assert!(names.contains(host(peer)), "{name} joins unknown {peer}");
        }
        bootstraps += usize::from(config.cluster.bootstrap);
        assert!(
            pki_command.contains(&format!("--san {name} ")),
            "{name}: the PKI step names it: {pki_command}"
        );
        *regions.entry(config.region.clone()).or_default() += 1;
    }
    assert_eq!(bootstraps, 1, "exactly one node bootstraps");
    assert!(
        pki_command.contains(&format!("--nodes {}", ids.len())),
        "{pki_command}"
    );
    let mut layout: Vec<usize> = regions.values().copied().collect();
    layout.sort_unstable();
    assert_eq!(
        layout,
        [1, 2, 2],
        "2 + 2 + 1 over three regions: {regions:?}"
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let source = std::fs::read_to_string(deploy().join("systemd/tessera.service")).unwrap();
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "LimitNOFILE=",
        "LimitMEMLOCK=",
        "LimitCORE=0",
    ] {
        assert!(source.contains(hardening), "{hardening}");
    }
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("systemd-analyze is not installed; unit not verified");
        return;
    }
    // The unit names the installed binary; point it at one that exists here (this test
    // binary: `verify` only checks that the command is executable).
    let me = std::env::current_exe().unwrap();
    let unit = source.replace("/usr/local/bin/tessera", &me.display().to_string());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

/// Runs the StatefulSet's init script with `sh` for pod `ordinal`, its absolute paths moved
/// under `root` (the secret's files are stand-ins), and returns the configuration it wrote.
fn run_init_script(script: &str, template: &Path, root: &Path, ordinal: usize) -> String {
    let dirs = ["template", "tls-all", "tls", "etc/tessera"];
    for dir in dirs {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(template, root.join("template/tessera.toml.template")).unwrap();
    for file in ["ca.pem", "client-ca.pem"]
        .into_iter()
        .map(str::to_owned)
        .chain((1..=3).flat_map(|id| [format!("node{id}.pem"), format!("node{id}-key.pem")]))
    {
        std::fs::write(root.join("tls-all").join(file), "stand-in").unwrap();
    }
    let mut moved = script.to_owned();
    for dir in ["/template/", "/tls-all/", "/tls/", "/etc/tessera/"] {
        moved = moved.replace(dir, &format!("{}{dir}", root.display()));
    }
    let out = std::process::Command::new("sh")
        .args(["-c", &moved])
        .env("POD_NAME", format!("tessera-{ordinal}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(root.join("tls/node.pem").exists());
    std::fs::read_to_string(root.join("etc/tessera/tessera.toml")).unwrap()
}

#[test]
fn the_kubernetes_manifests_fit_together_and_render_valid_node_configurations() {
    let dir = deploy().join("kubernetes");
    let statefulset = &yaml(&dir.join("statefulset.yaml"))[0];
    let spec = &statefulset["spec"];
    let replicas = usize::try_from(spec["replicas"].as_i64().unwrap()).unwrap();
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(spec["selector"]["matchLabels"], *labels);

    // The init script substitutes exactly the placeholders the template has.
    let script = spec["template"]["spec"]["initContainers"][0]["args"][0]
        .as_str()
        .unwrap();
    let template = dir.join("tessera.toml.template");
    let container = &spec["template"]["spec"]["containers"][0];
    let port = |name: &str| {
        container["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("no port {name}"))
    };
    let mut ids = BTreeSet::new();
    for ordinal in 0..replicas {
        let root = tempfile::tempdir().unwrap();
        let text = run_init_script(script, &template, root.path(), ordinal);
        assert!(!text.contains('@'), "unreplaced placeholder:\n{text}");
        let config = ServerConfig::parse(&text, Path::new("/etc/tessera/tessera.toml"))
            .unwrap_or_else(|e| panic!("pod {ordinal}: {e}"));
        assert!(ids.insert(config.node_id));
        assert_eq!(config.cluster.bootstrap, ordinal == 0);
        assert_eq!(config.api.listen.port(), port("api"));
        assert_eq!(config.cluster.listen.port(), port("cluster"));
        assert_eq!(config.ops.as_ref().unwrap().listen.port(), port("ops"));
        assert_eq!(
            config.api.advertise.as_deref(),
            Some(format!("tessera-{ordinal}.tessera-peer:7401").as_str())
        );
    }
    // Readiness is the node's own /ready (unsealed, lease, caught up); liveness /health.
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/ready")
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/health")
    );

    // The secret holds every pod's certificate; the services and the budget select the pods.
    let kustomization = &yaml(&dir.join("kustomization.yaml"))[0];
    let secret_files = format!("{:?}", kustomization["secretGenerator"][0]["files"]);
    for id in 1..=replicas {
        for file in [format!("pki/node{id}.pem"), format!("pki/node{id}-key.pem")] {
            assert!(secret_files.contains(&file), "secret lacks {file}");
        }
    }
    assert!(
        !secret_files.contains("ca-key"),
        "CA keys stay out of the cluster"
    );
    let services = yaml(&dir.join("services.yaml"));
    let headless = services
        .iter()
        .find(|s| s["metadata"]["name"].as_str() == spec["serviceName"].as_str())
        .unwrap();
    assert_eq!(headless["spec"]["clusterIP"].as_str(), Some("None"));
    assert_eq!(
        headless["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true)
    );
    for service in &services {
        for (key, value) in service["spec"]["selector"].as_hash().unwrap() {
            assert_eq!(labels[key.as_str().unwrap()], *value);
        }
    }
    let budget = &yaml(&dir.join("poddisruptionbudget.yaml"))[0];
    assert_eq!(budget["spec"]["selector"]["matchLabels"], *labels);
    assert_eq!(budget["spec"]["maxUnavailable"].as_i64(), Some(1));
}
