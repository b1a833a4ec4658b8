//! Helpers shared by this crate's unit tests.

use core::fmt::Debug;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::gcm::TAG_LEN;
use crate::{Error, SecretKey256};

/// A deterministic rng, so a test's random draws (and pinned bytes) repeat.
pub(crate) fn seeded_rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// A key made of one repeated byte: distinct bytes give distinct keys.
pub(crate) fn repeated_key(byte: u8) -> SecretKey256 {
    SecretKey256::from_bytes([byte; 32])
}

/// Checks that `derive` is a function of the root key: the same random root
/// key gives the same output twice, and another random root key another one.
pub(crate) fn assert_depends_on_root_key<T: PartialEq + Debug>(
    derive: impl Fn(&SecretKey256) -> T,
) {
    let mut rng = crate::os_rng();
    let root = SecretKey256::generate(&mut rng);
    let other = SecretKey256::generate(&mut rng);
    assert_eq!(derive(&root), derive(&root));
    assert_ne!(derive(&other), derive(&root));
}

/// The message rules an operation and its checking counterpart share: both
/// refuse an empty message, and one a byte over `max`, with the same error.
/// `produce` makes a MAC or signature over a message; `check` verifies one
/// over it.
pub(crate) fn assert_message_rules<P, C>(
    max: usize,
    produce: impl Fn(&[u8]) -> Result<P, Error>,
    check: impl Fn(&[u8]) -> Result<C, Error>,
) where
    P: PartialEq + Debug,
    C: PartialEq + Debug,
{
    let too_large = Error::MessageTooLarge { len: max + 1, max };
    let big = vec![1u8; max + 1];
    for (message, expected) in [(&[][..], Error::EmptyMessage), (&big[..], too_large)] {
        assert_eq!(produce(message), Err(expected.clone()), "{expected}");
        assert_eq!(check(message), Err(expected));
    }
}

/// What opening a blob cut to `len` bytes must report, for a format whose
/// header is `header_len` bytes: the header's `Malformed` error while the
/// header is incomplete, the body's while no whole tag follows it, and the
/// opaque [`Error::Decrypt`] once only authentication can fail.
pub(crate) fn truncation_error(
    len: usize,
    header_len: usize,
    header: &'static str,
    body: &'static str,
) -> Error {
    if len < header_len {
        Error::Malformed { what: header }
    } else if len < header_len + TAG_LEN {
        Error::Malformed { what: body }
    } else {
        Error::Decrypt
    }
}

/// The blob layout every format documents, rebuilt with the `aes-gcm` one-shot API rather
/// than the crate's own sealing code: `header`, then AES-256-GCM of `msg` under `key` and
/// `nonce` with `header || aad_tail` as associated data (ciphertext and tag).
pub(crate) fn reference_blob(
    key: &[u8; 32],
    nonce: &[u8; 12],
    header: Vec<u8>,
    aad_tail: &[u8],
    msg: &[u8],
) -> Vec<u8> {
    let mut aad = header.clone();
    aad.extend_from_slice(aad_tail);
    let body = Aes256Gcm::new(key.into())
        .encrypt(nonce.into(), Payload { msg, aad: &aad })
        .unwrap();
    let mut blob = header;
    blob.extend_from_slice(&body);
    blob
}
