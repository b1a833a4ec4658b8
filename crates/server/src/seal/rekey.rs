//! A rekey in progress on this node: the new Shamir parameters and the old shares collected
//! towards it.
//!
//! A rekey replaces the unseal key, so it is authorised like an unseal: by a threshold of the
//! current shares, submitted one at a time to the node that started the attempt. The shares
//! sit in a [`PendingShares`] buffer (never reallocated, wiped when dropped) until the
//! attempt; then the root key they open is sealed under a fresh unseal key split with the new
//! parameters ([`tessera_crypto::root::rekey`]) and the attempt is over, whatever its outcome.
//! The attempt is tied to the sealed root key it started from: if another rekey replaced it
//! meanwhile, the attempt is cancelled.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};
use tessera_crypto::{root, Rekeyed, UnsealShare};
use tessera_state::SealConfig;

use super::{PendingShares, SealError};

/// Where a rekey attempt stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RekeyProgress {
    /// Identifies the attempt (random, hex); shares may name it so that they cannot count
    /// towards another attempt.
    pub nonce: String,
    /// New share count.
    pub shares: u8,
    /// New threshold.
    pub threshold: u8,
    /// Old shares submitted so far.
    pub progress: u32,
    /// Old shares needed (the current threshold).
    pub required: u32,
}

/// The outcome of a share submitted towards a rekey.
pub enum RekeyStep {
    /// More old shares are needed.
    Pending(RekeyProgress),
    /// The old shares opened the root key: it is sealed under a new unseal key, ready to be
    /// proposed compare-and-set on the sealed root key the attempt started from.
    Ready {
        /// The new shares and sealed root key.
        rekeyed: Rekeyed,
        /// SHA-256 of the sealed root key the new one replaces.
        previous_root_key_digest: [u8; 32],
        /// New share count.
        shares: u8,
        /// New threshold.
        threshold: u8,
    },
}

/// Counts only, never a share.
impl fmt::Debug for RekeyStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pending(progress) => f.debug_tuple("Pending").field(progress).finish(),
            Self::Ready { rekeyed, .. } => f.debug_tuple("Ready").field(rekeyed).finish(),
        }
    }
}

struct Attempt {
    nonce: String,
    shares: u8,
    threshold: u8,
    pending: PendingShares,
    root_key_digest: [u8; 32],
}

impl Attempt {
    fn progress(&self, config: &SealConfig) -> RekeyProgress {
        RekeyProgress {
            nonce: self.nonce.clone(),
            shares: self.shares,
            threshold: self.threshold,
            progress: self.pending.count(),
            required: u32::from(config.threshold),
        }
    }
}

/// This node's rekey attempt, if any.
#[derive(Default)]
pub struct RekeyManager {
    attempt: Mutex<Option<Attempt>>,
}

/// Shows whether an attempt is in progress and its counts, never a share.
impl fmt::Debug for RekeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attempt = self.lock();
        f.debug_struct("RekeyManager")
            .field("pending", &attempt.as_ref().map(|a| &a.pending))
            .finish()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl RekeyManager {
    fn lock(&self) -> MutexGuard<'_, Option<Attempt>> {
        self.attempt.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts an attempt towards `shares` shares with `threshold` (already validated).
    ///
    /// # Errors
    /// [`SealError::RekeyInProgress`] while another attempt is in progress.
    pub fn start(
        &self,
        shares: u8,
        threshold: u8,
        nonce: String,
        config: &SealConfig,
    ) -> Result<RekeyProgress, SealError> {
        let mut attempt = self.lock();
        if let Some(current) = attempt.as_ref() {
            return Err(SealError::RekeyInProgress {
                shares: current.shares,
                threshold: current.threshold,
                progress: current.pending.count(),
                required: u32::from(config.threshold),
            });
        }
        let started = Attempt {
            nonce,
            shares,
            threshold,
            pending: PendingShares::new(),
            root_key_digest: digest(&config.sealed_root_key),
        };
        let progress = started.progress(config);
        *attempt = Some(started);
        Ok(progress)
    }

    /// Cancels the attempt in progress (wiping its shares); `false` if there was none.
    pub fn cancel(&self) -> bool {
        self.lock().take().is_some()
    }

    /// The attempt in progress.
    pub fn progress(&self, config: &SealConfig) -> Option<RekeyProgress> {
        self.lock().as_ref().map(|a| a.progress(config))
    }

    /// Adds an old share; once the current threshold is reached, opens the root key with the
    /// shares and seals it under a new unseal key. The attempt ends then, whatever the
    /// outcome.
    ///
    /// # Errors
    /// [`SealError::NoRekey`], [`SealError::RekeyNonceMismatch`], the duplicate checks of
    /// [`PendingShares::admit`], [`SealError::StaleRekey`] if the sealed root key was replaced
    /// since the attempt started, [`SealError::WrongShares`] if the shares do not open it.
    pub fn submit(
        &self,
        nonce: &str,
        share: UnsealShare,
        config: &SealConfig,
    ) -> Result<RekeyStep, SealError> {
        let mut slot = self.lock();
        let attempt = slot.as_mut().ok_or(SealError::NoRekey)?;
        if !nonce.is_empty() && nonce != attempt.nonce {
            return Err(SealError::RekeyNonceMismatch {
                given: nonce.to_owned(),
                current: attempt.nonce.clone(),
            });
        }
        if attempt.root_key_digest != digest(&config.sealed_root_key) {
            *slot = None;
            return Err(SealError::StaleRekey);
        }
        attempt.pending.admit(share, config.threshold)?;
        if attempt.pending.count() < u32::from(config.threshold) {
            return Ok(RekeyStep::Pending(attempt.progress(config)));
        }
        let (shares, threshold) = (attempt.shares, attempt.threshold);
        let opened = root::open_root_key(attempt.pending.as_slice(), &config.sealed_root_key);
        // The attempt is over: its shares are wiped now.
        *slot = None;
        let root_key = opened.map_err(|e| match e {
            tessera_crypto::Error::WrongUnsealKey | tessera_crypto::Error::InvalidShare { .. } => {
                SealError::WrongShares {
                    threshold: u32::from(config.threshold),
                }
            }
            _ => SealError::CorruptSeal,
        })?;
        let rekeyed = root::rekey(&root_key, shares, threshold, &mut tessera_crypto::os_rng())
            .map_err(|_| SealError::CorruptSeal)?;
        Ok(RekeyStep::Ready {
            rekeyed,
            previous_root_key_digest: digest(&config.sealed_root_key),
            shares,
            threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::tests::setup;

    #[test]
    fn old_threshold_of_shares_rekeys_and_the_new_shares_unseal() {
        let (old, config) = setup(5, 3);
        let m = RekeyManager::default();
        assert!(matches!(
            m.submit("", old[0].clone(), &config),
            Err(SealError::NoRekey)
        ));
        let started = m.start(3, 2, "n1".into(), &config).unwrap();
        assert_eq!((started.progress, started.required), (0, 3));
        assert!(matches!(
            m.start(3, 2, "n2".into(), &config),
            Err(SealError::RekeyInProgress { progress: 0, .. })
        ));
        assert!(matches!(
            m.submit("other", old[0].clone(), &config),
            Err(SealError::RekeyNonceMismatch { .. })
        ));
        assert!(matches!(
            m.submit("n1", old[0].clone(), &config),
            Ok(RekeyStep::Pending(RekeyProgress { progress: 1, .. }))
        ));
        assert_eq!(
            m.submit("n1", old[0].clone(), &config).err(),
            Some(SealError::DuplicateShare {
                progress: 1,
                threshold: 3
            })
        );
        m.submit("", old[3].clone(), &config).unwrap();
        let Ok(RekeyStep::Ready {
            rekeyed,
            previous_root_key_digest,
            shares: 3,
            threshold: 2,
        }) = m.submit("n1", old[4].clone(), &config)
        else {
            panic!("expected a ready rekey");
        };
        assert_eq!(previous_root_key_digest, digest(&config.sealed_root_key));
        assert!(m.progress(&config).is_none(), "the attempt is over");
        let new = root::unseal(
            &rekeyed.shares[1..],
            &rekeyed.sealed_root_key,
            &config.sealed_keyring,
        )
        .unwrap();
        let before =
            root::unseal(&old[..3], &config.sealed_root_key, &config.sealed_keyring).unwrap();
        assert_eq!(new.root_key, before.root_key);
    }

    #[test]
    fn wrong_shares_end_the_attempt_and_a_replaced_root_key_cancels_it() {
        let (old, config) = setup(3, 2);
        let (foreign, _) = setup(3, 2);
        let m = RekeyManager::default();
        m.start(2, 2, "n".into(), &config).unwrap();
        m.submit("n", old[0].clone(), &config).unwrap();
        assert_eq!(
            m.submit("n", foreign[1].clone(), &config).err(),
            Some(SealError::WrongShares { threshold: 2 })
        );
        assert!(m.progress(&config).is_none());

        m.start(2, 2, "n".into(), &config).unwrap();
        let mut replaced = config.clone();
        replaced.sealed_root_key = vec![1; 60];
        assert_eq!(
            m.submit("n", old[0].clone(), &replaced).err(),
            Some(SealError::StaleRekey)
        );
        assert!(!m.cancel(), "the stale attempt was cancelled");
        m.start(2, 2, "n".into(), &config).unwrap();
        assert!(m.cancel());
        assert!(format!("{m:?}").contains("pending: None"));
    }
}
