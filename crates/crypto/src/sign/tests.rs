use super::*;
use crate::test_util::assert_message_rules;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::signature::{
    UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
    ED25519,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

const ASYMMETRIC: [KeySpec; 3] = [KeySpec::Ed25519, KeySpec::EcdsaP256, KeySpec::EcdsaP384];

fn material(spec: KeySpec, seed: u8) -> crate::SecretBytes {
    spec.generate_material(&mut ChaCha20Rng::from_seed([seed; 32]))
}

/// Each asymmetric spec with key material made from `seed` and its public key (SPKI DER).
fn asymmetric_keys(seed: u8) -> impl Iterator<Item = (KeySpec, crate::SecretBytes, Vec<u8>)> {
    ASYMMETRIC.into_iter().map(move |spec| {
        let key = material(spec, seed);
        let spki = public_key_der(spec, key.as_slice()).unwrap();
        (spec, key, spki)
    })
}

fn algorithm(spec: KeySpec) -> SigningAlgorithm {
    spec.default_signing_algorithm().unwrap()
}

/// Signs a raw `message` with the spec's default algorithm.
fn sign_raw(spec: KeySpec, material: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
    sign(spec, material, algorithm(spec), message, MessageType::Raw)
}

/// Verifies a signature over a raw `message` with the spec's default algorithm.
fn verify_raw(
    spec: KeySpec,
    spki_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, Error> {
    verify(
        spec,
        spki_der,
        algorithm(spec),
        message,
        MessageType::Raw,
        signature,
    )
}

fn ring_algorithm(spec: KeySpec) -> &'static dyn VerificationAlgorithm {
    match spec {
        KeySpec::Ed25519 => &ED25519,
        KeySpec::EcdsaP256 => &ECDSA_P256_SHA256_ASN1,
        KeySpec::EcdsaP384 => &ECDSA_P384_SHA384_ASN1,
        _ => unreachable!("not a signing spec"),
    }
}

/// The raw public key inside a SubjectPublicKeyInfo (the 32-byte
/// Ed25519 key, or the uncompressed SEC1 point), as ring wants it.
fn raw_public_key(spki_der: &[u8]) -> Vec<u8> {
    use spki::der::Decode;
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki_der).unwrap();
    info.subject_public_key.raw_bytes().to_vec()
}

fn ring_verifies(spec: KeySpec, spki_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(ring_algorithm(spec), raw_public_key(spki_der))
        .verify(message, signature)
        .is_ok()
}

/// A file of published test vectors: the document they come from, and the cases.
#[derive(Deserialize)]
struct Vectors<C> {
    source: String,
    cases: Vec<C>,
}

/// The cases of a vector file, after checking it is the file meant: from `source`, with
/// `count` cases.
fn load_cases<C: DeserializeOwned>(json: &str, source: &str, count: usize) -> Vec<C> {
    let vectors: Vectors<C> = serde_json::from_str(json).unwrap();
    assert!(vectors.source.contains(source), "{}", vectors.source);
    assert_eq!(vectors.cases.len(), count);
    vectors.cases
}

/// One case of the RFC 8032 file, as `rfc8032_ed25519_vectors` reads it.
#[derive(Deserialize)]
struct Ed25519Case {
    name: String,
    secret_key: String,
    public_key: String,
    message: String,
    signature: String,
}

#[test]
fn rfc8032_ed25519_vectors() {
    let json = include_str!("../../tests/data/rfc8032_ed25519.json");
    for case in load_cases::<Ed25519Case>(json, "RFC 8032", 3) {
        let seed = hex::decode(&case.secret_key).unwrap();
        let message = hex::decode(&case.message).unwrap();
        let spki = public_key_der(KeySpec::Ed25519, &seed).unwrap();
        assert_eq!(
            hex::encode(raw_public_key(&spki)),
            case.public_key,
            "{}",
            case.name
        );

        let signature = sign_checked(
            KeySpec::Ed25519,
            &seed,
            SigningAlgorithm::Ed25519,
            &message,
            MessageType::Raw,
        )
        .unwrap();
        assert_eq!(hex::encode(&signature), case.signature, "{}", case.name);
        assert!(ring_verifies(KeySpec::Ed25519, &spki, &message, &signature));
        let verified = verify_checked(
            &spki,
            SigningAlgorithm::Ed25519,
            &message,
            MessageType::Raw,
            &signature,
        );
        assert_eq!(verified, Ok(true), "{}", case.name);

        let public = sign_raw(KeySpec::Ed25519, &seed, &message);
        if message.is_empty() {
            // TEST 1 signs the empty message, which the API refuses.
            assert_eq!(public, Err(Error::EmptyMessage));
        } else {
            assert_eq!(public, Ok(signature));
        }
    }
}

#[test]
fn rfc6979_ecdsa_vectors() {
    let json = include_str!("../../tests/data/rfc6979_ecdsa.json");
    for case in load_cases::<EcdsaCase>(json, "RFC 6979", 4) {
        let (spec, algorithm) = match (case.curve.as_str(), case.hash.as_str()) {
            ("P-256", "SHA-256") => (KeySpec::EcdsaP256, SigningAlgorithm::EcdsaSha256),
            ("P-384", "SHA-384") => (KeySpec::EcdsaP384, SigningAlgorithm::EcdsaSha384),
            other => panic!("unexpected case {other:?}"),
        };
        let name = format!("{} {} {:?}", case.section, case.hash, case.message);
        let x = hex::decode(&case.x).unwrap();
        assert_eq!(spec.validate_material(&x), Ok(()));

        let spki = public_key_der(spec, &x).unwrap();
        let point = raw_public_key(&spki);
        assert_eq!(
            hex::encode_upper(&point),
            format!("04{}{}", case.ux, case.uy),
            "{name}"
        );

        let signature = sign(
            spec,
            &x,
            algorithm,
            case.message.as_bytes(),
            MessageType::Raw,
        )
        .unwrap();
        let parsed = match spec {
            KeySpec::EcdsaP256 => {
                let sig = p256::ecdsa::Signature::from_der(&signature).unwrap();
                (sig.r().to_bytes().to_vec(), sig.s().to_bytes().to_vec())
            }
            _ => {
                let sig = p384::ecdsa::Signature::from_der(&signature).unwrap();
                (sig.r().to_bytes().to_vec(), sig.s().to_bytes().to_vec())
            }
        };
        assert_eq!(hex::encode_upper(&parsed.0), case.r, "{name} r");
        assert_eq!(hex::encode_upper(&parsed.1), case.s, "{name} s");
        assert_eq!(
            verify(
                spec,
                &spki,
                algorithm,
                case.message.as_bytes(),
                MessageType::Raw,
                &signature
            ),
            Ok(true)
        );
        assert!(ring_verifies(
            spec,
            &spki,
            case.message.as_bytes(),
            &signature
        ));
    }
}

/// One case of the RFC 6979 file, as `rfc6979_ecdsa_vectors` above reads it.
#[derive(Deserialize)]
struct EcdsaCase {
    section: String,
    curve: String,
    hash: String,
    message: String,
    x: String,
    ux: String,
    uy: String,
    r: String,
    s: String,
}

#[test]
fn ring_verifies_our_signatures_and_rejects_tampering() {
    for seed in 0..8u8 {
        for (spec, key, spki) in asymmetric_keys(seed) {
            let message = format!("message {seed} for {spec}").into_bytes();
            let signature = sign_raw(spec, key.as_slice(), &message).unwrap();
            assert!(ring_verifies(spec, &spki, &message, &signature), "{spec}");
            assert_eq!(verify_raw(spec, &spki, &message, &signature), Ok(true));

            let mut other_message = message.clone();
            other_message[0] ^= 1;
            assert!(!ring_verifies(spec, &spki, &other_message, &signature));
            assert_eq!(
                verify_raw(spec, &spki, &other_message, &signature),
                Ok(false)
            );

            let other_key = public_key_der(spec, material(spec, seed + 100).as_slice()).unwrap();
            assert!(!ring_verifies(spec, &other_key, &message, &signature));
            assert_eq!(
                verify_raw(spec, &other_key, &message, &signature),
                Ok(false)
            );
        }
    }
}

#[test]
fn every_signature_bit_flip_fails() {
    for (spec, key, spki) in asymmetric_keys(1) {
        let signature = sign_raw(spec, key.as_slice(), b"flip me").unwrap();
        for index in 0..signature.len() {
            for bit in 0..8 {
                let mut tampered = signature.clone();
                tampered[index] ^= 1 << bit;
                let result = verify_raw(spec, &spki, b"flip me", &tampered);
                assert!(
                    matches!(result, Ok(false) | Err(Error::MalformedSignature)),
                    "{spec} byte {index} bit {bit}: {result:?}"
                );
                assert!(!ring_verifies(spec, &spki, b"flip me", &tampered));
            }
        }
    }
}

#[test]
fn every_signature_truncation_fails_without_panic() {
    for (spec, key, spki) in asymmetric_keys(2) {
        let mut signature = sign_raw(spec, key.as_slice(), b"cut me").unwrap();
        for len in 0..signature.len() {
            let result = verify_raw(spec, &spki, b"cut me", &signature[..len]);
            assert!(
                matches!(result, Ok(false) | Err(Error::MalformedSignature)),
                "{spec} length {len}: {result:?}"
            );
        }
        // Trailing bytes are not tolerated either.
        signature.push(0);
        let result = verify_raw(spec, &spki, b"cut me", &signature);
        assert!(matches!(result, Ok(false) | Err(Error::MalformedSignature)));
    }
}

#[test]
fn digest_mode_signs_the_prehash_of_the_raw_message() {
    let message = b"sign me by digest";
    for (spec, digest) in [
        (KeySpec::EcdsaP256, Sha256::digest(message).to_vec()),
        (KeySpec::EcdsaP384, Sha384::digest(message).to_vec()),
    ] {
        let key = material(spec, 3);
        let spki = public_key_der(spec, key.as_slice()).unwrap();
        let alg = algorithm(spec);
        let by_digest = sign(spec, key.as_slice(), alg, &digest, MessageType::Digest).unwrap();
        // RFC 6979 is deterministic: the same bytes as signing raw.
        let by_raw = sign(spec, key.as_slice(), alg, message, MessageType::Raw).unwrap();
        assert_eq!(by_digest, by_raw, "{spec}");
        assert_eq!(
            verify(spec, &spki, alg, message, MessageType::Raw, &by_digest),
            Ok(true)
        );
        assert_eq!(
            verify(spec, &spki, alg, &digest, MessageType::Digest, &by_digest),
            Ok(true)
        );
        assert!(ring_verifies(spec, &spki, message, &by_digest), "{spec}");
        // A digest is not a message: verifying it as raw hashes it again.
        assert_eq!(
            verify(spec, &spki, alg, &digest, MessageType::Raw, &by_digest),
            Ok(false)
        );
    }
}

#[test]
fn digest_rules() {
    let p256 = material(KeySpec::EcdsaP256, 4);
    let p384 = material(KeySpec::EcdsaP384, 4);
    let ed = material(KeySpec::Ed25519, 4);
    for (spec, key, len) in [
        (KeySpec::EcdsaP256, &p256, 32usize),
        (KeySpec::EcdsaP384, &p384, 48),
    ] {
        for bad in [0, 1, len - 1, len + 1, 64] {
            assert_eq!(
                sign(
                    spec,
                    key.as_slice(),
                    algorithm(spec),
                    &vec![7; bad],
                    MessageType::Digest
                ),
                Err(Error::InvalidDigestLength {
                    expected: len,
                    actual: bad
                })
            );
        }
    }
    let unsupported = Error::UnsupportedMessageType {
        algorithm: "ED25519",
        message_type: "DIGEST",
    };
    assert_eq!(
        sign(
            KeySpec::Ed25519,
            ed.as_slice(),
            SigningAlgorithm::Ed25519,
            &[0; 64],
            MessageType::Digest
        ),
        Err(unsupported.clone())
    );
    let spki = public_key_der(KeySpec::Ed25519, ed.as_slice()).unwrap();
    assert_eq!(
        verify(
            KeySpec::Ed25519,
            &spki,
            SigningAlgorithm::Ed25519,
            &[0; 64],
            MessageType::Digest,
            &[0; 64]
        ),
        Err(unsupported)
    );
}

#[test]
fn message_limits() {
    for (spec, key, spki) in asymmetric_keys(5) {
        let alg = algorithm(spec);
        assert_message_rules(
            MAX_SIGN_MESSAGE_BYTES,
            |message| sign(spec, key.as_slice(), alg, message, MessageType::Raw),
            |message| verify(spec, &spki, alg, message, MessageType::Raw, &[0; 64]),
        );
        let max = &vec![1u8; MAX_SIGN_MESSAGE_BYTES][..];
        let signature = sign(spec, key.as_slice(), alg, max, MessageType::Raw).unwrap();
        assert_eq!(
            verify(spec, &spki, alg, max, MessageType::Raw, &signature),
            Ok(true)
        );
    }
}

#[test]
fn spec_and_algorithm_must_match() {
    for &spec in KeySpec::ALL {
        let key = material(spec, 6);
        for &alg in SigningAlgorithm::ALL {
            let allowed = spec.signing_algorithms().contains(&alg);
            let result = sign(spec, key.as_slice(), alg, b"m", MessageType::Raw);
            if allowed {
                assert!(result.is_ok(), "{spec} {alg}");
            } else {
                let mismatch = Error::AlgorithmMismatch {
                    spec: spec.name(),
                    algorithm: alg.name(),
                };
                assert_eq!(result, Err(mismatch.clone()), "{spec} {alg}");
                assert_eq!(
                    verify(spec, &[], alg, b"m", MessageType::Raw, &[]),
                    Err(mismatch)
                );
            }
        }
    }
    assert_eq!(KeySpec::Aes256Gcm.default_signing_algorithm(), None);
    assert_eq!(
        KeySpec::EcdsaP384.default_signing_algorithm(),
        Some(SigningAlgorithm::EcdsaSha384)
    );
}

#[test]
fn public_key_of_another_spec_is_rejected() {
    let keys: Vec<(KeySpec, Vec<u8>)> = ASYMMETRIC
        .iter()
        .map(|&spec| {
            (
                spec,
                public_key_der(spec, material(spec, 7).as_slice()).unwrap(),
            )
        })
        .collect();
    for (spec, _) in &keys {
        for (other, der) in &keys {
            if spec == other {
                continue;
            }
            assert_eq!(
                verify(
                    *spec,
                    der,
                    algorithm(*spec),
                    b"m",
                    MessageType::Raw,
                    &[0x30, 0]
                ),
                Err(Error::InvalidPublicKey),
                "{spec} with a {other} key"
            );
        }
        let (_, der) = keys.iter().find(|(s, _)| s == spec).unwrap();
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(
            verify_raw(*spec, &trailing, b"m", &[0; 64]),
            Err(Error::InvalidPublicKey)
        );
        for len in 0..der.len() {
            assert_eq!(
                verify_raw(*spec, &der[..len], b"m", &[0; 64]),
                Err(Error::InvalidPublicKey)
            );
        }
    }
}

#[test]
fn malformed_ecdsa_signatures_are_errors() {
    let spec = KeySpec::EcdsaP256;
    let spki = public_key_der(spec, material(spec, 8).as_slice()).unwrap();
    let alg = SigningAlgorithm::EcdsaSha256;
    // r = 0 is well-formed DER but never a valid ECDSA scalar.
    let zero_r = [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01];
    // Non-minimal INTEGER encoding is not DER.
    let padded = [0x30, 0x08, 0x02, 0x02, 0x00, 0x01, 0x02, 0x02, 0x00, 0x01];
    // The 64-byte fixed r||s form is not what this API speaks.
    let fixed = [1u8; 64];
    for bad in [&zero_r[..], &padded[..], &fixed[..], &[][..]] {
        assert_eq!(
            verify(spec, &spki, alg, b"m", MessageType::Raw, bad),
            Err(Error::MalformedSignature),
            "{bad:02x?}"
        );
    }
    // A well-formed signature with valid scalars that does not verify.
    let valid = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];
    assert_eq!(
        verify(spec, &spki, alg, b"m", MessageType::Raw, &valid),
        Ok(false)
    );
}

#[test]
fn public_keys_have_the_standard_encodings() {
    // SubjectPublicKeyInfo algorithm identifiers (RFC 8410, RFC 5480): the
    // DER's length and its hex prefix up to the key bits.
    for (spec, len, prefix) in [
        (KeySpec::Ed25519, 44, "302a300506032b6570032100"),
        (
            KeySpec::EcdsaP256,
            91,
            "3059301306072a8648ce3d020106082a8648ce3d03010703420004",
        ),
        (
            KeySpec::EcdsaP384,
            120,
            "3076301006072a8648ce3d020106052b8104002203620004",
        ),
    ] {
        let der = public_key_der(spec, material(spec, 9).as_slice()).unwrap();
        assert_eq!(der.len(), len, "{spec}");
        assert_eq!(hex::encode(&der[..prefix.len() / 2]), prefix, "{spec}");
    }

    for spec in ASYMMETRIC {
        let key = material(spec, 10);
        let pem = public_key_pem(spec, key.as_slice()).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
        let der = public_key_der(spec, key.as_slice()).unwrap();
        assert_eq!(crate::pem::decode_public_key(pem.as_bytes()).unwrap(), der);
    }
    // Same bytes as the curve crate's own PEM encoder.
    let key = material(KeySpec::EcdsaP256, 11);
    let theirs = p256::ecdsa::SigningKey::from_slice(key.as_slice())
        .unwrap()
        .verifying_key()
        .to_public_key_pem(spki::der::pem::LineEnding::LF)
        .unwrap();
    assert_eq!(
        public_key_pem(KeySpec::EcdsaP256, key.as_slice()).unwrap(),
        theirs
    );
}

#[test]
fn symmetric_specs_have_no_public_key() {
    for spec in [KeySpec::Aes256Gcm, KeySpec::HmacSha256, KeySpec::HmacSha512] {
        let key = material(spec, 12);
        let expected = Error::NotAsymmetric { spec: spec.name() };
        assert_eq!(public_key_der(spec, key.as_slice()), Err(expected.clone()));
        assert_eq!(public_key_pem(spec, key.as_slice()), Err(expected));
    }
}

#[test]
fn bad_material_is_reported() {
    for spec in ASYMMETRIC {
        let short = vec![1u8; spec.material_len() - 1];
        let expected = Error::InvalidKeyMaterial {
            spec: spec.name(),
            reason: "wrong length",
        };
        assert_eq!(sign_raw(spec, &short, b"m"), Err(expected.clone()));
        assert_eq!(public_key_der(spec, &short), Err(expected));
    }
    let zero = [0u8; 32];
    assert_eq!(
        sign(
            KeySpec::EcdsaP256,
            &zero,
            SigningAlgorithm::EcdsaSha256,
            b"m",
            MessageType::Raw
        ),
        Err(Error::InvalidKeyMaterial {
            spec: "ECDSA_P256",
            reason: "not a scalar in 1..n"
        })
    );
}

#[test]
fn names_round_trip() {
    for (alg, name) in [
        (SigningAlgorithm::Ed25519, "ED25519"),
        (SigningAlgorithm::EcdsaSha256, "ECDSA_SHA_256"),
        (SigningAlgorithm::EcdsaSha384, "ECDSA_SHA_384"),
    ] {
        assert_eq!(alg.name(), name);
        assert_eq!(alg.to_string(), name);
        assert_eq!(SigningAlgorithm::parse(name), Ok(alg));
        assert_eq!(serde_json::to_string(&alg).unwrap(), format!("\"{name}\""));
    }
    for (message_type, name) in [(MessageType::Raw, "RAW"), (MessageType::Digest, "DIGEST")] {
        assert_eq!(message_type.name(), name);
        assert_eq!(message_type.to_string(), name);
        assert_eq!(MessageType::parse(name), Ok(message_type));
    }
    assert_eq!(
        SigningAlgorithm::parse("ecdsa_sha_256"),
        Err(Error::UnknownAlgorithm {
            name: "ecdsa_sha_256".to_owned()
        })
    );
    assert_eq!(
        MessageType::parse("raw"),
        Err(Error::UnknownMessageType {
            name: "raw".to_owned()
        })
    );
    assert_eq!(
        KeySpec::Ed25519.signing_algorithms(),
        &[SigningAlgorithm::Ed25519]
    );
    assert_eq!(
        KeySpec::EcdsaP256.signing_algorithms(),
        &[SigningAlgorithm::EcdsaSha256]
    );
    assert!(KeySpec::HmacSha512.signing_algorithms().is_empty());
}
