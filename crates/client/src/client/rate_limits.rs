//! Rate-limit rules: per-identity request budgets, replicated cluster-wide.
//!
//! A rule overrides each node's configured budget for the identities its pattern matches and
//! the action classes it names (`crypto`, `keys`, `operator`); when several match, the most
//! specific wins. Writes carry a request id like every write, so a retry is applied once.

use tessera_proto::v1 as pb;
use tessera_proto::v1::access_client::AccessClient;

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

/// `From` between the SDK's rate-limit types and the API's, which have the same fields:
/// `plain` fields move as they are, `optional` ones (budgets) convert inside their `Option`.
macro_rules! convert_fields {
    ($from:ty => $to:ty { $($plain:ident),* ; $($optional:ident),* }) => {
        impl From<$from> for $to {
            fn from(value: $from) -> Self {
                Self { $($plain: value.$plain,)* $($optional: value.$optional.map(Into::into),)* }
            }
        }
    };
}

convert_fields!(Budget => pb::Budget { per_second, burst; });
convert_fields!(pb::Budget => Budget { per_second, burst; });
convert_fields!(RateLimit => pb::RateLimit { identity; crypto, keys, operator });
convert_fields!(pb::RateLimit => RateLimit { identity; crypto, keys, operator });

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
        self.call(message, |c, r| async move {
            AccessClient::new(c).put_rate_limit(r).await
        })
        .await
        .map(RateLimit::from)
    }

    /// Every rule, in pattern order.
    ///
    /// # Errors
    /// [`Error`] from the cluster.
    pub async fn list_rate_limits(&self) -> Result<Vec<RateLimit>, Error> {
        self.call(pb::ListRateLimitsRequest {}, |c, r| async move {
            AccessClient::new(c).list_rate_limits(r).await
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
        self.call(message, |c, r| async move {
            AccessClient::new(c).delete_rate_limit(r).await
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cross_the_api_unchanged() {
        let rule = RateLimit {
            identity: "spiffe://prod/batch-*".into(),
            crypto: Some(Budget {
                per_second: 100,
                burst: 200,
            }),
            keys: None,
            operator: Some(Budget {
                per_second: 0,
                burst: 0,
            }),
        };
        let wire = pb::RateLimit::from(rule.clone());
        assert_eq!(wire.identity, "spiffe://prod/batch-*");
        assert_eq!(
            wire.crypto.map(|b| (b.per_second, b.burst)),
            Some((100, 200))
        );
        assert!(wire.keys.is_none());
        assert_eq!(wire.operator.map(|b| (b.per_second, b.burst)), Some((0, 0)));
        assert_eq!(RateLimit::from(wire), rule);
    }
}
