//! Signature verification without the cluster: with a public key fetched once by
//! [`Client::get_public_key`](crate::Client::get_public_key), anyone can verify signatures
//! offline, exactly as the server's `Verify` does.

use tessera_crypto::sign::{self, MessageType, SigningAlgorithm};
use tessera_crypto::KeySpec;

use crate::error::Error;

/// Verifies `signature` over `message` (or with `digest`, over the caller's hash of it)
/// against a SubjectPublicKeyInfo DER public key of key spec `spec` (e.g. `ECDSA_P256`),
/// with `algorithm` (e.g. `ECDSA_SHA_256`; empty: the spec's default).
///
/// Returns `Ok(true)` for a valid signature and `Ok(false)` for a well-formed signature that
/// does not verify.
///
/// # Errors
/// [`Error::Crypto`] for an unknown spec or algorithm, an algorithm the spec does not support,
/// an empty or oversized message, a digest of the wrong length, a malformed public key or a
/// signature that is not structurally one of the algorithm's.
pub fn verify_offline(
    public_key_der: &[u8],
    spec: &str,
    algorithm: &str,
    message: &[u8],
    digest: bool,
    signature: &[u8],
) -> Result<bool, Error> {
    let spec = KeySpec::parse(spec)?;
    let algorithm = if algorithm.is_empty() {
        spec.default_signing_algorithm()
            .ok_or(tessera_crypto::Error::AlgorithmMismatch {
                spec: spec.name(),
                algorithm: "(default)",
            })?
    } else {
        SigningAlgorithm::parse(algorithm)?
    };
    let message_type = if digest {
        MessageType::Digest
    } else {
        MessageType::Raw
    };
    Ok(sign::verify(
        spec,
        public_key_der,
        algorithm,
        message,
        message_type,
        signature,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(spec: KeySpec, message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let material = spec.generate_material(&mut tessera_crypto::os_rng());
        let algorithm = spec.default_signing_algorithm().unwrap();
        let signature = sign::sign(
            spec,
            material.as_slice(),
            algorithm,
            message,
            MessageType::Raw,
        )
        .unwrap();
        let public = sign::public_key_der(spec, material.as_slice()).unwrap();
        (public, signature)
    }

    #[test]
    fn valid_signatures_verify_and_others_do_not() {
        for spec in [KeySpec::Ed25519, KeySpec::EcdsaP256, KeySpec::EcdsaP384] {
            let (public, signature) = signed(spec, b"hello");
            assert!(verify_offline(&public, spec.name(), "", b"hello", false, &signature).unwrap());
            assert!(
                !verify_offline(&public, spec.name(), "", b"other", false, &signature).unwrap()
            );
        }
    }

    #[test]
    fn digests_verify_as_digests() {
        let spec = KeySpec::EcdsaP256;
        let material = spec.generate_material(&mut tessera_crypto::os_rng());
        let digest = [7u8; 32];
        let signature = sign::sign(
            spec,
            material.as_slice(),
            SigningAlgorithm::EcdsaSha256,
            &digest,
            MessageType::Digest,
        )
        .unwrap();
        let public = sign::public_key_der(spec, material.as_slice()).unwrap();
        assert!(verify_offline(
            &public,
            "ECDSA_P256",
            "ECDSA_SHA_256",
            &digest,
            true,
            &signature
        )
        .unwrap());
        assert!(!verify_offline(&public, "ECDSA_P256", "", &digest, false, &signature).unwrap());
    }

    #[test]
    fn bad_requests_are_errors() {
        let (public, signature) = signed(KeySpec::Ed25519, b"hello");
        for (spec, algorithm) in [
            ("NOPE", ""),
            ("ED25519", "NOPE"),
            ("ED25519", "ECDSA_SHA_256"),
            ("AES256_GCM", ""),
        ] {
            let result = verify_offline(&public, spec, algorithm, b"hello", false, &signature);
            assert!(
                matches!(result, Err(Error::Crypto { .. })),
                "{spec} {algorithm}"
            );
        }
        let result = verify_offline(b"junk", "ED25519", "", b"hello", false, &signature);
        assert!(matches!(result, Err(Error::Crypto { .. })));
    }
}
