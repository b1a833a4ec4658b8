//! Per-identity rate limits: a token bucket per (identity, action class).
//!
//! Buckets live in a sharded map keyed by identity, so callers only contend on the shard of
//! their own identity and one identity hammering a node never holds a lock others need for
//! long. Limits come from the node's `[rate_limits]` section; `[[rate_limits.overrides]]`
//! entries replace them for identities matching a glob (first match wins). A breach is
//! answered `RESOURCE_EXHAUSTED` with a `retry-after` hint by the audit layer, which records it.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tessera_state::policy::{Action, Glob};

/// Shards of the bucket map.
const SHARDS: usize = 64;
/// Most buckets one shard keeps; beyond it, buckets that are full again are dropped.
const MAX_BUCKETS_PER_SHARD: usize = 4096;

/// What an action costs against: each class has its own bucket per identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionClass {
    /// Cryptographic operations (`kms:Encrypt`, `kms:Sign`, `kms:GenerateRandom`, …).
    Crypto,
    /// Key management, reads and writes (`kms:CreateKey`, `kms:DescribeKey`, aliases, grants).
    Keys,
    /// Node and access administration (`operator:*`, `policy:*`, `audit:*`).
    Operator,
}

impl ActionClass {
    /// The class's name in the configuration and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Crypto => "crypto",
            Self::Keys => "keys",
            Self::Operator => "operator",
        }
    }

    /// The class of `action`.
    pub fn of(action: Action) -> Self {
        use Action as A;
        match action {
            A::Encrypt
            | A::Decrypt
            | A::ReEncryptFrom
            | A::ReEncryptTo
            | A::GenerateDataKey
            | A::GenerateDataKeyWithoutPlaintext
            | A::GenerateDataKeyPair
            | A::Sign
            | A::Verify
            | A::GetPublicKey
            | A::GenerateMac
            | A::VerifyMac
            | A::GenerateRandom => Self::Crypto,
            A::Init
            | A::Unseal
            | A::Seal
            | A::Status
            | A::RevokeCertificate
            | A::ListRevoked
            | A::WhoAmI
            | A::PutPolicy
            | A::GetPolicy
            | A::ListPolicies
            | A::DeletePolicy
            | A::CheckPolicy
            | A::AuditHash => Self::Operator,
            _ => Self::Keys,
        }
    }
}

/// One bucket's size: `rate` tokens per second, up to `burst` saved.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Sustained requests per second.
    pub rate: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

/// Limits of the three classes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ClassLimits {
    /// Crypto operations.
    #[serde(default = "default_crypto")]
    pub crypto: Limit,
    /// Key management.
    #[serde(default = "default_keys")]
    pub keys: Limit,
    /// Operator and access administration.
    #[serde(default = "default_operator")]
    pub operator: Limit,
}

impl Default for ClassLimits {
    fn default() -> Self {
        Self {
            crypto: default_crypto(),
            keys: default_keys(),
            operator: default_operator(),
        }
    }
}

impl ClassLimits {
    fn get(&self, class: ActionClass) -> Limit {
        match class {
            ActionClass::Crypto => self.crypto,
            ActionClass::Keys => self.keys,
            ActionClass::Operator => self.operator,
        }
    }
}

fn default_crypto() -> Limit {
    Limit {
        rate: 5000.0,
        burst: 10000.0,
    }
}

fn default_keys() -> Limit {
    Limit {
        rate: 500.0,
        burst: 1000.0,
    }
}

fn default_operator() -> Limit {
    Limit {
        rate: 100.0,
        burst: 200.0,
    }
}

/// Limits for the identities a glob matches.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Override {
    /// Identity glob (`*` matches any run of characters).
    pub identity: String,
    /// The limits; classes not given keep the defaults.
    #[serde(flatten)]
    pub limits: ClassLimits,
}

/// The `[rate_limits]` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RateLimitSection {
    /// Whether requests are limited at all.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Limits for every identity without an override.
    #[serde(flatten)]
    pub limits: ClassLimits,
    /// Per-identity overrides, first match wins.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

fn enabled() -> bool {
    true
}

impl Default for RateLimitSection {
    fn default() -> Self {
        Self {
            enabled: true,
            limits: ClassLimits::default(),
            overrides: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

type Shard = Mutex<HashMap<(String, ActionClass), Bucket>>;

/// A node's token buckets.
pub struct RateLimiter {
    enabled: bool,
    limits: ClassLimits,
    overrides: Vec<(Glob, ClassLimits)>,
    shards: Vec<Shard>,
}

impl RateLimiter {
    /// Buckets sized by `section`.
    pub fn new(section: &RateLimitSection) -> Self {
        Self {
            enabled: section.enabled,
            limits: section.limits.clone(),
            overrides: section
                .overrides
                .iter()
                .map(|o| (Glob::new(&o.identity), o.limits.clone()))
                .collect(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn limit(&self, identity: &str, class: ActionClass) -> Limit {
        self.overrides
            .iter()
            .find(|(glob, _)| glob.matches(identity))
            .map_or(&self.limits, |(_, limits)| limits)
            .get(class)
    }

    /// Takes one token from `identity`'s bucket for `action`'s class at `now`. `Err` carries
    /// how long until a token is available.
    ///
    /// # Errors
    /// The wait, when the bucket is empty.
    pub fn take(&self, identity: &str, action: Action, now: Instant) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let class = ActionClass::of(action);
        let limit = self.limit(identity, class);
        if !(limit.rate > 0.0 && limit.burst >= 1.0) {
            // A zero limit refuses the class outright; retry after a minute.
            return Err(Duration::from_secs(60));
        }
        let mut hasher = DefaultHasher::new();
        identity.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % SHARDS as u64).unwrap_or(0);
        let Some(shard) = self.shards.get(index) else {
            return Ok(());
        };
        let Ok(mut buckets) = shard.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS_PER_SHARD {
            let limits = |id: &str, class| self.limit(id, class);
            buckets.retain(|(id, class), b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * limits(id, *class).rate
                    < limits(id, *class).burst
            });
        }
        let bucket = buckets
            .entry((identity.to_owned(), class))
            .or_insert(Bucket {
                tokens: limit.burst,
                at: now,
            });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * limit.rate;
        bucket.tokens = (bucket.tokens + refill).min(limit.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / limit.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn limiter(text: &str) -> RateLimiter {
        RateLimiter::new(&toml::from_str(text).unwrap())
    }

    #[test]
    fn a_bucket_empties_refills_and_says_when() {
        let limits = limiter("crypto = { rate = 10.0, burst = 3.0 }");
        let t0 = Instant::now();
        for _ in 0..3 {
            limits.take("a", Action::Encrypt, t0).unwrap();
        }
        let wait = limits.take("a", Action::Encrypt, t0).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        limits
            .take("a", Action::Encrypt, t0 + Duration::from_millis(100))
            .unwrap();
    }

    #[test]
    fn identities_and_classes_have_their_own_buckets() {
        let limits = limiter("crypto = { rate = 1.0, burst = 1.0 }");
        let t0 = Instant::now();
        limits.take("a", Action::Encrypt, t0).unwrap();
        assert!(limits.take("a", Action::Decrypt, t0).is_err());
        limits.take("b", Action::Encrypt, t0).unwrap();
        limits.take("a", Action::CreateKey, t0).unwrap();
        limits.take("a", Action::Status, t0).unwrap();
    }

    #[test]
    fn overrides_match_identities_by_glob_and_keep_other_classes() {
        let limits = limiter(
            r#"
crypto = { rate = 1.0, burst = 1.0 }
[[overrides]]
identity = "batch-*"
crypto = { rate = 1000.0, burst = 100.0 }
"#,
        );
        let t0 = Instant::now();
        for _ in 0..100 {
            limits.take("batch-7", Action::Encrypt, t0).unwrap();
        }
        limits.take("app", Action::Encrypt, t0).unwrap();
        assert!(limits.take("app", Action::Encrypt, t0).is_err());
        assert_eq!(limits.limit("batch-7", ActionClass::Keys), default_keys());
    }

    #[test]
    fn disabled_limits_let_everything_through() {
        let limits = limiter("enabled = false\ncrypto = { rate = 1.0, burst = 1.0 }");
        let t0 = Instant::now();
        for _ in 0..10 {
            limits.take("a", Action::Encrypt, t0).unwrap();
        }
    }
}
