//! The access-control commands of the `tessera` CLI against a real cluster: `whoami`,
//! `policy put|get|list|delete|check` with JSON and TOML files, `grant create|list|revoke`,
//! `cert revoke|list-revoked`, their `-o json` documents and exit statuses.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tessera_testkit::{wait_for, ClusterOptions, TestCluster};

use crate::t60_cli::{error_document, Cli};
use crate::{assert_success, tessera};

/// How long a revoked certificate may still be served: one lease window and the time for the
/// entry to apply everywhere, generously bounded for a loaded machine.
const REVOCATION_WINDOW: Duration = Duration::from_secs(30);

const APP_POLICY_JSON: &str = r#"{ "statements": [ {
    "sid": "app-encrypts",
    "effect": "allow",
    "identities": ["app"],
    "actions": ["kms:Encrypt"],
    "keys": ["demo"]
} ] }"#;

const OPS_POLICY_TOML: &str = r#"
[[statements]]
sid = "ops-no-decrypt"
effect = "deny"
identities = ["ops-*"]
actions = ["kms:Decrypt"]
keys = ["*"]
"#;

/// The second statement names an action that does not exist.
const BAD_POLICY_JSON: &str = r#"{ "statements": [
    { "effect": "allow", "identities": ["app"], "actions": ["kms:Encrypt"], "keys": ["demo"] },
    { "effect": "allow", "identities": ["app"], "actions": ["kms:Encrypy"], "keys": ["demo"] }
] }"#;

/// Issues `pki/<identity>.pem` unless the PKI already holds it.
fn client_certificate(cluster: &TestCluster, identity: &str) {
    let pki = cluster.pki();
    if pki.join(format!("{identity}.pem")).exists() {
        return;
    }
    let out = Command::new(tessera())
        .args(["pki", "issue-client", "--name", identity, "--dir"])
        .arg(&pki)
        .output()
        .unwrap();
    assert_success(&out);
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs a command that must be refused: exit 1, nothing on stdout, and the error document.
fn refused(cli: &Cli, args: &[&str]) -> Value {
    let out = cli.run(args, b"");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    error_document(&out)
}

fn names(list: &Value, field: &str, name_field: &str) -> Vec<String> {
    list[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[name_field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn t64_cli_access_policies_grants_and_revocation() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let admin = Cli::for_cluster(&cluster);
    let files = tempfile::tempdir().unwrap();

    // whoami: the initialiser is the admin.
    let me = admin.json(&["whoami", "-o", "json"], b"");
    assert_eq!(me["identity"], "admin", "{me}");
    assert_eq!(me["admin"], true, "{me}");
    assert_eq!(me["fingerprint_sha256"].as_str().unwrap().len(), 64, "{me}");
    assert!(!me["serial"].as_str().unwrap().is_empty(), "{me}");

    admin.create_key("demo", &[]);

    // policy put from a JSON and a TOML file; a second put bumps the version.
    let app_json = write(files.path(), "app.json", APP_POLICY_JSON);
    let ops_toml = write(files.path(), "ops.toml", OPS_POLICY_TOML);
    let put = admin.json(&["policy", "put", "app", &app_json, "-o", "json"], b"");
    assert_eq!(put, serde_json::json!({"name": "app", "version": 1}));
    let put = admin.json(&["policy", "put", "ops", &ops_toml, "-o", "json"], b"");
    assert_eq!(put["version"], 1);

    let got = admin.json(&["policy", "get", "ops", "-o", "json"], b"");
    assert_eq!(got["name"], "ops");
    let statement = &got["document"]["statements"][0];
    assert_eq!(statement["sid"], "ops-no-decrypt", "{got}");
    assert_eq!(statement["effect"], "deny", "{got}");

    // The text of `policy get` is a document `policy put` takes back (format detected).
    let out = admin.run(&["policy", "get", "ops"], b"");
    assert!(out.status.success());
    let again = write(
        files.path(),
        "ops-again",
        &String::from_utf8(out.stdout).unwrap(),
    );
    let put = admin.json(&["policy", "put", "ops", &again, "-o", "json"], b"");
    assert_eq!(put["version"], 2);

    let list = admin.json(&["policy", "list", "-o", "json"], b"");
    let listed = names(&list, "policies", "name");
    assert!(
        listed.contains(&"app".to_owned()) && listed.contains(&"ops".to_owned()),
        "{list}"
    );

    // A malformed document: refused with the offending statement named, exit 1.
    let bad = write(files.path(), "bad.json", BAD_POLICY_JSON);
    let doc = refused(&admin, &["policy", "put", "broken", &bad, "-o", "json"]);
    assert_eq!(doc["error"]["code"], "INVALID_ARGUMENT", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("statements[1]"), "{message}");
    assert!(message.contains("kms:Encrypy"), "{message}");
    // An unreadable file is bad usage.
    let out = admin.run(&["policy", "put", "x", "/nonexistent/p.json"], b"");
    assert_eq!(out.status.code(), Some(2));

    // policy check explains the decision.
    let check = |action: &str| {
        admin.json(
            &[
                "policy",
                "check",
                "--identity",
                "app",
                "--action",
                action,
                "--key",
                "demo",
                "-o",
                "json",
            ],
            b"",
        )
    };
    let allowed = check("kms:Encrypt");
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert!(
        allowed["decided_by"].as_str().unwrap().contains("app"),
        "{allowed}"
    );
    assert_eq!(check("kms:Decrypt")["allowed"], false);

    // The unprivileged identity: its policy lets it encrypt with demo and nothing more.
    client_certificate(&cluster, "app");
    let app = Cli::for_cluster_as(&cluster, "app");
    let app_me = app.json(&["whoami", "-o", "json"], b"");
    assert_eq!(app_me["identity"], "app", "{app_me}");
    assert_eq!(app_me["admin"], false, "{app_me}");
    assert_eq!(app_me["policies"], serde_json::json!(["app"]), "{app_me}");
    let out = app.run(
        &["encrypt", "--key", "demo", "--context", "tenant=a"],
        b"hi",
    );
    assert_success(&out);
    let ciphertext = out.stdout;
    let out = app.run(
        &["decrypt", "--context", "tenant=a", "-o", "json"],
        &ciphertext,
    );
    assert_eq!(out.status.code(), Some(1));
    let doc = error_document(&out);
    assert_eq!(doc["error"]["code"], "PERMISSION_DENIED", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("kms:Decrypt"), "{message}");
    let doc = refused(&app, &["policy", "list", "-o", "json"]);
    assert_eq!(doc["error"]["code"], "PERMISSION_DENIED", "{doc}");

    // policy delete.
    let deleted = admin.json(&["policy", "delete", "ops", "-o", "json"], b"");
    assert_eq!(deleted, serde_json::json!({"name": "ops"}));
    let doc = refused(&admin, &["policy", "get", "ops", "-o", "json"]);
    assert_eq!(doc["error"]["code"], "NOT_FOUND", "{doc}");
    let list = admin.json(&["policy", "list", "-o", "json"], b"");
    assert!(
        !names(&list, "policies", "name").contains(&"ops".to_owned()),
        "{list}"
    );

    // grant create, list, revoke.
    let grant = admin.json(
        &[
            "grant",
            "create",
            "--key",
            "demo",
            "--grantee",
            "app",
            "--operations",
            "kms:Decrypt",
            "--context",
            "tenant=a",
            "--expires",
            "1h",
            "-o",
            "json",
        ],
        b"",
    );
    let grant_id = grant["grant_id"].as_str().unwrap().to_owned();
    assert_eq!(grant["grantee"], "app", "{grant}");
    assert_eq!(grant["operations"], serde_json::json!(["kms:Decrypt"]));
    assert_eq!(grant["context"], serde_json::json!({"tenant": "a"}));
    assert!(
        grant["expires_at"].as_str().unwrap().ends_with('Z'),
        "{grant}"
    );
    assert_eq!(grant["created_by"], "admin");
    let list = admin.json(&["grant", "list", "--key", "demo", "-o", "json"], b"");
    assert_eq!(
        names(&list, "grants", "grant_id"),
        std::slice::from_ref(&grant_id)
    );
    // The grant lets app decrypt under its context.
    wait_for("the grant to apply", REVOCATION_WINDOW, || {
        let out = app.run(&["decrypt", "--context", "tenant=a"], &ciphertext);
        async move {
            if out.stdout == b"hi" {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        }
    })
    .await;
    let revoked = admin.json(&["grant", "revoke", &grant_id, "-o", "json"], b"");
    assert_eq!(revoked["grant_id"], grant_id.as_str());
    let list = admin.json(&["grant", "list", "-o", "json"], b"");
    assert!(names(&list, "grants", "grant_id").is_empty(), "{list}");
    let doc = refused(&admin, &["grant", "revoke", &grant_id, "-o", "json"]);
    assert_eq!(doc["error"]["code"], "NOT_FOUND", "{doc}");

    // cert revoke by fingerprint (app's, from its whoami) and by serial (another client's).
    let fingerprint = app_me["fingerprint_sha256"].as_str().unwrap().to_owned();
    let entry = admin.json(
        &[
            "cert",
            "revoke",
            "--fingerprint",
            &fingerprint,
            "-o",
            "json",
        ],
        b"",
    );
    assert_eq!(entry["entry"], format!("sha256/{fingerprint}"));
    client_certificate(&cluster, "retired");
    let retired = Cli::for_cluster_as(&cluster, "retired").json(&["whoami", "-o", "json"], b"");
    let serial = retired["serial"].as_str().unwrap().to_owned();
    let entry = admin.json(&["cert", "revoke", "--serial", &serial, "-o", "json"], b"");
    let serial_entry = entry["entry"].as_str().unwrap().to_owned();
    assert!(serial_entry.starts_with("serial/"), "{entry}");
    let list = admin.json(&["cert", "list-revoked", "-o", "json"], b"");
    let entries = names(&list, "certificates", "entry");
    assert!(
        entries.contains(&format!("sha256/{fingerprint}")) && entries.contains(&serial_entry),
        "{list}"
    );
    // The revoked certificate is refused; the admin is not.
    wait_for("app's certificate to be refused", REVOCATION_WINDOW, || {
        let out = app.run(&["whoami", "-o", "json"], b"");
        async move {
            if out.status.code() == Some(1) {
                Ok(())
            } else {
                Err(format!("whoami as app still answers: {out:?}"))
            }
        }
    })
    .await;
    assert_eq!(
        admin.json(&["whoami", "-o", "json"], b"")["identity"],
        "admin"
    );
    // Bad usage: neither or both of --serial and --fingerprint.
    assert_eq!(admin.run(&["cert", "revoke"], b"").status.code(), Some(2));
}
