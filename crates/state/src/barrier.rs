//! The barrier's keyring terms as the replicated state tracks them, and the blobs sealed
//! under them.
//!
//! The keyring itself is sealed (under the root key, in [`crate::SealConfig`]), so `apply`
//! cannot look inside it. What the state does know: the active term and the oldest term the
//! keyring still holds ([`BarrierTerms`], moved only by a barrier rotation or retirement), and
//! the term written in the clear header of every stored barrier blob. With both, `apply`
//! refuses material sealed under a retired term, refuses to retire terms that blobs still
//! use, and counts what the re-seal job has left to do.

use serde::{Deserialize, Serialize};
use tessera_crypto::KeyVersion;

use crate::ids::KeyId;

/// The active and oldest keyring terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarrierTerms {
    /// The term new material is sealed under.
    pub active: u32,
    /// The oldest term the keyring holds; older terms were retired and open nothing.
    pub oldest: u32,
}

/// A cluster initialised before barrier rotation existed holds term 1 only.
impl Default for BarrierTerms {
    fn default() -> Self {
        Self {
            active: 1,
            oldest: 1,
        }
    }
}

/// Where a barrier blob is stored in the state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BlobRef {
    /// A key version's sealed material.
    KeyVersion {
        /// The key.
        key_id: KeyId,
        /// The version.
        version: KeyVersion,
    },
    /// An import token's sealed private key.
    ImportToken {
        /// The key.
        key_id: KeyId,
        /// The token.
        token_id: String,
    },
}

impl std::fmt::Display for BlobRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::KeyVersion { key_id, version } => write!(f, "key {key_id} version {version}"),
            Self::ImportToken { key_id, token_id } => {
                write!(f, "import token {token_id} of key {key_id}")
            }
        }
    }
}

/// One blob re-sealed under the active term: compare-and-set on the blob it replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedBlob {
    /// Where it is stored.
    pub target: BlobRef,
    /// SHA-256 of the stored blob this one replaces.
    pub previous_digest: [u8; 32],
    /// The same secret, sealed under the active term with the same AAD.
    pub sealed: Vec<u8>,
}

/// The term in a barrier blob's clear header, or `None` for bytes that are not a barrier
/// blob (the state never opens blobs; an unparsable one is never counted or refused here).
pub fn blob_term(blob: &[u8]) -> Option<u32> {
    tessera_crypto::barrier::blob_term(blob).ok()
}
