//! Barrier rotation and re-sealing, as the node that proposes them runs them.
//!
//! `apply` draws no randomness, so the proposer builds every new blob: the new keyring
//! (sealed under the root key this node holds since it was unsealed) for a rotation or
//! retirement, and each re-sealed blob for the re-seal job. Every command is compare-and-set
//! on the blob it replaces (see `tessera_state::machine::barrier`); a lost race is prepared
//! again from the applied state.

use sha2::{Digest, Sha256};
use tessera_state::{ApplyError, BarrierTerms, CallerId, Command, Request, ResealedBlob, Response};

use crate::error::ApiError;
use crate::node::{request_id, Node};
use crate::seal::KeyringChange;

/// Most blobs one `ResealBlobs` command carries: a bounded Raft entry, and a bounded pause
/// for the state machine.
pub const RESEAL_BATCH: usize = 64;

/// How often a keyring change that lost a race is prepared again.
const ATTEMPTS: usize = 8;

/// The outcome of a keyring change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringChanged {
    /// The terms after the change.
    pub terms: BarrierTerms,
    /// The terms dropped (retirement only).
    pub retired: Vec<u32>,
}

/// Rotates the barrier or retires its old terms for `caller`, from the applied state after a
/// read barrier (so the change extends the cluster's current keyring).
///
/// # Errors
/// [`ApiError::Sealed`], `BARRIER_TERMS_IN_USE` while blobs still use old terms (retirement),
/// the seal errors of [`crate::seal::SealManager::prepare_keyring_change`], and as
/// [`Node::propose`].
pub async fn change_keyring(
    node: &Node,
    caller: CallerId,
    change: KeyringChange,
) -> Result<KeyringChanged, ApiError> {
    node.require_unsealed()?;
    let mut attempt = 1;
    loop {
        node.raft().read_barrier().await?;
        let (current, terms, left) = {
            let applied = node.raft().shared().read();
            let config = applied
                .state
                .seal_config()
                .ok_or(ApiError::NotInitialized)?;
            (
                config.sealed_keyring.clone(),
                applied.state.barrier_terms(),
                applied.state.blobs_left_by_term(),
            )
        };
        if change == KeyringChange::RetireOld {
            if let Some((&oldest_in_use, _)) = left.first_key_value() {
                return Err(ApiError::Rejected(ApplyError::BarrierTermsInUse {
                    active: terms.active,
                    blobs: left.values().fold(0u64, |a, b| a.saturating_add(*b)),
                    oldest_in_use,
                }));
            }
        }
        let prepared = node.seal().prepare_keyring_change(&current, change)?;
        if change == KeyringChange::RetireOld && prepared.retired.is_empty() {
            return Ok(KeyringChanged {
                terms,
                retired: Vec::new(),
            });
        }
        let previous_keyring_digest = Sha256::digest(&current).into();
        let command = match change {
            KeyringChange::Rotate => Command::RotateBarrier {
                previous_keyring_digest,
                term: prepared.active,
                sealed_keyring: prepared.sealed_keyring,
            },
            KeyringChange::RetireOld => Command::RetireBarrierTerms {
                previous_keyring_digest,
                sealed_keyring: prepared.sealed_keyring,
            },
        };
        let request = Request {
            request_id: request_id("")?,
            caller,
            fingerprint: Sha256::digest(command.kind().as_bytes()).into(),
            bindings: Vec::new(),
            command,
        };
        match node.propose(request).await {
            Ok(Response::Barrier(terms)) => {
                return Ok(KeyringChanged {
                    terms,
                    retired: prepared.retired,
                })
            }
            Ok(_) => {
                return Err(ApiError::Internal(
                    "a keyring change returned another result",
                ))
            }
            Err(ApiError::Rejected(e)) if e.is_transient() && attempt < ATTEMPTS => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "preparing a keyring change again");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Re-seals up to [`RESEAL_BATCH`] blobs sealed under older terms under the active term, in
/// one command. Returns how many were re-sealed (0: nothing is left).
///
/// # Errors
/// [`ApiError::Sealed`], [`ApiError::Internal`] if a stored blob does not open, and as
/// [`Node::propose`] (a batch that lost a race with a destroy or a rotation is refused whole
/// and prepared again on the next call).
pub async fn reseal_batch(
    node: &Node,
    make_request: impl FnOnce(Command) -> Result<Request, ApiError>,
) -> Result<usize, ApiError> {
    let stale = node.raft().shared().read().state.stale_blobs(RESEAL_BATCH);
    if stale.is_empty() {
        return Ok(0);
    }
    let blobs = node
        .with_keyring(|keyring| {
            let mut rng = tessera_crypto::os_rng();
            stale
                .iter()
                .map(|blob| {
                    let secret = keyring.open(&blob.aad, &blob.sealed)?;
                    Ok(ResealedBlob {
                        target: blob.target.clone(),
                        previous_digest: Sha256::digest(&blob.sealed).into(),
                        sealed: keyring.seal(&blob.aad, secret.as_slice(), &mut rng)?,
                    })
                })
                .collect::<Result<Vec<_>, tessera_crypto::Error>>()
        })
        .ok_or(ApiError::Sealed)?
        .map_err(|_| ApiError::Internal("a stored blob does not open under the barrier"))?;
    let count = blobs.len();
    node.propose(make_request(Command::ResealBlobs { blobs })?)
        .await?;
    Ok(count)
}
