//! The cluster id: a public name for one cluster's key material, written into backups so a
//! restore can tell "this cluster" from "another cluster".
//!
//! The state has no id of its own, and storing one would change the state's encoding. The id
//! is therefore derived, like the audit key (`crate::audit`), from the keyring's **first**
//! term with HKDF-SHA256 under its own label: the same on every node, unchanged by barrier
//! rotation (a new term) and by a rekey (new shares, same keyring), different for every
//! `operator init`. HKDF outputs under distinct labels are independent, so publishing the id
//! reveals nothing about the term key or any other subkey. It exists only on an unsealed node.

use crate::{kdf, Error, Keyring};

/// HKDF info of the cluster id; no other derivation uses it.
pub const CLUSTER_ID_INFO: &[u8] = b"tessera/v1/cluster-id";

/// Length of a cluster id in bytes.
pub const CLUSTER_ID_LEN: usize = 32;

/// Derives the cluster id from `keyring`'s first (oldest) term.
///
/// # Errors
/// [`Error::UnknownTerm`] for a keyring without terms (its constructors never make one).
pub fn cluster_id(keyring: &Keyring) -> Result<[u8; CLUSTER_ID_LEN], Error> {
    let first = keyring.first_key().ok_or(Error::UnknownTerm { term: 1 })?;
    Ok(*kdf::derive_subkey(first, &[], CLUSTER_ID_INFO)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditKey, SecretKey256};

    #[test]
    fn the_id_is_stable_across_terms_and_differs_per_keyring() {
        let mut rng = crate::os_rng();
        let mut keyring = Keyring::generate(&mut rng);
        let before = cluster_id(&keyring).unwrap();
        keyring.rotate(&mut rng).unwrap();
        assert_eq!(cluster_id(&keyring).unwrap(), before);
        assert_ne!(cluster_id(&Keyring::generate(&mut rng)).unwrap(), before);
    }

    #[test]
    fn the_id_is_hkdf_under_its_own_label_and_not_the_audit_key() {
        let keyring = Keyring::new(SecretKey256::from_bytes([7; 32]));
        let mut expected = [0u8; 32];
        kdf::hkdf_sha256(&[7; 32], &[], CLUSTER_ID_INFO, &mut expected).unwrap();
        let id = cluster_id(&keyring).unwrap();
        assert_eq!(id, expected);
        assert_ne!(AuditKey::derive(&keyring).unwrap().hmac(b""), id);
    }
}
