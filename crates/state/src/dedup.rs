//! The request-id de-duplication table.
//!
//! A retried write (same caller, same request id, same fingerprint) gets the response of its
//! first application instead of being applied again. Request ids are namespaced by the
//! caller's identity ([`CallerId`]), so clients cannot collide with or evict each other's ids.
//!
//! The guarantee (documented in `docs/api.md`): an entry is kept for at least
//! [`DEDUP_MIN_RETENTION_MS`] of cluster time after its first application, unless its caller
//! made more than [`DEDUP_CAPACITY_PER_CALLER`] other successful writes in the meantime, or the
//! whole cluster more than [`DEDUP_CAPACITY`]. Only writes that changed the state are
//! remembered: a refused write changed nothing, so applying its retry cannot apply it twice,
//! and a flood of refused writes evicts nothing. Eviction depends only on the log and on
//! cluster time, so every node evicts the same entries.
//!
//! In memory a response is kept in its postcard encoding (one allocation of ~150 bytes for a
//! created key instead of the metadata's strings, vectors and maps) and decoded when a retry
//! asks for it. Rows and snapshots still carry [`DedupEntry`], byte for byte as before.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize, Serializer};

use crate::command::Response;
use crate::error::Error;
use crate::ids::{CallerId, RequestId};

/// How long an entry is kept at least, in milliseconds of cluster time (10 minutes).
pub const DEDUP_MIN_RETENTION_MS: u64 = 10 * 60 * 1000;
/// Most entries kept for one caller; beyond it the caller's own oldest entries go first.
pub const DEDUP_CAPACITY_PER_CALLER: usize = 50_000;
/// Most entries kept in all; beyond it the oldest entries go first, whoever made them.
pub const DEDUP_CAPACITY: usize = 200_000;

/// What identifies a remembered request: its caller and its request id.
pub type DedupKey = (CallerId, RequestId);

/// One remembered request, as rows and snapshots encode it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// Who sent it.
    pub caller: CallerId,
    /// The request id.
    pub request_id: RequestId,
    /// Log index at which the request was first applied.
    pub index: u64,
    /// Cluster time when it was applied (0 while no node had reported its clock yet; such
    /// entries are stamped when cluster time is first established).
    pub applied_at_ms: u64,
    /// Fingerprint of the first request.
    pub fingerprint: [u8; 32],
    /// Its response.
    pub response: Response,
}

impl DedupEntry {
    /// The table key of this entry.
    pub fn key(&self) -> DedupKey {
        (self.caller, self.request_id.clone())
    }
}

/// A remembered request as the table holds it: everything but the key, the response encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    index: u64,
    applied_at_ms: u64,
    fingerprint: [u8; 32],
    /// The response's postcard encoding. Encoding a [`Response`] into a growable buffer does
    /// not fail for these types; if it ever did, the bytes stay empty and then fail to decode,
    /// so a retry is refused (never applied twice) and the row write reports the error, as
    /// encoding the full entry would have.
    response: Box<[u8]>,
}

impl Stored {
    fn new(index: u64, applied_at_ms: u64, fingerprint: [u8; 32], response: &Response) -> Self {
        Self {
            index,
            applied_at_ms,
            fingerprint,
            response: postcard::to_allocvec(response)
                .unwrap_or_default()
                .into_boxed_slice(),
        }
    }

    fn response(&self) -> Result<Response, Error> {
        postcard::from_bytes(&self.response).map_err(|e| Error::Corrupt {
            what: "de-duplication response",
            detail: e.to_string(),
        })
    }
}

/// A view of one remembered request. It encodes (serde) exactly as the [`DedupEntry`] it
/// stands for.
#[derive(Clone, Copy, Debug)]
pub struct DedupRecord<'a> {
    caller: &'a CallerId,
    request_id: &'a RequestId,
    stored: &'a Stored,
}

impl DedupRecord<'_> {
    /// Who sent it.
    pub fn caller(&self) -> &CallerId {
        self.caller
    }

    /// The request id.
    pub fn request_id(&self) -> &RequestId {
        self.request_id
    }

    /// Log index at which the request was first applied.
    pub fn index(&self) -> u64 {
        self.stored.index
    }

    /// Cluster time when it was applied (0 before cluster time existed).
    pub fn applied_at_ms(&self) -> u64 {
        self.stored.applied_at_ms
    }

    /// Fingerprint of the first request.
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.stored.fingerprint
    }

    /// The response of the first application, decoded.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the kept encoding does not decode (a bug, never input-dependent).
    pub fn response(&self) -> Result<Response, Error> {
        self.stored.response()
    }

    /// The whole entry, response decoded.
    ///
    /// # Errors
    /// As [`DedupRecord::response`].
    pub fn to_entry(&self) -> Result<DedupEntry, Error> {
        Ok(DedupEntry {
            caller: *self.caller,
            request_id: self.request_id.clone(),
            index: self.stored.index,
            applied_at_ms: self.stored.applied_at_ms,
            fingerprint: self.stored.fingerprint,
            response: self.response()?,
        })
    }
}

/// [`DedupEntry`]'s fields by reference: the same name, fields and order, so the same bytes.
#[derive(Serialize)]
#[serde(rename = "DedupEntry")]
struct DedupEntryRef<'a> {
    caller: &'a CallerId,
    request_id: &'a RequestId,
    index: u64,
    applied_at_ms: u64,
    fingerprint: &'a [u8; 32],
    response: &'a Response,
}

impl Serialize for DedupRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let response = self.response().map_err(serde::ser::Error::custom)?;
        DedupEntryRef {
            caller: self.caller,
            request_id: self.request_id,
            index: self.stored.index,
            applied_at_ms: self.stored.applied_at_ms,
            fingerprint: &self.stored.fingerprint,
            response: &response,
        }
        .serialize(serializer)
    }
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum DedupHit {
    /// Never seen (or evicted): apply the request.
    New,
    /// A retry of the same request: return this response (boxed: it is decoded for the
    /// lookup, and the other outcomes carry nothing).
    Retry(Box<Response>),
    /// The id was used for a different request (or, never expected, the kept response does
    /// not decode: refused rather than applied twice).
    Reused,
}

/// (caller, request id) → first response, bounded in time and size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedupTable {
    entries: BTreeMap<DedupKey, Stored>,
    /// Log order, for expiry and the global bound. The requests of one batch share a log
    /// index, so the key breaks ties (the same order on every node, and after a restart).
    by_index: BTreeSet<(u64, DedupKey)>,
    /// Log order per caller, for the per-caller bound (ties broken by request id).
    by_caller: BTreeSet<(CallerId, u64, RequestId)>,
    /// Entries per caller.
    counts: BTreeMap<CallerId, usize>,
}

impl DedupTable {
    /// Looks up a request.
    pub fn check(
        &self,
        caller: &CallerId,
        request_id: &RequestId,
        fingerprint: &[u8; 32],
    ) -> DedupHit {
        match self.entries.get(&(*caller, request_id.clone())) {
            None => DedupHit::New,
            Some(stored) if &stored.fingerprint == fingerprint => match stored.response() {
                Ok(response) => DedupHit::Retry(Box::new(response)),
                Err(_) => DedupHit::Reused,
            },
            Some(_) => DedupHit::Reused,
        }
    }

    /// Remembers a request applied at cluster time `now_ms`; returns the keys evicted to stay
    /// within the bounds (expired entries first, then the caller's oldest, then the oldest).
    pub fn insert(&mut self, entry: DedupEntry, now_ms: u64) -> Vec<DedupKey> {
        let caller = entry.caller;
        self.restore(entry);
        let mut evicted = Vec::new();
        while let Some((_, key)) = self.by_index.first() {
            let expired = self.entries.get(key).is_some_and(|oldest| {
                oldest.applied_at_ms > 0
                    && oldest.applied_at_ms.saturating_add(DEDUP_MIN_RETENTION_MS) <= now_ms
            });
            if !expired {
                break;
            }
            let key = key.clone();
            self.remove(&key);
            evicted.push(key);
        }
        while self.counts.get(&caller).copied().unwrap_or(0) > DEDUP_CAPACITY_PER_CALLER {
            let Some((_, _, request_id)) = self
                .by_caller
                .range((caller, 0, RequestId::lowest())..)
                .next()
                .filter(|(c, _, _)| *c == caller)
            else {
                break;
            };
            let key = (caller, request_id.clone());
            self.remove(&key);
            evicted.push(key);
        }
        while self.entries.len() > DEDUP_CAPACITY {
            let Some((_, key)) = self.by_index.first() else {
                break;
            };
            let key = key.clone();
            self.remove(&key);
            evicted.push(key);
        }
        evicted
    }

    /// Puts back a persisted entry without evicting anything (the table it came from was
    /// already within bounds).
    pub(crate) fn restore(&mut self, entry: DedupEntry) {
        let stored = Stored::new(
            entry.index,
            entry.applied_at_ms,
            entry.fingerprint,
            &entry.response,
        );
        let key = (entry.caller, entry.request_id);
        if let Some(previous) = self.entries.get(&key) {
            let index = previous.index;
            self.unindex(&key, index);
        }
        self.by_index.insert((stored.index, key.clone()));
        self.by_caller.insert((key.0, stored.index, key.1.clone()));
        *self.counts.entry(key.0).or_default() += 1;
        self.entries.insert(key, stored);
    }

    /// Stamps entries applied before cluster time existed with the first cluster time, so
    /// their retention starts then; returns their keys.
    pub(crate) fn stamp_unstamped(&mut self, now_ms: u64) -> Vec<DedupKey> {
        let mut stamped = Vec::new();
        for (key, stored) in &mut self.entries {
            if stored.applied_at_ms == 0 {
                stored.applied_at_ms = now_ms;
                stamped.push(key.clone());
            }
        }
        stamped
    }

    fn remove(&mut self, key: &DedupKey) {
        if let Some(stored) = self.entries.remove(key) {
            self.unindex(key, stored.index);
        }
    }

    fn unindex(&mut self, key: &DedupKey, index: u64) {
        let (caller, request_id) = key;
        self.by_index.remove(&(index, key.clone()));
        self.by_caller.remove(&(*caller, index, request_id.clone()));
        if let Some(count) = self.counts.get_mut(caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.counts.remove(caller);
            }
        }
    }

    /// The entry for a caller's request id.
    pub fn get(&self, caller: &CallerId, request_id: &RequestId) -> Option<DedupRecord<'_>> {
        self.entries
            .get_key_value(&(*caller, request_id.clone()))
            .map(record)
    }

    /// All entries in (caller, request id) order.
    pub fn entries(&self) -> impl Iterator<Item = DedupRecord<'_>> {
        self.entries.iter().map(record)
    }

    /// Number of remembered requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no request is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn record<'a>(((caller, request_id), stored): (&'a DedupKey, &'a Stored)) -> DedupRecord<'a> {
    DedupRecord {
        caller,
        request_id,
        stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    fn caller(n: u8) -> CallerId {
        CallerId::of(&format!("client-{n}"))
    }

    fn entry(who: u8, n: u64, at_ms: u64) -> DedupEntry {
        DedupEntry {
            caller: caller(who),
            request_id: RequestId::parse(&format!("r{n}")).unwrap(),
            index: n,
            applied_at_ms: at_ms,
            fingerprint: [n as u8; 32],
            response: Response::Noop,
        }
    }

    fn id(n: u64) -> RequestId {
        RequestId::parse(&format!("r{n}")).unwrap()
    }

    #[test]
    fn retry_same_fingerprint_hits_and_other_fingerprint_is_reuse() {
        let mut t = DedupTable::default();
        t.insert(entry(1, 1, MINUTE), MINUTE);
        assert_eq!(
            t.check(&caller(1), &id(1), &[1; 32]),
            DedupHit::Retry(Box::new(Response::Noop))
        );
        assert_eq!(t.check(&caller(1), &id(1), &[2; 32]), DedupHit::Reused);
        assert_eq!(t.check(&caller(1), &id(2), &[1; 32]), DedupHit::New);
    }

    #[test]
    fn a_kept_entry_round_trips_and_encodes_as_the_full_entry() {
        let mut t = DedupTable::default();
        let full = DedupEntry {
            response: Response::ImportParameters {
                key_id: crate::ids::KeyId::from_random_bytes([7; 16]),
                token_id: "token-1".into(),
                public_key: vec![9; 32],
                expires_at_ms: 12_345,
            },
            ..entry(1, 1, MINUTE)
        };
        t.insert(full.clone(), MINUTE);
        let record = t.get(&caller(1), &id(1)).unwrap();
        assert_eq!(record.to_entry().unwrap(), full);
        assert_eq!(
            postcard::to_allocvec(&record).unwrap(),
            postcard::to_allocvec(&full).unwrap()
        );
        assert_eq!(
            t.check(&caller(1), &id(1), &[1; 32]),
            DedupHit::Retry(Box::new(full.response))
        );
    }

    #[test]
    fn an_undecodable_kept_response_refuses_the_retry() {
        let mut t = DedupTable::default();
        t.insert(entry(1, 1, MINUTE), MINUTE);
        for stored in t.entries.values_mut() {
            stored.response = Box::new([0xff]);
        }
        assert_eq!(t.check(&caller(1), &id(1), &[1; 32]), DedupHit::Reused);
        assert!(t.get(&caller(1), &id(1)).unwrap().to_entry().is_err());
    }

    #[test]
    fn request_ids_are_namespaced_by_caller() {
        let mut t = DedupTable::default();
        t.insert(entry(1, 1, MINUTE), MINUTE);
        assert_eq!(t.check(&caller(2), &id(1), &[1; 32]), DedupHit::New);
        assert_eq!(t.check(&caller(2), &id(1), &[9; 32]), DedupHit::New);
    }

    #[test]
    fn entries_live_at_least_the_minimum_retention_whatever_the_count() {
        let mut t = DedupTable::default();
        t.insert(entry(1, 1, MINUTE), MINUTE);
        // Many writes, all within the retention window.
        for n in 2..1_000 {
            t.insert(entry(1, n, MINUTE + n), MINUTE + n);
        }
        assert!(t.get(&caller(1), &id(1)).is_some());
        // Just before the window closes the entry is still there; after it, it is gone.
        t.insert(
            entry(1, 1_000, MINUTE + DEDUP_MIN_RETENTION_MS - 1),
            MINUTE + DEDUP_MIN_RETENTION_MS - 1,
        );
        assert!(t.get(&caller(1), &id(1)).is_some());
        let evicted = t.insert(
            entry(1, 1_001, MINUTE + DEDUP_MIN_RETENTION_MS),
            MINUTE + DEDUP_MIN_RETENTION_MS,
        );
        assert_eq!(evicted, vec![(caller(1), id(1))]);
        assert!(t.get(&caller(1), &id(2)).is_some());
    }

    #[test]
    fn a_flooding_caller_evicts_only_its_own_entries() {
        let mut t = DedupTable::default();
        t.insert(entry(1, 1, MINUTE), MINUTE);
        let flood = DEDUP_CAPACITY_PER_CALLER as u64 + 10;
        for n in 2..=flood {
            t.insert(entry(2, n, MINUTE), MINUTE);
        }
        assert!(
            t.get(&caller(1), &id(1)).is_some(),
            "another caller's flood"
        );
        assert!(
            t.get(&caller(2), &id(2)).is_none(),
            "the flooder's oldest went"
        );
        assert_eq!(t.len(), DEDUP_CAPACITY_PER_CALLER + 1);
    }

    #[test]
    fn the_table_is_bounded_overall() {
        let mut t = DedupTable::default();
        let per_caller = DEDUP_CAPACITY_PER_CALLER as u64;
        let mut n = 0;
        for who in 0..=(DEDUP_CAPACITY as u64 / per_caller) {
            for _ in 0..per_caller {
                n += 1;
                t.insert(entry(who as u8, n, MINUTE), MINUTE);
            }
        }
        assert_eq!(t.len(), DEDUP_CAPACITY);
        assert!(t.get(&caller(0), &id(1)).is_none(), "the oldest went first");
    }

    /// The requests of one batch are applied at the same log index: none may displace
    /// another in the table's order, and eviction still runs oldest first, ties by key.
    #[test]
    fn entries_sharing_a_log_index_are_all_kept_and_evicted_in_order() {
        let mut t = DedupTable::default();
        for n in 1..=3 {
            let mut e = entry(1, n, MINUTE);
            e.index = 7;
            t.insert(e, MINUTE);
        }
        let mut later = entry(2, 4, 2 * MINUTE);
        later.index = 8;
        t.insert(later, 2 * MINUTE);
        assert_eq!(t.len(), 4);
        assert_eq!(t.by_index.len(), 4);
        assert_eq!(t.by_caller.len(), 4);
        // A retry re-inserting one of them moves nothing else.
        let mut again = entry(1, 2, MINUTE);
        again.index = 7;
        t.insert(again, 2 * MINUTE);
        assert_eq!((t.len(), t.by_index.len(), t.by_caller.len()), (4, 4, 4));
        // Once they expire, all three entries of index 7 go, and only they.
        let evicted = t.insert(
            entry(3, 9, MINUTE + DEDUP_MIN_RETENTION_MS),
            MINUTE + DEDUP_MIN_RETENTION_MS,
        );
        assert_eq!(
            evicted,
            vec![(caller(1), id(1)), (caller(1), id(2)), (caller(1), id(3))]
        );
        assert_eq!((t.len(), t.by_index.len(), t.by_caller.len()), (2, 2, 2));
        assert!(t.get(&caller(2), &id(4)).is_some());
    }

    #[test]
    fn unstamped_entries_start_their_retention_when_cluster_time_begins() {
        let mut t = DedupTable::default();
        t.insert(entry(1, 1, 0), 0);
        assert_eq!(t.stamp_unstamped(5 * MINUTE), vec![(caller(1), id(1))]);
        t.insert(entry(1, 2, 6 * MINUTE), 6 * MINUTE);
        assert!(t.get(&caller(1), &id(1)).is_some());
        t.insert(
            entry(1, 3, 5 * MINUTE + DEDUP_MIN_RETENTION_MS),
            5 * MINUTE + DEDUP_MIN_RETENTION_MS,
        );
        assert!(t.get(&caller(1), &id(1)).is_none());
    }
}
