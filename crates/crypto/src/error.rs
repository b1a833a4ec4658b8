//! The one error type of this crate.

/// Everything that can go wrong in `tessera-crypto`.
///
/// Variants carry structured, non-secret detail so callers can map them to
/// API status codes without parsing strings. Authentication failures are
/// deliberately opaque: [`Error::Unseal`] and [`Error::Decrypt`] never say
/// which check failed (wrong key, wrong AAD, tampered bytes), because that
/// detail would help an attacker probing ciphertexts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A fixed-size value was built from a slice of the wrong length.
    #[error("invalid length: expected {expected} bytes, got {actual}")]
    InvalidLength {
        /// The length the value must have.
        expected: usize,
        /// The length that was supplied.
        actual: usize,
    },

    /// Bytes do not follow the documented layout (truncated, trailing
    /// bytes, bad field). `what` names the structure and part.
    #[error("malformed {what}")]
    Malformed {
        /// Which structure (and part of it) is malformed.
        what: &'static str,
    },

    /// A versioned format starts with a version byte this build does not know.
    #[error("unsupported {what} version {version:#04x}")]
    UnsupportedVersion {
        /// Which format carried the version byte.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },

    /// A barrier blob did not authenticate: wrong key, wrong AAD or
    /// tampered bytes. Intentionally says nothing more.
    #[error("barrier blob could not be opened")]
    Unseal,

    /// A barrier blob names a keyring term the keyring does not hold.
    #[error("no barrier key for term {term}")]
    UnknownTerm {
        /// The term read from the blob.
        term: u32,
    },

    /// The keyring already uses the largest representable term number.
    #[error("keyring term numbers are exhausted")]
    TermExhausted,

    /// An unseal share is unusable (bad encoding, zero identifier,
    /// duplicate identifier, no shares at all).
    #[error("invalid unseal share: {reason}")]
    InvalidShare {
        /// Why the share (or share set) was rejected.
        reason: &'static str,
    },

    /// Shamir parameters outside `1 <= threshold <= shares`.
    #[error("invalid Shamir parameters: threshold {threshold} of {shares} shares")]
    InvalidShamirParameters {
        /// The requested threshold.
        threshold: u8,
        /// The requested number of shares.
        shares: u8,
    },

    /// The supplied shares do not combine to this cluster's unseal key
    /// (too few shares, shares of another cluster, or corrupted shares).
    #[error("the unseal shares do not combine to this cluster's unseal key")]
    WrongUnsealKey,

    /// An encryption context breaks a rule (empty key, too many pairs,
    /// too many bytes).
    #[error("invalid encryption context: {reason}")]
    InvalidContext {
        /// Which rule was broken.
        reason: &'static str,
    },

    /// Encrypting nothing is refused: it is almost always a caller bug.
    #[error("plaintext is empty")]
    EmptyPlaintext,

    /// A plaintext exceeds the documented limit of the operation.
    #[error("plaintext of {len} bytes exceeds the limit of {max} bytes")]
    PlaintextTooLarge {
        /// The plaintext length supplied.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },

    /// Associated data exceeds the documented limit of the operation.
    #[error("associated data of {len} bytes exceeds the limit of {max} bytes")]
    AadTooLarge {
        /// The associated-data length supplied.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },

    /// A key id is empty, longer than 64 bytes, or not printable ASCII.
    #[error("invalid key id")]
    InvalidKeyId,

    /// A customer ciphertext did not authenticate: wrong key, wrong
    /// context or tampered bytes. Intentionally says nothing more.
    #[error("decryption failed")]
    Decrypt,

    /// A key spec name that this build does not know.
    #[error("unknown key spec {name:?}")]
    UnknownKeySpec {
        /// The name that was supplied, cut by [`crate::truncate_for_message`].
        name: String,
    },

    /// HKDF-SHA256 cannot produce more than 255 × 32 bytes.
    #[error("KDF output of {len} bytes exceeds the limit of {max} bytes")]
    KdfOutputTooLong {
        /// The requested output length.
        len: usize,
        /// The largest possible output length.
        max: usize,
    },

    /// Key material does not fit its spec: wrong length, or for ECDSA a
    /// scalar that is zero or not below the group order. Raised for BYOK
    /// imports and, should storage hand back bad bytes, for any operation.
    #[error("invalid {spec} key material: {reason}")]
    InvalidKeyMaterial {
        /// API name of the spec the material was checked against.
        spec: &'static str,
        /// Which rule the material broke (never the material itself).
        reason: &'static str,
    },

    /// A signing or MAC algorithm name that this build does not know.
    #[error("unknown algorithm {name:?}")]
    UnknownAlgorithm {
        /// The name that was supplied, cut by [`crate::truncate_for_message`].
        name: String,
    },

    /// A message type name that this build does not know.
    #[error("unknown message type {name:?}")]
    UnknownMessageType {
        /// The name that was supplied, cut by [`crate::truncate_for_message`].
        name: String,
    },

    /// The algorithm cannot be used with a key of this spec (for example
    /// `ECDSA_SHA_384` with an `ECDSA_P256` key, or any signing algorithm
    /// with a symmetric key).
    #[error("algorithm {algorithm} cannot be used with a {spec} key")]
    AlgorithmMismatch {
        /// API name of the key spec.
        spec: &'static str,
        /// API name of the requested algorithm.
        algorithm: &'static str,
    },

    /// The algorithm does not accept this message type (Ed25519 signs
    /// whole messages only, never a pre-computed digest).
    #[error("algorithm {algorithm} does not accept message type {message_type}")]
    UnsupportedMessageType {
        /// API name of the algorithm.
        algorithm: &'static str,
        /// API name of the refused message type.
        message_type: &'static str,
    },

    /// Signing, verifying or MACing nothing is refused: it is almost
    /// always a caller bug.
    #[error("message is empty")]
    EmptyMessage,

    /// A message exceeds the documented limit of the operation.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The message length supplied.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },

    /// A pre-computed digest does not have the length of the algorithm's
    /// hash, so it cannot be the digest that algorithm signs.
    #[error("digest of {actual} bytes, expected {expected} for the algorithm's hash")]
    InvalidDigestLength {
        /// The length of the algorithm's hash output.
        expected: usize,
        /// The length that was supplied.
        actual: usize,
    },

    /// A public key cannot be used: not decodable, not for the expected
    /// algorithm or curve, or (for X25519) one that yields an all-zero
    /// shared secret.
    #[error("invalid public key")]
    InvalidPublicKey,

    /// A signature is not even structurally valid for the algorithm (bad
    /// DER, wrong length, scalars out of range). A well-formed signature
    /// that simply does not verify is not an error but `Ok(false)`.
    #[error("malformed signature")]
    MalformedSignature,

    /// The operation needs an asymmetric key but the spec is symmetric.
    #[error("{spec} is not an asymmetric key spec")]
    NotAsymmetric {
        /// API name of the spec.
        spec: &'static str,
    },

    /// The operation needs an HMAC key but the spec is not an HMAC spec.
    #[error("{spec} is not an HMAC key spec")]
    NotHmac {
        /// API name of the spec.
        spec: &'static str,
    },
}

/// Fails with [`Error::PlaintextTooLarge`] when `plaintext` is longer than `max` bytes.
pub(crate) fn plaintext_at_most(plaintext: &[u8], max: usize) -> Result<(), Error> {
    at_most(plaintext, max, |len, max| Error::PlaintextTooLarge {
        len,
        max,
    })
}

/// Fails with [`Error::AadTooLarge`] when `aad` is longer than `max` bytes.
pub(crate) fn aad_at_most(aad: &[u8], max: usize) -> Result<(), Error> {
    at_most(aad, max, |len, max| Error::AadTooLarge { len, max })
}

/// Fails with [`Error::MessageTooLarge`] when `message` is longer than `max` bytes.
pub(crate) fn message_at_most(message: &[u8], max: usize) -> Result<(), Error> {
    at_most(message, max, |len, max| Error::MessageTooLarge { len, max })
}

/// Fails with the error `too_large` makes of the length and `max` when `input` is longer than
/// `max` bytes.
fn at_most(input: &[u8], max: usize, too_large: fn(usize, usize) -> Error) -> Result<(), Error> {
    if input.len() > max {
        Err(too_large(input.len(), max))
    } else {
        Ok(())
    }
}

/// Splits the first `N` bytes, the header, off `bytes` of a versioned format: its first byte
/// must be `version`, the one this build reads ([`Error::UnsupportedVersion`] naming `format`
/// otherwise); fewer than `N` bytes are `malformed`.
pub(crate) fn versioned_header<'a, const N: usize>(
    bytes: &'a [u8],
    version: u8,
    format: &'static str,
    malformed: Error,
) -> Result<(&'a [u8; N], &'a [u8]), Error> {
    let found = *bytes.first().ok_or_else(|| malformed.clone())?;
    if found != version {
        return Err(Error::UnsupportedVersion {
            what: format,
            version: found,
        });
    }
    bytes.split_first_chunk::<N>().ok_or(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_structured_detail() {
        assert_eq!(
            Error::UnsupportedVersion {
                what: "ciphertext",
                version: 2
            }
            .to_string(),
            "unsupported ciphertext version 0x02"
        );
        assert_eq!(
            Error::Malformed {
                what: "keyring header"
            }
            .to_string(),
            "malformed keyring header"
        );
        assert_eq!(Error::Decrypt.to_string(), "decryption failed");
        assert_eq!(
            Error::Unseal.to_string(),
            "barrier blob could not be opened"
        );
    }

    #[test]
    fn unknown_names_are_echoed_cut() {
        let huge = "N".repeat(1 << 20);
        for error in [
            crate::KeySpec::parse(&huge).map(drop),
            crate::SigningAlgorithm::parse(&huge).map(drop),
            crate::MacAlgorithm::parse(&huge).map(drop),
            crate::MessageType::parse(&huge).map(drop),
        ] {
            let message = error.unwrap_err().to_string();
            assert!(message.len() < 200, "{} bytes", message.len());
            assert!(
                message.contains(&"N".repeat(crate::echo::MAX_ECHO_BYTES)),
                "{message}"
            );
        }
    }
}
