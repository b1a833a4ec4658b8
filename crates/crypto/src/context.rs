//! Encryption context: a string map bound to a ciphertext as AAD, as in
//! AWS KMS. Decryption must present exactly the same map.
//!
//! The context is not secret (it may be logged); it is authenticated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Most pairs a context may hold.
pub const MAX_CONTEXT_PAIRS: usize = 64;

/// Most bytes a context may hold, counted as the sum of the UTF-8 lengths
/// of all keys and values.
pub const MAX_CONTEXT_BYTES: usize = 8192;

/// Key/value pairs bound to a ciphertext.
///
/// Keys are unique and kept sorted, so two contexts with the same pairs
/// have the same [`canonical_bytes`](Self::canonical_bytes) whatever order
/// they were built in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// Wraps an existing map. Limits are checked by [`validate`](Self::validate).
    pub fn new(pairs: BTreeMap<String, String>) -> Self {
        Self(pairs)
    }

    /// Builds a context from pairs. A key given twice keeps its last value
    /// (as with collecting into a map); reject duplicates before calling
    /// if that matters.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            pairs
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        )
    }

    /// Whether the context has no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The pairs, for callers that store or display the context.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Checks the rules: no empty key, at most [`MAX_CONTEXT_PAIRS`] pairs,
    /// at most [`MAX_CONTEXT_BYTES`] bytes of keys and values.
    pub fn validate(&self) -> Result<(), Error> {
        if self.0.len() > MAX_CONTEXT_PAIRS {
            return Err(Error::InvalidContext {
                reason: "too many pairs",
            });
        }
        if self.0.keys().any(String::is_empty) {
            return Err(Error::InvalidContext {
                reason: "empty key",
            });
        }
        let total = self.0.iter().fold(0usize, |sum, (k, v)| {
            sum.saturating_add(k.len()).saturating_add(v.len())
        });
        if total > MAX_CONTEXT_BYTES {
            return Err(Error::InvalidContext {
                reason: "too many bytes",
            });
        }
        Ok(())
    }

    /// Unambiguous byte encoding used as AAD:
    ///
    /// ```text
    /// [count: u32 BE] then, by ascending key:
    /// [key_len: u32 BE][key UTF-8][value_len: u32 BE][value UTF-8]
    /// ```
    ///
    /// Length prefixes make the encoding injective for every context that
    /// passes [`validate`](Self::validate) (all lengths fit in a u32);
    /// encryption and decryption validate before encoding.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let payload = self.0.iter().fold(0usize, |sum, (k, v)| {
            sum.saturating_add(8)
                .saturating_add(k.len())
                .saturating_add(v.len())
        });
        let mut out = Vec::with_capacity(payload.saturating_add(4));
        push_len(&mut out, self.0.len());
        for (key, value) in &self.0 {
            push_len(&mut out, key.len());
            out.extend_from_slice(key.as_bytes());
            push_len(&mut out, value.len());
            out.extend_from_slice(value.as_bytes());
        }
        out
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_are_sorted_and_length_prefixed() {
        let context = EncryptionContext::from_pairs([("b", "2"), ("a", "xy")]);
        assert_eq!(
            context.canonical_bytes(),
            [
                &[0, 0, 0, 2][..],
                &[0, 0, 0, 1],
                b"a",
                &[0, 0, 0, 2],
                b"xy",
                &[0, 0, 0, 1],
                b"b",
                &[0, 0, 0, 1],
                b"2",
            ]
            .concat()
        );
        assert_eq!(EncryptionContext::default().canonical_bytes(), vec![0; 4]);
    }

    #[test]
    fn order_of_construction_does_not_matter() {
        let a = EncryptionContext::from_pairs([("x", "1"), ("y", "2")]);
        let b = EncryptionContext::from_pairs([("y", "2"), ("x", "1")]);
        assert_eq!(a, b);
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
    }

    #[test]
    fn encoding_is_unambiguous() {
        // Shifting bytes between key and value, or between pairs, changes
        // the encoding.
        let variants = [
            EncryptionContext::from_pairs([("ab", "c")]),
            EncryptionContext::from_pairs([("a", "bc")]),
            EncryptionContext::from_pairs([("a", ""), ("b", "c")]),
            EncryptionContext::from_pairs([("abc", "")]),
            EncryptionContext::default(),
        ];
        for (i, a) in variants.iter().enumerate() {
            for b in &variants[i + 1..] {
                assert_ne!(a.canonical_bytes(), b.canonical_bytes());
            }
        }
    }

    #[test]
    fn later_duplicate_wins() {
        let context = EncryptionContext::from_pairs([("k", "1"), ("k", "2")]);
        assert_eq!(context.len(), 1);
        assert_eq!(context.as_map().get("k").map(String::as_str), Some("2"));
    }

    #[test]
    fn validate_enforces_limits() {
        assert!(EncryptionContext::default().validate().is_ok());
        assert!(EncryptionContext::from_pairs([("k", "")])
            .validate()
            .is_ok());
        assert_eq!(
            EncryptionContext::from_pairs([("", "v")]).validate(),
            Err(Error::InvalidContext {
                reason: "empty key"
            })
        );

        let at_limit =
            EncryptionContext::from_pairs((0..MAX_CONTEXT_PAIRS).map(|i| (i.to_string(), "")));
        assert!(at_limit.validate().is_ok());
        let over =
            EncryptionContext::from_pairs((0..=MAX_CONTEXT_PAIRS).map(|i| (i.to_string(), "")));
        assert_eq!(
            over.validate(),
            Err(Error::InvalidContext {
                reason: "too many pairs"
            })
        );

        let big = "v".repeat(MAX_CONTEXT_BYTES - 1);
        assert!(EncryptionContext::from_pairs([("k", big.as_str())])
            .validate()
            .is_ok());
        let too_big = "v".repeat(MAX_CONTEXT_BYTES);
        assert_eq!(
            EncryptionContext::from_pairs([("k", too_big.as_str())]).validate(),
            Err(Error::InvalidContext {
                reason: "too many bytes"
            })
        );
    }

    #[test]
    fn serde_is_a_plain_map() {
        let context = EncryptionContext::from_pairs([("tenant", "acme")]);
        let json = serde_json::to_string(&context).unwrap();
        assert_eq!(json, r#"{"tenant":"acme"}"#);
        let back: EncryptionContext = serde_json::from_str(&json).unwrap();
        assert_eq!(back, context);
        assert!(!back.is_empty());
    }
}
