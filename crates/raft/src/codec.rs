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

/// The length of a value's encoding, without encoding it.
///
/// # Errors
/// [`CodecError`] if serde cannot represent the value in postcard.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, CodecError> {
    postcard::experimental::serialized_size(value).map_err(|source| CodecError {
        what: "encoded length",
        source,
    })
}

/// Decodes a value, rejecting trailing bytes.
///
/// # Errors
/// [`CodecError`] for truncated, malformed or over-long input.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = take(what, bytes)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(CodecError {
            what,
            source: postcard::Error::DeserializeBadEncoding,
        })
    }
}

/// Decodes the value at the start of `bytes` and ignores what follows: the leading fields of
/// a larger record, read without decoding the rest (postcard writes struct fields in order).
///
/// # Errors
/// [`CodecError`] for truncated or malformed input.
pub fn decode_prefix<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, CodecError> {
    take(what, bytes).map(|(value, _)| value)
}

fn take<'a, T: DeserializeOwned>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<(T, &'a [u8]), CodecError> {
    postcard::take_from_bytes(bytes).map_err(|source| CodecError { what, source })
}
