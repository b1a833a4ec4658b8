//! Interoperability with independent implementations: data keys from GenerateDataKey work with
//! Python's `cryptography` AES-GCM in both directions, and signatures verify offline with
//! `openssl` against the exported public key.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use tessera_proto::v1 as pb;
use tessera_testkit::{ClusterOptions, TestCluster};

use crate::api::{answer, create, crypto, decrypt_no_context, public_key_request, sign_request};
use crate::{assert_success, tessera};

/// AES-GCM with the associated data "record-7" under a 128- or 256-bit data key (as long as
/// `key` is): seals `msg`, or opens it if `open`.
fn aes_gcm(key: &[u8], nonce: &[u8; 12], msg: &[u8], open: bool) -> Vec<u8> {
    fn with<C: Aead + AeadCore<NonceSize = U12> + KeyInit>(
        key: &[u8],
        nonce: &[u8; 12],
        payload: Payload<'_, '_>,
        open: bool,
    ) -> aes_gcm::aead::Result<Vec<u8>> {
        let cipher = C::new_from_slice(key).unwrap();
        if open {
            cipher.decrypt(nonce.into(), payload)
        } else {
            cipher.encrypt(nonce.into(), payload)
        }
    }
    let payload = Payload {
        msg,
        aad: b"record-7",
    };
    if key.len() == 32 {
        with::<Aes256Gcm>(key, nonce, payload, open)
    } else {
        with::<Aes128Gcm>(key, nonce, payload, open)
    }
    .unwrap()
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed for this test: {e}"))
}

fn python(script: &str, args: &[&str]) -> String {
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    let out = run("python3", &all);
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const PY_ENCRYPT: &str = r#"
import sys, os
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key, aad = bytes.fromhex(sys.argv[1]), b"record-7"
nonce = os.urandom(12)
print((nonce + AESGCM(key).encrypt(nonce, b"written by python", aad)).hex())
"#;

const PY_DECRYPT: &str = r#"
import sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key, blob = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
print(AESGCM(key).decrypt(blob[:12], blob[12:], b"record-7").decode())
"#;

#[tokio::test]
async fn t78_data_keys_interoperate_with_python_and_signatures_with_openssl() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    let node = cluster.follower().await;
    let mut c = crypto(&cluster, node);
    create(&cluster, node, "envelope", "").await;

    for spec in ["AES_256", "AES_128"] {
        let dk = answer(
            c.generate_data_key(pb::GenerateDataKeyRequest {
                key: "envelope".into(),
                data_key_spec: spec.into(),
                context: BTreeMap::new(),
            })
            .await,
        );
        let key_hex = hex::encode(&dk.plaintext);
        // Python encrypts, Rust (aes-gcm) decrypts.
        let blob = hex::decode(python(PY_ENCRYPT, &[&key_hex])).unwrap();
        let (nonce, body) = blob.split_at(12);
        let nonce: &[u8; 12] = nonce.try_into().unwrap();
        let plain = aes_gcm(&dk.plaintext, nonce, body, true);
        assert_eq!(plain, b"written by python");
        // Rust encrypts, Python decrypts.
        let nonce = [9u8; 12];
        let body = aes_gcm(&dk.plaintext, &nonce, b"written by rust", false);
        let blob = [nonce.as_slice(), &body].concat();
        assert_eq!(
            python(PY_DECRYPT, &[&key_hex, &hex::encode(blob)]),
            "written by rust"
        );
        // And the wrapped copy unwraps to the same key on another node.
        let unwrapped = answer(
            crypto(&cluster, cluster.leader().await)
                .decrypt(decrypt_no_context(&dk.ciphertext))
                .await,
        );
        assert_eq!(unwrapped.plaintext, dk.plaintext);
    }

    let dir = tempfile::tempdir().unwrap();
    let message = b"artifact digest 5f1c...".to_vec();
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let msg_path = file("msg.bin", &message);
    let tampered_path = file("tampered.bin", b"artifact digest 5f1d...");
    for (spec, digest) in [
        ("ECDSA_P256", Some("-sha256")),
        ("ECDSA_P384", Some("-sha384")),
        ("ED25519", None),
    ] {
        let name = format!("openssl-{}", spec.to_lowercase().replace('_', "-"));
        create(&cluster, node, &name, spec).await;
        let signature = answer(c.sign(sign_request(&name, &message)).await).signature;
        let public = answer(c.get_public_key(public_key_request(&name)).await);
        let pem = file(&format!("{name}.pem"), public.public_key_pem.as_bytes());
        let sig = file(&format!("{name}.sig"), &signature);
        let verify = |data: &Path| -> bool {
            let (pem, sig, data) = (
                pem.to_str().unwrap(),
                sig.to_str().unwrap(),
                data.to_str().unwrap(),
            );
            let out = match digest {
                Some(d) => run(
                    "openssl",
                    &["dgst", d, "-verify", pem, "-signature", sig, data],
                ),
                None => run(
                    "openssl",
                    &[
                        "pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin", "-in", data,
                        "-sigfile", sig,
                    ],
                ),
            };
            out.status.success()
        };
        assert!(verify(&msg_path), "openssl rejects the {spec} signature");
        assert!(
            !verify(&tampered_path),
            "openssl accepts a {spec} signature over other data"
        );
        // The SDK's offline check agrees, from the DER public key.
        let algorithm = public.signing_algorithms[0].clone();
        assert!(tessera_client::verify_offline(
            &public.public_key,
            spec,
            &algorithm,
            &message,
            false,
            &signature
        )
        .unwrap());
    }
}
