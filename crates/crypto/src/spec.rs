//! Key specs: which algorithm a customer key uses and what it may do.

use core::fmt;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::secret::KEY_LEN;
use crate::{Error, SecretBytes};

/// The algorithm of a customer key.
///
/// Not `#[non_exhaustive]` on purpose: the state machine matches on it
/// exhaustively, so adding a spec must be a compile error there. Serialized
/// under its API name (`"AES256_GCM"`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySpec {
    /// 256-bit AES in GCM mode, used through [`crate::ciphertext`].
    #[serde(rename = "AES256_GCM")]
    Aes256Gcm,
}

/// What a customer key may be used for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyUsage {
    /// Encrypt and decrypt (symmetric keys).
    #[serde(rename = "ENCRYPT_DECRYPT")]
    EncryptDecrypt,
}

impl KeySpec {
    /// The name used in the API and CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Aes256Gcm => "AES256_GCM",
        }
    }

    /// Parses an API name (exact, case-sensitive).
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "AES256_GCM" => Ok(Self::Aes256Gcm),
            _ => Err(Error::UnknownKeySpec {
                name: name.to_owned(),
            }),
        }
    }

    /// The only usage keys of this spec support.
    pub fn usage(&self) -> KeyUsage {
        match self {
            Self::Aes256Gcm => KeyUsage::EncryptDecrypt,
        }
    }

    /// Fresh random key material for a new key version of this spec.
    pub fn generate_material(&self, rng: &mut (impl CryptoRng + ?Sized)) -> SecretBytes {
        let len = match self {
            Self::Aes256Gcm => KEY_LEN,
        };
        let mut material = vec![0u8; len];
        rng.fill_bytes(&mut material);
        SecretBytes::new(material)
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl KeyUsage {
    /// The name used in the API and CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EncryptDecrypt => "ENCRYPT_DECRYPT",
        }
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
}
