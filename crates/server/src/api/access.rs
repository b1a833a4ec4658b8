//! `tessera.v1.Access`: policies, grants, the certificate deny-list and `WhoAmI`.
//!
//! Writes propose the access commands of the replicated state through [`Node::write`] (so
//! request ids and fingerprints work as for key writes); reads are answered from the node's
//! applied state under its lease. Every call is itself authorised like any other.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_proto::v1 as pb;
use tessera_proto::v1::access_server::Access;
use tessera_state::policy::{
    AccessControl, Action, Budget, ContextConstraint, Format, Glob, Grant, GrantId, Identity,
    PolicyDocument, PolicyName, RateLimitRule, RevokedCertificate,
};
use tessera_state::{ApplyError, Command, Response};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use crate::authz::{self, split, Caller};
use crate::error::ApiError;
use crate::node::{rand_fill, ClientRequest, Node, WriteCall};

/// Implements `tessera.v1.Access`.
pub struct AccessService {
    node: Arc<Node>,
}

/// Calls with no encryption context.
static NO_CONTEXT: BTreeMap<String, String> = BTreeMap::new();

fn policy_name(name: &str) -> Result<PolicyName, ApiError> {
    PolicyName::parse(name).map_err(|e| ApiError::invalid("name", e))
}

/// The document format a `PutPolicy` names, or guesses from the text when it names none.
fn document_format(format: &str, text: &str) -> Result<Format, ApiError> {
    match format {
        "json" => Ok(Format::Json),
        "toml" => Ok(Format::Toml),
        "" if text.trim_start().starts_with('{') => Ok(Format::Json),
        "" => Ok(Format::Toml),
        other => Err(ApiError::not_one_of("format", other, "json, toml or empty")),
    }
}

/// The API view of a grant.
fn grant_to_proto(grant: &Grant) -> pb::Grant {
    let (context, context_subset) = match &grant.constraint {
        None => (BTreeMap::new(), false),
        Some(ContextConstraint::Equals(pairs)) => (pairs.clone(), false),
        Some(ContextConstraint::Subset(pairs)) => (pairs.clone(), true),
    };
    pb::Grant {
        grant_id: grant.grant_id.to_string(),
        key_id: grant.key_id.to_string(),
        grantee: grant.grantee.to_string(),
        actions: grant.actions.iter().map(|a| a.name().to_owned()).collect(),
        context,
        context_subset,
        expires_at_ms: grant.expires_at_ms.unwrap_or_default(),
        created_by: grant.created_by.to_string(),
    }
}

/// The API view of a rate-limit rule.
fn rate_limit_to_proto(rule: &RateLimitRule) -> pb::RateLimit {
    let budget = |b: Option<Budget>| {
        b.map(|b| pb::Budget {
            per_second: b.per_second,
            burst: b.burst,
        })
    };
    pb::RateLimit {
        identity: rule.identity.as_str().to_owned(),
        crypto: budget(rule.crypto),
        keys: budget(rule.keys),
        operator: budget(rule.operator),
    }
}

/// A rule from its API form, validated (so a bad rule is refused before it is proposed).
fn rate_limit_from_proto(rule: Option<pb::RateLimit>) -> Result<RateLimitRule, ApiError> {
    let rule = rule.ok_or_else(|| ApiError::invalid("rule", "missing"))?;
    let budget = |b: Option<pb::Budget>| {
        b.map(|b| Budget {
            per_second: b.per_second,
            burst: b.burst,
        })
    };
    let rule = RateLimitRule {
        identity: Glob::new(&rule.identity),
        crypto: budget(rule.crypto),
        keys: budget(rule.keys),
        operator: budget(rule.operator),
    };
    rule.validate().map_err(|problem| {
        ApiError::Rejected(ApplyError::InvalidRateLimit {
            identity: rule.identity_for_message(),
            problem,
        })
    })?;
    Ok(rule)
}

impl AccessService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// Authorises an action that names no key.
    fn allow(&self, caller: &Caller, action: Action) -> Result<(), ApiError> {
        self.node.authorize(caller, action, None, &NO_CONTEXT)
    }

    /// Answers a read of the access model from this node's applied state (under its lease) to
    /// a caller allowed `action`.
    fn read_access<T>(
        &self,
        caller: &Caller,
        action: Action,
        read: impl FnOnce(&AccessControl) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.node.serving_now()?;
        self.allow(caller, action)?;
        let applied = self.node.raft().shared().read();
        read(applied.state.access())
    }

    /// Proposes `command` as the write `req` of `action` (its request id and fingerprint).
    async fn propose<M: ClientRequest>(
        &self,
        action: Action,
        caller: &Caller,
        req: &M,
        command: Command,
    ) -> Result<Response, ApiError> {
        let call = WriteCall::new(action, caller, req);
        self.node.write(&call, Vec::new(), command).await
    }

    async fn identify(
        &self,
        _req: pb::WhoAmIRequest,
        caller: &Caller,
    ) -> Result<pb::WhoAmIResponse, ApiError> {
        self.allow(caller, Action::WhoAmI)?;
        let applied = self.node.raft().shared().read();
        let access = applied.state.access();
        let admin = access.admins().any(|a| a == caller.identity());
        let named = access
            .policies()
            .filter(|p| {
                p.document
                    .statements()
                    .iter()
                    .any(|s| s.names(caller.identity()))
            })
            .map(|p| p.name.to_string());
        let policies = admin
            .then(|| tessera_state::policy::ADMIN_POLICY.to_owned())
            .into_iter()
            .chain(named)
            .collect();
        Ok(pb::WhoAmIResponse {
            identity: caller.name().to_owned(),
            certificate_fingerprint_sha256: hex::encode(caller.certificate().fingerprint),
            certificate_serial: hex::encode(caller.certificate().serial.as_bytes()),
            policies,
            admin,
        })
    }

    async fn store_policy(
        &self,
        req: pb::PutPolicyRequest,
        caller: &Caller,
    ) -> Result<pb::PutPolicyResponse, ApiError> {
        self.allow(caller, Action::PutPolicy)?;
        let name = policy_name(&req.name)?;
        let document =
            PolicyDocument::parse(&req.document, document_format(&req.format, &req.document)?)?;
        match self
            .propose(
                Action::PutPolicy,
                caller,
                &req,
                Command::PutPolicy { name, document },
            )
            .await?
        {
            Response::PolicyStored { name, version } => Ok(pb::PutPolicyResponse {
                name: name.to_string(),
                version,
            }),
            _ => Err(ApiError::Internal("a policy write returned no policy")),
        }
    }

    async fn read_policy(
        &self,
        req: pb::GetPolicyRequest,
        caller: &Caller,
    ) -> Result<pb::Policy, ApiError> {
        self.read_access(caller, Action::GetPolicy, |access| {
            let name = policy_name(&req.name)?;
            let policy = access
                .policy(&name)
                .ok_or(ApiError::Rejected(ApplyError::PolicyNotFound { name }))?;
            Ok(pb::Policy {
                name: policy.name.to_string(),
                version: policy.version,
                document: policy.document.to_json()?,
            })
        })
    }

    async fn policy_list(
        &self,
        _req: pb::ListPoliciesRequest,
        caller: &Caller,
    ) -> Result<pb::ListPoliciesResponse, ApiError> {
        self.read_access(caller, Action::ListPolicies, |access| {
            let policies = access
                .policies()
                .map(|p| pb::PolicySummary {
                    name: p.name.to_string(),
                    version: p.version,
                    statements: u32::try_from(p.document.statements().len()).unwrap_or(u32::MAX),
                })
                .collect();
            Ok(pb::ListPoliciesResponse { policies })
        })
    }

    async fn drop_policy(
        &self,
        req: pb::DeletePolicyRequest,
        caller: &Caller,
    ) -> Result<pb::DeletePolicyResponse, ApiError> {
        self.allow(caller, Action::DeletePolicy)?;
        let name = policy_name(&req.name)?;
        match self
            .propose(
                Action::DeletePolicy,
                caller,
                &req,
                Command::DeletePolicy { name },
            )
            .await?
        {
            Response::PolicyDeleted { name } => Ok(pb::DeletePolicyResponse {
                name: name.to_string(),
            }),
            _ => Err(ApiError::Internal("a policy delete returned no policy")),
        }
    }

    async fn evaluate_policy(
        &self,
        req: pb::CheckPolicyRequest,
        caller: &Caller,
    ) -> Result<pb::CheckPolicyResponse, ApiError> {
        self.node.require_serving().await?;
        self.allow(caller, Action::CheckPolicy)?;
        let identity =
            Identity::parse(&req.identity).map_err(|e| ApiError::invalid("identity", e))?;
        let action = Action::parse(&req.action).map_err(|e| ApiError::invalid("action", e))?;
        let key = if req.key.is_empty() {
            None
        } else {
            let record = self.node.resolve_key(&req.key).await?;
            let applied = self.node.raft().shared().read();
            Some(authz::key_attributes(&applied.state, &record))
        };
        let decision = self.node.decide(&tessera_state::policy::AccessRequest {
            identity,
            certificate: None,
            action,
            key,
            context: req.context,
        });
        Ok(pb::CheckPolicyResponse {
            allowed: decision.is_allowed(),
            decided_by: authz::explain(&decision),
        })
    }

    async fn new_grant(
        &self,
        req: pb::CreateGrantRequest,
        caller: &Caller,
    ) -> Result<pb::Grant, ApiError> {
        let grantee = Identity::parse(&req.grantee).map_err(|e| ApiError::invalid("grantee", e))?;
        let actions = req
            .actions
            .iter()
            .map(|a| Action::parse(a).map_err(|e| ApiError::invalid("actions", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let constraint = match (req.context_equals.is_empty(), req.context_subset) {
            (true, _) => None,
            (false, false) => Some(ContextConstraint::Equals(req.context_equals.clone())),
            (false, true) => Some(ContextConstraint::Subset(req.context_equals.clone())),
        };
        let mut id = [0u8; 16];
        rand_fill(&mut id);
        let grant_id =
            GrantId::parse(&hex::encode(id)).map_err(|_| ApiError::Internal("grant id"))?;
        let call = WriteCall::new(Action::CreateGrant, caller, &req);
        let mut proposed = None;
        let response = self
            .node
            .write_for_key(&call, &req.key, |record| {
                let expires_at_ms = (req.expires_in_seconds > 0).then(|| {
                    let cluster_now = self.node.raft().shared().read().state.clock().now_ms();
                    grant_expiry(cluster_now, self.node.now_ms(), req.expires_in_seconds)
                });
                let grant = Grant {
                    grant_id: grant_id.clone(),
                    key_id: record.key_id.clone(),
                    grantee: grantee.clone(),
                    actions: actions.clone(),
                    constraint: constraint.clone(),
                    expires_at_ms,
                    created_by: caller.identity().clone(),
                };
                proposed = Some(grant.clone());
                Ok(Command::CreateGrant(grant))
            })
            .await?;
        let Response::GrantCreated { grant_id, .. } = response else {
            return Err(ApiError::Internal("a grant write returned no grant"));
        };
        // A retried request id answers with the first attempt's grant.
        match proposed.filter(|g| g.grant_id == grant_id) {
            Some(grant) => Ok(grant_to_proto(&grant)),
            None => self
                .node
                .raft()
                .shared()
                .read()
                .state
                .access()
                .grant(&grant_id)
                .map(grant_to_proto)
                .ok_or(ApiError::Rejected(ApplyError::GrantNotFound { grant_id })),
        }
    }

    async fn grant_list(
        &self,
        req: pb::ListGrantsRequest,
        caller: &Caller,
    ) -> Result<pb::ListGrantsResponse, ApiError> {
        self.node.require_serving().await?;
        let key = if req.key.is_empty() {
            self.allow(caller, Action::ListGrants)?;
            None
        } else {
            let record = self.node.resolve_key(&req.key).await?;
            self.node
                .authorize(caller, Action::ListGrants, Some(&record), &NO_CONTEXT)?;
            Some(record.key_id)
        };
        let applied = self.node.raft().shared().read();
        let access = applied.state.access();
        let grants = match &key {
            Some(key_id) => access.grants_for_key(key_id).map(grant_to_proto).collect(),
            None => access.grants().map(grant_to_proto).collect(),
        };
        Ok(pb::ListGrantsResponse { grants })
    }

    async fn withdraw_grant(
        &self,
        req: pb::RevokeGrantRequest,
        caller: &Caller,
    ) -> Result<pb::RevokeGrantResponse, ApiError> {
        self.node.require_unsealed()?;
        let grant_id =
            GrantId::parse(&req.grant_id).map_err(|e| ApiError::invalid("grant_id", e))?;
        let key_of = || {
            self.node
                .raft()
                .shared()
                .read()
                .state
                .access()
                .grant(&grant_id)
                .map(|g| g.key_id.clone())
        };
        let key_id = match key_of() {
            Some(key_id) => Some(key_id),
            None => {
                // It may have been created through another node a moment ago.
                self.node.raft().read_barrier().await?;
                key_of()
            }
        };
        let call = WriteCall::new(Action::RevokeGrant, caller, &req);
        let response = match key_id {
            Some(key_id) => {
                let record = self.node.resolve_key(key_id.as_str()).await?;
                self.node
                    .authorize(caller, Action::RevokeGrant, Some(&record), &NO_CONTEXT)?;
                self.node
                    .write(&call, Vec::new(), Command::RevokeGrant { grant_id })
                    .await?
            }
            // A retry of a revocation that succeeded finds the grant gone.
            None => self
                .node
                .previous_result(&call)
                .ok_or(ApiError::Rejected(ApplyError::GrantNotFound { grant_id }))?,
        };
        match response {
            Response::GrantRevoked { grant_id } => Ok(pb::RevokeGrantResponse {
                grant_id: grant_id.to_string(),
            }),
            _ => Err(ApiError::Internal("a grant revocation returned no grant")),
        }
    }

    async fn deny_certificate(
        &self,
        req: pb::RevokeCertificateRequest,
        caller: &Caller,
    ) -> Result<pb::RevokeCertificateResponse, ApiError> {
        self.allow(caller, Action::RevokeCertificate)?;
        use pb::revoke_certificate_request::Certificate;
        let certificate = match &req.certificate {
            Some(Certificate::SerialHex(serial)) => RevokedCertificate::Serial(
                tessera_state::policy::CertificateSerial::from_hex(serial)
                    .map_err(|e| ApiError::invalid("serial_hex", e))?,
            ),
            Some(Certificate::FingerprintSha256Hex(digest)) => {
                RevokedCertificate::fingerprint_hex(digest)
                    .map_err(|e| ApiError::invalid("fingerprint_sha256_hex", e))?
            }
            None => {
                return Err(ApiError::invalid(
                    "certificate",
                    "give serial_hex or fingerprint_sha256_hex",
                ))
            }
        };
        match self
            .propose(
                Action::RevokeCertificate,
                caller,
                &req,
                Command::RevokeCertificate { certificate },
            )
            .await?
        {
            Response::CertificateRevoked(entry) => Ok(pb::RevokeCertificateResponse {
                certificate: Some(pb::RevokedCertificate {
                    entry: entry.certificate.row_name(),
                }),
            }),
            _ => Err(ApiError::Internal("a revocation returned no certificate")),
        }
    }

    async fn store_rate_limit(
        &self,
        req: pb::PutRateLimitRequest,
        caller: &Caller,
    ) -> Result<pb::RateLimit, ApiError> {
        self.allow(caller, Action::PutRateLimit)?;
        let rule = rate_limit_from_proto(req.rule.clone())?;
        match self
            .propose(
                Action::PutRateLimit,
                caller,
                &req,
                Command::PutRateLimit(rule),
            )
            .await?
        {
            Response::RateLimitStored(rule) => Ok(rate_limit_to_proto(&rule)),
            _ => Err(ApiError::Internal("a rate-limit write returned no rule")),
        }
    }

    async fn rate_limit_list(
        &self,
        _req: pb::ListRateLimitsRequest,
        caller: &Caller,
    ) -> Result<pb::ListRateLimitsResponse, ApiError> {
        self.read_access(caller, Action::ListRateLimits, |access| {
            let rules = access.rate_limits().map(rate_limit_to_proto).collect();
            Ok(pb::ListRateLimitsResponse { rules })
        })
    }

    async fn drop_rate_limit(
        &self,
        req: pb::DeleteRateLimitRequest,
        caller: &Caller,
    ) -> Result<pb::DeleteRateLimitResponse, ApiError> {
        self.allow(caller, Action::DeleteRateLimit)?;
        if req.identity.is_empty() {
            return Err(ApiError::invalid("identity", "must not be empty"));
        }
        let identity = Glob::new(&req.identity);
        match self
            .propose(
                Action::DeleteRateLimit,
                caller,
                &req,
                Command::DeleteRateLimit { identity },
            )
            .await?
        {
            Response::RateLimitDeleted { identity } => Ok(pb::DeleteRateLimitResponse {
                identity: identity.as_str().to_owned(),
            }),
            _ => Err(ApiError::Internal("a rate-limit delete returned no rule")),
        }
    }

    async fn list_revoked(
        &self,
        _req: pb::ListRevokedCertificatesRequest,
        caller: &Caller,
    ) -> Result<pb::ListRevokedCertificatesResponse, ApiError> {
        self.read_access(caller, Action::ListRevoked, |access| {
            let certificates = access
                .revocations()
                .map(|r| pb::RevokedCertificate {
                    entry: r.certificate.row_name(),
                })
                .collect();
            Ok(pb::ListRevokedCertificatesResponse { certificates })
        })
    }
}

rpcs! {
    impl Access for AccessService, first [];
    who_am_i(WhoAmIRequest) -> WhoAmIResponse = identify;
    put_policy(PutPolicyRequest) -> PutPolicyResponse = store_policy;
    get_policy(GetPolicyRequest) -> Policy = read_policy;
    list_policies(ListPoliciesRequest) -> ListPoliciesResponse = policy_list;
    delete_policy(DeletePolicyRequest) -> DeletePolicyResponse = drop_policy;
    check_policy(CheckPolicyRequest) -> CheckPolicyResponse = evaluate_policy;
    create_grant(CreateGrantRequest) -> Grant = new_grant;
    list_grants(ListGrantsRequest) -> ListGrantsResponse = grant_list;
    revoke_grant(RevokeGrantRequest) -> RevokeGrantResponse = withdraw_grant;
    revoke_certificate(RevokeCertificateRequest) -> RevokeCertificateResponse = deny_certificate;
    list_revoked_certificates(ListRevokedCertificatesRequest) -> ListRevokedCertificatesResponse
        = list_revoked;
    put_rate_limit(PutRateLimitRequest) -> RateLimit = store_rate_limit;
    list_rate_limits(ListRateLimitsRequest) -> ListRateLimitsResponse = rate_limit_list;
    delete_rate_limit(DeleteRateLimitRequest) -> DeleteRateLimitResponse = drop_rate_limit;
}

/// When a grant made now for `seconds` expires: `seconds` after cluster time, the clock grants
/// expire by. Until cluster time exists (no majority of nodes has reported its clock yet, in
/// the first moments of a cluster) this node's clock stands in, so an early grant does not get
/// a date in 1970 and expire at once.
fn grant_expiry(cluster_now_ms: u64, node_now_ms: u64, seconds: u64) -> u64 {
    let now = if cluster_now_ms == 0 {
        node_now_ms
    } else {
        cluster_now_ms
    };
    now.saturating_add(seconds.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn formats_are_named_or_guessed() {
        assert_eq!(document_format("json", "x").unwrap(), Format::Json);
        assert_eq!(document_format("", "  {\"a\":1}").unwrap(), Format::Json);
        assert_eq!(document_format("", "[[statements]]").unwrap(), Format::Toml);
        assert!(document_format("yaml", "").is_err());
    }

    #[test]
    fn grants_made_before_cluster_time_exists_expire_after_their_duration() {
        assert_eq!(super::grant_expiry(0, 1_000_000, 60), 1_060_000);
        assert_eq!(super::grant_expiry(2_000_000, 1_000_000, 60), 2_060_000);
        assert_eq!(super::grant_expiry(5, 0, u64::MAX), u64::MAX);
    }
}
