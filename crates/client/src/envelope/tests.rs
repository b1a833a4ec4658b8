#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use zeroize::Zeroizing;

use super::*;

const FRAME: u32 = 64;

fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn data_key(byte: u8) -> DataKey {
    DataKey::new(
        Zeroizing::new(vec![byte; DATA_KEY_LEN]),
        b"wrapped-by-tessera".to_vec(),
        "key-1".into(),
    )
    .unwrap()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn encrypt(key: &DataKey, context: &BTreeMap<String, String>, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut reader = plain;
    encrypt_stream(key, context, FRAME, &mut reader, &mut out)
        .await
        .unwrap();
    out
}

/// What the tampering tests start from: a message of `len` plaintext bytes under data key
/// `byte` (see [`data_key`]) with `pairs` as its context, and the key, context and plaintext
/// that made it.
async fn sample(
    byte: u8,
    pairs: &[(&str, &str)],
    len: usize,
) -> (DataKey, BTreeMap<String, String>, Vec<u8>, Vec<u8>) {
    let key = data_key(byte);
    let context = ctx(pairs);
    let plain = plaintext(len);
    let message = encrypt(&key, &context, &plain).await;
    (key, context, plain, message)
}

/// Every write the decryptor made, in order: what a consumer received before any error.
#[derive(Default)]
struct Recorder {
    writes: Vec<Vec<u8>>,
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.push(buf.to_vec());
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Recorder {
    fn received(&self) -> Vec<u8> {
        self.writes.concat()
    }
}

/// Decrypts `message`; returns the result and everything the writer received.
async fn decrypt(
    key: &DataKey,
    context: &BTreeMap<String, String>,
    message: &[u8],
) -> (Result<EnvelopeSummary, EnvelopeError>, Vec<u8>) {
    let mut reader = message;
    let mut recorder = Recorder::default();
    let result = match Header::read(&mut reader).await {
        Ok(header) => {
            decrypt_stream(
                &header,
                context,
                key.plaintext(),
                &mut reader,
                &mut recorder,
            )
            .await
        }
        Err(e) => Err(e),
    };
    (result, recorder.received())
}

/// The byte ranges of the frames of a message of `len` plaintext bytes.
fn frames(message: &[u8], len: usize) -> (usize, Vec<std::ops::Range<usize>>) {
    let frame = FRAME as usize;
    let regular = len / frame;
    let final_len = len % frame;
    let total_frames = regular + 1;
    let frame_bytes = 1 + frame + TAG_LEN;
    let final_bytes = 1 + 4 + final_len + TAG_LEN;
    let header_len = message.len() - regular * frame_bytes - final_bytes;
    let mut ranges = Vec::new();
    for i in 0..total_frames {
        let start = header_len + i * frame_bytes;
        let end = if i == regular {
            start + final_bytes
        } else {
            start + frame_bytes
        };
        ranges.push(start..end);
    }
    (header_len, ranges)
}

/// Whether `received` is the plaintext of the first whole frames of `plain`.
fn is_whole_frame_prefix(received: &[u8], plain: &[u8]) -> bool {
    received.len() % FRAME as usize == 0 && plain.starts_with(received)
}

#[tokio::test]
async fn round_trips_at_every_size_around_the_frame_size() {
    let key = data_key(7);
    let context = ctx(&[("tenant", "acme"), ("purpose", "backup")]);
    let frame = FRAME as usize;
    for (len, frames) in [
        (0, 1),
        (1, 1),
        (frame - 1, 1),
        (frame, 2),
        (frame + 1, 2),
        (5 * frame + 3, 6),
    ] {
        let plain = plaintext(len);
        let message = encrypt(&key, &context, &plain).await;
        let (result, received) = decrypt(&key, &context, &message).await;
        let summary = result.unwrap_or_else(|e| panic!("size {len}: {e}"));
        assert_eq!(received, plain, "size {len}");
        assert_eq!(summary.plaintext_bytes, len as u64);
        assert_eq!(summary.frames, frames, "size {len}");
        assert_eq!(summary.key_id, "key-1");
    }
}

#[tokio::test]
async fn a_stream_much_larger_than_a_frame_round_trips_through_pipes() {
    let key = data_key(3);
    let context = ctx(&[]);
    let len = 3 * DEFAULT_FRAME_SIZE as usize + 12_345;
    let plain = plaintext(len);
    let (mut enc_in, mut enc_in_rx) = tokio::io::duplex(4096);
    let (mut enc_out, mut dec_in) = tokio::io::duplex(4096);
    let writer_plain = plain.clone();
    let feed = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        enc_in.write_all(&writer_plain).await.unwrap();
    });
    let encrypt_key = key.clone();
    let encrypt_context = context.clone();
    let encrypting = tokio::spawn(async move {
        encrypt_stream(
            &encrypt_key,
            &encrypt_context,
            DEFAULT_FRAME_SIZE,
            &mut enc_in_rx,
            &mut enc_out,
        )
        .await
    });
    let header = Header::read(&mut dec_in).await.unwrap();
    let mut out = Vec::new();
    let summary = decrypt_stream(&header, &context, key.plaintext(), &mut dec_in, &mut out)
        .await
        .unwrap();
    feed.await.unwrap();
    encrypting.await.unwrap().unwrap();
    assert_eq!(summary.plaintext_bytes, len as u64);
    assert!(out == plain);
}

#[tokio::test]
async fn truncation_is_reported_and_only_whole_authenticated_frames_were_released() {
    let len = 3 * FRAME as usize + 10;
    let (key, context, plain, message) = sample(1, &[("a", "b")], len).await;
    let (header_len, ranges) = frames(&message, len);
    let last = ranges.last().unwrap().clone();
    // The final frame cut short, missing entirely, or cut right after its kind byte.
    for cut in [
        message.len() - 1,
        last.start,
        last.start + 1,
        last.start + 3,
    ] {
        let (result, received) = decrypt(&key, &context, &message[..cut]).await;
        assert!(
            matches!(result, Err(EnvelopeError::Truncated { frame: 4 })),
            "cut at {cut}: {result:?}"
        );
        assert_eq!(received, plain[..3 * FRAME as usize], "cut at {cut}");
    }
    // Cut inside a regular frame: only the frames before it.
    let (result, received) = decrypt(&key, &context, &message[..ranges[1].start + 10]).await;
    assert!(
        matches!(result, Err(EnvelopeError::Truncated { frame: 2 })),
        "{result:?}"
    );
    assert_eq!(received, plain[..FRAME as usize]);
    // Cut inside the header.
    let (result, received) = decrypt(&key, &context, &message[..header_len - 1]).await;
    assert!(
        matches!(result, Err(EnvelopeError::TruncatedHeader { .. })),
        "{result:?}"
    );
    assert!(received.is_empty());
}

#[tokio::test]
async fn dropped_swapped_and_spliced_frames_fail_to_authenticate() {
    let len = 4 * FRAME as usize + 5;
    let (key, context, plain, message) = sample(2, &[("a", "b")], len).await;
    let (header_len, ranges) = frames(&message, len);
    let piece = |i: usize| message[ranges[i].clone()].to_vec();
    let header = message[..header_len].to_vec();

    // A frame from another message under the same data key, at the same position.
    let other = encrypt(&key, &context, &plaintext(len)).await;
    let (other_header_len, other_ranges) = frames(&other, len);
    assert_eq!(other_header_len, header_len);
    let other_second = other[other_ranges[1].clone()].to_vec();

    for (case, pieces) in [
        ("dropped", vec![piece(0), piece(2), piece(3), piece(4)]),
        (
            "swapped",
            vec![piece(0), piece(2), piece(1), piece(3), piece(4)],
        ),
        (
            "spliced",
            vec![piece(0), other_second, piece(2), piece(3), piece(4)],
        ),
    ] {
        let altered = [header.clone(), pieces.concat()].concat();
        let (result, received) = decrypt(&key, &context, &altered).await;
        assert!(
            matches!(result, Err(EnvelopeError::FrameAuthentication { frame: 2 })),
            "{case}: {result:?}"
        );
        assert_eq!(received, plain[..FRAME as usize], "{case}");
    }

    // A regular frame promoted to final by dropping everything after it and rewriting its
    // kind byte does not authenticate either.
    let mut promoted = [header, piece(0), piece(1)].concat();
    let kind_at = header_len + ranges[1].start - ranges[0].start;
    promoted[kind_at] = FRAME_FINAL;
    let (result, received) = decrypt(&key, &context, &promoted).await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(received, plain[..FRAME as usize]);

    let mut trailing = message.clone();
    trailing.push(0);
    let (result, received) = decrypt(&key, &context, &trailing).await;
    assert!(
        matches!(result, Err(EnvelopeError::TrailingData)),
        "{result:?}"
    );
    assert_eq!(
        received,
        plain[..4 * FRAME as usize],
        "the final frame is withheld"
    );
}

#[tokio::test]
async fn flipping_any_bit_fails_and_releases_only_authenticated_frames() {
    let len = 2 * FRAME as usize + 7;
    let (key, context, plain, message) = sample(9, &[("tenant", "acme")], len).await;
    for byte in 0..message.len() {
        for bit in 0..8 {
            let mut altered = message.clone();
            altered[byte] ^= 1 << bit;
            let (result, received) = decrypt(&key, &context, &altered).await;
            assert!(
                result.is_err(),
                "flip of byte {byte} bit {bit} went unnoticed"
            );
            assert!(
                is_whole_frame_prefix(&received, &plain),
                "flip of byte {byte} bit {bit} released {} unauthenticated bytes",
                received.len()
            );
        }
    }
}

#[tokio::test]
async fn another_context_or_data_key_is_refused_before_any_output() {
    let key = data_key(4);
    let context = ctx(&[("tenant", "acme")]);
    let message = encrypt(&key, &context, &plaintext(100)).await;
    for wrong in [
        ctx(&[]),
        ctx(&[("tenant", "other")]),
        ctx(&[("tenant", "acme"), ("x", "y")]),
    ] {
        let (result, received) = decrypt(&key, &wrong, &message).await;
        assert!(
            matches!(result, Err(EnvelopeError::ContextMismatch)),
            "{result:?}"
        );
        assert!(received.is_empty());
    }
    let (result, received) = decrypt(&data_key(5), &context, &message).await;
    assert!(
        matches!(result, Err(EnvelopeError::HeaderAuthentication)),
        "{result:?}"
    );
    assert!(received.is_empty());
    let mut other_version = message.clone();
    other_version[0] = 2;
    let (result, _) = decrypt(&key, &context, &other_version).await;
    assert!(
        matches!(
            result,
            Err(EnvelopeError::UnsupportedVersion {
                found: 2,
                expected: 1
            })
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let mut out = Vec::new();
    for size in [0, MAX_FRAME_SIZE + 1] {
        let result = encrypt_stream(&data_key(1), &ctx(&[]), size, &mut &b"x"[..], &mut out).await;
        assert!(
            matches!(result, Err(EnvelopeError::FrameSize { .. })),
            "{result:?}"
        );
    }
    let short = DataKey::new(Zeroizing::new(vec![0; 16]), vec![1], "k".into());
    assert!(matches!(
        short,
        Err(EnvelopeError::DataKeyLength { len: 16 })
    ));
    assert!(!format!("{:?}", data_key(0x41)).contains("65"));
}

/// The documented test vector (`docs/envelope-vector.json`).
struct Vector {
    data_key: DataKey,
    message_id: [u8; MESSAGE_ID_LEN],
    frame_size: u32,
    context: BTreeMap<String, String>,
    plaintext: Vec<u8>,
    message: Vec<u8>,
}

fn vector() -> Vector {
    let text = include_str!("../../../../docs/envelope-vector.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let bytes = |name: &str| hex::decode(v[name].as_str().unwrap()).unwrap();
    Vector {
        data_key: DataKey::new(
            Zeroizing::new(bytes("data_key")),
            bytes("wrapped_key"),
            v["key_id"].as_str().unwrap().to_owned(),
        )
        .unwrap(),
        message_id: bytes("message_id").try_into().unwrap(),
        frame_size: u32::try_from(v["frame_size"].as_u64().unwrap()).unwrap(),
        context: serde_json::from_value(v["context"].clone()).unwrap(),
        plaintext: bytes("plaintext"),
        message: bytes("message"),
    }
}

#[tokio::test]
async fn the_documented_vector_decrypts_and_is_reproduced_byte_for_byte() {
    let v = vector();
    let (result, received) = decrypt(&v.data_key, &v.context, &v.message).await;
    let summary = result.unwrap();
    assert_eq!(received, v.plaintext);
    assert_eq!(summary.frames, 3);
    assert_eq!(summary.key_id, "vector-key");
    let mut again = Vec::new();
    encrypt_with_message_id(
        &v.data_key,
        &v.context,
        v.frame_size,
        v.message_id,
        &mut v.plaintext.as_slice(),
        &mut again,
    )
    .await
    .unwrap();
    assert_eq!(hex::encode(again), hex::encode(&v.message));
}

#[test]
fn an_independent_python_implementation_agrees_with_the_vector() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let out = std::process::Command::new("python3")
        .arg(docs.join("envelope-check.py"))
        .arg(docs.join("envelope-vector.json"))
        .output()
        .unwrap_or_else(|e| panic!("python3 with `cryptography` must be installed: {e}"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// Not a timed assertion: prints envelope encryption's throughput next to raw AES-256-GCM
/// over the same bytes in the same build (`cargo test -p tessera-client --lib throughput --
/// --nocapture`).
#[tokio::test]
async fn throughput_next_to_raw_aes_gcm() {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use tokio::io::AsyncReadExt;
    const TOTAL: u64 = 64 << 20;
    let mib =
        |elapsed: std::time::Duration| TOTAL as f64 / f64::from(1 << 20) / elapsed.as_secs_f64();

    let started = std::time::Instant::now();
    let mut input = tokio::io::repeat(7).take(TOTAL);
    let summary = encrypt_stream(
        &data_key(1),
        &ctx(&[]),
        DEFAULT_FRAME_SIZE,
        &mut input,
        &mut tokio::io::sink(),
    )
    .await
    .unwrap();
    let envelope = mib(started.elapsed());
    assert_eq!(summary.plaintext_bytes, TOTAL);

    let cipher = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    let mut frame = vec![7u8; DEFAULT_FRAME_SIZE as usize];
    let started = std::time::Instant::now();
    for n in 0..TOTAL / u64::from(DEFAULT_FRAME_SIZE) {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        cipher
            .encrypt_inout_detached(&nonce.into(), b"aad", frame.as_mut_slice().into())
            .unwrap();
    }
    let raw = mib(started.elapsed());
    println!(
        "envelope encrypt_stream: {envelope:.0} MiB/s; raw AES-256-GCM, 64 KiB frames: {raw:.0} MiB/s"
    );
}
