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
