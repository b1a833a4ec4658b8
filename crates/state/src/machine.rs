//! [`State`]: the replicated model and its pure, deterministic `apply`.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::command::{ApplyError, Command, Request, Response};
use crate::dedup::{DedupEntry, DedupHit, DedupTable};
use crate::ids::{KeyId, KeyName, KeyRef};
use crate::key::{KeyRecord, KeyState, KeyVersionRecord, VersionState};
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
    pub(crate) names: BTreeMap<KeyName, KeyId>,
    pub(crate) dedup: DedupTable,
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
        match command {
            Command::InitSeal(config) => self.init_seal(config),
            Command::CreateKey {
                key_id,
                name,
                spec,
                description,
                sealed_material,
                at_ms,
                created_by,
            } => {
                self.require_initialized()?;
                if self.keys.contains_key(key_id) {
                    return Err(ApplyError::KeyIdTaken {
                        key_id: key_id.clone(),
                    });
                }
                if self.names.contains_key(name) {
                    return Err(ApplyError::KeyNameTaken { name: name.clone() });
                }
                let first = KeyVersionRecord {
                    version: 1,
                    state: VersionState::Enabled,
                    sealed_material: sealed_material.clone(),
                    created_at_ms: *at_ms,
                };
                let record = KeyRecord {
                    key_id: key_id.clone(),
                    name: name.clone(),
                    spec: *spec,
                    usage: spec.usage(),
                    state: KeyState::Enabled,
                    description: description.clone(),
                    primary_version: 1,
                    versions: BTreeMap::from([(1, first)]),
                    created_at_ms: *at_ms,
                    created_by: created_by.clone(),
                };
                let metadata = record.metadata();
                self.names.insert(name.clone(), key_id.clone());
                self.keys.insert(key_id.clone(), record);
                self.dirty.insert(RowKey::Key(key_id.clone()));
                Ok(Response::Key(metadata))
            }
            Command::RotateKey {
                key_id,
                version,
                sealed_material,
                at_ms,
            } => {
                self.require_initialized()?;
                let record = self
                    .keys
                    .get_mut(key_id)
                    .ok_or_else(|| ApplyError::KeyNotFound {
                        key_id: key_id.clone(),
                    })?;
                let latest = record.latest_version();
                if latest.checked_add(1) != Some(*version) {
                    return Err(ApplyError::VersionConflict {
                        key_id: key_id.clone(),
                        proposed: *version,
                        latest,
                    });
                }
                record.versions.insert(
                    *version,
                    KeyVersionRecord {
                        version: *version,
                        state: VersionState::Enabled,
                        sealed_material: sealed_material.clone(),
                        created_at_ms: *at_ms,
                    },
                );
                record.primary_version = *version;
                let metadata = record.metadata();
                self.dirty.insert(RowKey::Key(key_id.clone()));
                Ok(Response::Key(metadata))
            }
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

    fn require_initialized(&self) -> Result<(), ApplyError> {
        if self.seal.is_some() {
            Ok(())
        } else {
            Err(ApplyError::NotInitialized)
        }
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
        match key {
            KeyRef::Id(id) => self.keys.get(id),
            KeyRef::Name(name) => self.names.get(name).and_then(|id| self.keys.get(id)),
            // Aliases are not part of the model yet: no alias resolves.
            KeyRef::Alias(_) => None,
        }
    }

    /// All keys, ordered by name.
    pub fn keys_by_name(&self) -> impl Iterator<Item = &KeyRecord> {
        self.names.values().filter_map(|id| self.keys.get(id))
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
mod tests {
    use tessera_crypto::spec::KeySpec;

    use super::*;
    use crate::ids::RequestId;

    fn request(id: &str, command: Command) -> Request {
        Request {
            request_id: RequestId::parse(id).unwrap(),
            fingerprint: [id.len() as u8; 32],
            command,
        }
    }

    fn init() -> Command {
        Command::InitSeal(SealConfig {
            shares: 5,
            threshold: 3,
            sealed_root_key: vec![1; 60],
            sealed_keyring: vec![2; 80],
            initialized_at_ms: 1,
        })
    }

    fn create(id_byte: u8, name: &str) -> Command {
        Command::CreateKey {
            key_id: KeyId::from_random_bytes([id_byte; 16]),
            name: KeyName::parse(name).unwrap(),
            spec: KeySpec::Aes256Gcm,
            description: String::new(),
            sealed_material: vec![id_byte; 61],
            at_ms: 10,
            created_by: "admin".into(),
        }
    }

    #[test]
    fn key_commands_need_init() {
        let mut s = State::new();
        assert_eq!(
            s.apply(1, &request("a", create(1, "k"))),
            Response::Rejected(ApplyError::NotInitialized)
        );
        assert!(matches!(
            s.apply(2, &request("b", init())),
            Response::Initialized { .. }
        ));
        assert_eq!(
            s.apply(3, &request("c", init())),
            Response::Rejected(ApplyError::AlreadyInitialized)
        );
    }

    #[test]
    fn invalid_seal_config_is_rejected() {
        let mut s = State::new();
        let bad = Command::InitSeal(SealConfig {
            shares: 2,
            threshold: 3,
            sealed_root_key: vec![],
            sealed_keyring: vec![],
            initialized_at_ms: 0,
        });
        assert!(matches!(
            s.apply(1, &request("a", bad)),
            Response::Rejected(ApplyError::InvalidSealConfig { .. })
        ));
        assert!(!s.is_initialized());
    }

    #[test]
    fn create_then_rotate() {
        let mut s = State::new();
        s.apply(1, &request("i", init()));
        let Response::Key(k) = s.apply(2, &request("c1", create(1, "app"))) else {
            panic!("expected key")
        };
        assert_eq!(k.primary_version, 1);
        let rotate = Command::RotateKey {
            key_id: k.key_id.clone(),
            version: 2,
            sealed_material: vec![9; 61],
            at_ms: 20,
        };
        let Response::Key(k2) = s.apply(3, &request("r1", rotate)) else {
            panic!("expected key")
        };
        assert_eq!(k2.primary_version, 2);
        assert_eq!(k2.versions.len(), 2);
        let stale = Command::RotateKey {
            key_id: k.key_id.clone(),
            version: 2,
            sealed_material: vec![8; 61],
            at_ms: 21,
        };
        assert_eq!(
            s.apply(4, &request("r2", stale)),
            Response::Rejected(ApplyError::VersionConflict {
                key_id: k.key_id.clone(),
                proposed: 2,
                latest: 2
            })
        );
    }

    #[test]
    fn version_conflict_is_not_remembered_so_the_retry_applies() {
        let mut s = State::new();
        s.apply(1, &request("i", init()));
        let Response::Key(k) = s.apply(2, &request("c1", create(1, "app"))) else {
            panic!("expected key")
        };
        let rotate = |version| Command::RotateKey {
            key_id: k.key_id.clone(),
            version,
            sealed_material: vec![9; 61],
            at_ms: 20,
        };
        s.apply(3, &request("other", rotate(2)));
        assert!(matches!(
            s.apply(4, &request("mine", rotate(2))),
            Response::Rejected(ApplyError::VersionConflict { latest: 2, .. })
        ));
        let Response::Key(after) = s.apply(5, &request("mine", rotate(3))) else {
            panic!("the retry with the next version must apply")
        };
        assert_eq!(after.primary_version, 3);
        // And now the id is remembered: a repeat returns the same result.
        assert_eq!(
            s.apply(6, &request("mine", rotate(4))),
            Response::Key(after)
        );
    }

    #[test]
    fn duplicate_names_and_ids_are_rejected() {
        let mut s = State::new();
        s.apply(1, &request("i", init()));
        s.apply(2, &request("c1", create(1, "app")));
        assert!(matches!(
            s.apply(3, &request("c2", create(2, "app"))),
            Response::Rejected(ApplyError::KeyNameTaken { .. })
        ));
        assert!(matches!(
            s.apply(4, &request("c3", create(1, "other"))),
            Response::Rejected(ApplyError::KeyIdTaken { .. })
        ));
        assert_eq!(s.key_count(), 1);
    }

    #[test]
    fn retried_request_returns_first_result_and_creates_one_key() {
        let mut s = State::new();
        s.apply(1, &request("i", init()));
        let first = s.apply(2, &request("same", create(1, "app")));
        // A retry carries fresh proposer material but the same id and fingerprint.
        let again = s.apply(3, &request("same", create(2, "app")));
        assert_eq!(first, again);
        assert_eq!(s.key_count(), 1);
    }

    #[test]
    fn reused_request_id_with_other_fingerprint_is_rejected() {
        let mut s = State::new();
        s.apply(1, &request("i", init()));
        s.apply(2, &request("same", create(1, "app")));
        let mut other = request("same", create(2, "other"));
        other.fingerprint = [0xee; 32];
        assert!(matches!(
            s.apply(3, &other),
            Response::Rejected(ApplyError::RequestIdReused { .. })
        ));
        assert_eq!(s.key_count(), 1);
    }

    #[test]
    fn resolve_by_id_and_name() {
        let mut s = State::new();
        s.apply(1, &request("i", init()));
        s.apply(2, &request("c", create(1, "app")));
        let id = KeyId::from_random_bytes([1; 16]);
        assert!(s.resolve(&KeyRef::Id(id.clone())).is_some());
        assert_eq!(
            s.resolve(&KeyRef::parse("app").unwrap()).map(|k| &k.key_id),
            Some(&id)
        );
        assert!(s.resolve(&KeyRef::parse("nope").unwrap()).is_none());
        assert!(s.resolve(&KeyRef::parse("alias/app").unwrap()).is_none());
    }
}
