//! Encryption, data keys and randomness.

use std::collections::BTreeMap;

use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_client::CryptoClient;

use super::Client;
use crate::error::Error;

impl Client {
    fn data_key_request(
        key: &str,
        data_key_spec: &str,
        context: &BTreeMap<String, String>,
    ) -> pb::GenerateDataKeyRequest {
        pb::GenerateDataKeyRequest {
            key: key.to_owned(),
            data_key_spec: data_key_spec.to_owned(),
            context: context.clone(),
        }
    }

    rpc_methods! {
        /// Encrypts `plaintext` under `key`'s primary version, binding `context`.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for empty or oversized input.
        pub async fn encrypt(
            &self,
            key: &str,
            plaintext: &[u8],
            context: &BTreeMap<String, String>,
        ) -> pb::EncryptResponse = call(CryptoClient::encrypt, pb::EncryptRequest {
            key: key.to_owned(),
            plaintext: plaintext.to_vec(),
            context: context.clone(),
        });

        /// Decrypts a ciphertext; `context` must equal the one used to encrypt.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a tampered ciphertext or wrong context.
        pub async fn decrypt(&self, ciphertext: &[u8], context: &BTreeMap<String, String>)
            -> pb::DecryptResponse
            = call(CryptoClient::decrypt, pb::DecryptRequest {
                ciphertext: ciphertext.to_vec(),
                context: context.clone(),
            });

        /// Decrypts `ciphertext` (encrypted with `source_context`) and encrypts the plaintext
        /// again under `destination_key` (empty: the source key's primary version) with
        /// `destination_context`, without the plaintext leaving the server.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a ciphertext that does not decrypt.
        pub async fn re_encrypt(
            &self,
            ciphertext: &[u8],
            source_context: &BTreeMap<String, String>,
            destination_key: &str,
            destination_context: &BTreeMap<String, String>,
        ) -> pb::ReEncryptResponse = call(CryptoClient::re_encrypt, pb::ReEncryptRequest {
            ciphertext: ciphertext.to_vec(),
            source_context: source_context.clone(),
            destination_key: destination_key.to_owned(),
            destination_context: destination_context.clone(),
        });

        /// Many encryptions in one call (at most 256); each item has its own result or error,
        /// in order.
        ///
        /// # Errors
        /// [`Error`] if the call as a whole fails (e.g. too many items).
        pub async fn batch_encrypt(&self, items: Vec<pb::EncryptRequest>)
            -> pb::BatchEncryptResponse
            = call(CryptoClient::batch_encrypt, pb::BatchEncryptRequest { items });

        /// Many decryptions in one call (at most 256); each item has its own result or error,
        /// in order.
        ///
        /// # Errors
        /// [`Error`] if the call as a whole fails (e.g. too many items).
        pub async fn batch_decrypt(&self, items: Vec<pb::DecryptRequest>)
            -> pb::BatchDecryptResponse
            = call(CryptoClient::batch_decrypt, pb::BatchDecryptRequest { items });

        /// A fresh data key of `data_key_spec` (`AES_256`, the default when empty, or
        /// `AES_128`), in plaintext and encrypted under `key` with `context` (envelope
        /// encryption).
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for an unknown data key spec.
        pub async fn generate_data_key(
            &self, key: &str, data_key_spec: &str, context: &BTreeMap<String, String>,
        ) -> pb::GenerateDataKeyResponse = call(
            CryptoClient::generate_data_key,
            Self::data_key_request(key, data_key_spec, context)
        );

        /// Like [`Client::generate_data_key`], without the plaintext.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for an unknown data key spec.
        pub async fn generate_data_key_without_plaintext(
            &self, key: &str, data_key_spec: &str, context: &BTreeMap<String, String>,
        ) -> pb::GenerateDataKeyResponse = call(
            CryptoClient::generate_data_key_without_plaintext,
            Self::data_key_request(key, data_key_spec, context)
        );

        /// A fresh key pair of `key_pair_spec` (`ECC_NIST_P256`, `ECC_NIST_P384` or
        /// `ED25519`): the private key encrypted under `key` with `context`, and also in
        /// plaintext unless `without_plaintext`.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for an unknown key pair spec.
        pub async fn generate_data_key_pair(
            &self,
            key: &str,
            key_pair_spec: &str,
            context: &BTreeMap<String, String>,
            without_plaintext: bool,
        ) -> pb::GenerateDataKeyPairResponse = call(
            CryptoClient::generate_data_key_pair,
            pb::GenerateDataKeyPairRequest {
                key: key.to_owned(),
                key_pair_spec: key_pair_spec.to_owned(),
                context: context.clone(),
                without_plaintext,
            }
        );

        /// `number_of_bytes` (1..=1024) random bytes from a node's CSPRNG.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a count out of range.
        pub async fn generate_random(&self, number_of_bytes: u32) -> pb::GenerateRandomResponse
            = call(CryptoClient::generate_random, pb::GenerateRandomRequest { number_of_bytes });
    }
}
