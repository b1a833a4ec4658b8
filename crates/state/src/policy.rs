//! Access control: who may do what to which key.
//!
//! Policies are named, versioned documents of allow/deny statements over identities, actions
//! and keys, with optional conditions on the encryption context and the key's tags
//! ([`document`]); grants delegate actions on one key to one identity ([`grant`]); a
//! certificate deny-list refuses revoked client certificates ([`revocation`]); the identity
//! that initialises the cluster is bound to the built-in `admin` policy. All of it lives in
//! the replicated state, and a decision ([`AccessControl::decide`]) is local and pure:
//! default deny, an explicit deny wins over every allow, grant and the admin binding.
//! Rate-limit rules ([`rate_limit`]) give identities their own request budgets cluster-wide.
//!
//! Limits (per document): [`MAX_STATEMENTS`] statements; [`MAX_LIST_LEN`] entries in each of a
//! statement's lists (identities, actions, keys, each condition list) and in a grant's
//! actions and context constraint; [`MAX_STRING_LEN`] bytes per string; [`MAX_DOCUMENT_BYTES`]
//! of text. The state holds at most [`MAX_POLICIES`] policies.

pub mod access;
pub mod action;
pub mod document;
pub mod eval;
pub mod glob;
pub mod grant;
pub mod names;
pub mod rate_limit;
pub mod revocation;

pub use access::{AccessControl, IdentityView, Revocation, StoredPolicy};
pub use action::{Action, ActionSet, Scope, UnknownAction};
pub use document::{
    Condition, Effect, Field, Format, Location, PolicyDocument, PolicyError, Problem, Statement,
    Test,
};
pub use eval::{AccessRequest, AllowedBy, Decision, DenyReason, KeyAttributes, StatementRef};
pub use glob::Glob;
pub use grant::{ContextConstraint, Grant, GrantProblem};
pub use names::{GrantId, Identity, NameError, PolicyName, ADMIN_POLICY};
pub use rate_limit::{Budget, RateLimitProblem, RateLimitRule, MAX_RATE_LIMIT_RULES};
pub use revocation::{
    CertificateIdError, CertificateSerial, PresentedCertificate, RevokedCertificate,
};

/// Most statements in one document.
pub const MAX_STATEMENTS: usize = 64;
/// Most entries in one list of a statement or grant.
pub const MAX_LIST_LEN: usize = 64;
/// Longest string (identity, pattern, condition key or value, sid), in bytes.
pub const MAX_STRING_LEN: usize = 1024;
/// Largest document text accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Most policies the state holds.
pub const MAX_POLICIES: usize = 256;

pub(crate) use tessera_crypto::truncate_for_message as truncate;
