//! Asymmetric signatures and MACs.

use tessera_crypto::mac::{self, MacAlgorithm, MAX_MAC_MESSAGE_BYTES};
use tessera_crypto::sign::{self, MessageType, SigningAlgorithm, MAX_SIGN_MESSAGE_BYTES};
use tessera_crypto::KeyUsage;
use tessera_proto::v1 as pb;
use tessera_state::{KeyRecord, KeyVersion};

use super::{Access, CryptoService};
use crate::api::named_version;
use crate::authz::Caller;
use crate::error::ApiError;
use tessera_state::policy::Action;

fn message_type(name: &str) -> Result<MessageType, ApiError> {
    match name {
        "" | "RAW" => Ok(MessageType::Raw),
        "DIGEST" => Ok(MessageType::Digest),
        other => Err(ApiError::not_one_of("message_type", other, "RAW or DIGEST")),
    }
}

fn signing_algorithm(record: &KeyRecord, name: &str) -> Result<SigningAlgorithm, ApiError> {
    let algorithm = if name.is_empty() {
        record
            .spec
            .default_signing_algorithm()
            .ok_or(ApiError::Internal(
                "a signing key without a signing algorithm",
            ))?
    } else {
        SigningAlgorithm::parse(name).map_err(|e| ApiError::invalid("algorithm", e))?
    };
    if record.spec.signing_algorithms().contains(&algorithm) {
        Ok(algorithm)
    } else {
        Err(ApiError::invalid(
            "algorithm",
            format!(
                "{} keys sign with {}, not {}",
                record.spec.name(),
                record
                    .spec
                    .signing_algorithms()
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                algorithm.name()
            ),
        ))
    }
}

fn mac_algorithm(record: &KeyRecord, name: &str) -> Result<MacAlgorithm, ApiError> {
    let own = record
        .spec
        .mac_algorithm()
        .ok_or(ApiError::Internal("a MAC key without a MAC algorithm"))?;
    if name.is_empty() {
        return Ok(own);
    }
    let asked = MacAlgorithm::parse(name).map_err(|e| ApiError::invalid("algorithm", e))?;
    if asked == own {
        Ok(asked)
    } else {
        Err(ApiError::invalid(
            "algorithm",
            format!(
                "{} keys use {}, not {}",
                record.spec.name(),
                own.name(),
                asked.name()
            ),
        ))
    }
}

fn check_message(message: &[u8], max: usize) -> Result<(), ApiError> {
    if message.is_empty() {
        return Err(ApiError::invalid("message", "must not be empty"));
    }
    if message.len() > max {
        return Err(ApiError::invalid(
            "message",
            format!("is {} bytes; the maximum is {max}", message.len()),
        ));
    }
    Ok(())
}

fn crypto_input_error(field: &'static str, e: tessera_crypto::Error) -> ApiError {
    ApiError::invalid(field, e)
}

/// What a call without an encryption context needs of its key: the action it is authorised as,
/// the key's usage, and the call's name in a wrong-usage error.
struct Need(Action, KeyUsage, &'static str);

const SIGN: Need = Need(Action::Sign, KeyUsage::SignVerify, "sign");
const VERIFY: Need = Need(Action::Verify, KeyUsage::SignVerify, "verify");
const PUBLIC_KEY: Need = Need(
    Action::GetPublicKey,
    KeyUsage::SignVerify,
    "have a public key",
);
const GENERATE_MAC: Need = Need(
    Action::GenerateMac,
    KeyUsage::GenerateVerifyMac,
    "generate MACs",
);
const VERIFY_MAC: Need = Need(
    Action::VerifyMac,
    KeyUsage::GenerateVerifyMac,
    "verify MACs",
);

impl CryptoService {
    /// The version a verify-style request names (its `version` field; 0: the primary) with
    /// its material: the key's state is checked first, a version missing here is confirmed
    /// with the leader.
    async fn requested_version(
        &self,
        record: KeyRecord,
        field: u32,
    ) -> Result<(KeyRecord, KeyVersion, tessera_crypto::SecretBytes), ApiError> {
        record.check_usable()?;
        let version = named_version(field).unwrap_or(record.primary_version);
        let record = self
            .node
            .resolve_key_version(record.key_id.as_str(), version)
            .await?;
        let (version, material) = self.readable_material(&record, version)?;
        Ok((record, version, material))
    }

    /// The key `key` names, checked for what `need` says (these calls have no encryption
    /// context).
    async fn key_without_context(
        &self,
        caller: &Caller,
        key: &str,
        Need(action, usage, operation): Need,
    ) -> Result<KeyRecord, ApiError> {
        self.key_for(
            Access::without_context(caller, action),
            key,
            usage,
            operation,
        )
        .await
    }

    pub(super) async fn sign_one(
        &self,
        req: pb::SignRequest,
        caller: &Caller,
    ) -> Result<pb::SignResponse, ApiError> {
        check_message(&req.message, MAX_SIGN_MESSAGE_BYTES)?;
        let message_type = message_type(&req.message_type)?;
        let record = self.key_without_context(caller, &req.key, SIGN).await?;
        let algorithm = signing_algorithm(&record, &req.algorithm)?;
        let (version, material) = self.primary_material(&record)?;
        let signature = sign::sign(
            record.spec,
            material.as_slice(),
            algorithm,
            &req.message,
            message_type,
        )
        .map_err(|e| crypto_input_error("message", e))?;
        Ok(pb::SignResponse {
            signature,
            key_id: record.key_id.to_string(),
            version: version.get(),
            algorithm: algorithm.name().into(),
        })
    }

    pub(super) async fn verify_one(
        &self,
        req: pb::VerifyRequest,
        caller: &Caller,
    ) -> Result<pb::VerifyResponse, ApiError> {
        check_message(&req.message, MAX_SIGN_MESSAGE_BYTES)?;
        if req.signature.is_empty() {
            return Err(ApiError::invalid("signature", "must not be empty"));
        }
        let message_type = message_type(&req.message_type)?;
        let record = self.key_without_context(caller, &req.key, VERIFY).await?;
        let algorithm = signing_algorithm(&record, &req.algorithm)?;
        let (record, version, material) = self.requested_version(record, req.version).await?;
        let public_key = sign::public_key_der(record.spec, material.as_slice())
            .map_err(|_| ApiError::Internal("public key derivation failed"))?;
        let valid = sign::verify(
            record.spec,
            &public_key,
            algorithm,
            &req.message,
            message_type,
            &req.signature,
        )
        .map_err(|e| match e {
            tessera_crypto::Error::MalformedSignature => ApiError::invalid(
                "signature",
                format!("is not a well-formed {} signature", algorithm.name()),
            ),
            other => crypto_input_error("message", other),
        })?;
        Ok(pb::VerifyResponse {
            valid,
            key_id: record.key_id.to_string(),
            version: version.get(),
        })
    }

    pub(super) async fn public_key(
        &self,
        req: pb::GetPublicKeyRequest,
        caller: &Caller,
    ) -> Result<pb::GetPublicKeyResponse, ApiError> {
        let record = self
            .key_without_context(caller, &req.key, PUBLIC_KEY)
            .await?;
        let (record, version, material) = self.requested_version(record, req.version).await?;
        let public_key = sign::public_key_der(record.spec, material.as_slice())
            .map_err(|_| ApiError::Internal("public key derivation failed"))?;
        let public_key_pem = sign::public_key_pem(record.spec, material.as_slice())
            .map_err(|_| ApiError::Internal("public key derivation failed"))?;
        Ok(pb::GetPublicKeyResponse {
            key_id: record.key_id.to_string(),
            version: version.get(),
            spec: record.spec.name().into(),
            public_key,
            public_key_pem,
            signing_algorithms: record
                .spec
                .signing_algorithms()
                .iter()
                .map(|a| a.name().to_owned())
                .collect(),
        })
    }

    pub(super) async fn mac_one(
        &self,
        req: pb::GenerateMacRequest,
        caller: &Caller,
    ) -> Result<pb::GenerateMacResponse, ApiError> {
        check_message(&req.message, MAX_MAC_MESSAGE_BYTES)?;
        let record = self
            .key_without_context(caller, &req.key, GENERATE_MAC)
            .await?;
        let algorithm = mac_algorithm(&record, &req.algorithm)?;
        let (version, material) = self.primary_material(&record)?;
        let mac = mac::generate_mac(record.spec, material.as_slice(), &req.message)
            .map_err(|e| crypto_input_error("message", e))?;
        Ok(pb::GenerateMacResponse {
            mac,
            key_id: record.key_id.to_string(),
            version: version.get(),
            algorithm: algorithm.name().into(),
        })
    }

    pub(super) async fn verify_mac_one(
        &self,
        req: pb::VerifyMacRequest,
        caller: &Caller,
    ) -> Result<pb::VerifyMacResponse, ApiError> {
        check_message(&req.message, MAX_MAC_MESSAGE_BYTES)?;
        if req.mac.is_empty() {
            return Err(ApiError::invalid("mac", "must not be empty"));
        }
        let record = self
            .key_without_context(caller, &req.key, VERIFY_MAC)
            .await?;
        mac_algorithm(&record, &req.algorithm)?;
        let (record, version, material) = self.requested_version(record, req.version).await?;
        let valid = mac::verify_mac(record.spec, material.as_slice(), &req.message, &req.mac)
            .map_err(|e| crypto_input_error("message", e))?;
        Ok(pb::VerifyMacResponse {
            valid,
            key_id: record.key_id.to_string(),
            version: version.get(),
        })
    }
}
