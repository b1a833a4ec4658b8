//! Per-identity rate limits: a token bucket per (identity, action class).
//!
//! Buckets live in a sharded map keyed by identity, so callers only contend on the shard of
//! their own identity and one identity hammering a node never holds a lock others need for
//! long. An identity's budget for a class comes from, in order: the replicated rate-limit rule
//! that applies to it (`tessera_state::policy::rate_limit`, set with `PutRateLimit`), the
//! node's `[[rate_limits.overrides]]` (first matching glob), the node's `[rate_limits]`
//! defaults. A bucket remembers the rules' fingerprint it was sized under and is resized when
//! the rules change. A breach is answered `RESOURCE_EXHAUSTED` with a `retry-after` hint by the
//! audit layer, which records it.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tessera_state::policy::{AccessControl, Action, Budget, Glob};

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
            | A::AuditHash
            | A::ListMembers
            | A::ChangeMembership
            | A::PutRateLimit
            | A::ListRateLimits
            | A::DeleteRateLimit
            | A::SnapshotSave
            | A::SnapshotRestore
            | A::RotateBarrier
            | A::Rekey => Self::Operator,
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

impl From<Budget> for Limit {
    fn from(budget: Budget) -> Self {
        Self {
            rate: f64::from(budget.per_second),
            burst: f64::from(budget.burst),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// The bucket's size, and the fingerprint of the replicated rules it was resolved under.
    limit: Limit,
    rules: [u8; 32],
}

impl Bucket {
    fn is_full_at(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * self.limit.rate
            >= self.limit.burst
    }
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

    /// Whether requests are limited at all (when not, [`Self::take`] always succeeds).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The node configuration's limit for `identity` (its first matching override, else the
    /// defaults).
    fn configured(&self, identity: &str, class: ActionClass) -> Limit {
        self.overrides
            .iter()
            .find(|(glob, _)| glob.matches(identity))
            .map_or(&self.limits, |(_, limits)| limits)
            .get(class)
    }

    /// `identity`'s limit for `class`: the replicated rule's budget if one applies and names
    /// the class, else the configured one.
    fn resolve(&self, identity: &str, class: ActionClass, access: &AccessControl) -> Limit {
        access
            .rate_limit_for(identity)
            .and_then(|rule| match class {
                ActionClass::Crypto => rule.crypto,
                ActionClass::Keys => rule.keys,
                ActionClass::Operator => rule.operator,
            })
            .map_or_else(|| self.configured(identity, class), Limit::from)
    }

    /// Takes one token from `identity`'s bucket for `action`'s class at `now`, sized by the
    /// rules in `access` and this node's configuration. `Err` carries how long until a token
    /// is available.
    ///
    /// # Errors
    /// The wait, when the bucket is empty.
    pub fn take(
        &self,
        identity: &str,
        action: Action,
        now: Instant,
        access: &AccessControl,
    ) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let class = ActionClass::of(action);
        let rules = access.rate_limits_fingerprint();
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
            buckets.retain(|_, b| !b.is_full_at(now));
        }
        let bucket = buckets
            .entry((identity.to_owned(), class))
            .or_insert_with(|| {
                let limit = self.resolve(identity, class, access);
                Bucket {
                    tokens: limit.burst,
                    at: now,
                    limit,
                    rules,
                }
            });
        if bucket.rules != rules {
            // The rules changed: resize, keeping the tokens saved (up to the new burst).
            bucket.limit = self.resolve(identity, class, access);
            bucket.rules = rules;
        }
        let limit = bucket.limit;
        if !(limit.rate > 0.0 && limit.burst >= 1.0) {
            // A zero limit refuses the class outright; retry after a minute.
            return Err(Duration::from_secs(60));
        }
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

    /// A take with no replicated rules.
    fn take(limits: &RateLimiter, id: &str, action: Action, now: Instant) -> Result<(), Duration> {
        limits.take(id, action, now, &AccessControl::default())
    }

    fn rules(rules: Vec<tessera_state::policy::RateLimitRule>) -> AccessControl {
        AccessControl::from_parts(Vec::new(), Vec::new(), Vec::new(), Vec::new(), rules)
    }

    fn crypto_rule(
        pattern: &str,
        per_second: u32,
        burst: u32,
    ) -> tessera_state::policy::RateLimitRule {
        tessera_state::policy::RateLimitRule {
            identity: Glob::new(pattern),
            crypto: Some(Budget { per_second, burst }),
            keys: None,
            operator: None,
        }
    }

    #[test]
    fn replicated_rules_win_over_the_configuration_and_resize_buckets_when_they_change() {
        let limits = limiter(
            r#"
crypto = { rate = 1.0, burst = 1.0 }
[[overrides]]
identity = "batch-*"
crypto = { rate = 1.0, burst = 2.0 }
"#,
        );
        let t0 = Instant::now();
        let wide = rules(vec![crypto_rule("batch-*", 100, 5)]);
        for _ in 0..5 {
            limits.take("batch-1", Action::Encrypt, t0, &wide).unwrap();
        }
        assert!(limits.take("batch-1", Action::Encrypt, t0, &wide).is_err());
        // Classes the rule leaves out keep the configured limit; others are unaffected.
        assert_eq!(
            limits.resolve("batch-1", ActionClass::Keys, &wide),
            default_keys()
        );
        limits.take("app", Action::Encrypt, t0, &wide).unwrap();
        assert!(limits.take("app", Action::Encrypt, t0, &wide).is_err());
        // A stricter rule applies at once to the existing bucket ...
        let shut = rules(vec![crypto_rule("batch-*", 0, 0)]);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            limits.take("batch-1", Action::Encrypt, later, &shut),
            Err(Duration::from_secs(60))
        );
        // ... and without rules the configured override is back.
        let none = AccessControl::default();
        limits
            .take("batch-1", Action::Encrypt, later, &none)
            .unwrap();
        limits
            .take("batch-1", Action::Encrypt, later, &none)
            .unwrap();
        assert!(limits
            .take("batch-1", Action::Encrypt, later, &none)
            .is_err());
    }

    #[test]
    fn a_bucket_empties_refills_and_says_when() {
        let limits = limiter("crypto = { rate = 10.0, burst = 3.0 }");
        let t0 = Instant::now();
        for _ in 0..3 {
            take(&limits, "a", Action::Encrypt, t0).unwrap();
        }
        let wait = take(&limits, "a", Action::Encrypt, t0).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        take(
            &limits,
            "a",
            Action::Encrypt,
            t0 + Duration::from_millis(100),
        )
        .unwrap();
    }

    #[test]
    fn every_action_outside_kms_is_an_operator_action() {
        for action in Action::all() {
            let operator = !action.name().starts_with("kms:");
            assert_eq!(
                ActionClass::of(action) == ActionClass::Operator,
                operator,
                "{action}"
            );
        }
    }

    #[test]
    fn identities_and_classes_have_their_own_buckets() {
        let limits = limiter("crypto = { rate = 1.0, burst = 1.0 }");
        let t0 = Instant::now();
        take(&limits, "a", Action::Encrypt, t0).unwrap();
        assert!(take(&limits, "a", Action::Decrypt, t0).is_err());
        take(&limits, "b", Action::Encrypt, t0).unwrap();
        take(&limits, "a", Action::CreateKey, t0).unwrap();
        take(&limits, "a", Action::Status, t0).unwrap();
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
            take(&limits, "batch-7", Action::Encrypt, t0).unwrap();
        }
        take(&limits, "app", Action::Encrypt, t0).unwrap();
        assert!(take(&limits, "app", Action::Encrypt, t0).is_err());
        assert_eq!(
            limits.configured("batch-7", ActionClass::Keys),
            default_keys()
        );
    }

    #[test]
    fn disabled_limits_let_everything_through() {
        let limits = limiter("enabled = false\ncrypto = { rate = 1.0, burst = 1.0 }");
        let t0 = Instant::now();
        for _ in 0..10 {
            take(&limits, "a", Action::Encrypt, t0).unwrap();
        }
    }
}
