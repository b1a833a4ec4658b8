//! Rate-limit rules: per-identity request budgets, replicated cluster-wide.
//!
//! A rule overrides each node's configured budget for the identities its pattern matches and
//! the action classes it names (`crypto`, `keys`, `operator`); when several match, the most
//! specific wins. Writes carry a request id like every write, so a retry is applied once.

use tessera_proto::v1 as pb;

use super::{new_request_id, Client};
use crate::error::Error;

/// One class's budget: `per_second` requests sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Sustained requests per second (0 refuses the class).
    pub per_second: u32,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

/// A rate-limit rule: budgets for the identities `identity` (a glob) matches; a class left
/// `None` keeps each node's configured budget.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// Identity glob (`*`, `?`).
    pub identity: String,
    /// Cryptographic operations.
    pub crypto: Option<Budget>,
    /// Key management.
    pub keys: Option<Budget>,
    /// Operator and access administration.
    pub operator: Option<Budget>,
}

impl From<RateLimit> for pb::RateLimit {
    fn from(rule: RateLimit) -> Self {
        let budget = |b: Option<Budget>| {
            b.map(|b| pb::Budget {
                per_second: b.per_second,
                burst: b.burst,
            })
        };
        Self {
            identity: rule.identity,
            crypto: budget(rule.crypto),
            keys: budget(rule.keys),
            operator: budget(rule.operator),
        }
    }
}

impl From<pb::RateLimit> for RateLimit {
    fn from(rule: pb::RateLimit) -> Self {
        let budget = |b: Option<pb::Budget>| {
            b.map(|b| Budget {
                per_second: b.per_second,
                burst: b.burst,
            })
        };
        Self {
            identity: rule.identity,
            crypto: budget(rule.crypto),
            keys: budget(rule.keys),
            operator: budget(rule.operator),
        }
    }
}

impl Client {
    /// Creates or replaces the rule for `rule.identity`; returns the stored rule.
    ///
    /// # Errors
    /// [`Error`]; `INVALID_ARGUMENT` (`INVALID_RATE_LIMIT`) for an empty pattern, no class, or
    /// a rate without a burst; `RESOURCE_EXHAUSTED` (`TOO_MANY_RATE_LIMITS`) past 256 rules;
    /// `PERMISSION_DENIED` without `policy:PutRateLimit`.
    pub async fn put_rate_limit(&self, rule: RateLimit) -> Result<RateLimit, Error> {
        let message = pb::PutRateLimitRequest {
            rule: Some(rule.into()),
            request_id: new_request_id(),
        };
        self.access_call(message, |mut a, r| async move { a.put_rate_limit(r).await })
            .await
            .map(RateLimit::from)
    }

    /// Every rule, in pattern order.
    ///
    /// # Errors
    /// [`Error`] from the cluster.
    pub async fn list_rate_limits(&self) -> Result<Vec<RateLimit>, Error> {
        self.access_call(pb::ListRateLimitsRequest {}, |mut a, r| async move {
            a.list_rate_limits(r).await
        })
        .await
        .map(|reply| reply.rules.into_iter().map(RateLimit::from).collect())
    }

    /// Deletes the rule for exactly the pattern `identity`.
    ///
    /// # Errors
    /// [`Error`]; `NOT_FOUND` (`RATE_LIMIT_NOT_FOUND`) when no rule has that pattern.
    pub async fn delete_rate_limit(&self, identity: &str) -> Result<(), Error> {
        let message = pb::DeleteRateLimitRequest {
            identity: identity.to_owned(),
            request_id: new_request_id(),
        };
        self.access_call(
            message,
            |mut a, r| async move { a.delete_rate_limit(r).await },
        )
        .await
        .map(|_| ())
    }
}
