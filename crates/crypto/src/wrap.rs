//! Key wrapping for export and BYOK import: ECIES over X25519.
//!
//! Whoever holds an X25519 public key can wrap secret bytes (key
//! material) so that only the holder of the matching private key can
//! unwrap them. Tessera uses it in both directions: it exports key
//! material to a customer's wrapping key, and customers import (BYOK)
//! material wrapped to a wrapping key Tessera generated.
//!
//! Blob layout (version 1):
//!
//! ```text
//! [0x01][ephemeral public key: 32][nonce: 12][ciphertext || tag: 16]
//! ```
//!
//! The sender draws an ephemeral X25519 key `e` and computes:
//!
//! ```text
//! shared = X25519(e, recipient_pub)                  (all zero: refused)
//! K      = HKDF-SHA256(ikm = shared,
//!                      salt = ephemeral_pub || recipient_pub,
//!                      info = "tessera/v1/wrap")      (32 bytes)
//! body   = AES-256-GCM(K, nonce, plaintext, aad = header || aad)
//! ```
//!
//! where `header` is the first 45 bytes of the blob. Both public keys go
//! into the KDF so the key is bound to this exact pair, the header is
//! authenticated so no part can be swapped, and the caller's `aad` (for
//! example the key id and spec) binds the blob to its purpose. This uses
//! only standard primitives, so any X25519 + HKDF + AES-GCM library can
//! produce or open blobs (see `tests/interop_python.rs`).
//!
//! There is no sender authentication (as in every ECIES): anyone with the
//! public key can wrap. Callers authorize imports by other means.

use rand_core::CryptoRng;
use spki::der::Decode;
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{aad_at_most, plaintext_at_most, versioned_header};
use crate::gcm::{self, NONCE_LEN, TAG_LEN};
use crate::secret::KEY_LEN;
use crate::{kdf, pem, Error, SecretBytes, SecretKey256};

/// Version byte of the only wrapped-key layout so far.
pub const WRAP_V1: u8 = 0x01;

/// Largest plaintext, and separately largest caller AAD, [`wrap`] accepts
/// (64 KiB): far more than any key, small enough to refuse garbage early.
pub const MAX_WRAP_INPUT_BYTES: usize = 65536;

/// Length of an X25519 public or private key.
pub const X25519_KEY_LEN: usize = 32;

/// The X25519 algorithm identifier, id-X25519 (RFC 8410).
const ID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");

const INFO: &[u8] = b"tessera/v1/wrap";
const HEADER_LEN: usize = 1 + X25519_KEY_LEN + NONCE_LEN;

/// DER prefix of an X25519 SubjectPublicKeyInfo: `SEQUENCE { SEQUENCE {
/// OID 1.3.101.110 }, BIT STRING (0 unused bits) }`, followed by the key.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];

/// A fresh X25519 wrapping key pair: the private key (as it is stored,
/// sealed) and its public key (as it is handed out, see
/// [`x25519_public_key_der`]).
pub fn generate_wrapping_key(rng: &mut (impl CryptoRng + ?Sized)) -> (SecretKey256, [u8; 32]) {
    let secret = SecretKey256::generate(rng);
    let public = x25519_public_key(&secret);
    (secret, public)
}

/// The X25519 public key of a private key.
fn x25519_public_key(secret: &SecretKey256) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret.as_bytes())).to_bytes()
}

/// X25519 (RFC 7748) of a stored private key with a peer's public key, or `None` when the
/// result is all zero: a peer key of small order, whose "shared" secret anyone could compute.
pub(crate) fn x25519_agree(secret: &SecretKey256, peer: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    let shared = StaticSecret::from(*secret.as_bytes()).diffie_hellman(&PublicKey::from(*peer));
    shared
        .was_contributory()
        .then(|| Zeroizing::new(*shared.as_bytes()))
}

/// Reads a recipient's X25519 public key, as customers tend to have it:
/// 32 raw bytes, SubjectPublicKeyInfo DER (id-X25519, RFC 8410), or that
/// DER armoured as PEM `PUBLIC KEY`.
///
/// Anything else, including an SPKI for another algorithm, trailing
/// bytes or parameters, is [`Error::InvalidPublicKey`].
pub fn parse_x25519_public_key(bytes: &[u8]) -> Result<[u8; 32], Error> {
    if let Ok(raw) = <[u8; X25519_KEY_LEN]>::try_from(bytes) {
        return Ok(raw);
    }
    if bytes.first() == Some(&0x30) {
        return parse_spki(bytes);
    }
    parse_spki(&pem::decode_public_key(bytes)?)
}

fn parse_spki(der: &[u8]) -> Result<[u8; 32], Error> {
    let info = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| Error::InvalidPublicKey)?;
    if info.algorithm.oid != ID_X25519 || info.algorithm.parameters.is_some() {
        return Err(Error::InvalidPublicKey);
    }
    info.subject_public_key
        .as_bytes()
        .and_then(|key| <[u8; X25519_KEY_LEN]>::try_from(key).ok())
        .ok_or(Error::InvalidPublicKey)
}

/// An X25519 public key as SubjectPublicKeyInfo DER (RFC 8410), the form
/// `openssl pkey -pubin` and most libraries load.
pub fn x25519_public_key_der(public: &[u8; 32]) -> Vec<u8> {
    let mut der = Vec::with_capacity(SPKI_PREFIX.len() + X25519_KEY_LEN);
    der.extend_from_slice(&SPKI_PREFIX);
    der.extend_from_slice(public);
    der
}

/// [`x25519_public_key_der`] armoured as PEM (`-----BEGIN PUBLIC KEY-----`).
pub fn x25519_public_key_pem(public: &[u8; 32]) -> String {
    pem::encode(pem::PUBLIC_KEY_LABEL, &x25519_public_key_der(public))
}

/// The AES key of a blob: HKDF-SHA256 of the shared secret, salted with
/// both public keys.
fn wrapping_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Result<SecretKey256, Error> {
    let mut salt = [0u8; 2 * X25519_KEY_LEN];
    let (eph, rec) = salt.split_at_mut(X25519_KEY_LEN);
    eph.copy_from_slice(ephemeral);
    rec.copy_from_slice(recipient);
    let mut key = SecretKey256::zero();
    kdf::hkdf_sha256(shared, &salt, INFO, key.as_mut_bytes())?;
    Ok(key)
}

fn gcm_aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(header.len() + aad.len());
    full.extend_from_slice(header);
    full.extend_from_slice(aad);
    full
}

/// Wraps `plaintext` to `recipient` (a public key, see
/// [`parse_x25519_public_key`]), bound to `aad`.
///
/// Errors: [`Error::EmptyPlaintext`], [`Error::PlaintextTooLarge`] and
/// [`Error::AadTooLarge`] above [`MAX_WRAP_INPUT_BYTES`], and
/// [`Error::InvalidPublicKey`] for a recipient key of small order (one
/// that makes the shared secret all zero, which anyone could compute).
pub fn wrap(
    recipient: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Vec<u8>, Error> {
    if plaintext.is_empty() {
        return Err(Error::EmptyPlaintext);
    }
    plaintext_at_most(plaintext, MAX_WRAP_INPUT_BYTES)?;
    aad_at_most(aad, MAX_WRAP_INPUT_BYTES)?;
    let ephemeral = EphemeralSecret::random_from_rng(rng);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(*recipient));
    if !shared.was_contributory() {
        return Err(Error::InvalidPublicKey);
    }
    let key = wrapping_key(shared.as_bytes(), &ephemeral_public, recipient)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);

    let mut blob = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    blob.push(WRAP_V1);
    blob.extend_from_slice(&ephemeral_public);
    blob.extend_from_slice(&nonce);
    let aad = gcm_aad(&blob, aad);
    gcm::seal_appended(&key, &nonce, &aad, blob, plaintext, MAX_WRAP_INPUT_BYTES)
}

/// Unwraps a blob made by [`wrap`] for the public key of
/// `recipient_secret`, with the same `aad`.
///
/// Errors: [`Error::Malformed`] (`"wrapped key header"` if shorter than
/// the header, `"wrapped key body"` if shorter than a tag),
/// [`Error::UnsupportedVersion`] for an unknown first byte, and the opaque
/// [`Error::Decrypt`] for a wrong key, wrong AAD, any tampering, or an
/// ephemeral key of small order.
pub fn unwrap(
    recipient_secret: &SecretKey256,
    aad: &[u8],
    wrapped: &[u8],
) -> Result<SecretBytes, Error> {
    const HEADER: Error = Error::Malformed {
        what: "wrapped key header",
    };
    let (header, body) = versioned_header::<HEADER_LEN>(wrapped, WRAP_V1, "wrapped key", HEADER)?;
    let (_, keys) = header.split_first_chunk::<1>().ok_or(HEADER)?;
    let (ephemeral_public, nonce) = keys.split_first_chunk::<X25519_KEY_LEN>().ok_or(HEADER)?;
    let nonce = <&[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| HEADER)?;
    let (ciphertext, tag) = body.split_last_chunk::<TAG_LEN>().ok_or(Error::Malformed {
        what: "wrapped key body",
    })?;

    let recipient_public = x25519_public_key(recipient_secret);
    let shared = x25519_agree(recipient_secret, ephemeral_public).ok_or(Error::Decrypt)?;
    let key = wrapping_key(&shared, ephemeral_public, &recipient_public)?;
    gcm::open_detached(&key, nonce, &gcm_aad(header, aad), ciphertext, tag)
        .map_err(|_| Error::Decrypt)
}

// `KEY_LEN` and `X25519_KEY_LEN` name the same size from two angles: a
// wrapping private key is stored as a `SecretKey256`.
const _: () = assert!(KEY_LEN == X25519_KEY_LEN);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{reference_blob, seeded_rng, truncation_error};
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        seeded_rng(21)
    }

    fn recipient(seed: u8) -> (SecretKey256, [u8; 32]) {
        generate_wrapping_key(&mut seeded_rng(seed))
    }

    #[test]
    fn round_trip() {
        let (secret, public) = recipient(1);
        let mut rng = rng();
        for plaintext in [
            &b"k"[..],
            &[7u8; 32],
            &[9u8; 64],
            &[1u8; MAX_WRAP_INPUT_BYTES],
        ] {
            let blob = wrap(&public, b"key-1/v1", plaintext, &mut rng).unwrap();
            assert_eq!(blob.len(), HEADER_LEN + plaintext.len() + TAG_LEN);
            assert_eq!(blob.first(), Some(&WRAP_V1));
            let opened = unwrap(&secret, b"key-1/v1", &blob).unwrap();
            assert_eq!(opened.as_slice(), plaintext);
        }
        // Empty AAD is allowed.
        let blob = wrap(&public, b"", b"material", &mut rng).unwrap();
        assert_eq!(unwrap(&secret, b"", &blob).unwrap().as_slice(), b"material");
    }

    #[test]
    fn blobs_are_fresh() {
        let (_, public) = recipient(1);
        let mut rng = rng();
        let a = wrap(&public, b"", b"same", &mut rng).unwrap();
        let b = wrap(&public, b"", b"same", &mut rng).unwrap();
        assert_ne!(a[1..33], b[1..33], "ephemeral keys must differ");
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_aad_or_recipient_fails() {
        let (secret, public) = recipient(1);
        let (other, _) = recipient(2);
        let blob = wrap(&public, b"key-1", b"material", &mut rng()).unwrap();
        assert_eq!(unwrap(&secret, b"key-2", &blob), Err(Error::Decrypt));
        assert_eq!(unwrap(&secret, b"", &blob), Err(Error::Decrypt));
        assert_eq!(unwrap(&other, b"key-1", &blob), Err(Error::Decrypt));
    }

    #[test]
    fn every_bit_flip_fails() {
        let (secret, public) = recipient(3);
        let blob = wrap(&public, b"aad", b"secret material", &mut rng()).unwrap();
        for index in 0..blob.len() {
            for bit in 0..8 {
                let mut tampered = blob.clone();
                tampered[index] ^= 1 << bit;
                let result = unwrap(&secret, b"aad", &tampered);
                let expected = if index == 0 {
                    Err(Error::UnsupportedVersion {
                        what: "wrapped key",
                        version: WRAP_V1 ^ (1 << bit),
                    })
                } else {
                    Err(Error::Decrypt)
                };
                assert_eq!(result, expected, "byte {index} bit {bit}");
            }
        }
    }

    #[test]
    fn every_truncation_fails_without_panic() {
        let (secret, public) = recipient(3);
        let blob = wrap(&public, b"aad", b"secret material", &mut rng()).unwrap();
        for len in 0..blob.len() {
            let expected =
                truncation_error(len, HEADER_LEN, "wrapped key header", "wrapped key body");
            assert_eq!(
                unwrap(&secret, b"aad", &blob[..len]),
                Err(expected),
                "{len}"
            );
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(unwrap(&secret, b"aad", &longer), Err(Error::Decrypt));
    }

    #[test]
    fn input_rules() {
        let (_, public) = recipient(4);
        let mut rng = rng();
        assert_eq!(
            wrap(&public, b"", b"", &mut rng),
            Err(Error::EmptyPlaintext)
        );
        let big = vec![0u8; MAX_WRAP_INPUT_BYTES + 1];
        assert_eq!(
            wrap(&public, b"", &big, &mut rng),
            Err(Error::PlaintextTooLarge {
                len: MAX_WRAP_INPUT_BYTES + 1,
                max: MAX_WRAP_INPUT_BYTES
            })
        );
        assert_eq!(
            wrap(&public, &big, b"x", &mut rng),
            Err(Error::AadTooLarge {
                len: MAX_WRAP_INPUT_BYTES + 1,
                max: MAX_WRAP_INPUT_BYTES
            })
        );
    }

    /// Small-order points of Curve25519 (u-coordinates, libsodium's list),
    /// whose shared secret is all zero with any private key.
    fn small_order_points() -> Vec<[u8; 32]> {
        let mut one = [0u8; 32];
        one[0] = 1;
        // p - 1, p and p + 1 (the last two non-canonical encodings of 0
        // and 1), with p = 2^255 - 19 little-endian.
        let near_p = |low: u8| {
            let mut u = [0xffu8; 32];
            u[0] = low;
            u[31] = 0x7f;
            u
        };
        vec![
            [0u8; 32],
            one,
            hex_array("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            hex_array("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
            near_p(0xec),
            near_p(0xed),
            near_p(0xee),
        ]
    }

    fn hex_array(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn small_order_keys_are_refused() {
        let (secret, public) = recipient(5);
        let mut rng = rng();
        for point in small_order_points() {
            assert_eq!(
                wrap(&point, b"", b"material", &mut rng),
                Err(Error::InvalidPublicKey),
                "{point:02x?}"
            );
            // A blob whose ephemeral key is of small order: its AES key
            // would be computable by anyone, so it is refused, opaquely.
            let mut blob = wrap(&public, b"", b"material", &mut rng).unwrap();
            blob[1..33].copy_from_slice(&point);
            assert_eq!(unwrap(&secret, b"", &blob), Err(Error::Decrypt));
        }
    }

    #[test]
    fn layout_matches_documentation() {
        // Rebuilds a blob from the documented construction with the
        // underlying primitives directly.
        let (secret, public) = recipient(6);
        let blob = wrap(&public, b"ctx", b"plain", &mut rng()).unwrap();

        let mut draws = rng();
        let ephemeral = EphemeralSecret::random_from_rng(&mut draws);
        let mut nonce = [0u8; 12];
        rand_core::Rng::fill_bytes(&mut draws, &mut nonce);
        let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
        let shared = ephemeral.diffie_hellman(&PublicKey::from(public));

        let mut salt = ephemeral_public.to_vec();
        salt.extend_from_slice(&public);
        let mut key = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), shared.as_bytes())
            .expand(b"tessera/v1/wrap", &mut key)
            .unwrap();
        let mut header = vec![0x01];
        header.extend_from_slice(&ephemeral_public);
        header.extend_from_slice(&nonce);
        let expected = reference_blob(&key, &nonce, header, b"ctx", b"plain");
        assert_eq!(blob, expected);
        assert_eq!(unwrap(&secret, b"ctx", &blob).unwrap().as_slice(), b"plain");
    }

    #[test]
    fn wrapping_keys_are_x25519() {
        // RFC 7748 §6.1: Alice's private and public keys.
        let secret = SecretKey256::from_bytes(hex_array(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            hex::encode(x25519_public_key(&secret)),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let (a, a_public) = recipient(7);
        let (b, b_public) = recipient(7);
        assert_eq!(a, b);
        assert_eq!(a_public, b_public);
        assert_eq!(a_public, x25519_public_key(&a));
        assert_ne!(recipient(8).1, a_public);
    }

    /// The same SPKI built by the `der` crate, to check [`SPKI_PREFIX`].
    fn x25519_public_key_der_via_spki(public: &[u8; 32]) -> Vec<u8> {
        use spki::der::asn1::BitStringRef;
        use spki::der::Encode;
        SubjectPublicKeyInfoRef {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: ID_X25519,
                parameters: None,
            },
            subject_public_key: BitStringRef::from_bytes(public).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn public_key_encodings() {
        let (_, public) = recipient(9);
        let der = x25519_public_key_der(&public);
        assert_eq!(der.len(), 44);
        assert_eq!(der, x25519_public_key_der_via_spki(&public));
        let pem = x25519_public_key_pem(&public);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.ends_with("\n-----END PUBLIC KEY-----\n"));

        assert_eq!(parse_x25519_public_key(&public), Ok(public));
        assert_eq!(parse_x25519_public_key(&der), Ok(public));
        assert_eq!(parse_x25519_public_key(pem.as_bytes()), Ok(public));
        let crlf = pem.replace('\n', "\r\n");
        assert_eq!(parse_x25519_public_key(crlf.as_bytes()), Ok(public));
    }

    #[test]
    fn bad_public_keys_are_rejected() {
        let (_, public) = recipient(10);
        let der = x25519_public_key_der(&public);
        let mut trailing = der.clone();
        trailing.push(0);
        // Ed25519 OID (1.3.101.112) instead of X25519.
        let mut ed25519 = der.clone();
        ed25519[8] = 0x70;
        // Parameters present: NULL after the OID.
        let mut with_params = vec![
            0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x05, 0x00,
        ];
        with_params.extend_from_slice(&der[9..]);
        // Unused bits in the BIT STRING.
        let mut unused_bits = der.clone();
        unused_bits[11] = 0x01;
        let p256 = crate::sign::public_key_der(
            crate::KeySpec::EcdsaP256,
            crate::KeySpec::EcdsaP256
                .generate_material(&mut rng())
                .as_slice(),
        )
        .unwrap();
        let wrong_label = crate::pem::encode("PRIVATE KEY", &der);
        let mut bad = vec![
            trailing,
            ed25519,
            with_params,
            unused_bits,
            p256,
            wrong_label.into_bytes(),
            Vec::new(),
            vec![0u8; 31],
            vec![0u8; 33],
        ];
        bad.extend(
            (0..der.len())
                .filter(|&len| len != 32)
                .map(|len| der[..len].to_vec()),
        );
        for bytes in bad {
            assert_eq!(
                parse_x25519_public_key(&bytes),
                Err(Error::InvalidPublicKey),
                "{bytes:02x?}"
            );
        }
    }
}
