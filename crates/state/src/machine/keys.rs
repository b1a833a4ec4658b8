//! Key lifecycle commands.

use std::collections::BTreeMap;

use tessera_crypto::KeyVersion;

use crate::command::{ApplyError, NewKey, Response};
use crate::ids::KeyId;
use crate::key::{
    validate_tags, ImportToken, KeyOrigin, KeyRecord, KeyState, KeyVersionRecord, KeyVersions,
    VersionState,
};
use crate::machine::State;
use crate::rows::RowKey;

fn invalid_state(key: &KeyRecord, operation: &str) -> ApplyError {
    ApplyError::InvalidKeyState {
        key_id: key.key_id.clone(),
        state: key.state,
        operation: operation.to_owned(),
    }
}

fn new_version(version: KeyVersion, sealed_material: &[u8], at_ms: u64) -> KeyVersionRecord {
    KeyVersionRecord {
        version,
        state: VersionState::Enabled,
        sealed_material: Some(sealed_material.to_vec()),
        created_at_ms: at_ms,
        destroyed_at_ms: None,
    }
}

/// Checks that `key` takes imported material now: origin `EXTERNAL`, enabled or waiting for
/// its first material.
fn check_importable(key: &KeyRecord, operation: &str) -> Result<(), ApplyError> {
    if key.origin != KeyOrigin::External {
        return Err(ApplyError::WrongOrigin {
            key_id: key.key_id.clone(),
            origin: key.origin,
            reason: "only keys created with origin EXTERNAL accept imported material".into(),
        });
    }
    if !matches!(key.state, KeyState::Enabled | KeyState::PendingImport) {
        return Err(invalid_state(key, operation));
    }
    Ok(())
}

/// Checks that `version` is the next version of `key`.
/// The version a state change applies to, which must exist and must not be
/// destroyed: a destroyed version has no material left to re-enable or
/// destroy again.
fn live_version_mut<'a>(
    key: &'a mut KeyRecord,
    key_id: &KeyId,
    version: KeyVersion,
) -> Result<&'a mut KeyVersionRecord, ApplyError> {
    let stored = key
        .versions
        .get_mut(version)
        .ok_or_else(|| ApplyError::VersionNotFound {
            key_id: key_id.clone(),
            version,
        })?;
    if stored.state == VersionState::Destroyed {
        return Err(ApplyError::VersionDestroyed {
            key_id: key_id.clone(),
            version,
        });
    }
    Ok(stored)
}

fn check_next_version(key: &KeyRecord, version: KeyVersion) -> Result<(), ApplyError> {
    let latest = key.latest_version();
    if latest.next() == Some(version) {
        Ok(())
    } else {
        Err(ApplyError::VersionConflict {
            key_id: key.key_id.clone(),
            proposed: version,
            latest,
        })
    }
}

impl State {
    /// The stored record of `key_id`, or [`ApplyError::KeyNotFound`].
    pub(super) fn stored_key(&self, key_id: &KeyId) -> Result<&KeyRecord, ApplyError> {
        self.keys
            .get(key_id)
            .map(Box::as_ref)
            .ok_or_else(|| ApplyError::KeyNotFound {
                key_id: key_id.clone(),
            })
    }

    /// Applies `change` to a key, marks its row dirty and answers with its metadata. Nothing
    /// is changed when `change` fails.
    pub(super) fn update_key(
        &mut self,
        key_id: &KeyId,
        change: impl FnOnce(&mut KeyRecord) -> Result<(), ApplyError>,
    ) -> Result<Response, ApplyError> {
        let mut key = Box::new(self.stored_key(key_id)?.clone());
        change(&mut key)?;
        let metadata = self.metadata(&key);
        self.keys.insert(key_id.clone(), key);
        self.dirty.insert(RowKey::Key(key_id.clone()));
        Ok(Response::Key(metadata))
    }

    pub(super) fn create_key(&mut self, new: &NewKey) -> Result<Response, ApplyError> {
        if self.keys.contains_key(&new.key_id) {
            return Err(ApplyError::KeyIdTaken {
                key_id: new.key_id.clone(),
            });
        }
        if self.names.contains_key(&new.name) {
            return Err(ApplyError::KeyNameTaken {
                name: new.name.clone(),
            });
        }
        validate_tags(&new.tags).map_err(|reason| ApplyError::InvalidTags {
            key_id: new.key_id.clone(),
            reason,
        })?;
        if new.rotation_period_ms == Some(0) {
            return Err(ApplyError::InvalidRotationPeriod {
                key_id: new.key_id.clone(),
            });
        }
        let (state, versions, primary_version) = match (&new.origin, &new.sealed_material) {
            (KeyOrigin::Tessera, Some(material)) => (
                KeyState::Enabled,
                KeyVersions::one(new_version(KeyVersion::FIRST, material, new.at_ms)),
                KeyVersion::FIRST,
            ),
            (KeyOrigin::External, None) => (
                KeyState::PendingImport,
                KeyVersions::default(),
                KeyVersion::NONE,
            ),
            (origin, _) => {
                return Err(ApplyError::WrongOrigin {
                    key_id: new.key_id.clone(),
                    origin: *origin,
                    reason: "material must come with TESSERA keys and only with them".into(),
                })
            }
        };
        if new.origin == KeyOrigin::External && new.rotation_period_ms.is_some() {
            return Err(ApplyError::WrongOrigin {
                key_id: new.key_id.clone(),
                origin: new.origin,
                reason: "imported keys do not rotate automatically".into(),
            });
        }
        let key = KeyRecord {
            key_id: new.key_id.clone(),
            name: new.name.clone(),
            spec: new.spec,
            usage: new.spec.usage(),
            state,
            origin: new.origin,
            description: new.description.clone(),
            primary_version,
            versions,
            min_decryption_version: KeyVersion::FIRST,
            rotation_period_ms: new.rotation_period_ms,
            exportable: new.exportable,
            tags: new.tags.clone(),
            deletion_date_ms: None,
            import_token: None,
            created_at_ms: new.at_ms,
            created_by: new.created_by.clone(),
        };
        let metadata = self.metadata(&key);
        self.names.insert(new.name.clone(), new.key_id.clone());
        self.keys.insert(new.key_id.clone(), Box::new(key));
        self.dirty.insert(RowKey::Key(new.key_id.clone()));
        Ok(Response::Key(metadata))
    }

    pub(super) fn rotate_key(
        &mut self,
        key_id: &KeyId,
        version: KeyVersion,
        sealed_material: &[u8],
        at_ms: u64,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            if key.origin == KeyOrigin::External {
                return Err(ApplyError::WrongOrigin {
                    key_id: key.key_id.clone(),
                    origin: key.origin,
                    reason: "rotate it by importing new material".into(),
                });
            }
            if key.state != KeyState::Enabled {
                return Err(invalid_state(key, "rotated"));
            }
            check_next_version(key, version)?;
            key.versions
                .insert(new_version(version, sealed_material, at_ms));
            key.primary_version = version;
            Ok(())
        })
    }

    pub(super) fn set_key_enabled(
        &mut self,
        key_id: &KeyId,
        enabled: bool,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            match key.state {
                KeyState::Enabled | KeyState::Disabled => {}
                _ => {
                    return Err(invalid_state(
                        key,
                        if enabled { "enabled" } else { "disabled" },
                    ))
                }
            }
            key.state = if enabled {
                KeyState::Enabled
            } else {
                KeyState::Disabled
            };
            Ok(())
        })
    }

    /// Schedules destruction `window_ms` after the later of cluster time and the proposer's
    /// clock: a proposer whose clock runs ahead delays the date, one that runs behind is
    /// overruled by cluster time.
    pub(super) fn schedule_deletion(
        &mut self,
        key_id: &KeyId,
        window_ms: u64,
        at_ms: u64,
    ) -> Result<Response, ApplyError> {
        let deletion_date_ms = self.clock.now_ms().max(at_ms).saturating_add(window_ms);
        self.update_key(key_id, |key| {
            if key.state == KeyState::PendingDeletion {
                return Err(invalid_state(key, "scheduled for deletion again"));
            }
            key.state = KeyState::PendingDeletion;
            key.deletion_date_ms = Some(deletion_date_ms);
            Ok(())
        })
    }

    pub(super) fn cancel_deletion(&mut self, key_id: &KeyId) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            if key.state != KeyState::PendingDeletion {
                return Err(invalid_state(key, "restored from deletion"));
            }
            // Like AWS KMS, a restored key comes back disabled; a key that never received
            // material goes back to waiting for it.
            key.state = if key.versions.is_empty() {
                KeyState::PendingImport
            } else {
                KeyState::Disabled
            };
            key.deletion_date_ms = None;
            Ok(())
        })
    }

    /// Destroys a key whose deletion date has passed in cluster time.
    pub(super) fn destroy_key(&mut self, key_id: &KeyId) -> Result<Response, ApplyError> {
        let key = self.stored_key(key_id)?;
        if key.state != KeyState::PendingDeletion {
            return Err(invalid_state(key, "destroyed without a scheduled deletion"));
        }
        let deletion_date_ms = key.deletion_date_ms.unwrap_or(u64::MAX);
        if self.clock.now_ms() < deletion_date_ms {
            return Err(ApplyError::DeletionNotDue {
                key_id: key_id.clone(),
                deletion_date_ms,
            });
        }
        let name = key.name.clone();
        self.keys.remove(key_id);
        self.names.remove(&name);
        self.dirty.insert(RowKey::Key(key_id.clone()));
        for alias in self.aliases_by_key.remove(key_id).unwrap_or_default() {
            self.aliases.remove(&alias);
            self.dirty.insert(RowKey::Alias(alias));
        }
        self.drop_grants_of(key_id);
        Ok(Response::KeyDestroyed {
            key_id: key_id.clone(),
        })
    }

    pub(super) fn set_min_decryption_version(
        &mut self,
        key_id: &KeyId,
        version: KeyVersion,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            if version.is_none() || version > key.primary_version {
                return Err(ApplyError::InvalidMinDecryptionVersion {
                    key_id: key.key_id.clone(),
                    requested: version,
                    primary: key.primary_version,
                });
            }
            key.min_decryption_version = version;
            Ok(())
        })
    }

    pub(super) fn set_version_enabled(
        &mut self,
        key_id: &KeyId,
        version: KeyVersion,
        enabled: bool,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            let primary = key.primary_version;
            let stored = live_version_mut(key, key_id, version)?;
            if !enabled && version == primary {
                return Err(ApplyError::PrimaryVersion {
                    key_id: key_id.clone(),
                    version,
                    operation: "disabled".into(),
                });
            }
            stored.state = if enabled {
                VersionState::Enabled
            } else {
                VersionState::Disabled
            };
            Ok(())
        })
    }

    pub(super) fn destroy_version(
        &mut self,
        key_id: &KeyId,
        version: KeyVersion,
        at_ms: u64,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            if version == key.primary_version {
                return Err(ApplyError::PrimaryVersion {
                    key_id: key_id.clone(),
                    version,
                    operation: "destroyed".into(),
                });
            }
            let stored = live_version_mut(key, key_id, version)?;
            stored.state = VersionState::Destroyed;
            stored.sealed_material = None;
            stored.destroyed_at_ms = Some(at_ms);
            Ok(())
        })
    }

    pub(super) fn tag_key(
        &mut self,
        key_id: &KeyId,
        tags: &BTreeMap<String, String>,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            key.tags
                .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            validate_tags(&key.tags).map_err(|reason| ApplyError::InvalidTags {
                key_id: key_id.clone(),
                reason,
            })
        })
    }

    pub(super) fn set_rotation_period(
        &mut self,
        key_id: &KeyId,
        period_ms: Option<u64>,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            if period_ms == Some(0) {
                return Err(ApplyError::InvalidRotationPeriod {
                    key_id: key_id.clone(),
                });
            }
            if key.origin == KeyOrigin::External && period_ms.is_some() {
                return Err(ApplyError::WrongOrigin {
                    key_id: key_id.clone(),
                    origin: key.origin,
                    reason: "imported keys do not rotate automatically".into(),
                });
            }
            key.rotation_period_ms = period_ms;
            Ok(())
        })
    }

    pub(super) fn create_import_token(
        &mut self,
        key_id: &KeyId,
        token: &ImportToken,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            check_importable(key, "given import parameters")?;
            key.import_token = Some(Box::new(token.clone()));
            Ok(())
        })?;
        Ok(Response::ImportParameters {
            key_id: key_id.clone(),
            token_id: token.token_id.clone(),
            public_key: token.public_key.clone(),
            expires_at_ms: token.expires_at_ms,
        })
    }

    pub(super) fn import_material(
        &mut self,
        key_id: &KeyId,
        token_id: &str,
        version: KeyVersion,
        sealed_material: &[u8],
        at_ms: u64,
    ) -> Result<Response, ApplyError> {
        self.update_key(key_id, |key| {
            check_importable(key, "given imported material")?;
            let token = key
                .import_token
                .as_ref()
                .filter(|t| t.token_id == token_id)
                .ok_or_else(|| ApplyError::ImportTokenInvalid {
                    key_id: key_id.clone(),
                })?;
            if at_ms >= token.expires_at_ms {
                return Err(ApplyError::ImportTokenExpired {
                    key_id: key_id.clone(),
                    expires_at_ms: token.expires_at_ms,
                });
            }
            check_next_version(key, version)?;
            key.versions
                .insert(new_version(version, sealed_material, at_ms));
            key.primary_version = version;
            key.state = KeyState::Enabled;
            key.import_token = None;
            Ok(())
        })
    }
}
