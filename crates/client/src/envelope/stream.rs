//! Encrypting and decrypting the frames of a message over `AsyncRead`/`AsyncWrite`, with one
//! frame in memory at a time.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use super::error::EnvelopeError;
use super::format::{frame_aad, nonce, Header, MessageKey, FRAME_FINAL, FRAME_REGULAR, TAG_LEN};

/// What one message held, once it is completely written or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeSummary {
    /// The Tessera key that wrapped the message's data key.
    pub key_id: String,
    /// Plaintext bytes in the message.
    pub plaintext_bytes: u64,
    /// Frames in the message, the final one included.
    pub frames: u64,
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, EnvelopeError> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match reader.read(rest).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(EnvelopeError::Read { source }),
        }
    }
    Ok(filled)
}

async fn write<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> Result<(), EnvelopeError> {
    writer
        .write_all(bytes)
        .await
        .map_err(|source| EnvelopeError::Write { source })
}

fn next_frame(number: u64) -> Result<u64, EnvelopeError> {
    number.checked_add(1).ok_or(EnvelopeError::TooManyFrames)
}

/// Flushes the writer after the last frame of a message: what the message held.
async fn finish<W: AsyncWrite + Unpin>(
    writer: &mut W,
    header: &Header,
    plaintext_bytes: u64,
    frames: u64,
) -> Result<EnvelopeSummary, EnvelopeError> {
    writer
        .flush()
        .await
        .map_err(|source| EnvelopeError::Write { source })?;
    Ok(EnvelopeSummary {
        key_id: header.key_id.clone(),
        plaintext_bytes,
        frames,
    })
}

/// Writes `header`, then the input in frames sealed under `key`; flushes the writer.
pub(crate) async fn encrypt_frames(
    header: &Header,
    key: &MessageKey,
    reader: &mut (impl AsyncRead + Unpin),
    writer: &mut (impl AsyncWrite + Unpin),
) -> Result<EnvelopeSummary, EnvelopeError> {
    write(writer, &header.to_bytes()).await?;
    let size = frame_len(header.frame_size);
    let mut buf = Zeroizing::new(vec![0u8; size]);
    let mut number = 1u64;
    let mut total = 0u64;
    loop {
        let len = read_full(reader, &mut buf).await?;
        let kind = if len == size {
            FRAME_REGULAR
        } else {
            FRAME_FINAL
        };
        let body = buf.get_mut(..len).ok_or(EnvelopeError::Seal)?;
        let tag = key.seal(
            &nonce(number),
            &frame_aad(&header.message_id, number, kind),
            body,
        )?;
        write(writer, &[kind]).await?;
        if kind == FRAME_FINAL {
            let claimed = u32::try_from(len).map_err(|_| EnvelopeError::Seal)?;
            write(writer, &claimed.to_be_bytes()).await?;
        }
        write(writer, body).await?;
        write(writer, &tag).await?;
        total += len as u64;
        if kind == FRAME_FINAL {
            break;
        }
        number = next_frame(number)?;
    }
    finish(writer, header, total, number).await
}

/// A frame size as a buffer length (frame sizes are at most 16 MiB).
fn frame_len(frame_size: u32) -> usize {
    usize::try_from(frame_size).unwrap_or(usize::MAX)
}

/// Authenticates `header` under `key`, then reads the frames that follow it and writes each
/// frame's plaintext only once that frame has authenticated; the final frame's plaintext only
/// once the input is known to end right after it. Flushes the writer.
pub(crate) async fn decrypt_frames(
    header: &Header,
    key: &MessageKey,
    reader: &mut (impl AsyncRead + Unpin),
    writer: &mut (impl AsyncWrite + Unpin),
) -> Result<EnvelopeSummary, EnvelopeError> {
    header.verify(key)?;
    let size = frame_len(header.frame_size);
    let mut buf = Zeroizing::new(vec![0u8; size + TAG_LEN]);
    let mut number = 1u64;
    let mut total = 0u64;
    loop {
        let truncated = EnvelopeError::Truncated { frame: number };
        let mut kind = [0u8; 1];
        if read_full(reader, &mut kind).await? == 0 {
            return Err(truncated);
        }
        let [kind] = kind;
        let len = match kind {
            FRAME_REGULAR => size,
            FRAME_FINAL => {
                let mut claimed = [0u8; 4];
                if read_full(reader, &mut claimed).await? < claimed.len() {
                    return Err(truncated);
                }
                let claimed = u32::from_be_bytes(claimed);
                if claimed >= header.frame_size {
                    return Err(EnvelopeError::FinalFrameLength {
                        frame: number,
                        len: claimed,
                        frame_size: header.frame_size,
                    });
                }
                frame_len(claimed)
            }
            other => {
                return Err(EnvelopeError::FrameKind {
                    frame: number,
                    kind: other,
                })
            }
        };
        let frame = buf.get_mut(..len + TAG_LEN).ok_or(truncated)?;
        if read_full(reader, frame).await? < frame.len() {
            return Err(EnvelopeError::Truncated { frame: number });
        }
        let (body, tag) = frame.split_at_mut(len);
        let tag: &[u8; TAG_LEN] = (&*tag)
            .try_into()
            .map_err(|_| EnvelopeError::Truncated { frame: number })?;
        let aad = frame_aad(&header.message_id, number, kind);
        if !key.open(&nonce(number), &aad, body, tag) {
            return Err(EnvelopeError::FrameAuthentication { frame: number });
        }
        total += len as u64;
        if kind == FRAME_FINAL {
            let mut extra = [0u8; 1];
            if read_full(reader, &mut extra).await? != 0 {
                return Err(EnvelopeError::TrailingData);
            }
            write(writer, body).await?;
            break;
        }
        write(writer, body).await?;
        number = next_frame(number)?;
    }
    finish(writer, header, total, number).await
}
