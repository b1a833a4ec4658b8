//! What can go wrong reading or writing an envelope message.

/// A failed envelope encryption or decryption.
///
/// Every variant says where the message went wrong; none carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The first byte is not a format version this SDK reads.
    #[error("unsupported envelope format version {found} (this SDK reads version {expected})")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The version this SDK writes and reads.
        expected: u8,
    },
    /// The input ended inside the header.
    #[error("the envelope header is truncated (in its {field})")]
    TruncatedHeader {
        /// The header field being read.
        field: &'static str,
    },
    /// A header field holds a value the format does not allow.
    #[error("malformed envelope header: {field} {problem}")]
    MalformedHeader {
        /// The header field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A value is too long to be written in its header field.
    #[error("the {field} is too long for the envelope header ({len} bytes, at most {max})")]
    FieldTooLong {
        /// The header field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The most the field holds.
        max: usize,
    },
    /// The frame size is outside `1..=MAX_FRAME_SIZE`.
    #[error("frame size {size} is out of range (1..={max})")]
    FrameSize {
        /// The size asked for or found.
        size: u64,
        /// The largest frame size allowed.
        max: u32,
    },
    /// The header does not authenticate: it was altered, or the data key is not the one it
    /// was written with.
    #[error("the envelope header does not authenticate (altered, or another data key)")]
    HeaderAuthentication,
    /// The caller's encryption context is not the one the message was encrypted with.
    #[error("the encryption context does not match the one the message was encrypted with")]
    ContextMismatch,
    /// A frame does not authenticate: altered, reordered, from another message, or with its
    /// final flag changed. Nothing of it was released.
    #[error("frame {frame} does not authenticate (altered, reordered or from another message)")]
    FrameAuthentication {
        /// The frame's number (from 1).
        frame: u64,
    },
    /// A frame starts with a kind byte that is neither regular (0) nor final (1).
    #[error("frame {frame} has an unknown kind byte {kind:#04x}")]
    FrameKind {
        /// The frame's number (from 1).
        frame: u64,
        /// The byte found.
        kind: u8,
    },
    /// A final frame claims as much plaintext as a whole frame or more.
    #[error("final frame {frame} claims {len} bytes, not less than the frame size {frame_size}")]
    FinalFrameLength {
        /// The frame's number (from 1).
        frame: u64,
        /// The length it claims.
        len: u32,
        /// The message's frame size.
        frame_size: u32,
    },
    /// The input ended before the final frame: the message is truncated. Frames before
    /// `frame` authenticated and were released.
    #[error("the message is truncated: it ends in or before frame {frame}, without a final frame")]
    Truncated {
        /// The frame that is missing or incomplete.
        frame: u64,
    },
    /// Bytes follow the final frame.
    #[error("unexpected data after the final frame")]
    TrailingData,
    /// The message has more frames than the frame counter holds.
    #[error("the message has too many frames")]
    TooManyFrames,
    /// Reading the input failed.
    #[error("cannot read the input: {source}")]
    Read {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the output failed.
    #[error("cannot write the output: {source}")]
    Write {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// AES-GCM refused to encrypt (an input beyond its limits; frames never are).
    #[error("AES-GCM refused to encrypt a frame")]
    Seal,
    /// The data key is not a 256-bit key.
    #[error("the data key has {len} bytes; envelope encryption needs a 32-byte AES-256 key")]
    DataKeyLength {
        /// Its length.
        len: usize,
    },
}
