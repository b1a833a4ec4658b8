//! The unseal shares collected towards one unseal attempt.
//!
//! A `Vec` that grows moves its elements to a new allocation and frees the old one without
//! running their destructors, so the share bytes would stay behind in freed heap memory,
//! unwiped. This buffer is allocated once with room for the threshold and never grows by
//! reallocation: every share in it is an [`UnsealShare`], which wipes itself when dropped.

use std::fmt;

use subtle::ConstantTimeEq;
use tessera_crypto::UnsealShare;

use super::SealError;

/// Shares submitted so far, in a buffer that is never reallocated with shares in it.
#[derive(Default)]
pub struct PendingShares {
    shares: Vec<UnsealShare>,
}

impl PendingShares {
    /// An empty buffer; nothing is allocated until the first share arrives.
    pub const fn new() -> Self {
        Self { shares: Vec::new() }
    }

    /// Adds `share` towards an attempt that needs `threshold` shares.
    ///
    /// The first share allocates room for `threshold` shares, so the pushes up to the
    /// threshold never reallocate. Should a larger threshold ever be asked for with shares
    /// held, they are cloned into a larger buffer and the old one is dropped, which wipes
    /// every share in it.
    pub fn push(&mut self, share: UnsealShare, threshold: usize) {
        let needed = threshold.max(self.shares.len().saturating_add(1));
        if self.shares.capacity() < needed {
            let mut larger = Vec::with_capacity(needed);
            larger.extend(self.shares.iter().cloned());
            self.shares = larger;
        }
        self.shares.push(share);
    }

    /// Adds `share` towards an attempt that needs `threshold` shares, unless it repeats a
    /// share held (compared in constant time) or another share's identifier.
    ///
    /// # Errors
    /// [`SealError::DuplicateShare`] or [`SealError::ConflictingShare`]; nothing is added.
    pub fn admit(&mut self, share: UnsealShare, threshold: u8) -> Result<(), SealError> {
        let progress = self.count();
        let threshold_u32 = u32::from(threshold);
        for held in &self.shares {
            if bool::from(held.ct_eq(&share)) {
                return Err(SealError::DuplicateShare {
                    progress,
                    threshold: threshold_u32,
                });
            }
            if held.identifier() == share.identifier() {
                return Err(SealError::ConflictingShare {
                    identifier: share.identifier(),
                    progress,
                    threshold: threshold_u32,
                });
            }
        }
        self.push(share, usize::from(threshold));
        Ok(())
    }

    /// The shares, in submission order.
    pub fn as_slice(&self) -> &[UnsealShare] {
        &self.shares
    }

    /// How many shares are held.
    pub fn count(&self) -> u32 {
        u32::try_from(self.shares.len()).unwrap_or(u32::MAX)
    }

    /// Drops (and so wipes) every share; the buffer is kept for the next attempt.
    pub fn clear(&mut self) {
        self.shares.clear();
    }
}

/// Counts only: share values never appear.
impl fmt::Debug for PendingShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingShares")
            .field("count", &self.shares.len())
            .field("capacity", &self.shares.capacity())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(n: u8, threshold: u8) -> Vec<UnsealShare> {
        tessera_crypto::root::initialize(n, threshold, &mut tessera_crypto::os_rng())
            .unwrap()
            .shares
    }

    #[test]
    fn pushes_up_to_the_threshold_never_reallocate() {
        for threshold in [2u8, 3, 5, 9, 17] {
            let mut pending = PendingShares::new();
            let mut buffer = None;
            for share in shares(threshold, threshold) {
                pending.push(share, usize::from(threshold));
                assert_eq!(pending.shares.capacity(), usize::from(threshold));
                let address = pending.as_slice().as_ptr();
                assert_eq!(*buffer.get_or_insert(address), address, "moved");
            }
            assert_eq!(pending.count(), u32::from(threshold));
        }
    }

    #[test]
    fn clearing_keeps_the_buffer_for_the_next_attempt() {
        let mut pending = PendingShares::new();
        let all = shares(3, 3);
        pending.push(all[0].clone(), 3);
        let address = pending.as_slice().as_ptr();
        pending.clear();
        assert_eq!(pending.count(), 0);
        for share in all {
            pending.push(share, 3);
        }
        assert_eq!(pending.as_slice().as_ptr(), address);
        assert_eq!(pending.shares.capacity(), 3);
    }

    #[test]
    fn a_larger_threshold_keeps_the_shares_in_order() {
        let all = shares(4, 4);
        let mut pending = PendingShares::new();
        pending.push(all[0].clone(), 2);
        pending.push(all[1].clone(), 2);
        pending.push(all[2].clone(), 4);
        assert_eq!(pending.as_slice(), &all[..3]);
        assert_eq!(pending.shares.capacity(), 4);
    }

    #[test]
    fn debug_shows_counts_only() {
        let mut pending = PendingShares::new();
        pending.push(shares(2, 2)[0].clone(), 2);
        assert_eq!(
            format!("{pending:?}"),
            "PendingShares { count: 1, capacity: 2 }"
        );
    }
}
