//! Interoperability with an independent implementation: Python's
//! `cryptography` package (OpenSSL underneath).
//!
//! Python unwraps blobs this crate wraps and wraps blobs this crate
//! unwraps, using nothing but the construction documented in
//! `tessera_crypto::wrap` (X25519, HKDF-SHA256, AES-256-GCM). It also
//! verifies our signatures against our SPKI public keys, signs with the
//! PKCS#8 keys `generate_key_pair` returns, and reads our PEM keys.
//!
//! These tests never skip: without `python3` and `cryptography` they fail
//! with a message saying so (CI provides both). Kept as an integration
//! test so the library itself stays free of process spawning.

use std::io::Write;
use std::process::{Command, Stdio};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};
use tessera_crypto::keypair::generate_key_pair;
use tessera_crypto::sign::{self, MessageType, SigningAlgorithm};
use tessera_crypto::wrap::{self, WRAP_V1};
use tessera_crypto::{Error, KeySpec};

/// The Python side. Reads one JSON request on stdin, writes one JSON
/// response on stdout. Binary values are hex.
const SCRIPT: &str = r#"
import json, os, sys
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RAW = serialization.Encoding.Raw
RAW_PUBLIC = serialization.PublicFormat.Raw
h = bytes.fromhex

def wrapping_key(shared, ephemeral_public, recipient_public):
    return HKDF(algorithm=hashes.SHA256(), length=32,
                salt=ephemeral_public + recipient_public,
                info=b"tessera/v1/wrap").derive(shared)

def unwrap(private, aad, blob):
    if blob[0] != 1 or len(blob) < 45 + 16:
        raise ValueError("bad framing")
    header, ephemeral_public, nonce, body = blob[:45], blob[1:33], blob[33:45], blob[45:]
    key = X25519PrivateKey.from_private_bytes(private)
    recipient_public = key.public_key().public_bytes(RAW, RAW_PUBLIC)
    shared = key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    k = wrapping_key(shared, ephemeral_public, recipient_public)
    return AESGCM(k).decrypt(nonce, body, header + aad)

def wrap(recipient, aad, plaintext):
    recipient_public = recipient.public_bytes(RAW, RAW_PUBLIC)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(RAW, RAW_PUBLIC)
    k = wrapping_key(ephemeral.exchange(recipient), ephemeral_public, recipient_public)
    nonce = os.urandom(12)
    header = b"\x01" + ephemeral_public + nonce
    return header + AESGCM(k).encrypt(nonce, plaintext, header + aad)

def ecdsa(algorithm, message_type):
    hash_ = {"ECDSA_SHA_256": hashes.SHA256(), "ECDSA_SHA_384": hashes.SHA384()}[algorithm]
    return ec.ECDSA(utils.Prehashed(hash_) if message_type == "DIGEST" else hash_)

req = json.load(sys.stdin)
op = req["op"]
if op == "keygen":
    key = X25519PrivateKey.generate()
    out = {
        "private": key.private_bytes(RAW, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption()).hex(),
        "public_pem": key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        "public_der": key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex(),
        "public_raw": key.public_key().public_bytes(RAW, RAW_PUBLIC).hex(),
    }
elif op == "unwrap":
    try:
        out = {"plaintext": unwrap(h(req["private"]), h(req["aad"]), h(req["blob"])).hex()}
    except InvalidTag:
        out = {"error": "InvalidTag"}
elif op == "wrap":
    recipient = serialization.load_pem_public_key(req["public_pem"].encode())
    out = {"blob": wrap(recipient, h(req["aad"]), h(req["plaintext"])).hex()}
elif op == "verify":
    key = serialization.load_der_public_key(h(req["spki"]))
    pem_key = serialization.load_pem_public_key(req["pem"].encode())
    assert key == pem_key
    try:
        if req["algorithm"] == "ED25519":
            key.verify(h(req["signature"]), h(req["message"]))
        else:
            key.verify(h(req["signature"]), h(req["message"]),
                       ecdsa(req["algorithm"], req["message_type"]))
        out = {"valid": True}
    except InvalidSignature:
        out = {"valid": False}
elif op == "sign_with_pkcs8":
    key = serialization.load_der_private_key(h(req["pkcs8"]), password=None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if req["algorithm"] == "ED25519":
        signature = key.sign(h(req["message"]))
    else:
        signature = key.sign(h(req["message"]), ecdsa(req["algorithm"], "RAW"))
    out = {"spki": spki.hex(), "signature": signature.hex()}
else:
    raise SystemExit("unknown op " + op)
json.dump(out, sys.stdout)
"#;

/// Helpers that drive [`SCRIPT`]. In a `cfg(test)` module so the test
/// lint allowances (`expect`, `panic`) apply to them as to the tests.
#[cfg(test)]
mod harness {
    use super::*;

    /// Fails (never skips) when Python or `cryptography` is missing.
    pub(super) fn require_python() {
        let output = Command::new("python3")
            .args(["-c", "import cryptography; print(cryptography.__version__)"])
            .output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "the interoperability tests need python3 with the `cryptography` package \
                 (pip install cryptography); `import cryptography` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => panic!(
                "the interoperability tests need python3 with the `cryptography` package; \
                 python3 could not be run: {error}"
            ),
        }
    }

    /// Runs one request through [`SCRIPT`].
    pub(super) fn python(request: Value) -> Value {
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(request.to_string().as_bytes())
            .expect("request written");
        let output = child.wait_with_output().expect("python3 finishes");
        assert!(
            output.status.success(),
            "python3 failed on {request}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("python3 answers JSON")
    }

    pub(super) fn field(value: &Value, name: &str) -> String {
        value[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {value}"))
            .to_owned()
    }
}

use harness::{field, python, require_python};

#[test]
fn python_unwraps_what_we_wrap() {
    require_python();
    let keys = python(json!({"op": "keygen"}));
    let pem = field(&keys, "public_pem");
    let der = hex::decode(field(&keys, "public_der")).unwrap();
    let raw = hex::decode(field(&keys, "public_raw")).unwrap();

    // All three encodings Python writes parse to the same key.
    let recipient = wrap::parse_x25519_public_key(pem.as_bytes()).unwrap();
    assert_eq!(wrap::parse_x25519_public_key(&der).unwrap(), recipient);
    assert_eq!(recipient.as_slice(), raw.as_slice());
    assert_eq!(wrap::x25519_public_key_der(&recipient), der);
    assert_eq!(wrap::x25519_public_key_pem(&recipient), pem);

    let mut rng = ChaCha20Rng::from_seed([41; 32]);
    for (aad, plaintext) in [
        (&b"key-1/v3"[..], &[0x5a_u8; 32][..]),
        (b"", b"x"),
        (b"ECDSA_P384", &[0xc3; 48]),
    ] {
        let blob = wrap::wrap(&recipient, aad, plaintext, &mut rng).unwrap();
        assert_eq!(blob.first(), Some(&WRAP_V1));
        let answer = python(json!({
            "op": "unwrap",
            "private": field(&keys, "private"),
            "aad": hex::encode(aad),
            "blob": hex::encode(&blob),
        }));
        assert_eq!(field(&answer, "plaintext"), hex::encode(plaintext));

        // Python, too, refuses a wrong AAD and a tampered blob.
        let wrong_aad = python(json!({
            "op": "unwrap",
            "private": field(&keys, "private"),
            "aad": hex::encode(b"other"),
            "blob": hex::encode(&blob),
        }));
        assert_eq!(field(&wrong_aad, "error"), "InvalidTag");
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        let tampered = python(json!({
            "op": "unwrap",
            "private": field(&keys, "private"),
            "aad": hex::encode(aad),
            "blob": hex::encode(&tampered),
        }));
        assert_eq!(field(&tampered, "error"), "InvalidTag");
    }
}

#[test]
fn we_unwrap_what_python_wraps() {
    require_python();
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let (secret, public) = wrap::generate_wrapping_key(&mut rng);
    let pem = wrap::x25519_public_key_pem(&public);
    let plaintext = [0x42_u8; 64];
    let answer = python(json!({
        "op": "wrap",
        "public_pem": pem,
        "aad": hex::encode(b"import/key-9"),
        "plaintext": hex::encode(plaintext),
    }));
    let blob = hex::decode(field(&answer, "blob")).unwrap();
    let opened = wrap::unwrap(&secret, b"import/key-9", &blob).unwrap();
    assert_eq!(opened.as_slice(), plaintext);
    assert_eq!(
        wrap::unwrap(&secret, b"import/key-8", &blob),
        Err(Error::Decrypt)
    );
    let (other, _) = wrap::generate_wrapping_key(&mut rng);
    assert_eq!(
        wrap::unwrap(&other, b"import/key-9", &blob),
        Err(Error::Decrypt)
    );
}

#[test]
fn python_verifies_our_signatures() {
    require_python();
    let mut rng = ChaCha20Rng::from_seed([43; 32]);
    let message = b"interoperable message";
    for spec in [KeySpec::Ed25519, KeySpec::EcdsaP256, KeySpec::EcdsaP384] {
        let material = spec.generate_material(&mut rng);
        let spki = sign::public_key_der(spec, material.as_slice()).unwrap();
        let pem = sign::public_key_pem(spec, material.as_slice()).unwrap();
        let algorithm = spec.default_signing_algorithm().unwrap();
        let mut cases = vec![(MessageType::Raw, message.to_vec())];
        match algorithm {
            SigningAlgorithm::EcdsaSha256 => {
                use sha2::Digest;
                cases.push((MessageType::Digest, sha2::Sha256::digest(message).to_vec()));
            }
            SigningAlgorithm::EcdsaSha384 => {
                use sha2::Digest;
                cases.push((MessageType::Digest, sha2::Sha384::digest(message).to_vec()));
            }
            SigningAlgorithm::Ed25519 => {}
        }
        for (message_type, input) in cases {
            let signature =
                sign::sign(spec, material.as_slice(), algorithm, &input, message_type).unwrap();
            let request = |signature: &[u8]| {
                json!({
                    "op": "verify",
                    "spki": hex::encode(&spki),
                    "pem": pem,
                    "algorithm": algorithm.name(),
                    "message": hex::encode(&input),
                    "message_type": message_type.name(),
                    "signature": hex::encode(signature),
                })
            };
            assert_eq!(
                python(request(&signature))["valid"],
                json!(true),
                "{spec} {message_type}"
            );
            // A signature over another message does not verify there.
            let other = match message_type {
                MessageType::Raw => b"another message".to_vec(),
                MessageType::Digest => vec![0x11; input.len()],
            };
            let other_signature =
                sign::sign(spec, material.as_slice(), algorithm, &other, message_type).unwrap();
            assert_eq!(
                python(request(&other_signature))["valid"],
                json!(false),
                "{spec} {message_type}"
            );
        }
    }
}

#[test]
fn python_uses_our_key_pairs_and_we_verify_its_signatures() {
    require_python();
    let mut rng = ChaCha20Rng::from_seed([44; 32]);
    let message = b"signed in python";
    for spec in [KeySpec::Ed25519, KeySpec::EcdsaP256, KeySpec::EcdsaP384] {
        let (private, public) = generate_key_pair(spec, &mut rng).unwrap();
        let algorithm = spec.default_signing_algorithm().unwrap();
        let answer = python(json!({
            "op": "sign_with_pkcs8",
            "pkcs8": hex::encode(private.as_slice()),
            "algorithm": algorithm.name(),
            "message": hex::encode(message),
        }));
        assert_eq!(field(&answer, "spki"), hex::encode(&public), "{spec}");
        let signature = hex::decode(field(&answer, "signature")).unwrap();
        assert_eq!(
            sign::verify(
                spec,
                &public,
                algorithm,
                message,
                MessageType::Raw,
                &signature
            ),
            Ok(true),
            "{spec}"
        );
        assert_eq!(
            sign::verify(
                spec,
                &public,
                algorithm,
                b"other",
                MessageType::Raw,
                &signature
            ),
            Ok(false),
            "{spec}"
        );
    }
}
