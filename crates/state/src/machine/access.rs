//! Applying the access commands, and the access queries the server asks before it acts.

use sha2::{Digest, Sha256};

use crate::command::{ApplyError, Response};
use crate::ids::KeyId;
use crate::key::KeyRecord;
use crate::machine::State;
use crate::policy::{
    AccessControl, AccessRequest, Decision, Glob, Grant, GrantId, Identity, IdentityView,
    KeyAttributes, PolicyDocument, PolicyName, RateLimitRule, RevokedCertificate, MAX_POLICIES,
    MAX_RATE_LIMIT_RULES,
};
use crate::rows::RowKey;
use crate::seal_config::SealConfig;

impl State {
    pub(super) fn init_seal(
        &mut self,
        config: &SealConfig,
        admin: Option<&Identity>,
    ) -> Result<Response, ApplyError> {
        if self.seal.is_some() {
            return Err(ApplyError::AlreadyInitialized);
        }
        if config.threshold == 0 || config.threshold > config.shares {
            return Err(ApplyError::InvalidSealConfig {
                shares: config.shares,
                threshold: config.threshold,
            });
        }
        self.seal = Some(config.clone());
        self.dirty.insert(RowKey::Seal);
        if let Some(admin) = admin {
            self.access.bind_admin(admin);
            self.dirty.insert(RowKey::Admins);
        }
        Ok(Response::Initialized {
            sealed_root_key_digest: Sha256::digest(&config.sealed_root_key).into(),
        })
    }

    pub(super) fn put_policy(
        &mut self,
        name: &PolicyName,
        document: &PolicyDocument,
    ) -> Result<Response, ApplyError> {
        if name.is_admin() {
            return Err(ApplyError::ReservedPolicyName { name: name.clone() });
        }
        if self.access.policy(name).is_none() && self.access.policies().count() >= MAX_POLICIES {
            return Err(ApplyError::TooManyPolicies {
                max: u32::try_from(MAX_POLICIES).unwrap_or(u32::MAX),
            });
        }
        let version = self.access.put_policy(name, document);
        self.dirty.insert(RowKey::Policy(name.clone()));
        Ok(Response::PolicyStored {
            name: name.clone(),
            version,
        })
    }

    pub(super) fn delete_policy(&mut self, name: &PolicyName) -> Result<Response, ApplyError> {
        if name.is_admin() {
            return Err(ApplyError::ReservedPolicyName { name: name.clone() });
        }
        if !self.access.delete_policy(name) {
            return Err(ApplyError::PolicyNotFound { name: name.clone() });
        }
        self.dirty.insert(RowKey::Policy(name.clone()));
        Ok(Response::PolicyDeleted { name: name.clone() })
    }

    pub(super) fn put_rate_limit(&mut self, rule: &RateLimitRule) -> Result<Response, ApplyError> {
        rule.validate()
            .map_err(|problem| ApplyError::InvalidRateLimit {
                identity: rule.identity_for_message(),
                problem,
            })?;
        if self.access.rate_limit(&rule.identity).is_none()
            && self.access.rate_limits().count() >= MAX_RATE_LIMIT_RULES
        {
            return Err(ApplyError::TooManyRateLimits {
                max: u32::try_from(MAX_RATE_LIMIT_RULES).unwrap_or(u32::MAX),
            });
        }
        self.access.put_rate_limit(rule);
        self.dirty.insert(RowKey::RateLimit(rule.identity.clone()));
        Ok(Response::RateLimitStored(rule.clone()))
    }

    pub(super) fn delete_rate_limit(&mut self, identity: &Glob) -> Result<Response, ApplyError> {
        if !self.access.delete_rate_limit(identity) {
            return Err(ApplyError::RateLimitNotFound {
                identity: crate::policy::truncate(identity.as_str()),
            });
        }
        self.dirty.insert(RowKey::RateLimit(identity.clone()));
        Ok(Response::RateLimitDeleted {
            identity: identity.clone(),
        })
    }

    pub(super) fn create_grant(&mut self, grant: &Grant) -> Result<Response, ApplyError> {
        self.stored_key(&grant.key_id)?;
        if self.access.grant(&grant.grant_id).is_some() {
            return Err(ApplyError::GrantIdTaken {
                grant_id: grant.grant_id.clone(),
            });
        }
        grant
            .validate(self.clock.now_ms())
            .map_err(|problem| ApplyError::InvalidGrant {
                grant_id: grant.grant_id.clone(),
                problem,
            })?;
        self.access.insert_grant(grant.clone());
        self.dirty.insert(RowKey::Grant(grant.grant_id.clone()));
        Ok(Response::GrantCreated {
            grant_id: grant.grant_id.clone(),
            key_id: grant.key_id.clone(),
        })
    }

    pub(super) fn revoke_grant(&mut self, grant_id: &GrantId) -> Result<Response, ApplyError> {
        if self.access.remove_grant(grant_id).is_none() {
            return Err(ApplyError::GrantNotFound {
                grant_id: grant_id.clone(),
            });
        }
        self.dirty.insert(RowKey::Grant(grant_id.clone()));
        Ok(Response::GrantRevoked {
            grant_id: grant_id.clone(),
        })
    }

    pub(super) fn revoke_certificate(&mut self, certificate: &RevokedCertificate) -> Response {
        let now_ms = self.clock.now_ms();
        let entry = self.access.revoke(certificate, now_ms).clone();
        self.dirty.insert(RowKey::Revoked(certificate.clone()));
        Response::CertificateRevoked(entry)
    }

    /// Drops the grants of a destroyed key.
    pub(super) fn drop_grants_of(&mut self, key_id: &KeyId) {
        for grant_id in self.access.remove_grants_of_key(key_id) {
            self.dirty.insert(RowKey::Grant(grant_id));
        }
    }

    /// Policies, admin binding, grants and the certificate deny-list.
    pub fn access(&self) -> &AccessControl {
        &self.access
    }

    /// What a statement or grant may test about `key`: its id, name, aliases and tags.
    pub fn key_attributes(&self, key: &KeyRecord) -> KeyAttributes {
        KeyAttributes {
            id: Some(key.key_id.clone()),
            name: Some(key.name.clone()),
            aliases: self
                .aliases_by_key
                .get(&key.key_id)
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            tags: key.tags.clone(),
        }
    }

    /// Decides `request` against the policies, grants (expiry in cluster time) and the
    /// certificate deny-list; see [`AccessControl::decide`].
    pub fn authorize(&self, request: &AccessRequest) -> Decision {
        self.access.authorize(request, self.clock.now_ms())
    }

    /// As [`State::authorize`], with a cached view of the identity's statements (recompiled
    /// when stale).
    pub fn authorize_with(&self, view: &IdentityView, request: &AccessRequest) -> Decision {
        self.access.decide(view, request, self.clock.now_ms())
    }
}
