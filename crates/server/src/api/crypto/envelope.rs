//! Symmetric operations: encrypt, decrypt, re-encrypt, batches and data keys.

use futures::future::join_all;
use tessera_crypto::ciphertext::{self, MAX_PLAINTEXT_BYTES};
use tessera_crypto::{keypair, EncryptionContext, KeySpec, KeyUsage, SecretBytes, SecretKey256};
use tessera_proto::v1 as pb;
use tessera_state::{KeyId, KeyRecord, KeyVersion};

use super::{context, context_field, item_error, Access, CryptoService, MAX_BATCH_ITEMS};
use crate::authz::Caller;
use crate::error::ApiError;
use tessera_state::policy::Action;

fn aes_key(material: &SecretBytes) -> Result<SecretKey256, ApiError> {
    SecretKey256::try_from_slice(material.as_slice())
        .map_err(|_| ApiError::Internal("stored AES material has the wrong length"))
}

fn check_plaintext(field: &'static str, plaintext: &[u8]) -> Result<(), ApiError> {
    if plaintext.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(ApiError::invalid(
            field,
            format!(
                "is {} bytes; the maximum is {MAX_PLAINTEXT_BYTES} (use a data key for larger data)",
                plaintext.len()
            ),
        ));
    }
    Ok(())
}

/// The value `table` gives the name `value` of the request field `field`, or the error naming
/// the `expected` names.
fn named<T: Copy>(
    field: &'static str,
    value: &str,
    table: &[(&str, T)],
    expected: &'static str,
) -> Result<T, ApiError> {
    table
        .iter()
        .find(|(name, _)| *name == value)
        .map(|&(_, found)| found)
        .ok_or_else(|| ApiError::not_one_of(field, value, expected))
}

impl CryptoService {
    /// The symmetric key `key` names, checked for `access`; `operation` names the call in a
    /// wrong-usage error.
    async fn encryption_key(
        &self,
        access: Access<'_>,
        key: &str,
        operation: &'static str,
    ) -> Result<KeyRecord, ApiError> {
        self.key_for(access, key, KeyUsage::EncryptDecrypt, operation)
            .await
    }

    /// Encrypts under `record`'s primary version.
    fn seal_under(
        &self,
        record: &KeyRecord,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, KeyVersion), ApiError> {
        let (version, material) = self.primary_material(record)?;
        let ciphertext = ciphertext::encrypt(
            &aes_key(&material)?,
            record.key_id.as_str(),
            version,
            context,
            plaintext,
            &mut tessera_crypto::os_rng(),
        )
        .map_err(|e| ApiError::invalid("plaintext", e))?;
        Ok((ciphertext, version))
    }

    /// Decrypts a ciphertext, finding the key from its header; `caller` must be allowed
    /// `action` on that key with `context`.
    async fn open(
        &self,
        ciphertext: &[u8],
        context: &EncryptionContext,
        caller: &Caller,
        action: Action,
    ) -> Result<(SecretBytes, KeyRecord, KeyVersion), ApiError> {
        let header =
            ciphertext::parse_header(ciphertext).map_err(|e| ApiError::invalid("ciphertext", e))?;
        let key_id = KeyId::parse(&header.key_id).map_err(|_| {
            ApiError::invalid("ciphertext", "it names a key id that Tessera never issues")
        })?;
        let record = self
            .node
            .resolve_key_version(key_id.as_str(), header.version)
            .await?;
        Access::new(caller, action, context).check(&self.node, &record)?;
        super::require_usage(&record, KeyUsage::EncryptDecrypt, "decrypt")?;
        let (version, material) = self.readable_material(&record, header.version)?;
        let plaintext = ciphertext::decrypt(&aes_key(&material)?, ciphertext, context).map_err(
            |e| match e {
                tessera_crypto::Error::Decrypt => ApiError::Undecryptable,
                other => ApiError::invalid("ciphertext", other),
            },
        )?;
        Ok((plaintext, record, version))
    }

    pub(super) async fn encrypt_one(
        &self,
        req: pb::EncryptRequest,
        caller: &Caller,
    ) -> Result<pb::EncryptResponse, ApiError> {
        check_plaintext("plaintext", &req.plaintext)?;
        let context = context(req.context)?;
        let access = Access::new(caller, Action::Encrypt, &context);
        let record = self.encryption_key(access, &req.key, "encrypt").await?;
        let (ciphertext, version) = self.seal_under(&record, &context, &req.plaintext)?;
        Ok(pb::EncryptResponse {
            ciphertext,
            key_id: record.key_id.to_string(),
            version: version.get(),
        })
    }

    pub(super) async fn decrypt_one(
        &self,
        req: pb::DecryptRequest,
        caller: &Caller,
    ) -> Result<pb::DecryptResponse, ApiError> {
        let context = context(req.context)?;
        let (plaintext, record, version) = self
            .open(&req.ciphertext, &context, caller, Action::Decrypt)
            .await?;
        Ok(pb::DecryptResponse {
            plaintext: plaintext.as_slice().to_vec(),
            key_id: record.key_id.to_string(),
            version: version.get(),
        })
    }

    pub(super) async fn re_encrypt_one(
        &self,
        req: pb::ReEncryptRequest,
        caller: &Caller,
    ) -> Result<pb::ReEncryptResponse, ApiError> {
        let source_context = context_field("source_context", req.source_context)?;
        let destination_context = context_field("destination_context", req.destination_context)?;
        let (plaintext, source, source_version) = self
            .open(
                &req.ciphertext,
                &source_context,
                caller,
                Action::ReEncryptFrom,
            )
            .await?;
        let to = Access::new(caller, Action::ReEncryptTo, &destination_context);
        let destination = if req.destination_key.is_empty() {
            // The primary version may have moved since; use the freshest view.
            let record = self.node.resolve_key(source.key_id.as_str()).await?;
            to.check(&self.node, &record)?;
            record
        } else {
            self.encryption_key(to, &req.destination_key, "encrypt")
                .await?
        };
        let (ciphertext, version) =
            self.seal_under(&destination, &destination_context, plaintext.as_slice())?;
        Ok(pb::ReEncryptResponse {
            ciphertext,
            source_key_id: source.key_id.to_string(),
            source_version: source_version.get(),
            key_id: destination.key_id.to_string(),
            version: version.get(),
        })
    }

    pub(super) async fn encrypt_batch(
        &self,
        req: pb::BatchEncryptRequest,
        caller: &Caller,
    ) -> Result<pb::BatchEncryptResponse, ApiError> {
        use pb::batch_encrypt_result::Result as Outcome;
        let outcomes = batch(req.items, |item| self.encrypt_one(item, caller)).await?;
        let results = outcomes.map(|outcome| pb::BatchEncryptResult {
            result: Some(outcome.map_or_else(Outcome::Error, Outcome::Ok)),
        });
        Ok(pb::BatchEncryptResponse {
            results: results.collect(),
        })
    }

    pub(super) async fn decrypt_batch(
        &self,
        req: pb::BatchDecryptRequest,
        caller: &Caller,
    ) -> Result<pb::BatchDecryptResponse, ApiError> {
        use pb::batch_decrypt_result::Result as Outcome;
        let outcomes = batch(req.items, |item| self.decrypt_one(item, caller)).await?;
        Ok(pb::BatchDecryptResponse {
            results: outcomes
                .map(|outcome| pb::BatchDecryptResult {
                    result: Some(outcome.map_or_else(Outcome::Error, Outcome::Ok)),
                })
                .collect(),
        })
    }

    pub(super) async fn data_key(
        &self,
        req: pb::GenerateDataKeyRequest,
        with_plaintext: bool,
        caller: &Caller,
    ) -> Result<pb::GenerateDataKeyResponse, ApiError> {
        let len = named(
            "data_key_spec",
            &req.data_key_spec,
            &[("", 32), ("AES_256", 32), ("AES_128", 16)],
            "AES_256 or AES_128",
        )?;
        let context = context(req.context)?;
        let action = if with_plaintext {
            Action::GenerateDataKey
        } else {
            Action::GenerateDataKeyWithoutPlaintext
        };
        let access = Access::new(caller, action, &context);
        let record = self
            .encryption_key(access, &req.key, "generate data keys")
            .await?;
        let mut data_key = vec![0u8; len];
        crate::node::rand_fill(&mut data_key);
        let data_key = SecretBytes::new(data_key);
        let (ciphertext, version) = self.seal_under(&record, &context, data_key.as_slice())?;
        Ok(pb::GenerateDataKeyResponse {
            plaintext: if with_plaintext {
                data_key.as_slice().to_vec()
            } else {
                Vec::new()
            },
            ciphertext,
            key_id: record.key_id.to_string(),
            version: version.get(),
        })
    }

    pub(super) async fn data_key_pair(
        &self,
        req: pb::GenerateDataKeyPairRequest,
        caller: &Caller,
    ) -> Result<pb::GenerateDataKeyPairResponse, ApiError> {
        let spec = named(
            "key_pair_spec",
            &req.key_pair_spec,
            &[
                ("ECC_NIST_P256", KeySpec::EcdsaP256),
                ("ECC_NIST_P384", KeySpec::EcdsaP384),
                ("ED25519", KeySpec::Ed25519),
            ],
            "ECC_NIST_P256, ECC_NIST_P384 or ED25519",
        )?;
        let context = context(req.context)?;
        let access = Access::new(caller, Action::GenerateDataKeyPair, &context);
        let record = self
            .encryption_key(access, &req.key, "generate data key pairs")
            .await?;
        let (private_key, public_key) =
            keypair::generate_key_pair(spec, &mut tessera_crypto::os_rng())
                .map_err(|_| ApiError::Internal("key pair generation failed"))?;
        let (private_key_ciphertext, version) =
            self.seal_under(&record, &context, private_key.as_slice())?;
        Ok(pb::GenerateDataKeyPairResponse {
            private_key_plaintext: if req.without_plaintext {
                Vec::new()
            } else {
                private_key.as_slice().to_vec()
            },
            private_key_ciphertext,
            public_key,
            key_id: record.key_id.to_string(),
            version: version.get(),
            key_pair_spec: req.key_pair_spec,
        })
    }
}

/// Runs `one` on each item of a batch and gives each item's answer, or its error as the status
/// it would have had alone. Items run concurrently, so that those naming keys this node has not
/// seen yet share read barriers instead of waiting for one each in turn.
async fn batch<I, O, F>(
    items: Vec<I>,
    one: impl FnMut(I) -> F,
) -> Result<impl Iterator<Item = Result<O, pb::ItemError>>, ApiError>
where
    F: std::future::Future<Output = Result<O, ApiError>>,
{
    check_batch(items.len())?;
    let outcomes = join_all(items.into_iter().map(one)).await;
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.map_err(item_error)))
}

fn check_batch(len: usize) -> Result<(), ApiError> {
    if len == 0 {
        return Err(ApiError::invalid("items", "must not be empty"));
    }
    if len > MAX_BATCH_ITEMS {
        return Err(ApiError::invalid(
            "items",
            format!("at most {MAX_BATCH_ITEMS} items per batch, got {len}"),
        ));
    }
    Ok(())
}
