//! The replicated certificate deny-list: client certificates refused whatever the policies
//! say, named by serial number or by the SHA-256 fingerprint of their DER encoding.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest serial number RFC 5280 allows, in bytes.
pub const MAX_SERIAL_LEN: usize = 20;

/// A certificate serial number: 1..=20 bytes, big-endian, without leading zero bytes (so the
/// same serial always has the same form).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct CertificateSerial(Vec<u8>);

/// A value that is not a serial number or fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CertificateIdError {
    /// A serial of no or more than 20 significant bytes.
    #[error("a certificate serial has 1..=20 bytes")]
    SerialLength,
    /// Text that is not hexadecimal (colons between bytes are accepted).
    #[error("expected hexadecimal digits")]
    NotHex,
    /// A fingerprint that is not 32 bytes.
    #[error("a SHA-256 fingerprint has 32 bytes")]
    FingerprintLength,
}

impl CertificateSerial {
    /// A serial from its big-endian bytes; leading zero bytes are dropped.
    ///
    /// # Errors
    /// [`CertificateIdError::SerialLength`] for more than 20 significant bytes, or none
    /// (a zero serial is kept as one zero byte).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertificateIdError> {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len().saturating_sub(1));
        match bytes.get(start..) {
            Some(significant) if !significant.is_empty() && significant.len() <= MAX_SERIAL_LEN => {
                Ok(Self(significant.to_vec()))
            }
            _ => Err(CertificateIdError::SerialLength),
        }
    }

    /// A serial from hexadecimal text (`0a:1b:...` or `0a1b...`).
    ///
    /// # Errors
    /// As [`CertificateSerial::from_bytes`], or [`CertificateIdError::NotHex`].
    pub fn from_hex(text: &str) -> Result<Self, CertificateIdError> {
        Self::from_bytes(&decode_hex(text)?)
    }

    /// The serial's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for CertificateSerial {
    type Error = CertificateIdError;
    fn try_from(bytes: Vec<u8>) -> Result<Self, CertificateIdError> {
        Self::from_bytes(&bytes)
    }
}

impl From<CertificateSerial> for Vec<u8> {
    fn from(serial: CertificateSerial) -> Vec<u8> {
        serial.0
    }
}

/// An entry of the deny-list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RevokedCertificate {
    /// Every certificate with this serial (of the client CA).
    Serial(CertificateSerial),
    /// The certificate whose DER encoding has this SHA-256 digest.
    Fingerprint([u8; 32]),
}

impl RevokedCertificate {
    /// A fingerprint entry from hexadecimal text (colons accepted).
    ///
    /// # Errors
    /// [`CertificateIdError::NotHex`] or [`CertificateIdError::FingerprintLength`].
    pub fn fingerprint_hex(text: &str) -> Result<Self, CertificateIdError> {
        let bytes: [u8; 32] = decode_hex(text)?
            .try_into()
            .map_err(|_| CertificateIdError::FingerprintLength)?;
        Ok(Self::Fingerprint(bytes))
    }

    /// The entry's row name: `serial/<hex>` or `sha256/<hex>`.
    pub fn row_name(&self) -> String {
        match self {
            Self::Serial(serial) => format!("serial/{}", hex::encode(serial.as_bytes())),
            Self::Fingerprint(digest) => format!("sha256/{}", hex::encode(digest)),
        }
    }
}

impl fmt::Display for RevokedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.row_name())
    }
}

/// The certificate a request was made with, as the TLS layer verified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// Its serial number.
    pub serial: CertificateSerial,
    /// SHA-256 of its DER encoding.
    pub fingerprint: [u8; 32],
}

/// Bytes from hexadecimal text of either case, colons between digits ignored.
fn decode_hex(text: &str) -> Result<Vec<u8>, CertificateIdError> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() {
        return Err(CertificateIdError::NotHex);
    }
    hex::decode(digits).map_err(|_| CertificateIdError::NotHex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_normalised() {
        let a = CertificateSerial::from_hex("00:0a:1b").unwrap();
        let b = CertificateSerial::from_hex("0A1B").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_bytes(), [0x0a, 0x1b]);
        assert_eq!(CertificateSerial::from_hex("00").unwrap().as_bytes(), [0]);
        assert_eq!(
            CertificateSerial::from_bytes(&[]),
            Err(CertificateIdError::SerialLength)
        );
        assert_eq!(
            CertificateSerial::from_bytes(&[1; 21]),
            Err(CertificateIdError::SerialLength)
        );
        assert_eq!(
            CertificateSerial::from_hex("abc"),
            Err(CertificateIdError::NotHex)
        );
        assert_eq!(
            CertificateSerial::from_hex("zz"),
            Err(CertificateIdError::NotHex)
        );
    }

    #[test]
    fn fingerprints_need_32_bytes() {
        let text = "ab".repeat(32);
        assert_eq!(
            RevokedCertificate::fingerprint_hex(&text).unwrap(),
            RevokedCertificate::Fingerprint([0xab; 32])
        );
        assert_eq!(
            RevokedCertificate::fingerprint_hex("abcd"),
            Err(CertificateIdError::FingerprintLength)
        );
        assert_eq!(
            RevokedCertificate::Fingerprint([1; 32]).row_name(),
            format!("sha256/{}", "01".repeat(32))
        );
    }
}
