//! The bounded request-id de-duplication table.
//!
//! A retried write (same request id, same fingerprint) gets the response of its first
//! application instead of being applied again. The table keeps the most recent
//! [`DEDUP_CAPACITY`] requests by log index; eviction order depends only on the log, so every
//! node evicts the same entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::Response;
use crate::ids::RequestId;

/// How many request ids are remembered. Part of the replicated model: changing it changes
/// which retries are recognised, so it changes only with a new state format.
pub const DEDUP_CAPACITY: usize = 10_000;

/// One remembered request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// The request id.
    pub request_id: RequestId,
    /// Log index at which the request was first applied.
    pub index: u64,
    /// Fingerprint of the first request.
    pub fingerprint: [u8; 32],
    /// Its response.
    pub response: Response,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum DedupHit<'a> {
    /// Never seen (or evicted): apply the request.
    New,
    /// A retry of the same request: return this response.
    Retry(&'a Response),
    /// The id was used for a different request.
    Reused,
}

/// Request id → first response, bounded by [`DEDUP_CAPACITY`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedupTable {
    entries: BTreeMap<RequestId, DedupEntry>,
    by_index: BTreeMap<u64, RequestId>,
}

impl DedupTable {
    /// Looks up a request.
    pub fn check(&self, request_id: &RequestId, fingerprint: &[u8; 32]) -> DedupHit<'_> {
        match self.entries.get(request_id) {
            None => DedupHit::New,
            Some(entry) if &entry.fingerprint == fingerprint => DedupHit::Retry(&entry.response),
            Some(_) => DedupHit::Reused,
        }
    }

    /// Remembers a request; returns the ids evicted to stay within capacity.
    pub fn insert(&mut self, entry: DedupEntry) -> Vec<RequestId> {
        self.by_index.insert(entry.index, entry.request_id.clone());
        self.entries.insert(entry.request_id.clone(), entry);
        let mut evicted = Vec::new();
        while self.entries.len() > DEDUP_CAPACITY {
            let Some((_, oldest)) = self.by_index.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
            evicted.push(oldest);
        }
        evicted
    }

    /// The entry for a request id.
    pub fn get(&self, request_id: &RequestId) -> Option<&DedupEntry> {
        self.entries.get(request_id)
    }

    /// All entries in request-id order.
    pub fn entries(&self) -> impl Iterator<Item = &DedupEntry> {
        self.entries.values()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> DedupEntry {
        DedupEntry {
            request_id: RequestId::parse(&format!("r{n}")).unwrap(),
            index: n,
            fingerprint: [n as u8; 32],
            response: Response::Noop,
        }
    }

    #[test]
    fn retry_same_fingerprint_hits_and_other_fingerprint_is_reuse() {
        let mut t = DedupTable::default();
        t.insert(entry(1));
        let id = RequestId::parse("r1").unwrap();
        assert_eq!(t.check(&id, &[1; 32]), DedupHit::Retry(&Response::Noop));
        assert_eq!(t.check(&id, &[2; 32]), DedupHit::Reused);
        assert_eq!(
            t.check(&RequestId::parse("r2").unwrap(), &[1; 32]),
            DedupHit::New
        );
    }

    #[test]
    fn evicts_oldest_by_index_beyond_capacity() {
        let mut t = DedupTable::default();
        for n in 1..=DEDUP_CAPACITY as u64 {
            assert!(t.insert(entry(n)).is_empty());
        }
        let evicted = t.insert(entry(DEDUP_CAPACITY as u64 + 1));
        assert_eq!(evicted, vec![RequestId::parse("r1").unwrap()]);
        assert_eq!(t.len(), DEDUP_CAPACITY);
        assert!(t.get(&RequestId::parse("r1").unwrap()).is_none());
    }
}
