//! The seal manager: this node's unseal progress and, once unsealed, the keyring in memory.
//!
//! Every node starts sealed after every restart. Operators submit unseal shares one at a
//! time; when `threshold` distinct shares are in, they are combined and checked by opening the
//! sealed root key. A wrong combination resets the progress and leaves the node sealed.
//!
//! What stays in memory is as little as the node needs: the pending shares (in a buffer that
//! never reallocates, see `pending`) until the attempt, then the keyring and the root key.
//! The root key is kept on purpose: a barrier rotation seals the new keyring under it (on the
//! node that handles `operator rotate`), and every node opens the replicated keyring blob with
//! it when a rotation or retirement is applied ([`SealManager::with_synced_keyring`]), so
//! rotating never needs the unseal shares. Sealing drops both. Every one of these types wipes
//! itself when dropped. A rekey's old shares are collected apart (see `rekey`).

mod pending;
pub mod rekey;

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tessera_crypto::{root, Keyring, SecretKey256, UnsealShare};
use tessera_state::SealConfig;

pub use pending::PendingShares;
pub use rekey::{RekeyManager, RekeyProgress};

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
    /// A keyring change on a sealed node.
    #[error("this node is sealed: unseal it before rotating the barrier")]
    Sealed,
    /// The keyring's term numbers are used up.
    #[error("the barrier keyring cannot be rotated further: its term numbers are exhausted")]
    TermsExhausted,
    /// A rekey step without a rekey in progress on this node.
    #[error("no rekey is in progress on this node: start one with `tessera operator rekey --init --shares N --threshold K` (and send every old share to the same node)")]
    NoRekey,
    /// `rekey --init` while one is in progress.
    #[error("a rekey to {threshold} of {shares} shares is already in progress on this node ({progress}/{required} old shares); finish it or cancel it with `tessera operator rekey --cancel`")]
    RekeyInProgress {
        /// New share count.
        shares: u8,
        /// New threshold.
        threshold: u8,
        /// Old shares held.
        progress: u32,
        /// Old shares needed.
        required: u32,
    },
    /// A share sent for another rekey attempt than the one in progress.
    #[error("this share was sent for rekey attempt {given:?}, but the attempt in progress is {current:?}")]
    RekeyNonceMismatch {
        /// The nonce given.
        given: String,
        /// The nonce of the attempt in progress.
        current: String,
    },
    /// The unseal key was replaced since the rekey attempt started; the attempt is cancelled.
    #[error("the unseal key was replaced since this rekey started; the attempt was cancelled, start again with the current shares")]
    StaleRekey,
}

/// How a barrier keyring change alters the keyring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyringChange {
    /// Add a term and make it active.
    Rotate,
    /// Drop every term older than the active one.
    RetireOld,
}

/// A keyring change sealed under the root key, ready to be proposed.
#[derive(Debug)]
pub struct PreparedKeyring {
    /// The active term after the change.
    pub active: u32,
    /// The terms the change drops (empty for a rotation).
    pub retired: Vec<u32>,
    /// The new keyring, sealed under the root key.
    pub sealed_keyring: Vec<u8>,
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
    Sealed {
        pending: PendingShares,
    },
    Unsealed {
        keyring: Keyring,
        root_key: SecretKey256,
        /// The replicated keyring blob `keyring` was opened from.
        sealed_keyring: Blob,
    },
}

/// A sealed blob, shown by its length only.
struct Blob(Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
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
        pending.admit(share, config.threshold)?;
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
                *inner = Inner::Unsealed {
                    keyring,
                    root_key,
                    sealed_keyring: Blob(config.sealed_keyring.clone()),
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

    /// Seals the node: drops the keyring and any unseal progress.
    pub fn seal(&self) {
        *self.lock() = Inner::Sealed {
            pending: PendingShares::new(),
        };
    }

    /// Runs `f` with the keyring, or returns `None` while sealed.
    ///
    /// `replaced` is given the keyring blob the keyring in memory was opened from and returns
    /// the applied state's blob if it is another one (a barrier rotation or retirement was
    /// applied since), else `None`: the new blob is then opened with the root key first and
    /// replaces the keyring. Comparing in place, under this lock, keeps the common case (no
    /// change) free of copies. A blob that does not open (it cannot happen unless storage is
    /// corrupt) leaves the keyring in memory as it was.
    ///
    /// Lock order: `replaced` runs under this manager's lock and may take the applied-state
    /// read lock; nothing may hold that lock while it calls into the manager.
    pub fn with_synced_keyring<R>(
        &self,
        replaced: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
        f: impl FnOnce(&Keyring) -> R,
    ) -> Option<R> {
        let mut inner = self.lock();
        let Inner::Unsealed {
            keyring,
            root_key,
            sealed_keyring,
        } = &mut *inner
        else {
            return None;
        };
        if let Some(current) = replaced(&sealed_keyring.0).filter(|c| *c != sealed_keyring.0) {
            match root::open_keyring(root_key, &current) {
                Ok(opened) => {
                    tracing::info!(
                        active_term = opened.active_term(),
                        "switched to the replicated barrier keyring"
                    );
                    *keyring = opened;
                    sealed_keyring.0 = current;
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "the replicated barrier keyring does not open under this node's root key"
                ),
            }
        }
        Some(f(keyring))
    }

    /// Runs `f` with the root key, or returns `None` while sealed: for the derivations that
    /// must never change (the cluster id, the audit key).
    fn with_root_key<R>(&self, f: impl FnOnce(&SecretKey256) -> R) -> Option<R> {
        let inner = self.lock();
        let Inner::Unsealed { root_key, .. } = &*inner else {
            return None;
        };
        Some(f(root_key))
    }

    /// The cluster id ([`tessera_crypto::cluster_id`], derived from the root key), or `None`
    /// while sealed.
    pub fn cluster_id(&self) -> Option<[u8; tessera_crypto::cluster_id::CLUSTER_ID_LEN]> {
        self.with_root_key(|root| tessera_crypto::cluster_id::cluster_id(root).ok())
            .flatten()
    }

    /// The audit key ([`tessera_crypto::AuditKey`], derived from the root key), or `None`
    /// while sealed.
    pub fn audit_key(&self) -> Option<tessera_crypto::AuditKey> {
        self.with_root_key(|root| tessera_crypto::AuditKey::derive(root).ok())
            .flatten()
    }

    /// Runs `f` with the keyring as it is in memory, or returns `None` while sealed.
    pub fn with_keyring<R>(&self, f: impl FnOnce(&Keyring) -> R) -> Option<R> {
        self.with_synced_keyring(|_| None, f)
    }

    /// Prepares a keyring change against `current` (the applied keyring blob): the keyring
    /// opened from it, changed, and sealed under the root key.
    ///
    /// # Errors
    /// [`SealError::Sealed`], [`SealError::TermsExhausted`], or [`SealError::CorruptSeal`]
    /// if `current` does not open or sealing fails.
    pub fn prepare_keyring_change(
        &self,
        current: &[u8],
        change: KeyringChange,
    ) -> Result<PreparedKeyring, SealError> {
        let inner = self.lock();
        let Inner::Unsealed { root_key, .. } = &*inner else {
            return Err(SealError::Sealed);
        };
        let mut keyring =
            root::open_keyring(root_key, current).map_err(|_| SealError::CorruptSeal)?;
        let mut rng = tessera_crypto::os_rng();
        let retired = match change {
            KeyringChange::Rotate => {
                keyring
                    .rotate(&mut rng)
                    .map_err(|_| SealError::TermsExhausted)?;
                Vec::new()
            }
            KeyringChange::RetireOld => keyring.retire_old(),
        };
        let sealed_keyring = root::reseal_keyring(root_key, &keyring, &mut rng)
            .map_err(|_| SealError::CorruptSeal)?;
        Ok(PreparedKeyring {
            active: keyring.active_term(),
            retired,
            sealed_keyring,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fresh seal material with its shares, for the seal and rekey tests.
    pub(super) fn setup(shares: u8, threshold: u8) -> (Vec<UnsealShare>, SealConfig) {
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
    fn a_replaced_keyring_blob_is_opened_with_the_root_key() {
        let (shares, config) = setup(3, 2);
        let m = SealManager::new();
        for share in &shares[..2] {
            m.submit(share.clone(), &config).unwrap();
        }
        let rotated = m
            .prepare_keyring_change(&config.sealed_keyring, KeyringChange::Rotate)
            .unwrap();
        assert_eq!((rotated.active, rotated.retired.len()), (2, 0));
        // Preparing changes nothing in memory.
        assert_eq!(m.with_keyring(|k| k.active_term()), Some(1));
        assert_eq!(
            m.with_synced_keyring(
                |_| Some(rotated.sealed_keyring.clone()),
                |k| k.active_term()
            ),
            Some(2)
        );
        let retired = m
            .prepare_keyring_change(&rotated.sealed_keyring, KeyringChange::RetireOld)
            .unwrap();
        assert_eq!((retired.active, retired.retired), (2, vec![1]));
        assert_eq!(
            m.with_synced_keyring(
                |_| Some(retired.sealed_keyring.clone()),
                |k| k.terms().collect()
            ),
            Some(vec![2])
        );
        // A blob that is not this cluster's keyring leaves the keyring as it was.
        let (_, foreign) = setup(3, 2);
        assert_eq!(
            m.with_synced_keyring(
                |_| Some(foreign.sealed_keyring.clone()),
                |k| k.terms().collect()
            ),
            Some(vec![2])
        );
        m.seal();
        assert_eq!(
            m.prepare_keyring_change(&config.sealed_keyring, KeyringChange::Rotate)
                .unwrap_err(),
            SealError::Sealed
        );
    }

    #[test]
    fn the_keyring_sync_compares_with_the_blob_in_memory() {
        let (shares, config) = setup(3, 2);
        let m = SealManager::new();
        for share in &shares[..2] {
            m.submit(share.clone(), &config).unwrap();
        }
        // The held blob and the active term, for a state that has not changed.
        let read_held = || {
            let mut seen = Vec::new();
            let term = m.with_synced_keyring(
                |held| {
                    seen = held.to_vec();
                    None
                },
                |k| k.active_term(),
            );
            (term, seen)
        };
        // The blob held is the one the node unsealed with; an unchanged state copies nothing.
        assert_eq!(read_held(), (Some(1), config.sealed_keyring.clone()));
        let rotated = m
            .prepare_keyring_change(&config.sealed_keyring, KeyringChange::Rotate)
            .unwrap();
        assert_eq!(
            m.with_synced_keyring(
                |_| Some(rotated.sealed_keyring.clone()),
                |k| k.active_term()
            ),
            Some(2)
        );
        // After the switch the blob held is the rotated one, so the next call sees no change.
        assert_eq!(read_held(), (Some(2), rotated.sealed_keyring.clone()));
        m.seal();
        assert_eq!(
            m.with_synced_keyring(|_| panic!("not asked while sealed"), |k| k.active_term()),
            None
        );
    }

    #[test]
    fn the_root_key_stays_in_memory_redacted_after_unseal() {
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
            format!(
                "SealManager {{ state: Unsealed {{ keyring: Keyring {{ active: 1, terms: [1], .. }}, \
                 root_key: SecretKey256(REDACTED), sealed_keyring: {} bytes }} }}",
                config.sealed_keyring.len()
            )
        );
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
