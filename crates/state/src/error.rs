//! Errors of the state crate: invalid identifiers and undecodable persisted data.
//!
//! Deterministic rejections of a command (name taken, key not found, …) are not errors of
//! this kind: they are part of the replicated result, see [`crate::ApplyError`].

/// An error building a value of the model or decoding persisted state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A key id that is not a lowercase hyphenated UUID.
    #[error("invalid key id {value:?}: expected a lowercase UUID")]
    InvalidKeyId {
        /// The offending value (truncated).
        value: String,
    },
    /// A key name that breaks a naming rule.
    #[error("invalid key name {value:?}: {reason}")]
    InvalidKeyName {
        /// The offending value (truncated).
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A request id that is empty, too long or not printable ASCII.
    #[error("invalid request id {value:?}: expected 1..=128 printable ASCII characters")]
    InvalidRequestId {
        /// The offending value (truncated).
        value: String,
    },
    /// An alias name that breaks a naming rule.
    #[error("invalid alias {value:?}: {reason}")]
    InvalidAlias {
        /// The offending value (truncated).
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A string that is neither a key id, a key name nor `alias/NAME`.
    #[error("invalid key reference {value:?}: expected a key id, a key name or alias/NAME")]
    InvalidKeyRef {
        /// The offending value (truncated).
        value: String,
    },
    /// Persisted bytes (a row or a snapshot) that do not decode.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// Persisted bytes written by an unknown format version.
    #[error("unsupported {what} format version {version}")]
    UnsupportedFormat {
        /// What was being decoded.
        what: &'static str,
        /// The version tag found.
        version: u8,
    },
}
