//! Envelope encryption: data of any size under a data key that a Tessera key wraps.
//!
//! A message is a header (format version, random message id, frame size, key id, encryption
//! context, the wrapped data key, and a tag authenticating all of it) followed by frames of
//! AES-256-GCM under a key derived from the data key and the message id. Each frame's AAD
//! binds the message id, the frame number and whether it is the final frame, so truncation,
//! reordering, dropped frames and frames spliced from another message all fail to
//! authenticate. The byte layout is in `docs/envelope.md`.
//!
//! Decryption releases a frame's plaintext only after that frame authenticates, and the
//! final frame's only after the input is known to end with it: when decryption fails, the
//! writer has received the plaintext of whole, authenticated frames of the message, in order,
//! and nothing else. Memory use is a small multiple of the frame size, whatever the input size.
//!
//! This module is the pure format over any [`DataKey`]; [`crate::Client::encrypt_stream`] and
//! the other envelope calls of the client get the data key from the cluster.

mod cache;
mod error;
mod format;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use tokio::io::{AsyncRead, AsyncWrite};
use zeroize::Zeroizing;

pub use cache::{CacheLimits, DataKeyCache};
pub use error::EnvelopeError;
pub use format::{
    Header, DATA_KEY_LEN, DEFAULT_FRAME_SIZE, FORMAT_VERSION, FRAME_FINAL, FRAME_LABEL,
    FRAME_REGULAR, HEADER_LABEL, KEY_LABEL, MAX_FRAME_SIZE, MESSAGE_ID_LEN, NONCE_LEN, TAG_LEN,
};
pub use stream::EnvelopeSummary;

pub(crate) use format::check_frame_size;
use format::MessageKey;

/// A data key for envelope encryption: the 256-bit key in plaintext (zeroized when dropped)
/// and the same key wrapped by a Tessera key, as `GenerateDataKey` returns them.
#[derive(Clone)]
pub struct DataKey {
    plaintext: Zeroizing<Vec<u8>>,
    wrapped: Vec<u8>,
    key_id: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("key_id", &self.key_id)
            .field("plaintext", &"REDACTED")
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// A data key from its plaintext, its wrapped form and the id of the key that wrapped it.
    ///
    /// # Errors
    /// [`EnvelopeError::DataKeyLength`] unless the plaintext is 32 bytes.
    pub fn new(
        plaintext: Zeroizing<Vec<u8>>,
        wrapped: Vec<u8>,
        key_id: String,
    ) -> Result<Self, EnvelopeError> {
        if plaintext.len() != DATA_KEY_LEN {
            return Err(EnvelopeError::DataKeyLength {
                len: plaintext.len(),
            });
        }
        Ok(Self {
            plaintext,
            wrapped,
            key_id,
        })
    }

    /// The data key encrypted under the Tessera key (what a message's header carries).
    pub fn wrapped(&self) -> &[u8] {
        &self.wrapped
    }

    /// The id of the Tessera key that wrapped it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub(crate) fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }
}

/// Encrypts everything `reader` yields into one message on `writer`, in frames of
/// `frame_size` plaintext bytes, under `data_key`; `context` is recorded in the header (it
/// must be the context the data key was wrapped with). Flushes the writer.
///
/// # Errors
/// [`EnvelopeError`]: an I/O failure, a frame size out of range, a header field too long.
pub async fn encrypt_stream<R, W>(
    data_key: &DataKey,
    context: &BTreeMap<String, String>,
    frame_size: u32,
    reader: &mut R,
    writer: &mut W,
) -> Result<EnvelopeSummary, EnvelopeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use tessera_crypto::rand_core::Rng;
    let mut message_id = [0u8; MESSAGE_ID_LEN];
    tessera_crypto::os_rng().fill_bytes(&mut message_id);
    encrypt_with_message_id(data_key, context, frame_size, message_id, reader, writer).await
}

/// [`encrypt_stream`] with a given message id (test vectors).
pub(crate) async fn encrypt_with_message_id(
    data_key: &DataKey,
    context: &BTreeMap<String, String>,
    frame_size: u32,
    message_id: [u8; MESSAGE_ID_LEN],
    reader: &mut (impl AsyncRead + Unpin),
    writer: &mut (impl AsyncWrite + Unpin),
) -> Result<EnvelopeSummary, EnvelopeError> {
    let key = MessageKey::derive(data_key.plaintext(), &message_id)?;
    let header = Header::seal(
        message_id,
        frame_size,
        data_key.key_id(),
        context,
        data_key.wrapped(),
        &key,
    )?;
    stream::encrypt_frames(&header, &key, reader, writer).await
}

/// Decrypts the frames that follow `header` (already read with [`Header::read`]) with the
/// unwrapped `data_key`, after checking that `context` is the header's and that the header
/// authenticates. Writes each frame's plaintext only once it authenticates (see the module
/// documentation for what the writer may have received when this fails). Flushes the writer.
///
/// # Errors
/// [`EnvelopeError`] naming what does not authenticate or is missing.
pub async fn decrypt_stream<R, W>(
    header: &Header,
    context: &BTreeMap<String, String>,
    data_key: &[u8],
    reader: &mut R,
    writer: &mut W,
) -> Result<EnvelopeSummary, EnvelopeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    check_context(header, context)?;
    let key = MessageKey::derive(data_key, &header.message_id)?;
    stream::decrypt_frames(header, &key, reader, writer).await
}

/// Checks that the caller's `context` is the one in `header`, before any key is unwrapped.
///
/// # Errors
/// [`EnvelopeError::ContextMismatch`] when they differ.
pub fn check_context(
    header: &Header,
    context: &BTreeMap<String, String>,
) -> Result<(), EnvelopeError> {
    if &header.context == context {
        Ok(())
    } else {
        Err(EnvelopeError::ContextMismatch)
    }
}
