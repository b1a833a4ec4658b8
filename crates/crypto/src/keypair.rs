//! Data key pairs, in the style of AWS KMS `GenerateDataKeyPair`: a fresh
//! asymmetric key pair handed to the caller in standard encodings, for
//! use outside the KMS.
//!
//! The private key is PKCS#8 DER: for Ed25519 the RFC 8410 form (version
//! 1, seed only, as `openssl genpkey` writes it, which every PKCS#8 reader
//! accepts); for ECDSA the RFC 5915 `ECPrivateKey` with the curve and the
//! public key, inside PKCS#8 (as OpenSSL writes it). The public key is
//! X.509 SubjectPublicKeyInfo DER, as from [`crate::sign::public_key_der`].

use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
use rand_core::CryptoRng;

use crate::spec::ec_secret_key;
use crate::{sign, Error, KeySpec, SecretBytes};

/// Generates a key pair of an asymmetric `spec` and returns
/// `(PKCS#8 DER private key, SubjectPublicKeyInfo DER public key)`.
///
/// The private key is returned in a [`SecretBytes`] so it is wiped once
/// the caller (typically: seal it under a data key, or return it once) is
/// done. Symmetric specs give [`Error::NotAsymmetric`].
pub fn generate_key_pair(
    spec: KeySpec,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<(SecretBytes, Vec<u8>), Error> {
    if spec.is_symmetric() {
        return Err(Error::NotAsymmetric { spec: spec.name() });
    }
    let material = spec.generate_material(rng);
    let private = private_key_der(spec, material.as_slice())?;
    let public = sign::public_key_der(spec, material.as_slice())?;
    Ok((private, public))
}

/// The PKCS#8 DER encoding of an asymmetric key's material.
fn private_key_der(spec: KeySpec, material: &[u8]) -> Result<SecretBytes, Error> {
    let document = match spec {
        KeySpec::Aes256Gcm | KeySpec::HmacSha256 | KeySpec::HmacSha512 => {
            return Err(Error::NotAsymmetric { spec: spec.name() })
        }
        KeySpec::Ed25519 => {
            let seed = <[u8; 32]>::try_from(material).map_err(|_| Error::InvalidKeyMaterial {
                spec: spec.name(),
                reason: "wrong length",
            })?;
            // `KeypairBytes` wipes itself on drop.
            KeypairBytes {
                secret_key: seed,
                public_key: None,
            }
            .to_pkcs8_der()
        }
        KeySpec::EcdsaP256 => {
            p256::ecdsa::SigningKey::from(ec_secret_key(spec, material)?).to_pkcs8_der()
        }
        KeySpec::EcdsaP384 => {
            p384::ecdsa::SigningKey::from(ec_secret_key(spec, material)?).to_pkcs8_der()
        }
    };
    // Encoding valid keys into fixed-size structures does not fail; the
    // `SecretDocument` wipes its copy on drop.
    let document = document.map_err(|_| Error::InvalidKeyMaterial {
        spec: spec.name(),
        reason: "cannot be encoded as PKCS#8",
    })?;
    Ok(SecretBytes::new(document.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{sign, MessageType};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const ASYMMETRIC: [KeySpec; 3] = [KeySpec::Ed25519, KeySpec::EcdsaP256, KeySpec::EcdsaP384];

    #[test]
    fn pairs_are_fresh_and_match() {
        let mut rng = ChaCha20Rng::from_seed([31; 32]);
        for spec in ASYMMETRIC {
            let (private_a, public_a) = generate_key_pair(spec, &mut rng).unwrap();
            let (private_b, public_b) = generate_key_pair(spec, &mut rng).unwrap();
            assert_ne!(private_a, private_b, "{spec}");
            assert_ne!(public_a, public_b, "{spec}");
            assert!(format!("{private_a:?}").contains("REDACTED"));
        }
    }

    /// ring parses our PKCS#8, derives the same public key, and its
    /// signatures verify against our SPKI with our verifier.
    #[test]
    fn ring_accepts_the_private_keys() {
        use ring::signature::{
            EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING,
            ECDSA_P384_SHA384_ASN1_SIGNING,
        };
        let ring_rng = ring::rand::SystemRandom::new();
        let mut rng = ChaCha20Rng::from_seed([32; 32]);
        for spec in ASYMMETRIC {
            let (private, public) = generate_key_pair(spec, &mut rng).unwrap();
            let message = b"signed by ring";
            let (ring_public, signature) = match spec {
                KeySpec::Ed25519 => {
                    // ring's strict parser wants PKCS#8 v2 (with the public
                    // key); the v1 form we emit needs the lenient one.
                    let pair =
                        Ed25519KeyPair::from_pkcs8_maybe_unchecked(private.as_slice()).unwrap();
                    (
                        pair.public_key().as_ref().to_vec(),
                        pair.sign(message).as_ref().to_vec(),
                    )
                }
                KeySpec::EcdsaP256 | KeySpec::EcdsaP384 => {
                    let algorithm = if spec == KeySpec::EcdsaP256 {
                        &ECDSA_P256_SHA256_ASN1_SIGNING
                    } else {
                        &ECDSA_P384_SHA384_ASN1_SIGNING
                    };
                    let pair =
                        EcdsaKeyPair::from_pkcs8(algorithm, private.as_slice(), &ring_rng).unwrap();
                    (
                        pair.public_key().as_ref().to_vec(),
                        pair.sign(&ring_rng, message).unwrap().as_ref().to_vec(),
                    )
                }
                _ => unreachable!(),
            };
            assert!(public.ends_with(&ring_public), "{spec}");
            let alg = spec.default_signing_algorithm().unwrap();
            assert_eq!(
                crate::sign::verify(spec, &public, alg, message, MessageType::Raw, &signature),
                Ok(true),
                "{spec}"
            );
        }
    }

    #[test]
    fn encodings_are_the_standard_ones() {
        let mut rng = ChaCha20Rng::from_seed([33; 32]);
        let (ed, _) = generate_key_pair(KeySpec::Ed25519, &mut rng).unwrap();
        // RFC 8410 §7: version 0, id-Ed25519, OCTET STRING { OCTET STRING seed }.
        assert_eq!(ed.len(), 48);
        assert_eq!(
            hex::encode(&ed.as_slice()[..16]),
            "302e020100300506032b657004220420"
        );
        let (p256, _) = generate_key_pair(KeySpec::EcdsaP256, &mut rng).unwrap();
        // PKCS#8 with id-ecPublicKey and prime256v1.
        assert_eq!(
            hex::encode(&p256.as_slice()[..27]),
            "308187020100301306072a8648ce3d020106082a8648ce3d030107"
        );
    }

    #[test]
    fn private_key_carries_the_material() {
        // The PKCS#8 document is the encoding of the spec's material, so
        // signing with the material and with ring's parse of the document
        // agree (Ed25519 is deterministic).
        let seed = [5u8; 32];
        let der = private_key_der(KeySpec::Ed25519, &seed).unwrap();
        assert!(der.as_slice().ends_with(&seed));
        let ours = sign(
            KeySpec::Ed25519,
            &seed,
            crate::sign::SigningAlgorithm::Ed25519,
            b"m",
            MessageType::Raw,
        )
        .unwrap();
        let pair =
            ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.as_slice()).unwrap();
        assert_eq!(pair.sign(b"m").as_ref(), ours.as_slice());
    }

    #[test]
    fn symmetric_specs_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([34; 32]);
        for spec in [KeySpec::Aes256Gcm, KeySpec::HmacSha256, KeySpec::HmacSha512] {
            assert_eq!(
                generate_key_pair(spec, &mut rng),
                Err(Error::NotAsymmetric { spec: spec.name() })
            );
        }
    }
}
