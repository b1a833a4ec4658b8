//! Message authentication codes with customer HMAC keys, in the style of
//! AWS KMS `GenerateMac`/`VerifyMac`.
//!
//! HMAC (RFC 2104) with SHA-256 or SHA-512, full-length tags only: a
//! truncated tag is never produced and never accepted. Verification
//! recomputes the tag and compares it in constant time, so timing does not
//! reveal how much of a forged tag was right.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha512};

use crate::error::message_at_most;
use crate::{Error, KeySpec};

/// Largest message [`generate_mac`] and [`verify_mac`] accept (64 KiB), as
/// for the other customer-key operations.
pub const MAX_MAC_MESSAGE_BYTES: usize = 65536;

/// A MAC algorithm, named as in the API.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MacAlgorithm {
    /// HMAC-SHA-256, 32-byte tags, for `HMAC_SHA256` keys.
    #[serde(rename = "HMAC_SHA_256")]
    HmacSha256,
    /// HMAC-SHA-512, 64-byte tags, for `HMAC_SHA512` keys.
    #[serde(rename = "HMAC_SHA_512")]
    HmacSha512,
}

impl MacAlgorithm {
    /// Every MAC algorithm, for listings and exhaustive tests.
    pub const ALL: &'static [MacAlgorithm] = &[Self::HmacSha256, Self::HmacSha512];

    /// The name used in the API and CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Self::HmacSha256 => "HMAC_SHA_256",
            Self::HmacSha512 => "HMAC_SHA_512",
        }
    }

    /// Length of the tags this algorithm produces.
    pub fn mac_len(&self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha512 => 64,
        }
    }
}

api_names!(MacAlgorithm, parsed from Self::ALL, else UnknownAlgorithm);

impl KeySpec {
    /// The MAC algorithm of an HMAC spec (each HMAC spec has exactly one),
    /// or `None` for specs that cannot produce MACs.
    pub fn mac_algorithm(&self) -> Option<MacAlgorithm> {
        match self {
            Self::HmacSha256 => Some(MacAlgorithm::HmacSha256),
            Self::HmacSha512 => Some(MacAlgorithm::HmacSha512),
            Self::Aes256Gcm | Self::Ed25519 | Self::EcdsaP256 | Self::EcdsaP384 => None,
        }
    }
}

/// Checks a request and returns the algorithm to use.
fn check_request(spec: KeySpec, material: &[u8], message: &[u8]) -> Result<MacAlgorithm, Error> {
    let algorithm = spec
        .mac_algorithm()
        .ok_or(Error::NotHmac { spec: spec.name() })?;
    spec.validate_material(material)?;
    if message.is_empty() {
        return Err(Error::EmptyMessage);
    }
    message_at_most(message, MAX_MAC_MESSAGE_BYTES)?;
    Ok(algorithm)
}

/// Which keyed HMAC instance to use; built once per request.
enum Keyed {
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// Keys HMAC. HMAC itself accepts keys of any length (RFC 2104 §2), which
/// the RFC 4231 vectors rely on; the spec's length rule is enforced by the
/// callers through [`KeySpec::validate_material`].
fn keyed(algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Result<Keyed, Error> {
    let invalid = |_| Error::InvalidKeyMaterial {
        spec: match algorithm {
            MacAlgorithm::HmacSha256 => KeySpec::HmacSha256.name(),
            MacAlgorithm::HmacSha512 => KeySpec::HmacSha512.name(),
        },
        reason: "rejected by HMAC",
    };
    Ok(match algorithm {
        MacAlgorithm::HmacSha256 => Keyed::Sha256(
            Hmac::<Sha256>::new_from_slice(key)
                .map_err(invalid)?
                .chain_update(message),
        ),
        MacAlgorithm::HmacSha512 => Keyed::Sha512(
            Hmac::<Sha512>::new_from_slice(key)
                .map_err(invalid)?
                .chain_update(message),
        ),
    })
}

fn compute(algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(match keyed(algorithm, key, message)? {
        Keyed::Sha256(mac) => mac.finalize().into_bytes().to_vec(),
        Keyed::Sha512(mac) => mac.finalize().into_bytes().to_vec(),
    })
}

/// Computes the MAC of `message` under an HMAC key of spec `spec`.
///
/// Errors: [`Error::NotHmac`] for other specs, [`Error::InvalidKeyMaterial`]
/// if `material` does not fit `spec`, [`Error::EmptyMessage`],
/// [`Error::MessageTooLarge`] above [`MAX_MAC_MESSAGE_BYTES`].
pub fn generate_mac(spec: KeySpec, material: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
    let algorithm = check_request(spec, material, message)?;
    compute(algorithm, material, message)
}

/// Whether `mac` is the MAC of `message` under the key, compared in
/// constant time.
///
/// A tag of the wrong length is simply `Ok(false)`: it is a wrong tag, not
/// a malformed request. Errors are those of [`generate_mac`].
pub fn verify_mac(
    spec: KeySpec,
    material: &[u8],
    message: &[u8],
    mac: &[u8],
) -> Result<bool, Error> {
    let algorithm = check_request(spec, material, message)?;
    Ok(match keyed(algorithm, material, message)? {
        Keyed::Sha256(keyed) => keyed.verify_slice(mac).is_ok(),
        Keyed::Sha512(keyed) => keyed.verify_slice(mac).is_ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_message_rules;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Vectors {
        source: String,
        cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        name: String,
        key: String,
        data: String,
        hmac_sha256: String,
        hmac_sha512: String,
    }

    const HMAC_SPECS: [KeySpec; 2] = [KeySpec::HmacSha256, KeySpec::HmacSha512];

    fn material(spec: KeySpec, seed: u8) -> crate::SecretBytes {
        spec.generate_material(&mut ChaCha20Rng::from_seed([seed; 32]))
    }

    #[test]
    fn rfc4231_vectors() {
        let vectors: Vectors =
            serde_json::from_str(include_str!("../tests/data/rfc4231.json")).unwrap();
        assert!(vectors.source.contains("RFC 4231"));
        let names: Vec<&str> = vectors.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "4.2. Test Case 1",
                "4.3. Test Case 2",
                "4.4. Test Case 3",
                "4.5. Test Case 4",
                "4.7. Test Case 6",
                "4.8. Test Case 7"
            ]
        );
        for case in &vectors.cases {
            let key = hex::decode(&case.key).unwrap();
            let data = hex::decode(&case.data).unwrap();
            for (algorithm, expected) in [
                (MacAlgorithm::HmacSha256, &case.hmac_sha256),
                (MacAlgorithm::HmacSha512, &case.hmac_sha512),
            ] {
                let tag = compute(algorithm, &key, &data).unwrap();
                assert_eq!(&hex::encode(&tag), expected, "{} {algorithm}", case.name);
                let verified = match keyed(algorithm, &key, &data).unwrap() {
                    Keyed::Sha256(mac) => mac.verify_slice(&tag).is_ok(),
                    Keyed::Sha512(mac) => mac.verify_slice(&tag).is_ok(),
                };
                assert!(verified, "{} {algorithm}", case.name);
            }
        }
    }

    /// The public API agrees with ring's independent HMAC.
    #[test]
    fn matches_ring() {
        for (spec, ring_algorithm) in [
            (KeySpec::HmacSha256, ring::hmac::HMAC_SHA256),
            (KeySpec::HmacSha512, ring::hmac::HMAC_SHA512),
        ] {
            for seed in 0..8u8 {
                let key = material(spec, seed);
                let message = vec![seed; 1 + usize::from(seed) * 37];
                let ours = generate_mac(spec, key.as_slice(), &message).unwrap();
                let theirs = ring::hmac::sign(
                    &ring::hmac::Key::new(ring_algorithm, key.as_slice()),
                    &message,
                );
                assert_eq!(ours, theirs.as_ref(), "{spec}");
                assert_eq!(ours.len(), spec.mac_algorithm().unwrap().mac_len());
                assert_eq!(verify_mac(spec, key.as_slice(), &message, &ours), Ok(true));
            }
        }
    }

    #[test]
    fn wrong_tags_are_false() {
        for spec in HMAC_SPECS {
            let key = material(spec, 1);
            let tag = generate_mac(spec, key.as_slice(), b"message").unwrap();
            assert_eq!(verify_mac(spec, key.as_slice(), b"message", &tag), Ok(true));
            assert_eq!(
                verify_mac(spec, key.as_slice(), b"messagE", &tag),
                Ok(false)
            );
            let other = material(spec, 2);
            assert_eq!(
                verify_mac(spec, other.as_slice(), b"message", &tag),
                Ok(false)
            );
            for index in 0..tag.len() {
                for bit in 0..8 {
                    let mut flipped = tag.clone();
                    flipped[index] ^= 1 << bit;
                    assert_eq!(
                        verify_mac(spec, key.as_slice(), b"message", &flipped),
                        Ok(false)
                    );
                }
            }
            // Truncated (even to a prefix of the right tag) or extended
            // tags are wrong, never errors.
            for len in 0..tag.len() {
                assert_eq!(
                    verify_mac(spec, key.as_slice(), b"message", &tag[..len]),
                    Ok(false),
                    "{spec} length {len}"
                );
            }
            let mut longer = tag.clone();
            longer.push(0);
            assert_eq!(
                verify_mac(spec, key.as_slice(), b"message", &longer),
                Ok(false)
            );
        }
    }

    #[test]
    fn request_rules() {
        for spec in HMAC_SPECS {
            let key = material(spec, 3);
            assert_message_rules(
                MAX_MAC_MESSAGE_BYTES,
                |message| generate_mac(spec, key.as_slice(), message),
                |message| verify_mac(spec, key.as_slice(), message, &[]),
            );
            let max = vec![0u8; MAX_MAC_MESSAGE_BYTES];
            assert!(generate_mac(spec, key.as_slice(), &max).is_ok());
            let wrong_length = Error::InvalidKeyMaterial {
                spec: spec.name(),
                reason: "wrong length",
            };
            assert_eq!(
                generate_mac(spec, &[1; 16], b"m"),
                Err(wrong_length.clone())
            );
            assert_eq!(verify_mac(spec, &[1; 16], b"m", &[]), Err(wrong_length));
        }
        for spec in [
            KeySpec::Aes256Gcm,
            KeySpec::Ed25519,
            KeySpec::EcdsaP256,
            KeySpec::EcdsaP384,
        ] {
            let key = material(spec, 4);
            let expected = Err(Error::NotHmac { spec: spec.name() });
            assert_eq!(generate_mac(spec, key.as_slice(), b"m"), expected);
            assert_eq!(
                verify_mac(spec, key.as_slice(), b"m", &[0; 32]),
                Err(Error::NotHmac { spec: spec.name() })
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for (algorithm, name, spec) in [
            (
                MacAlgorithm::HmacSha256,
                "HMAC_SHA_256",
                KeySpec::HmacSha256,
            ),
            (
                MacAlgorithm::HmacSha512,
                "HMAC_SHA_512",
                KeySpec::HmacSha512,
            ),
        ] {
            assert_eq!(algorithm.name(), name);
            assert_eq!(algorithm.to_string(), name);
            assert_eq!(MacAlgorithm::parse(name), Ok(algorithm));
            assert_eq!(spec.mac_algorithm(), Some(algorithm));
            assert_eq!(
                serde_json::to_string(&algorithm).unwrap(),
                format!("\"{name}\"")
            );
        }
        assert_eq!(
            MacAlgorithm::parse("HMAC_SHA256"),
            Err(Error::UnknownAlgorithm {
                name: "HMAC_SHA256".to_owned()
            })
        );
        assert_eq!(KeySpec::Aes256Gcm.mac_algorithm(), None);
    }
}
