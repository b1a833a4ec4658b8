//! Snapshot encoding of [`State`] and the state digest.
//!
//! Layout: `b"TSNP"` magic, one format byte ([`SNAPSHOT_FORMAT_V4`]), then the postcard
//! encoding of the seal config, the cluster clock, the keys in id order, the aliases in alias
//! order, the de-duplication entries in (caller, request id) order, then the access model: the
//! admin identities, the policies by name, the grants by id, the certificate deny-list in
//! entry order and the rate-limit rules by identity pattern, and last the barrier terms
//! (active, oldest). Every collection is ordered, so equal states encode to equal bytes;
//! secrets inside are barrier-sealed. Format 3 is the same without the barrier terms and
//! still decodes (with term 1 only, as before barrier rotation existed); format 2 is format 3
//! without the rate-limit rules and still decodes (with none); format 1 (before cluster time
//! and caller-scoped request ids) is refused as unsupported.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::barrier::BarrierTerms;
use crate::clock::ClusterClock;
use crate::dedup::{DedupEntry, DedupRecord};
use crate::error::Error;
use crate::ids::{AliasName, KeyId};
use crate::key::KeyRecord;
use crate::machine::State;
use crate::policy::{AccessControl, Grant, Identity, RateLimitRule, Revocation, StoredPolicy};
use crate::seal_config::SealConfig;

/// Magic bytes that open a snapshot.
pub const SNAPSHOT_MAGIC: &[u8; 4] = b"TSNP";
/// Snapshot format version before rate-limit rules; still read.
pub const SNAPSHOT_FORMAT_V2: u8 = 2;
/// Snapshot format version before the barrier terms; still read.
pub const SNAPSHOT_FORMAT_V3: u8 = 3;
/// Current snapshot format version.
pub const SNAPSHOT_FORMAT_V4: u8 = 4;

#[derive(Serialize)]
struct SnapshotRef<'a> {
    seal: Option<&'a SealConfig>,
    clock: &'a ClusterClock,
    keys: Vec<&'a KeyRecord>,
    aliases: Vec<(&'a AliasName, &'a KeyId)>,
    dedup: Vec<DedupRecord<'a>>,
    admins: Vec<&'a Identity>,
    policies: Vec<&'a StoredPolicy>,
    grants: Vec<&'a Grant>,
    revoked: Vec<&'a Revocation>,
    rate_limits: Vec<&'a RateLimitRule>,
    barrier: &'a BarrierTerms,
}

/// Format 2's body, which format 3's begins with (postcard writes a nested struct's fields
/// in place, so the bytes are the same as one flat struct's).
#[derive(Deserialize)]
struct SnapshotOwnedV2 {
    seal: Option<SealConfig>,
    clock: ClusterClock,
    keys: Vec<KeyRecord>,
    aliases: Vec<(AliasName, KeyId)>,
    dedup: Vec<DedupEntry>,
    admins: Vec<Identity>,
    policies: Vec<StoredPolicy>,
    grants: Vec<Grant>,
    revoked: Vec<Revocation>,
}

/// Format 3's body: format 2's, then the rate-limit rules.
#[derive(Deserialize)]
struct SnapshotOwnedV3 {
    v2: SnapshotOwnedV2,
    rate_limits: Vec<RateLimitRule>,
}

/// Format 4's body: format 3's, then the barrier terms.
#[derive(Deserialize)]
struct SnapshotOwned {
    v3: SnapshotOwnedV3,
    barrier: BarrierTerms,
}

impl State {
    /// Encodes the whole state.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if encoding fails (a bug, never input-dependent).
    pub fn encode_snapshot(&self) -> Result<Vec<u8>, Error> {
        let body = SnapshotRef {
            seal: self.seal.as_ref(),
            clock: &self.clock,
            keys: self.keys.values().map(Box::as_ref).collect(),
            aliases: self.aliases.iter().collect(),
            dedup: self.dedup.entries().collect(),
            admins: self.access.admins().collect(),
            policies: self.access.policies().collect(),
            grants: self.access.grants().collect(),
            revoked: self.access.revocations().collect(),
            rate_limits: self.access.rate_limits().collect(),
            barrier: &self.barrier,
        };
        let mut out = SNAPSHOT_MAGIC.to_vec();
        out.push(SNAPSHOT_FORMAT_V4);
        postcard::to_extend(&body, out).map_err(|e| Error::Corrupt {
            what: "snapshot",
            detail: e.to_string(),
        })
    }

    /// Decodes a snapshot produced by [`State::encode_snapshot`].
    ///
    /// # Errors
    /// [`Error::Corrupt`] for bad magic, truncation or trailing bytes;
    /// [`Error::UnsupportedFormat`] for an unknown version.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<Self, Error> {
        let corrupt = |detail: String| Error::Corrupt {
            what: "snapshot",
            detail,
        };
        let rest = bytes
            .strip_prefix(SNAPSHOT_MAGIC.as_slice())
            .ok_or_else(|| corrupt("missing magic".into()))?;
        let (version, body) = rest
            .split_first()
            .ok_or_else(|| corrupt("missing format version".into()))?;
        let older = |v3| SnapshotOwned {
            v3,
            barrier: BarrierTerms::default(),
        };
        let (owned, trailing): (SnapshotOwned, &[u8]) = match *version {
            SNAPSHOT_FORMAT_V4 => postcard::take_from_bytes(body),
            SNAPSHOT_FORMAT_V3 => postcard::take_from_bytes::<SnapshotOwnedV3>(body)
                .map(|(v3, trailing)| (older(v3), trailing)),
            SNAPSHOT_FORMAT_V2 => {
                postcard::take_from_bytes::<SnapshotOwnedV2>(body).map(|(v2, trailing)| {
                    let v3 = SnapshotOwnedV3 {
                        v2,
                        rate_limits: Vec::new(),
                    };
                    (older(v3), trailing)
                })
            }
            version => {
                return Err(Error::UnsupportedFormat {
                    what: "snapshot",
                    version,
                })
            }
        }
        .map_err(|e| corrupt(e.to_string()))?;
        if !trailing.is_empty() {
            return Err(corrupt(format!("{} trailing bytes", trailing.len())));
        }
        let SnapshotOwned { v3, barrier } = owned;
        let SnapshotOwnedV3 { v2, rate_limits } = v3;
        let mut state = Self::from_parts(
            v2.seal,
            v2.clock,
            v2.keys,
            v2.aliases,
            v2.dedup,
            AccessControl::from_parts(v2.policies, v2.admins, v2.grants, v2.revoked, rate_limits),
        )?;
        state.barrier = barrier;
        Ok(state)
    }

    /// SHA-256 of the snapshot encoding: equal on two nodes exactly when their states are.
    ///
    /// # Errors
    /// As [`State::encode_snapshot`].
    pub fn digest(&self) -> Result<[u8; 32], Error> {
        Ok(Sha256::digest(self.encode_snapshot()?).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_round_trips() {
        let s = State::new();
        let bytes = s.encode_snapshot().unwrap();
        assert_eq!(bytes.get(..5).unwrap(), b"TSNP\x04");
        let back = State::decode_snapshot(&bytes).unwrap();
        assert_eq!(back.encode_snapshot().unwrap(), bytes);
    }

    #[test]
    fn malformed_snapshots_are_errors() {
        assert!(matches!(
            State::decode_snapshot(b""),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            State::decode_snapshot(b"TSNP"),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            State::decode_snapshot(b"TSNP\x01"),
            Err(Error::UnsupportedFormat { version: 1, .. })
        ));
        let mut bytes = State::new().encode_snapshot().unwrap();
        bytes.push(0);
        assert!(matches!(
            State::decode_snapshot(&bytes),
            Err(Error::Corrupt { .. })
        ));
        for len in 0..bytes.len() - 1 {
            assert!(State::decode_snapshot(bytes.get(..len).unwrap()).is_err());
        }
    }
}
