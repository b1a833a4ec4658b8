//! The replicated access model (policies, admin binding, grants, certificate deny-list) and
//! its compiled, per-identity view.
//!
//! Statements are indexed when a policy changes: those whose identity globs are literal by
//! identity, the others in one list. [`AccessControl::view`] gathers an identity's statements
//! once; a server may cache the view and pass it to [`AccessControl::decide`], which checks it
//! against the current policies' fingerprint and recompiles a stale one, so a cached view can
//! never decide with old policies. A decision is then a few mask tests and map lookups.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::KeyId;
use crate::policy::action::Action;
use crate::policy::document::{Effect, PolicyDocument, Statement};
use crate::policy::eval::{AccessRequest, AllowedBy, Decision, DenyReason, StatementRef};
use crate::policy::glob::Glob;
use crate::policy::grant::Grant;
use crate::policy::names::{GrantId, Identity, PolicyName};
use crate::policy::rate_limit::{self, RateLimitRule};
use crate::policy::revocation::{PresentedCertificate, RevokedCertificate};

/// A named policy as stored: every `PutPolicy` bumps its version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    /// The name.
    pub name: PolicyName,
    /// The version, from 1.
    pub version: u64,
    /// The document.
    pub document: PolicyDocument,
}

/// A deny-list entry as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The certificate.
    pub certificate: RevokedCertificate,
    /// Cluster time when it was added (ms since the Unix epoch).
    pub revoked_at_ms: u64,
}

#[derive(Debug)]
struct Compiled {
    at: StatementRef,
    statement: Statement,
}

/// The statements that name one identity, compiled from the policies with a given
/// fingerprint. Cheap to clone; see [`AccessControl::view`].
#[derive(Clone, Debug)]
pub struct IdentityView {
    identity: Identity,
    admin: bool,
    statements: Vec<Arc<Compiled>>,
    fingerprint: [u8; 32],
}

impl IdentityView {
    /// The identity the view is for.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// How many statements name the identity.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }
}

#[derive(Clone, Debug, Default)]
struct PolicyIndex {
    literal: BTreeMap<String, Vec<Arc<Compiled>>>,
    wildcard: Vec<Arc<Compiled>>,
    fingerprint: [u8; 32],
}

/// Policies, admin binding, grants and revoked certificates, with their derived indexes.
#[derive(Clone, Debug, Default)]
pub struct AccessControl {
    policies: BTreeMap<PolicyName, StoredPolicy>,
    admins: BTreeSet<Identity>,
    grants: BTreeMap<GrantId, Grant>,
    revoked: BTreeMap<RevokedCertificate, Revocation>,
    rate_limits: BTreeMap<Glob, RateLimitRule>,
    /// Derived: SHA-256 over the rate-limit rules, so a node can tell when budgets it
    /// resolved are stale.
    rate_limits_fingerprint: [u8; 32],
    /// Derived: key → its grants.
    grants_by_key: BTreeMap<KeyId, BTreeSet<GrantId>>,
    /// Derived: compiled statements.
    index: PolicyIndex,
}

impl AccessControl {
    /// Rebuilds the model and its indexes from stored parts.
    pub fn from_parts(
        policies: Vec<StoredPolicy>,
        admins: Vec<Identity>,
        grants: Vec<Grant>,
        revoked: Vec<Revocation>,
        rate_limits: Vec<RateLimitRule>,
    ) -> Self {
        let mut access = Self {
            rate_limits: rate_limits
                .into_iter()
                .map(|r| (r.identity.clone(), r))
                .collect(),
            policies: policies.into_iter().map(|p| (p.name.clone(), p)).collect(),
            admins: admins.into_iter().collect(),
            revoked: revoked
                .into_iter()
                .map(|r| (r.certificate.clone(), r))
                .collect(),
            ..Self::default()
        };
        for grant in grants {
            access.insert_grant(grant);
        }
        access.reindex();
        access.rehash_rate_limits();
        access
    }

    /// The rate-limit rules, in pattern order.
    pub fn rate_limits(&self) -> impl Iterator<Item = &RateLimitRule> {
        self.rate_limits.values()
    }

    /// The rule stored for exactly this pattern.
    pub fn rate_limit(&self, identity: &Glob) -> Option<&RateLimitRule> {
        self.rate_limits.get(identity)
    }

    /// The rule that applies to `identity` (see [`rate_limit::most_specific`]).
    pub fn rate_limit_for(&self, identity: &str) -> Option<&RateLimitRule> {
        rate_limit::most_specific(self.rate_limits.values(), identity)
    }

    /// SHA-256 over the rate-limit rules: changes exactly when [`Self::rate_limit_for`] could.
    pub fn rate_limits_fingerprint(&self) -> [u8; 32] {
        self.rate_limits_fingerprint
    }

    /// Stores `rule`, replacing the one with the same pattern.
    pub(crate) fn put_rate_limit(&mut self, rule: &RateLimitRule) {
        self.rate_limits.insert(rule.identity.clone(), rule.clone());
        self.rehash_rate_limits();
    }

    /// Removes the rule for `identity`; whether it existed.
    pub(crate) fn delete_rate_limit(&mut self, identity: &Glob) -> bool {
        let existed = self.rate_limits.remove(identity).is_some();
        self.rehash_rate_limits();
        existed
    }

    fn rehash_rate_limits(&mut self) {
        let mut digest = Sha256::new();
        for rule in self.rate_limits.values() {
            digest.update(postcard::to_allocvec(rule).unwrap_or_default());
        }
        self.rate_limits_fingerprint = digest.finalize().into();
    }

    /// The stored policies, by name.
    pub fn policies(&self) -> impl Iterator<Item = &StoredPolicy> {
        self.policies.values()
    }

    /// A policy by name.
    pub fn policy(&self, name: &PolicyName) -> Option<&StoredPolicy> {
        self.policies.get(name)
    }

    /// Identities bound to the built-in `admin` policy.
    pub fn admins(&self) -> impl Iterator<Item = &Identity> {
        self.admins.iter()
    }

    /// All grants, by id.
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants.values()
    }

    /// A grant by id.
    pub fn grant(&self, grant_id: &GrantId) -> Option<&Grant> {
        self.grants.get(grant_id)
    }

    /// The grants on one key.
    pub fn grants_for_key<'a>(&'a self, key_id: &KeyId) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants_by_key
            .get(key_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.grants.get(id))
    }

    /// The certificate deny-list.
    pub fn revocations(&self) -> impl Iterator<Item = &Revocation> {
        self.revoked.values()
    }

    /// Whether `certificate` is on the deny-list (by serial or by fingerprint).
    pub fn is_revoked(&self, certificate: &PresentedCertificate) -> bool {
        self.revoked
            .contains_key(&RevokedCertificate::Serial(certificate.serial.clone()))
            || self
                .revoked
                .contains_key(&RevokedCertificate::Fingerprint(certificate.fingerprint))
    }

    /// SHA-256 over the policies and the admin binding: changes exactly when a decision by
    /// policy could.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.index.fingerprint
    }

    /// Compiles the statements that name `identity`, in (policy, statement) order.
    pub fn view(&self, identity: &Identity) -> IdentityView {
        let mut statements: Vec<Arc<Compiled>> = self
            .index
            .literal
            .get(identity.as_str())
            .into_iter()
            .flatten()
            .chain(
                self.index
                    .wildcard
                    .iter()
                    .filter(|c| c.statement.names(identity)),
            )
            .cloned()
            .collect();
        statements.sort_by(|a, b| a.at.cmp(&b.at));
        statements.dedup_by(|a, b| a.at == b.at);
        IdentityView {
            identity: identity.clone(),
            admin: self.admins.contains(identity),
            statements,
            fingerprint: self.index.fingerprint,
        }
    }

    /// Decides `request` with a fresh view of its identity, at cluster time `now_ms`.
    pub fn authorize(&self, request: &AccessRequest, now_ms: u64) -> Decision {
        self.decide(&self.view(&request.identity), request, now_ms)
    }

    /// Decides `request` at cluster time `now_ms` with a (possibly cached) view; a view of
    /// another identity or of older policies is recompiled first.
    ///
    /// Order: a revoked certificate is denied; `operator:WhoAmI` is allowed; a matching deny
    /// statement denies; then the admin binding, a matching allow statement, or a live grant
    /// on the key allows; otherwise the request is denied by default.
    pub fn decide(&self, view: &IdentityView, request: &AccessRequest, now_ms: u64) -> Decision {
        let view =
            if view.fingerprint == self.index.fingerprint && view.identity == request.identity {
                Cow::Borrowed(view)
            } else {
                Cow::Owned(self.view(&request.identity))
            };
        if request
            .certificate
            .as_ref()
            .is_some_and(|c| self.is_revoked(c))
        {
            return Decision::Deny {
                reason: DenyReason::RevokedCertificate,
            };
        }
        if request.action == Action::WhoAmI {
            return Decision::Allow {
                by: AllowedBy::Always,
            };
        }
        let matching = || {
            view.statements
                .iter()
                .filter(|c| c.statement.applies(request))
        };
        if let Some(deny) = matching().find(|c| c.statement.effect == Effect::Deny) {
            return Decision::Deny {
                reason: DenyReason::Statement(deny.at.clone()),
            };
        }
        if view.admin {
            return Decision::Allow {
                by: AllowedBy::Admin,
            };
        }
        if let Some(allow) = matching().find(|c| c.statement.effect == Effect::Allow) {
            return Decision::Allow {
                by: AllowedBy::Statement(allow.at.clone()),
            };
        }
        let key_id = request.key.as_ref().and_then(|k| k.id.as_ref());
        if let Some(grant) = key_id.and_then(|id| {
            self.grants_for_key(id).find(|g| {
                g.grantee == request.identity && g.allows(request.action, &request.context, now_ms)
            })
        }) {
            return Decision::Allow {
                by: AllowedBy::Grant(grant.grant_id.clone()),
            };
        }
        Decision::Deny {
            reason: DenyReason::NoMatch,
        }
    }

    /// Stores `document` under `name`, one version above the current one; returns the new
    /// version.
    pub(crate) fn put_policy(&mut self, name: &PolicyName, document: &PolicyDocument) -> u64 {
        let version = self
            .policies
            .get(name)
            .map_or(1, |p| p.version.saturating_add(1));
        self.policies.insert(
            name.clone(),
            StoredPolicy {
                name: name.clone(),
                version,
                document: document.clone(),
            },
        );
        self.reindex();
        version
    }

    /// Removes a policy; whether it existed.
    pub(crate) fn delete_policy(&mut self, name: &PolicyName) -> bool {
        let existed = self.policies.remove(name).is_some();
        if existed {
            self.reindex();
        }
        existed
    }

    /// Binds `identity` to the built-in `admin` policy.
    pub(crate) fn bind_admin(&mut self, identity: &Identity) {
        self.admins.insert(identity.clone());
        self.reindex();
    }

    /// Stores a grant (the caller has validated it).
    pub(crate) fn insert_grant(&mut self, grant: Grant) {
        self.grants_by_key
            .entry(grant.key_id.clone())
            .or_default()
            .insert(grant.grant_id.clone());
        self.grants.insert(grant.grant_id.clone(), grant);
    }

    /// Removes a grant; the removed grant.
    pub(crate) fn remove_grant(&mut self, grant_id: &GrantId) -> Option<Grant> {
        let grant = self.grants.remove(grant_id)?;
        if let Some(ids) = self.grants_by_key.get_mut(&grant.key_id) {
            ids.remove(grant_id);
            if ids.is_empty() {
                self.grants_by_key.remove(&grant.key_id);
            }
        }
        Some(grant)
    }

    /// Removes every grant on a key (it was destroyed); the removed ids.
    pub(crate) fn remove_grants_of_key(&mut self, key_id: &KeyId) -> Vec<GrantId> {
        let ids: Vec<GrantId> = self
            .grants_by_key
            .remove(key_id)
            .into_iter()
            .flatten()
            .collect();
        for id in &ids {
            self.grants.remove(id);
        }
        ids
    }

    /// Adds a certificate to the deny-list at cluster time `now_ms`; an entry already there
    /// keeps its first time. Returns the stored entry.
    pub(crate) fn revoke(&mut self, certificate: &RevokedCertificate, now_ms: u64) -> &Revocation {
        self.revoked
            .entry(certificate.clone())
            .or_insert_with(|| Revocation {
                certificate: certificate.clone(),
                revoked_at_ms: now_ms,
            })
    }

    fn reindex(&mut self) {
        let mut index = PolicyIndex::default();
        let mut digest = Sha256::new();
        for policy in self.policies.values() {
            digest.update(postcard::to_allocvec(policy).unwrap_or_default());
            for (i, statement) in policy.document.statements().iter().enumerate() {
                let compiled = Arc::new(Compiled {
                    at: StatementRef {
                        policy: policy.name.clone(),
                        version: policy.version,
                        index: i,
                        sid: statement.sid.clone(),
                    },
                    statement: statement.clone(),
                });
                let mut literals: Vec<&str> = statement
                    .identities
                    .iter()
                    .filter(|g| g.is_literal())
                    .map(|g| g.as_str())
                    .collect();
                literals.dedup();
                for literal in literals {
                    index
                        .literal
                        .entry(literal.to_owned())
                        .or_default()
                        .push(Arc::clone(&compiled));
                }
                if statement.identities.iter().any(|g| !g.is_literal()) {
                    index.wildcard.push(compiled);
                }
            }
        }
        for admin in &self.admins {
            digest.update(b"\0admin\0");
            digest.update(admin.as_str().as_bytes());
        }
        index.fingerprint = digest.finalize().into();
        self.index = index;
    }
}

#[cfg(test)]
mod tests;
