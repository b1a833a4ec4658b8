//! The cluster's seal configuration as replicated state.

use serde::{Deserialize, Serialize};

/// What `operator init` stores: the Shamir parameters and the two sealed blobs of the key
/// hierarchy. The unseal key and its shares are never part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealConfig {
    /// Number of shares the unseal key was split into.
    pub shares: u8,
    /// Number of shares needed to unseal a node.
    pub threshold: u8,
    /// The root key, sealed under the unseal key (see `tessera_crypto::root`).
    pub sealed_root_key: Vec<u8>,
    /// The barrier keyring, sealed under the root key.
    pub sealed_keyring: Vec<u8>,
    /// When the cluster was initialised, in milliseconds since the Unix epoch (from the
    /// proposer's clock).
    pub initialized_at_ms: u64,
}
