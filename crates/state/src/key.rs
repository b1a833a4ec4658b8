//! Customer keys as the replicated state holds them: metadata plus sealed version material.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tessera_crypto::spec::{KeySpec, KeyUsage};

use crate::ids::{KeyId, KeyName};

/// A key's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    /// Usable for every operation its usage allows.
    Enabled,
}

impl KeyState {
    /// The API name of the state, e.g. `ENABLED`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
        }
    }
}

/// A key version's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionState {
    /// The version decrypts (and encrypts when it is primary).
    Enabled,
}

impl VersionState {
    /// The API name of the state, e.g. `ENABLED`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
        }
    }
}

/// One version of a key: its material, sealed by the barrier with AAD
/// `key/<key_id>/v<version>` (see [`version_aad`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersionRecord {
    /// Version number, from 1.
    pub version: u32,
    /// Version state.
    pub state: VersionState,
    /// Barrier-sealed key material.
    pub sealed_material: Vec<u8>,
    /// Creation time, milliseconds since the Unix epoch (proposer's clock).
    pub created_at_ms: u64,
}

/// A customer key as stored in the replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Immutable id.
    pub key_id: KeyId,
    /// Unique name.
    pub name: KeyName,
    /// Algorithm and size of the material.
    pub spec: KeySpec,
    /// What the key may be used for.
    pub usage: KeyUsage,
    /// Lifecycle state.
    pub state: KeyState,
    /// Free-text description.
    pub description: String,
    /// The version new encryptions use.
    pub primary_version: u32,
    /// All versions by number.
    pub versions: BTreeMap<u32, KeyVersionRecord>,
    /// Creation time, milliseconds since the Unix epoch (proposer's clock).
    pub created_at_ms: u64,
    /// Identity that created the key.
    pub created_by: String,
}

impl KeyRecord {
    /// The highest version number.
    pub fn latest_version(&self) -> u32 {
        self.versions.keys().next_back().copied().unwrap_or(0)
    }

    /// The public view of this key, without material.
    pub fn metadata(&self) -> KeyMetadata {
        KeyMetadata {
            key_id: self.key_id.clone(),
            name: self.name.clone(),
            spec: self.spec,
            usage: self.usage,
            state: self.state,
            description: self.description.clone(),
            primary_version: self.primary_version,
            versions: self
                .versions
                .values()
                .map(|v| VersionMetadata {
                    version: v.version,
                    state: v.state,
                    created_at_ms: v.created_at_ms,
                })
                .collect(),
            created_at_ms: self.created_at_ms,
            created_by: self.created_by.clone(),
        }
    }
}

/// A key as the API shows it: everything but the sealed material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMetadata {
    /// Immutable id.
    pub key_id: KeyId,
    /// Unique name.
    pub name: KeyName,
    /// Algorithm and size of the material.
    pub spec: KeySpec,
    /// What the key may be used for.
    pub usage: KeyUsage,
    /// Lifecycle state.
    pub state: KeyState,
    /// Free-text description.
    pub description: String,
    /// The version new encryptions use.
    pub primary_version: u32,
    /// Versions in ascending order.
    pub versions: Vec<VersionMetadata>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Identity that created the key.
    pub created_by: String,
}

/// A key version as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMetadata {
    /// Version number.
    pub version: u32,
    /// Version state.
    pub state: VersionState,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

/// The barrier AAD that binds a version's sealed material to its key and version, so a blob
/// copied to another key or version fails to open.
pub fn version_aad(key_id: &KeyId, version: u32) -> Vec<u8> {
    format!("key/{key_id}/v{version}").into_bytes()
}
