//! Alias commands. An alias names exactly one key; a key may have many aliases.

use crate::command::{ApplyError, Response};
use crate::ids::{AliasName, KeyId};
use crate::machine::State;
use crate::rows::RowKey;

fn not_found(alias: &AliasName) -> ApplyError {
    ApplyError::AliasNotFound {
        alias: alias.clone(),
    }
}

impl State {
    fn point(&mut self, alias: &AliasName, key_id: &KeyId) -> Response {
        if let Some(old) = self.aliases.insert(alias.clone(), key_id.clone()) {
            if let Some(set) = self.aliases_by_key.get_mut(&old) {
                set.remove(alias);
                if set.is_empty() {
                    self.aliases_by_key.remove(&old);
                }
            }
        }
        self.aliases_by_key
            .entry(key_id.clone())
            .or_default()
            .insert(alias.clone());
        self.dirty.insert(RowKey::Alias(alias.clone()));
        Response::Alias {
            alias: alias.clone(),
            key_id: key_id.clone(),
        }
    }

    pub(super) fn create_alias(
        &mut self,
        alias: &AliasName,
        key_id: &KeyId,
    ) -> Result<Response, ApplyError> {
        if self.aliases.contains_key(alias) {
            return Err(ApplyError::AliasExists {
                alias: alias.clone(),
            });
        }
        self.stored_key(key_id)?;
        Ok(self.point(alias, key_id))
    }

    pub(super) fn update_alias(
        &mut self,
        alias: &AliasName,
        key_id: &KeyId,
    ) -> Result<Response, ApplyError> {
        let current = self.aliases.get(alias).ok_or_else(|| not_found(alias))?;
        self.stored_key(key_id)?;
        let usage = |id: &KeyId| self.keys.get(id).map(|k| k.usage);
        let (current_usage, requested_usage) = (usage(current), usage(key_id));
        if let (Some(current), Some(requested)) = (current_usage, requested_usage) {
            if current != requested {
                return Err(ApplyError::AliasUsageMismatch {
                    alias: alias.clone(),
                    current: current.name().into(),
                    requested: requested.name().into(),
                });
            }
        }
        Ok(self.point(alias, key_id))
    }

    pub(super) fn delete_alias(&mut self, alias: &AliasName) -> Result<Response, ApplyError> {
        let key_id = self.aliases.remove(alias).ok_or_else(|| not_found(alias))?;
        if let Some(set) = self.aliases_by_key.get_mut(&key_id) {
            set.remove(alias);
            if set.is_empty() {
                self.aliases_by_key.remove(&key_id);
            }
        }
        self.dirty.insert(RowKey::Alias(alias.clone()));
        Ok(Response::AliasDeleted {
            alias: alias.clone(),
        })
    }
}
