//! Glob patterns for identities, key references and condition values.
//!
//! `*` matches any run of characters (including none) and `?` exactly one character; every
//! other character matches itself. There is no escape: a pattern cannot match a literal `*`
//! or `?` other than through a wildcard. Matching is iterative with a single backtrack point
//! (the last `*`), so it costs at most `O(pattern × text)` steps and never recurses, whatever
//! the input.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated glob pattern. It serialises as its text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Glob {
    pattern: String,
    literal: bool,
}

impl Glob {
    /// A pattern from its text. Every string is a valid glob; length limits are the caller's.
    pub fn new(pattern: &str) -> Self {
        Self {
            literal: !pattern.contains(['*', '?']),
            pattern: pattern.to_owned(),
        }
    }

    /// The pattern's text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern has no wildcard, so it matches exactly its own text (used to index
    /// statements by identity).
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        if self.literal {
            return self.pattern == text;
        }
        let pattern: Vec<char> = self.pattern.chars().collect();
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0usize, 0usize);
        // After a `*`: the pattern position just past it, and the text position it was
        // tried at. On a mismatch the star swallows one more character and matching resumes.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match (pattern.get(p), text.get(t)) {
                (Some('*'), _) => {
                    star = Some((p + 1, t));
                    p += 1;
                }
                (Some('?'), _) => {
                    p += 1;
                    t += 1;
                }
                (Some(pc), Some(tc)) if pc == tc => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((after_star, tried)) => {
                        p = after_star;
                        t = tried + 1;
                        star = Some((after_star, tried + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern
            .get(p..)
            .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
    }
}

impl From<String> for Glob {
    fn from(pattern: String) -> Self {
        Self::new(&pattern)
    }
}

impl From<Glob> for String {
    fn from(glob: Glob) -> String {
        glob.pattern
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn literals_match_only_themselves() {
        assert!(m("abc", "abc"));
        assert!(!m("abc", "abcd"));
        assert!(!m("abc", "ab"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(Glob::new("spiffe://x/y").is_literal());
        assert!(!Glob::new("a*").is_literal());
        assert!(!Glob::new("a?").is_literal());
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(m("*", ""));
        assert!(m("*", "anything at all"));
        assert!(m("a*", "a"));
        assert!(m("a*", "abc"));
        assert!(m("*c", "abc"));
        assert!(m("a*c", "ac"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abcd"));
        assert!(m("a**c", "abc"));
        assert!(m("kms:GenerateDataKey*", "kms:GenerateDataKeyPair"));
        assert!(m("kms:GenerateDataKey*", "kms:GenerateDataKey"));
        assert!(!m("kms:GenerateDataKey*", "kms:Encrypt"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
        assert!(m("?", "é"), "one character, not one byte");
        assert!(!m("?", ""));
        assert!(m("*?", "x"));
        assert!(!m("*?", ""));
    }

    #[test]
    fn backtracking_finds_the_right_split() {
        assert!(m("*ab", "aab"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("spiffe://prod/*/billing", "spiffe://prod/eu/billing"));
        assert!(m("*/billing", "spiffe://prod/eu/billing"));
        assert!(!m("spiffe://prod/*", "spiffe://dev/x"));
    }

    #[test]
    fn pathological_patterns_finish() {
        let text = "a".repeat(4_000);
        let pattern = format!("{}b", "a*".repeat(200));
        assert!(!m(&pattern, &text));
        assert!(m(&"*a".repeat(200), &text));
    }

    #[test]
    fn serialises_as_its_text() {
        let g = Glob::new("alias/app-*");
        assert_eq!(String::from(g.clone()), "alias/app-*");
        assert_eq!(Glob::from("alias/app-*".to_owned()), g);
        assert_eq!(g.to_string(), "alias/app-*");
    }
}
