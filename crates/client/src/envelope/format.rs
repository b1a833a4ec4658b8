//! The envelope message format: constants, the header, and the keys, nonces and AADs derived
//! from them. `docs/envelope.md` describes the same layout byte by byte.

use std::collections::BTreeMap;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

use super::error::EnvelopeError;

/// The format version this SDK writes and reads (the first byte of a message).
pub const FORMAT_VERSION: u8 = 1;
/// Length of the random message id.
pub const MESSAGE_ID_LEN: usize = 32;
/// Length of an AES-256 data key.
pub const DATA_KEY_LEN: usize = 32;
/// Length of an AES-GCM tag (header tag and every frame's tag).
pub const TAG_LEN: usize = 16;
/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Plaintext bytes per frame unless the caller chooses otherwise.
pub const DEFAULT_FRAME_SIZE: u32 = 64 * 1024;
/// The largest frame size: memory use is a small multiple of it on both sides.
pub const MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;
/// Kind byte of a frame that is followed by more frames (exactly frame size bytes).
pub const FRAME_REGULAR: u8 = 0;
/// Kind byte of the last frame (fewer than frame size bytes, possibly none).
pub const FRAME_FINAL: u8 = 1;

/// HKDF-SHA256 `info` deriving the message key from the data key (salt: the message id).
pub const KEY_LABEL: &[u8] = b"tessera/envelope/v1/key";
/// Prefix of the header tag's AAD (followed by the header bytes before the tag).
pub const HEADER_LABEL: &[u8] = b"tessera/envelope/v1/header";
/// Prefix of every frame's AAD (followed by message id, frame number, kind byte).
pub const FRAME_LABEL: &[u8] = b"tessera/envelope/v1/frame";

/// Bytes before the key id: version, message id, frame size.
const FIXED_LEN: usize = 1 + MESSAGE_ID_LEN + 4;
/// Longest length-prefixed header field.
const MAX_FIELD: usize = u16::MAX as usize;

/// The parsed header of a message, not yet authenticated ([`crate::envelope::decrypt_stream`]
/// checks its tag before it releases anything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Random per message; salts the message key and is bound into every frame.
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// Plaintext bytes per regular frame.
    pub frame_size: u32,
    /// The Tessera key that wrapped the data key (informational: the wrapped key names its
    /// own key version).
    pub key_id: String,
    /// The encryption context the data key was wrapped with.
    pub context: BTreeMap<String, String>,
    /// The data key as `GenerateDataKey` returned it, encrypted under `key_id`.
    pub wrapped_key: Vec<u8>,
    /// The header's bytes before the tag, as read or written.
    encoded: Vec<u8>,
    /// The tag authenticating `encoded`.
    tag: [u8; TAG_LEN],
}

/// The per-message AES-256-GCM key, derived from the data key and the message id.
pub(crate) struct MessageKey {
    cipher: Aes256Gcm,
}

impl MessageKey {
    /// HKDF-SHA256(salt = message id, ikm = data key, info = [`KEY_LABEL`]).
    pub(crate) fn derive(
        data_key: &[u8],
        message_id: &[u8; MESSAGE_ID_LEN],
    ) -> Result<Self, EnvelopeError> {
        if data_key.len() != DATA_KEY_LEN {
            return Err(EnvelopeError::DataKeyLength {
                len: data_key.len(),
            });
        }
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        tessera_crypto::kdf::hkdf_sha256(data_key, message_id, KEY_LABEL, key.as_mut_slice())
            .map_err(|_| EnvelopeError::DataKeyLength {
                len: data_key.len(),
            })?;
        let cipher = Aes256Gcm::new((&*key).into());
        Ok(Self { cipher })
    }

    /// Encrypts `buffer` in place; returns the tag.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_LEN], EnvelopeError> {
        self.cipher
            .encrypt_inout_detached(nonce.into(), aad, buffer.into())
            .map(Into::into)
            .map_err(|_| EnvelopeError::Seal)
    }

    /// Decrypts `buffer` in place if `tag` authenticates it; `false` (buffer unspecified)
    /// otherwise.
    #[must_use]
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        self.cipher
            .decrypt_inout_detached(nonce.into(), aad, buffer.into(), tag.into())
            .is_ok()
    }
}

/// The nonce of frame `number`: four zero bytes, then the number (big-endian). Frame 0 is
/// the header tag's.
pub(crate) fn nonce(number: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    for (slot, byte) in nonce.iter_mut().skip(4).zip(number.to_be_bytes()) {
        *slot = byte;
    }
    nonce
}

/// The AAD of frame `number`: [`FRAME_LABEL`] ‖ message id ‖ number (u64 BE) ‖ kind byte.
pub(crate) fn frame_aad(message_id: &[u8; MESSAGE_ID_LEN], number: u64, kind: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(FRAME_LABEL.len() + MESSAGE_ID_LEN + 9);
    aad.extend_from_slice(FRAME_LABEL);
    aad.extend_from_slice(message_id);
    aad.extend_from_slice(&number.to_be_bytes());
    aad.push(kind);
    aad
}

fn header_aad(encoded: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LABEL.len() + encoded.len());
    aad.extend_from_slice(HEADER_LABEL);
    aad.extend_from_slice(encoded);
    aad
}

/// Checks a frame size against `1..=MAX_FRAME_SIZE`.
pub(crate) fn check_frame_size(size: u64) -> Result<u32, EnvelopeError> {
    u32::try_from(size)
        .ok()
        .filter(|s| (1..=MAX_FRAME_SIZE).contains(s))
        .ok_or(EnvelopeError::FrameSize {
            size,
            max: MAX_FRAME_SIZE,
        })
}

fn put_field(out: &mut Vec<u8>, field: &'static str, bytes: &[u8]) -> Result<(), EnvelopeError> {
    let len = u16::try_from(bytes.len()).map_err(|_| EnvelopeError::FieldTooLong {
        field,
        len: bytes.len(),
        max: MAX_FIELD,
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

impl Header {
    /// A new header, authenticated with `key` (the message key derived from the data key and
    /// `message_id`).
    pub(crate) fn seal(
        message_id: [u8; MESSAGE_ID_LEN],
        frame_size: u32,
        key_id: &str,
        context: &BTreeMap<String, String>,
        wrapped_key: &[u8],
        key: &MessageKey,
    ) -> Result<Self, EnvelopeError> {
        let frame_size = check_frame_size(u64::from(frame_size))?;
        let mut encoded = Vec::with_capacity(FIXED_LEN + 64 + wrapped_key.len());
        encoded.push(FORMAT_VERSION);
        encoded.extend_from_slice(&message_id);
        encoded.extend_from_slice(&frame_size.to_be_bytes());
        put_field(&mut encoded, "key id", key_id.as_bytes())?;
        let pairs = u16::try_from(context.len()).map_err(|_| EnvelopeError::FieldTooLong {
            field: "encryption context",
            len: context.len(),
            max: MAX_FIELD,
        })?;
        encoded.extend_from_slice(&pairs.to_be_bytes());
        for (k, v) in context {
            put_field(&mut encoded, "context key", k.as_bytes())?;
            put_field(&mut encoded, "context value", v.as_bytes())?;
        }
        put_field(&mut encoded, "wrapped data key", wrapped_key)?;
        let tag = key.seal(&nonce(0), &header_aad(&encoded), &mut [])?;
        Ok(Self {
            message_id,
            frame_size,
            key_id: key_id.to_owned(),
            context: context.clone(),
            wrapped_key: wrapped_key.to_vec(),
            encoded,
            tag,
        })
    }

    /// The header as written on the wire: its fields, then its tag.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.encoded.clone();
        bytes.extend_from_slice(&self.tag);
        bytes
    }

    /// Checks the header tag under `key`.
    pub(crate) fn verify(&self, key: &MessageKey) -> Result<(), EnvelopeError> {
        if key.open(&nonce(0), &header_aad(&self.encoded), &mut [], &self.tag) {
            Ok(())
        } else {
            Err(EnvelopeError::HeaderAuthentication)
        }
    }

    /// Reads and parses a header (not yet authenticated: the data key is needed for that).
    ///
    /// # Errors
    /// [`EnvelopeError`] for a truncated or malformed header or an unknown version.
    pub async fn read<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Self, EnvelopeError> {
        let mut input = HeaderInput {
            reader,
            encoded: Vec::new(),
        };
        let [version] = input.array::<1>("version").await?;
        if version != FORMAT_VERSION {
            return Err(EnvelopeError::UnsupportedVersion {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let message_id = input.array::<MESSAGE_ID_LEN>("message id").await?;
        let frame_size = u32::from_be_bytes(input.array::<4>("frame size").await?);
        let frame_size = check_frame_size(u64::from(frame_size))?;
        let key_id = input.text("key id").await?;
        let pairs = u16::from_be_bytes(input.array::<2>("encryption context").await?);
        let mut context = BTreeMap::new();
        for _ in 0..pairs {
            let k = input.text("context key").await?;
            let v = input.text("context value").await?;
            if context.last_key_value().is_some_and(|(last, _)| last >= &k) {
                return Err(EnvelopeError::MalformedHeader {
                    field: "encryption context",
                    problem: "is not in strictly ascending key order",
                });
            }
            context.insert(k, v);
        }
        let wrapped_key = input.field("wrapped data key").await?;
        if wrapped_key.is_empty() {
            return Err(EnvelopeError::MalformedHeader {
                field: "wrapped data key",
                problem: "is empty",
            });
        }
        let encoded = std::mem::take(&mut input.encoded);
        let tag = input.array::<TAG_LEN>("header tag").await?;
        Ok(Self {
            message_id,
            frame_size,
            key_id,
            context,
            wrapped_key,
            encoded,
            tag,
        })
    }
}

/// Reads header fields, keeping their bytes for the tag.
struct HeaderInput<'a, R> {
    reader: &'a mut R,
    encoded: Vec<u8>,
}

impl<R: AsyncRead + Unpin> HeaderInput<'_, R> {
    async fn fill(&mut self, field: &'static str, buf: &mut [u8]) -> Result<(), EnvelopeError> {
        match self.reader.read_exact(buf).await {
            Ok(_) => {
                self.encoded.extend_from_slice(buf);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(EnvelopeError::TruncatedHeader { field })
            }
            Err(source) => Err(EnvelopeError::Read { source }),
        }
    }

    async fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], EnvelopeError> {
        let mut buf = [0u8; N];
        self.fill(field, &mut buf).await?;
        Ok(buf)
    }

    async fn field(&mut self, field: &'static str) -> Result<Vec<u8>, EnvelopeError> {
        let len = u16::from_be_bytes(self.array::<2>(field).await?);
        let mut buf = vec![0u8; usize::from(len)];
        self.fill(field, &mut buf).await?;
        Ok(buf)
    }

    async fn text(&mut self, field: &'static str) -> Result<String, EnvelopeError> {
        String::from_utf8(self.field(field).await?).map_err(|_| EnvelopeError::MalformedHeader {
            field,
            problem: "is not UTF-8",
        })
    }
}
