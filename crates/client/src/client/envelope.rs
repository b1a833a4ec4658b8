//! Envelope encryption with data keys from the cluster: streams and byte slices of any size
//! (see [`crate::envelope`] for the format and its guarantees).

use std::collections::BTreeMap;

use tokio::io::{AsyncRead, AsyncWrite};
use zeroize::Zeroizing;

use super::Client;
use crate::envelope::{self, DataKey, EnvelopeSummary, Header};
use crate::error::Error;

/// The data key spec of envelope encryption (AES-256).
const DATA_KEY_SPEC: &str = "AES_256";

impl Client {
    /// A fresh AES-256 data key from `GenerateDataKey` under `key` with `context`.
    ///
    /// # Errors
    /// [`Error`] from the cluster, or [`Error::Envelope`] if it answers with a key that is not
    /// 256 bits.
    pub async fn envelope_data_key(
        &self,
        key: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKey, Error> {
        let reply = self.generate_data_key(key, DATA_KEY_SPEC, context).await?;
        Ok(DataKey::new(
            Zeroizing::new(reply.plaintext),
            reply.ciphertext,
            reply.key_id,
        )?)
    }

    /// A data key for one message of `bytes` bytes: from the client's data-key cache when it
    /// has one (see [`crate::ClientBuilder::data_key_cache`]), else fresh.
    async fn message_data_key(
        &self,
        key: &str,
        context: &BTreeMap<String, String>,
        bytes: u64,
    ) -> Result<DataKey, Error> {
        match &self.cache {
            Some(cache) => {
                cache
                    .data_key(key, context, bytes, || self.envelope_data_key(key, context))
                    .await
            }
            None => self.envelope_data_key(key, context).await,
        }
    }

    /// Encrypts everything `reader` yields into one envelope message on `writer`, under a
    /// fresh data key wrapped by `key` with `context`. One `GenerateDataKey` call, whatever
    /// the size; memory O(frame size). Streams never use the data-key cache (their size is
    /// not known in advance, so its byte bound could not hold).
    ///
    /// # Errors
    /// [`Error`] from the cluster, or [`Error::Envelope`] for an I/O failure.
    pub async fn encrypt_stream<R, W>(
        &self,
        key: &str,
        context: &BTreeMap<String, String>,
        reader: &mut R,
        writer: &mut W,
    ) -> Result<EnvelopeSummary, Error>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let data_key = self.envelope_data_key(key, context).await?;
        Ok(envelope::encrypt_stream(&data_key, context, self.frame_size, reader, writer).await?)
    }

    /// Decrypts one envelope message from `reader` onto `writer`; `context` must be the one
    /// it was encrypted with. One `Decrypt` call to unwrap the data key. A frame's plaintext
    /// is written only after the frame authenticates; on error the writer has received
    /// whole authenticated frames from the start of the message and nothing else.
    ///
    /// # Errors
    /// [`Error::Envelope`] for a message that does not authenticate, is truncated or has
    /// another context; [`Error`] from the cluster if the data key cannot be unwrapped.
    pub async fn decrypt_stream<R, W>(
        &self,
        context: &BTreeMap<String, String>,
        reader: &mut R,
        writer: &mut W,
    ) -> Result<EnvelopeSummary, Error>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let header = Header::read(reader).await?;
        envelope::check_context(&header, context)?;
        let data_key = Zeroizing::new(self.decrypt(&header.wrapped_key, context).await?.plaintext);
        Ok(envelope::decrypt_stream(&header, context, &data_key, reader, writer).await?)
    }

    /// Encrypts `plaintext` (any size) into one envelope message, using the data-key cache
    /// when the client has one.
    ///
    /// # Errors
    /// [`Error`] from the cluster.
    pub async fn encrypt_envelope(
        &self,
        key: &str,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, Error> {
        let bytes = u64::try_from(plaintext.len()).unwrap_or(u64::MAX);
        let data_key = self.message_data_key(key, context, bytes).await?;
        let mut out = Vec::with_capacity(plaintext.len() + 256);
        let mut reader = plaintext;
        envelope::encrypt_stream(&data_key, context, self.frame_size, &mut reader, &mut out)
            .await?;
        Ok(out)
    }

    /// Decrypts one envelope message held in memory; the plaintext is zeroized when dropped.
    ///
    /// # Errors
    /// As [`Client::decrypt_stream`]; nothing is returned unless the whole message
    /// authenticates.
    pub async fn decrypt_envelope(
        &self,
        message: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut out = Zeroizing::new(Vec::with_capacity(message.len()));
        let mut reader = message;
        self.decrypt_stream(context, &mut reader, &mut *out).await?;
        Ok(out)
    }
}
