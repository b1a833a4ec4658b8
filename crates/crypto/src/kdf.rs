//! Key derivation: HKDF-SHA256 (RFC 5869).

use hkdf::Hkdf;
use sha2::Sha256;

use crate::{Error, SecretKey256};

/// Longest output HKDF-SHA256 can produce: 255 blocks of 32 bytes.
pub const HKDF_SHA256_MAX_OUTPUT: usize = 255 * 32;

/// HKDF-SHA256 extract-then-expand of `ikm` with `salt` and `info`,
/// filling all of `out`.
///
/// An empty `salt` is equivalent to RFC 5869's default of 32 zero bytes.
/// Fails with [`Error::KdfOutputTooLong`] if `out` is longer than
/// [`HKDF_SHA256_MAX_OUTPUT`].
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), Error> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .map_err(|_| Error::KdfOutputTooLong {
            len: out.len(),
            max: HKDF_SHA256_MAX_OUTPUT,
        })
}

/// Derives a 256-bit subkey of `ikm` for the purpose named by `info`,
/// randomized by `salt`.
///
/// Used for per-message keys, so a long-lived key never encrypts directly.
/// A 32-byte output is always within HKDF's limit, so this does not fail in
/// practice; the `Result` is kept so that no error path is silently
/// ignored.
pub fn derive_subkey(ikm: &SecretKey256, salt: &[u8], info: &[u8]) -> Result<SecretKey256, Error> {
    let mut key = SecretKey256::zero();
    hkdf_sha256(ikm.as_bytes(), salt, info, key.as_mut_bytes())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Vectors {
        source: String,
        hash: String,
        cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        name: String,
        ikm: String,
        salt: String,
        info: String,
        length: usize,
        prk: String,
        okm: String,
    }

    fn vectors() -> Vectors {
        serde_json::from_str(include_str!("../tests/data/rfc5869.json")).unwrap()
    }

    #[test]
    fn rfc5869_sha256_vectors() {
        let vectors = vectors();
        assert!(vectors.source.contains("RFC 5869"));
        assert_eq!(vectors.hash, "SHA-256");
        assert_eq!(vectors.cases.len(), 3);
        for case in &vectors.cases {
            let ikm = hex::decode(&case.ikm).unwrap();
            let salt = hex::decode(&case.salt).unwrap();
            let info = hex::decode(&case.info).unwrap();
            let mut okm = vec![0u8; case.length];
            hkdf_sha256(&ikm, &salt, &info, &mut okm).unwrap();
            assert_eq!(hex::encode(&okm), case.okm, "{}", case.name);

            let (prk, _) = Hkdf::<Sha256>::extract(Some(&salt), &ikm);
            assert_eq!(hex::encode(prk), case.prk, "{}", case.name);
        }
    }

    #[test]
    fn derive_subkey_is_32_bytes_of_hkdf() {
        let ikm = SecretKey256::from_bytes([0x0b; 32]);
        let a = derive_subkey(&ikm, b"salt", b"purpose a").unwrap();
        let b = derive_subkey(&ikm, b"salt", b"purpose b").unwrap();
        let c = derive_subkey(&ikm, b"other salt", b"purpose a").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        let mut expected = [0u8; 32];
        hkdf_sha256(ikm.as_bytes(), b"salt", b"purpose a", &mut expected).unwrap();
        assert_eq!(a.as_bytes(), &expected);
        // Computed independently with Python's hmac/hashlib.
        assert_eq!(
            hex::encode(a.as_bytes()),
            "b8f44d476cb3edee8a3c02053c3b3a02b6002e4613aae59a9f03e040db238cdb"
        );
    }

    #[test]
    fn output_length_is_limited() {
        let mut max = vec![0u8; HKDF_SHA256_MAX_OUTPUT];
        assert!(hkdf_sha256(b"ikm", b"", b"", &mut max).is_ok());
        let mut over = vec![0u8; HKDF_SHA256_MAX_OUTPUT + 1];
        assert_eq!(
            hkdf_sha256(b"ikm", b"", b"", &mut over),
            Err(Error::KdfOutputTooLong {
                len: HKDF_SHA256_MAX_OUTPUT + 1,
                max: HKDF_SHA256_MAX_OUTPUT
            })
        );
    }
}
