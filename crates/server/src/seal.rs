//! The seal manager: this node's unseal progress and, once unsealed, the keyring in memory.
//!
//! Every node starts sealed after every restart. Operators submit unseal shares one at a
//! time; when `threshold` distinct shares are in, they are combined and checked by opening the
//! sealed root key. A wrong combination resets the progress and leaves the node sealed.
//!
//! What stays in memory is as little as the node needs: the pending shares (in a buffer that
//! never reallocates, see `pending`) until the attempt, then only the keyring. The root key
//! is dropped as soon as it has opened the keyring: nothing on a running node uses it (there
//! is no keyring rotation or rekey command; one would need to bring the shares again, or to
//! keep the root key on purpose). Sealing drops the keyring. Every one of these types wipes
//! itself when dropped.

mod pending;

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use subtle::ConstantTimeEq;
use tessera_crypto::{root, Keyring, UnsealShare};
use tessera_state::SealConfig;

pub use pending::PendingShares;

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

/// The secrets a node holds in each seal state; `Debug` names them without their values.
#[derive(Debug)]
enum Inner {
    Sealed { pending: PendingShares },
    Unsealed { keyring: Keyring },
}

/// Holds the seal state of this node.
pub struct SealManager {
    inner: Mutex<Inner>,
}

/// Shows what the node holds in memory (share count, keyring terms), never a secret value.
impl fmt::Debug for SealManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealManager")
            .field("state", &*self.lock())
            .finish()
    }
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
                pending: PendingShares::new(),
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
                progress: pending.count(),
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
        for held in pending.as_slice() {
            if bool::from(held.ct_eq(&share)) {
                return Err(SealError::DuplicateShare {
                    progress: pending.count(),
                    threshold,
                });
            }
            if held.identifier() == share.identifier() {
                return Err(SealError::ConflictingShare {
                    identifier: share.identifier(),
                    progress: pending.count(),
                    threshold,
                });
            }
        }
        pending.push(share, usize::from(config.threshold));
        if pending.count() < threshold {
            return Ok(SealStatus {
                sealed: true,
                progress: pending.count(),
            });
        }
        let attempt = root::unseal(
            pending.as_slice(),
            &config.sealed_root_key,
            &config.sealed_keyring,
        );
        // Whatever the outcome, this attempt is over: its shares are wiped now.
        pending.clear();
        match attempt {
            Ok(root::Unsealed { keyring, root_key }) => {
                // Nothing uses the root key once it has opened the keyring: wipe it now.
                drop(root_key);
                *inner = Inner::Unsealed { keyring };
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

    /// Seals the node: drops the keyring and any unseal progress.
    pub fn seal(&self) {
        *self.lock() = Inner::Sealed {
            pending: PendingShares::new(),
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
    fn only_the_keyring_stays_in_memory_after_unseal() {
        let (shares, config) = setup(3, 2);
        let m = SealManager::new();
        m.submit(shares[0].clone(), &config).unwrap();
        assert_eq!(
            format!("{m:?}"),
            "SealManager { state: Sealed { pending: PendingShares { count: 1, capacity: 2 } } }"
        );
        m.submit(shares[2].clone(), &config).unwrap();
        let held = format!("{m:?}");
        assert_eq!(
            held,
            "SealManager { state: Unsealed { keyring: Keyring { active: 1, terms: [1], .. } } }"
        );
        assert!(!held.contains("SecretKey256"), "a root key is held: {held}");
    }

    #[test]
    fn the_share_buffer_is_sized_for_the_threshold_and_wiped_after_an_attempt() {
        let (shares, config) = setup(7, 5);
        let (foreign, _) = setup(7, 5);
        let m = SealManager::new();
        let buffer_state = || match &*m.lock() {
            Inner::Sealed { pending } => (pending.as_slice().as_ptr(), pending.count()),
            Inner::Unsealed { .. } => panic!("unsealed"),
        };
        m.submit(shares[0].clone(), &config).unwrap();
        let (buffer, _) = buffer_state();
        for share in &shares[1..4] {
            m.submit(share.clone(), &config).unwrap();
            assert_eq!(buffer_state().0, buffer, "the share buffer moved");
        }
        assert!(format!("{m:?}").contains("count: 4, capacity: 5"), "{m:?}");
        // A failed attempt empties the buffer in place.
        assert_eq!(
            m.submit(foreign[4].clone(), &config),
            Err(SealError::WrongShares { threshold: 5 })
        );
        assert_eq!(buffer_state(), (buffer, 0));
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
