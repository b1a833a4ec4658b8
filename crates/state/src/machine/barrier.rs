//! Barrier rotation, retirement, re-sealing and rekey: compare-and-set commands on the
//! sealed blobs, and the queries the re-seal job and `operator status` read.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::State;
use crate::barrier::{blob_term, BarrierTerms, BlobRef, ResealedBlob};
use crate::command::{ApplyError, Command, Response};
use crate::rows::RowKey;
use crate::seal_config::SealConfig;

/// A stored blob that is sealed under an older term than the active one, with its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleBlob {
    /// Where it is stored.
    pub target: BlobRef,
    /// The AAD it is sealed with.
    pub aad: Vec<u8>,
    /// The blob.
    pub sealed: Vec<u8>,
}

impl State {
    /// The active and oldest barrier terms.
    pub fn barrier_terms(&self) -> BarrierTerms {
        self.barrier
    }

    /// Every barrier blob the state stores that may be sealed under a term older than the
    /// active one, with its place. None can be while the keyring holds the active term only
    /// (`apply` refuses material under a retired term), so the common case scans nothing.
    fn blobs(&self) -> impl Iterator<Item = (BlobRef, &[u8])> + '_ {
        let may_be_stale = self.barrier.oldest < self.barrier.active;
        self.keys
            .values()
            .filter(move |_| may_be_stale)
            .flat_map(|key| {
                let versions = key.versions.iter().filter_map(|v| {
                    v.sealed_material.as_deref().map(|sealed| {
                        let target = BlobRef::KeyVersion {
                            key_id: key.key_id.clone(),
                            version: v.version,
                        };
                        (target, sealed)
                    })
                });
                let token = key.import_token.iter().map(|t| {
                    let target = BlobRef::ImportToken {
                        key_id: key.key_id.clone(),
                        token_id: t.token_id.clone(),
                    };
                    (target, t.sealed_private_key.as_slice())
                });
                versions.chain(token)
            })
    }

    /// How many blobs are sealed under each term older than the active one: what the re-seal
    /// job has left to do (empty when it is done). Scans every key between a rotation and the
    /// retirement of the old terms; costs nothing otherwise.
    pub fn blobs_left_by_term(&self) -> BTreeMap<u32, u64> {
        let active = self.barrier.active;
        let mut left = BTreeMap::new();
        for term in self.blobs().filter_map(|(_, sealed)| blob_term(sealed)) {
            if term < active {
                let count: &mut u64 = left.entry(term).or_default();
                *count = count.saturating_add(1);
            }
        }
        left
    }

    /// Up to `limit` blobs sealed under a term older than the active one, in storage order,
    /// for the re-seal job.
    pub fn stale_blobs(&self, limit: usize) -> Vec<StaleBlob> {
        let active = self.barrier.active;
        self.blobs()
            .filter(|(_, sealed)| blob_term(sealed).is_some_and(|term| term < active))
            .filter_map(|(target, sealed)| {
                let aad = self.blob_aad(&target)?;
                Some(StaleBlob {
                    target,
                    aad,
                    sealed: sealed.to_vec(),
                })
            })
            .take(limit)
            .collect()
    }

    /// The AAD a stored blob is sealed with.
    fn blob_aad(&self, target: &BlobRef) -> Option<Vec<u8>> {
        match target {
            BlobRef::KeyVersion { key_id, version } => {
                let key = self.keys.get(key_id)?;
                Some(crate::key::version_aad(key_id, *version, key.spec))
            }
            BlobRef::ImportToken { key_id, token_id } => {
                Some(crate::key::import_token_aad(key_id, token_id))
            }
        }
    }

    fn blob_mut(&mut self, target: &BlobRef) -> Option<&mut Vec<u8>> {
        match target {
            BlobRef::KeyVersion { key_id, version } => self
                .keys
                .get_mut(key_id)?
                .versions
                .get_mut(*version)?
                .sealed_material
                .as_mut(),
            BlobRef::ImportToken { key_id, token_id } => self
                .keys
                .get_mut(key_id)?
                .import_token
                .as_mut()
                .filter(|t| &t.token_id == token_id)
                .map(|t| &mut t.sealed_private_key),
        }
    }

    /// Refuses new material sealed under a retired term (a proposer that prepared it before
    /// the retirement was applied seals it again).
    pub(super) fn check_new_material(&self, command: &Command) -> Result<(), ApplyError> {
        let blob = match command {
            Command::CreateKey(new) => new.sealed_material.as_deref(),
            Command::RotateKey {
                sealed_material, ..
            }
            | Command::ImportKeyMaterial {
                sealed_material, ..
            } => Some(sealed_material.as_slice()),
            Command::CreateImportToken { token, .. } => Some(token.sealed_private_key.as_slice()),
            _ => None,
        };
        let oldest = self.barrier.oldest;
        match blob.and_then(blob_term) {
            Some(term) if term < oldest => Err(ApplyError::RetiredBarrierTerm { term, oldest }),
            _ => Ok(()),
        }
    }

    fn seal_mut(&mut self) -> Result<&mut SealConfig, ApplyError> {
        self.seal.as_mut().ok_or(ApplyError::NotInitialized)
    }

    fn check_keyring(&self, previous_keyring_digest: &[u8; 32]) -> Result<(), ApplyError> {
        let stored = self.seal.as_ref().ok_or(ApplyError::NotInitialized)?;
        let digest: [u8; 32] = Sha256::digest(&stored.sealed_keyring).into();
        if &digest == previous_keyring_digest {
            Ok(())
        } else {
            Err(ApplyError::StaleKeyring {
                active: self.barrier.active,
            })
        }
    }

    fn store_keyring(&mut self, sealed_keyring: &[u8], terms: BarrierTerms) -> Response {
        if let Ok(seal) = self.seal_mut() {
            seal.sealed_keyring = sealed_keyring.to_vec();
        }
        self.barrier = terms;
        self.dirty.insert(RowKey::Seal);
        self.dirty.insert(RowKey::Barrier);
        Response::Barrier(terms)
    }

    pub(super) fn rotate_barrier(
        &mut self,
        previous_keyring_digest: &[u8; 32],
        term: u32,
        sealed_keyring: &[u8],
    ) -> Result<Response, ApplyError> {
        self.check_keyring(previous_keyring_digest)?;
        if self.barrier.active.checked_add(1) != Some(term) {
            return Err(ApplyError::StaleKeyring {
                active: self.barrier.active,
            });
        }
        let terms = BarrierTerms {
            active: term,
            oldest: self.barrier.oldest,
        };
        Ok(self.store_keyring(sealed_keyring, terms))
    }

    pub(super) fn retire_barrier_terms(
        &mut self,
        previous_keyring_digest: &[u8; 32],
        sealed_keyring: &[u8],
    ) -> Result<Response, ApplyError> {
        self.check_keyring(previous_keyring_digest)?;
        let left = self.blobs_left_by_term();
        if let Some((&oldest_in_use, _)) = left.first_key_value() {
            return Err(ApplyError::BarrierTermsInUse {
                active: self.barrier.active,
                blobs: left.values().fold(0u64, |a, b| a.saturating_add(*b)),
                oldest_in_use,
            });
        }
        let terms = BarrierTerms {
            active: self.barrier.active,
            oldest: self.barrier.active,
        };
        Ok(self.store_keyring(sealed_keyring, terms))
    }

    pub(super) fn reseal_blobs(&mut self, blobs: &[ResealedBlob]) -> Result<Response, ApplyError> {
        let active = self.barrier.active;
        // Every blob is checked before any is written: a batch is never half-applied.
        for blob in blobs {
            let term = blob_term(&blob.sealed);
            if term != Some(active) {
                return Err(ApplyError::ResealNotActive {
                    target: blob.target.clone(),
                    term,
                    active,
                });
            }
            let current = self.blob_mut(&blob.target).map(Sha256::digest);
            if current.as_deref() != Some(blob.previous_digest.as_slice()) {
                return Err(ApplyError::StaleReseal {
                    target: blob.target.clone(),
                });
            }
        }
        for blob in blobs {
            if let Some(stored) = self.blob_mut(&blob.target) {
                stored.clone_from(&blob.sealed);
            }
            let (BlobRef::KeyVersion { key_id, .. } | BlobRef::ImportToken { key_id, .. }) =
                &blob.target;
            self.dirty.insert(RowKey::Key(key_id.clone()));
        }
        Ok(Response::Resealed {
            count: u32::try_from(blobs.len()).unwrap_or(u32::MAX),
        })
    }

    pub(super) fn rekey(
        &mut self,
        previous_root_key_digest: &[u8; 32],
        shares: u8,
        threshold: u8,
        sealed_root_key: &[u8],
    ) -> Result<Response, ApplyError> {
        if threshold == 0 || threshold > shares {
            return Err(ApplyError::InvalidSealConfig { shares, threshold });
        }
        let seal = self.seal_mut()?;
        let digest: [u8; 32] = Sha256::digest(&seal.sealed_root_key).into();
        if &digest != previous_root_key_digest {
            return Err(ApplyError::StaleRootKey);
        }
        seal.shares = shares;
        seal.threshold = threshold;
        seal.sealed_root_key = sealed_root_key.to_vec();
        self.dirty.insert(RowKey::Seal);
        Ok(Response::Rekeyed {
            sealed_root_key_digest: Sha256::digest(sealed_root_key).into(),
        })
    }
}
