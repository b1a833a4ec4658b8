//! Project Wycheproof vectors run against Tessera's own wrappers (not only the crates under
//! them), so a wrapper that mishandles a corner case — a truncated tag accepted, a malleable
//! signature, a small-order X25519 key — fails here.
//!
//! Only the parameters Tessera uses are exercised (AES-256 with 96-bit nonces and 128-bit
//! tags, full-length HMAC tags, the spec's HMAC key sizes, raw-message ECDSA with DER
//! signatures); each test also checks that it ran a meaningful number of vectors.

use wycheproof::TestResult;

use crate::gcm::{open_detached, seal_tail, NONCE_LEN, TAG_LEN};
use crate::{kdf, mac, sign, wrap, Error, KeySpec, MessageType, SecretKey256, SigningAlgorithm};

fn key256(bytes: &[u8]) -> SecretKey256 {
    SecretKey256::try_from_slice(bytes).unwrap()
}

#[test]
fn aes_256_gcm() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for test in group.tests {
            let key = key256(&test.key);
            let nonce = <[u8; NONCE_LEN]>::try_from(&test.nonce[..]).unwrap();
            let tag = <[u8; TAG_LEN]>::try_from(&test.tag[..]).unwrap();
            let opened = open_detached(&key, &nonce, &test.aad, &test.ct, &tag);
            match test.result {
                TestResult::Valid => {
                    let plaintext = opened.unwrap_or_else(|_| panic!("tc {} refused", test.tc_id));
                    assert_eq!(plaintext.as_slice(), &test.pt[..], "tc {}", test.tc_id);
                    let mut blob = test.pt.to_vec();
                    seal_tail(&key, &nonce, &test.aad, &mut blob, 0).unwrap();
                    let mut expected = test.ct.to_vec();
                    expected.extend_from_slice(&test.tag);
                    assert_eq!(blob, expected, "tc {}", test.tc_id);
                }
                TestResult::Invalid => assert!(opened.is_err(), "tc {} accepted", test.tc_id),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} AES-256-GCM vectors ran");
}

/// HMAC through `generate_mac`/`verify_mac`: full tags verify and match; modified tags are
/// refused; a truncated tag, which Wycheproof calls valid for truncated HMAC, is refused by
/// Tessera, which only accepts the full tag.
fn hmac(name: wycheproof::mac::TestName, spec: KeySpec, tag_bits: usize, key_bits: usize) {
    let set = wycheproof::mac::TestSet::load(name).unwrap();
    let (mut full, mut truncated) = (0, 0);
    for group in set.test_groups {
        if group.key_size != key_bits {
            continue;
        }
        for test in group.tests {
            if test.msg.is_empty() {
                assert_eq!(
                    mac::verify_mac(spec, &test.key, &test.msg, &test.tag),
                    Err(Error::EmptyMessage)
                );
                continue;
            }
            let verified = mac::verify_mac(spec, &test.key, &test.msg, &test.tag).unwrap();
            if group.tag_size == tag_bits {
                assert_eq!(
                    verified,
                    test.result == TestResult::Valid,
                    "tc {}",
                    test.tc_id
                );
                if test.result == TestResult::Valid {
                    let computed = mac::generate_mac(spec, &test.key, &test.msg).unwrap();
                    assert_eq!(computed, &test.tag[..], "tc {}", test.tc_id);
                }
                full += 1;
            } else {
                assert!(!verified, "tc {}: a truncated tag verified", test.tc_id);
                truncated += 1;
            }
        }
    }
    assert!(
        full > 10 && truncated > 10,
        "ran {full} full and {truncated} truncated"
    );
}

#[test]
fn hmac_sha256() {
    hmac(
        wycheproof::mac::TestName::HmacSha256,
        KeySpec::HmacSha256,
        256,
        256,
    );
}

#[test]
fn hmac_sha512() {
    hmac(
        wycheproof::mac::TestName::HmacSha512,
        KeySpec::HmacSha512,
        512,
        512,
    );
}

#[test]
fn hkdf_sha256() {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let mut checked = 0;
    for test in set.test_groups.into_iter().flat_map(|group| group.tests) {
        let mut out = vec![0u8; test.size];
        let derived = kdf::hkdf_sha256(&test.ikm, &test.salt, &test.info, &mut out);
        match test.result {
            TestResult::Valid => {
                derived.unwrap();
                assert_eq!(out, &test.okm[..], "tc {}", test.tc_id);
            }
            TestResult::Invalid => assert!(derived.is_err(), "tc {}", test.tc_id),
            TestResult::Acceptable => {}
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} HKDF vectors ran");
}

/// Signature verification through `sign::verify` with the key as SubjectPublicKeyInfo DER,
/// as the API receives it: valid signatures verify; invalid ones are refused, either as
/// `Ok(false)` or as a malformed signature (or key), never accepted.
fn verify_vectors(
    groups: impl Iterator<Item = (Vec<u8>, Vec<(usize, Vec<u8>, Vec<u8>, TestResult)>)>,
    spec: KeySpec,
    algorithm: SigningAlgorithm,
) -> usize {
    let mut checked = 0;
    for (der, tests) in groups {
        for (tc_id, msg, sig, result) in tests {
            let verified = sign::verify(spec, &der, algorithm, &msg, MessageType::Raw, &sig);
            if msg.is_empty() {
                assert_eq!(verified, Err(Error::EmptyMessage), "tc {tc_id}");
                continue;
            }
            match result {
                TestResult::Valid => assert_eq!(verified, Ok(true), "tc {tc_id}"),
                TestResult::Invalid => assert!(
                    matches!(
                        verified,
                        Ok(false) | Err(Error::MalformedSignature | Error::InvalidPublicKey)
                    ),
                    "tc {tc_id}: {verified:?}"
                ),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    checked
}

/// The groups of a loaded ECDSA or EdDSA test set as [`verify_vectors`] takes them: the
/// crate gives the two families distinct types with the same field names.
macro_rules! signature_groups {
    ($set:expr) => {
        $set.test_groups.into_iter().map(|g| {
            let tests = g
                .tests
                .into_iter()
                .map(|t| (t.tc_id, t.msg.to_vec(), t.sig.to_vec(), t.result))
                .collect();
            (g.der.to_vec(), tests)
        })
    };
}

fn ecdsa(name: wycheproof::ecdsa::TestName, spec: KeySpec, algorithm: SigningAlgorithm) {
    let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
    let checked = verify_vectors(signature_groups!(set), spec, algorithm);
    assert!(checked > 200, "only {checked} ECDSA vectors ran");
}

#[test]
fn ecdsa_p256_sha256_verify() {
    ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256,
        KeySpec::EcdsaP256,
        SigningAlgorithm::EcdsaSha256,
    );
}

#[test]
fn ecdsa_p384_sha384_verify() {
    ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384,
        KeySpec::EcdsaP384,
        SigningAlgorithm::EcdsaSha384,
    );
}

#[test]
fn ed25519_verify() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let checked = verify_vectors(
        signature_groups!(set),
        KeySpec::Ed25519,
        SigningAlgorithm::Ed25519,
    );
    assert!(checked > 100, "only {checked} Ed25519 vectors ran");
}

/// X25519 as key unwrapping computes it: the shared secret matches, and a peer key that makes
/// it all zero is refused.
#[test]
fn x25519() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let mut checked = 0;
    for test in set.test_groups.into_iter().flat_map(|group| group.tests) {
        let Ok(peer) = <[u8; 32]>::try_from(&test.public_key[..]) else {
            assert_eq!(test.result, TestResult::Invalid, "tc {}", test.tc_id);
            continue;
        };
        let secret = key256(&test.private_key);
        let shared = wrap::x25519_agree(&secret, &peer);
        if test.shared_secret.iter().all(|b| *b == 0) {
            assert!(
                shared.is_none(),
                "tc {}: all-zero secret accepted",
                test.tc_id
            );
        } else if test.result != TestResult::Invalid {
            let shared = shared.unwrap_or_else(|| panic!("tc {} refused", test.tc_id));
            assert_eq!(&shared[..], &test.shared_secret[..], "tc {}", test.tc_id);
        }
        checked += 1;
    }
    assert!(checked > 400, "only {checked} X25519 vectors ran");
}
