//! The audit key: a subkey of the barrier that keys the HMACs which stand in for
//! caller-supplied values (encryption-context values, names, tag values) in audit records.
//!
//! The key is derived from the keyring's **first** term with HKDF-SHA256 under its own label,
//! so it exists only while a node is unsealed, is the same on every node of a cluster, and does
//! not change when the keyring gains terms: an investigator's HMAC of a value matches records
//! written before and after a rotation. It is never stored.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{kdf, Error, Keyring, SecretKey256};

/// HKDF info of the audit key; no other derivation uses it.
pub const AUDIT_KEY_INFO: &[u8] = b"tessera/v1/audit-hmac";

/// The key for audit HMACs.
///
/// `Debug` is redacted by [`SecretKey256`].
#[derive(Clone, Debug)]
pub struct AuditKey(SecretKey256);

impl AuditKey {
    /// Derives the audit key from `keyring`'s first (oldest) term.
    ///
    /// # Errors
    /// [`Error::UnknownTerm`] for a keyring without terms (its constructors never make one);
    /// [`Error::KdfOutputTooLong`] cannot happen for a 32-byte output.
    pub fn derive(keyring: &Keyring) -> Result<Self, Error> {
        let first = keyring.first_key().ok_or(Error::UnknownTerm { term: 1 })?;
        Ok(Self(kdf::derive_subkey(first, &[], AUDIT_KEY_INFO)?))
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

    #[test]
    fn the_audit_key_is_stable_across_terms_and_differs_per_keyring() {
        let mut rng = crate::os_rng();
        let mut keyring = Keyring::generate(&mut rng);
        let before = AuditKey::derive(&keyring).unwrap().hmac(b"tenant-a");
        keyring.rotate(&mut rng).unwrap();
        let after = AuditKey::derive(&keyring).unwrap().hmac(b"tenant-a");
        assert_eq!(before, after);
        let other = AuditKey::derive(&Keyring::generate(&mut rng))
            .unwrap()
            .hmac(b"tenant-a");
        assert_ne!(before, other);
        assert_ne!(
            before,
            AuditKey::derive(&keyring).unwrap().hmac(b"tenant-b")
        );
    }

    #[test]
    fn the_audit_hmac_is_hmac_sha256_under_the_hkdf_subkey() {
        let keyring = Keyring::new(SecretKey256::from_bytes([7; 32]));
        let mut subkey = [0u8; 32];
        kdf::hkdf_sha256(&[7; 32], &[], AUDIT_KEY_INFO, &mut subkey).unwrap();
        let expected = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &subkey),
            b"value",
        );
        assert_eq!(
            AuditKey::derive(&keyring)
                .unwrap()
                .hmac(b"value")
                .as_slice(),
            expected.as_ref()
        );
    }
}
