//! The number of one version of a customer key.
//!
//! A version number travels in ciphertext headers, in the AAD that seals version material,
//! in the replicated state and in every API that names a version. A distinct type keeps it
//! from being confused with the other integers next to it (barrier terms, counts, node ids,
//! policy versions) while its encodings stay those of a plain `u32`: serde sees it as
//! transparent (postcard and JSON write exactly the inner number) and the ciphertext header
//! writes it big-endian in four bytes.

use serde::{Deserialize, Serialize};

/// A key version number. Versions count from [`KeyVersion::FIRST`]; each rotation or import
/// adds the [next](KeyVersion::next) one.
///
/// [`KeyVersion::NONE`] (0) is never a version: it stands where a number is stored even
/// though a key has no version yet (the primary of an imported key waiting for material).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct KeyVersion(u32);

impl KeyVersion {
    /// "No version": the primary and latest version of a key that has none yet.
    pub const NONE: Self = Self(0);

    /// A key's first version.
    pub const FIRST: Self = Self(1);

    /// The version after this one, or `None` once the numbers are exhausted.
    pub const fn next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(number) => Some(Self(number)),
            None => None,
        }
    }

    /// Whether this is [`KeyVersion::NONE`] rather than a version.
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The four big-endian bytes the ciphertext header and key derivations carry.
    pub const fn to_be_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// The version the four big-endian bytes of [`KeyVersion::to_be_bytes`] name.
    pub const fn from_be_bytes(bytes: [u8; 4]) -> Self {
        Self(u32::from_be_bytes(bytes))
    }
}

crate::number_newtype!(
    KeyVersion(u32),
    "the ciphertext header, every message and AAD"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_order_and_advance() {
        assert!(KeyVersion::NONE < KeyVersion::FIRST);
        assert!(KeyVersion::NONE.is_none() && !KeyVersion::FIRST.is_none());
        assert_eq!(KeyVersion::NONE.next(), Some(KeyVersion::FIRST));
        assert_eq!(KeyVersion::new(41).next(), Some(KeyVersion::new(42)));
        assert_eq!(KeyVersion::new(u32::MAX).next(), None);
        assert_eq!(KeyVersion::default(), KeyVersion::NONE);
        assert_eq!(u32::from(KeyVersion::from(7)), 7);
    }

    #[test]
    fn it_shows_and_encodes_as_the_bare_number() {
        let version = KeyVersion::new(258);
        assert_eq!(version.to_string(), "258");
        assert_eq!(format!("v{version}"), "v258");
        assert_eq!(version.to_be_bytes(), [0, 0, 1, 2]);
        assert_eq!(KeyVersion::from_be_bytes([0, 0, 1, 2]), version);
        assert_eq!("258".parse::<KeyVersion>(), Ok(version));
        assert!("v2".parse::<KeyVersion>().is_err());
        assert!("4294967296".parse::<KeyVersion>().is_err());
        assert_eq!(serde_json::to_string(&version).unwrap(), "258");
        assert_eq!(
            serde_json::from_str::<KeyVersion>("258").unwrap(),
            KeyVersion::new(258)
        );
        assert_eq!(
            serde_json::to_string(&[KeyVersion::FIRST]).unwrap(),
            serde_json::to_string(&[1u32]).unwrap()
        );
    }
}
