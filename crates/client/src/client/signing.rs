//! Signatures (asymmetric keys) and MACs (HMAC keys).

use tessera_proto::v1 as pb;

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
    /// Signs `message` (or with `digest`, the caller's hash of it) with `key`'s primary
    /// version, using `algorithm` (empty: the key's default).
    ///
    /// # Errors
    /// [`Error`]; `INVALID_ARGUMENT` for a digest of the wrong length or an algorithm the key
    /// does not support, `FAILED_PRECONDITION` for a key that cannot sign.
    pub async fn sign(
        &self,
        key: &str,
        message: &[u8],
        digest: bool,
        algorithm: &str,
    ) -> Result<pb::SignResponse, Error> {
        let request = pb::SignRequest {
            key: key.to_owned(),
            message: message.to_vec(),
            message_type: message_type(digest).to_owned(),
            algorithm: algorithm.to_owned(),
        };
        self.crypto_call(request, |mut c, r| async move { c.sign(r).await })
            .await
    }

    /// Verifies `signature` over `message` (or its digest) with `key`'s version `version`
    /// ([`crate::PRIMARY_VERSION`]: the primary). An invalid signature is `Ok` with
    /// `valid: false`.
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
    ) -> Result<pb::VerifyResponse, Error> {
        let request = pb::VerifyRequest {
            key: key.to_owned(),
            message: message.to_vec(),
            message_type: message_type(digest).to_owned(),
            signature: signature.to_vec(),
            algorithm: algorithm.to_owned(),
            version,
        };
        self.crypto_call(request, |mut c, r| async move { c.verify(r).await })
            .await
    }

    /// The public key of an asymmetric key's version `version`
    /// ([`crate::PRIMARY_VERSION`]: the primary), for verification anywhere (see
    /// [`crate::verify_offline`]).
    ///
    /// # Errors
    /// [`Error`]; `FAILED_PRECONDITION` for a symmetric key.
    pub async fn get_public_key(
        &self,
        key: &str,
        version: u32,
    ) -> Result<pb::GetPublicKeyResponse, Error> {
        let request = pb::GetPublicKeyRequest {
            key: key.to_owned(),
            version,
        };
        self.crypto_call(request, |mut c, r| async move { c.get_public_key(r).await })
            .await
    }

    /// The MAC of `message` under an HMAC key's primary version, with `algorithm` (empty:
    /// the key's own).
    ///
    /// # Errors
    /// [`Error`]; `FAILED_PRECONDITION` for a key that is not an HMAC key.
    pub async fn generate_mac(
        &self,
        key: &str,
        message: &[u8],
        algorithm: &str,
    ) -> Result<pb::GenerateMacResponse, Error> {
        let request = pb::GenerateMacRequest {
            key: key.to_owned(),
            message: message.to_vec(),
            algorithm: algorithm.to_owned(),
        };
        self.crypto_call(request, |mut c, r| async move { c.generate_mac(r).await })
            .await
    }

    /// Verifies `mac` over `message` in constant time with `key`'s version `version`
    /// ([`crate::PRIMARY_VERSION`]: the primary). A wrong MAC is `Ok` with `valid: false`.
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
    ) -> Result<pb::VerifyMacResponse, Error> {
        let request = pb::VerifyMacRequest {
            key: key.to_owned(),
            message: message.to_vec(),
            mac: mac.to_vec(),
            algorithm: algorithm.to_owned(),
            version,
        };
        self.crypto_call(request, |mut c, r| async move { c.verify_mac(r).await })
            .await
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
