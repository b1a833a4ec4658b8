//! The audit key: a subkey of the barrier that keys the HMACs which stand in for
//! caller-supplied values (encryption-context values, names, tag values) in audit records.
//!
//! The key is derived from the **root key** with HKDF-SHA256 under its own label, so it exists
//! only while a node is unsealed, is the same on every node of a cluster, and never changes
//! (the root key is never rotated): an investigator's HMAC of a value matches records written
//! before and after a barrier rotation, the retirement of old terms, or a rekey. It is never
//! stored.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{kdf, Error, SecretKey256};

/// HKDF info of the audit key; no other derivation uses it.
pub const AUDIT_KEY_INFO: &[u8] = b"tessera/v1/audit-hmac";

/// The key for audit HMACs.
///
/// `Debug` is redacted by [`SecretKey256`].
#[derive(Clone, Debug)]
pub struct AuditKey(SecretKey256);

impl AuditKey {
    /// Derives the audit key from the cluster's root key.
    ///
    /// # Errors
    /// [`Error::KdfOutputTooLong`] cannot happen for a 32-byte output.
    pub fn derive(root_key: &SecretKey256) -> Result<Self, Error> {
        Ok(Self(kdf::derive_subkey(root_key, &[], AUDIT_KEY_INFO)?))
    }

    /// HMAC-SHA256 of `value` under the audit key.
    pub fn hmac(&self, value: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_bytes()) else {
            return [0; 32];
        };
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_depends_on_root_key;

    #[test]
    fn the_audit_key_differs_per_root_key_and_per_value() {
        assert_depends_on_root_key(|root| AuditKey::derive(root).unwrap().hmac(b"tenant-a"));
        let key = AuditKey::derive(&SecretKey256::generate(&mut crate::os_rng())).unwrap();
        assert_ne!(key.hmac(b"tenant-a"), key.hmac(b"tenant-b"));
    }

    #[test]
    fn the_audit_hmac_is_hmac_sha256_under_the_hkdf_subkey() {
        let root = SecretKey256::from_bytes([7; 32]);
        let mut subkey = [0u8; 32];
        kdf::hkdf_sha256(&[7; 32], &[], AUDIT_KEY_INFO, &mut subkey).unwrap();
        let expected = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &subkey),
            b"value",
        );
        assert_eq!(
            AuditKey::derive(&root).unwrap().hmac(b"value").as_slice(),
            expected.as_ref()
        );
    }
}
