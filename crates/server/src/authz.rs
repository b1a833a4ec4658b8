//! Enforcement of the replicated access model on every API call.
//!
//! The model (policies, admin binding, grants, certificate deny-list) and its decision live in
//! `tessera_state::policy`; this module turns a gRPC request into the model's
//! [`AccessRequest`] and decides it against the node's applied state at cluster time, without
//! a Raft round trip. The caller is named by its verified client certificate, which is read
//! from every request (not once per connection), so a certificate revoked while its
//! connection is open is refused on its next call. What a certificate names (identity,
//! serial, fingerprint) depends only on its bytes, so it is parsed once and cached by those
//! bytes ([`CallerCache`]); the deny-list is still checked on every call. Per-identity compiled views are cached;
//! [`AccessControl::decide`] recompiles a view made from older policies, so the cache can
//! never decide with stale policies.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tessera_state::policy::{
    AccessControl, AccessRequest, Action, CertificateSerial, Decision, DenyReason, Identity,
    IdentityView, KeyAttributes, PresentedCertificate,
};
use tessera_state::{KeyRecord, State};

use crate::error::ApiError;

/// Most identities whose compiled views are cached; beyond it the cache starts over.
const MAX_CACHED_VIEWS: usize = 4096;
/// Most client certificates whose caller is cached; beyond it the cache starts over.
const MAX_CACHED_CALLERS: usize = 1024;
/// Failed unseal attempts one identity may make per [`UNSEAL_WINDOW`] before it is refused.
/// Accepted shares do not count, so share holders are never slowed down.
pub const UNSEAL_FAILURES: usize = 10;
/// The window of the unseal rate limit.
pub const UNSEAL_WINDOW: Duration = Duration::from_secs(60);
/// Most identities tracked by the unseal rate limit; beyond it the oldest records go.
const MAX_UNSEAL_CALLERS: usize = 4096;

/// Who made a request: the identity and the certificate its TLS handshake verified. Shared
/// (cloning is a reference count): every request of a connection names the same caller.
#[derive(Clone, Debug)]
pub struct Caller(Arc<Named>);

/// What a certificate names, derived once per certificate.
#[derive(Debug)]
struct Named {
    identity: Identity,
    certificate: PresentedCertificate,
    /// Lowercase hex of `certificate.fingerprint`, as audit records show it.
    fingerprint_hex: String,
}

impl Caller {
    /// The caller of `request`, from the leaf certificate the API port verified.
    ///
    /// # Errors
    /// [`ApiError::Unauthenticated`] when the request carries no client certificate that
    /// names an identity (the API port requires one, so only a misconfigured transport can).
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Self, ApiError> {
        if let Some(VerifiedCaller(caller)) = request.extensions().get::<VerifiedCaller>() {
            return Ok(caller.clone());
        }
        let certs = request.peer_certs().ok_or(ApiError::Unauthenticated)?;
        let leaf = certs.first().ok_or(ApiError::Unauthenticated)?;
        Self::of_leaf(leaf.as_ref()).ok_or(ApiError::Unauthenticated)
    }

    /// The caller a verified leaf certificate names, through the process's [`CallerCache`]
    /// (shared by the audit layer and every API service: a client calls several of them).
    pub fn of_leaf(der: &[u8]) -> Option<Self> {
        static CALLERS: LazyLock<CallerCache> = LazyLock::new(CallerCache::default);
        CALLERS.caller(der)
    }

    /// The caller a DER client certificate names (URI SAN, else CN, as
    /// [`tessera_raft::tls::identity_of`] derives it).
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let identity = Identity::parse(&tessera_raft::tls::identity_of(der)?).ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let serial = CertificateSerial::from_bytes(cert.raw_serial()).ok()?;
        let fingerprint: [u8; 32] = Sha256::digest(der).into();
        Some(Self(Arc::new(Named {
            identity,
            certificate: PresentedCertificate {
                serial,
                fingerprint,
            },
            fingerprint_hex: hex::encode(fingerprint),
        })))
    }

    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.0.identity
    }

    /// The identity as text (what `created_by` and request de-duplication use).
    pub fn name(&self) -> &str {
        self.0.identity.as_str()
    }

    /// The certificate presented.
    pub fn certificate(&self) -> &PresentedCertificate {
        &self.0.certificate
    }

    /// Lowercase hex SHA-256 of the certificate (the audit record's `cert_sha256`).
    pub fn fingerprint_hex(&self) -> &str {
        &self.0.fingerprint_hex
    }
}

/// The caller of a request as the audit layer derived it from the verified leaf certificate,
/// carried in the request's extensions so that the handler does not derive it again. Only
/// server code can put it there: extensions never come from the wire.
#[derive(Clone, Debug)]
pub struct VerifiedCaller(pub Caller);

/// Callers already derived from client certificates, keyed by the certificate's DER bytes.
///
/// Parsing the certificate twice (identity, serial) and hashing it (fingerprint) on every call
/// was the largest cost of a crypto call after the network. The cached value is a pure
/// function of the key, so the cache can never name a caller wrongly; revocation is decided
/// per call from the serial and fingerprint, so caching does not delay it. Bounded by
/// `MAX_CACHED_CALLERS`; certificates that name no caller are not cached.
#[derive(Default)]
pub struct CallerCache {
    callers: Mutex<HashMap<Vec<u8>, Caller>>,
}

impl CallerCache {
    /// The caller `der` names, from the cache or parsed (then remembered).
    pub fn caller(&self, der: &[u8]) -> Option<Caller> {
        let cached = self
            .callers
            .lock()
            .ok()
            .and_then(|callers| callers.get(der).cloned());
        if cached.is_some() {
            return cached;
        }
        let caller = Caller::from_der(der)?;
        if let Ok(mut callers) = self.callers.lock() {
            if callers.len() >= MAX_CACHED_CALLERS {
                callers.clear();
            }
            callers.insert(der.to_vec(), caller.clone());
        }
        Some(caller)
    }
}

/// The caller and the message of a request.
///
/// # Errors
/// As [`Caller::of`].
pub fn split<T>(request: tonic::Request<T>) -> Result<(Caller, T), ApiError> {
    Ok((Caller::of(&request)?, request.into_inner()))
}

/// What statements and grants may test about a stored key.
pub fn key_attributes(state: &State, record: &KeyRecord) -> KeyAttributes {
    KeyAttributes {
        id: Some(record.key_id.clone()),
        name: Some(record.name.clone()),
        aliases: state.aliases_of(&record.key_id).cloned().collect(),
        tags: record.tags.clone(),
    }
}

/// A node's decision cache and unseal rate limit.
#[derive(Default)]
pub struct Authorizer {
    /// Per identity: the policies' fingerprint when the view was compiled, and the view.
    views: Mutex<HashMap<Identity, ([u8; 32], IdentityView)>>,
    unseal_failures: Mutex<HashMap<Identity, VecDeque<Instant>>>,
}

impl Authorizer {
    /// Decides `request` against `access` at cluster time `now_ms`, reusing and refreshing the
    /// identity's cached view.
    pub fn decide(&self, access: &AccessControl, request: &AccessRequest, now_ms: u64) -> Decision {
        let fingerprint = access.fingerprint();
        let cached = self
            .views
            .lock()
            .ok()
            .and_then(|views| views.get(&request.identity).cloned());
        let view = match cached {
            Some((compiled_from, view)) if compiled_from == fingerprint => view,
            _ => {
                let view = access.view(&request.identity);
                if let Ok(mut views) = self.views.lock() {
                    if views.len() >= MAX_CACHED_VIEWS {
                        views.clear();
                    }
                    views.insert(request.identity.clone(), (fingerprint, view.clone()));
                }
                view
            }
        };
        access.decide(&view, request, now_ms)
    }

    /// Fails if `identity` made [`UNSEAL_FAILURES`] failed unseal attempts within the last
    /// [`UNSEAL_WINDOW`].
    ///
    /// # Errors
    /// [`ApiError::RateLimited`].
    pub fn check_unseal(&self, identity: &Identity) -> Result<(), ApiError> {
        let mut failures = self.unseal_failures()?;
        let now = Instant::now();
        failures.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < UNSEAL_WINDOW);
            !times.is_empty()
        });
        let full = failures.len() >= MAX_UNSEAL_CALLERS && !failures.contains_key(identity);
        if full
            || failures
                .get(identity)
                .is_some_and(|t| t.len() >= UNSEAL_FAILURES)
        {
            return Err(ApiError::RateLimited {
                action: Action::Unseal,
            });
        }
        Ok(())
    }

    /// Records a failed unseal attempt (a malformed, duplicate or wrong share) by `identity`.
    pub fn record_unseal_failure(&self, identity: &Identity) {
        if let Ok(mut failures) = self.unseal_failures() {
            failures
                .entry(identity.clone())
                .or_default()
                .push_back(Instant::now());
        }
    }

    fn unseal_failures(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<Identity, VecDeque<Instant>>>, ApiError> {
        self.unseal_failures
            .lock()
            .map_err(|_| ApiError::Internal("the unseal rate limiter is poisoned"))
    }
}

/// The error a denied request gets: the action and the key id only, never what decided.
pub fn denial(decision: &Decision, action: Action, key: Option<&KeyAttributes>) -> ApiError {
    match decision {
        Decision::Deny {
            reason: DenyReason::RevokedCertificate,
        } => ApiError::CertificateRevoked,
        _ => ApiError::PermissionDenied {
            action,
            key: key
                .and_then(|k| k.id.as_ref())
                .map(ToString::to_string)
                .or_else(|| key.and_then(|k| k.name.as_ref()).map(ToString::to_string)),
        },
    }
}

/// The text `CheckPolicy` shows for what decided.
pub fn explain(decision: &Decision) -> String {
    use tessera_state::policy::AllowedBy;
    match decision {
        Decision::Allow { by } => match by {
            AllowedBy::Statement(at) => at.to_string(),
            AllowedBy::Grant(id) => format!("grant {id}"),
            AllowedBy::Admin => "admin".into(),
            AllowedBy::Always => "always allowed".into(),
        },
        Decision::Deny { reason } => match reason {
            DenyReason::Statement(at) => at.to_string(),
            DenyReason::RevokedCertificate => "revoked".into(),
            DenyReason::NoMatch => "default deny".into(),
        },
    }
}

/// An access request of `caller` for `action` on an optional key with `context`.
pub fn request(
    caller: &Caller,
    action: Action,
    key: Option<KeyAttributes>,
    context: &BTreeMap<String, String>,
) -> AccessRequest {
    AccessRequest {
        identity: caller.identity().clone(),
        certificate: Some(caller.certificate().clone()),
        action,
        key,
        context: context.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn unseal_attempts_are_limited_per_identity() {
        let authz = Authorizer::default();
        let a = Identity::parse("a").unwrap();
        let b = Identity::parse("b").unwrap();
        for _ in 0..UNSEAL_FAILURES {
            authz.check_unseal(&a).unwrap();
            authz.record_unseal_failure(&a);
        }
        assert!(matches!(
            authz.check_unseal(&a),
            Err(ApiError::RateLimited { .. })
        ));
        authz.check_unseal(&b).unwrap();
    }

    #[test]
    fn a_caller_is_named_by_its_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "app");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0, 0x0a, 0x1b]));
        let cert = params.self_signed(&key).unwrap();
        let caller = Caller::from_der(cert.der()).unwrap();
        assert_eq!(caller.name(), "app");
        assert_eq!(caller.certificate().serial.as_bytes(), [0x0a, 0x1b]);
        let digest: [u8; 32] = Sha256::digest(cert.der()).into();
        assert_eq!(caller.certificate().fingerprint, digest);
    }

    #[test]
    fn the_caller_cache_answers_what_parsing_answers() {
        let cache = CallerCache::default();
        let mut ders = Vec::new();
        for (name, serial) in [("app", 7u8), ("other", 9)] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.serial_number = Some(rcgen::SerialNumber::from_slice(&[serial]));
            ders.push(params.self_signed(&key).unwrap().der().to_vec());
        }
        for _ in 0..2 {
            for der in &ders {
                let cached = cache.caller(der).unwrap();
                let parsed = Caller::from_der(der).unwrap();
                assert_eq!(cached.name(), parsed.name());
                assert_eq!(cached.certificate(), parsed.certificate());
            }
        }
        assert_eq!(cache.callers.lock().unwrap().len(), 2);
        assert!(cache.caller(b"not a certificate").is_none());
        assert_eq!(cache.callers.lock().unwrap().len(), 2);
    }

    #[test]
    fn denials_name_the_action_and_key_only() {
        let key = KeyAttributes {
            name: Some(tessera_state::KeyName::parse("billing-key").unwrap()),
            ..KeyAttributes::default()
        };
        let e = denial(
            &Decision::Deny {
                reason: DenyReason::NoMatch,
            },
            Action::Decrypt,
            Some(&key),
        );
        assert_eq!(
            e.to_string(),
            "access denied: kms:Decrypt on key billing-key"
        );
        assert_eq!(e.codes(), (tonic::Code::PermissionDenied, "ACCESS_DENIED"));
        let revoked = denial(
            &Decision::Deny {
                reason: DenyReason::RevokedCertificate,
            },
            Action::Decrypt,
            Some(&key),
        );
        assert_eq!(
            revoked.codes(),
            (tonic::Code::PermissionDenied, "CERTIFICATE_REVOKED")
        );
    }
}
