//! The key hierarchy and its seal/unseal ceremony.
//!
//! ```text
//! Shamir shares ──combine──▶ unseal key U (never stored)
//!   U seals ──▶ root key R      (stored: barrier blob, term 0, ROOT_KEY_AAD)
//!   R seals ──▶ keyring bytes   (stored: barrier blob, term 0, KEYRING_AAD)
//!   keyring terms seal ──▶ every other secret
//! ```
//!
//! U only exists in memory while unsealing or rekeying. Because R sits between U
//! and the keyring, the keyring can be rotated without new shares
//! ([`reseal_keyring`]), and U can be replaced ([`rekey`]) without touching data.

use core::fmt;

use rand_core::CryptoRng;

use crate::{barrier, shamir, Error, Keyring, SecretKey256, UnsealShare};

/// AAD of the root key blob, sealed under the unseal key.
pub const ROOT_KEY_AAD: &[u8] = b"tessera/core/root-key";

/// AAD of the keyring blob, sealed under the root key.
pub const KEYRING_AAD: &[u8] = b"tessera/core/keyring";

/// Term written into the root key and keyring blobs: they are sealed
/// directly under U and R, not under a keyring term.
const DIRECT_TERM: u32 = 0;

/// Everything [`initialize`] produces: shares to hand to operators (once)
/// and the two blobs to persist.
pub struct SealMaterial {
    /// One share per operator. Show once, never store.
    pub shares: Vec<UnsealShare>,
    /// How many shares [`unseal`] needs.
    pub threshold: u8,
    /// Root key sealed under the unseal key.
    pub sealed_root_key: Vec<u8>,
    /// Keyring sealed under the root key.
    pub sealed_keyring: Vec<u8>,
}

impl fmt::Debug for SealMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealMaterial")
            .field("shares", &format_args!("{} REDACTED", self.shares.len()))
            .field("threshold", &self.threshold)
            .field(
                "sealed_root_key",
                &format_args!("{} bytes", self.sealed_root_key.len()),
            )
            .field(
                "sealed_keyring",
                &format_args!("{} bytes", self.sealed_keyring.len()),
            )
            .finish()
    }
}

/// What [`unseal`] recovers.
#[derive(Debug)]
pub struct Unsealed {
    /// Root key: seals the keyring. Only [`reseal_keyring`] needs it again (after a keyring
    /// rotation); a caller that does not rotate should drop it at once.
    pub root_key: SecretKey256,
    /// Barrier keys: seal everything else.
    pub keyring: Keyring,
}

/// Creates a new cluster's key hierarchy: random unseal key U split into
/// `shares` shares with `threshold`, random root key R sealed under U,
/// fresh keyring (term 1) sealed under R.
///
/// Parameters follow [`shamir::split`] (threshold 1 allowed), otherwise
/// [`Error::InvalidShamirParameters`].
pub fn initialize(
    shares: u8,
    threshold: u8,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<SealMaterial, Error> {
    let unseal_key = SecretKey256::generate(rng);
    let split = shamir::split(&unseal_key, threshold, shares, rng)?;
    let root_key = SecretKey256::generate(rng);
    let sealed_root_key = barrier::seal(
        &unseal_key,
        DIRECT_TERM,
        ROOT_KEY_AAD,
        root_key.as_bytes(),
        rng,
    )?;
    let keyring = Keyring::generate(rng);
    let sealed_keyring = reseal_keyring(&root_key, &keyring, rng)?;
    Ok(SealMaterial {
        shares: split,
        threshold,
        sealed_root_key,
        sealed_keyring,
    })
}

/// Recovers the root key and keyring from operator shares and the two
/// stored blobs.
///
/// Errors: [`Error::InvalidShare`] for an empty share set or duplicate
/// identifiers; [`Error::WrongUnsealKey`] if the shares do not combine to
/// the key that sealed the root key (too few shares, shares of another
/// cluster); structural errors of the blobs as [`barrier::open`] reports
/// them; [`Error::Unseal`] if the keyring blob does not open under the
/// recovered root key (corrupt storage).
pub fn unseal(
    shares: &[UnsealShare],
    sealed_root_key: &[u8],
    sealed_keyring: &[u8],
) -> Result<Unsealed, Error> {
    let root_key = open_root_key(shares, sealed_root_key)?;
    let keyring = open_keyring(&root_key, sealed_keyring)?;
    Ok(Unsealed { root_key, keyring })
}

/// Recovers the root key from operator shares: the first half of [`unseal`], and what a
/// rekey checks the old shares with.
///
/// Errors as [`unseal`] for the shares and the root key blob.
pub fn open_root_key(
    shares: &[UnsealShare],
    sealed_root_key: &[u8],
) -> Result<SecretKey256, Error> {
    let unseal_key = shamir::combine(shares)?;
    let root_bytes =
        barrier::open(&unseal_key, ROOT_KEY_AAD, sealed_root_key).map_err(|error| match error {
            Error::Unseal => Error::WrongUnsealKey,
            other => other,
        })?;
    SecretKey256::try_from_slice(root_bytes.as_slice())
        .map_err(|_| Error::Malformed { what: "root key" })
}

/// Opens a keyring blob sealed under the root key (at unseal, and when a barrier rotation
/// replaces the stored keyring blob).
///
/// Errors: [`Error::Unseal`] if the blob was not sealed under `root`, and decoding errors
/// of [`Keyring::from_bytes`].
pub fn open_keyring(root: &SecretKey256, sealed_keyring: &[u8]) -> Result<Keyring, Error> {
    let keyring_bytes = barrier::open(root, KEYRING_AAD, sealed_keyring)?;
    Keyring::from_bytes(keyring_bytes.as_slice())
}

/// What [`rekey`] produces: the new shares (show once) and the root key sealed under the new
/// unseal key.
pub struct Rekeyed {
    /// One share per operator of the new split. Show once, never store.
    pub shares: Vec<UnsealShare>,
    /// The unchanged root key, sealed under the new unseal key.
    pub sealed_root_key: Vec<u8>,
}

impl fmt::Debug for Rekeyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rekeyed")
            .field("shares", &format_args!("{} REDACTED", self.shares.len()))
            .field(
                "sealed_root_key",
                &format_args!("{} bytes", self.sealed_root_key.len()),
            )
            .finish()
    }
}

/// Replaces the unseal key: a fresh random unseal key split into `shares` shares with
/// `threshold`, and `root` sealed under it. The root key, keyring and data do not change;
/// once the new sealed root key is stored, the old shares no longer open it.
///
/// Parameters follow [`shamir::split`], otherwise [`Error::InvalidShamirParameters`].
pub fn rekey(
    root: &SecretKey256,
    shares: u8,
    threshold: u8,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Rekeyed, Error> {
    let unseal_key = SecretKey256::generate(rng);
    let split = shamir::split(&unseal_key, threshold, shares, rng)?;
    let sealed_root_key =
        barrier::seal(&unseal_key, DIRECT_TERM, ROOT_KEY_AAD, root.as_bytes(), rng)?;
    Ok(Rekeyed {
        shares: split,
        sealed_root_key,
    })
}

/// Seals `keyring` under the root key for storage, after a rotation or at
/// initialization.
pub fn reseal_keyring(
    root: &SecretKey256,
    keyring: &Keyring,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Vec<u8>, Error> {
    barrier::seal(
        root,
        DIRECT_TERM,
        KEYRING_AAD,
        keyring.to_bytes().as_slice(),
        rng,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng(seed: u8) -> ChaCha20Rng {
        ChaCha20Rng::from_seed([seed; 32])
    }

    /// Unseals `material`'s own blobs with `shares`.
    fn unseal_with(shares: &[UnsealShare], material: &SealMaterial) -> Result<Unsealed, Error> {
        unseal(shares, &material.sealed_root_key, &material.sealed_keyring)
    }

    #[test]
    fn any_three_of_five_unseal() {
        let mut rng = rng(1);
        let material = initialize(5, 3, &mut rng).unwrap();
        assert_eq!(material.shares.len(), 5);
        assert_eq!(material.threshold, 3);
        let reference = unseal_with(&material.shares[..3], &material).unwrap();
        assert_eq!(reference.keyring.active_term(), 1);
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let chosen = [
                        material.shares[c].clone(),
                        material.shares[a].clone(),
                        material.shares[b].clone(),
                    ];
                    let unsealed = unseal_with(&chosen, &material).unwrap();
                    assert_eq!(unsealed.root_key, reference.root_key);
                    assert_eq!(unsealed.keyring, reference.keyring);
                }
            }
        }
    }

    #[test]
    fn two_of_five_is_the_wrong_unseal_key() {
        let material = initialize(5, 3, &mut rng(2)).unwrap();
        for a in 0..5 {
            for b in a + 1..5 {
                let chosen = [material.shares[a].clone(), material.shares[b].clone()];
                assert_eq!(
                    unseal_with(&chosen, &material).unwrap_err(),
                    Error::WrongUnsealKey
                );
            }
        }
    }

    #[test]
    fn shares_of_another_cluster_are_the_wrong_unseal_key() {
        let ours = initialize(5, 3, &mut rng(3)).unwrap();
        let theirs = initialize(5, 3, &mut rng(4)).unwrap();
        // Mixing clusters does not work either.
        let mixed = [
            ours.shares[0].clone(),
            ours.shares[1].clone(),
            theirs.shares[2].clone(),
        ];
        for shares in [&theirs.shares[..3], &mixed[..]] {
            assert_eq!(
                unseal_with(shares, &ours).unwrap_err(),
                Error::WrongUnsealKey
            );
        }
    }

    #[test]
    fn blobs_are_not_interchangeable() {
        let ours = initialize(3, 2, &mut rng(5)).unwrap();
        let theirs = initialize(3, 2, &mut rng(6)).unwrap();
        for (sealed_root_key, sealed_keyring, expected) in [
            // Right shares and root key, another cluster's keyring.
            (&ours.sealed_root_key, &theirs.sealed_keyring, Error::Unseal),
            // The keyring blob is not accepted as a root key blob.
            (
                &ours.sealed_keyring,
                &ours.sealed_keyring,
                Error::WrongUnsealKey,
            ),
        ] {
            assert_eq!(
                unseal(&ours.shares[..2], sealed_root_key, sealed_keyring).unwrap_err(),
                expected
            );
        }
    }

    #[test]
    fn threshold_one_unseals_with_any_single_share() {
        let material = initialize(3, 1, &mut rng(7)).unwrap();
        for share in &material.shares {
            assert!(unseal_with(core::slice::from_ref(share), &material).is_ok());
        }
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        assert_eq!(
            initialize(2, 3, &mut rng(8)).unwrap_err(),
            Error::InvalidShamirParameters {
                threshold: 3,
                shares: 2
            }
        );
        assert_eq!(
            initialize(0, 0, &mut rng(8)).unwrap_err(),
            Error::InvalidShamirParameters {
                threshold: 0,
                shares: 0
            }
        );
    }

    #[test]
    fn rotated_keyring_reseals() {
        let mut rng = rng(9);
        let material = initialize(3, 2, &mut rng).unwrap();
        let mut unsealed = unseal_with(&material.shares[1..], &material).unwrap();
        let old_blob = unsealed.keyring.seal(b"data", b"old", &mut rng).unwrap();
        unsealed.keyring.rotate(&mut rng).unwrap();
        let resealed = reseal_keyring(&unsealed.root_key, &unsealed.keyring, &mut rng).unwrap();

        let again = unseal(&material.shares[..2], &material.sealed_root_key, &resealed).unwrap();
        assert_eq!(again.keyring.active_term(), 2);
        assert_eq!(
            again.keyring.open(b"data", &old_blob).unwrap().as_slice(),
            b"old"
        );
    }

    #[test]
    fn rekey_replaces_the_shares_and_keeps_the_root_key() {
        let mut rng = rng(11);
        let material = initialize(5, 3, &mut rng).unwrap();
        let root = open_root_key(&material.shares[..3], &material.sealed_root_key).unwrap();
        let rekeyed = rekey(&root, 3, 2, &mut rng).unwrap();
        assert_eq!(rekeyed.shares.len(), 3);
        let again = unseal(
            &rekeyed.shares[1..],
            &rekeyed.sealed_root_key,
            &material.sealed_keyring,
        )
        .unwrap();
        assert_eq!(again.root_key, root);
        // The old shares do not open the new sealed root key.
        assert_eq!(
            unseal(
                &material.shares[..3],
                &rekeyed.sealed_root_key,
                &material.sealed_keyring
            )
            .unwrap_err(),
            Error::WrongUnsealKey
        );
        assert!(format!("{rekeyed:?}").contains("3 REDACTED"));
        assert_eq!(
            rekey(&root, 2, 3, &mut rng).unwrap_err(),
            Error::InvalidShamirParameters {
                threshold: 3,
                shares: 2
            }
        );
    }

    #[test]
    fn debug_is_redacted() {
        let material = initialize(3, 2, &mut rng(10)).unwrap();
        let shown = format!("{material:?}");
        assert!(shown.contains("3 REDACTED"), "{shown}");
        for share in &material.shares {
            assert!(!shown.contains(share.encode().as_str()));
        }
        let unsealed = unseal_with(&material.shares[..2], &material).unwrap();
        let shown = format!("{unsealed:?}");
        assert!(shown.contains("SecretKey256(REDACTED)"), "{shown}");
        assert!(!shown.contains(&hex::encode(unsealed.root_key.as_bytes())));
    }
}
