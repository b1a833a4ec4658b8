//! The one AES-256-GCM construction every Tessera blob format shares.
//!
//! The barrier, customer ciphertexts and wrapped keys differ in their
//! headers and key derivation but not in how they use GCM: the header is
//! written first, the plaintext is encrypted in place behind it, and the
//! 16-byte tag is appended. Keeping that in one place means a plaintext
//! copy is wiped on every error path in one place too.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, SecretBytes, SecretKey256};

/// GCM nonce length (96 bits).
pub(crate) const NONCE_LEN: usize = 12;
/// GCM tag length (128 bits).
pub(crate) const TAG_LEN: usize = 16;

/// AES-GCM refused an input: over its size limit on seal, or failed
/// authentication on open. Callers map it to their own opaque error.
#[derive(Debug)]
pub(crate) struct GcmError;

/// Encrypts `blob[body_start..]` in place under `key`, `nonce` and `aad`,
/// then appends the tag.
///
/// On failure the whole of `blob` (which holds plaintext) is wiped before
/// the error returns.
pub(crate) fn seal_tail(
    key: &SecretKey256,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    blob: &mut Vec<u8>,
    body_start: usize,
) -> Result<(), GcmError> {
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    let sealed = blob
        .get_mut(body_start..)
        .map(|body| cipher.encrypt_inout_detached(nonce.into(), aad, body.into()));
    match sealed {
        Some(Ok(tag)) => {
            blob.extend_from_slice(&tag);
            Ok(())
        }
        _ => {
            blob.zeroize();
            Err(GcmError)
        }
    }
}

/// Appends `plaintext` to `blob` (a format's header so far) and seals it
/// with [`seal_tail`], for a format whose plaintext limit is `max`.
///
/// AES-GCM only refuses inputs over its own size limit, far above every
/// format's limit (which callers check first), so a refusal is reported as
/// the plaintext being too large rather than as a new error.
pub(crate) fn seal_appended(
    key: &SecretKey256,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    mut blob: Vec<u8>,
    plaintext: &[u8],
    max: usize,
) -> Result<Vec<u8>, Error> {
    let body_start = blob.len();
    blob.extend_from_slice(plaintext);
    seal_tail(key, nonce, aad, &mut blob, body_start).map_err(|_| Error::PlaintextTooLarge {
        len: plaintext.len(),
        max,
    })?;
    Ok(blob)
}

/// Decrypts `ciphertext` under `key`, `nonce` and `aad` against `tag`.
///
/// The plaintext is only ever held in zeroizing buffers; a failed
/// authentication leaves nothing behind.
pub(crate) fn open_detached(
    key: &SecretKey256,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8; TAG_LEN],
) -> Result<SecretBytes, GcmError> {
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_inout_detached(nonce.into(), aad, buffer.as_mut_slice().into(), tag.into())
        .map_err(|_| GcmError)?;
    Ok(SecretBytes::new(core::mem::take(&mut *buffer)))
}
