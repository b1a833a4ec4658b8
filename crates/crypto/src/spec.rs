//! Key specs: which algorithm a customer key uses and what it may do.
//!
//! A spec fixes the shape of a key version's material, which is what the
//! barrier seals and what BYOK imports must match:
//!
//! | spec          | usage                 | material                                   |
//! |---------------|-----------------------|--------------------------------------------|
//! | `AES256_GCM`  | `ENCRYPT_DECRYPT`     | 32 random bytes                            |
//! | `HMAC_SHA256` | `GENERATE_VERIFY_MAC` | 32 random bytes                            |
//! | `HMAC_SHA512` | `GENERATE_VERIFY_MAC` | 64 random bytes                            |
//! | `ED25519`     | `SIGN_VERIFY`         | the 32-byte RFC 8032 seed                  |
//! | `ECDSA_P256`  | `SIGN_VERIFY`         | the secret scalar, 32 bytes big-endian     |
//! | `ECDSA_P384`  | `SIGN_VERIFY`         | the secret scalar, 48 bytes big-endian     |
//!
//! Raw seeds and scalars (rather than PKCS#8 documents) keep the stored
//! form minimal and canonical; [`crate::keypair`] and [`crate::sign`]
//! produce the standard encodings from them when needed.
//!
//! RSA is deliberately absent: the only pure-Rust implementation, the
//! `rsa` crate, is affected by RUSTSEC-2023-0071 (the "Marvin" timing
//! side channel) and had no patched release when this was checked
//! (2026-09). RSA specs will be added once a constant-time implementation
//! is available.

use p256::elliptic_curve;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secret::KEY_LEN;
use crate::{Error, SecretBytes};

/// The algorithm of a customer key.
///
/// Not `#[non_exhaustive]` on purpose: the state machine matches on it
/// exhaustively, so adding a spec must be a compile error there. Serialized
/// under its API name (`"AES256_GCM"`). New variants are only ever
/// appended, so the derived order (and any encoding by index) of existing
/// specs never changes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySpec {
    /// 256-bit AES in GCM mode, used through [`crate::ciphertext`].
    #[serde(rename = "AES256_GCM")]
    Aes256Gcm,
    /// HMAC with SHA-256 and a 256-bit key, used through [`crate::mac`].
    #[serde(rename = "HMAC_SHA256")]
    HmacSha256,
    /// HMAC with SHA-512 and a 512-bit key, used through [`crate::mac`].
    #[serde(rename = "HMAC_SHA512")]
    HmacSha512,
    /// Ed25519 signatures (RFC 8032), used through [`crate::sign`].
    #[serde(rename = "ED25519")]
    Ed25519,
    /// ECDSA on NIST P-256 (secp256r1), used through [`crate::sign`].
    #[serde(rename = "ECDSA_P256")]
    EcdsaP256,
    /// ECDSA on NIST P-384 (secp384r1), used through [`crate::sign`].
    #[serde(rename = "ECDSA_P384")]
    EcdsaP384,
}

/// What a customer key may be used for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyUsage {
    /// Encrypt and decrypt (symmetric keys).
    #[serde(rename = "ENCRYPT_DECRYPT")]
    EncryptDecrypt,
    /// Generate and verify MACs (HMAC keys).
    #[serde(rename = "GENERATE_VERIFY_MAC")]
    GenerateVerifyMac,
    /// Sign and verify (asymmetric signing keys).
    #[serde(rename = "SIGN_VERIFY")]
    SignVerify,
}

/// Length of an Ed25519 seed (RFC 8032 secret key).
const ED25519_SEED_LEN: usize = 32;
/// Length of a P-256 scalar.
const P256_SCALAR_LEN: usize = 32;
/// Length of a P-384 scalar.
const P384_SCALAR_LEN: usize = 48;
/// Length of an HMAC-SHA-512 key: the hash's output size, as RFC 2104
/// recommends.
const HMAC_SHA512_KEY_LEN: usize = 64;

impl KeySpec {
    /// Every spec, in declaration order, for listings and exhaustive tests.
    pub const ALL: &'static [KeySpec] = &[
        Self::Aes256Gcm,
        Self::HmacSha256,
        Self::HmacSha512,
        Self::Ed25519,
        Self::EcdsaP256,
        Self::EcdsaP384,
    ];

    /// The name used in the API and CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Aes256Gcm => "AES256_GCM",
            Self::HmacSha256 => "HMAC_SHA256",
            Self::HmacSha512 => "HMAC_SHA512",
            Self::Ed25519 => "ED25519",
            Self::EcdsaP256 => "ECDSA_P256",
            Self::EcdsaP384 => "ECDSA_P384",
        }
    }

    /// The only usage keys of this spec support.
    pub fn usage(&self) -> KeyUsage {
        match self {
            Self::Aes256Gcm => KeyUsage::EncryptDecrypt,
            Self::HmacSha256 | Self::HmacSha512 => KeyUsage::GenerateVerifyMac,
            Self::Ed25519 | Self::EcdsaP256 | Self::EcdsaP384 => KeyUsage::SignVerify,
        }
    }

    /// Whether the key is a single secret (AES, HMAC) rather than a key
    /// pair, so callers know whether a public key can be exported.
    pub fn is_symmetric(&self) -> bool {
        match self {
            Self::Aes256Gcm | Self::HmacSha256 | Self::HmacSha512 => true,
            Self::Ed25519 | Self::EcdsaP256 | Self::EcdsaP384 => false,
        }
    }

    /// Exact length in bytes of this spec's key material (see the module
    /// table), so importers can say what they expect.
    pub fn material_len(&self) -> usize {
        match self {
            Self::Aes256Gcm | Self::HmacSha256 => KEY_LEN,
            Self::HmacSha512 => HMAC_SHA512_KEY_LEN,
            Self::Ed25519 => ED25519_SEED_LEN,
            Self::EcdsaP256 => P256_SCALAR_LEN,
            Self::EcdsaP384 => P384_SCALAR_LEN,
        }
    }

    /// Fresh random key material for a new key version of this spec.
    ///
    /// ECDSA scalars are drawn by the curve crate, which only returns
    /// values in `1..n`, so the result always passes
    /// [`validate_material`](Self::validate_material).
    pub fn generate_material(&self, rng: &mut (impl CryptoRng + ?Sized)) -> SecretBytes {
        match self {
            Self::Aes256Gcm | Self::HmacSha256 | Self::HmacSha512 | Self::Ed25519 => {
                let mut material = vec![0u8; self.material_len()];
                rng.fill_bytes(&mut material);
                SecretBytes::new(material)
            }
            Self::EcdsaP256 => ec_scalar::<p256::NistP256>(rng),
            Self::EcdsaP384 => ec_scalar::<p384::NistP384>(rng),
        }
    }

    /// Checks that `material` can be a key version of this spec, for BYOK
    /// imports: exactly [`material_len`](Self::material_len) bytes and, for
    /// ECDSA, a big-endian scalar in `1..n`.
    ///
    /// Fails with [`Error::InvalidKeyMaterial`], whose reason never
    /// includes the material.
    pub fn validate_material(&self, material: &[u8]) -> Result<(), Error> {
        if material.len() != self.material_len() {
            return Err(Error::InvalidKeyMaterial {
                spec: self.name(),
                reason: "wrong length",
            });
        }
        match self {
            Self::Aes256Gcm | Self::HmacSha256 | Self::HmacSha512 | Self::Ed25519 => Ok(()),
            Self::EcdsaP256 => ec_secret_key::<p256::NistP256>(*self, material).map(drop),
            Self::EcdsaP384 => ec_secret_key::<p384::NistP384>(*self, material).map(drop),
        }
    }
}

/// A uniformly random scalar in `1..n` of curve `C`, big-endian.
fn ec_scalar<C: elliptic_curve::Curve>(rng: &mut (impl CryptoRng + ?Sized)) -> SecretBytes {
    use elliptic_curve::Generate;
    let key = elliptic_curve::SecretKey::<C>::generate_from_rng(rng);
    let bytes = Zeroizing::new(key.to_bytes());
    SecretBytes::new(bytes.to_vec())
}

/// Decodes material of an ECDSA spec into the curve's secret key,
/// requiring the exact field length (the curve crate alone would also
/// accept, and left-pad, shorter slices).
pub(crate) fn ec_secret_key<C: elliptic_curve::Curve>(
    spec: KeySpec,
    material: &[u8],
) -> Result<elliptic_curve::SecretKey<C>, Error> {
    let bytes = <&elliptic_curve::FieldBytes<C>>::try_from(material).map_err(|_| {
        Error::InvalidKeyMaterial {
            spec: spec.name(),
            reason: "wrong length",
        }
    })?;
    elliptic_curve::SecretKey::<C>::from_bytes(bytes).map_err(|_| Error::InvalidKeyMaterial {
        spec: spec.name(),
        reason: "not a scalar in 1..n",
    })
}

api_names!(KeySpec, parsed from Self::ALL, else UnknownKeySpec);

impl KeyUsage {
    /// The name used in the API and CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EncryptDecrypt => "ENCRYPT_DECRYPT",
            Self::GenerateVerifyMac => "GENERATE_VERIFY_MAC",
            Self::SignVerify => "SIGN_VERIFY",
        }
    }
}

api_names!(KeyUsage);

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn names_round_trip() {
        assert_eq!(KeySpec::Aes256Gcm.name(), "AES256_GCM");
        assert_eq!(KeySpec::parse("AES256_GCM"), Ok(KeySpec::Aes256Gcm));
        assert_eq!(KeySpec::Aes256Gcm.to_string(), "AES256_GCM");
        assert_eq!(KeyUsage::EncryptDecrypt.name(), "ENCRYPT_DECRYPT");
        assert_eq!(KeyUsage::EncryptDecrypt.to_string(), "ENCRYPT_DECRYPT");
        assert_eq!(KeySpec::Aes256Gcm.usage(), KeyUsage::EncryptDecrypt);
    }

    #[test]
    fn unknown_names_are_rejected() {
        for name in ["aes256_gcm", "AES_256_GCM", "", "AES256_GCM "] {
            assert_eq!(
                KeySpec::parse(name),
                Err(Error::UnknownKeySpec {
                    name: name.to_owned()
                })
            );
        }
    }

    #[test]
    fn serde_uses_api_names() {
        let json = serde_json::to_string(&KeySpec::Aes256Gcm).unwrap();
        assert_eq!(json, r#""AES256_GCM""#);
        assert_eq!(
            serde_json::from_str::<KeySpec>(&json).unwrap(),
            KeySpec::Aes256Gcm
        );
        let json = serde_json::to_string(&KeyUsage::EncryptDecrypt).unwrap();
        assert_eq!(json, r#""ENCRYPT_DECRYPT""#);
    }

    #[test]
    fn material_is_a_fresh_aes_key() {
        let mut rng = ChaCha20Rng::from_seed([12; 32]);
        let a = KeySpec::Aes256Gcm.generate_material(&mut rng);
        let b = KeySpec::Aes256Gcm.generate_material(&mut rng);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(crate::SecretKey256::try_from_slice(a.as_slice()).is_ok());
    }

    /// The binding table of names, usages and lengths other crates rely on.
    const TABLE: &[(KeySpec, &str, KeyUsage, &str, usize, bool)] = &[
        (
            KeySpec::Aes256Gcm,
            "AES256_GCM",
            KeyUsage::EncryptDecrypt,
            "ENCRYPT_DECRYPT",
            32,
            true,
        ),
        (
            KeySpec::HmacSha256,
            "HMAC_SHA256",
            KeyUsage::GenerateVerifyMac,
            "GENERATE_VERIFY_MAC",
            32,
            true,
        ),
        (
            KeySpec::HmacSha512,
            "HMAC_SHA512",
            KeyUsage::GenerateVerifyMac,
            "GENERATE_VERIFY_MAC",
            64,
            true,
        ),
        (
            KeySpec::Ed25519,
            "ED25519",
            KeyUsage::SignVerify,
            "SIGN_VERIFY",
            32,
            false,
        ),
        (
            KeySpec::EcdsaP256,
            "ECDSA_P256",
            KeyUsage::SignVerify,
            "SIGN_VERIFY",
            32,
            false,
        ),
        (
            KeySpec::EcdsaP384,
            "ECDSA_P384",
            KeyUsage::SignVerify,
            "SIGN_VERIFY",
            48,
            false,
        ),
    ];

    #[test]
    fn every_spec_has_its_binding_name_usage_and_length() {
        assert_eq!(KeySpec::ALL.len(), TABLE.len());
        for (&spec, &(expected, name, usage, usage_name, len, symmetric)) in
            KeySpec::ALL.iter().zip(TABLE)
        {
            assert_eq!(spec, expected);
            assert_eq!(spec.name(), name);
            assert_eq!(spec.to_string(), name);
            assert_eq!(KeySpec::parse(name), Ok(spec));
            assert_eq!(serde_json::to_string(&spec).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<KeySpec>(&format!("\"{name}\"")).unwrap(),
                spec
            );
            assert_eq!(spec.usage(), usage);
            assert_eq!(usage.name(), usage_name);
            assert_eq!(
                serde_json::to_string(&usage).unwrap(),
                format!("\"{usage_name}\"")
            );
            assert_eq!(spec.material_len(), len);
            assert_eq!(spec.is_symmetric(), symmetric);
        }
    }

    #[test]
    fn new_specs_are_appended_after_aes() {
        // The derived order is the declaration order; AES must stay first
        // so existing encodings by index do not move.
        let mut sorted = KeySpec::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, KeySpec::ALL);
        assert_eq!(KeySpec::ALL.first(), Some(&KeySpec::Aes256Gcm));
        assert!(KeyUsage::EncryptDecrypt < KeyUsage::GenerateVerifyMac);
        assert!(KeyUsage::GenerateVerifyMac < KeyUsage::SignVerify);
    }

    #[test]
    fn generated_material_always_validates() {
        let mut rng = ChaCha20Rng::from_seed([13; 32]);
        for &spec in KeySpec::ALL {
            for _ in 0..16 {
                let a = spec.generate_material(&mut rng);
                let b = spec.generate_material(&mut rng);
                assert_eq!(a.len(), spec.material_len(), "{spec}");
                assert_ne!(a, b, "{spec}");
                assert_eq!(spec.validate_material(a.as_slice()), Ok(()), "{spec}");
            }
        }
    }

    #[test]
    fn generation_is_deterministic_in_the_rng() {
        for &spec in KeySpec::ALL {
            let a = spec.generate_material(&mut ChaCha20Rng::from_seed([1; 32]));
            let b = spec.generate_material(&mut ChaCha20Rng::from_seed([1; 32]));
            assert_eq!(a, b, "{spec}");
        }
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        for &spec in KeySpec::ALL {
            let len = spec.material_len();
            for bad in [0, 1, len - 1, len + 1, 2 * len] {
                assert_eq!(
                    spec.validate_material(&vec![1u8; bad]),
                    Err(Error::InvalidKeyMaterial {
                        spec: spec.name(),
                        reason: "wrong length"
                    }),
                    "{spec} {bad}"
                );
            }
        }
    }

    #[test]
    fn ec_scalars_must_be_in_range() {
        // n of P-256 and P-384 (SEC 2 / FIPS 186-4), big-endian.
        let n256 = hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
            .unwrap();
        let n384 = hex::decode(concat!(
            "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf",
            "581a0db248b0a77aecec196accc52973"
        ))
        .unwrap();
        for (spec, n) in [(KeySpec::EcdsaP256, n256), (KeySpec::EcdsaP384, n384)] {
            let invalid = Err(Error::InvalidKeyMaterial {
                spec: spec.name(),
                reason: "not a scalar in 1..n",
            });
            let zero = vec![0u8; n.len()];
            let all_ones = vec![0xffu8; n.len()];
            let mut n_minus_1 = n.clone();
            *n_minus_1.last_mut().unwrap() -= 1;
            let mut one = zero.clone();
            *one.last_mut().unwrap() = 1;
            assert_eq!(spec.validate_material(&zero), invalid, "{spec} zero");
            assert_eq!(spec.validate_material(&n), invalid, "{spec} n");
            assert_eq!(spec.validate_material(&all_ones), invalid, "{spec} max");
            assert_eq!(spec.validate_material(&n_minus_1), Ok(()), "{spec} n-1");
            assert_eq!(spec.validate_material(&one), Ok(()), "{spec} 1");
        }
        // The other specs accept any bytes of the right length.
        for spec in [
            KeySpec::Aes256Gcm,
            KeySpec::HmacSha256,
            KeySpec::HmacSha512,
            KeySpec::Ed25519,
        ] {
            assert_eq!(
                spec.validate_material(&vec![0xff; spec.material_len()]),
                Ok(())
            );
        }
    }
}
