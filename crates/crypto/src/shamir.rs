//! Shamir secret sharing of the unseal key over GF(2^8).
//!
//! Each of the 32 key bytes is the constant term of its own random
//! polynomial of degree `threshold - 1` over GF(2^8) with the AES reduction
//! polynomial x^8 + x^4 + x^3 + x + 1; share `i` holds every polynomial
//! evaluated at x = i (identifiers 1..=shares). Splitting and combining are
//! delegated to `vsss-rs` (`Gf256`), except for threshold 1 (see [`split`]).
//!
//! Text form of a share, for handing to operators: standard base64 (with
//! padding) of `[0x01 format][identifier][32 value bytes]`, 48 characters.

use core::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use vsss_rs::Gf256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::secret::{eq_in_constant_time, KEY_LEN};
use crate::{Error, SecretKey256};

/// Format byte of the share text encoding.
pub const SHARE_FORMAT_V1: u8 = 0x01;

/// Length of [`UnsealShare::encode`] output.
pub const ENCODED_SHARE_LEN: usize = 48;

const RAW_LEN: usize = 1 + 1 + KEY_LEN;
/// What base64 may decode 48 characters to before padding is accounted for.
const DECODE_BUFFER_LEN: usize = ENCODED_SHARE_LEN / 4 * 3;

/// One operator's share of the unseal key.
///
/// Wiped on drop; `Debug` shows only the identifier; equality is
/// constant-time over identifier and value.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct UnsealShare {
    identifier: u8,
    value: [u8; KEY_LEN],
}

impl UnsealShare {
    /// The x coordinate of this share (never 0). Not secret: operators use
    /// it to tell shares apart and duplicates are rejected by it.
    pub fn identifier(&self) -> u8 {
        self.identifier
    }

    /// Text form for operators: base64 of `[0x01][identifier][value]`.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; RAW_LEN]);
        if let Some((format, rest)) = raw.split_first_mut() {
            *format = SHARE_FORMAT_V1;
            if let Some((identifier, value)) = rest.split_first_mut() {
                *identifier = self.identifier;
                value.copy_from_slice(&self.value);
            }
        }
        let mut text = Zeroizing::new([0u8; ENCODED_SHARE_LEN]);
        let mut out = Zeroizing::new(String::with_capacity(ENCODED_SHARE_LEN));
        // 34 bytes always encode to exactly 48 ASCII characters.
        if let Ok(written) = STANDARD.encode_slice(raw.as_slice(), &mut *text) {
            if let Some(Ok(ascii)) = text.get(..written).map(core::str::from_utf8) {
                out.push_str(ascii);
            }
        }
        out
    }

    /// Parses [`UnsealShare::encode`] output, strictly: exactly 48
    /// characters of padded standard base64 with no surrounding whitespace
    /// (callers trim input), format byte 0x01, identifier not 0.
    pub fn decode(text: &str) -> Result<Self, Error> {
        if text.len() != ENCODED_SHARE_LEN {
            return Err(Error::InvalidShare {
                reason: "wrong length",
            });
        }
        let mut raw = Zeroizing::new([0u8; DECODE_BUFFER_LEN]);
        let written = STANDARD
            .decode_slice(text, &mut *raw)
            .map_err(|_| Error::InvalidShare {
                reason: "not valid base64",
            })?;
        let raw = raw
            .get(..written)
            .filter(|raw| raw.len() == RAW_LEN)
            .ok_or(Error::InvalidShare {
                reason: "wrong length",
            })?;
        match raw.split_first() {
            Some((&SHARE_FORMAT_V1, rest)) => Self::from_raw(rest),
            _ => Err(Error::InvalidShare {
                reason: "unknown format byte",
            }),
        }
    }

    /// Builds a share from `[identifier][32 value bytes]`, the layout
    /// `vsss-rs` uses for GF(2^8) shares.
    fn from_raw(raw: &[u8]) -> Result<Self, Error> {
        let (&identifier, value) = raw.split_first().ok_or(Error::InvalidShare {
            reason: "wrong length",
        })?;
        if identifier == 0 {
            return Err(Error::InvalidShare {
                reason: "identifier is zero",
            });
        }
        let mut share = Self {
            identifier,
            value: [0; KEY_LEN],
        };
        match value.first_chunk::<KEY_LEN>() {
            Some(chunk) if value.len() == KEY_LEN => {
                share.value.copy_from_slice(chunk);
                Ok(share)
            }
            _ => Err(Error::InvalidShare {
                reason: "wrong length",
            }),
        }
    }

    /// `[identifier][value]`, the layout `vsss-rs` combines.
    fn to_raw(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(1 + KEY_LEN);
        raw.push(self.identifier);
        raw.extend_from_slice(&self.value);
        raw
    }
}

impl ConstantTimeEq for UnsealShare {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.identifier.ct_eq(&other.identifier) & self.value.ct_eq(&other.value)
    }
}

eq_in_constant_time!(UnsealShare);

impl fmt::Debug for UnsealShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsealShare")
            .field("identifier", &self.identifier)
            .field("value", &format_args!("REDACTED"))
            .finish()
    }
}

/// Splits `secret` into `shares` shares, any `threshold` of which recover it.
///
/// Requires `1 <= threshold <= shares` (and `shares <= 255` by type),
/// otherwise [`Error::InvalidShamirParameters`]. Identifiers are 1..=shares.
///
/// Threshold 1 is supported explicitly: the polynomial is the constant
/// `secret`, so every share carries the secret itself under its own
/// identifier (`vsss-rs` refuses threshold 1; this is the same scheme at
/// degree 0, and [`combine`] recovers it from any one share). Use it only
/// where one operator is meant to unseal alone, such as development.
pub fn split(
    secret: &SecretKey256,
    threshold: u8,
    shares: u8,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Vec<UnsealShare>, Error> {
    let invalid = Error::InvalidShamirParameters { threshold, shares };
    if threshold == 0 || threshold > shares {
        return Err(invalid);
    }
    if threshold == 1 {
        return Ok((1..=shares)
            .map(|identifier| UnsealShare {
                identifier,
                value: *secret.as_bytes(),
            })
            .collect());
    }
    let raw = Zeroizing::new(
        Gf256::split_array(
            usize::from(threshold),
            usize::from(shares),
            secret.as_bytes(),
            &mut *rng,
        )
        .map_err(|_| invalid)?,
    );
    raw.iter()
        .map(|share| UnsealShare::from_raw(share))
        .collect()
}

/// Recovers the secret from shares of one [`split`].
///
/// Rejects an empty slice and duplicate identifiers with
/// [`Error::InvalidShare`]. A single share is returned as is (correct for
/// threshold 1).
///
/// **Caution:** Shamir cannot tell whether enough shares were given.
/// Combining fewer than the threshold, or shares of different splits,
/// silently returns wrong bytes. Callers must verify the result, as
/// [`crate::root::unseal`] does by opening the sealed root key with it.
pub fn combine(shares: &[UnsealShare]) -> Result<SecretKey256, Error> {
    let mut seen = [false; 256];
    for share in shares {
        match seen.get_mut(usize::from(share.identifier)) {
            Some(slot) if !*slot => *slot = true,
            _ => {
                return Err(Error::InvalidShare {
                    reason: "duplicate share identifier",
                })
            }
        }
    }
    match shares {
        [] => Err(Error::InvalidShare {
            reason: "no shares given",
        }),
        [only] => Ok(SecretKey256::from_bytes(only.value)),
        _ => {
            let raw: Zeroizing<Vec<Vec<u8>>> =
                Zeroizing::new(shares.iter().map(UnsealShare::to_raw).collect());
            let secret =
                Zeroizing::new(
                    Gf256::combine_array(&*raw).map_err(|_| Error::InvalidShare {
                        reason: "shares could not be combined",
                    })?,
                );
            SecretKey256::try_from_slice(&secret)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Independent, naive GF(2^8) arithmetic with the AES polynomial
    /// x^8 + x^4 + x^3 + x + 1 (0x11b), used as a reference for vsss-rs.
    mod gf {
        pub fn mul(a: u8, b: u8) -> u8 {
            let mut product: u16 = 0;
            for bit in 0..8 {
                if (b >> bit) & 1 == 1 {
                    product ^= u16::from(a) << bit;
                }
            }
            for bit in (8..16).rev() {
                if (product >> bit) & 1 == 1 {
                    product ^= 0x11b << (bit - 8);
                }
            }
            u8::try_from(product).unwrap()
        }

        pub fn inv(a: u8) -> u8 {
            assert_ne!(a, 0);
            (1..=255).find(|&b| mul(a, b) == 1).unwrap()
        }

        /// Evaluates `coefficients[0] + coefficients[1] x + ...` at x.
        pub fn eval(coefficients: &[u8], x: u8) -> u8 {
            let mut acc = 0;
            let mut power = 1;
            for &c in coefficients {
                acc ^= mul(c, power);
                power = mul(power, x);
            }
            acc
        }

        /// Lagrange interpolation at 0 of the points (x_i, y_i).
        pub fn interpolate_at_zero(points: &[(u8, u8)]) -> u8 {
            let mut acc = 0;
            for (i, &(xi, yi)) in points.iter().enumerate() {
                let mut num = 1;
                let mut den = 1;
                for (j, &(xj, _)) in points.iter().enumerate() {
                    if i != j {
                        num = mul(num, xj);
                        den = mul(den, xi ^ xj);
                    }
                }
                acc ^= mul(yi, mul(num, inv(den)));
            }
            acc
        }
    }

    /// Reference combine: interpolate every byte position independently.
    fn naive_combine(shares: &[UnsealShare]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (position, byte) in out.iter_mut().enumerate() {
            let points: Vec<(u8, u8)> = shares
                .iter()
                .map(|s| (s.identifier, s.value[position]))
                .collect();
            *byte = gf::interpolate_at_zero(&points);
        }
        out
    }

    fn subsets<T: Clone>(items: &[T], size: usize) -> Vec<Vec<T>> {
        if size == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            for mut rest in subsets(&items[i + 1..], size - 1) {
                rest.insert(0, item.clone());
                out.push(rest);
            }
        }
        out
    }

    fn secret_from_seed(seed: u8) -> SecretKey256 {
        SecretKey256::generate(&mut ChaCha20Rng::from_seed([seed; 32]))
    }

    #[test]
    fn reference_field_matches_known_products() {
        // FIPS-197 section 4.2: {57} • {83} = {c1}, {57} • {13} = {fe}.
        assert_eq!(gf::mul(0x57, 0x83), 0xc1);
        assert_eq!(gf::mul(0x57, 0x13), 0xfe);
        // FIPS-197 section 4.2: {53} and {ca} are inverses.
        assert_eq!(gf::inv(0x53), 0xca);
    }

    #[test]
    fn combine_recovers_hand_built_shares() {
        // Byte k of the secret is the constant term of
        // f_k(x) = k + (3k + 1) x + (7k + 5) x^2 (threshold 3).
        let coefficients: Vec<[u8; 3]> = (0u8..32)
            .map(|k| [k, k.wrapping_mul(3) + 1, k.wrapping_mul(7).wrapping_add(5)])
            .collect();
        let expected: [u8; 32] = core::array::from_fn(|k| coefficients[k][0]);
        let shares: Vec<UnsealShare> = [1u8, 2, 3, 4, 5]
            .iter()
            .map(|&x| UnsealShare {
                identifier: x,
                value: core::array::from_fn(|k| gf::eval(&coefficients[k], x)),
            })
            .collect();
        for subset in subsets(&shares, 3) {
            assert_eq!(combine(&subset).unwrap().as_bytes(), &expected);
        }
        // Share 1 of byte 0: f_0(1) = 0 ^ 1 ^ 5 = 4.
        assert_eq!(shares[0].value[0], 4);
    }

    #[test]
    fn split_output_matches_reference_interpolation() {
        let secret = secret_from_seed(1);
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let shares = split(&secret, 3, 5, &mut rng).unwrap();
        let identifiers: Vec<u8> = shares.iter().map(UnsealShare::identifier).collect();
        assert_eq!(identifiers, vec![1, 2, 3, 4, 5]);
        for subset in subsets(&shares, 3) {
            assert_eq!(&naive_combine(&subset), secret.as_bytes());
        }
    }

    #[test]
    fn every_threshold_subset_recovers_and_smaller_ones_do_not() {
        let secret = secret_from_seed(3);
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let shares = split(&secret, 3, 5, &mut rng).unwrap();
        for size in 3..=5 {
            for subset in subsets(&shares, size) {
                assert_eq!(combine(&subset).unwrap(), secret);
            }
        }
        for size in 1..=2 {
            for subset in subsets(&shares, size) {
                assert_ne!(combine(&subset).unwrap(), secret);
            }
        }
    }

    #[test]
    fn threshold_one_shares_each_carry_the_secret() {
        let secret = secret_from_seed(5);
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let shares = split(&secret, 1, 3, &mut rng).unwrap();
        assert_eq!(shares.len(), 3);
        for subset in (1..=3).flat_map(|size| subsets(&shares, size)) {
            assert_eq!(combine(&subset).unwrap(), secret);
            assert_eq!(&naive_combine(&subset), secret.as_bytes());
        }
        let single = split(&secret, 1, 1, &mut rng).unwrap();
        assert_eq!(combine(&single).unwrap(), secret);
    }

    #[test]
    fn parameters_are_checked() {
        let secret = secret_from_seed(7);
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        for (threshold, shares) in [(0, 0), (0, 3), (4, 3), (1, 0), (255, 254)] {
            assert_eq!(
                split(&secret, threshold, shares, &mut rng),
                Err(Error::InvalidShamirParameters { threshold, shares })
            );
        }
        let all = split(&secret, 255, 255, &mut rng).unwrap();
        assert_eq!(all.len(), 255);
        assert_eq!(all.last().unwrap().identifier(), 255);
        assert_eq!(combine(&all).unwrap(), secret);
    }

    #[test]
    fn combine_rejects_duplicates_and_empty() {
        let secret = secret_from_seed(9);
        let shares = split(&secret, 2, 3, &mut ChaCha20Rng::from_seed([10; 32])).unwrap();
        let duplicate = vec![shares[0].clone(), shares[1].clone(), shares[0].clone()];
        assert_eq!(
            combine(&duplicate),
            Err(Error::InvalidShare {
                reason: "duplicate share identifier"
            })
        );
        assert_eq!(
            combine(&[]),
            Err(Error::InvalidShare {
                reason: "no shares given"
            })
        );
    }

    #[test]
    fn encoding_round_trips_and_is_pinned() {
        let share = UnsealShare {
            identifier: 3,
            value: [0xff; 32],
        };
        let text = share.encode();
        assert_eq!(text.len(), ENCODED_SHARE_LEN);
        assert_eq!(
            text.as_str(),
            "AQP//////////////////////////////////////////w=="
        );
        let decoded = UnsealShare::decode(&text).unwrap();
        assert_eq!(decoded, share);
        assert_eq!(decoded.identifier(), 3);
    }

    #[test]
    fn decode_is_strict() {
        use base64::Engine as _;
        let encode = |raw: &[u8]| STANDARD.encode(raw);
        let mut raw = vec![SHARE_FORMAT_V1, 1];
        raw.extend_from_slice(&[7; 32]);
        assert!(UnsealShare::decode(&encode(&raw)).is_ok());

        let reason = |text: &str| match UnsealShare::decode(text) {
            Err(Error::InvalidShare { reason }) => reason,
            other => panic!("expected InvalidShare, got {other:?}"),
        };
        let mut zero_id = raw.clone();
        zero_id[1] = 0;
        assert_eq!(reason(&encode(&zero_id)), "identifier is zero");
        let mut bad_format = raw.clone();
        bad_format[0] = 2;
        assert_eq!(reason(&encode(&bad_format)), "unknown format byte");
        assert_eq!(reason(&encode(&raw[..33])), "wrong length");
        let mut long = raw.clone();
        long.push(0);
        assert_eq!(reason(&encode(&long)), "wrong length");
        // 35 bytes encode to 48 characters too: length is checked after decoding.
        assert_eq!(encode(&long).len(), ENCODED_SHARE_LEN);
        assert_eq!(reason(""), "wrong length");
        assert_eq!(reason(&format!(" {}", &encode(&raw))), "wrong length");
        let good = encode(&raw);
        assert_eq!(reason(&format!("{}\n", &good[..47])), "not valid base64");
        assert_eq!(reason(&good.replace('A', "*")), "not valid base64");
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw);
        assert_eq!(reason(&unpadded), "wrong length");
        // Non-canonical trailing bits are rejected.
        let mut noncanonical = good.into_bytes();
        noncanonical[45] = b'x';
        let noncanonical = String::from_utf8(noncanonical).unwrap();
        assert_eq!(reason(&noncanonical), "not valid base64");
        // Non-ASCII input of the right byte length.
        assert_eq!(reason(&"é".repeat(24)), "not valid base64");
    }

    #[test]
    fn debug_is_redacted() {
        let share = UnsealShare {
            identifier: 4,
            value: [0xab; 32],
        };
        let shown = format!("{share:?}");
        assert_eq!(shown, "UnsealShare { identifier: 4, value: REDACTED }");
    }

    #[test]
    fn equality_compares_identifier_and_value() {
        let a = UnsealShare {
            identifier: 1,
            value: [1; 32],
        };
        let b = UnsealShare {
            identifier: 2,
            value: [1; 32],
        };
        let mut c = a.clone();
        c.value[31] = 0;
        assert!(bool::from(a.ct_eq(&a.clone())));
        assert!(!bool::from(a.ct_eq(&b)));
        assert!(!bool::from(a.ct_eq(&c)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn split_combine_round_trips(
            secret in any::<[u8; 32]>(),
            seed in any::<[u8; 32]>(),
            shares in 1u8..=7,
            threshold_offset in 0u8..7,
            rotate_by in 0usize..7,
        ) {
            let threshold = 1 + threshold_offset % shares;
            let secret = SecretKey256::from_bytes(secret);
            let mut rng = ChaCha20Rng::from_seed(seed);
            let mut split_shares = split(&secret, threshold, shares, &mut rng).unwrap();
            prop_assert_eq!(split_shares.len(), usize::from(shares));
            split_shares.rotate_left(rotate_by % usize::from(shares));
            let chosen = &split_shares[..usize::from(threshold)];
            prop_assert_eq!(&combine(chosen).unwrap(), &secret);
            prop_assert_eq!(&naive_combine(chosen), secret.as_bytes());
            for share in &split_shares {
                prop_assert_eq!(&UnsealShare::decode(&share.encode()).unwrap(), share);
            }
        }
    }
}
