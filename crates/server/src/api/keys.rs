//! `tessera.v1.Keys`: key lifecycle, versions, aliases, tags, BYOK import and export.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use tessera_crypto::{wrap, KeySpec};
use tessera_proto::v1 as pb;
use tessera_proto::v1::keys_server::Keys;
use tessera_state::key::{
    export_aad, import_aad, import_token_aad, validate_tag_key, validate_tag_value, validate_tags,
    KeyOrigin, KeyState,
};
use tessera_state::{
    AliasName, ApplyError, Command, ImportToken, KeyFilter, KeyId, KeyName, KeyRecord, KeyVersion,
    NewKey, Response,
};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::{key_to_proto, named_version};
use crate::audit;
use crate::authz::{split, Caller};
use crate::error::ApiError;
use crate::node::{client_request_id, rand_fill, ClientRequest, Node, WriteCall};
use tessera_state::policy::{Action, KeyAttributes};

/// Longest accepted key description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 8192;
/// Default and largest page of `ListKeys`.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page of `ListKeys`.
pub const MAX_PAGE_SIZE: usize = 1000;
/// The wrapping construction of export and import (see `tessera_crypto::wrap`).
pub const WRAPPING_ALGORITHM: &str = "X25519_HKDF_SHA256_AES_256_GCM";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Implements `tessera.v1.Keys`.
pub struct KeysService {
    node: Arc<Node>,
}

fn key_response(response: Response) -> Result<pb::KeyResponse, ApiError> {
    match response {
        Response::Key(meta) => Ok(pb::KeyResponse {
            key: Some(key_to_proto(&meta)),
        }),
        _ => Err(ApiError::Internal("a key command returned no key")),
    }
}

fn next_version(key: &KeyRecord) -> Result<KeyVersion, ApiError> {
    key.latest_version().next().ok_or_else(|| {
        ApiError::invalid("key", "the key has reached the maximum number of versions")
    })
}

fn alias_response(response: Response) -> Result<pb::AliasResponse, ApiError> {
    match response {
        Response::Alias { alias, key_id } => Ok(pb::AliasResponse {
            alias: alias.to_string(),
            key_id: key_id.to_string(),
        }),
        _ => Err(ApiError::Internal("an alias command returned no alias")),
    }
}

fn tags(map: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    for (key, value) in map {
        audit::notes::value("tag_key", key);
        audit::notes::value("tag_value", value);
    }
    validate_tags(map).map_err(|reason| ApiError::invalid("tags", reason))?;
    Ok(map.clone())
}

/// The `ListKeys` tag filter: a tag key (no filter if empty) and optionally a value, both
/// within the limits of tags themselves (a longer one could match nothing).
fn tag_filter(key: &str, value: &str) -> Result<Option<(String, Option<String>)>, ApiError> {
    validate_tag_value(key, value).map_err(|reason| ApiError::invalid("tag_value", reason))?;
    if key.is_empty() {
        return Ok(None);
    }
    validate_tag_key(key).map_err(|reason| ApiError::invalid("tag_key", reason))?;
    Ok(Some((
        key.to_owned(),
        (!value.is_empty()).then(|| value.to_owned()),
    )))
}

/// A key description, at most [`MAX_DESCRIPTION_BYTES`] long: the one check for every call
/// that sets one.
fn description(text: &str) -> Result<String, ApiError> {
    if text.len() > MAX_DESCRIPTION_BYTES {
        return Err(ApiError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_BYTES} bytes"),
        ));
    }
    Ok(text.to_owned())
}

impl KeysService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn rotation_period(&self, ms: u64) -> Result<Option<u64>, ApiError> {
        if ms == 0 {
            return Ok(None);
        }
        let min_ms = self
            .node
            .lifecycle()
            .min_rotation_period_seconds
            .saturating_mul(1000);
        if ms < min_ms {
            return Err(ApiError::invalid(
                "rotation_period_ms",
                format!("must be at least {min_ms} ms (lifecycle.min_rotation_period_seconds)"),
            ));
        }
        Ok(Some(ms))
    }

    async fn create(
        &self,
        req: pb::CreateKeyRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        self.node.require_unsealed()?;
        let name = KeyName::parse(&req.name).map_err(|e| ApiError::invalid("name", e))?;
        self.node.authorize_attributes(
            identity,
            Action::CreateKey,
            Some(KeyAttributes {
                id: None,
                name: Some(name.clone()),
                aliases: Vec::new(),
                tags: req.tags.clone(),
            }),
            &BTreeMap::new(),
        )?;
        let spec = if req.spec.is_empty() {
            KeySpec::Aes256Gcm
        } else {
            KeySpec::parse(&req.spec).map_err(|e| ApiError::invalid("spec", e))?
        };
        let origin = match req.origin.as_str() {
            "" | "TESSERA" => KeyOrigin::Tessera,
            "EXTERNAL" => KeyOrigin::External,
            other => return Err(ApiError::not_one_of("origin", other, "TESSERA or EXTERNAL")),
        };
        let description = description(&req.description)?;
        let mut id_bytes = [0u8; 16];
        rand_fill(&mut id_bytes);
        let key_id = KeyId::from_random_bytes(id_bytes);
        let sealed_material = match origin {
            KeyOrigin::Tessera => {
                let material = spec.generate_material(&mut tessera_crypto::os_rng());
                Some(self.node.seal_material(
                    &key_id,
                    KeyVersion::FIRST,
                    spec,
                    material.as_slice(),
                )?)
            }
            KeyOrigin::External => None,
        };
        let command = Command::CreateKey(NewKey {
            key_id,
            name,
            spec,
            origin,
            description,
            sealed_material,
            rotation_period_ms: self.rotation_period(req.rotation_period_ms)?,
            exportable: req.exportable,
            tags: tags(&req.tags)?,
            at_ms: self.node.now_ms(),
            created_by: identity.name().to_owned(),
        });
        let call = WriteCall::new(Action::CreateKey, identity, &req);
        let response = key_response(self.node.write(&call, Vec::new(), command).await?)?;
        if let Some(key) = &response.key {
            tracing::info!(key_id = %key.key_id, name = %key.name, spec = %key.spec, "key created");
        }
        Ok(response)
    }

    /// Proposes the command `build` makes for the key `key` names (see
    /// [`Node::write_for_key`]) and answers with the key.
    async fn key_write<M: ClientRequest>(
        &self,
        call: &WriteCall<'_, M>,
        key: &str,
        build: impl FnMut(&KeyRecord) -> Result<Command, ApiError>,
    ) -> Result<pb::KeyResponse, ApiError> {
        key_response(self.node.write_for_key(call, key, build).await?)
    }

    async fn rotate(
        &self,
        req: pb::KeyWriteRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let call = WriteCall::new(Action::RotateKey, identity, &req);
        self.key_write(&call, &req.key, |record| {
            let version = next_version(record)?;
            let material = record.spec.generate_material(&mut tessera_crypto::os_rng());
            Ok(Command::RotateKey {
                key_id: record.key_id.clone(),
                version,
                sealed_material: self.node.seal_material(
                    &record.key_id,
                    version,
                    record.spec,
                    material.as_slice(),
                )?,
                at_ms: self.node.now_ms(),
            })
        })
        .await
    }

    async fn schedule_deletion(
        &self,
        req: pb::ScheduleKeyDeletionRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let lifecycle = self.node.lifecycle();
        let window = if req.pending_window_seconds == 0 {
            lifecycle.default_deletion_window_seconds
        } else {
            req.pending_window_seconds
        };
        if window > lifecycle.max_deletion_window_seconds {
            return Err(ApiError::invalid(
                "pending_window_seconds",
                format!(
                    "must be at most {} seconds (lifecycle.max_deletion_window_seconds)",
                    lifecycle.max_deletion_window_seconds
                ),
            ));
        }
        if window < lifecycle.min_deletion_window_seconds {
            return Err(ApiError::invalid(
                "pending_window_seconds",
                format!(
                    "must be at least {} seconds (lifecycle.min_deletion_window_seconds)",
                    lifecycle.min_deletion_window_seconds
                ),
            ));
        }
        let call = WriteCall::new(Action::ScheduleKeyDeletion, identity, &req);
        self.key_write(&call, &req.key, |k| {
            Ok(Command::ScheduleKeyDeletion {
                key_id: k.key_id.clone(),
                window_ms: window.saturating_mul(1000),
                at_ms: self.node.now_ms(),
            })
        })
        .await
    }

    /// A write whose command needs nothing but the key's id (enable, disable, cancel).
    async fn state_change(
        &self,
        req: pb::KeyWriteRequest,
        action: Action,
        make: impl Fn(KeyId) -> Command,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let call = WriteCall::new(action, identity, &req);
        self.key_write(&call, &req.key, |k| Ok(make(k.key_id.clone())))
            .await
    }

    /// A write to one version of a key (enable, disable, destroy, minimum version).
    async fn version_write(
        &self,
        req: pb::KeyVersionRequest,
        action: Action,
        make: impl Fn(KeyId, KeyVersion) -> Command,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let Some(version) = named_version(req.version) else {
            return Err(ApiError::invalid("version", "must be at least 1"));
        };
        let call = WriteCall::new(action, identity, &req);
        self.key_write(&call, &req.key, |k| Ok(make(k.key_id.clone(), version)))
            .await
    }

    async fn destroy_version(
        &self,
        req: pb::KeyVersionRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let at_ms = self.node.now_ms();
        let version = req.version;
        let response = self
            .version_write(
                req,
                Action::DestroyKeyVersion,
                |key_id, version| Command::DestroyKeyVersion {
                    key_id,
                    version,
                    at_ms,
                },
                identity,
            )
            .await?;
        if let Some(key) = &response.key {
            tracing::info!(key_id = %key.key_id, version, "key version destroyed");
        }
        Ok(response)
    }

    async fn update_description(
        &self,
        req: pb::UpdateKeyDescriptionRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let description = description(&req.description)?;
        let call = WriteCall::new(Action::UpdateKeyDescription, identity, &req);
        self.key_write(&call, &req.key, |k| {
            Ok(Command::UpdateDescription {
                key_id: k.key_id.clone(),
                description: description.clone(),
            })
        })
        .await
    }

    async fn tag(
        &self,
        req: pb::TagKeyRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let new_tags = tags(&req.tags)?;
        if new_tags.is_empty() {
            return Err(ApiError::invalid("tags", "give at least one tag"));
        }
        let call = WriteCall::new(Action::TagKey, identity, &req);
        self.key_write(&call, &req.key, |k| {
            Ok(Command::TagKey {
                key_id: k.key_id.clone(),
                tags: new_tags.clone(),
            })
        })
        .await
    }

    async fn untag(
        &self,
        req: pb::UntagKeyRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        if req.tag_keys.is_empty() {
            return Err(ApiError::invalid("tag_keys", "give at least one tag key"));
        }
        for key in &req.tag_keys {
            audit::notes::value("tag_key", key);
            validate_tag_key(key).map_err(|reason| ApiError::invalid("tag_keys", reason))?;
        }
        let call = WriteCall::new(Action::UntagKey, identity, &req);
        self.key_write(&call, &req.key, |k| {
            Ok(Command::UntagKey {
                key_id: k.key_id.clone(),
                tag_keys: req.tag_keys.clone(),
            })
        })
        .await
    }

    async fn set_rotation(
        &self,
        req: pb::SetRotationPeriodRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let period_ms = self.rotation_period(req.rotation_period_ms)?;
        let call = WriteCall::new(Action::SetRotationPeriod, identity, &req);
        self.key_write(&call, &req.key, |k| {
            Ok(Command::SetRotationPeriod {
                key_id: k.key_id.clone(),
                period_ms,
            })
        })
        .await
    }

    async fn alias_write(
        &self,
        req: pb::AliasRequest,
        action: Action,
        make: impl Fn(AliasName, KeyId) -> Command,
        identity: &Caller,
    ) -> Result<pb::AliasResponse, ApiError> {
        audit::notes::value("alias", &req.alias);
        let alias = AliasName::parse(&req.alias).map_err(|e| ApiError::invalid("alias", e))?;
        let call = WriteCall::new(action, identity, &req);
        let response = self
            .node
            .write_for_key(&call, &req.key, |target| {
                Ok(make(alias.clone(), target.key_id.clone()))
            })
            .await?;
        alias_response(response)
    }

    async fn remove_alias(
        &self,
        req: pb::DeleteAliasRequest,
        identity: &Caller,
    ) -> Result<pb::DeleteAliasResponse, ApiError> {
        audit::notes::value("alias", &req.alias);
        let alias = AliasName::parse(&req.alias).map_err(|e| ApiError::invalid("alias", e))?;
        // Arguments first, then the alias' key, which the caller must be allowed to act on.
        client_request_id(&req.request_id)?;
        let target = match self.node.resolve_key(&alias.to_string()).await {
            Err(ApiError::KeyNotFound { .. }) => {
                return Err(ApiError::Rejected(ApplyError::AliasNotFound { alias }))
            }
            other => other?,
        };
        self.node.authorize(
            identity,
            Action::DeleteAlias,
            Some(&target),
            &BTreeMap::new(),
        )?;
        let call = WriteCall::new(Action::DeleteAlias, identity, &req);
        match self
            .node
            .write(&call, Vec::new(), Command::DeleteAlias { alias })
            .await?
        {
            Response::AliasDeleted { alias } => Ok(pb::DeleteAliasResponse {
                alias: alias.to_string(),
            }),
            _ => Err(ApiError::Internal("an alias command returned no alias")),
        }
    }

    async fn describe(
        &self,
        req: pb::DescribeKeyRequest,
        caller: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        self.node.require_serving().await?;
        match req.consistency.as_str() {
            "" | "LEASE" => {}
            "LINEARIZABLE" => self.node.raft().read_barrier().await?,
            other => {
                return Err(ApiError::not_one_of(
                    "consistency",
                    other,
                    "LEASE or LINEARIZABLE",
                ))
            }
        }
        let record = self.node.resolve_key(&req.key).await?;
        self.node
            .authorize(caller, Action::DescribeKey, Some(&record), &BTreeMap::new())?;
        Ok(pb::KeyResponse {
            key: Some(key_to_proto(&self.node.key_metadata(&record))),
        })
    }

    async fn aliases(
        &self,
        req: pb::ListAliasesRequest,
        caller: &Caller,
    ) -> Result<pb::ListAliasesResponse, ApiError> {
        self.node.require_serving().await?;
        self.node
            .authorize(caller, Action::ListAliases, None, &BTreeMap::new())?;
        let only = if req.key.is_empty() {
            None
        } else {
            Some(self.node.resolve_key(&req.key).await?.key_id)
        };
        let shared = self.node.raft().shared().read();
        let aliases = shared
            .state
            .aliases()
            .filter(|(_, target)| only.as_ref().is_none_or(|k| k == *target))
            .map(|(alias, key_id)| pb::AliasResponse {
                alias: alias.to_string(),
                key_id: key_id.to_string(),
            })
            .collect();
        Ok(pb::ListAliasesResponse { aliases })
    }

    /// Enables (`enabled`) or disables one version of a key.
    async fn set_version_enabled(
        &self,
        req: pb::KeyVersionRequest,
        enabled: bool,
        caller: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let action = if enabled {
            Action::EnableKeyVersion
        } else {
            Action::DisableKeyVersion
        };
        self.version_write(
            req,
            action,
            |key_id, version| Command::SetVersionEnabled {
                key_id,
                version,
                enabled,
            },
            caller,
        )
        .await
    }

    async fn list(
        &self,
        req: pb::ListKeysRequest,
        caller: &Caller,
    ) -> Result<pb::ListKeysResponse, ApiError> {
        self.node.require_serving().await?;
        self.node
            .authorize(caller, Action::ListKeys, None, &BTreeMap::new())?;
        let limit = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => usize::try_from(n)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
        };
        let after = if req.page_token.is_empty() {
            None
        } else {
            let bytes = B64
                .decode(&req.page_token)
                .map_err(|_| ApiError::invalid("page_token", "is not a token ListKeys returned"))?;
            let name = String::from_utf8(bytes)
                .ok()
                .and_then(|n| KeyName::parse(&n).ok())
                .ok_or_else(|| {
                    ApiError::invalid("page_token", "is not a token ListKeys returned")
                })?;
            Some(name)
        };
        let filter = KeyFilter {
            state: match req.state.as_str() {
                "" => None,
                s => Some(
                    KeyState::parse(s)
                        .ok_or_else(|| ApiError::not_one_of("state", s, "a key state"))?,
                ),
            },
            spec: match req.spec.as_str() {
                "" => None,
                s => Some(KeySpec::parse(s).map_err(|e| ApiError::invalid("spec", e))?),
            },
            tag: tag_filter(&req.tag_key, &req.tag_value)?,
        };
        let shared = self.node.raft().shared().read();
        let page = shared.state.list_keys(&filter, after.as_ref(), limit);
        Ok(pb::ListKeysResponse {
            keys: page
                .keys
                .iter()
                .map(|k| key_to_proto(&shared.state.metadata(k)))
                .collect(),
            next_page_token: page
                .next_after
                .map(|n| B64.encode(n.as_str()))
                .unwrap_or_default(),
        })
    }

    async fn import_parameters(
        &self,
        req: pb::KeyWriteRequest,
        identity: &Caller,
    ) -> Result<pb::ImportParameters, ApiError> {
        let ttl_ms = self
            .node
            .lifecycle()
            .import_token_ttl_seconds
            .saturating_mul(1000);
        let call = WriteCall::new(Action::GetImportParameters, identity, &req);
        let response = self
            .node
            .write_for_key(&call, &req.key, |record| {
                let mut token_bytes = [0u8; 16];
                rand_fill(&mut token_bytes);
                let token_id = B64.encode(token_bytes);
                let (private_key, public_key) =
                    wrap::generate_wrapping_key(&mut tessera_crypto::os_rng());
                let sealed_private_key = self.node.seal_with_aad(
                    &import_token_aad(&record.key_id, &token_id),
                    private_key.as_bytes(),
                )?;
                Ok(Command::CreateImportToken {
                    key_id: record.key_id.clone(),
                    token: ImportToken {
                        token_id,
                        public_key: public_key.to_vec(),
                        sealed_private_key,
                        expires_at_ms: self.node.now_ms().saturating_add(ttl_ms),
                    },
                })
            })
            .await?;
        // A retried request returns the first token, not the one made for this attempt.
        match response {
            Response::ImportParameters {
                key_id,
                token_id,
                public_key,
                expires_at_ms,
            } => {
                let public_key: [u8; 32] = public_key
                    .try_into()
                    .map_err(|_| ApiError::Internal("a stored import key has the wrong length"))?;
                Ok(pb::ImportParameters {
                    key_id: key_id.to_string(),
                    import_token: token_id,
                    public_key: wrap::x25519_public_key_der(&public_key),
                    public_key_pem: wrap::x25519_public_key_pem(&public_key),
                    wrapping_algorithm: WRAPPING_ALGORITHM.into(),
                    expires_at_ms,
                })
            }
            _ => Err(ApiError::Internal(
                "an import token command returned no parameters",
            )),
        }
    }

    async fn import_material(
        &self,
        req: pb::ImportKeyMaterialRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        let response = self.import_material_once(req, identity).await?;
        if let Some(key) = &response.key {
            tracing::info!(key_id = %key.key_id, version = key.primary_version, "key material imported");
        }
        Ok(response)
    }

    /// [`Self::import_material`] without its log line (a retry answers from here too).
    async fn import_material_once(
        &self,
        req: pb::ImportKeyMaterialRequest,
        identity: &Caller,
    ) -> Result<pb::KeyResponse, ApiError> {
        self.node.require_unsealed()?;
        let call = WriteCall::new(Action::ImportKeyMaterial, identity, &req);
        // Arguments first: the token checks below would otherwise answer for a bad id.
        client_request_id(&req.request_id)?;
        // A retry of an import that succeeded finds its token consumed: answer with the
        // first result instead.
        if let Some(first) = self.node.previous_result(&call) {
            return key_response(first);
        }
        let mut record = self.node.resolve_key(&req.key).await?;
        self.node.authorize(
            identity,
            Action::ImportKeyMaterial,
            Some(&record),
            &BTreeMap::new(),
        )?;
        if record
            .import_token
            .as_ref()
            .is_none_or(|t| t.token_id != req.import_token)
        {
            // The token may have been created through another node a moment ago.
            self.node.raft().read_barrier().await?;
            if let Some(first) = self.node.previous_result(&call) {
                return key_response(first);
            }
            record = self.node.resolve_key(record.key_id.as_str()).await?;
        }
        let token = record
            .import_token
            .as_ref()
            .filter(|t| t.token_id == req.import_token)
            .ok_or_else(|| {
                ApiError::Rejected(ApplyError::ImportTokenInvalid {
                    key_id: record.key_id.clone(),
                })
            })?;
        let private_key = self
            .node
            .with_keyring(|k| {
                k.open(
                    &import_token_aad(&record.key_id, &token.token_id),
                    &token.sealed_private_key,
                )
            })
            .ok_or(ApiError::Sealed)?
            .map_err(|_| {
                ApiError::Internal("a stored import key does not open under the barrier")
            })?;
        let private_key = tessera_crypto::SecretKey256::try_from_slice(private_key.as_slice())
            .map_err(|_| ApiError::Internal("a stored import key has the wrong length"))?;
        let material = wrap::unwrap(
            &private_key,
            &import_aad(&record.key_id),
            &req.wrapped_material,
        )
        .map_err(|e| match e {
            tessera_crypto::Error::Decrypt => ApiError::invalid(
                "wrapped_material",
                "cannot be unwrapped with this import token (wrong public key, AAD or corrupted)",
            ),
            other => ApiError::invalid("wrapped_material", other),
        })?;
        record
            .spec
            .validate_material(material.as_slice())
            .map_err(|e| {
                ApiError::invalid(
                    "wrapped_material",
                    format!("not valid {} material: {e}", record.spec.name()),
                )
            })?;
        let token_id = token.token_id.clone();
        // The material was unwrapped for `record`; if the reference names another key by the
        // time the write is prepared again, its token does not apply there.
        self.key_write(&call, &req.key, |current| {
            if current.key_id != record.key_id {
                return Err(ApiError::Rejected(ApplyError::ImportTokenInvalid {
                    key_id: current.key_id.clone(),
                }));
            }
            let version = next_version(current)?;
            Ok(Command::ImportKeyMaterial {
                key_id: record.key_id.clone(),
                token_id: token_id.clone(),
                version,
                sealed_material: self.node.seal_material(
                    &record.key_id,
                    version,
                    record.spec,
                    material.as_slice(),
                )?,
                at_ms: self.node.now_ms(),
            })
        })
        .await
    }

    async fn export(
        &self,
        req: pb::ExportKeyRequest,
        caller: &Caller,
    ) -> Result<pb::ExportKeyResponse, ApiError> {
        self.node.require_serving().await?;
        let recipient = wrap::parse_x25519_public_key(&req.wrapping_public_key)
            .map_err(|e| ApiError::invalid("wrapping_public_key", e))?;
        let record = self.node.resolve_key(&req.key).await?;
        self.node
            .authorize(caller, Action::ExportKey, Some(&record), &BTreeMap::new())?;
        if !record.exportable {
            return Err(ApiError::NotExportable {
                key_id: record.key_id.to_string(),
            });
        }
        // Disabled keys may be exported (e.g. to migrate them); keys on their way out may not.
        if matches!(
            record.state,
            KeyState::PendingDeletion | KeyState::PendingImport
        ) {
            record.check_usable()?;
        }
        let version = named_version(req.version).unwrap_or(record.primary_version);
        let record = self
            .node
            .resolve_key_version(record.key_id.as_str(), version)
            .await?;
        let (version, sealed) = record.exportable_version(version)?;
        let material = self
            .node
            .unseal_material(&record.key_id, version, record.spec, sealed)?;
        let wrapped = wrap::wrap(
            &recipient,
            &export_aad(&record.key_id, version),
            material.as_slice(),
            &mut tessera_crypto::os_rng(),
        )
        .map_err(|e| ApiError::invalid("wrapping_public_key", e))?;
        tracing::info!(key_id = %record.key_id, version = version.get(), "key material exported (wrapped)");
        Ok(pb::ExportKeyResponse {
            key_id: record.key_id.to_string(),
            version: version.get(),
            spec: record.spec.name().into(),
            wrapping_algorithm: WRAPPING_ALGORITHM.into(),
            wrapped_material: wrapped,
        })
    }
}

rpcs! {
    impl Keys for KeysService, first [];
    create_key(CreateKeyRequest) -> KeyResponse = create;
    describe_key(DescribeKeyRequest) -> KeyResponse = describe;
    list_keys(ListKeysRequest) -> ListKeysResponse = list;
    rotate_key(KeyWriteRequest) -> KeyResponse = rotate;
    enable_key(KeyWriteRequest) -> KeyResponse
        = state_change(Action::EnableKey, |key_id| Command::EnableKey { key_id });
    disable_key(KeyWriteRequest) -> KeyResponse
        = state_change(Action::DisableKey, |key_id| Command::DisableKey { key_id });
    schedule_key_deletion(ScheduleKeyDeletionRequest) -> KeyResponse = schedule_deletion;
    cancel_key_deletion(KeyWriteRequest) -> KeyResponse = state_change(
        Action::CancelKeyDeletion,
        |key_id| Command::CancelKeyDeletion { key_id }
    );
    set_min_decryption_version(KeyVersionRequest) -> KeyResponse = version_write(
        Action::SetMinDecryptionVersion,
        |key_id, version| Command::SetMinDecryptionVersion { key_id, version }
    );
    enable_key_version(KeyVersionRequest) -> KeyResponse = set_version_enabled(true);
    disable_key_version(KeyVersionRequest) -> KeyResponse = set_version_enabled(false);
    destroy_key_version(KeyVersionRequest) -> KeyResponse = destroy_version;
    update_key_description(UpdateKeyDescriptionRequest) -> KeyResponse = update_description;
    tag_key(TagKeyRequest) -> KeyResponse = tag;
    untag_key(UntagKeyRequest) -> KeyResponse = untag;
    set_rotation_period(SetRotationPeriodRequest) -> KeyResponse = set_rotation;
    create_alias(AliasRequest) -> AliasResponse
        = alias_write(Action::CreateAlias, |alias, key_id| Command::CreateAlias { alias, key_id });
    update_alias(AliasRequest) -> AliasResponse
        = alias_write(Action::UpdateAlias, |alias, key_id| Command::UpdateAlias { alias, key_id });
    delete_alias(DeleteAliasRequest) -> DeleteAliasResponse = remove_alias;
    list_aliases(ListAliasesRequest) -> ListAliasesResponse = aliases;
    get_import_parameters(KeyWriteRequest) -> ImportParameters = import_parameters;
    import_key_material(ImportKeyMaterialRequest) -> KeyResponse = import_material;
    export_key(ExportKeyRequest) -> ExportKeyResponse = export;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_description_is_checked_against_one_limit() {
        let longest = "d".repeat(MAX_DESCRIPTION_BYTES);
        assert_eq!(description(&longest).unwrap(), longest);
        let err = description(&format!("{longest}d")).unwrap_err();
        assert!(
            err.to_string().contains("description"),
            "names the field: {err}"
        );
    }
}
