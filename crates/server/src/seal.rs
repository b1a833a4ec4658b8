//! The seal manager: this node's unseal progress and, once unsealed, the keyring in memory.
//!
//! Every node starts sealed after every restart. Operators submit unseal shares one at a
//! time; when `threshold` distinct shares are in, they are combined and checked by opening the
//! sealed root key. A wrong combination resets the progress and leaves the node sealed.
//! Sealing drops the root key and keyring (their types zeroize on drop).

use std::sync::{Mutex, MutexGuard, PoisonError};

use subtle::ConstantTimeEq;
use tessera_crypto::{root, Keyring, SecretKey256, UnsealShare};
use tessera_state::SealConfig;

/// Why an unseal step failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The same share was submitted twice in this attempt.
    #[error("this unseal share was already submitted; progress {progress}/{threshold}")]
    DuplicateShare {
        /// Shares held.
        progress: u32,
        /// Shares needed.
        threshold: u32,
    },
    /// Another share with the same identifier was already submitted: the two cannot both be
    /// shares of this cluster's unseal key.
    #[error("another share with identifier {identifier} was already submitted; progress {progress}/{threshold}")]
    ConflictingShare {
        /// The identifier.
        identifier: u8,
        /// Shares held.
        progress: u32,
        /// Shares needed.
        threshold: u32,
    },
    /// The combined shares are not this cluster's unseal key.
    #[error("the submitted shares do not reconstruct this cluster's unseal key; unseal progress was reset to 0/{threshold}")]
    WrongShares {
        /// Shares needed.
        threshold: u32,
    },
    /// The stored seal blobs cannot be opened even though the unseal key checked out.
    #[error("the stored keyring cannot be opened: the seal configuration is corrupt")]
    CorruptSeal,
}

/// Seal status as the API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealStatus {
    /// Whether the node is sealed.
    pub sealed: bool,
    /// Shares submitted towards the next attempt.
    pub progress: u32,
}

enum Inner {
    Sealed {
        pending: Vec<UnsealShare>,
    },
    Unsealed {
        keyring: Keyring,
        _root_key: SecretKey256,
    },
}

/// Holds the seal state of this node.
pub struct SealManager {
    inner: Mutex<Inner>,
}

impl Default for SealManager {
    fn default() -> Self {
        Self::new()
    }
}

impl SealManager {
    /// A sealed manager with no progress.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::Sealed {
                pending: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Current status.
    pub fn status(&self) -> SealStatus {
        match &*self.lock() {
            Inner::Sealed { pending } => SealStatus {
                sealed: true,
                progress: count(pending),
            },
            Inner::Unsealed { .. } => SealStatus {
                sealed: false,
                progress: 0,
            },
        }
    }

    /// Adds a share; unseals when `config.threshold` shares are in.
    ///
    /// # Errors
    /// [`SealError`]; on [`SealError::WrongShares`] the progress is reset.
    pub fn submit(&self, share: UnsealShare, config: &SealConfig) -> Result<SealStatus, SealError> {
        let threshold = u32::from(config.threshold);
        let mut inner = self.lock();
        let Inner::Sealed { pending } = &mut *inner else {
            return Ok(SealStatus {
                sealed: false,
                progress: 0,
            });
        };
        for held in pending.iter() {
            if bool::from(held.ct_eq(&share)) {
                return Err(SealError::DuplicateShare {
                    progress: count(pending),
                    threshold,
                });
            }
            if held.identifier() == share.identifier() {
                return Err(SealError::ConflictingShare {
                    identifier: share.identifier(),
                    progress: count(pending),
                    threshold,
                });
            }
        }
        pending.push(share);
        if count(pending) < threshold {
            return Ok(SealStatus {
                sealed: true,
                progress: count(pending),
            });
        }
        let attempt = std::mem::take(pending);
        match root::unseal(&attempt, &config.sealed_root_key, &config.sealed_keyring) {
            Ok(unsealed) => {
                *inner = Inner::Unsealed {
                    keyring: unsealed.keyring,
                    _root_key: unsealed.root_key,
                };
                Ok(SealStatus {
                    sealed: false,
                    progress: 0,
                })
            }
            Err(tessera_crypto::Error::WrongUnsealKey) => Err(SealError::WrongShares { threshold }),
            Err(_) => Err(SealError::CorruptSeal),
        }
    }

    /// Discards the shares submitted so far.
    pub fn reset(&self) {
        if let Inner::Sealed { pending } = &mut *self.lock() {
            pending.clear();
        }
    }

    /// Seals the node: drops the keyring and root key, and any unseal progress.
    pub fn seal(&self) {
        *self.lock() = Inner::Sealed {
            pending: Vec::new(),
        };
    }

    /// Runs `f` with the keyring, or returns `None` while sealed.
    pub fn with_keyring<R>(&self, f: impl FnOnce(&Keyring) -> R) -> Option<R> {
        match &*self.lock() {
            Inner::Unsealed { keyring, .. } => Some(f(keyring)),
            Inner::Sealed { .. } => None,
        }
    }
}

fn count(pending: &[UnsealShare]) -> u32 {
    u32::try_from(pending.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(shares: u8, threshold: u8) -> (Vec<UnsealShare>, SealConfig) {
        let mut rng = tessera_crypto::os_rng();
        let material = root::initialize(shares, threshold, &mut rng).unwrap();
        let config = SealConfig {
            shares,
            threshold,
            sealed_root_key: material.sealed_root_key,
            sealed_keyring: material.sealed_keyring,
            initialized_at_ms: 0,
        };
        (material.shares, config)
    }

    #[test]
    fn unseals_with_threshold_shares() {
        let (shares, config) = setup(5, 3);
        let m = SealManager::new();
        assert!(m.with_keyring(|_| ()).is_none());
        assert_eq!(m.submit(shares[4].clone(), &config).unwrap().progress, 1);
        assert_eq!(m.submit(shares[0].clone(), &config).unwrap().progress, 2);
        let status = m.submit(shares[2].clone(), &config).unwrap();
        assert!(!status.sealed);
        assert!(m.with_keyring(|k| k.active_term()).is_some());
        m.seal();
        assert!(m.status().sealed);
        assert!(m.with_keyring(|_| ()).is_none());
    }

    #[test]
    fn duplicate_share_is_refused_without_losing_progress() {
        let (shares, config) = setup(5, 3);
        let m = SealManager::new();
        m.submit(shares[0].clone(), &config).unwrap();
        assert_eq!(
            m.submit(shares[0].clone(), &config),
            Err(SealError::DuplicateShare {
                progress: 1,
                threshold: 3
            })
        );
        assert_eq!(m.status().progress, 1);
    }

    #[test]
    fn foreign_shares_reset_progress_and_right_shares_still_work() {
        let (shares, config) = setup(5, 3);
        let (foreign, _) = setup(5, 3);
        let m = SealManager::new();
        m.submit(shares[0].clone(), &config).unwrap();
        m.submit(shares[1].clone(), &config).unwrap();
        assert_eq!(
            m.submit(foreign[2].clone(), &config),
            Err(SealError::WrongShares { threshold: 3 })
        );
        assert_eq!(
            m.status(),
            SealStatus {
                sealed: true,
                progress: 0
            }
        );
        for s in &shares[2..5] {
            m.submit(s.clone(), &config).unwrap();
        }
        assert!(!m.status().sealed);
    }

    #[test]
    fn reset_discards_progress() {
        let (shares, config) = setup(3, 2);
        let m = SealManager::new();
        m.submit(shares[0].clone(), &config).unwrap();
        m.reset();
        assert_eq!(m.status().progress, 0);
    }
}
