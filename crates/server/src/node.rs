//! [`Node`]: what the API services share — the Raft member, the seal manager — and the checks
//! and lookups every handler needs.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tessera_crypto::{KeySpec, SecretBytes, UnsealShare};
use tessera_raft::{LeaseState, RaftNode};
use tessera_state::policy::{AccessRequest, Action, Decision, Identity, KeyAttributes};
use tessera_state::{
    key::version_aad, CallerId, Command, KeyBinding, KeyId, KeyRecord, KeyRef, KeyVersion, Request,
    RequestId, Response, SealConfig, State, Unusable,
};

use crate::audit;
use crate::authz::{self, Authorizer, Caller};
use crate::config::LifecycleSection;
use crate::error::{ApiError, LeaseProblem};
use crate::seal::{RekeyManager, SealError, SealManager, SealStatus};

/// A client request that carries a request id (every write does).
pub trait ClientRequest: prost::Message + Clone {
    /// The client's request id (may be empty).
    fn request_id(&self) -> &str;
    /// A copy without the request id, for the fingerprint.
    fn without_request_id(&self) -> Self;
}

/// Implements [`ClientRequest`] for protobuf messages with a `request_id` field.
macro_rules! client_requests {
    ($($message:ty),* $(,)?) => {
        $(
            impl ClientRequest for $message {
                fn request_id(&self) -> &str {
                    &self.request_id
                }
                fn without_request_id(&self) -> Self {
                    Self {
                        request_id: String::new(),
                        ..self.clone()
                    }
                }
            }
        )*
    };
}

client_requests!(
    tessera_proto::v1::InitRequest,
    tessera_proto::v1::CreateKeyRequest,
    tessera_proto::v1::KeyWriteRequest,
    tessera_proto::v1::KeyVersionRequest,
    tessera_proto::v1::ScheduleKeyDeletionRequest,
    tessera_proto::v1::UpdateKeyDescriptionRequest,
    tessera_proto::v1::TagKeyRequest,
    tessera_proto::v1::UntagKeyRequest,
    tessera_proto::v1::SetRotationPeriodRequest,
    tessera_proto::v1::AliasRequest,
    tessera_proto::v1::DeleteAliasRequest,
    tessera_proto::v1::ImportKeyMaterialRequest,
    tessera_proto::v1::PutPolicyRequest,
    tessera_proto::v1::DeletePolicyRequest,
    tessera_proto::v1::CreateGrantRequest,
    tessera_proto::v1::RevokeGrantRequest,
    tessera_proto::v1::RevokeCertificateRequest,
    tessera_proto::v1::PutRateLimitRequest,
    tessera_proto::v1::DeleteRateLimitRequest,
);

/// Request ids of the leader's background jobs start with this; clients may not use it.
pub const JOB_REQUEST_PREFIX: &str = "job-";

/// The identity the cluster's own writes (jobs, clock reports) are de-duplicated under.
pub const CLUSTER_CALLER: &str = "tessera/cluster";

/// How often a key write is prepared again when it loses a race (another rotation took its
/// version number, or its key reference moved) before the caller gets the conflict. Every
/// round has a winner, so this converges.
const WRITE_ATTEMPTS: usize = 64;

/// A client write as it arrived: what makes it idempotent, who sent it and what it needs.
pub struct WriteCall<'a, M> {
    /// The action authorised (on the key, for [`Node::write_for_key`]); its RPC name
    /// ([`Action::rpc`], e.g. `Keys/RotateKey`) is part of the fingerprint.
    pub action: Action,
    /// The caller (request ids are de-duplicated per caller identity).
    pub caller: &'a Caller,
    /// The request as the client sent it.
    pub request: &'a M,
}

impl<'a, M> WriteCall<'a, M> {
    /// A call of `action`'s method, authorised as `action`, by `caller`.
    pub fn new(action: Action, caller: &'a Caller, request: &'a M) -> Self {
        Self {
            action,
            caller,
            request,
        }
    }
}

/// Rate of the lease clock under the `slow_lease_clock` fault.
#[cfg(feature = "fault-injection")]
const SLOW_LEASE_CLOCK_RATE: f64 = 0.1;

/// How long a call waits for this node to apply entries the leader has already committed
/// before it is refused as `NO_LEASE` (catching up usually takes a few milliseconds).
pub const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Shared state of a running node.
pub struct Node {
    raft: RaftNode,
    seal: SealManager,
    rekey: RekeyManager,
    lifecycle: LifecycleSection,
    authz: Authorizer,
    init_identities: Vec<Identity>,
    #[cfg(feature = "fault-injection")]
    faults: crate::config::FaultSection,
    /// Under the `sticky_access_decisions` fault: (identity, action, key id) once allowed.
    #[cfg(feature = "fault-injection")]
    remembered_allows: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Node {
    /// Wraps a started Raft member; the node starts sealed.
    pub fn new(raft: RaftNode, lifecycle: LifecycleSection) -> Self {
        Self {
            raft,
            seal: SealManager::new(),
            rekey: RekeyManager::default(),
            lifecycle,
            authz: Authorizer::default(),
            init_identities: Vec::new(),
            #[cfg(feature = "fault-injection")]
            faults: crate::config::FaultSection::default(),
            #[cfg(feature = "fault-injection")]
            remembered_allows: Default::default(),
        }
    }

    /// Restricts `Init` on an uninitialised node to these identities (empty: anyone).
    pub fn with_init_identities(mut self, identities: Vec<Identity>) -> Self {
        self.init_identities = identities;
        self
    }

    /// The identities allowed to run `Init` (empty: anyone).
    pub fn init_identities(&self) -> &[Identity] {
        &self.init_identities
    }

    /// The unseal rate limit and decision cache.
    pub fn authorizer(&self) -> &Authorizer {
        &self.authz
    }

    /// Decides an access request against the applied state at cluster time. Local: no Raft
    /// round trip.
    pub fn decide(&self, request: &AccessRequest) -> Decision {
        let applied = self.raft.shared().read();
        self.decide_in(&applied.state, request)
    }

    /// Decides `request` against `state` (the caller holds the applied-state lock).
    fn decide_in(&self, state: &State, request: &AccessRequest) -> Decision {
        self.authz
            .decide(state.access(), request, state.clock().now_ms())
    }

    /// Fails if `caller`'s certificate is on the deny-list: for the calls every identity may
    /// make (`Unseal`, basic `Status`), which no policy decides.
    ///
    /// # Errors
    /// [`ApiError::CertificateRevoked`].
    pub fn require_not_revoked(&self, caller: &Caller) -> Result<(), ApiError> {
        let applied = self.raft.shared().read();
        if applied.state.access().is_revoked(caller.certificate()) {
            Err(ApiError::CertificateRevoked)
        } else {
            Ok(())
        }
    }

    /// Fails unless `caller` may perform `action` (on `key`, with encryption `context`).
    ///
    /// # Errors
    /// [`ApiError::PermissionDenied`] or [`ApiError::CertificateRevoked`].
    pub fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        key: Option<&KeyRecord>,
        context: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        // One lock acquisition for the key's attributes and the decision.
        let applied = self.raft.shared().read();
        let attributes = key.map(|record| {
            audit::notes::key(record.key_id.as_str());
            authz::key_attributes(&applied.state, record)
        });
        audit::note_access(attributes.as_ref(), context);
        let request = authz::request(caller, action, attributes, context);
        let decision = self.decide_in(&applied.state, &request);
        drop(applied);
        self.conclude(&request, &decision, action)
    }

    /// As [`Node::authorize`] for a key known by its attributes (a key being created).
    ///
    /// # Errors
    /// As [`Node::authorize`].
    pub fn authorize_attributes(
        &self,
        caller: &Caller,
        action: Action,
        key: Option<KeyAttributes>,
        context: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        audit::note_access(key.as_ref(), context);
        let request = authz::request(caller, action, key, context);
        let decision = self.decide(&request);
        self.conclude(&request, &decision, action)
    }

    /// `Ok` for an allowing decision, else the error the denial gets.
    fn conclude(
        &self,
        request: &AccessRequest,
        decision: &Decision,
        action: Action,
    ) -> Result<(), ApiError> {
        #[cfg(feature = "fault-injection")]
        if self.faults.sticky_access_decisions && self.remember_allow(request, decision) {
            return Ok(());
        }
        if decision.is_allowed() {
            Ok(())
        } else {
            Err(authz::denial(decision, action, request.key.as_ref()))
        }
    }

    /// The `sticky_access_decisions` fault: a cache of allow decisions that nothing
    /// invalidates. Records an allow; answers whether `request` was allowed before.
    #[cfg(feature = "fault-injection")]
    fn remember_allow(&self, request: &AccessRequest, decision: &Decision) -> bool {
        let key = request.key.as_ref().and_then(|k| k.id.as_ref());
        let entry = format!("{}|{:?}|{key:?}", request.identity, request.action);
        let mut remembered = self
            .remembered_allows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if decision.is_allowed() {
            remembered.insert(entry);
            false
        } else {
            remembered.contains(&entry)
        }
    }

    /// Turns on deliberate bugs (fault-injection builds only).
    #[cfg(feature = "fault-injection")]
    pub fn with_faults(mut self, faults: crate::config::FaultSection) -> Self {
        if faults.serve_without_lease {
            tracing::warn!("FAULT INJECTION: serving crypto without a leader lease");
        }
        if faults.clock_skew_ms != 0 {
            tracing::warn!(
                skew_ms = faults.clock_skew_ms,
                "FAULT INJECTION: this node's wall clock is skewed"
            );
        }
        if faults.sticky_access_decisions {
            tracing::warn!(
                "FAULT INJECTION: access decisions, once allowed, ignore later policy changes"
            );
        }
        if faults.slow_lease_clock {
            tracing::warn!("FAULT INJECTION: the lease clock runs at a tenth of real time");
            self.raft.set_lease_clock_rate(SLOW_LEASE_CLOCK_RATE);
        }
        self.faults = faults;
        self
    }

    /// This node's wall clock, milliseconds since the Unix epoch: the timestamp it puts in
    /// the commands it proposes and the reading it reports to cluster time. Under the
    /// `clock_skew_ms` fault it is off by that much.
    pub fn now_ms(&self) -> u64 {
        #[cfg(feature = "fault-injection")]
        if self.faults.clock_skew_ms != 0 {
            return system_now_ms().saturating_add_signed(self.faults.clock_skew_ms);
        }
        system_now_ms()
    }

    /// Lifecycle limits from the configuration.
    pub fn lifecycle(&self) -> &LifecycleSection {
        &self.lifecycle
    }

    /// The Raft member.
    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// Gives up the node, returning its Raft member (for shutdown).
    pub fn into_raft(self) -> RaftNode {
        self.raft
    }

    /// The key of audit HMACs, while the node is unsealed.
    pub fn audit_key(&self) -> Option<tessera_crypto::AuditKey> {
        self.seal.audit_key()
    }

    /// The cluster id and the keyring's terms, while the node is unsealed (see
    /// [`tessera_crypto::cluster_id`]).
    pub fn cluster_id(&self) -> Option<([u8; 32], Vec<u32>)> {
        let terms = self.with_keyring(|keyring| keyring.terms().collect())?;
        Some((self.seal.cluster_id()?, terms))
    }

    /// The applied seal configuration (a copy: the state lock is not held after the call).
    ///
    /// # Errors
    /// [`ApiError::NotInitialized`] before `operator init`.
    pub fn seal_config(&self) -> Result<SealConfig, ApiError> {
        self.raft
            .shared()
            .read()
            .state
            .seal_config()
            .cloned()
            .ok_or(ApiError::NotInitialized)
    }

    /// Runs `f` with the barrier keyring of the applied state (see
    /// [`SealManager::with_synced_keyring`]), or returns `None` while sealed.
    ///
    /// The replicated blob is compared in place with the one in memory and copied only when
    /// it changed. Must not be called while holding the applied-state lock (see the lock
    /// order on [`SealManager::with_synced_keyring`]).
    pub fn with_keyring<R>(&self, f: impl FnOnce(&tessera_crypto::Keyring) -> R) -> Option<R> {
        self.seal.with_synced_keyring(
            |held| {
                self.raft
                    .shared()
                    .read()
                    .state
                    .seal_config()
                    .map(|c| &c.sealed_keyring)
                    .filter(|current| current.as_slice() != held)
                    .cloned()
            },
            f,
        )
    }

    /// The seal manager.
    pub fn seal(&self) -> &SealManager {
        &self.seal
    }

    /// This node's rekey attempt.
    pub fn rekey(&self) -> &RekeyManager {
        &self.rekey
    }

    /// Seals this node: drops the keyring, and makes the node hand Raft leadership to an
    /// unsealed voter (a sealed leader cannot seal material for the rotation job).
    pub fn seal_now(&self) {
        self.seal.seal();
        self.rekey.cancel();
        self.raft.set_sealed(true);
    }

    /// Submits an unseal share (see [`SealManager::submit`]); once the node is unsealed it may
    /// lead the cluster again.
    ///
    /// # Errors
    /// [`SealError`].
    pub fn submit_share(
        &self,
        share: UnsealShare,
        config: &SealConfig,
    ) -> Result<SealStatus, SealError> {
        let status = self.seal.submit(share, config)?;
        self.raft.set_sealed(status.sealed);
        Ok(status)
    }

    /// Fails if this node was removed from the cluster (see
    /// [`tessera_raft::RaftNode::is_removed`]).
    ///
    /// # Errors
    /// [`ApiError::Removed`].
    pub fn require_member(&self) -> Result<(), ApiError> {
        if self.raft.is_removed() {
            Err(ApiError::Removed {
                node_id: self.raft.id(),
            })
        } else {
            Ok(())
        }
    }

    /// Fails unless the node is unsealed.
    ///
    /// # Errors
    /// [`ApiError::Sealed`].
    pub fn require_unsealed(&self) -> Result<(), ApiError> {
        if self.seal.status().sealed {
            Err(ApiError::Sealed)
        } else {
            Ok(())
        }
    }

    /// Fails unless the node is unsealed and holds the leader lease, i.e. may answer from its
    /// own applied state. A node in contact with the leader that has not yet applied what the
    /// leader committed (typically a write acknowledged a moment ago) waits up to
    /// [`CATCH_UP_WAIT`] for it rather than refuse the call.
    ///
    /// # Errors
    /// [`ApiError::Removed`], [`ApiError::Sealed`] or [`ApiError::NoLease`].
    pub async fn require_serving(&self) -> Result<(), ApiError> {
        match self.serving_now() {
            Err(ApiError::NoLease(LeaseProblem(LeaseState::CatchingUp {
                commit_index, ..
            }))) => {
                self.raft
                    .shared()
                    .wait_applied(commit_index, CATCH_UP_WAIT)
                    .await;
                self.serving_now()
            }
            other => other,
        }
    }

    /// As [`Node::require_serving`], without waiting: whether the node may serve right now.
    ///
    /// # Errors
    /// As [`Node::require_serving`].
    pub fn serving_now(&self) -> Result<(), ApiError> {
        self.require_member()?;
        self.require_unsealed()?;
        #[cfg(feature = "fault-injection")]
        if self.faults.serve_without_lease {
            return Ok(());
        }
        match self.raft.lease_state() {
            LeaseState::Valid => Ok(()),
            other => Err(ApiError::NoLease(LeaseProblem(other))),
        }
    }

    /// Resolves a key reference in the applied state. A miss is confirmed with a read barrier
    /// first, so a key created through any node is found on every node.
    ///
    /// # Errors
    /// [`ApiError::InvalidArgument`] for a malformed reference, [`ApiError::KeyNotFound`].
    pub async fn resolve_key(&self, key: &str) -> Result<KeyRecord, ApiError> {
        self.resolve_ref(&parse_key_ref(key)?).await
    }

    async fn resolve_ref(&self, key_ref: &KeyRef) -> Result<KeyRecord, ApiError> {
        if let Some(record) = self.lookup(key_ref) {
            return Ok(record);
        }
        self.raft.read_barrier().await?;
        self.lookup(key_ref).ok_or_else(|| {
            let key = key_ref.to_string();
            audit::notes::value("key_ref", &key);
            ApiError::KeyNotFound { key }
        })
    }

    /// Resolves a key that must have `version`; like [`Node::resolve_key`], a missing version
    /// is confirmed with a read barrier first (it may have been created a moment ago).
    ///
    /// # Errors
    /// As [`Node::resolve_key`], and `VERSION_NOT_FOUND`.
    pub async fn resolve_key_version(
        &self,
        key: &str,
        version: KeyVersion,
    ) -> Result<KeyRecord, ApiError> {
        let record = self.resolve_key(key).await?;
        if record.versions.contains(version) {
            return Ok(record);
        }
        self.raft.read_barrier().await?;
        let record = self
            .lookup(&KeyRef::Id(record.key_id.clone()))
            .unwrap_or(record);
        if record.versions.contains(version) {
            Ok(record)
        } else {
            Err(Unusable::VersionNotFound {
                key_id: record.key_id,
                version,
            }
            .into())
        }
    }

    /// The API view of a key (with its aliases) from the applied state.
    pub fn key_metadata(&self, record: &KeyRecord) -> tessera_state::KeyMetadata {
        self.raft.shared().read().state.metadata(record)
    }

    fn lookup(&self, key: &KeyRef) -> Option<KeyRecord> {
        self.raft.shared().read().state.resolve(key).cloned()
    }

    /// Opens a version's sealed material with the barrier keyring.
    ///
    /// # Errors
    /// [`ApiError::Sealed`], or [`ApiError::Internal`] if the stored blob does not open
    /// (corruption).
    pub fn unseal_material(
        &self,
        key_id: &KeyId,
        version: KeyVersion,
        spec: KeySpec,
        sealed: &[u8],
    ) -> Result<SecretBytes, ApiError> {
        audit::notes::key_version(key_id.as_str(), version);
        let aad = version_aad(key_id, version, spec);
        self.with_keyring(|keyring| keyring.open(&aad, sealed))
            .ok_or(ApiError::Sealed)?
            .map_err(|_| ApiError::Internal("stored key material does not open under the barrier"))
    }

    /// Seals `material` for `key_id`'s `version` under the active barrier term.
    ///
    /// # Errors
    /// [`ApiError::Sealed`], or [`ApiError::Internal`] if sealing fails.
    pub fn seal_material(
        &self,
        key_id: &KeyId,
        version: KeyVersion,
        spec: KeySpec,
        material: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        self.seal_with_aad(&version_aad(key_id, version, spec), material)
    }

    /// Seals a secret under the active barrier term with the given AAD.
    ///
    /// # Errors
    /// [`ApiError::Sealed`], or [`ApiError::Internal`] if sealing fails.
    pub fn seal_with_aad(&self, aad: &[u8], material: &[u8]) -> Result<Vec<u8>, ApiError> {
        let aad = aad.to_vec();
        let mut rng = tessera_crypto::os_rng();
        self.with_keyring(|keyring| keyring.seal(&aad, material, &mut rng))
            .ok_or(ApiError::Sealed)?
            .map_err(|_| ApiError::Internal("sealing key material failed"))
    }

    /// Runs a client write: checks the seal, validates the request id, fingerprints the
    /// client-visible request and proposes `command`, valid only while every binding holds.
    ///
    /// # Errors
    /// [`ApiError::Sealed`], [`ApiError::InvalidArgument`] for a bad request id, and as
    /// [`Node::propose`].
    pub async fn write<M: ClientRequest>(
        &self,
        call: &WriteCall<'_, M>,
        bindings: Vec<KeyBinding>,
        command: Command,
    ) -> Result<Response, ApiError> {
        self.require_unsealed()?;
        let request_id = client_request_id(call.request.request_id())?;
        audit::notes::request_id(request_id.as_str());
        self.propose(Request {
            request_id,
            caller: CallerId::of(call.caller.name()),
            fingerprint: fingerprint(call.action.rpc(), &call.request.without_request_id()),
            bindings,
            command,
        })
        .await
    }

    /// Runs a client write on the key `key` names: resolves it, builds the command for that
    /// key and proposes it bound to the resolution, so `apply` refuses it if `key` names
    /// another key by then (an alias moved, a name was reused). A refused attempt, or one
    /// that lost a race for a version number, is prepared again after a read barrier, so the
    /// write acts on the key the reference names when the write is applied, never on the one
    /// a lagging node believed it named.
    ///
    /// # Errors
    /// As [`Node::resolve_key`] and [`Node::write`]; the last transient rejection after
    /// `WRITE_ATTEMPTS` attempts.
    pub async fn write_for_key<M: ClientRequest>(
        &self,
        call: &WriteCall<'_, M>,
        key: &str,
        mut build: impl FnMut(&KeyRecord) -> Result<Command, ApiError>,
    ) -> Result<Response, ApiError> {
        self.require_unsealed()?;
        let key_ref = parse_key_ref(key)?;
        let mut attempt = 1;
        loop {
            let record = self.resolve_ref(&key_ref).await?;
            self.authorize(call.caller, call.action, Some(&record), &Default::default())?;
            let command = build(&record)?;
            let bindings = match &key_ref {
                KeyRef::Id(_) => Vec::new(),
                reference => vec![KeyBinding {
                    reference: reference.clone(),
                    key_id: record.key_id.clone(),
                }],
            };
            match self.write(call, bindings, command).await {
                Err(ApiError::Rejected(e)) if e.is_transient() && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "preparing a key write again");
                    self.raft.read_barrier().await?;
                }
                other => return other,
            }
        }
    }

    /// The remembered result of an earlier attempt of `call` (same caller, id and arguments),
    /// if this node has applied it. Lets a handler answer a retry before re-checking
    /// preconditions that the first attempt consumed (an import token, for example).
    pub fn previous_result<M: ClientRequest>(&self, call: &WriteCall<'_, M>) -> Option<Response> {
        let request_id = RequestId::parse(call.request.request_id()).ok()?;
        let fingerprint = fingerprint(call.action.rpc(), &call.request.without_request_id());
        let applied = self.raft.shared().read();
        match applied.state.dedup().check(
            &CallerId::of(call.caller.name()),
            &request_id,
            &fingerprint,
        ) {
            tessera_state::dedup::DedupHit::Retry(first) => Some(*first),
            _ => None,
        }
    }

    /// Proposes a write and returns its replicated result, turning a rejection into an error.
    ///
    /// # Errors
    /// [`ApiError::Removed`], [`ApiError::Rejected`] or [`ApiError::Propose`].
    pub async fn propose(&self, request: Request) -> Result<Response, ApiError> {
        self.require_member()?;
        let applied = self.raft.propose(request).await?;
        match applied.response {
            Response::Rejected(e) => Err(ApiError::Rejected(e)),
            other => Ok(other),
        }
    }
}

/// Parses a key reference from a request's `key` field.
fn parse_key_ref(key: &str) -> Result<KeyRef, ApiError> {
    KeyRef::parse(key).map_err(|e| ApiError::invalid("key", e))
}

/// Milliseconds since the Unix epoch from the system clock.
fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The request id of a client's write: as [`request_id`], and outside the prefix reserved for
/// the cluster's own jobs.
///
/// # Errors
/// [`ApiError::InvalidArgument`] if the id is malformed or reserved.
pub fn client_request_id(client: &str) -> Result<RequestId, ApiError> {
    if client.starts_with(JOB_REQUEST_PREFIX) {
        return Err(ApiError::invalid(
            "request_id",
            format!("the prefix {JOB_REQUEST_PREFIX:?} is reserved for the cluster's own jobs"),
        ));
    }
    request_id(client)
}

/// The request id to use: the client's, validated, or a fresh random one.
///
/// # Errors
/// [`ApiError::InvalidArgument`] if the client's id is malformed.
pub fn request_id(client: &str) -> Result<RequestId, ApiError> {
    if client.is_empty() {
        let mut bytes = [0u8; 16];
        rand_fill(&mut bytes);
        let id = tessera_state::KeyId::from_random_bytes(bytes);
        RequestId::parse(id.as_str()).map_err(|_| ApiError::Internal("generated request id"))
    } else {
        RequestId::parse(client).map_err(|e| ApiError::invalid("request_id", e))
    }
}

/// Fills `buf` from the OS CSPRNG.
pub fn rand_fill(buf: &mut [u8]) {
    use tessera_crypto::rand_core::Rng;
    tessera_crypto::os_rng().fill_bytes(buf);
}

/// The fingerprint of a client request: SHA-256 over the method name and the request's
/// protobuf encoding with its request id cleared. A retry must match it.
pub fn fingerprint<M: prost::Message>(method: &str, request_without_id: &M) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(request_without_id.encode_to_vec());
    hasher.finalize().into()
}
