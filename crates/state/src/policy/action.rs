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
    ($($variant:ident => $name:literal, $scope:ident, $rpc:literal, $doc:literal;)*) => {
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

            /// The gRPC method (`Service/Method`) the action authorises. For a write it is part
            /// of the request's de-duplication fingerprint (a disk contract: the names never
            /// change), so it is written here once, next to the action, rather than at each
            /// call site. `ReEncryptFrom` and `ReEncryptTo` both authorise `Crypto/ReEncrypt`;
            /// the batch calls are authorised item by item with `Encrypt` and `Decrypt`.
            pub fn rpc(self) -> &'static str {
                match self {
                    $(Action::$variant => $rpc,)*
                }
            }

            /// The action a call of `rpc` (`Service/Method`) is recorded under: the batch calls
            /// under their single call's action, `Crypto/ReEncrypt` under `ReEncryptFrom`, every
            /// membership change under `ChangeMembership`.
            pub fn of_rpc(rpc: &str) -> Option<Action> {
                let single = match rpc {
                    "Crypto/BatchEncrypt" => "Crypto/Encrypt",
                    "Crypto/BatchDecrypt" => "Crypto/Decrypt",
                    "System/Promote" | "System/Demote" | "System/RemoveMember" => "System/AddLearner",
                    other => other,
                };
                // The first action of a method in declaration order: ReEncryptFrom.
                Action::ALL.iter().copied().find(|a| a.rpc() == single)
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
    Encrypt => "kms:Encrypt", Key, "Crypto/Encrypt", "Encrypt (and each item of BatchEncrypt).";
    Decrypt => "kms:Decrypt", Key, "Crypto/Decrypt", "Decrypt (and each item of BatchDecrypt).";
    ReEncryptFrom => "kms:ReEncryptFrom", Key, "Crypto/ReEncrypt", "ReEncrypt, checked on the source key.";
    ReEncryptTo => "kms:ReEncryptTo", Key, "Crypto/ReEncrypt", "ReEncrypt, checked on the destination key.";
    GenerateDataKey => "kms:GenerateDataKey", Key, "Crypto/GenerateDataKey", "GenerateDataKey.";
    GenerateDataKeyWithoutPlaintext => "kms:GenerateDataKeyWithoutPlaintext", Key, "Crypto/GenerateDataKeyWithoutPlaintext", "GenerateDataKeyWithoutPlaintext.";
    GenerateDataKeyPair => "kms:GenerateDataKeyPair", Key, "Crypto/GenerateDataKeyPair", "GenerateDataKeyPair.";
    Sign => "kms:Sign", Key, "Crypto/Sign", "Sign.";
    Verify => "kms:Verify", Key, "Crypto/Verify", "Verify.";
    GetPublicKey => "kms:GetPublicKey", Key, "Crypto/GetPublicKey", "GetPublicKey.";
    GenerateMac => "kms:GenerateMac", Key, "Crypto/GenerateMac", "GenerateMac.";
    VerifyMac => "kms:VerifyMac", Key, "Crypto/VerifyMac", "VerifyMac.";
    GenerateRandom => "kms:GenerateRandom", Cluster, "Crypto/GenerateRandom", "GenerateRandom (no key).";
    CreateKey => "kms:CreateKey", Key, "Keys/CreateKey", "CreateKey, checked against the new key's name and tags.";
    DescribeKey => "kms:DescribeKey", Key, "Keys/DescribeKey", "DescribeKey.";
    ListKeys => "kms:ListKeys", Cluster, "Keys/ListKeys", "ListKeys.";
    RotateKey => "kms:RotateKey", Key, "Keys/RotateKey", "RotateKey.";
    EnableKey => "kms:EnableKey", Key, "Keys/EnableKey", "EnableKey.";
    DisableKey => "kms:DisableKey", Key, "Keys/DisableKey", "DisableKey.";
    ScheduleKeyDeletion => "kms:ScheduleKeyDeletion", Key, "Keys/ScheduleKeyDeletion", "ScheduleKeyDeletion.";
    CancelKeyDeletion => "kms:CancelKeyDeletion", Key, "Keys/CancelKeyDeletion", "CancelKeyDeletion.";
    SetMinDecryptionVersion => "kms:SetMinDecryptionVersion", Key, "Keys/SetMinDecryptionVersion", "SetMinDecryptionVersion.";
    EnableKeyVersion => "kms:EnableKeyVersion", Key, "Keys/EnableKeyVersion", "EnableKeyVersion.";
    DisableKeyVersion => "kms:DisableKeyVersion", Key, "Keys/DisableKeyVersion", "DisableKeyVersion.";
    DestroyKeyVersion => "kms:DestroyKeyVersion", Key, "Keys/DestroyKeyVersion", "DestroyKeyVersion.";
    UpdateKeyDescription => "kms:UpdateKeyDescription", Key, "Keys/UpdateKeyDescription", "UpdateKeyDescription.";
    TagKey => "kms:TagKey", Key, "Keys/TagKey", "TagKey.";
    UntagKey => "kms:UntagKey", Key, "Keys/UntagKey", "UntagKey.";
    SetRotationPeriod => "kms:SetRotationPeriod", Key, "Keys/SetRotationPeriod", "SetRotationPeriod.";
    CreateAlias => "kms:CreateAlias", Key, "Keys/CreateAlias", "CreateAlias, checked on the target key.";
    UpdateAlias => "kms:UpdateAlias", Key, "Keys/UpdateAlias", "UpdateAlias, checked on the new target key.";
    DeleteAlias => "kms:DeleteAlias", Key, "Keys/DeleteAlias", "DeleteAlias, checked on the alias' key.";
    ListAliases => "kms:ListAliases", Cluster, "Keys/ListAliases", "ListAliases.";
    GetImportParameters => "kms:GetImportParameters", Key, "Keys/GetImportParameters", "GetImportParameters.";
    ImportKeyMaterial => "kms:ImportKeyMaterial", Key, "Keys/ImportKeyMaterial", "ImportKeyMaterial.";
    ExportKey => "kms:ExportKey", Key, "Keys/ExportKey", "ExportKey.";
    CreateGrant => "kms:CreateGrant", Key, "Access/CreateGrant", "Create a grant on a key.";
    ListGrants => "kms:ListGrants", Key, "Access/ListGrants", "List a key's grants.";
    RevokeGrant => "kms:RevokeGrant", Key, "Access/RevokeGrant", "Revoke a grant on a key.";
    Init => "operator:Init", Cluster, "System/Init", "Init.";
    Unseal => "operator:Unseal", Cluster, "System/Unseal", "Unseal.";
    Seal => "operator:Seal", Cluster, "System/Seal", "Seal.";
    Status => "operator:Status", Cluster, "System/Status", "Status.";
    RevokeCertificate => "operator:RevokeCertificate", Cluster, "Access/RevokeCertificate", "Add a certificate to the deny-list.";
    ListRevoked => "operator:ListRevoked", Cluster, "Access/ListRevokedCertificates", "List the certificate deny-list.";
    WhoAmI => "operator:WhoAmI", Cluster, "Access/WhoAmI", "Tell the caller its identity; always allowed.";
    PutPolicy => "policy:Put", Cluster, "Access/PutPolicy", "Create or replace a policy.";
    GetPolicy => "policy:Get", Cluster, "Access/GetPolicy", "Read a policy.";
    ListPolicies => "policy:List", Cluster, "Access/ListPolicies", "List policies.";
    DeletePolicy => "policy:Delete", Cluster, "Access/DeletePolicy", "Delete a policy.";
    CheckPolicy => "policy:Check", Cluster, "Access/CheckPolicy", "Explain a decision (which statement decided).";
    AuditHash => "audit:Hash", Cluster, "System/AuditHash", "Compute the audit HMAC of a value, to search audit records for it.";
    ListMembers => "operator:ListMembers", Cluster, "System/Members", "List the cluster's members with their replication progress.";
    ChangeMembership => "operator:ChangeMembership", Cluster, "System/AddLearner", "Add a learner, promote, demote or remove a member (AddLearner, Promote, Demote, RemoveMember).";
    PutRateLimit => "policy:PutRateLimit", Cluster, "Access/PutRateLimit", "Create or replace a rate-limit rule.";
    ListRateLimits => "policy:ListRateLimits", Cluster, "Access/ListRateLimits", "List the rate-limit rules.";
    DeleteRateLimit => "policy:DeleteRateLimit", Cluster, "Access/DeleteRateLimit", "Delete a rate-limit rule.";
    SnapshotSave => "operator:SnapshotSave", Cluster, "System/SnapshotSave", "Save a backup of the whole (still sealed) state.";
    SnapshotRestore => "operator:SnapshotRestore", Cluster, "System/SnapshotRestore", "Replace the whole state with a backup's.";
    RotateBarrier => "operator:RotateBarrier", Cluster, "System/RotateBarrier", "Rotate the barrier keyring, or retire its old terms.";
    Rekey => "operator:Rekey", Cluster, "System/Rekey", "Replace the unseal key with new shares (start, submit old shares, cancel, progress).";
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
    use std::collections::BTreeSet;

    use super::*;

    /// Every `Service/Method` of the public API, read from the `.proto` sources the gRPC code
    /// is generated from.
    fn api_methods() -> BTreeSet<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/tessera/v1");
        let mut methods = BTreeSet::new();
        for file in ["system.proto", "keys.proto", "crypto.proto", "access.proto"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let mut service = None;
            for line in text.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("service ") {
                    service = rest.split_whitespace().next().map(str::to_owned);
                } else if let Some(rest) = line.strip_prefix("rpc ") {
                    let method = rest.split('(').next().unwrap().trim();
                    methods.insert(format!("{}/{method}", service.as_deref().unwrap()));
                }
            }
        }
        methods
    }

    #[test]
    fn every_api_method_has_an_action_and_every_action_a_method() {
        let methods = api_methods();
        let rpcs: BTreeSet<String> = Action::all().map(|a| a.rpc().to_owned()).collect();
        for action in Action::all() {
            assert!(
                methods.contains(action.rpc()),
                "{action:?}: no method {}",
                action.rpc()
            );
        }
        // Methods recorded under another method's action: the batch calls (authorised item by
        // item with the single calls' actions) and the membership changes.
        let per_item = [
            "Crypto/BatchEncrypt",
            "Crypto/BatchDecrypt",
            "System/Promote",
            "System/Demote",
            "System/RemoveMember",
        ];
        for method in &methods {
            assert!(
                rpcs.contains(method) || per_item.contains(&method.as_str()),
                "{method} has no action"
            );
            assert!(Action::of_rpc(method).is_some(), "{method}");
        }
        assert_eq!(
            Action::of_rpc("Crypto/ReEncrypt"),
            Some(Action::ReEncryptFrom)
        );
        assert_eq!(Action::of_rpc("Crypto/BatchDecrypt"), Some(Action::Decrypt));
        assert_eq!(Action::of_rpc("Keys/NoSuchMethod"), None);
        assert!(methods.len() > 50, "read {} methods", methods.len());
    }

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
        for pattern in ["kms:Encrypy", "kms", "", "s3:*"] {
            assert!(ActionSet::matching(pattern).is_err(), "{pattern:?}");
        }
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
