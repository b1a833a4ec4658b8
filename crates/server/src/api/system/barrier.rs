//! `System/RotateBarrier` and `System/Rekey`.

use sha2::{Digest, Sha256};
use tessera_crypto::UnsealShare;
use tessera_proto::v1 as pb;
use tessera_raft::ProposeError;
use tessera_state::policy::Action;
use tessera_state::{CallerId, Command, Request, Response};

use super::{shamir_parameters, SystemService};
use crate::authz::Caller;
use crate::barrier::change_keyring;
use crate::error::ApiError;
use crate::node::{rand_fill, request_id};
use crate::seal::rekey::RekeyStep;
use crate::seal::{KeyringChange, RekeyProgress, SealError};

/// How often a completed rekey is proposed again (same request id, so it applies once) when
/// the outcome of the write is unknown: the new shares exist only in this call, so it does
/// not give up on an outcome it could still learn.
const REKEY_PROPOSE_ATTEMPTS: usize = 5;

fn progress_response(progress: Option<RekeyProgress>) -> pb::RekeyResponse {
    progress.map_or_else(pb::RekeyResponse::default, |p| pb::RekeyResponse {
        in_progress: true,
        nonce: p.nonce,
        progress: p.progress,
        required: p.required,
        new_shares: u32::from(p.shares),
        new_threshold: u32::from(p.threshold),
        complete: false,
        shares: Vec::new(),
    })
}

impl SystemService {
    pub(super) async fn change_barrier(
        &self,
        caller: &Caller,
        req: &pb::RotateBarrierRequest,
    ) -> Result<pb::RotateBarrierResponse, ApiError> {
        self.allow_operator(caller, Action::RotateBarrier)?;
        let change = if req.retire_old {
            KeyringChange::RetireOld
        } else {
            KeyringChange::Rotate
        };
        let changed = change_keyring(&self.node, CallerId::of(caller.name()), change).await?;
        tracing::info!(
            active_term = changed.terms.active,
            oldest_term = changed.terms.oldest,
            retired = ?changed.retired,
            "barrier keyring changed"
        );
        Ok(pb::RotateBarrierResponse {
            active_term: changed.terms.active,
            oldest_term: changed.terms.oldest,
            retired_terms: changed.retired,
        })
    }

    pub(super) async fn rekey_step(
        &self,
        caller: &Caller,
        req: pb::RekeyRequest,
    ) -> Result<pb::RekeyResponse, ApiError> {
        self.allow_operator(caller, Action::Rekey)?;
        let config = self.node.seal_config()?;
        let rekey = self.node.rekey();
        if req.cancel {
            let cancelled = rekey.cancel();
            tracing::info!(cancelled, "rekey cancelled");
            return Ok(progress_response(None));
        }
        if req.init {
            let (shares, threshold) = shamir_parameters(req.shares, req.threshold)?;
            let mut nonce = [0u8; 16];
            rand_fill(&mut nonce);
            let progress = rekey.start(shares, threshold, hex::encode(nonce), &config)?;
            tracing::info!(shares, threshold, "rekey started");
            return Ok(progress_response(Some(progress)));
        }
        if req.share.is_empty() {
            return Ok(progress_response(rekey.progress(&config)));
        }
        // Guessing shares is slowed down per identity, as for unseal.
        self.node.authorizer().check_unseal(caller.identity())?;
        let share =
            UnsealShare::decode(req.share.trim()).map_err(|e| ApiError::invalid("share", e))?;
        let step = rekey.submit(&req.nonce, share, &config).inspect_err(|e| {
            if matches!(e, SealError::WrongShares { .. }) {
                self.node
                    .authorizer()
                    .record_unseal_failure(caller.identity());
                tracing::warn!("rekey attempt failed: the shares are not this cluster's");
            }
        })?;
        let RekeyStep::Ready {
            rekeyed,
            previous_root_key_digest,
            shares,
            threshold,
        } = step
        else {
            let RekeyStep::Pending(progress) = step else {
                return Err(ApiError::Internal("rekey step"));
            };
            return Ok(progress_response(Some(progress)));
        };
        let ours: [u8; 32] = Sha256::digest(&rekeyed.sealed_root_key).into();
        let request = Request {
            request_id: request_id("")?,
            caller: CallerId::of(caller.name()),
            fingerprint: ours,
            bindings: Vec::new(),
            command: Command::Rekey {
                previous_root_key_digest,
                shares,
                threshold,
                sealed_root_key: rekeyed.sealed_root_key.clone(),
            },
        };
        let mut attempt = 1;
        let response = loop {
            match self.node.propose(request.clone()).await {
                Err(ApiError::Propose(ProposeError::Unknown | ProposeError::NoLeader { .. }))
                    if attempt < REKEY_PROPOSE_ATTEMPTS =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                other => break other?,
            }
        };
        match response {
            Response::Rekeyed {
                sealed_root_key_digest,
            } if sealed_root_key_digest == ours => {}
            _ => return Err(ApiError::Internal("rekey returned another result")),
        }
        tracing::info!(shares, threshold, "unseal key replaced (rekey complete)");
        Ok(pb::RekeyResponse {
            in_progress: false,
            nonce: String::new(),
            progress: 0,
            required: 0,
            new_shares: u32::from(shares),
            new_threshold: u32::from(threshold),
            complete: true,
            shares: rekeyed
                .shares
                .iter()
                .map(|s| s.encode().to_string())
                .collect(),
        })
    }
}
