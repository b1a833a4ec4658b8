//! Row-level persistence of [`State`]: which rows a command changed, and how rows are encoded.
//!
//! The Raft state-machine store keeps one row per seal config, key and remembered request, so
//! applying a command writes only what changed. Keys of rows are ASCII paths (`seal`,
//! `clock`, `key/<key id>`, `alias/<alias>`, `dedup/<caller hex>/<request id>`, `admins`,
//! `policy/<name>`, `grant/<grant id>`, `revoked/serial/<hex>`, `revoked/sha256/<hex>`,
//! `ratelimit/<identity pattern>`, `barrier`); values are
//! `[ROW_FORMAT_V2] ++ postcard(value)`. Derived indexes (names, dedup order) are rebuilt on
//! load and are never stored. Format 1 (before cluster time and caller-scoped request ids)
//! is refused as unsupported.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::barrier::BarrierTerms;
use crate::clock::ClusterClock;
use crate::dedup::DedupEntry;
use crate::error::Error;
use crate::ids::{AliasName, CallerId, KeyId, RequestId};
use crate::key::KeyRecord;
use crate::machine::State;
use crate::policy::{
    AccessControl, Glob, Grant, GrantId, Identity, PolicyName, RateLimitRule, Revocation,
    RevokedCertificate, StoredPolicy,
};
use crate::seal_config::SealConfig;

/// Version tag of a row value.
pub const ROW_FORMAT_V2: u8 = 2;

const SEAL_ROW: &[u8] = b"seal";
const CLOCK_ROW: &[u8] = b"clock";
const KEY_PREFIX: &[u8] = b"key/";
const DEDUP_PREFIX: &[u8] = b"dedup/";
const ALIAS_PREFIX: &[u8] = b"alias/";
const ADMINS_ROW: &[u8] = b"admins";
const POLICY_PREFIX: &[u8] = b"policy/";
const GRANT_PREFIX: &[u8] = b"grant/";
const REVOKED_PREFIX: &[u8] = b"revoked/";
const RATE_LIMIT_PREFIX: &[u8] = b"ratelimit/";
const BARRIER_ROW: &[u8] = b"barrier";

/// The identity of a persisted row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowKey {
    /// The seal configuration.
    Seal,
    /// A key record.
    Key(KeyId),
    /// A de-duplication entry.
    Dedup(CallerId, RequestId),
    /// The cluster clock.
    Clock,
    /// An alias and its target.
    Alias(AliasName),
    /// The identities bound to the built-in `admin` policy.
    Admins,
    /// A stored policy.
    Policy(PolicyName),
    /// A grant.
    Grant(GrantId),
    /// A deny-list entry.
    Revoked(RevokedCertificate),
    /// A rate-limit rule, by its identity pattern.
    RateLimit(Glob),
    /// The barrier's active and oldest keyring terms (absent until the first rotation: a
    /// missing row means term 1 only).
    Barrier,
}

impl RowKey {
    /// The row's storage key.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Seal => SEAL_ROW.to_vec(),
            Self::Key(id) => [KEY_PREFIX, id.as_str().as_bytes()].concat(),
            Self::Dedup(caller, id) => [
                DEDUP_PREFIX,
                hex::encode(caller.as_bytes()).as_bytes(),
                b"/",
                id.as_str().as_bytes(),
            ]
            .concat(),
            Self::Clock => CLOCK_ROW.to_vec(),
            Self::Alias(alias) => [ALIAS_PREFIX, alias.as_str().as_bytes()].concat(),
            Self::Admins => ADMINS_ROW.to_vec(),
            Self::Policy(name) => [POLICY_PREFIX, name.as_str().as_bytes()].concat(),
            Self::Grant(id) => [GRANT_PREFIX, id.as_str().as_bytes()].concat(),
            Self::Revoked(cert) => [REVOKED_PREFIX, cert.row_name().as_bytes()].concat(),
            Self::RateLimit(identity) => [RATE_LIMIT_PREFIX, identity.as_str().as_bytes()].concat(),
            Self::Barrier => BARRIER_ROW.to_vec(),
        }
    }
}

/// A stored row: its key and encoded value.
pub type Row = (Vec<u8>, Vec<u8>);

/// A row to write (`Some`) or delete (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowChange {
    /// Storage key.
    pub key: Vec<u8>,
    /// New value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

pub(crate) fn encode_value<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, Error> {
    let out = vec![ROW_FORMAT_V2];
    postcard::to_extend(value, out).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// The value of a row that exists only while `value` is present: absent is no row.
fn encode_row<T: Serialize>(
    what: &'static str,
    value: Option<T>,
) -> Result<Option<Vec<u8>>, Error> {
    value.map(|value| encode_value(what, &value)).transpose()
}

fn decode_value<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, Error> {
    match bytes.split_first() {
        Some((&ROW_FORMAT_V2, body)) => postcard::from_bytes(body).map_err(|e| Error::Corrupt {
            what,
            detail: e.to_string(),
        }),
        Some((&version, _)) => Err(Error::UnsupportedFormat { what, version }),
        None => Err(Error::Corrupt {
            what,
            detail: "empty row".into(),
        }),
    }
}

impl State {
    /// The rows changed since the previous call, ready to be written in one atomic batch.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a value cannot be encoded (a bug, never input-dependent).
    pub fn take_changes(&mut self) -> Result<Vec<RowChange>, Error> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|row| {
                let value = self.row_value(&row)?;
                Ok(RowChange {
                    key: row.to_bytes(),
                    value,
                })
            })
            .collect()
    }

    /// Every row of the state, for a full rewrite (after installing a snapshot).
    ///
    /// # Errors
    /// As [`State::take_changes`].
    pub fn all_rows(&self) -> Result<Vec<Row>, Error> {
        let mut rows =
            Vec::with_capacity(2 + self.keys.len() + self.aliases.len() + self.dedup.len());
        for row in self.row_keys() {
            if let Some(value) = self.row_value(&row)? {
                rows.push((row.to_bytes(), value));
            }
        }
        Ok(rows)
    }

    /// The key of every row the state may have (the admins row even when it is empty).
    pub(crate) fn row_keys(&self) -> impl Iterator<Item = RowKey> + '_ {
        let access = &self.access;
        [RowKey::Seal, RowKey::Clock, RowKey::Admins, RowKey::Barrier]
            .into_iter()
            .chain(self.keys.keys().cloned().map(RowKey::Key))
            .chain(self.aliases.keys().cloned().map(RowKey::Alias))
            .chain(
                self.dedup
                    .entries()
                    .map(|e| RowKey::Dedup(*e.caller(), e.request_id().clone())),
            )
            .chain(access.policies().map(|p| RowKey::Policy(p.name.clone())))
            .chain(access.grants().map(|g| RowKey::Grant(g.grant_id.clone())))
            .chain(
                access
                    .revocations()
                    .map(|r| RowKey::Revoked(r.certificate.clone())),
            )
            .chain(
                access
                    .rate_limits()
                    .map(|r| RowKey::RateLimit(r.identity.clone())),
            )
    }

    fn row_value(&self, row: &RowKey) -> Result<Option<Vec<u8>>, Error> {
        match row {
            RowKey::Seal => encode_row("seal row", self.seal.as_ref()),
            RowKey::Key(id) => encode_row("key row", self.keys.get(id)),
            RowKey::Dedup(caller, id) => encode_row("dedup row", self.dedup.get(caller, id)),
            RowKey::Clock => encode_value("clock row", &self.clock).map(Some),
            RowKey::Alias(alias) => encode_row(
                "alias row",
                self.aliases.get(alias).map(|target| (alias, target)),
            ),
            RowKey::Admins => {
                let admins: Vec<&Identity> = self.access.admins().collect();
                encode_row("admins row", Some(admins).filter(|a| !a.is_empty()))
            }
            RowKey::Policy(name) => encode_row("policy row", self.access.policy(name)),
            RowKey::Grant(id) => encode_row("grant row", self.access.grant(id)),
            RowKey::Revoked(cert) => encode_row(
                "revoked row",
                self.access.revocations().find(|r| &r.certificate == cert),
            ),
            RowKey::RateLimit(identity) => {
                encode_row("rate limit row", self.access.rate_limit(identity))
            }
            RowKey::Barrier => encode_row(
                "barrier row",
                (self.barrier != BarrierTerms::default()).then_some(&self.barrier),
            ),
        }
    }

    /// Rebuilds a state from its persisted rows.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or [`Error::UnsupportedFormat`] for a row that does not decode, an
    /// unknown row key, or rows that contradict each other (two keys with one name).
    pub fn from_rows<I>(rows: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = Row>,
    {
        let mut seal = None;
        let mut keys = Vec::new();
        let mut aliases = Vec::new();
        let mut dedup = Vec::new();
        let mut clock = ClusterClock::default();
        let mut barrier = BarrierTerms::default();
        let (mut admins, mut policies, mut grants, mut revoked, mut rate_limits) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (key, value) in rows {
            if key == SEAL_ROW {
                seal = Some(decode_value::<SealConfig>("seal row", &value)?);
            } else if key == BARRIER_ROW {
                barrier = decode_value::<BarrierTerms>("barrier row", &value)?;
            } else if key == CLOCK_ROW {
                clock = decode_value::<ClusterClock>("clock row", &value)?;
            } else if key.starts_with(KEY_PREFIX) {
                keys.push(decode_value::<KeyRecord>("key row", &value)?);
            } else if key.starts_with(DEDUP_PREFIX) {
                dedup.push(decode_value::<DedupEntry>("dedup row", &value)?);
            } else if key.starts_with(ALIAS_PREFIX) {
                aliases.push(decode_value::<(AliasName, KeyId)>("alias row", &value)?);
            } else if key == ADMINS_ROW {
                admins = decode_value::<Vec<Identity>>("admins row", &value)?;
            } else if key.starts_with(POLICY_PREFIX) {
                policies.push(decode_value::<StoredPolicy>("policy row", &value)?);
            } else if key.starts_with(GRANT_PREFIX) {
                grants.push(decode_value::<Grant>("grant row", &value)?);
            } else if key.starts_with(REVOKED_PREFIX) {
                revoked.push(decode_value::<Revocation>("revoked row", &value)?);
            } else if key.starts_with(RATE_LIMIT_PREFIX) {
                rate_limits.push(decode_value::<RateLimitRule>("rate limit row", &value)?);
            } else {
                return Err(Error::Corrupt {
                    what: "state row",
                    detail: format!("unknown row key {:?}", String::from_utf8_lossy(&key)),
                });
            }
        }
        let access = AccessControl::from_parts(policies, admins, grants, revoked, rate_limits);
        let mut state = Self::from_parts(seal, clock, keys, aliases, dedup, access)?;
        state.barrier = barrier;
        Ok(state)
    }

    /// Assembles a state and rebuilds its indexes.
    pub(crate) fn from_parts(
        seal: Option<SealConfig>,
        clock: ClusterClock,
        keys: Vec<KeyRecord>,
        aliases: Vec<(AliasName, KeyId)>,
        dedup: Vec<DedupEntry>,
        access: AccessControl,
    ) -> Result<Self, Error> {
        let mut state = State {
            seal,
            clock,
            access,
            ..State::default()
        };
        for key in keys {
            if let Some(other) = state.names.insert(key.name.clone(), key.key_id.clone()) {
                return Err(Error::Corrupt {
                    what: "state",
                    detail: format!("keys {other} and {} share a name", key.key_id),
                });
            }
            state.keys.insert(key.key_id.clone(), Box::new(key));
        }
        for (alias, key_id) in aliases {
            if !state.keys.contains_key(&key_id) {
                return Err(Error::Corrupt {
                    what: "state",
                    detail: format!("{alias} points at missing key {key_id}"),
                });
            }
            state
                .aliases_by_key
                .entry(key_id.clone())
                .or_default()
                .insert(alias.clone());
            state.aliases.insert(alias, key_id);
        }
        for entry in dedup {
            state.dedup.restore(entry);
        }
        if let Some(grant) = state
            .access
            .grants()
            .find(|g| !state.keys.contains_key(&g.key_id))
        {
            return Err(Error::Corrupt {
                what: "state",
                detail: format!(
                    "grant {} is on missing key {}",
                    grant.grant_id, grant.key_id
                ),
            });
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use tessera_crypto::spec::KeySpec;

    use super::*;
    use crate::command::{Command, NewKey, Request};
    use crate::ids::KeyName;
    use crate::key::KeyOrigin;

    fn request(id: &str, caller: &str, fingerprint: u8, command: Command) -> Request {
        Request {
            request_id: RequestId::parse(id).unwrap(),
            caller: CallerId::of(caller),
            fingerprint: [fingerprint; 32],
            bindings: Vec::new(),
            command,
        }
    }

    fn populated() -> State {
        let mut s = State::new();
        let init = Command::InitSeal(SealConfig {
            shares: 1,
            threshold: 1,
            sealed_root_key: vec![3; 10],
            sealed_keyring: vec![4; 10],
            initialized_at_ms: 5,
        });
        s.apply(1, &request("i", "admin", 0, init));
        let create_key = Command::CreateKey(NewKey {
            key_id: KeyId::from_random_bytes([7; 16]),
            name: KeyName::parse("app").unwrap(),
            spec: KeySpec::Aes256Gcm,
            origin: KeyOrigin::Tessera,
            description: "d".into(),
            sealed_material: Some(vec![5; 20]),
            rotation_period_ms: None,
            exportable: false,
            tags: Default::default(),
            at_ms: 6,
            created_by: "me".into(),
        });
        s.apply(2, &request("c", "admin", 1, create_key));
        let create_alias = Command::CreateAlias {
            alias: AliasName::parse("front").unwrap(),
            key_id: KeyId::from_random_bytes([7; 16]),
        };
        s.apply(3, &request("a", "admin", 2, create_alias));
        s
    }

    #[test]
    fn changes_rebuild_the_same_state() {
        let mut s = populated();
        let changes = s.take_changes().unwrap();
        assert_eq!(changes.len(), 6, "seal, key, alias, three dedup rows");
        let report_clock = Command::ReportClock {
            node_id: crate::NodeId::new(1),
            at_ms: 700,
            voters: 1,
        };
        s.apply(4, &request("t", "node", 3, report_clock));
        let mut changes = changes;
        changes.extend(s.take_changes().unwrap());
        assert_eq!(
            changes.len(),
            10,
            "and the clock row, stamping three dedup rows"
        );
        assert!(s.take_changes().unwrap().is_empty());
        let rows = changes
            .into_iter()
            .map(|c| (c.key, c.value.unwrap()))
            .collect::<Vec<_>>();
        let rebuilt = State::from_rows(rows).unwrap();
        assert_eq!(
            rebuilt.encode_snapshot().unwrap(),
            s.encode_snapshot().unwrap()
        );
        assert!(rebuilt
            .resolve(&crate::KeyRef::parse("app").unwrap())
            .is_some());
    }

    #[test]
    fn all_rows_round_trip() {
        let s = populated();
        let rebuilt = State::from_rows(s.all_rows().unwrap()).unwrap();
        assert_eq!(rebuilt.digest().unwrap(), s.digest().unwrap());
    }

    #[test]
    fn bad_rows_are_errors_not_panics() {
        assert!(matches!(
            State::from_rows([(b"seal".to_vec(), vec![])]),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            State::from_rows([(b"seal".to_vec(), vec![9, 1, 2])]),
            Err(Error::UnsupportedFormat { version: 9, .. })
        ));
        assert!(matches!(
            State::from_rows([(b"seal".to_vec(), vec![ROW_FORMAT_V2, 0xff])]),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            State::from_rows([(b"other".to_vec(), vec![ROW_FORMAT_V2])]),
            Err(Error::Corrupt { .. })
        ));
    }
}
