//! Binary encoding of Raft data on disk and on the wire: postcard, which is compact and
//! deterministic. It is not self-describing, so stored types only ever gain new enum variants
//! at the end (see `tessera_state::command`).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An encoding or decoding failure.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct CodecError {
    /// What was being encoded or decoded.
    pub what: &'static str,
    /// The underlying postcard error.
    #[source]
    pub source: postcard::Error,
}

/// Encodes a value.
///
/// # Errors
/// [`CodecError`] if serde cannot represent the value in postcard.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_allocvec(value).map_err(|source| CodecError { what, source })
}

/// Decodes a value, rejecting trailing bytes.
///
/// # Errors
/// [`CodecError`] for truncated, malformed or over-long input.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|source| CodecError { what, source })?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(CodecError {
            what,
            source: postcard::Error::DeserializeBadEncoding,
        })
    }
}
