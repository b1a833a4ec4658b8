//! Rate-limit rules: per-identity request budgets replicated with the access model.
//!
//! A node's configuration sets the default budget of every identity per action class
//! (crypto, key management, operator). A rule stored here overrides it, cluster-wide, for the
//! identities its glob matches and the classes it names; classes it leaves out keep the
//! node's budget. When several rules match an identity, the most specific wins: a literal
//! pattern equal to the identity, else the longest matching pattern, ties going to the
//! pattern that sorts first. The budgets are applied by each node to the requests it serves
//! (token buckets are per node); nothing here runs a clock.

use serde::{Deserialize, Serialize};

use crate::policy::glob::Glob;
use crate::policy::{truncate, MAX_STRING_LEN};

/// Most rate-limit rules the state holds.
pub const MAX_RATE_LIMIT_RULES: usize = 256;
/// Largest sustained rate a rule may set, per second.
pub const MAX_RATE_PER_SECOND: u32 = 1_000_000;

/// One class's budget: `per_second` requests sustained, up to `burst` at once after a quiet
/// period. A zero rate refuses the class outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// Budgets for the identities `identity` matches; a class left `None` keeps the node's
/// configured budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitRule {
    /// Identity glob (`*`, `?`).
    pub identity: Glob,
    /// Cryptographic operations.
    pub crypto: Option<Budget>,
    /// Key management.
    pub keys: Option<Budget>,
    /// Operator and access administration.
    pub operator: Option<Budget>,
}

/// Why a rule was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RateLimitProblem {
    /// The identity pattern is empty, too long or holds control characters.
    #[error("the identity pattern must be 1..={max} bytes without control characters")]
    BadIdentity {
        /// The limit.
        max: u32,
    },
    /// No class is given.
    #[error("a rule must set at least one of crypto, keys or operator")]
    NoClass,
    /// A budget with a rate but a burst below 1, or a rate over the limit.
    #[error("{class}: a rate of {per_second}/s needs a burst of at least 1 and a rate of at most {max}/s (burst {burst})")]
    BadBudget {
        /// The class.
        class: String,
        /// The rate given.
        per_second: u32,
        /// The burst given.
        burst: u32,
        /// The largest rate.
        max: u32,
    },
}

impl RateLimitRule {
    /// Checks the rule's pattern and budgets.
    ///
    /// # Errors
    /// The first [`RateLimitProblem`] found.
    pub fn validate(&self) -> Result<(), RateLimitProblem> {
        let pattern = self.identity.as_str();
        if pattern.is_empty()
            || pattern.len() > MAX_STRING_LEN
            || pattern.chars().any(char::is_control)
        {
            return Err(RateLimitProblem::BadIdentity {
                max: u32::try_from(MAX_STRING_LEN).unwrap_or(u32::MAX),
            });
        }
        if self.classes().all(|(_, budget)| budget.is_none()) {
            return Err(RateLimitProblem::NoClass);
        }
        for (class, budget) in self.classes() {
            if let Some(b) = budget {
                if b.per_second > MAX_RATE_PER_SECOND || (b.per_second > 0 && b.burst == 0) {
                    return Err(RateLimitProblem::BadBudget {
                        class: class.to_owned(),
                        per_second: b.per_second,
                        burst: b.burst,
                        max: MAX_RATE_PER_SECOND,
                    });
                }
            }
        }
        Ok(())
    }

    /// The classes by name with their budgets, in a fixed order.
    pub fn classes(&self) -> impl Iterator<Item = (&'static str, Option<Budget>)> {
        [
            ("crypto", self.crypto),
            ("keys", self.keys),
            ("operator", self.operator),
        ]
        .into_iter()
    }

    /// The pattern, shortened for messages.
    pub fn identity_for_message(&self) -> String {
        truncate(self.identity.as_str())
    }
}

/// The rule that applies to `identity` among `rules`: the literal one naming it, else the
/// longest matching pattern (ties: the first in `rules`' order, which is pattern order).
pub fn most_specific<'a, I>(rules: I, identity: &str) -> Option<&'a RateLimitRule>
where
    I: IntoIterator<Item = &'a RateLimitRule>,
{
    let mut best: Option<&RateLimitRule> = None;
    for rule in rules {
        if !rule.identity.matches(identity) {
            continue;
        }
        if rule.identity.is_literal() {
            return Some(rule);
        }
        if best.is_none_or(|b| rule.identity.as_str().len() > b.identity.as_str().len()) {
            best = Some(rule);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn rule(pattern: &str, per_second: u32) -> RateLimitRule {
        RateLimitRule {
            identity: Glob::new(pattern),
            crypto: Some(Budget {
                per_second,
                burst: per_second.max(1),
            }),
            keys: None,
            operator: None,
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let rules = [rule("*", 1), rule("batch-*", 2), rule("batch-7", 3)];
        let pick = |identity| most_specific(&rules, identity).map(|r| r.crypto.unwrap().per_second);
        assert_eq!(pick("batch-7"), Some(3));
        assert_eq!(pick("batch-8"), Some(2));
        assert_eq!(pick("app"), Some(1));
        let only_literal = [rule("app", 4)];
        assert_eq!(most_specific(&only_literal, "other"), None);
    }

    #[test]
    fn validation_names_the_problem() {
        rule("app", 10).validate().unwrap();
        rule("app", 0).validate().unwrap();
        assert_eq!(
            rule("", 1).validate(),
            Err(RateLimitProblem::BadIdentity { max: 1024 })
        );
        assert_eq!(
            rule("a\nb", 1).validate(),
            Err(RateLimitProblem::BadIdentity { max: 1024 })
        );
        let mut none = rule("app", 1);
        none.crypto = None;
        assert_eq!(none.validate(), Err(RateLimitProblem::NoClass));
        let mut no_burst = rule("app", 1);
        no_burst.keys = Some(Budget {
            per_second: 5,
            burst: 0,
        });
        assert!(matches!(
            no_burst.validate(),
            Err(RateLimitProblem::BadBudget { ref class, .. }) if class == "keys"
        ));
        assert!(matches!(
            rule("app", MAX_RATE_PER_SECOND + 1).validate(),
            Err(RateLimitProblem::BadBudget { .. })
        ));
    }
}
