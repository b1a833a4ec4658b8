//! Actions: one per API call, named `service:Operation`, and sets of them matched by patterns.
//!
//! Batch calls are authorised item by item with the action of the single call
//! (`BatchEncrypt` → `kms:Encrypt` for each item's key, `BatchDecrypt` → `kms:Decrypt`), so a
//! batch can never do what the single calls could not. `ReEncrypt` needs two actions:
//! `kms:ReEncryptFrom` on the source key and `kms:ReEncryptTo` on the destination key.
//! `operator:WhoAmI` is always allowed (except for a revoked certificate).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::glob::Glob;

macro_rules! actions {
    ($($variant:ident => $name:literal, $scope:ident, $doc:literal;)*) => {
        /// One operation of the API, the unit that policies allow or deny.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum Action {
            $(#[doc = $doc] $variant,)*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The action's name as written in policies (`kms:Encrypt`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// Whether the action acts on one key (and so statements restricted to keys and
            /// grants can apply to it).
            pub fn scope(self) -> Scope {
                match self {
                    $(Action::$variant => Scope::$scope,)*
                }
            }
        }
    };
}

actions! {
    Encrypt => "kms:Encrypt", Key, "Encrypt (and each item of BatchEncrypt).";
    Decrypt => "kms:Decrypt", Key, "Decrypt (and each item of BatchDecrypt).";
    ReEncryptFrom => "kms:ReEncryptFrom", Key, "ReEncrypt, checked on the source key.";
    ReEncryptTo => "kms:ReEncryptTo", Key, "ReEncrypt, checked on the destination key.";
    GenerateDataKey => "kms:GenerateDataKey", Key, "GenerateDataKey.";
    GenerateDataKeyWithoutPlaintext => "kms:GenerateDataKeyWithoutPlaintext", Key, "GenerateDataKeyWithoutPlaintext.";
    GenerateDataKeyPair => "kms:GenerateDataKeyPair", Key, "GenerateDataKeyPair.";
    Sign => "kms:Sign", Key, "Sign.";
    Verify => "kms:Verify", Key, "Verify.";
    GetPublicKey => "kms:GetPublicKey", Key, "GetPublicKey.";
    GenerateMac => "kms:GenerateMac", Key, "GenerateMac.";
    VerifyMac => "kms:VerifyMac", Key, "VerifyMac.";
    GenerateRandom => "kms:GenerateRandom", Cluster, "GenerateRandom (no key).";
    CreateKey => "kms:CreateKey", Key, "CreateKey, checked against the new key's name and tags.";
    DescribeKey => "kms:DescribeKey", Key, "DescribeKey.";
    ListKeys => "kms:ListKeys", Cluster, "ListKeys.";
    RotateKey => "kms:RotateKey", Key, "RotateKey.";
    EnableKey => "kms:EnableKey", Key, "EnableKey.";
    DisableKey => "kms:DisableKey", Key, "DisableKey.";
    ScheduleKeyDeletion => "kms:ScheduleKeyDeletion", Key, "ScheduleKeyDeletion.";
    CancelKeyDeletion => "kms:CancelKeyDeletion", Key, "CancelKeyDeletion.";
    SetMinDecryptionVersion => "kms:SetMinDecryptionVersion", Key, "SetMinDecryptionVersion.";
    EnableKeyVersion => "kms:EnableKeyVersion", Key, "EnableKeyVersion.";
    DisableKeyVersion => "kms:DisableKeyVersion", Key, "DisableKeyVersion.";
    DestroyKeyVersion => "kms:DestroyKeyVersion", Key, "DestroyKeyVersion.";
    UpdateKeyDescription => "kms:UpdateKeyDescription", Key, "UpdateKeyDescription.";
    TagKey => "kms:TagKey", Key, "TagKey.";
    UntagKey => "kms:UntagKey", Key, "UntagKey.";
    SetRotationPeriod => "kms:SetRotationPeriod", Key, "SetRotationPeriod.";
    CreateAlias => "kms:CreateAlias", Key, "CreateAlias, checked on the target key.";
    UpdateAlias => "kms:UpdateAlias", Key, "UpdateAlias, checked on the new target key.";
    DeleteAlias => "kms:DeleteAlias", Key, "DeleteAlias, checked on the alias' key.";
    ListAliases => "kms:ListAliases", Cluster, "ListAliases.";
    GetImportParameters => "kms:GetImportParameters", Key, "GetImportParameters.";
    ImportKeyMaterial => "kms:ImportKeyMaterial", Key, "ImportKeyMaterial.";
    ExportKey => "kms:ExportKey", Key, "ExportKey.";
    CreateGrant => "kms:CreateGrant", Key, "Create a grant on a key.";
    ListGrants => "kms:ListGrants", Key, "List a key's grants.";
    RevokeGrant => "kms:RevokeGrant", Key, "Revoke a grant on a key.";
    Init => "operator:Init", Cluster, "Init.";
    Unseal => "operator:Unseal", Cluster, "Unseal.";
    Seal => "operator:Seal", Cluster, "Seal.";
    Status => "operator:Status", Cluster, "Status.";
    RevokeCertificate => "operator:RevokeCertificate", Cluster, "Add a certificate to the deny-list.";
    ListRevoked => "operator:ListRevoked", Cluster, "List the certificate deny-list.";
    WhoAmI => "operator:WhoAmI", Cluster, "Tell the caller its identity; always allowed.";
    PutPolicy => "policy:Put", Cluster, "Create or replace a policy.";
    GetPolicy => "policy:Get", Cluster, "Read a policy.";
    ListPolicies => "policy:List", Cluster, "List policies.";
    DeletePolicy => "policy:Delete", Cluster, "Delete a policy.";
    CheckPolicy => "policy:Check", Cluster, "Explain a decision (which statement decided).";
    AuditHash => "audit:Hash", Cluster, "Compute the audit HMAC of a value, to search audit records for it.";
    ListMembers => "operator:ListMembers", Cluster, "List the cluster's members with their replication progress.";
    ChangeMembership => "operator:ChangeMembership", Cluster, "Add a learner, promote, demote or remove a member.";
    PutRateLimit => "policy:PutRateLimit", Cluster, "Create or replace a rate-limit rule.";
    ListRateLimits => "policy:ListRateLimits", Cluster, "List the rate-limit rules.";
    DeleteRateLimit => "policy:DeleteRateLimit", Cluster, "Delete a rate-limit rule.";
}

// An `ActionSet` is a bit mask over `Action::ALL`.
const _: () = assert!(Action::ALL.len() <= 64);

/// What an action acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One key: key-restricted statements and grants can apply.
    Key,
    /// The cluster: only statements without `keys` apply.
    Cluster,
}

/// A name that is not an action.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not an action")]
pub struct UnknownAction {
    /// The name (truncated to 80 bytes).
    pub name: String,
}

impl Action {
    /// Parses an action name (`kms:Encrypt`); case-sensitive.
    ///
    /// # Errors
    /// [`UnknownAction`] for any other string.
    pub fn parse(name: &str) -> Result<Self, UnknownAction> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .ok_or_else(|| UnknownAction {
                name: crate::policy::truncate(name),
            })
    }

    /// All actions.
    pub fn all() -> impl Iterator<Item = Action> {
        Self::ALL.iter().copied()
    }

    fn bit(self) -> u64 {
        1u64 << (self as u32)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for Action {
    type Error = UnknownAction;
    fn try_from(value: String) -> Result<Self, UnknownAction> {
        Self::parse(&value)
    }
}

impl From<Action> for String {
    fn from(action: Action) -> String {
        action.name().to_owned()
    }
}

/// A set of actions, compiled to a bit mask so a membership test is one `and`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActionSet(u64);

impl ActionSet {
    /// Every action.
    pub fn everything() -> Self {
        Action::all().collect()
    }

    /// The actions whose names match `pattern` (`kms:*`, `kms:GenerateDataKey*`).
    ///
    /// # Errors
    /// [`UnknownAction`] naming the pattern if it matches no action: a typo must not silently
    /// grant or deny nothing.
    pub fn matching(pattern: &str) -> Result<Self, UnknownAction> {
        let glob = Glob::new(pattern);
        let set: Self = Action::all().filter(|a| glob.matches(a.name())).collect();
        if set.is_empty() {
            Err(UnknownAction {
                name: crate::policy::truncate(pattern),
            })
        } else {
            Ok(set)
        }
    }

    /// Whether `action` is in the set.
    pub fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of two sets.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The actions of the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::all().filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Action> for ActionSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |mask, a| mask | a.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_are_unique() {
        for action in Action::all() {
            assert_eq!(Action::parse(action.name()), Ok(action));
        }
        let mut names: Vec<_> = Action::all().map(Action::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        assert!(Action::parse("kms:encrypt").is_err(), "case-sensitive");
        assert_eq!(
            Action::parse("kms:Encrypy").unwrap_err().to_string(),
            "\"kms:Encrypy\" is not an action"
        );
    }

    #[test]
    fn patterns_expand_to_the_actions_they_match() {
        let gdk = ActionSet::matching("kms:GenerateDataKey*").unwrap();
        assert_eq!(
            gdk.iter().collect::<Vec<_>>(),
            [
                Action::GenerateDataKey,
                Action::GenerateDataKeyWithoutPlaintext,
                Action::GenerateDataKeyPair
            ]
        );
        let kms = ActionSet::matching("kms:*").unwrap();
        assert!(kms.contains(Action::Encrypt) && kms.contains(Action::CreateGrant));
        assert!(!kms.contains(Action::Seal) && !kms.contains(Action::PutPolicy));
        let op = ActionSet::matching("operator:*").unwrap();
        assert!(op.contains(Action::Seal) && !op.contains(Action::Encrypt));
        assert_eq!(ActionSet::matching("*").unwrap(), ActionSet::everything());
        assert_eq!(
            ActionSet::matching("policy:*").unwrap().iter().count(),
            8,
            "Put, Get, List, Delete, Check, PutRateLimit, ListRateLimits, DeleteRateLimit"
        );
        let one = ActionSet::matching("kms:Encrypt").unwrap();
        assert_eq!(one.iter().collect::<Vec<_>>(), [Action::Encrypt]);
    }

    #[test]
    fn a_pattern_that_matches_nothing_is_an_error() {
        assert!(ActionSet::matching("kms:Encrypy").is_err());
        assert!(ActionSet::matching("kms").is_err());
        assert!(ActionSet::matching("").is_err());
        assert!(ActionSet::matching("s3:*").is_err());
    }

    #[test]
    fn sets_combine() {
        let a: ActionSet = [Action::Encrypt].into_iter().collect();
        let b: ActionSet = [Action::Decrypt].into_iter().collect();
        let both = a.union(b);
        assert!(both.contains(Action::Encrypt) && both.contains(Action::Decrypt));
        assert!(ActionSet::default().is_empty());
        assert_eq!(Action::Seal.scope(), Scope::Cluster);
        assert_eq!(Action::Encrypt.scope(), Scope::Key);
    }
}
