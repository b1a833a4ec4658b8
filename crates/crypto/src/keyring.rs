//! The keyring: barrier keys indexed by term, like OpenBao's keyring.
//!
//! New data is always sealed under the active (newest) term; older terms
//! stay so that blobs sealed before a rotation still open. Term numbers
//! start at 1 (term 0 is reserved for blobs sealed directly under the
//! unseal or root key, see [`crate::root`]).
//!
//! Invariants, upheld by every constructor including [`Keyring::from_bytes`]:
//! the keyring holds at least one term, no term is 0, and the active term
//! is the highest one, so [`Keyring::rotate`] never overwrites a key.

use std::collections::BTreeMap;

use core::fmt;

use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};

use crate::error::versioned_header;
use crate::secret::KEY_LEN;
use crate::{barrier, Error, SecretBytes, SecretKey256};

/// Version byte of the keyring encoding.
pub const KEYRING_ENCODING_V1: u8 = 0x01;

const HEADER_LEN: usize = 1 + 4 + 4;
const ENTRY_LEN: usize = 4 + KEY_LEN;

/// Barrier keys by term, plus which term is active.
///
/// `Debug` shows term numbers only, never keys.
#[derive(Clone)]
pub struct Keyring {
    terms: BTreeMap<u32, SecretKey256>,
    active: u32,
}

impl Keyring {
    /// A keyring holding `first` as term 1, active.
    pub fn new(first: SecretKey256) -> Self {
        Self {
            terms: BTreeMap::from([(1, first)]),
            active: 1,
        }
    }

    /// A keyring with a fresh random key as term 1, for cluster
    /// initialization.
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        Self::new(SecretKey256::generate(rng))
    }

    /// The term new blobs are sealed under.
    pub fn active_term(&self) -> u32 {
        self.active
    }

    /// The key of the oldest term held (term 1 unless terms are ever dropped): the root of
    /// derivations that must not change when the keyring rotates, such as the audit key.
    pub fn first_key(&self) -> Option<&SecretKey256> {
        self.terms.values().next()
    }

    /// All terms held, ascending.
    pub fn terms(&self) -> impl Iterator<Item = u32> + '_ {
        self.terms.keys().copied()
    }

    /// Adds a fresh random key as term `active + 1` and makes it active.
    /// Returns the new term.
    ///
    /// Old terms are kept so existing blobs still open. Fails with
    /// [`Error::TermExhausted`] only if the active term is `u32::MAX`.
    pub fn rotate(&mut self, rng: &mut (impl CryptoRng + ?Sized)) -> Result<u32, Error> {
        let next = self.active.checked_add(1).ok_or(Error::TermExhausted)?;
        self.terms.insert(next, SecretKey256::generate(rng));
        self.active = next;
        Ok(next)
    }

    /// Drops every term older than the active one (after every blob sealed under them was
    /// re-sealed under the active term). Returns the terms dropped, ascending.
    ///
    /// The active term stays, so the keyring is never empty and the invariants hold.
    pub fn retire_old(&mut self) -> Vec<u32> {
        let kept = self.terms.split_off(&self.active);
        let retired = self.terms.keys().copied().collect();
        self.terms = kept;
        retired
    }

    /// Seals `plaintext` under the active term, bound to `aad`.
    ///
    /// See [`barrier::seal`] for the blob format and size limits.
    pub fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<Vec<u8>, Error> {
        let key = self.key(self.active)?;
        barrier::seal(key, self.active, aad, plaintext, rng)
    }

    /// Opens a blob sealed under any term this keyring holds.
    ///
    /// The term is read from the blob; a term the keyring does not hold
    /// gives [`Error::UnknownTerm`], authentication failure the opaque
    /// [`Error::Unseal`].
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<SecretBytes, Error> {
        let term = barrier::blob_term(blob)?;
        barrier::open(self.key(term)?, aad, blob)
    }

    fn key(&self, term: u32) -> Result<&SecretKey256, Error> {
        self.terms.get(&term).ok_or(Error::UnknownTerm { term })
    }

    /// Encodes the keyring for storage (to be sealed under the root key):
    ///
    /// ```text
    /// [0x01][active: u32 BE][count: u32 BE] then count × ([term: u32 BE][key: 32 bytes])
    /// ```
    ///
    /// Entries are in ascending term order.
    pub fn to_bytes(&self) -> SecretBytes {
        let capacity = self
            .terms
            .len()
            .saturating_mul(ENTRY_LEN)
            .saturating_add(HEADER_LEN);
        let mut out = Vec::with_capacity(capacity);
        out.push(KEYRING_ENCODING_V1);
        out.extend_from_slice(&self.active.to_be_bytes());
        // Terms are distinct non-zero u32s, so the count fits in a u32.
        let count = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for (term, key) in &self.terms {
            out.extend_from_slice(&term.to_be_bytes());
            out.extend_from_slice(key.as_bytes());
        }
        SecretBytes::new(out)
    }

    /// Decodes what [`Keyring::to_bytes`] produced, strictly.
    ///
    /// Rejects with [`Error::Malformed`]: truncated or trailing bytes, a
    /// zero count, term 0, duplicate or unsorted terms, and an active term
    /// that is missing or not the highest term. An unknown version byte
    /// gives [`Error::UnsupportedVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        const HEADER: Error = Error::Malformed {
            what: "keyring header",
        };
        let (header, entries) =
            versioned_header::<HEADER_LEN>(bytes, KEYRING_ENCODING_V1, "keyring", HEADER)?;
        let (_, counters) = header.split_first_chunk::<1>().ok_or(HEADER)?;
        let (active, count) = counters.split_first_chunk::<4>().ok_or(HEADER)?;
        let active = u32::from_be_bytes(*active);
        let count = u32::from_be_bytes(*count.first_chunk::<4>().ok_or(HEADER)?);
        if count == 0 {
            return Err(Error::Malformed {
                what: "keyring term count",
            });
        }
        let expected_len = usize::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(ENTRY_LEN));
        if expected_len != Some(entries.len()) {
            return Err(Error::Malformed {
                what: "keyring length",
            });
        }

        let mut terms = BTreeMap::new();
        let mut previous = 0u32;
        for entry in entries.chunks_exact(ENTRY_LEN) {
            let (term, key) = entry.split_first_chunk::<4>().ok_or(Error::Malformed {
                what: "keyring entry",
            })?;
            let term = u32::from_be_bytes(*term);
            if term <= previous {
                return Err(Error::Malformed {
                    what: "keyring term order",
                });
            }
            previous = term;
            terms.insert(term, SecretKey256::try_from_slice(key)?);
        }
        if active != previous {
            return Err(Error::Malformed {
                what: "keyring active term",
            });
        }
        Ok(Self { terms, active })
    }
}

/// Same active term and same keys under the same terms; keys are compared
/// in constant time.
impl PartialEq for Keyring {
    fn eq(&self, other: &Self) -> bool {
        let same_keys = self.terms.iter().zip(&other.terms).fold(
            Choice::from(1),
            |acc, ((term_a, key_a), (term_b, key_b))| {
                acc & term_a.ct_eq(term_b) & key_a.ct_eq(key_b)
            },
        );
        self.active == other.active
            && self.terms.len() == other.terms.len()
            && bool::from(same_keys)
    }
}

impl Eq for Keyring {}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("terms", &self.terms.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::seeded_rng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        seeded_rng(5)
    }

    fn encode(active: u32, entries: &[(u32, u8)]) -> Vec<u8> {
        let mut out = vec![KEYRING_ENCODING_V1];
        out.extend_from_slice(&active.to_be_bytes());
        out.extend_from_slice(&u32::try_from(entries.len()).unwrap().to_be_bytes());
        for (term, fill) in entries {
            out.extend_from_slice(&term.to_be_bytes());
            out.extend_from_slice(&[*fill; 32]);
        }
        out
    }

    fn malformed(what: &'static str) -> Result<Keyring, Error> {
        Err(Error::Malformed { what })
    }

    #[test]
    fn new_starts_at_term_one() {
        let ring = Keyring::new(SecretKey256::from_bytes([1; 32]));
        assert_eq!(ring.active_term(), 1);
        assert_eq!(ring.terms().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn rotate_adds_active_term_and_old_terms_still_open() {
        let mut rng = rng();
        let mut ring = Keyring::generate(&mut rng);
        let old = ring.seal(b"aad", b"before rotation", &mut rng).unwrap();
        assert_eq!(barrier::blob_term(&old).unwrap(), 1);

        assert_eq!(ring.rotate(&mut rng).unwrap(), 2);
        assert_eq!(ring.rotate(&mut rng).unwrap(), 3);
        assert_eq!(ring.active_term(), 3);
        assert_eq!(ring.terms().collect::<Vec<_>>(), vec![1, 2, 3]);

        let new = ring.seal(b"aad", b"after rotation", &mut rng).unwrap();
        assert_eq!(barrier::blob_term(&new).unwrap(), 3);
        assert_eq!(
            ring.open(b"aad", &old).unwrap().as_slice(),
            b"before rotation"
        );
        assert_eq!(
            ring.open(b"aad", &new).unwrap().as_slice(),
            b"after rotation"
        );
        assert_ne!(ring.key(1).unwrap(), ring.key(3).unwrap());
    }

    #[test]
    fn rotate_refuses_to_wrap() {
        let mut ring = Keyring::from_bytes(&encode(u32::MAX, &[(u32::MAX, 1)])).unwrap();
        assert_eq!(ring.rotate(&mut rng()), Err(Error::TermExhausted));
        assert_eq!(ring.terms().collect::<Vec<_>>(), vec![u32::MAX]);
    }

    #[test]
    fn retire_old_keeps_only_the_active_term() {
        let mut rng = rng();
        let mut ring = Keyring::generate(&mut rng);
        let old = ring.seal(b"aad", b"old", &mut rng).unwrap();
        ring.rotate(&mut rng).unwrap();
        ring.rotate(&mut rng).unwrap();
        let new = ring.seal(b"aad", b"new", &mut rng).unwrap();
        assert_eq!(ring.retire_old(), vec![1, 2]);
        assert_eq!(ring.terms().collect::<Vec<_>>(), vec![3]);
        assert_eq!(ring.active_term(), 3);
        assert_eq!(ring.open(b"aad", &old), Err(Error::UnknownTerm { term: 1 }));
        assert_eq!(ring.open(b"aad", &new).unwrap().as_slice(), b"new");
        assert_eq!(ring.retire_old(), Vec::<u32>::new());
        // Still a valid keyring: it encodes and decodes.
        assert_eq!(
            Keyring::from_bytes(ring.to_bytes().as_slice()).unwrap(),
            ring
        );
    }

    #[test]
    fn unknown_term_is_reported() {
        let mut rng = rng();
        let ring = Keyring::generate(&mut rng);
        let blob =
            barrier::seal(&SecretKey256::from_bytes([1; 32]), 9, b"", b"x", &mut rng).unwrap();
        assert_eq!(ring.open(b"", &blob), Err(Error::UnknownTerm { term: 9 }));
    }

    #[test]
    fn open_checks_aad_and_key() {
        let mut rng = rng();
        let ring = Keyring::generate(&mut rng);
        let other = Keyring::generate(&mut rng);
        let blob = ring.seal(b"aad", b"x", &mut rng).unwrap();
        assert_eq!(ring.open(b"other", &blob), Err(Error::Unseal));
        assert_eq!(other.open(b"aad", &blob), Err(Error::Unseal));
    }

    #[test]
    fn encoding_round_trips() {
        let mut rng = rng();
        let mut ring = Keyring::generate(&mut rng);
        ring.rotate(&mut rng).unwrap();
        let bytes = ring.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 2 * ENTRY_LEN);
        let decoded = Keyring::from_bytes(bytes.as_slice()).unwrap();
        assert_eq!(decoded.active_term(), 2);
        assert_eq!(decoded.terms().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(decoded, ring);
        assert_eq!(decoded.to_bytes(), bytes);
    }

    #[test]
    fn encoding_layout_is_pinned() {
        let bytes = encode(2, &[(1, 0xaa), (2, 0xbb)]);
        let ring = Keyring::from_bytes(&bytes).unwrap();
        assert_eq!(ring.to_bytes().as_slice(), bytes.as_slice());
        assert_eq!(bytes.get(..9).unwrap(), &[1, 0, 0, 0, 2, 0, 0, 0, 2]);
        assert_eq!(ring.key(1).unwrap().as_bytes(), &[0xaa; 32]);
    }

    #[test]
    fn decode_is_strict() {
        let good = encode(2, &[(1, 1), (2, 2)]);
        assert!(Keyring::from_bytes(&good).is_ok());

        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Keyring::from_bytes(&trailing), malformed("keyring length"));
        assert_eq!(
            Keyring::from_bytes(good.get(..good.len() - 1).unwrap()),
            malformed("keyring length")
        );
        for (active, entries, what) in [
            (1, &[][..], "keyring term count"),
            (3, &[(1, 1), (2, 2)], "keyring active term"),
            (1, &[(1, 1), (2, 2)], "keyring active term"),
            (2, &[(2, 1), (2, 2)], "keyring term order"),
            (2, &[(2, 1), (1, 2)], "keyring term order"),
            (0, &[(0, 1)], "keyring term order"),
        ] {
            assert_eq!(
                Keyring::from_bytes(&encode(active, entries)),
                malformed(what),
                "active {active}, entries {entries:?}"
            );
        }
        let mut huge_count = good.clone();
        huge_count.splice(5..9, u32::MAX.to_be_bytes());
        assert_eq!(
            Keyring::from_bytes(&huge_count),
            malformed("keyring length")
        );

        let mut bad_version = good.clone();
        *bad_version.first_mut().unwrap() = 9;
        assert_eq!(
            Keyring::from_bytes(&bad_version),
            Err(Error::UnsupportedVersion {
                what: "keyring",
                version: 9
            })
        );
        for len in 0..HEADER_LEN {
            assert_eq!(
                Keyring::from_bytes(good.get(..len).unwrap()),
                malformed("keyring header")
            );
        }
        for len in HEADER_LEN..good.len() {
            assert!(Keyring::from_bytes(good.get(..len).unwrap()).is_err());
        }
    }

    #[test]
    fn equality_compares_terms_and_keys() {
        let one = Keyring::from_bytes(&encode(1, &[(1, 1)])).unwrap();
        assert_eq!(one, Keyring::new(SecretKey256::from_bytes([1; 32])));
        assert_ne!(one, Keyring::from_bytes(&encode(1, &[(1, 2)])).unwrap());
        assert_ne!(one, Keyring::from_bytes(&encode(2, &[(2, 1)])).unwrap());
        assert_ne!(
            one,
            Keyring::from_bytes(&encode(2, &[(1, 1), (2, 1)])).unwrap()
        );
    }

    #[test]
    fn debug_shows_terms_not_keys() {
        let ring = Keyring::new(SecretKey256::from_bytes([0xab; 32]));
        let shown = format!("{ring:?}");
        assert_eq!(shown, "Keyring { active: 1, terms: [1], .. }");
        assert!(!shown.contains("171"));
        assert!(!shown.to_lowercase().contains("abab"));
    }
}
