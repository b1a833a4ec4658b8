//! Digital signatures with customer keys: Ed25519 and ECDSA on P-256 and
//! P-384, in the style of AWS KMS `Sign`/`Verify`/`GetPublicKey`.
//!
//! - ECDSA nonces are deterministic (RFC 6979), so signing needs no
//!   randomness and a weak RNG can never leak the key. Signatures are
//!   ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }`, the form OpenSSL, Java,
//!   Go and AWS KMS produce and consume. `s` is not low-S normalized
//!   (nothing in the X9.62 world requires it).
//! - A [`MessageType::Raw`] message is hashed with the algorithm's hash; a
//!   [`MessageType::Digest`] message is that hash already computed by the
//!   caller (so large data never has to be sent), and must have exactly
//!   the hash's length.
//! - Ed25519 is "pure" Ed25519 (RFC 8032 §5.1): it hashes the message
//!   itself as part of signing, so it accepts raw messages only.
//! - Public keys are exchanged as X.509 SubjectPublicKeyInfo (DER, or PEM
//!   `PUBLIC KEY`), and [`verify`] takes such a public key rather than the
//!   private material, so it runs anywhere, including offline in the SDK.
//!
//! Key material is the raw seed or scalar described in [`crate::spec`].

use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384};
use spki::{DecodePublicKey, EncodePublicKey};

use crate::spec::ec_secret_key;
use crate::{pem, Error, KeySpec};

/// Largest raw message [`sign`] and [`verify`] accept (64 KiB), as for
/// encryption: bigger data should be hashed by the caller and signed as a
/// [`MessageType::Digest`].
pub const MAX_SIGN_MESSAGE_BYTES: usize = 65536;

/// A signature algorithm, named as in the API.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlgorithm {
    /// Pure Ed25519 (RFC 8032), for `ED25519` keys.
    #[serde(rename = "ED25519")]
    Ed25519,
    /// ECDSA with SHA-256 (RFC 6979 nonces, DER signature), for
    /// `ECDSA_P256` keys.
    #[serde(rename = "ECDSA_SHA_256")]
    EcdsaSha256,
    /// ECDSA with SHA-384 (RFC 6979 nonces, DER signature), for
    /// `ECDSA_P384` keys.
    #[serde(rename = "ECDSA_SHA_384")]
    EcdsaSha384,
}

/// Whether a message to sign or verify is the message itself or the
/// caller's hash of it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// The message itself; it is hashed as the algorithm requires.
    #[serde(rename = "RAW")]
    Raw,
    /// The algorithm's hash of the message, computed by the caller.
    #[serde(rename = "DIGEST")]
    Digest,
}

impl SigningAlgorithm {
    /// Every signing algorithm, for listings and exhaustive tests.
    pub const ALL: &'static [SigningAlgorithm] =
        &[Self::Ed25519, Self::EcdsaSha256, Self::EcdsaSha384];

    /// The name used in the API and CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ed25519 => "ED25519",
            Self::EcdsaSha256 => "ECDSA_SHA_256",
            Self::EcdsaSha384 => "ECDSA_SHA_384",
        }
    }

    /// Length of the digest a [`MessageType::Digest`] message must have,
    /// or `None` if the algorithm signs raw messages only.
    pub fn digest_len(&self) -> Option<usize> {
        match self {
            Self::Ed25519 => None,
            Self::EcdsaSha256 => Some(32),
            Self::EcdsaSha384 => Some(48),
        }
    }
}

api_names!(SigningAlgorithm, parsed from Self::ALL, else UnknownAlgorithm);

impl MessageType {
    /// The name used in the API and CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Raw => "RAW",
            Self::Digest => "DIGEST",
        }
    }
}

api_names!(MessageType, parsed from [Self::Raw, Self::Digest], else UnknownMessageType);

impl KeySpec {
    /// The signing algorithms keys of this spec support (one per curve, so
    /// the curve and hash always have matching strength); empty for
    /// symmetric specs.
    pub fn signing_algorithms(&self) -> &'static [SigningAlgorithm] {
        match self {
            Self::Ed25519 => &[SigningAlgorithm::Ed25519],
            Self::EcdsaP256 => &[SigningAlgorithm::EcdsaSha256],
            Self::EcdsaP384 => &[SigningAlgorithm::EcdsaSha384],
            Self::Aes256Gcm | Self::HmacSha256 | Self::HmacSha512 => &[],
        }
    }

    /// The algorithm to use when a request names none, or `None` for
    /// specs that cannot sign.
    pub fn default_signing_algorithm(&self) -> Option<SigningAlgorithm> {
        self.signing_algorithms().first().copied()
    }
}

/// Checks everything about a sign or verify request except the key and
/// signature bytes, so both refuse exactly the same requests.
fn check_request(
    spec: KeySpec,
    algorithm: SigningAlgorithm,
    message: &[u8],
    message_type: MessageType,
) -> Result<(), Error> {
    if !spec.signing_algorithms().contains(&algorithm) {
        return Err(Error::AlgorithmMismatch {
            spec: spec.name(),
            algorithm: algorithm.name(),
        });
    }
    match (message_type, algorithm.digest_len()) {
        (MessageType::Raw, _) if message.is_empty() => Err(Error::EmptyMessage),
        (MessageType::Raw, _) if message.len() > MAX_SIGN_MESSAGE_BYTES => {
            Err(Error::MessageTooLarge {
                len: message.len(),
                max: MAX_SIGN_MESSAGE_BYTES,
            })
        }
        (MessageType::Raw, _) => Ok(()),
        (MessageType::Digest, None) => Err(Error::UnsupportedMessageType {
            algorithm: algorithm.name(),
            message_type: message_type.name(),
        }),
        (MessageType::Digest, Some(len)) if message.len() != len => {
            Err(Error::InvalidDigestLength {
                expected: len,
                actual: message.len(),
            })
        }
        (MessageType::Digest, Some(_)) => Ok(()),
    }
}

/// The value ECDSA signs: the hash `D` of a raw message, or the caller's
/// digest as is.
fn prehash<D: Digest>(message: &[u8], message_type: MessageType) -> Vec<u8> {
    match message_type {
        MessageType::Raw => D::digest(message).to_vec(),
        MessageType::Digest => message.to_vec(),
    }
}

fn ed25519_signing_key(spec: KeySpec, material: &[u8]) -> Result<ed25519_dalek::SigningKey, Error> {
    let seed = <&[u8; 32]>::try_from(material).map_err(|_| Error::InvalidKeyMaterial {
        spec: spec.name(),
        reason: "wrong length",
    })?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}

/// Signs `message` with the key whose material is `material`.
///
/// Errors: [`Error::AlgorithmMismatch`] unless `algorithm` is one of
/// [`KeySpec::signing_algorithms`]; [`Error::EmptyMessage`] and
/// [`Error::MessageTooLarge`] (above [`MAX_SIGN_MESSAGE_BYTES`]) for raw
/// messages; [`Error::UnsupportedMessageType`] for a digest with Ed25519;
/// [`Error::InvalidDigestLength`] for a digest of the wrong length;
/// [`Error::InvalidKeyMaterial`] if `material` does not fit `spec`.
pub fn sign(
    spec: KeySpec,
    material: &[u8],
    algorithm: SigningAlgorithm,
    message: &[u8],
    message_type: MessageType,
) -> Result<Vec<u8>, Error> {
    check_request(spec, algorithm, message, message_type)?;
    sign_checked(spec, material, algorithm, message, message_type)
}

/// [`sign`] after the request checks, so the RFC 8032 vector with an empty
/// message can still be tested against the signing code.
fn sign_checked(
    spec: KeySpec,
    material: &[u8],
    algorithm: SigningAlgorithm,
    message: &[u8],
    message_type: MessageType,
) -> Result<Vec<u8>, Error> {
    match algorithm {
        SigningAlgorithm::Ed25519 => {
            let key = ed25519_signing_key(spec, material)?;
            Ok(key.sign(message).to_vec())
        }
        SigningAlgorithm::EcdsaSha256 => ecdsa_p256::sign(
            ec_secret_key(spec, material)?,
            &prehash::<Sha256>(message, message_type),
        ),
        SigningAlgorithm::EcdsaSha384 => ecdsa_p384::sign(
            ec_secret_key(spec, material)?,
            &prehash::<Sha384>(message, message_type),
        ),
    }
}

/// ECDSA on one curve crate (`p256`, `p384`), whose types are named alike: RFC 6979 signing of
/// a prehash and verification of a DER signature against a SubjectPublicKeyInfo DER key.
macro_rules! ecdsa_on {
    ($module:ident, $curve:ident, $digest_len:expr) => {
        mod $module {
            use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
            use spki::DecodePublicKey;

            use super::digest_error;
            use crate::Error;

            pub(super) fn sign(key: $curve::SecretKey, prehash: &[u8]) -> Result<Vec<u8>, Error> {
                let signature: $curve::ecdsa::DerSignature = $curve::ecdsa::SigningKey::from(key)
                    .sign_prehash(prehash)
                    .map_err(|_| digest_error(prehash, $digest_len))?;
                Ok(signature.as_bytes().to_vec())
            }

            pub(super) fn verify(
                public_key_der: &[u8],
                prehash: &[u8],
                signature: &[u8],
            ) -> Result<bool, Error> {
                let key = $curve::ecdsa::VerifyingKey::from_public_key_der(public_key_der)
                    .map_err(|_| Error::InvalidPublicKey)?;
                let signature = $curve::ecdsa::DerSignature::from_bytes(signature)
                    .and_then($curve::ecdsa::Signature::try_from)
                    .map_err(|_| Error::MalformedSignature)?;
                Ok(key.verify_prehash(prehash, &signature).is_ok())
            }
        }
    };
}

ecdsa_on!(ecdsa_p256, p256, 32);
ecdsa_on!(ecdsa_p384, p384, 48);

/// The only reason RFC 6979 signing can refuse a prehash is its length,
/// which [`check_request`] has already fixed; reported as such anyway.
fn digest_error(prehash: &[u8], expected: usize) -> Error {
    Error::InvalidDigestLength {
        expected,
        actual: prehash.len(),
    }
}

/// The public key of an asymmetric key, as X.509 SubjectPublicKeyInfo DER
/// (what `GetPublicKey` returns and [`verify`] takes).
///
/// Errors: [`Error::NotAsymmetric`] for symmetric specs,
/// [`Error::InvalidKeyMaterial`] if `material` does not fit `spec`.
pub fn public_key_der(spec: KeySpec, material: &[u8]) -> Result<Vec<u8>, Error> {
    let document = match spec {
        KeySpec::Aes256Gcm | KeySpec::HmacSha256 | KeySpec::HmacSha512 => {
            return Err(Error::NotAsymmetric { spec: spec.name() })
        }
        KeySpec::Ed25519 => ed25519_signing_key(spec, material)?
            .verifying_key()
            .to_public_key_der(),
        KeySpec::EcdsaP256 => p256::ecdsa::SigningKey::from(ec_secret_key(spec, material)?)
            .verifying_key()
            .to_public_key_der(),
        KeySpec::EcdsaP384 => p384::ecdsa::SigningKey::from(ec_secret_key(spec, material)?)
            .verifying_key()
            .to_public_key_der(),
    };
    // Encoding a valid key into a fixed-size structure does not fail.
    document
        .map(spki::Document::into_vec)
        .map_err(|_| Error::InvalidPublicKey)
}

/// [`public_key_der`] armoured as PEM (`-----BEGIN PUBLIC KEY-----`), the
/// form `openssl` and most libraries load directly.
pub fn public_key_pem(spec: KeySpec, material: &[u8]) -> Result<String, Error> {
    public_key_der(spec, material).map(|der| pem::encode(pem::PUBLIC_KEY_LABEL, &der))
}

/// Verifies `signature` over `message` against a SubjectPublicKeyInfo DER
/// public key of spec `spec`.
///
/// Returns `Ok(true)` for a valid signature and `Ok(false)` for a
/// well-formed signature that does not verify (wrong key, other message,
/// tampering). Ed25519 verification is strict (RFC 8032 §5.1.7 with
/// canonical `S` and no small-order keys or `R`).
///
/// Errors: the request errors of [`sign`]; [`Error::InvalidPublicKey`] if
/// `public_key_der` is not a valid SubjectPublicKeyInfo for `spec` (another
/// algorithm or curve, trailing bytes, a point not on the curve);
/// [`Error::MalformedSignature`] if `signature` is not even structurally a
/// signature of the algorithm (not 64 bytes for Ed25519; not strict DER
/// or a scalar outside `1..n` for ECDSA).
pub fn verify(
    spec: KeySpec,
    public_key_der: &[u8],
    algorithm: SigningAlgorithm,
    message: &[u8],
    message_type: MessageType,
    signature: &[u8],
) -> Result<bool, Error> {
    check_request(spec, algorithm, message, message_type)?;
    verify_checked(public_key_der, algorithm, message, message_type, signature)
}

/// [`verify`] after the request checks.
fn verify_checked(
    public_key_der: &[u8],
    algorithm: SigningAlgorithm,
    message: &[u8],
    message_type: MessageType,
    signature: &[u8],
) -> Result<bool, Error> {
    match algorithm {
        SigningAlgorithm::Ed25519 => {
            let key = ed25519_dalek::VerifyingKey::from_public_key_der(public_key_der)
                .map_err(|_| Error::InvalidPublicKey)?;
            let signature = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| Error::MalformedSignature)?;
            Ok(key.verify_strict(message, &signature).is_ok())
        }
        SigningAlgorithm::EcdsaSha256 => ecdsa_p256::verify(
            public_key_der,
            &prehash::<Sha256>(message, message_type),
            signature,
        ),
        SigningAlgorithm::EcdsaSha384 => ecdsa_p384::verify(
            public_key_der,
            &prehash::<Sha384>(message, message_type),
            signature,
        ),
    }
}

#[cfg(test)]
mod tests;
