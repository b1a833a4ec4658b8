//! Every error the API can return, and the one table that maps each to a gRPC status.
//!
//! Each variant has a stable machine-readable code, sent in the `tessera-error` response
//! metadata beside the gRPC status, so clients can tell e.g. a sealed node from a missing
//! lease without parsing messages. Messages name the problem and what to do; they never carry
//! key material or plaintext.

use tessera_crypto::truncate_for_message;
use tessera_raft::membership::MembershipError;
use tessera_raft::{LeaseState, NodeId, ProposeError, ReadIndexError};
use tessera_state::backup::BackupError;
use tessera_state::policy::{Action, PolicyError};
use tessera_state::{ApplyError, Unusable};
use tonic::{Code, Status};

use crate::seal::SealError;

/// Metadata key carrying the stable code of an [`ApiError`].
pub const ERROR_CODE_METADATA: &str = "tessera-error";

/// An API failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The node is sealed.
    #[error("this node is sealed: unseal it with `tessera operator unseal` before using keys")]
    Sealed,
    /// The cluster has no seal configuration (or this node has not received it yet).
    #[error("the cluster is not initialized (or this node has not caught up yet): run `tessera operator init`")]
    NotInitialized,
    /// The node may not serve from its own state now (partitioned, or an election is on).
    #[error("this node cannot serve right now: {0}; retry, or use another node")]
    NoLease(LeaseProblem),
    /// A request field is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No key matches the reference.
    #[error("key {key} not found")]
    KeyNotFound {
        /// The reference as given.
        key: String,
    },
    /// The key or version exists but its state forbids the operation.
    #[error("{0}")]
    Unusable(#[from] Unusable),
    /// The key's usage does not allow the operation (e.g. encrypting with a signing key).
    #[error("key {key_id} is for {usage} and cannot {operation}")]
    WrongUsage {
        /// The key.
        key_id: String,
        /// Its usage.
        usage: &'static str,
        /// What was attempted.
        operation: &'static str,
    },
    /// The key is not exportable.
    #[error("key {key_id} was not created exportable; its material never leaves Tessera")]
    NotExportable {
        /// The key.
        key_id: String,
    },
    /// Authentication of a ciphertext failed (tampered, truncated body, wrong key or context).
    #[error("the ciphertext cannot be decrypted: it was modified, or the encryption context differs from the one used to encrypt it")]
    Undecryptable,
    /// The replicated state machine refused the command.
    #[error("{0}")]
    Rejected(ApplyError),
    /// The write could not be completed through Raft.
    #[error("{0}")]
    Propose(#[from] ProposeError),
    /// A linearizable read could not be confirmed.
    #[error("{0}")]
    ReadIndex(#[from] ReadIndexError),
    /// An unseal step failed.
    #[error("{0}")]
    Seal(#[from] SealError),
    /// The caller's identity may not perform the action (on the key). The message names the
    /// action and the key only, never which statement decided or other identities' policies.
    #[error("access denied: {action}{}", key.as_ref().map(|k| format!(" on key {k}")).unwrap_or_default())]
    PermissionDenied {
        /// The action refused.
        action: Action,
        /// The key's id (its name for a key being created), if the action names one.
        key: Option<String>,
    },
    /// The client certificate is on the cluster's deny-list.
    #[error("access denied: this client certificate has been revoked")]
    CertificateRevoked,
    /// The request carries no client certificate naming an identity.
    #[error("the request carries no client certificate naming an identity")]
    Unauthenticated,
    /// Too many attempts of a rate-limited action by this identity; retry later.
    #[error("too many {action} attempts by this identity; retry in a minute")]
    RateLimited {
        /// The action.
        action: Action,
    },
    /// The caller's identity used up its rate limit for the action's class; the
    /// `retry-after` metadata says how many seconds to wait.
    #[error("rate limit exceeded: too many {class} calls by this identity; retry after {retry_after_s} s")]
    Throttled {
        /// The class: `crypto`, `keys` or `operator`.
        class: &'static str,
        /// Seconds until a call is allowed again.
        retry_after_s: u64,
    },
    /// The audit record of the request could not be written, so the request fails (the
    /// audit trail fails closed).
    #[error("the request could not be recorded in the audit trail; retry, or use another node")]
    AuditUnavailable,
    /// A policy document was refused (the message points at the statement).
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// This node was removed from the cluster: it serves nothing, and no leader will renew its
    /// lease. `UNAVAILABLE`, so clients move on to another node.
    #[error("node {node_id} was removed from the cluster and serves nothing; use another node. To bring it back, stop it, wipe its data directory, start it with neither `bootstrap` nor `join`, and run `tessera operator add-learner`")]
    Removed {
        /// This node's id.
        node_id: NodeId,
    },
    /// A membership call was refused (or no leader could run it).
    #[error("{0}")]
    Membership(#[from] MembershipError),
    /// A backup file was refused, or does not fit the target cluster (the message starts
    /// with the code).
    #[error("{0}")]
    Backup(#[from] BackupError),
    /// A server-side invariant broke; the message names it and carries no secret.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Why the lease does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseProblem(pub LeaseState);

impl std::fmt::Display for LeaseProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            LeaseState::Valid => f.write_str("lease valid"),
            LeaseState::Expired => {
                f.write_str("no contact with a Raft leader within the lease window")
            }
            LeaseState::CatchingUp {
                applied,
                commit_index,
            } => write!(
                f,
                "still applying the leader's log (applied {applied} of {commit_index})"
            ),
        }
    }
}

impl ApiError {
    /// An invalid-argument error.
    pub fn invalid(field: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.to_string(),
        }
    }

    /// An invalid-argument error for a `value` that is none of the names `expected` lists. The
    /// value is echoed cut by [`truncate_for_message`], so an oversized one cannot push the
    /// status beyond the HTTP/2 header limits.
    pub fn not_one_of(field: &'static str, value: &str, expected: &'static str) -> Self {
        Self::invalid(
            field,
            format!("{:?} is not {expected}", truncate_for_message(value)),
        )
    }

    /// The gRPC code and stable Tessera code of this error.
    pub fn codes(&self) -> (Code, &'static str) {
        match self {
            Self::Sealed => (Code::FailedPrecondition, "SEALED"),
            Self::NotInitialized => (Code::FailedPrecondition, "NOT_INITIALIZED"),
            Self::NoLease(_) => (Code::Unavailable, "NO_LEASE"),
            Self::InvalidArgument { .. } => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            Self::KeyNotFound { .. } => (Code::NotFound, "KEY_NOT_FOUND"),
            Self::Undecryptable => (Code::InvalidArgument, "UNDECRYPTABLE"),
            Self::Unusable(e) => match e {
                Unusable::Disabled { .. } => (Code::FailedPrecondition, "KEY_DISABLED"),
                Unusable::PendingDeletion { .. } => {
                    (Code::FailedPrecondition, "KEY_PENDING_DELETION")
                }
                Unusable::PendingImport { .. } => (Code::FailedPrecondition, "KEY_PENDING_IMPORT"),
                Unusable::VersionNotFound { .. } => (Code::NotFound, "VERSION_NOT_FOUND"),
                Unusable::VersionDisabled { .. } => (Code::FailedPrecondition, "VERSION_DISABLED"),
                Unusable::VersionDestroyed { .. } => {
                    (Code::FailedPrecondition, "VERSION_DESTROYED")
                }
                Unusable::BelowMinimum { .. } => {
                    (Code::FailedPrecondition, "BELOW_MIN_DECRYPTION_VERSION")
                }
            },
            Self::WrongUsage { .. } => (Code::InvalidArgument, "WRONG_KEY_USAGE"),
            Self::NotExportable { .. } => (Code::FailedPrecondition, "NOT_EXPORTABLE"),
            Self::Rejected(e) => match e {
                ApplyError::AlreadyInitialized => (Code::FailedPrecondition, "ALREADY_INITIALIZED"),
                ApplyError::NotInitialized => (Code::FailedPrecondition, "NOT_INITIALIZED"),
                ApplyError::InvalidSealConfig { .. } => {
                    (Code::InvalidArgument, "INVALID_SEAL_CONFIG")
                }
                ApplyError::KeyNameTaken { .. } => (Code::AlreadyExists, "KEY_NAME_TAKEN"),
                ApplyError::KeyIdTaken { .. } => (Code::Aborted, "KEY_ID_COLLISION"),
                ApplyError::KeyNotFound { .. } => (Code::NotFound, "KEY_NOT_FOUND"),
                ApplyError::VersionConflict { .. } => (Code::Aborted, "VERSION_CONFLICT"),
                ApplyError::RequestIdReused { .. } => (Code::InvalidArgument, "REQUEST_ID_REUSED"),
                ApplyError::InvalidKeyState { .. } => {
                    (Code::FailedPrecondition, "INVALID_KEY_STATE")
                }
                ApplyError::DeletionNotDue { .. } => (Code::FailedPrecondition, "DELETION_NOT_DUE"),
                ApplyError::VersionNotFound { .. } => (Code::NotFound, "VERSION_NOT_FOUND"),
                ApplyError::PrimaryVersion { .. } => (Code::FailedPrecondition, "PRIMARY_VERSION"),
                ApplyError::VersionDestroyed { .. } => {
                    (Code::FailedPrecondition, "VERSION_DESTROYED")
                }
                ApplyError::InvalidMinDecryptionVersion { .. } => {
                    (Code::InvalidArgument, "INVALID_MIN_DECRYPTION_VERSION")
                }
                ApplyError::AliasExists { .. } => (Code::AlreadyExists, "ALIAS_EXISTS"),
                ApplyError::AliasNotFound { .. } => (Code::NotFound, "ALIAS_NOT_FOUND"),
                ApplyError::AliasUsageMismatch { .. } => {
                    (Code::FailedPrecondition, "ALIAS_USAGE_MISMATCH")
                }
                ApplyError::InvalidTags { .. } => (Code::InvalidArgument, "INVALID_TAGS"),
                ApplyError::WrongOrigin { .. } => (Code::FailedPrecondition, "WRONG_ORIGIN"),
                ApplyError::ImportTokenInvalid { .. } => {
                    (Code::FailedPrecondition, "IMPORT_TOKEN_INVALID")
                }
                ApplyError::ImportTokenExpired { .. } => {
                    (Code::FailedPrecondition, "IMPORT_TOKEN_EXPIRED")
                }
                ApplyError::InvalidRotationPeriod { .. } => {
                    (Code::InvalidArgument, "INVALID_ROTATION_PERIOD")
                }
                ApplyError::StaleReference { .. } => (Code::Aborted, "REFERENCE_CHANGED"),
                ApplyError::ReservedPolicyName { .. } => {
                    (Code::InvalidArgument, "RESERVED_POLICY_NAME")
                }
                ApplyError::PolicyNotFound { .. } => (Code::NotFound, "POLICY_NOT_FOUND"),
                ApplyError::TooManyPolicies { .. } => {
                    (Code::ResourceExhausted, "TOO_MANY_POLICIES")
                }
                ApplyError::GrantIdTaken { .. } => (Code::Aborted, "GRANT_ID_COLLISION"),
                ApplyError::GrantNotFound { .. } => (Code::NotFound, "GRANT_NOT_FOUND"),
                ApplyError::InvalidGrant { .. } => (Code::InvalidArgument, "INVALID_GRANT"),
                ApplyError::InvalidRateLimit { .. } => {
                    (Code::InvalidArgument, "INVALID_RATE_LIMIT")
                }
                ApplyError::RateLimitNotFound { .. } => (Code::NotFound, "RATE_LIMIT_NOT_FOUND"),
                ApplyError::TooManyRateLimits { .. } => {
                    (Code::ResourceExhausted, "TOO_MANY_RATE_LIMITS")
                }
                ApplyError::RestoreTargetChanged => (Code::Aborted, "RESTORE_TARGET_CHANGED"),
                ApplyError::RestoreBodyInvalid => (Code::InvalidArgument, "SNAPSHOT_CORRUPT"),
                ApplyError::StaleKeyring { .. } => (Code::Aborted, "KEYRING_CHANGED"),
                ApplyError::BarrierTermsInUse { .. } => {
                    (Code::FailedPrecondition, "BARRIER_TERMS_IN_USE")
                }
                ApplyError::RetiredBarrierTerm { .. } => (Code::Aborted, "RETIRED_BARRIER_TERM"),
                ApplyError::StaleReseal { .. } => (Code::Aborted, "RESEAL_CONFLICT"),
                ApplyError::ResealNotActive { .. } => (Code::Aborted, "RESEAL_NOT_ACTIVE_TERM"),
                ApplyError::StaleRootKey => (Code::Aborted, "UNSEAL_KEY_CHANGED"),
                // Only the leader builds batches, and never nests them.
                ApplyError::NestedBatch => (Code::Internal, "NESTED_BATCH"),
            },
            Self::Propose(e) => match e {
                ProposeError::NoLeader { .. } => (Code::Unavailable, "NO_LEADER"),
                ProposeError::Unknown => (Code::Unavailable, "WRITE_OUTCOME_UNKNOWN"),
                ProposeError::Refused(_) => (Code::Internal, "RAFT_REFUSED"),
                // Node-local: another node may take the request (and a write whose entry
                // was appended before the core stopped may still commit).
                ProposeError::Fatal(_) => (Code::Unavailable, "RAFT_STOPPED"),
                // Clients go to another node with the same request id.
                ProposeError::Removed { .. } => (Code::Unavailable, "NODE_REMOVED"),
            },
            Self::ReadIndex(e) => match e {
                ReadIndexError::NoLeader { .. }
                | ReadIndexError::NotApplied { .. }
                | ReadIndexError::Fatal(_) => (Code::Unavailable, "NO_READ_INDEX"),
            },
            Self::Seal(e) => match e {
                SealError::DuplicateShare { .. } => (Code::InvalidArgument, "DUPLICATE_SHARE"),
                SealError::ConflictingShare { .. } => (Code::InvalidArgument, "CONFLICTING_SHARE"),
                SealError::WrongShares { .. } => (Code::InvalidArgument, "WRONG_SHARES"),
                SealError::CorruptSeal => (Code::DataLoss, "CORRUPT_SEAL"),
                SealError::Sealed => (Code::FailedPrecondition, "SEALED"),
                SealError::TermsExhausted => (Code::FailedPrecondition, "BARRIER_TERMS_EXHAUSTED"),
                SealError::NoRekey => (Code::FailedPrecondition, "NO_REKEY"),
                SealError::RekeyInProgress { .. } => {
                    (Code::FailedPrecondition, "REKEY_IN_PROGRESS")
                }
                SealError::RekeyNonceMismatch { .. } => {
                    (Code::InvalidArgument, "REKEY_NONCE_MISMATCH")
                }
                SealError::StaleRekey => (Code::Aborted, "UNSEAL_KEY_CHANGED"),
            },
            Self::PermissionDenied { .. } => (Code::PermissionDenied, "ACCESS_DENIED"),
            Self::CertificateRevoked => (Code::PermissionDenied, "CERTIFICATE_REVOKED"),
            Self::Unauthenticated => (Code::Unauthenticated, "UNAUTHENTICATED"),
            Self::RateLimited { .. } => (Code::ResourceExhausted, "RATE_LIMITED"),
            Self::Throttled { .. } => (Code::ResourceExhausted, "RATE_LIMITED"),
            Self::AuditUnavailable => (Code::Unavailable, "AUDIT_UNAVAILABLE"),
            Self::Policy(_) => (Code::InvalidArgument, "INVALID_POLICY"),
            Self::Removed { .. } => (Code::Unavailable, "NODE_REMOVED"),
            Self::Membership(e) => match e {
                MembershipError::QuorumLoss { .. } => (Code::FailedPrecondition, "QUORUM_LOSS"),
                MembershipError::LastVoter { .. } => (Code::FailedPrecondition, "LAST_VOTER"),
                MembershipError::NotAMember { .. } => (Code::NotFound, "NOT_A_MEMBER"),
                MembershipError::AddressConflict { .. } => {
                    (Code::AlreadyExists, "MEMBER_ADDRESS_CONFLICT")
                }
                MembershipError::StaleData { .. } => (Code::FailedPrecondition, "STALE_NODE_DATA"),
                MembershipError::WrongNode { .. } => (Code::FailedPrecondition, "WRONG_NODE"),
                MembershipError::Unreachable { .. } => (Code::Unavailable, "NODE_UNREACHABLE"),
                MembershipError::Lagging { .. } => (Code::FailedPrecondition, "LEARNER_LAGGING"),
                MembershipError::InProgress => (Code::Unavailable, "MEMBERSHIP_CHANGE_IN_PROGRESS"),
                MembershipError::NoLeader => (Code::Unavailable, "NO_LEADER"),
                MembershipError::Raft(_) => (Code::Internal, "RAFT_REFUSED"),
            },
            Self::Backup(e) => (backup_status(e), e.code()),
            Self::Internal(_) => (Code::Internal, "INTERNAL"),
        }
    }
}

/// The gRPC code of a refused backup: damage to the file is the caller's argument, a file
/// that does not fit this cluster or this build a precondition, an oversized one exhausted.
fn backup_status(e: &BackupError) -> Code {
    match e {
        BackupError::Truncated { .. }
        | BackupError::NotABackup
        | BackupError::TrailingBytes { .. }
        | BackupError::ChecksumMismatch
        | BackupError::BadTerms { .. }
        | BackupError::Body(_)
        | BackupError::Uninitialized => Code::InvalidArgument,
        BackupError::UnsupportedFormat { .. }
        | BackupError::ForeignCluster { .. }
        | BackupError::TargetInitialized { .. } => Code::FailedPrecondition,
        BackupError::TooLarge { .. } => Code::ResourceExhausted,
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let (code, name) = e.codes();
        let mut status = Status::new(code, e.to_string());
        status.metadata_mut().insert(
            ERROR_CODE_METADATA,
            tonic::metadata::MetadataValue::from_static(name),
        );
        status
    }
}

#[cfg(test)]
mod tests {
    use tessera_raft::typ::Fatal;

    use super::*;

    #[test]
    fn status_carries_code_message_and_metadata() {
        let status = Status::from(ApiError::Sealed);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("sealed"));
        assert_eq!(
            status.metadata().get(ERROR_CODE_METADATA).unwrap(),
            "SEALED"
        );
    }

    #[test]
    fn unknown_names_are_echoed_cut() {
        let e = ApiError::not_one_of("origin", &"o".repeat(1 << 20), "TESSERA or EXTERNAL");
        assert_eq!(e.codes(), (Code::InvalidArgument, "INVALID_ARGUMENT"));
        let message = e.to_string();
        assert!(message.len() < 200, "{} bytes", message.len());
        assert!(
            message.ends_with("…\" is not TESSERA or EXTERNAL"),
            "{message}"
        );
    }

    #[test]
    fn a_removed_node_sends_clients_elsewhere_and_names_the_fix() {
        let e = ApiError::Removed {
            node_id: NodeId::new(3),
        };
        assert_eq!(e.codes(), (Code::Unavailable, "NODE_REMOVED"));
        let message = e.to_string();
        assert!(message.contains("node 3 was removed"), "{message}");
        assert!(message.contains("wipe its data directory"), "{message}");
    }

    #[test]
    fn a_change_that_would_lose_quorum_is_a_failed_precondition() {
        let e = ApiError::Membership(MembershipError::QuorumLoss {
            voters_after: vec![NodeId::new(1), NodeId::new(3)],
            reachable_after: vec![NodeId::new(1)],
        });
        assert_eq!(e.codes(), (Code::FailedPrecondition, "QUORUM_LOSS"));
        let e = ApiError::Membership(MembershipError::StaleData {
            id: NodeId::new(3),
            addr: "n3:7402".into(),
        });
        assert_eq!(e.codes(), (Code::FailedPrecondition, "STALE_NODE_DATA"));
        assert!(e.to_string().contains("wipe its data directory"), "{e}");
    }

    #[test]
    fn lease_problems_are_explained() {
        let e = ApiError::NoLease(LeaseProblem(LeaseState::CatchingUp {
            applied: 3,
            commit_index: 9,
        }));
        assert_eq!(e.codes().0, Code::Unavailable);
        assert!(e.to_string().contains("applied 3 of 9"), "{e}");
    }

    #[test]
    fn a_stopped_raft_core_sends_writes_elsewhere_with_an_unknown_outcome() {
        let e = ApiError::Propose(ProposeError::Fatal(Box::new(Fatal::Panicked)));
        assert_eq!(e.codes(), (Code::Unavailable, "RAFT_STOPPED"));
        let message = e.to_string();
        assert!(message.contains("panicked"), "{message}");
        assert!(message.contains("outcome is unknown"), "{message}");
        assert!(message.contains("same request id"), "{message}");
    }

    #[test]
    fn refused_backups_carry_their_code_in_the_status_and_the_message() {
        let cases = [
            (
                BackupError::ChecksumMismatch,
                Code::InvalidArgument,
                "SNAPSHOT_CHECKSUM_MISMATCH",
            ),
            (
                BackupError::Truncated { len: 3, needed: 9 },
                Code::InvalidArgument,
                "SNAPSHOT_TRUNCATED",
            ),
            (
                BackupError::UnsupportedFormat { version: 2 },
                Code::FailedPrecondition,
                "SNAPSHOT_FORMAT_UNSUPPORTED",
            ),
            (
                BackupError::ForeignCluster {
                    file: "aa".into(),
                    target: "bb".into(),
                },
                Code::FailedPrecondition,
                "SNAPSHOT_FOREIGN_CLUSTER",
            ),
        ];
        for (error, code, name) in cases {
            let status = Status::from(ApiError::Backup(error));
            assert_eq!(status.code(), code);
            assert_eq!(status.metadata().get(ERROR_CODE_METADATA).unwrap(), name);
            assert!(
                status.message().starts_with(&format!("{name}: ")),
                "{status:?}"
            );
        }
    }

    #[test]
    fn raft_and_seal_errors_keep_their_documented_codes() {
        let cases = [
            (
                ApiError::Propose(ProposeError::NoLeader {
                    waited: std::time::Duration::ZERO,
                }),
                (Code::Unavailable, "NO_LEADER"),
            ),
            (
                ApiError::Propose(ProposeError::Unknown),
                (Code::Unavailable, "WRITE_OUTCOME_UNKNOWN"),
            ),
            (
                ApiError::Propose(ProposeError::Fatal(Box::new(Fatal::Stopped))),
                (Code::Unavailable, "RAFT_STOPPED"),
            ),
            (
                ApiError::ReadIndex(ReadIndexError::NoLeader {
                    timeout: std::time::Duration::ZERO,
                }),
                (Code::Unavailable, "NO_READ_INDEX"),
            ),
            (
                ApiError::ReadIndex(ReadIndexError::NotApplied { index: 7 }),
                (Code::Unavailable, "NO_READ_INDEX"),
            ),
            (
                ApiError::ReadIndex(ReadIndexError::Fatal(Box::new(Fatal::Panicked))),
                (Code::Unavailable, "NO_READ_INDEX"),
            ),
            (
                ApiError::Seal(SealError::CorruptSeal),
                (Code::DataLoss, "CORRUPT_SEAL"),
            ),
            (
                ApiError::Propose(ProposeError::Removed {
                    node_id: NodeId::new(3),
                }),
                (Code::Unavailable, "NODE_REMOVED"),
            ),
        ];
        for (error, codes) in cases {
            assert_eq!(error.codes(), codes, "{error}");
        }
    }
}
