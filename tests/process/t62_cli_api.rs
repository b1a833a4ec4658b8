//! The CLI for the full API: JSON shapes of signing, MACs, data keys, aliases, listing and
//! lifecycle commands, and the exit status of failed verifications.

use base64::Engine;
use tessera_testkit::{ClusterOptions, TestCluster};

use crate::t60_cli::{error_document, Cli};
use crate::tessera;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[tokio::test]
async fn t62_cli_signing_macs_datakeys_aliases_and_lifecycle() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let cli = Cli::for_cluster(&cluster);

    let signer = cli.create_key("cli-signer", &["--spec", "ECDSA_P256"]);
    assert_eq!(signer["usage"], "SIGN_VERIFY");
    let signed = cli.json(&["sign", "--key", "cli-signer", "-o", "json"], b"message");
    assert_eq!(signed["algorithm"], "ECDSA_SHA_256");
    let signature = signed["signature"].as_str().unwrap();
    let verify = [
        "verify",
        "--key",
        "cli-signer",
        "--signature",
        signature,
        "-o",
        "json",
    ];
    let valid = cli.json(&verify, b"message");
    assert_eq!(valid["valid"], true);
    let out = cli.run(&verify, b"other");
    assert_eq!(out.status.code(), Some(1), "an invalid signature exits 1");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["valid"],
        false
    );
    assert_eq!(error_document(&out)["error"]["code"], "INVALID_ARGUMENT");
    let public = cli.json(&["public-key", "cli-signer", "-o", "json"], b"");
    assert!(public["public_key_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(!B64
        .decode(public["public_key"].as_str().unwrap())
        .unwrap()
        .is_empty());

    cli.create_key("cli-mac", &["--spec", "HMAC_SHA512"]);
    let mac = cli.json(&["mac", "--key", "cli-mac", "-o", "json"], b"payload");
    assert_eq!(B64.decode(mac["mac"].as_str().unwrap()).unwrap().len(), 64);
    let verify_mac = [
        "verify-mac",
        "--key",
        "cli-mac",
        "--mac",
        mac["mac"].as_str().unwrap(),
    ];
    let ok = cli.run(&verify_mac, b"payload");
    assert!(ok.status.success());
    let bad = cli.run(&verify_mac, b"payload!");
    assert_eq!(bad.status.code(), Some(1));

    cli.create_key(
        "cli-env",
        &["--tag", "team=pay", "--rotation-period", "90d"],
    );
    let dk = cli.json(&["datakey", "--key", "cli-env", "-o", "json"], b"");
    for field in ["plaintext", "ciphertext", "key_id", "version"] {
        assert!(dk.get(field).is_some(), "datakey lacks {field}: {dk}");
    }
    assert_eq!(
        B64.decode(dk["plaintext"].as_str().unwrap()).unwrap().len(),
        32
    );
    let blind = cli.json(
        &[
            "datakey",
            "--key",
            "cli-env",
            "--no-plaintext",
            "-o",
            "json",
        ],
        b"",
    );
    assert!(blind["plaintext"].is_null());
    let random = cli.json(&["random", "--bytes", "16", "-o", "json"], b"");
    assert_eq!(
        B64.decode(random["random"].as_str().unwrap())
            .unwrap()
            .len(),
        16
    );

    let alias = cli.json(&["alias", "create", "front", "cli-env", "-o", "json"], b"");
    assert_eq!(alias["alias"], "alias/front");
    let listed = cli.json(&["alias", "list", "-o", "json"], b"");
    assert_eq!(listed["aliases"].as_array().unwrap().len(), 1);
    let described = cli.json(&["key", "describe", "alias/front", "-o", "json"], b"");
    assert_eq!(described["name"], "cli-env");
    assert_eq!(described["aliases"][0], "alias/front");
    assert_eq!(described["tags"]["team"], "pay");
    assert_eq!(described["rotation_period"], "90d");
    assert!(described["next_rotation_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    let tagged = cli.json(&["key", "list", "--tag", "team=pay", "-o", "json"], b"");
    assert_eq!(tagged["keys"].as_array().unwrap().len(), 1);
    assert!(tagged["next_page_token"].is_null());
    let page = cli.json(&["key", "list", "--page-size", "1", "-o", "json"], b"");
    assert_eq!(page["keys"].as_array().unwrap().len(), 1);
    assert!(page["next_page_token"].is_string());

    let disabled = cli.json(&["key", "disable", "cli-env", "-o", "json"], b"");
    assert_eq!(disabled["state"], "DISABLED");
    let out = cli.run(&["datakey", "--key", "cli-env", "-o", "json"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(error_document(&out)["error"]["code"], "FAILED_PRECONDITION");
    cli.json(&["key", "enable", "cli-env", "-o", "json"], b"");
    let pending = cli.json(
        &[
            "key",
            "schedule-deletion",
            "cli-env",
            "--days",
            "7",
            "-o",
            "json",
        ],
        b"",
    );
    assert_eq!(pending["state"], "PENDING_DELETION");
    assert!(pending["deletion_date"].as_str().unwrap().ends_with('Z'));
    let restored = cli.json(&["key", "cancel-deletion", "cli-env", "-o", "json"], b"");
    assert_eq!(restored["state"], "DISABLED");
    let rotated = cli.json(&["key", "rotate", "cli-signer", "-o", "json"], b"");
    let versions = cli.json(
        &[
            "key",
            "set-min-decryption-version",
            "cli-signer",
            "2",
            "-o",
            "json",
        ],
        b"",
    );
    assert_eq!(versions["min_decryption_version"], 2);
    assert_eq!(rotated["primary_version"], 2);
    let destroyed = cli.json(
        &["key", "destroy-version", "cli-signer", "1", "-o", "json"],
        b"",
    );
    assert_eq!(destroyed["versions"][0]["state"], "DESTROYED");
    assert!(destroyed["versions"][0]["destroyed_at"].is_string());
    let out = cli.run(
        &["key", "destroy-version", "cli-signer", "2", "-o", "json"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(error_document(&out)["error"]["code"], "FAILED_PRECONDITION");
}
