//! Requests, decisions, and whether one statement applies to a request.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::{AliasName, KeyId, KeyName, ALIAS_PREFIX};
use crate::policy::action::{Action, Scope};
use crate::policy::document::{Condition, Statement, Test};
use crate::policy::names::{GrantId, Identity, PolicyName};
use crate::policy::revocation::PresentedCertificate;

/// What a request asks to do, as the server knows it once the key is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    /// The caller's identity (from its verified certificate).
    pub identity: Identity,
    /// The certificate it presented, checked against the deny-list.
    pub certificate: Option<PresentedCertificate>,
    /// The action.
    pub action: Action,
    /// The key acted on, for actions that act on one.
    pub key: Option<KeyAttributes>,
    /// The request's encryption context (empty when the call has none).
    pub context: BTreeMap<String, String>,
}

/// What statements and grants may test about a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyAttributes {
    /// The key's id; `None` for a key being created.
    pub id: Option<KeyId>,
    /// Its name.
    pub name: Option<KeyName>,
    /// Its aliases.
    pub aliases: Vec<AliasName>,
    /// Its tags (for `CreateKey`, the tags requested).
    pub tags: BTreeMap<String, String>,
}

/// A statement of a stored policy: what `policy check` shows an administrator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatementRef {
    /// The policy.
    pub policy: PolicyName,
    /// Its version.
    pub version: u64,
    /// The statement's index in the document.
    pub index: usize,
    /// The statement's id, if it has one.
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {} v{} statements[{}]",
            self.policy, self.version, self.index
        )?;
        if let Some(sid) = &self.sid {
            write!(f, " ({sid})")?;
        }
        Ok(())
    }
}

/// The outcome of an access check. What decided is for `policy check` and audit; a denied
/// caller is told only the action and the key, never which statement matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow {
        /// What allowed it.
        by: AllowedBy,
    },
    /// Denied.
    Deny {
        /// Why.
        reason: DenyReason,
    },
}

/// What allowed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedBy {
    /// An allow statement.
    Statement(StatementRef),
    /// A grant on the key.
    Grant(GrantId),
    /// The built-in `admin` policy (the identity is bound to it).
    Admin,
    /// An action every identity may perform (`operator:WhoAmI`).
    Always,
}

/// Why a request was denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// A deny statement matched (it wins over every allow, grant and the admin binding).
    Statement(StatementRef),
    /// The certificate is on the deny-list.
    RevokedCertificate,
    /// Nothing allowed it (default deny).
    NoMatch,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

impl KeyAttributes {
    /// Whether any of the key's references (id, name, `alias/NAME`) matches `pattern`.
    fn matches(&self, pattern: &crate::policy::glob::Glob) -> bool {
        self.id
            .as_ref()
            .is_some_and(|id| pattern.matches(id.as_str()))
            || self
                .name
                .as_ref()
                .is_some_and(|name| pattern.matches(name.as_str()))
            || self
                .aliases
                .iter()
                .any(|a| pattern.matches(&format!("{ALIAS_PREFIX}{}", a.as_str())))
    }
}

fn holds(condition: &Condition, map: &BTreeMap<String, String>) -> bool {
    let value = map.get(&condition.key);
    match &condition.test {
        Test::Equals(wanted) => value == Some(wanted),
        Test::Glob(glob) => value.is_some_and(|v| glob.matches(v)),
        Test::Present(present) => value.is_some() == *present,
    }
}

impl Statement {
    /// Whether the statement covers `request` (its identity is already known to match).
    pub fn applies(&self, request: &AccessRequest) -> bool {
        if !self.actions.contains(request.action) {
            return false;
        }
        if let Some(patterns) = &self.keys {
            let key = match (&request.key, request.action.scope()) {
                (Some(key), Scope::Key) => key,
                _ => return false,
            };
            if !patterns.iter().any(|p| key.matches(p)) {
                return false;
            }
        }
        if !self.context.iter().all(|c| holds(c, &request.context)) {
            return false;
        }
        match (&request.key, self.tags.is_empty()) {
            (_, true) => true,
            (Some(key), false) => self.tags.iter().all(|c| holds(c, &key.tags)),
            (None, false) => false,
        }
    }

    /// Whether one of the statement's identity globs matches `identity`.
    pub fn names(&self, identity: &Identity) -> bool {
        self.identities.iter().any(|g| g.matches(identity.as_str()))
    }
}
