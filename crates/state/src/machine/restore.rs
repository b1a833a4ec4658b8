//! `RestoreSnapshot`: the whole state replaced by a backup's in one entry.

use sha2::{Digest, Sha256};

use crate::command::{ApplyError, Response};
use crate::machine::State;

/// SHA-256 of the sealed root key: what a restore proposer saw of the target.
pub fn seal_digest(state: &State) -> Option<[u8; 32]> {
    state
        .seal
        .as_ref()
        .map(|seal| Sha256::digest(&seal.sealed_root_key).into())
}

impl State {
    /// Replaces everything but the cluster clock with the state `body` encodes, if the
    /// target is still what the proposer saw (`replaces`, see [`seal_digest`]). Every row of
    /// the old and of the new state is marked changed, so rows the backup lacks are deleted.
    pub(crate) fn restore(
        &mut self,
        body: &[u8],
        replaces: Option<&[u8; 32]>,
    ) -> Result<Response, ApplyError> {
        if seal_digest(self).as_ref() != replaces {
            return Err(ApplyError::RestoreTargetChanged);
        }
        let mut restored =
            State::decode_snapshot(body).map_err(|_| ApplyError::RestoreBodyInvalid)?;
        let sealed_root_key_digest =
            seal_digest(&restored).ok_or(ApplyError::RestoreBodyInvalid)?;
        std::mem::swap(&mut restored.clock, &mut self.clock);
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.extend(self.row_keys());
        *self = restored;
        dirty.extend(self.row_keys());
        self.dirty = dirty;
        Ok(Response::Restored {
            keys: self.keys.len() as u64,
            sealed_root_key_digest,
        })
    }
}
