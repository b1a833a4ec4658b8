//! [`State`]: the replicated model and its pure, deterministic `apply`.

mod aliases;
mod keys;
mod query;

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

pub use query::{KeyFilter, KeyPage};

use crate::command::{ApplyError, Command, Request, Response};
use crate::dedup::{DedupEntry, DedupHit, DedupTable};
use crate::ids::{AliasName, KeyId, KeyName, KeyRef};
use crate::key::{KeyMetadata, KeyRecord};
use crate::rows::RowKey;
use crate::seal::SealConfig;

/// Everything the cluster replicates. Secrets inside it are sealed by the barrier.
///
/// `apply` reads no clock, draws no randomness and does no I/O: the same log gives the same
/// state on every node, byte for byte (see [`State::encode_snapshot`]).
#[derive(Clone, Debug, Default)]
pub struct State {
    pub(crate) seal: Option<SealConfig>,
    pub(crate) keys: BTreeMap<KeyId, KeyRecord>,
    pub(crate) aliases: BTreeMap<AliasName, KeyId>,
    pub(crate) dedup: DedupTable,
    /// Derived: key name → id.
    pub(crate) names: BTreeMap<KeyName, KeyId>,
    /// Derived: key id → its aliases.
    pub(crate) aliases_by_key: BTreeMap<KeyId, BTreeSet<AliasName>>,
    /// Rows changed since the last [`State::take_changes`]; not part of the model.
    pub(crate) dirty: BTreeSet<RowKey>,
}

impl State {
    /// An empty, uninitialised state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a request committed at log `index` and returns its replicated result.
    ///
    /// A retry of an already-applied request (same id and fingerprint) returns the first
    /// result without changing anything.
    pub fn apply(&mut self, index: u64, request: &Request) -> Response {
        match self.dedup.check(&request.request_id, &request.fingerprint) {
            DedupHit::Retry(first) => return first.clone(),
            DedupHit::Reused => {
                return Response::Rejected(ApplyError::RequestIdReused {
                    request_id: request.request_id.clone(),
                })
            }
            DedupHit::New => {}
        }
        let response = match self.execute(&request.command) {
            Ok(response) => response,
            // A lost rotation race is transient: the proposer retries under the same request
            // id with the next version, so it must not be remembered as the final answer.
            Err(rejected @ ApplyError::VersionConflict { .. }) => {
                return Response::Rejected(rejected)
            }
            Err(rejected) => Response::Rejected(rejected),
        };
        let evicted = self.dedup.insert(DedupEntry {
            request_id: request.request_id.clone(),
            index,
            fingerprint: request.fingerprint,
            response: response.clone(),
        });
        self.dirty.insert(RowKey::Dedup(request.request_id.clone()));
        self.dirty.extend(evicted.into_iter().map(RowKey::Dedup));
        response
    }

    fn execute(&mut self, command: &Command) -> Result<Response, ApplyError> {
        if let Command::InitSeal(config) = command {
            return self.init_seal(config);
        }
        if self.seal.is_none() {
            return Err(ApplyError::NotInitialized);
        }
        match command {
            Command::InitSeal(_) => Err(ApplyError::AlreadyInitialized),
            Command::CreateKey(new) => self.create_key(new),
            Command::RotateKey {
                key_id,
                version,
                sealed_material,
                at_ms,
            } => self.rotate_key(key_id, *version, sealed_material, *at_ms),
            Command::EnableKey { key_id } => self.set_key_enabled(key_id, true),
            Command::DisableKey { key_id } => self.set_key_enabled(key_id, false),
            Command::ScheduleKeyDeletion {
                key_id,
                deletion_date_ms,
            } => self.schedule_deletion(key_id, *deletion_date_ms),
            Command::CancelKeyDeletion { key_id } => self.cancel_deletion(key_id),
            Command::DestroyKey { key_id, at_ms } => self.destroy_key(key_id, *at_ms),
            Command::SetMinDecryptionVersion { key_id, version } => {
                self.set_min_decryption_version(key_id, *version)
            }
            Command::SetVersionEnabled {
                key_id,
                version,
                enabled,
            } => self.set_version_enabled(key_id, *version, *enabled),
            Command::DestroyKeyVersion {
                key_id,
                version,
                at_ms,
            } => self.destroy_version(key_id, *version, *at_ms),
            Command::UpdateDescription {
                key_id,
                description,
            } => self.update_key(key_id, |k| {
                k.description.clone_from(description);
                Ok(())
            }),
            Command::TagKey { key_id, tags } => self.tag_key(key_id, tags),
            Command::UntagKey { key_id, tag_keys } => self.update_key(key_id, |k| {
                for t in tag_keys {
                    k.tags.remove(t);
                }
                Ok(())
            }),
            Command::SetRotationPeriod { key_id, period_ms } => {
                self.set_rotation_period(key_id, *period_ms)
            }
            Command::CreateAlias { alias, key_id } => self.create_alias(alias, key_id),
            Command::UpdateAlias { alias, key_id } => self.update_alias(alias, key_id),
            Command::DeleteAlias { alias } => self.delete_alias(alias),
            Command::CreateImportToken { key_id, token } => self.create_import_token(key_id, token),
            Command::ImportKeyMaterial {
                key_id,
                token_id,
                version,
                sealed_material,
                at_ms,
            } => self.import_material(key_id, token_id, *version, sealed_material, *at_ms),
        }
    }

    fn init_seal(&mut self, config: &SealConfig) -> Result<Response, ApplyError> {
        if self.seal.is_some() {
            return Err(ApplyError::AlreadyInitialized);
        }
        if config.threshold == 0 || config.threshold > config.shares {
            return Err(ApplyError::InvalidSealConfig {
                shares: config.shares,
                threshold: config.threshold,
            });
        }
        self.seal = Some(config.clone());
        self.dirty.insert(RowKey::Seal);
        Ok(Response::Initialized {
            sealed_root_key_digest: Sha256::digest(&config.sealed_root_key).into(),
        })
    }

    /// The API view of a stored key.
    pub fn metadata(&self, key: &KeyRecord) -> KeyMetadata {
        let none = BTreeSet::new();
        key.metadata(self.aliases_by_key.get(&key.key_id).unwrap_or(&none))
    }

    /// The seal configuration, once the cluster is initialised.
    pub fn seal_config(&self) -> Option<&SealConfig> {
        self.seal.as_ref()
    }

    /// Whether `operator init` has been applied.
    pub fn is_initialized(&self) -> bool {
        self.seal.is_some()
    }

    /// A key by id.
    pub fn key(&self, key_id: &KeyId) -> Option<&KeyRecord> {
        self.keys.get(key_id)
    }

    /// Resolves a key reference (id, name or alias) to a key.
    pub fn resolve(&self, key: &KeyRef) -> Option<&KeyRecord> {
        let id = match key {
            KeyRef::Id(id) => id,
            KeyRef::Name(name) => self.names.get(name)?,
            KeyRef::Alias(alias) => self.aliases.get(alias)?,
        };
        self.keys.get(id)
    }

    /// All keys, ordered by name.
    pub fn keys_by_name(&self) -> impl Iterator<Item = &KeyRecord> {
        self.names.values().filter_map(|id| self.keys.get(id))
    }

    /// All aliases with their targets, ordered by alias.
    pub fn aliases(&self) -> impl Iterator<Item = (&AliasName, &KeyId)> {
        self.aliases.iter()
    }

    /// Number of keys.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The de-duplication table.
    pub fn dedup(&self) -> &DedupTable {
        &self.dedup
    }
}

#[cfg(test)]
mod tests;
