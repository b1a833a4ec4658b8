//! The barrier: how every secret the state machine holds is sealed at rest.
//!
//! A barrier blob is AES-256-GCM with a random 96-bit nonce:
//!
//! ```text
//! [0x01 version][term: u32 BE][nonce: 12 bytes][ciphertext || tag: 16 bytes]
//! ```
//!
//! The GCM associated data is `version || term || caller_aad`. The caller
//! AAD binds a blob to its place (for example the storage path of the key
//! it protects), so a blob copied to another place does not open; the
//! version and term are authenticated too, so neither can be rewritten.
//!
//! Random 96-bit nonces are safe for up to about 2^32 seals per key; the
//! keyring is rotated (see [`crate::keyring`]) long before that.

use rand_core::CryptoRng;

use crate::error::{aad_at_most, plaintext_at_most, versioned_header};
use crate::gcm::{self, NONCE_LEN, TAG_LEN};
use crate::{Error, SecretBytes, SecretKey256};

/// Version byte of the only barrier blob layout so far.
pub const BARRIER_BLOB_V1: u8 = 0x01;

/// Largest plaintext, and separately largest caller AAD, [`seal`] accepts
/// (1 GiB). Far above anything Tessera seals, far below AES-GCM's own
/// per-message limits, and representable on 32-bit targets.
pub const MAX_SEAL_INPUT_BYTES: usize = 1 << 30;

const HEADER_LEN: usize = 5;
const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The parts of a structurally valid blob, borrowed from it.
struct Parts<'a> {
    header: &'a [u8; HEADER_LEN],
    term: u32,
    nonce: &'a [u8; NONCE_LEN],
    ciphertext: &'a [u8],
    tag: &'a [u8; TAG_LEN],
}

fn header(term: u32) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = term.to_be_bytes();
    [BARRIER_BLOB_V1, a, b, c, d]
}

fn gcm_aad(header: &[u8; HEADER_LEN], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(HEADER_LEN + aad.len());
    full.extend_from_slice(header);
    full.extend_from_slice(aad);
    full
}

fn parse(blob: &[u8]) -> Result<Parts<'_>, Error> {
    const HEADER: Error = Error::Malformed {
        what: "barrier blob header",
    };
    let (header, rest) =
        versioned_header::<HEADER_LEN>(blob, BARRIER_BLOB_V1, "barrier blob", HEADER)?;
    let term = u32::from_be_bytes(*header.last_chunk::<4>().ok_or(HEADER)?);
    let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>().ok_or(HEADER)?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(Error::Malformed {
        what: "barrier blob body",
    })?;
    Ok(Parts {
        header,
        term,
        nonce,
        ciphertext,
        tag,
    })
}

/// Seals `plaintext` under `key`, labelled with keyring `term` and bound
/// to `aad`.
///
/// The term is stored in clear (authenticated) so the opener can pick the
/// right key; term 0 is used for the root key and keyring themselves.
/// Fails only if `plaintext` or `aad` exceeds [`MAX_SEAL_INPUT_BYTES`].
pub fn seal(
    key: &SecretKey256,
    term: u32,
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Vec<u8>, Error> {
    plaintext_at_most(plaintext, MAX_SEAL_INPUT_BYTES)?;
    aad_at_most(aad, MAX_SEAL_INPUT_BYTES)?;
    let header = header(term);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);

    let mut blob = Vec::with_capacity(OVERHEAD + plaintext.len());
    blob.extend_from_slice(&header);
    blob.extend_from_slice(&nonce);
    gcm::seal_appended(
        key,
        &nonce,
        &gcm_aad(&header, aad),
        blob,
        plaintext,
        MAX_SEAL_INPUT_BYTES,
    )
}

/// Opens a blob made by [`seal`] with the same `key` and `aad`.
///
/// Errors: [`Error::Malformed`] if the blob is too short,
/// [`Error::UnsupportedVersion`] for an unknown version byte, and the
/// opaque [`Error::Unseal`] for a wrong key, wrong AAD or any tampering.
pub fn open(key: &SecretKey256, aad: &[u8], blob: &[u8]) -> Result<SecretBytes, Error> {
    let parts = parse(blob)?;
    gcm::open_detached(
        key,
        parts.nonce,
        &gcm_aad(parts.header, aad),
        parts.ciphertext,
        parts.tag,
    )
    .map_err(|_| Error::Unseal)
}

/// Reads the keyring term a blob was sealed under, so the opener can pick
/// the key. The term is not trusted until [`open`] succeeds.
///
/// Applies the same structural checks as [`open`].
pub fn blob_term(blob: &[u8]) -> Result<u32, Error> {
    parse(blob).map(|parts| parts.term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{repeated_key as key, seeded_rng};
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        seeded_rng(3)
    }

    #[test]
    fn round_trip() {
        let mut rng = rng();
        for plaintext in [&b""[..], b"x", b"a longer secret value"] {
            let blob = seal(&key(1), 7, b"path/a", plaintext, &mut rng).unwrap();
            assert_eq!(blob.len(), OVERHEAD + plaintext.len());
            assert_eq!(blob.first(), Some(&BARRIER_BLOB_V1));
            assert_eq!(blob_term(&blob).unwrap(), 7);
            let opened = open(&key(1), b"path/a", &blob).unwrap();
            assert_eq!(opened.as_slice(), plaintext);
        }
    }

    #[test]
    fn layout_is_header_nonce_body_tag() {
        let blob = seal(&key(1), 0x0102_0304, b"", b"abc", &mut rng()).unwrap();
        assert_eq!(blob.get(..5).unwrap(), &[1, 1, 2, 3, 4]);
        let mut expected_nonce = [0u8; 12];
        rand_core::Rng::fill_bytes(&mut rng(), &mut expected_nonce);
        assert_eq!(blob.get(5..17).unwrap(), &expected_nonce);
        assert_eq!(blob.len(), 5 + 12 + 3 + 16);
    }

    #[test]
    fn nonces_are_fresh() {
        let mut rng = rng();
        let a = seal(&key(1), 1, b"", b"same", &mut rng).unwrap();
        let b = seal(&key(1), 1, b"", b"same", &mut rng).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_aad_fails() {
        let blob = seal(&key(1), 1, b"path/a", b"secret", &mut rng()).unwrap();
        assert_eq!(open(&key(1), b"path/b", &blob), Err(Error::Unseal));
        assert_eq!(open(&key(1), b"", &blob), Err(Error::Unseal));
    }

    #[test]
    fn wrong_key_fails() {
        let blob = seal(&key(1), 1, b"path/a", b"secret", &mut rng()).unwrap();
        assert_eq!(open(&key(2), b"path/a", &blob), Err(Error::Unseal));
    }

    #[test]
    fn moved_blob_fails() {
        // A blob copied from one storage slot to another must not open
        // there: the slot's path is the AAD.
        let mut rng = rng();
        let a = seal(&key(1), 1, b"keys/a/v1", b"material a", &mut rng).unwrap();
        let b = seal(&key(1), 1, b"keys/b/v1", b"material b", &mut rng).unwrap();
        assert_eq!(open(&key(1), b"keys/b/v1", &a), Err(Error::Unseal));
        assert_eq!(open(&key(1), b"keys/a/v1", &b), Err(Error::Unseal));
    }

    #[test]
    fn term_is_authenticated() {
        let blob = seal(&key(1), 1, b"aad", b"secret", &mut rng()).unwrap();
        for term in [0u32, 2, u32::MAX] {
            let mut tampered = blob.clone();
            tampered.splice(1..5, term.to_be_bytes());
            assert_eq!(blob_term(&tampered).unwrap(), term);
            assert_eq!(open(&key(1), b"aad", &tampered), Err(Error::Unseal));
        }
    }

    #[test]
    fn every_bit_flip_fails() {
        let blob = seal(&key(1), 1, b"aad", b"secret", &mut rng()).unwrap();
        for index in 0..blob.len() {
            for bit in 0..8 {
                let mut tampered = blob.clone();
                *tampered.get_mut(index).unwrap() ^= 1 << bit;
                assert!(open(&key(1), b"aad", &tampered).is_err());
            }
        }
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let blob = seal(&key(1), 1, b"aad", b"secret", &mut rng()).unwrap();
        for len in 0..blob.len() {
            let truncated = blob.get(..len).unwrap();
            let expected = match len {
                0..17 => Error::Malformed {
                    what: "barrier blob header",
                },
                17..33 => Error::Malformed {
                    what: "barrier blob body",
                },
                _ => Error::Unseal,
            };
            assert_eq!(open(&key(1), b"aad", truncated), Err(expected.clone()));
            if expected != Error::Unseal {
                assert_eq!(blob_term(truncated), Err(expected));
            }
        }
    }

    #[test]
    fn unknown_version_is_reported() {
        let mut blob = seal(&key(1), 1, b"aad", b"secret", &mut rng()).unwrap();
        *blob.first_mut().unwrap() = 0x02;
        let expected = Error::UnsupportedVersion {
            what: "barrier blob",
            version: 2,
        };
        assert_eq!(open(&key(1), b"aad", &blob), Err(expected.clone()));
        assert_eq!(blob_term(&blob), Err(expected));
    }
}
