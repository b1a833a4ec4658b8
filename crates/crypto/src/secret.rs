//! Containers for secret bytes: wiped on drop, never printed.

use core::fmt;

use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;

/// Implements `PartialEq` and `Eq` for a secret through its [`ConstantTimeEq`], so comparing
/// two secrets takes the same time wherever they differ.
macro_rules! eq_in_constant_time {
    ($secret:ty) => {
        /// Constant-time in the contents, via [`ConstantTimeEq`](subtle::ConstantTimeEq).
        impl PartialEq for $secret {
            fn eq(&self, other: &Self) -> bool {
                subtle::ConstantTimeEq::ct_eq(self, other).into()
            }
        }

        impl Eq for $secret {}
    };
}
pub(crate) use eq_in_constant_time;

/// Length in bytes of every symmetric key in Tessera.
pub const KEY_LEN: usize = 32;

/// A 256-bit symmetric key (AES-256 key, HKDF input, unseal or root key).
///
/// The bytes are wiped when the value is dropped, `Debug` prints
/// `SecretKey256(REDACTED)`, and equality is constant-time so comparing
/// keys does not leak how many leading bytes matched.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey256([u8; KEY_LEN]);

impl SecretKey256 {
    /// Wraps existing key bytes.
    ///
    /// The caller's array is copied; wipe the original if it was secret.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Copies a key out of a slice, for keys decoded from storage.
    ///
    /// Fails with [`Error::InvalidLength`] unless the slice is exactly 32
    /// bytes, so a truncated record cannot silently become a weak key.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let mut key = Self::zero();
        match bytes.first_chunk::<KEY_LEN>() {
            Some(chunk) if bytes.len() == KEY_LEN => {
                key.0.copy_from_slice(chunk);
                Ok(key)
            }
            _ => Err(Error::InvalidLength {
                expected: KEY_LEN,
                actual: bytes.len(),
            }),
        }
    }

    /// Draws a fresh uniformly random key from `rng`.
    ///
    /// The bytes are written straight into the returned value, so no
    /// unwiped copy is left behind.
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut key = Self::zero();
        rng.fill_bytes(&mut key.0);
        key
    }

    /// An all-zero key, only as a buffer to be filled in place.
    pub(crate) fn zero() -> Self {
        Self([0; KEY_LEN])
    }

    /// Mutable access for filling a key in place (KDF output).
    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }

    /// Borrows the raw key bytes, for handing to a cipher or KDF.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl ConstantTimeEq for SecretKey256 {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

eq_in_constant_time!(SecretKey256);

impl fmt::Debug for SecretKey256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey256(REDACTED)")
    }
}

/// Variable-length secret bytes, such as an opened barrier blob or a
/// decrypted customer plaintext.
///
/// Wiped on drop, `Debug` shows only the length, equality is constant-time
/// in the contents (lengths are not secret).
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of bytes that are secret from now on.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Borrows the secret bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Number of secret bytes (the length is not considered secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands the bytes over as a [`Zeroizing`] vector without copying, for
    /// callers that need an owned `Vec` (for example to put in a response)
    /// but still want it wiped when dropped.
    pub fn into_zeroizing(mut self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(core::mem::take(&mut self.0))
    }
}

impl ConstantTimeEq for SecretBytes {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

eq_in_constant_time!(SecretBytes);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes, REDACTED)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Every rendering of `bytes` a careless `Debug` could produce.
    fn renderings(bytes: &[u8]) -> Vec<String> {
        vec![
            hex::encode(bytes),
            hex::encode_upper(bytes),
            format!("{bytes:?}"),
            format!("{bytes:x?}"),
            format!("{bytes:X?}"),
            bytes
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ]
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let key = SecretKey256::generate(&mut rng);
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains("REDACTED"));
        for rendering in renderings(key.as_bytes()) {
            assert!(!shown.contains(&rendering), "leaked {rendering}");
        }
        // A window of a few bytes must not appear either.
        let window = key.as_bytes().get(..4).unwrap();
        for rendering in renderings(window) {
            assert!(!shown.contains(&rendering), "leaked {rendering}");
        }
    }

    #[test]
    fn debug_never_shows_secret_bytes() {
        let bytes: Vec<u8> = (200..=231).collect();
        let secret = SecretBytes::new(bytes.clone());
        let shown = format!("{secret:?} {secret:#?}");
        assert!(shown.contains("REDACTED"));
        for rendering in renderings(&bytes) {
            assert!(!shown.contains(&rendering), "leaked {rendering}");
        }
        assert!(!shown.contains("200"));
        assert!(!shown.contains("c8"));
    }

    #[test]
    fn try_from_slice_checks_length() {
        assert_eq!(
            SecretKey256::try_from_slice(&[1; 31]),
            Err(Error::InvalidLength {
                expected: 32,
                actual: 31
            })
        );
        assert_eq!(
            SecretKey256::try_from_slice(&[1; 33]),
            Err(Error::InvalidLength {
                expected: 32,
                actual: 33
            })
        );
        let key = SecretKey256::try_from_slice(&[7; 32]).unwrap();
        assert_eq!(key.as_bytes(), &[7; 32]);
        assert_eq!(key, SecretKey256::from_bytes([7; 32]));
    }

    #[test]
    fn equality_is_by_content() {
        let a = SecretKey256::from_bytes([1; 32]);
        let mut other = [1; 32];
        other[31] = 2;
        let b = SecretKey256::from_bytes(other);
        assert!(bool::from(a.ct_eq(&a.clone())));
        assert!(!bool::from(a.ct_eq(&b)));
        assert_ne!(a, b);
        assert_eq!(SecretBytes::new(vec![1, 2]), SecretBytes::new(vec![1, 2]));
        assert_ne!(SecretBytes::new(vec![1, 2]), SecretBytes::new(vec![1, 3]));
        assert_ne!(SecretBytes::new(vec![1]), SecretBytes::new(vec![1, 2]));
    }

    #[test]
    fn generate_uses_the_rng() {
        let a = SecretKey256::generate(&mut ChaCha20Rng::from_seed([1; 32]));
        let b = SecretKey256::generate(&mut ChaCha20Rng::from_seed([1; 32]));
        let c = SecretKey256::generate(&mut ChaCha20Rng::from_seed([2; 32]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a.as_bytes(), &[0; 32]);
    }

    #[test]
    fn secret_bytes_accessors() {
        let secret = SecretBytes::new(vec![4, 5, 6]);
        assert_eq!(secret.len(), 3);
        assert!(!secret.is_empty());
        assert_eq!(secret.as_slice(), &[4, 5, 6]);
        assert_eq!(*secret.into_zeroizing(), vec![4, 5, 6]);
        assert!(SecretBytes::default().is_empty());
    }
}
