//! Pure cryptography for Tessera, a distributed key management service.
//!
//! # What this crate is
//!
//! Every cryptographic decision Tessera makes lives here, as plain
//! functions over bytes:
//!
//! - [`secret`]: zeroizing, redacted containers for key material.
//! - [`barrier`]: AES-256-GCM sealing of every secret at rest, bound to its
//!   storage place by AAD; [`keyring`] holds the barrier keys by term.
//! - [`shamir`]: splitting the unseal key among operators; [`root`]: the
//!   hierarchy shares → unseal key → root key → keyring.
//! - [`ciphertext`] and [`context`]: the customer ciphertext format with
//!   per-message HKDF keys and an encryption context bound as AAD;
//!   [`kdf`] for HKDF; [`key_version`] for the number that names a key version.
//! - [`spec`]: key specs (AES, HMAC, Ed25519, ECDSA P-256/P-384), their
//!   usages and the shape of their key material, generated or imported.
//! - [`sign`]: signatures with customer keys (Ed25519, deterministic
//!   ECDSA with DER signatures) and their public keys as
//!   SubjectPublicKeyInfo; [`mac`]: HMAC-SHA-256/512 tags.
//! - [`wrap`]: X25519 ECIES key wrapping, for exporting key material and
//!   for BYOK imports; [`keypair`]: data key pairs in PKCS#8 and SPKI.
//! - [`echo`]: the one length limit on caller input repeated in error
//!   messages, used by every Tessera crate.
//!
//! # What it is not
//!
//! No I/O, no async, no clock, no logging, no global state. Functions that
//! need randomness take `rng: &mut impl CryptoRng` so tests are
//! deterministic; production callers pass [`os_rng`]. Persistence,
//! replication and access control belong to other crates.
//!
//! # Invariants
//!
//! - Secret bytes only live in types that wipe themselves on drop
//!   ([`SecretKey256`], [`SecretBytes`], [`UnsealShare`], [`Keyring`]) and
//!   whose `Debug` output never shows them.
//! - Secrets are compared in constant time (`subtle`); GCM tags are checked
//!   by `aes-gcm` in constant time.
//! - Authentication failures are opaque ([`Error::Unseal`],
//!   [`Error::Decrypt`]): they never say which check failed. A signature
//!   or MAC that does not verify is `Ok(false)`, not an error.
//! - Signing is deterministic (RFC 6979 ECDSA, RFC 8032 Ed25519), so no
//!   signature depends on the quality of an RNG.
//! - Every binary format starts with a version byte and is parsed strictly:
//!   truncation, trailing bytes and unknown versions are errors, never
//!   panics.

/// The methods and conversions of a newtype over an unsigned integer whose every encoding is
/// the bare number (`#[serde(transparent)]` on the struct, which the caller declares with its
/// derives): `new` and `get` for the edges that carry a plain integer (protobuf fields,
/// headers, process arguments), `From` both ways, `Display` as the number (`$shown` says where
/// it has always been shown that way) and `FromStr` as the integer parses, for command lines.
/// One definition keeps [`KeyVersion`] and the node id type alike.
#[macro_export]
macro_rules! number_newtype {
    ($name:ident($int:ty), $shown:literal) => {
        impl $name {
            #[doc = concat!("The ", stringify!($name), " numbered `number`.")]
            pub const fn new(number: $int) -> Self {
                Self(number)
            }

            /// The number, for encodings that carry a plain integer.
            pub const fn get(self) -> $int {
                self.0
            }
        }

        impl From<$int> for $name {
            fn from(number: $int) -> Self {
                Self(number)
            }
        }

        impl From<$name> for $int {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        #[doc = concat!("Just the number, as ", $shown, " have always shown it.")]
        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&self.0, f)
            }
        }

        #[doc = concat!("The bare number, as a `", stringify!($int), "` parses.")]
        impl core::str::FromStr for $name {
            type Err = core::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }
    };
}

/// The API names of an enum with a `name()` (the names the API, the CLI and error messages
/// use): `Display` writes the name; given the type's list of every value and the [`Error`]
/// variant for an unknown name, also the one way to parse a name back.
macro_rules! api_names {
    ($ty:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
    ($ty:ident, parsed from $all:expr, else $unknown:ident) => {
        api_names!($ty);

        impl $ty {
            /// Parses an API name (exact, case-sensitive); an unknown name gives the error
            /// for it, echoing the name cut by [`crate::truncate_for_message`].
            pub fn parse(name: &str) -> Result<Self, crate::Error> {
                $all.iter()
                    .copied()
                    .find(|value| value.name() == name)
                    .ok_or_else(|| crate::Error::$unknown {
                        name: crate::truncate_for_message(name),
                    })
            }
        }
    };
}

pub mod audit;
pub mod barrier;
pub mod ciphertext;
pub mod cluster_id;
pub mod context;
pub mod echo;
mod error;
mod gcm;
pub mod kdf;
pub mod key_version;
pub mod keypair;
pub mod keyring;
pub mod mac;
mod pem;
pub mod root;
pub mod secret;
pub mod shamir;
pub mod sign;
pub mod spec;
#[cfg(test)]
mod test_util;
pub mod wrap;
#[cfg(test)]
mod wycheproof;

pub use audit::AuditKey;
pub use ciphertext::CiphertextHeader;
pub use context::EncryptionContext;
pub use echo::truncate_for_message;
pub use error::Error;
pub use key_version::KeyVersion;
pub use keyring::Keyring;
pub use mac::MacAlgorithm;
pub use root::{Rekeyed, SealMaterial, Unsealed};
pub use secret::{SecretBytes, SecretKey256};
pub use shamir::UnsealShare;
pub use sign::{MessageType, SigningAlgorithm};
pub use spec::{KeySpec, KeyUsage};

/// Re-exported so callers name the same `CryptoRng` trait this crate's
/// functions take, whatever `rand_core` they depend on themselves.
pub use rand_core;

use rand_core::CryptoRng;

/// The operating system's CSPRNG (`getrandom`), for production callers.
///
/// Stateless and cheap to create. If the OS cannot provide randomness,
/// drawing from it panics (inside `rand_core::UnwrapErr`): there is no
/// safe way to continue making keys without entropy.
pub fn os_rng() -> impl CryptoRng {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_rng_produces_distinct_keys() {
        let mut rng = os_rng();
        let a = SecretKey256::generate(&mut rng);
        let b = SecretKey256::generate(&mut rng);
        assert_ne!(a, b);
    }

    #[test]
    fn rng_parameters_accept_trait_objects() {
        let mut rng = os_rng();
        let dyn_rng: &mut dyn CryptoRng = &mut rng;
        let key = SecretKey256::generate(dyn_rng);
        assert_ne!(key.as_bytes(), &[0; 32]);
        assert!(shamir::split(&key, 2, 3, dyn_rng).is_ok());
    }

    #[test]
    fn new_rng_parameters_accept_trait_objects() {
        let mut rng = os_rng();
        let dyn_rng: &mut dyn CryptoRng = &mut rng;
        for &spec in KeySpec::ALL {
            let material = spec.generate_material(dyn_rng);
            assert_eq!(spec.validate_material(material.as_slice()), Ok(()));
        }
        let (secret, public) = wrap::generate_wrapping_key(dyn_rng);
        let blob = wrap::wrap(&public, b"aad", b"material", dyn_rng).unwrap();
        assert_eq!(
            wrap::unwrap(&secret, b"aad", &blob).unwrap().as_slice(),
            b"material"
        );
        assert!(keypair::generate_key_pair(KeySpec::EcdsaP256, dyn_rng).is_ok());
    }
}
