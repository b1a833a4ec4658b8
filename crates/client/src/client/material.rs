//! Key material crossing the API boundary, always wrapped: import into keys of origin
//! `EXTERNAL`, export of exportable keys.

use tessera_proto::v1 as pb;
use tessera_proto::v1::keys_client::KeysClient;

use super::{new_request_id, Client};
use crate::error::Error;

impl Client {
    rpc_methods! {
        /// A wrapping public key (X25519) and a single-use import token for a key of origin
        /// `EXTERNAL`.
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` for a key whose material Tessera generates.
        pub async fn get_import_parameters(&self, key: &str) -> pb::ImportParameters
            = call(KeysClient::get_import_parameters, Self::key_write(key, &new_request_id()));

        /// Imports material wrapped to the public key of [`Client::get_import_parameters`]
        /// (with AAD `tessera/import/<key_id>`) as the key's next version.
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` (`IMPORT_TOKEN_INVALID`, `IMPORT_TOKEN_EXPIRED`) for
        /// an unknown, used or expired token; `INVALID_ARGUMENT` for material that does not
        /// unwrap or does not fit the key's spec.
        pub async fn import_key_material(
            &self,
            key: &str,
            import_token: &str,
            wrapped_material: &[u8],
        ) -> pb::Key = key_call(KeysClient::import_key_material, pb::ImportKeyMaterialRequest {
            key: key.to_owned(),
            import_token: import_token.to_owned(),
            wrapped_material: wrapped_material.to_vec(),
            request_id: new_request_id(),
        });

        /// Exports version `version` ([`crate::PRIMARY_VERSION`]: the primary) of an exportable key, wrapped to the
        /// recipient's X25519 public key (32 raw bytes, SubjectPublicKeyInfo DER or PEM).
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` for a key that is not exportable,
        /// `INVALID_ARGUMENT` for a malformed wrapping key.
        pub async fn export_key(&self, key: &str, version: u32, wrapping_public_key: &[u8])
            -> pb::ExportKeyResponse
            = call(KeysClient::export_key, pb::ExportKeyRequest {
                key: key.to_owned(),
                version,
                wrapping_public_key: wrapping_public_key.to_vec(),
            });
    }
}
