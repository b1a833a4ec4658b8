//! Customer ciphertexts: AES-256-GCM under a per-message key derived from
//! the key version, in the style of AWS KMS.
//!
//! Layout (version 1):
//!
//! ```text
//! [0x01][key_id_len: u8][key_id: 1..=64 bytes printable ASCII][version: u32 BE]
//! [salt: 32][nonce: 12][ciphertext || tag: 16]
//! ```
//!
//! The message key is
//! `HKDF-SHA256(ikm = version key, salt, info = "tessera/v1/encrypt" || 0x00 || key_id || 0x00 || version BE)`,
//! so the version key never encrypts directly and a fresh random salt gives
//! every message its own key (lifting the random-nonce limit of GCM). The
//! GCM associated data is every header byte (everything before the
//! ciphertext) followed by the encryption context's canonical bytes, so
//! neither the header nor the context can be changed.

use rand_core::CryptoRng;

use crate::error::{plaintext_at_most, versioned_header};
use crate::gcm::{self, NONCE_LEN, TAG_LEN};
use crate::{kdf, EncryptionContext, Error, KeyVersion, SecretBytes, SecretKey256};

/// Version byte of the only ciphertext layout so far.
pub const CIPHERTEXT_V1: u8 = 0x01;

/// Largest plaintext [`encrypt`] accepts (64 KiB). KMS encrypts keys and
/// small secrets; bulk data should be envelope-encrypted under a data key.
pub const MAX_PLAINTEXT_BYTES: usize = 65536;

/// Longest key id that fits in a ciphertext header.
pub const MAX_KEY_ID_LEN: usize = 64;

const INFO_LABEL: &[u8] = b"tessera/v1/encrypt";
const SALT_LEN: usize = 32;

/// What a ciphertext says about the key that decrypts it. Read it with
/// [`parse_header`] to find the key before calling [`decrypt`]; it is not
/// authenticated until [`decrypt`] succeeds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CiphertextHeader {
    /// Id of the key the ciphertext was made under.
    pub key_id: String,
    /// Version of that key.
    pub version: KeyVersion,
}

/// A structurally valid ciphertext, borrowed in parts.
struct Parsed<'a> {
    header: &'a [u8],
    key_id: &'a str,
    version: KeyVersion,
    salt: &'a [u8; SALT_LEN],
    nonce: &'a [u8; NONCE_LEN],
    body: &'a [u8],
    tag: &'a [u8; TAG_LEN],
}

/// Whether `key_id` can be written into a ciphertext header: 1 to 64
/// bytes, each printable ASCII other than space (`!`..=`~`).
pub fn is_valid_key_id(key_id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&key_id.len()) && key_id.bytes().all(|b| b.is_ascii_graphic())
}

fn message_key(
    version_key: &SecretKey256,
    key_id: &str,
    version: KeyVersion,
    salt: &[u8; SALT_LEN],
) -> Result<SecretKey256, Error> {
    let mut info = Vec::with_capacity(INFO_LABEL.len() + 2 + key_id.len() + 4);
    info.extend_from_slice(INFO_LABEL);
    info.push(0);
    info.extend_from_slice(key_id.as_bytes());
    info.push(0);
    info.extend_from_slice(&version.to_be_bytes());
    kdf::derive_subkey(version_key, salt, &info)
}

fn gcm_aad(header: &[u8], context: &EncryptionContext) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&context.canonical_bytes());
    aad
}

fn parse(ciphertext: &[u8]) -> Result<Parsed<'_>, Error> {
    const HEADER: Error = Error::Malformed {
        what: "ciphertext header",
    };
    let (_, rest) = versioned_header::<1>(ciphertext, CIPHERTEXT_V1, "ciphertext", HEADER)?;
    let (&key_id_len, rest) = rest.split_first().ok_or(HEADER)?;
    let (key_id, rest) = rest
        .split_at_checked(usize::from(key_id_len))
        .ok_or(HEADER)?;
    let key_id = core::str::from_utf8(key_id)
        .ok()
        .filter(|key_id| is_valid_key_id(key_id))
        .ok_or(Error::Malformed {
            what: "ciphertext key id",
        })?;
    let (version, rest) = rest.split_first_chunk::<4>().ok_or(HEADER)?;
    let (salt, rest) = rest.split_first_chunk::<SALT_LEN>().ok_or(HEADER)?;
    let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>().ok_or(HEADER)?;
    let header_len = ciphertext.len() - rest.len();
    let header = ciphertext.get(..header_len).ok_or(HEADER)?;
    let (body, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(Error::Malformed {
        what: "ciphertext body",
    })?;
    Ok(Parsed {
        header,
        key_id,
        version: KeyVersion::from_be_bytes(*version),
        salt,
        nonce,
        body,
        tag,
    })
}

/// Reads which key and version a ciphertext was made under, so the caller
/// can fetch that key version and call [`decrypt`].
///
/// Errors: [`Error::Malformed`] (`"ciphertext header"` if truncated within
/// the header, `"ciphertext key id"` for a bad key id, `"ciphertext body"`
/// if shorter than a tag), [`Error::UnsupportedVersion`] for an unknown
/// first byte.
pub fn parse_header(ciphertext: &[u8]) -> Result<CiphertextHeader, Error> {
    parse(ciphertext).map(|parsed| CiphertextHeader {
        key_id: parsed.key_id.to_owned(),
        version: parsed.version,
    })
}

/// Encrypts `plaintext` under version `version` of key `key_id`, whose
/// material is `version_key`, binding `context`.
///
/// Errors: [`Error::InvalidKeyId`] (see [`is_valid_key_id`]),
/// [`Error::EmptyPlaintext`], [`Error::PlaintextTooLarge`] above
/// [`MAX_PLAINTEXT_BYTES`], [`Error::InvalidContext`] from
/// [`EncryptionContext::validate`].
pub fn encrypt(
    version_key: &SecretKey256,
    key_id: &str,
    version: KeyVersion,
    context: &EncryptionContext,
    plaintext: &[u8],
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Vec<u8>, Error> {
    if !is_valid_key_id(key_id) {
        return Err(Error::InvalidKeyId);
    }
    if plaintext.is_empty() {
        return Err(Error::EmptyPlaintext);
    }
    plaintext_at_most(plaintext, MAX_PLAINTEXT_BYTES)?;
    context.validate()?;
    let key_id_len = u8::try_from(key_id.len()).map_err(|_| Error::InvalidKeyId)?;

    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let message_key = message_key(version_key, key_id, version, &salt)?;

    let header_len = 2 + key_id.len() + 4 + SALT_LEN + NONCE_LEN;
    let mut out = Vec::with_capacity(header_len + plaintext.len() + TAG_LEN);
    out.push(CIPHERTEXT_V1);
    out.push(key_id_len);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let aad = gcm_aad(&out, context);
    gcm::seal_appended(
        &message_key,
        &nonce,
        &aad,
        out,
        plaintext,
        MAX_PLAINTEXT_BYTES,
    )
}

/// Decrypts a ciphertext made by [`encrypt`] with the key version its
/// header names (see [`parse_header`]) and the same context.
///
/// Structural problems give the errors of [`parse_header`]; an invalid
/// context gives [`Error::InvalidContext`]; a wrong key, wrong context or
/// any tampering gives the opaque [`Error::Decrypt`].
pub fn decrypt(
    version_key: &SecretKey256,
    ciphertext: &[u8],
    context: &EncryptionContext,
) -> Result<SecretBytes, Error> {
    let parsed = parse(ciphertext)?;
    context.validate()?;
    let message_key = message_key(version_key, parsed.key_id, parsed.version, parsed.salt)?;
    gcm::open_detached(
        &message_key,
        parsed.nonce,
        &gcm_aad(parsed.header, context),
        parsed.body,
        parsed.tag,
    )
    .map_err(|_| Error::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{reference_blob, repeated_key as key, seeded_rng, truncation_error};
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng() -> ChaCha20Rng {
        seeded_rng(11)
    }

    fn context() -> EncryptionContext {
        EncryptionContext::from_pairs([("tenant", "acme"), ("purpose", "test")])
    }

    fn sample() -> Vec<u8> {
        encrypt(
            &key(1),
            "key-1",
            KeyVersion::new(3),
            &context(),
            b"attack at dawn",
            &mut rng(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let ct = sample();
        assert_eq!(
            decrypt(&key(1), &ct, &context()).unwrap().as_slice(),
            b"attack at dawn"
        );
        assert_eq!(
            parse_header(&ct).unwrap(),
            CiphertextHeader {
                key_id: "key-1".to_owned(),
                version: KeyVersion::new(3)
            }
        );
        assert_eq!(ct.len(), 2 + 5 + 4 + 32 + 12 + 14 + 16);
    }

    #[test]
    fn round_trip_with_empty_context_and_max_plaintext() {
        let plaintext = vec![0x5a; MAX_PLAINTEXT_BYTES];
        let empty = EncryptionContext::default();
        let ct = encrypt(
            &key(1),
            "k",
            KeyVersion::NONE,
            &empty,
            &plaintext,
            &mut rng(),
        )
        .unwrap();
        assert_eq!(decrypt(&key(1), &ct, &empty).unwrap().as_slice(), plaintext);
    }

    #[test]
    fn every_bit_flip_fails() {
        let ct = sample();
        for index in 0..ct.len() {
            for bit in 0..8 {
                let mut tampered = ct.clone();
                *tampered.get_mut(index).unwrap() ^= 1 << bit;
                assert!(
                    decrypt(&key(1), &tampered, &context()).is_err(),
                    "flip of bit {bit} in byte {index} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn every_truncation_fails_without_panic() {
        let ct = sample();
        let header_len = 2 + 5 + 4 + 32 + 12;
        for len in 0..ct.len() {
            let truncated = ct.get(..len).unwrap();
            let result = decrypt(&key(1), truncated, &context());
            let expected =
                truncation_error(len, header_len, "ciphertext header", "ciphertext body");
            // A truncation inside the key id leaves a key id that is too
            // short for its length byte: still a truncated header.
            assert_eq!(result, Err(expected), "length {len}");
        }
    }

    #[test]
    fn context_must_match_exactly() {
        let ct = sample();
        let wrong_value = EncryptionContext::from_pairs([("tenant", "evil"), ("purpose", "test")]);
        let missing = EncryptionContext::from_pairs([("tenant", "acme")]);
        let extra =
            EncryptionContext::from_pairs([("tenant", "acme"), ("purpose", "test"), ("extra", "")]);
        for wrong in [wrong_value, missing, extra, EncryptionContext::default()] {
            assert_eq!(decrypt(&key(1), &ct, &wrong), Err(Error::Decrypt));
        }
    }

    #[test]
    fn ciphertext_of_one_key_does_not_decrypt_as_another() {
        let mut rng = rng();
        let a = encrypt(
            &key(1),
            "key-a",
            KeyVersion::FIRST,
            &context(),
            b"for a",
            &mut rng,
        )
        .unwrap();
        // Wrong material for the right id.
        assert_eq!(decrypt(&key(2), &a, &context()), Err(Error::Decrypt));

        // Right material, but the header relabelled to key B (same length id).
        let mut relabelled = a.clone();
        relabelled.splice(2..7, *b"key-b");
        assert_eq!(parse_header(&relabelled).unwrap().key_id, "key-b");
        assert_eq!(
            decrypt(&key(1), &relabelled, &context()),
            Err(Error::Decrypt)
        );

        // Relabelled to another version of the same key.
        let mut other_version = a.clone();
        other_version.splice(7..11, 2u32.to_be_bytes());
        assert_eq!(
            decrypt(&key(1), &other_version, &context()),
            Err(Error::Decrypt)
        );
    }

    #[test]
    fn input_rules() {
        let mut rng = rng();
        let ctx = context();
        assert_eq!(
            encrypt(&key(1), "k", KeyVersion::FIRST, &ctx, b"", &mut rng),
            Err(Error::EmptyPlaintext)
        );
        let big = vec![0; MAX_PLAINTEXT_BYTES + 1];
        assert_eq!(
            encrypt(&key(1), "k", KeyVersion::FIRST, &ctx, &big, &mut rng),
            Err(Error::PlaintextTooLarge {
                len: MAX_PLAINTEXT_BYTES + 1,
                max: MAX_PLAINTEXT_BYTES
            })
        );
        let too_long = "k".repeat(MAX_KEY_ID_LEN + 1);
        for bad in [
            "",
            "has space",
            "tab\t",
            "ünïcode",
            "nul\0",
            too_long.as_str(),
        ] {
            assert_eq!(
                encrypt(&key(1), bad, KeyVersion::FIRST, &ctx, b"x", &mut rng),
                Err(Error::InvalidKeyId),
                "{bad:?}"
            );
        }
        let longest = "k".repeat(MAX_KEY_ID_LEN);
        assert!(encrypt(&key(1), &longest, KeyVersion::FIRST, &ctx, b"x", &mut rng).is_ok());
        let bad_context = EncryptionContext::from_pairs([("", "v")]);
        assert_eq!(
            encrypt(
                &key(1),
                "k",
                KeyVersion::FIRST,
                &bad_context,
                b"x",
                &mut rng
            ),
            Err(Error::InvalidContext {
                reason: "empty key"
            })
        );
        let ct = sample();
        assert_eq!(
            decrypt(&key(1), &ct, &bad_context),
            Err(Error::InvalidContext {
                reason: "empty key"
            })
        );
    }

    #[test]
    fn header_parsing_errors() {
        let ct = sample();
        let mut bad_version = ct.clone();
        bad_version[0] = 0x02;
        assert_eq!(
            parse_header(&bad_version),
            Err(Error::UnsupportedVersion {
                what: "ciphertext",
                version: 2
            })
        );
        assert_eq!(
            parse_header(&[]),
            Err(Error::Malformed {
                what: "ciphertext header"
            })
        );
        let key_id_error = Err(Error::Malformed {
            what: "ciphertext key id",
        });
        let mut empty_id = vec![CIPHERTEXT_V1, 0];
        empty_id.extend_from_slice(&[0; 4 + 32 + 12 + 16]);
        assert_eq!(parse_header(&empty_id), key_id_error);
        let mut space_id = ct.clone();
        space_id[3] = b' ';
        assert_eq!(parse_header(&space_id), key_id_error);
        let mut non_ascii = ct.clone();
        non_ascii[3] = 0xc3;
        assert_eq!(parse_header(&non_ascii), key_id_error);
        let mut long_id = vec![CIPHERTEXT_V1, 65];
        long_id.extend_from_slice(&[b'k'; 65]);
        long_id.extend_from_slice(&[0; 4 + 32 + 12 + 16]);
        assert_eq!(parse_header(&long_id), key_id_error);
    }

    /// Pins the exact bytes for a fixed rng, so any change to the layout,
    /// derivation or AAD is caught.
    #[test]
    fn fixed_seed_vector() {
        let mut rng = ChaCha20Rng::from_seed([0x42; 32]);
        let version_key = SecretKey256::from_bytes(core::array::from_fn(|i| i as u8));
        let context = EncryptionContext::from_pairs([("tenant", "acme")]);
        let plaintext = b"tessera test vector";
        let ct = encrypt(
            &version_key,
            "key-1",
            KeyVersion::new(7),
            &context,
            plaintext,
            &mut rng,
        )
        .unwrap();
        assert_eq!(hex::encode(&ct), EXPECTED_VECTOR);
        assert_eq!(
            decrypt(&version_key, &ct, &context).unwrap().as_slice(),
            plaintext
        );
    }

    /// Independently checked when pinned: decrypted with Python's
    /// `hmac`/`hashlib` HKDF and `cryptography`'s AESGCM from the layout
    /// documented above.
    const EXPECTED_VECTOR: &str = concat!(
        "01056b65792d3100000007",
        "a4ddf31f7f32ba696f14ce50ecf3f21e3e100e83bdf47966e7b07468e9500b6e",
        "e106b40d369f5c94f5dd2a13",
        "14d55d7424b903fc01fda96f151486dbdf796a",
        "4aaa401e2775e92c7cb8db22da1ced4f",
    );

    /// Rebuilds a ciphertext from the documented layout with the
    /// underlying primitives directly, independently of [`encrypt`].
    #[test]
    fn layout_matches_documentation() {
        use hkdf::Hkdf;
        use sha2::Sha256;

        let version_key = key(9);
        let ctx = context();
        let ct = encrypt(
            &version_key,
            "doc",
            KeyVersion::new(5),
            &ctx,
            b"plain",
            &mut rng(),
        )
        .unwrap();

        let mut draws = rng();
        let mut salt = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut draws, &mut salt);
        let mut nonce = [0u8; 12];
        rand_core::Rng::fill_bytes(&mut draws, &mut nonce);

        let mut header = vec![0x01, 3];
        header.extend_from_slice(b"doc");
        header.extend_from_slice(&[0, 0, 0, 5]);
        header.extend_from_slice(&salt);
        header.extend_from_slice(&nonce);

        let mut message_key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&salt), version_key.as_bytes())
            .expand(b"tessera/v1/encrypt\0doc\0\0\0\0\x05", &mut message_key)
            .unwrap();
        let expected = reference_blob(
            &message_key,
            &nonce,
            header,
            &ctx.canonical_bytes(),
            b"plain",
        );
        assert_eq!(ct, expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trips(
            key_bytes in any::<[u8; 32]>(),
            seed in any::<[u8; 32]>(),
            key_id in "[!-~]{1,64}",
            version in any::<u32>(),
            pairs in proptest::collection::btree_map("[a-z]{1,8}", ".{0,16}", 0..5),
            plaintext in proptest::collection::vec(any::<u8>(), 1..512),
        ) {
            let key = SecretKey256::from_bytes(key_bytes);
            let context = EncryptionContext::new(pairs);
            let mut rng = ChaCha20Rng::from_seed(seed);
            let ct = encrypt(&key, &key_id, KeyVersion::new(version), &context, &plaintext, &mut rng).unwrap();
            let header = parse_header(&ct).unwrap();
            prop_assert_eq!(header.key_id, key_id);
            prop_assert_eq!(header.version.get(), version);
            let decrypted = decrypt(&key, &ct, &context).unwrap();
            prop_assert_eq!(decrypted.as_slice(), plaintext.as_slice());
        }
    }
}
