//! [`State`]: the replicated model and its pure, deterministic `apply`.

mod access;
mod aliases;
mod barrier;
mod keys;
mod query;
mod restore;

use std::collections::{BTreeMap, BTreeSet};

pub use barrier::StaleBlob;
pub use query::{KeyFilter, KeyPage};
pub use restore::seal_digest;

use crate::barrier::BarrierTerms;
use crate::clock::ClusterClock;
use crate::command::{ApplyError, Command, KeyBinding, Request, Response};
use crate::dedup::{DedupEntry, DedupHit, DedupTable};
use crate::ids::{AliasName, KeyId, KeyName, KeyRef};
use crate::key::{KeyMetadata, KeyRecord};
use crate::node_id::NodeId;
use crate::policy::AccessControl;
use crate::rows::RowKey;
use crate::seal_config::SealConfig;

/// Everything the cluster replicates. Secrets inside it are sealed by the barrier.
///
/// `apply` reads no clock, draws no randomness and does no I/O: the same log gives the same
/// state on every node, byte for byte (see [`State::encode_snapshot`]).
#[derive(Clone, Debug, Default)]
pub struct State {
    pub(crate) seal: Option<SealConfig>,
    /// Boxed: a tree node then holds 11 pointers instead of 11 records, most of whose slack
    /// would be unused record-sized slots (docs/performance.md, "Memory").
    pub(crate) keys: BTreeMap<KeyId, Box<KeyRecord>>,
    pub(crate) aliases: BTreeMap<AliasName, KeyId>,
    pub(crate) dedup: DedupTable,
    pub(crate) clock: ClusterClock,
    pub(crate) access: AccessControl,
    /// The barrier's active and oldest keyring terms.
    pub(crate) barrier: BarrierTerms,
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
    /// A retry of an already-applied request (same caller, id and fingerprint) returns the
    /// first result without changing anything. A request whose key references no longer name
    /// the keys they named when it was prepared is refused without effect.
    ///
    /// A [`Command::Batch`] applies its requests in order, each exactly as if it were an entry
    /// of its own at `index`, and returns their results as [`Response::Batch`]. The envelope
    /// itself is not de-duplicated.
    pub fn apply(&mut self, index: u64, request: &Request) -> Response {
        if let Command::Batch(requests) = &request.command {
            return Response::Batch(
                requests
                    .iter()
                    .map(|request| self.apply_one(index, request))
                    .collect(),
            );
        }
        self.apply_one(index, request)
    }

    /// Applies one request (a batch inside a batch is rejected by `execute`).
    fn apply_one(&mut self, index: u64, request: &Request) -> Response {
        if let Command::ReportClock { .. } = request.command {
            // A reading is idempotent; remembering it would only crowd out client requests.
            return self
                .execute(&request.command)
                .unwrap_or_else(Response::Rejected);
        }
        match self
            .dedup
            .check(&request.caller, &request.request_id, &request.fingerprint)
        {
            DedupHit::Retry(first) => return *first,
            DedupHit::Reused => {
                return Response::Rejected(ApplyError::RequestIdReused {
                    request_id: request.request_id.clone(),
                })
            }
            DedupHit::New => {}
        }
        let executed = self
            .check_bindings(&request.bindings)
            .and_then(|()| self.execute(&request.command));
        // Only changes are remembered: a refused request changed nothing, so applying its
        // retry cannot apply it twice (and transient refusals must not stick to the id).
        let response = match executed {
            Ok(response) => response,
            Err(rejected) => return Response::Rejected(rejected),
        };
        let now_ms = self.clock.now_ms();
        let evicted = self.dedup.insert(
            DedupEntry {
                caller: request.caller,
                request_id: request.request_id.clone(),
                index,
                applied_at_ms: now_ms,
                fingerprint: request.fingerprint,
                response: response.clone(),
            },
            now_ms,
        );
        self.dirty
            .insert(RowKey::Dedup(request.caller, request.request_id.clone()));
        self.dirty
            .extend(evicted.into_iter().map(|(c, id)| RowKey::Dedup(c, id)));
        response
    }

    /// Fails unless every reference still names the key it named when the request was
    /// prepared.
    fn check_bindings(&self, bindings: &[KeyBinding]) -> Result<(), ApplyError> {
        for binding in bindings {
            let now = self.resolve(&binding.reference).map(|k| &k.key_id);
            if now != Some(&binding.key_id) {
                return Err(ApplyError::StaleReference {
                    reference: binding.reference.clone(),
                    bound_to: binding.key_id.clone(),
                    now: now.cloned(),
                });
            }
        }
        Ok(())
    }

    fn report_clock(&mut self, node_id: NodeId, at_ms: u64, voters: u32) {
        let before = self.clock.now_ms();
        self.clock.report(node_id, at_ms, voters);
        self.dirty.insert(RowKey::Clock);
        let now = self.clock.now_ms();
        if before == 0 && now > 0 {
            let stamped = self.dedup.stamp_unstamped(now);
            self.dirty
                .extend(stamped.into_iter().map(|(c, id)| RowKey::Dedup(c, id)));
        }
    }

    fn execute(&mut self, command: &Command) -> Result<Response, ApplyError> {
        match command {
            Command::InitSeal(config) => return self.init_seal(config, None),
            Command::Initialize { seal, admin } => return self.init_seal(seal, Some(admin)),
            Command::RestoreSnapshot { body, replaces } => {
                return self.restore(body, replaces.as_ref())
            }
            // `apply` unpacks the outer batch, so this one was inside another.
            Command::Batch(_) => return Err(ApplyError::NestedBatch),
            _ => {}
        }
        if self.seal.is_none() {
            return Err(ApplyError::NotInitialized);
        }
        self.check_new_material(command)?;
        match command {
            Command::InitSeal(_) | Command::Initialize { .. } => {
                Err(ApplyError::AlreadyInitialized)
            }
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
                window_ms,
                at_ms,
            } => self.schedule_deletion(key_id, *window_ms, *at_ms),
            Command::CancelKeyDeletion { key_id } => self.cancel_deletion(key_id),
            Command::DestroyKey { key_id } => self.destroy_key(key_id),
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
            Command::ReportClock {
                node_id,
                at_ms,
                voters,
            } => {
                self.report_clock(*node_id, *at_ms, *voters);
                Ok(Response::Noop)
            }
            Command::PutPolicy { name, document } => self.put_policy(name, document),
            Command::DeletePolicy { name } => self.delete_policy(name),
            Command::CreateGrant(grant) => self.create_grant(grant),
            Command::RevokeGrant { grant_id } => self.revoke_grant(grant_id),
            Command::RevokeCertificate { certificate } => Ok(self.revoke_certificate(certificate)),
            Command::PutRateLimit(rule) => self.put_rate_limit(rule),
            Command::DeleteRateLimit { identity } => self.delete_rate_limit(identity),
            // Handled before the initialisation check.
            Command::RestoreSnapshot { .. } => Err(ApplyError::RestoreTargetChanged),
            Command::Batch(_) => Err(ApplyError::NestedBatch),
            Command::RotateBarrier {
                previous_keyring_digest,
                term,
                sealed_keyring,
            } => self.rotate_barrier(previous_keyring_digest, *term, sealed_keyring),
            Command::RetireBarrierTerms {
                previous_keyring_digest,
                sealed_keyring,
            } => self.retire_barrier_terms(previous_keyring_digest, sealed_keyring),
            Command::ResealBlobs { blobs } => self.reseal_blobs(blobs),
            Command::Rekey {
                previous_root_key_digest,
                shares,
                threshold,
                sealed_root_key,
            } => self.rekey(
                previous_root_key_digest,
                *shares,
                *threshold,
                sealed_root_key,
            ),
        }
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
        self.keys.get(key_id).map(Box::as_ref)
    }

    /// Resolves a key reference (id, name or alias) to a key.
    pub fn resolve(&self, key: &KeyRef) -> Option<&KeyRecord> {
        let id = match key {
            KeyRef::Id(id) => id,
            KeyRef::Name(name) => self.names.get(name)?,
            KeyRef::Alias(alias) => self.aliases.get(alias)?,
        };
        self.keys.get(id).map(Box::as_ref)
    }

    /// All keys, ordered by name.
    pub fn keys_by_name(&self) -> impl Iterator<Item = &KeyRecord> {
        self.names
            .values()
            .filter_map(|id| self.keys.get(id).map(Box::as_ref))
    }

    /// The aliases pointing at a key, in order.
    pub fn aliases_of(&self, key_id: &KeyId) -> impl Iterator<Item = &AliasName> {
        self.aliases_by_key.get(key_id).into_iter().flatten()
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

    /// The replicated cluster clock (see [`crate::clock`]).
    pub fn clock(&self) -> &ClusterClock {
        &self.clock
    }
}

#[cfg(test)]
mod tests;
