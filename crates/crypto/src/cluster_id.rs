//! The cluster id: a public name for one cluster's key material, written into backups so a
//! restore can tell "this cluster" from "another cluster".
//!
//! The state has no id of its own, and storing one would change the state's encoding. The id
//! is therefore derived from the **root key** with HKDF-SHA256 under its own label: the same
//! on every node, unchanged by barrier rotation (a new term), by the retirement of old terms
//! (the root key is never rotated) and by a rekey (new shares, the same root key), different
//! for every `operator init`. HKDF outputs under distinct labels are independent, so
//! publishing the id reveals nothing about the root key or anything derived from it. It
//! exists only on an unsealed node (which holds the root key, see `tessera_server::seal`).

use crate::{kdf, Error, SecretKey256};

/// HKDF info of the cluster id; no other derivation uses it.
pub const CLUSTER_ID_INFO: &[u8] = b"tessera/v1/cluster-id";

/// Length of a cluster id in bytes.
pub const CLUSTER_ID_LEN: usize = 32;

/// Derives the cluster id from the cluster's root key.
///
/// # Errors
/// The HKDF error (it cannot fail for a 32-byte output).
pub fn cluster_id(root_key: &SecretKey256) -> Result<[u8; CLUSTER_ID_LEN], Error> {
    Ok(*kdf::derive_subkey(root_key, &[], CLUSTER_ID_INFO)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_depends_on_root_key;
    use crate::AuditKey;

    #[test]
    fn the_id_differs_per_root_key() {
        assert_depends_on_root_key(|root| cluster_id(root).unwrap());
    }

    #[test]
    fn the_id_is_hkdf_under_its_own_label_and_not_the_audit_key() {
        let mut expected = [0u8; 32];
        kdf::hkdf_sha256(&[7; 32], &[], CLUSTER_ID_INFO, &mut expected).unwrap();
        let id = cluster_id(&SecretKey256::from_bytes([7; 32])).unwrap();
        assert_eq!(id, expected);
        let root = SecretKey256::from_bytes([7; 32]);
        assert_ne!(AuditKey::derive(&root).unwrap().hmac(b""), id);
    }
}
