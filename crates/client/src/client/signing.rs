//! Signatures (asymmetric keys) and MACs (HMAC keys).

use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_client::CryptoClient;

use super::Client;
use crate::error::Error;

/// The API's `message_type` for a raw message (`false`) or a pre-computed digest (`true`).
pub(crate) fn message_type(digest: bool) -> &'static str {
    if digest {
        "DIGEST"
    } else {
        "RAW"
    }
}

impl Client {
    rpc_methods! {
        /// Signs `message` (or with `digest`, the caller's hash of it) with `key`'s primary
        /// version, using `algorithm` (empty: the key's default).
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a digest of the wrong length or an algorithm the
        /// key does not support, `FAILED_PRECONDITION` for a key that cannot sign.
        pub async fn sign(&self, key: &str, message: &[u8], digest: bool, algorithm: &str)
            -> pb::SignResponse
            = call(CryptoClient::sign, pb::SignRequest {
                key: key.to_owned(),
                message: message.to_vec(),
                message_type: message_type(digest).to_owned(),
                algorithm: algorithm.to_owned(),
            });

        /// Verifies `signature` over `message` (or its digest) with `key`'s version `version`
        /// ([`crate::PRIMARY_VERSION`]: the primary). An invalid signature is `Ok` with `valid: false`.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a malformed request.
        pub async fn verify(
            &self,
            key: &str,
            message: &[u8],
            digest: bool,
            signature: &[u8],
            algorithm: &str,
            version: u32,
        ) -> pb::VerifyResponse = call(CryptoClient::verify, pb::VerifyRequest {
            key: key.to_owned(),
            message: message.to_vec(),
            message_type: message_type(digest).to_owned(),
            signature: signature.to_vec(),
            algorithm: algorithm.to_owned(),
            version,
        });

        /// The public key of an asymmetric key's version `version` ([`crate::PRIMARY_VERSION`]: the primary), for
        /// verification anywhere (see [`crate::verify_offline`]).
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` for a symmetric key.
        pub async fn get_public_key(&self, key: &str, version: u32) -> pb::GetPublicKeyResponse
            = call(CryptoClient::get_public_key, pb::GetPublicKeyRequest {
                key: key.to_owned(),
                version,
            });

        /// The MAC of `message` under an HMAC key's primary version, with `algorithm` (empty:
        /// the key's own).
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` for a key that is not an HMAC key.
        pub async fn generate_mac(&self, key: &str, message: &[u8], algorithm: &str)
            -> pb::GenerateMacResponse
            = call(CryptoClient::generate_mac, pb::GenerateMacRequest {
                key: key.to_owned(),
                message: message.to_vec(),
                algorithm: algorithm.to_owned(),
            });

        /// Verifies `mac` over `message` in constant time with `key`'s version `version` (0:
        /// the primary). A wrong MAC is `Ok` with `valid: false`.
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` for a key that is not an HMAC key.
        pub async fn verify_mac(
            &self,
            key: &str,
            message: &[u8],
            mac: &[u8],
            algorithm: &str,
            version: u32,
        ) -> pb::VerifyMacResponse = call(CryptoClient::verify_mac, pb::VerifyMacRequest {
            key: key.to_owned(),
            message: message.to_vec(),
            mac: mac.to_vec(),
            algorithm: algorithm.to_owned(),
            version,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_are_named_as_in_the_api() {
        assert_eq!(message_type(false), "RAW");
        assert_eq!(message_type(true), "DIGEST");
    }
}
