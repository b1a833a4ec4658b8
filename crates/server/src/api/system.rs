//! `tessera.v1.System`: init, unseal, seal, status, barrier rotation and rekey.

mod barrier;

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tessera_crypto::{root, UnsealShare};
use tessera_proto::v1 as pb;
use tessera_proto::v1::system_server::System;
use tessera_raft::membership::{Change, ChangeRequest, MemberList, MembershipCall};
use tessera_raft::{NodeId, NodeInfo};
use tessera_state::policy::Action;
use tessera_state::{CallerId, Command, Request, Response, SealConfig};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use crate::api::snapshot;
use crate::authz::{split, Caller};
use crate::error::ApiError;
use crate::node::{fingerprint, request_id, Node};

/// Most shares an unseal key can be split into (Shamir over GF(256)).
pub const MAX_SHARES: u32 = 255;

/// Implements `tessera.v1.System`.
pub struct SystemService {
    node: Arc<Node>,
}

impl SystemService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    async fn initialize(
        &self,
        req: pb::InitRequest,
        caller: &Caller,
    ) -> Result<pb::InitResponse, ApiError> {
        let allowed = self.node.init_identities();
        if !allowed.is_empty() && !allowed.contains(caller.identity()) {
            return Err(ApiError::PermissionDenied {
                action: Action::Init,
                key: None,
            });
        }
        let (shares, threshold) = shamir_parameters(req.shares, req.threshold)?;
        let request_id = request_id(&req.request_id)?;
        if self.node.raft().shared().read().state.is_initialized() {
            return Err(ApiError::Rejected(
                tessera_state::ApplyError::AlreadyInitialized,
            ));
        }
        let fp = fingerprint(
            Action::Init.rpc(),
            &pb::InitRequest {
                request_id: String::new(),
                ..req.clone()
            },
        );
        let material = root::initialize(shares, threshold, &mut tessera_crypto::os_rng())
            .map_err(|e| ApiError::invalid("shares", e))?;
        let ours: [u8; 32] = Sha256::digest(&material.sealed_root_key).into();
        // The initialiser is bound to the built-in admin policy in the same entry.
        let command = Command::Initialize {
            seal: SealConfig {
                shares,
                threshold,
                sealed_root_key: material.sealed_root_key,
                sealed_keyring: material.sealed_keyring,
                initialized_at_ms: self.node.now_ms(),
            },
            admin: caller.identity().clone(),
        };
        let response = self
            .node
            .propose(Request {
                request_id,
                caller: CallerId::of(caller.name()),
                fingerprint: fp,
                bindings: Vec::new(),
                command,
            })
            .await?;
        // A retried request id returns the first result; only the attempt whose material was
        // stored may hand out shares.
        match response {
            Response::Initialized {
                sealed_root_key_digest,
            } if sealed_root_key_digest == ours => {}
            Response::Initialized { .. } => {
                return Err(ApiError::Rejected(
                    tessera_state::ApplyError::AlreadyInitialized,
                ))
            }
            _ => return Err(ApiError::Internal("initialization returned another result")),
        }
        tracing::info!(
            shares = material.shares.len(),
            threshold = req.threshold,
            "cluster initialized"
        );
        Ok(pb::InitResponse {
            shares: material
                .shares
                .iter()
                .map(|s| s.encode().to_string())
                .collect(),
            threshold: req.threshold,
        })
    }

    fn take_share(
        &self,
        req: &pb::UnsealRequest,
        caller: &Caller,
    ) -> Result<pb::UnsealResponse, ApiError> {
        // Share holders need no policy, but guessing shares is slowed down per identity.
        self.node.require_not_revoked(caller)?;
        self.node.authorizer().check_unseal(caller.identity())?;
        let config = self.node.seal_config()?;
        let threshold = u32::from(config.threshold);
        if req.reset {
            self.node.seal().reset();
        } else {
            let submitted = UnsealShare::decode(req.share.trim())
                .map_err(|e| ApiError::invalid("share", e))
                .and_then(|share| Ok(self.node.submit_share(share, &config)?));
            if let Err(e) = submitted {
                self.node
                    .authorizer()
                    .record_unseal_failure(caller.identity());
                return Err(e);
            }
        }
        let status = self.node.seal().status();
        Ok(pb::UnsealResponse {
            sealed: status.sealed,
            progress: status.progress,
            threshold,
        })
    }

    /// Checks that `caller` may run the operator `action` and that this node is a member.
    fn allow_operator(&self, caller: &Caller, action: Action) -> Result<(), ApiError> {
        self.node
            .authorize(caller, action, None, &BTreeMap::new())?;
        self.node.require_member()
    }

    /// Runs a membership call on the leader for an authorised caller.
    async fn membership(
        &self,
        caller: &Caller,
        action: Action,
        call: MembershipCall,
    ) -> Result<pb::MembersResponse, ApiError> {
        self.allow_operator(caller, action)?;
        if let MembershipCall::Change(request) = &call {
            tracing::info!(change = ?request.change, force = request.force, "membership change requested");
        }
        let list = self.node.raft().membership(call).await?;
        Ok(members_response(list))
    }

    /// Promotes, demotes or removes a member (`change` of its id).
    async fn change(
        &self,
        req: pb::MemberChangeRequest,
        change: fn(NodeId) -> Change,
        caller: &Caller,
    ) -> Result<pb::MembersResponse, ApiError> {
        let call = MembershipCall::Change(ChangeRequest {
            change: change(NodeId::new(req.node_id)),
            force: req.force,
        });
        self.membership(caller, Action::ChangeMembership, call)
            .await
    }

    /// The node's status. `detailed` (the caller is allowed `operator:Status`) adds the
    /// member addresses and the state digest; everyone else gets the basic fields.
    fn status_report(&self, with_state_digest: bool, detailed: bool) -> pb::StatusResponse {
        let with_state_digest = with_state_digest && detailed;
        let raft = self.node.raft();
        let metrics = raft.metrics();
        // Index and digest are read under one lock, so they describe the same state.
        let (initialized, threshold, applied_index, state_digest, terms, reseal_left) = {
            let applied = raft.shared().read();
            let config = applied.state.seal_config();
            (
                config.is_some(),
                config.map_or(0, |c| u32::from(c.threshold)),
                applied.last_applied.map_or(0, |l| l.index),
                if with_state_digest {
                    applied.state.digest().map(hex::encode).unwrap_or_default()
                } else {
                    String::new()
                },
                config.map(|_| applied.state.barrier_terms()),
                if detailed {
                    applied.state.blobs_left_by_term()
                } else {
                    BTreeMap::new()
                },
            )
        };
        let membership = metrics.membership_config.membership();
        let members = membership
            .nodes()
            .filter(|_| detailed)
            .map(|(id, info)| pb::Member {
                node_id: id.get(),
                api_addr: info.api_addr.clone(),
                cluster_addr: info.cluster_addr.clone(),
                region: info.region.clone(),
                zone: info.zone.clone(),
                role: if membership.voter_ids().any(|v| v == *id) {
                    "voter".into()
                } else {
                    "learner".into()
                },
            })
            .collect();
        let seal = self.node.seal().status();
        pb::StatusResponse {
            node_id: raft.id().get(),
            initialized,
            sealed: seal.sealed,
            role: tessera_raft::role_name(metrics.state).into(),
            leader_id: metrics.current_leader.map(NodeId::get),
            term: metrics.current_term,
            applied_index,
            region: raft.info().region.clone(),
            zone: raft.info().zone.clone(),
            members,
            unseal_progress: seal.progress,
            unseal_threshold: threshold,
            snapshot_index: metrics.snapshot.map_or(0, |l| l.index),
            purged_index: metrics.purged.map_or(0, |l| l.index),
            state_digest,
            serving: self.node.serving_now().is_ok(),
            barrier_active_term: terms.map_or(0, |t| t.active),
            barrier_oldest_term: terms.map_or(0, |t| t.oldest),
            reseal_left,
        }
    }
}

/// Checks the Shamir parameters of `Init` and `Rekey`.
///
/// # Errors
/// [`ApiError::InvalidArgument`] naming the field.
fn shamir_parameters(shares: u32, threshold: u32) -> Result<(u8, u8), ApiError> {
    if shares == 0 || shares > MAX_SHARES {
        return Err(ApiError::invalid(
            "shares",
            format!("must be 1..={MAX_SHARES}, got {shares}"),
        ));
    }
    if threshold == 0 || threshold > shares {
        return Err(ApiError::invalid(
            "threshold",
            format!("must be 1..={shares} (the number of shares), got {threshold}"),
        ));
    }
    if threshold == 1 && shares > 1 {
        return Err(ApiError::invalid(
            "threshold",
            "a threshold of 1 with several shares would make every share the whole unseal key; use at least 2",
        ));
    }
    // Both are at most MAX_SHARES (255).
    let shares = u8::try_from(shares).map_err(|_| ApiError::Internal("share count"))?;
    let threshold = u8::try_from(threshold).map_err(|_| ApiError::Internal("threshold"))?;
    Ok((shares, threshold))
}

/// The API form of the leader's member list.
fn members_response(list: MemberList) -> pb::MembersResponse {
    pb::MembersResponse {
        leader_id: list.leader_id.get(),
        members: list
            .members
            .into_iter()
            .map(|m| pb::MemberStatus {
                node_id: m.id.get(),
                api_addr: m.info.api_addr,
                cluster_addr: m.info.cluster_addr,
                region: m.info.region,
                zone: m.info.zone,
                role: if m.voter { "voter" } else { "learner" }.into(),
                match_index: m.match_index,
                lag: m.lag,
                last_contact_ms: m.last_contact_ms,
                lease: m
                    .probe
                    .as_ref()
                    .map_or("unknown", |p| p.lease.name())
                    .into(),
                sealed: m.probe.map(|p| p.sealed),
            })
            .collect(),
    }
}

/// A `host:port` address field of a membership call.
fn address(field: &'static str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(value.to_owned())
        }
        _ => Err(ApiError::invalid(
            field,
            format!(
                "{:?} is not host:port",
                tessera_crypto::truncate_for_message(value)
            ),
        )),
    }
}

/// The chunks of a saved backup, as the response stream.
pub type SnapshotStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

rpcs! {
    impl System for SystemService, first [];
    promote(MemberChangeRequest) -> MembersResponse = change(|id| Change::Promote { id });
    demote(MemberChangeRequest) -> MembersResponse = change(|id| Change::Demote { id });
    remove_member(MemberChangeRequest) -> MembersResponse = change(|id| Change::Remove { id });
    init(InitRequest) -> InitResponse = initialize;
    {
        type SnapshotSaveStream = SnapshotStream;

        async fn snapshot_save(
            &self,
            request: GrpcRequest<pb::SnapshotSaveRequest>,
        ) -> Result<GrpcResponse<Self::SnapshotSaveStream>, Status> {
            let (caller, _) = split(request)?;
            let chunks = snapshot::save(&self.node, &caller).await?;
            Ok(GrpcResponse::new(Box::pin(futures::stream::iter(
                chunks.into_iter().map(Ok),
            ))))
        }

        async fn snapshot_restore(
            &self,
            request: GrpcRequest<tonic::Streaming<pb::SnapshotRestoreRequest>>,
        ) -> Result<GrpcResponse<pb::SnapshotRestoreResponse>, Status> {
            let (caller, mut stream) = split(request)?;
            snapshot::authorize_restore(&self.node, &caller)?;
            let mut upload = snapshot::RestoreUpload {
                file: Vec::new(),
                force: false,
                request_id: String::new(),
            };
            let mut first = true;
            while let Some(message) = stream.message().await? {
                snapshot::receive(&mut upload, first, message)?;
                first = false;
            }
            let response = snapshot::restore(&self.node, &caller, upload).await?;
            tracing::warn!(
                cluster_id = %response.cluster_id,
                keys = response.keys,
                "state restored from a backup"
            );
            Ok(GrpcResponse::new(response))
        }

        async fn unseal(
            &self,
            request: GrpcRequest<pb::UnsealRequest>,
        ) -> Result<GrpcResponse<pb::UnsealResponse>, Status> {
            let caller = Caller::of(&request)?;
            let result = self.take_share(request.get_ref(), &caller);
            match &result {
                Ok(r) if !r.sealed => tracing::info!("node unsealed"),
                Ok(r) => tracing::info!(
                    progress = r.progress,
                    threshold = r.threshold,
                    "unseal progress"
                ),
                Err(e) => tracing::warn!(error = %e, "unseal attempt failed"),
            }
            Ok(GrpcResponse::new(result?))
        }

        async fn seal(
            &self,
            request: GrpcRequest<pb::SealRequest>,
        ) -> Result<GrpcResponse<pb::SealResponse>, Status> {
            let caller = Caller::of(&request)?;
            self.node
                .authorize(&caller, Action::Seal, None, &BTreeMap::new())?;
            self.node.seal_now();
            tracing::info!("node sealed by request");
            Ok(GrpcResponse::new(pb::SealResponse { sealed: true }))
        }

        async fn status(
            &self,
            request: GrpcRequest<pb::StatusRequest>,
        ) -> Result<GrpcResponse<pb::StatusResponse>, Status> {
            let caller = Caller::of(&request)?;
            self.node.require_not_revoked(&caller)?;
            self.node.require_member()?;
            // Before `Init` there is no access model yet: whoever may join the cluster's formation
            // sees it; afterwards the details need `operator:Status`.
            let initialized = self.node.raft().shared().read().state.is_initialized();
            let detailed = !initialized
                || self
                    .node
                    .authorize(&caller, Action::Status, None, &BTreeMap::new())
                    .is_ok();
            Ok(GrpcResponse::new(
                self.status_report(request.get_ref().with_state_digest, detailed),
            ))
        }

        async fn audit_hash(
            &self,
            request: GrpcRequest<pb::AuditHashRequest>,
        ) -> Result<GrpcResponse<pb::AuditHashResponse>, Status> {
            let (caller, req) = split(request)?;
            crate::audit::notes::value("audit_value", &req.value);
            self.node
                .authorize(&caller, Action::AuditHash, None, &BTreeMap::new())?;
            let key = self.node.audit_key().ok_or(ApiError::Sealed)?;
            Ok(GrpcResponse::new(pb::AuditHashResponse {
                hmac: hex::encode(key.hmac(req.value.as_bytes())),
            }))
        }

        async fn members(
            &self,
            request: GrpcRequest<pb::MembersRequest>,
        ) -> Result<GrpcResponse<pb::MembersResponse>, Status> {
            let (caller, _) = split(request)?;
            Ok(GrpcResponse::new(
                self.membership(&caller, Action::ListMembers, MembershipCall::List)
                    .await?,
            ))
        }

        async fn add_learner(
            &self,
            request: GrpcRequest<pb::AddLearnerRequest>,
        ) -> Result<GrpcResponse<pb::MembersResponse>, Status> {
            let (caller, req) = split(request)?;
            let info = NodeInfo {
                api_addr: address("api_addr", &req.api_addr)?,
                cluster_addr: address("cluster_addr", &req.cluster_addr)?,
                region: req.region,
                zone: req.zone,
            };
            let call = MembershipCall::Change(ChangeRequest {
                change: Change::AddLearner {
                    id: NodeId::new(req.node_id),
                    info,
                },
                force: false,
            });
            Ok(GrpcResponse::new(
                self.membership(&caller, Action::ChangeMembership, call)
                    .await?,
            ))
        }

        async fn rotate_barrier(
            &self,
            request: GrpcRequest<pb::RotateBarrierRequest>,
        ) -> Result<GrpcResponse<pb::RotateBarrierResponse>, Status> {
            let (caller, req) = split(request)?;
            Ok(GrpcResponse::new(self.change_barrier(&caller, &req).await?))
        }

        async fn rekey(
            &self,
            request: GrpcRequest<pb::RekeyRequest>,
        ) -> Result<GrpcResponse<pb::RekeyResponse>, Status> {
            let (caller, req) = split(request)?;
            Ok(GrpcResponse::new(self.rekey_step(&caller, req).await?))
        }
    }
}
