//! A cache of data keys, so that many small messages do not each cost a `GenerateDataKey`
//! call: a data key is reused for at most N messages, B bytes and T of age, per (Tessera key,
//! encryption context). Off unless the client is built with it.
//!
//! Reuse is safe for the format: every message derives its own key from the data key and a
//! fresh random message id. What it trades away is granularity: one compromised data key
//! exposes every message encrypted under it, which the bounds limit.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::DataKey;

/// How far one cached data key may be reused. A message counts against a data key's bounds
/// when the key is handed out for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most messages encrypted under one data key.
    pub max_messages: u64,
    /// Most plaintext bytes encrypted under one data key; a message larger than this never
    /// uses the cache.
    pub max_bytes: u64,
    /// Longest time a data key is handed out after it was generated.
    pub max_age: Duration,
    /// Most (key, context) pairs held at once; beyond it, idle entries are dropped first.
    pub max_entries: usize,
}

impl Default for CacheLimits {
    /// 1000 messages, 1 GiB and 5 minutes per data key, 1000 entries.
    fn default() -> Self {
        Self {
            max_messages: 1000,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(300),
            max_entries: 1000,
        }
    }
}

/// One cached data key and how much it has been used.
struct Entry {
    key: DataKey,
    created: Instant,
    messages: u64,
    bytes: u64,
}

impl Entry {
    fn admits(&self, bytes: u64, limits: &CacheLimits, now: Instant) -> bool {
        now.duration_since(self.created) < limits.max_age
            && self.messages < limits.max_messages
            && self
                .bytes
                .checked_add(bytes)
                .is_some_and(|total| total <= limits.max_bytes)
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;
type CacheKey = (String, BTreeMap<String, String>);

/// Data keys shared by concurrent encryptions, within [`CacheLimits`].
///
/// Each (key, context) has its own slot, locked while a message takes its data key and,
/// when the cached one is used up, while a new one is generated: the bounds hold exactly
/// under any number of concurrent tasks, and a slot costs one `GenerateDataKey` per data key.
/// Plaintext keys are zeroized when an entry is replaced or dropped.
pub struct DataKeyCache {
    limits: CacheLimits,
    slots: Mutex<HashMap<CacheKey, Slot>>,
}

impl std::fmt::Debug for DataKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyCache")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DataKeyCache {
    /// An empty cache with these bounds.
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            limits,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The bounds.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// A data key for one message of `bytes` plaintext bytes under `key` with `context`: the
    /// cached one if it admits the message, else one from `generate`, which is cached.
    ///
    /// # Errors
    /// Whatever `generate` returns.
    pub async fn data_key<E, F, Fut>(
        &self,
        key: &str,
        context: &BTreeMap<String, String>,
        bytes: u64,
        generate: F,
    ) -> Result<DataKey, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<DataKey, E>>,
    {
        if bytes > self.limits.max_bytes || self.limits.max_messages == 0 {
            return generate().await;
        }
        let slot = self.slot(key, context);
        let mut entry = slot.lock().await;
        if let Some(cached) = entry.as_mut() {
            if cached.admits(bytes, &self.limits, Instant::now()) {
                cached.messages += 1;
                cached.bytes += bytes;
                return Ok(cached.key.clone());
            }
        }
        // Used up or expired: drop it (its plaintext is zeroized) before asking for another.
        *entry = None;
        let fresh = generate().await?;
        *entry = Some(Entry {
            key: fresh.clone(),
            created: Instant::now(),
            messages: 1,
            bytes,
        });
        Ok(fresh)
    }

    /// The slot of (key, context), made room for if the cache is full.
    fn slot(&self, key: &str, context: &BTreeMap<String, String>) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let id = (key.to_owned(), context.clone());
        if let Some(slot) = slots.get(&id) {
            return Arc::clone(slot);
        }
        if slots.len() >= self.limits.max_entries.max(1) {
            self.make_room(&mut slots);
        }
        Arc::clone(slots.entry(id).or_default())
    }

    /// Drops expired and idle entries; if none is, one entry nobody is using.
    fn make_room(&self, slots: &mut HashMap<CacheKey, Slot>) {
        let now = Instant::now();
        slots.retain(|_, slot| match slot.try_lock() {
            Ok(entry) => entry
                .as_ref()
                .is_some_and(|e| now.duration_since(e.created) < self.limits.max_age),
            Err(_) => true,
        });
        if slots.len() >= self.limits.max_entries.max(1) {
            let idle = slots
                .iter()
                .find(|(_, slot)| Arc::strong_count(slot) == 1)
                .map(|(id, _)| id.clone());
            if let Some(id) = idle {
                slots.remove(&id);
            }
        }
    }

    /// Drops every cached data key (their plaintexts are zeroized).
    pub fn clear(&self) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::atomic::{AtomicU64, Ordering};

    use zeroize::Zeroizing;

    use super::*;

    const TASKS: u64 = 16;

    /// A cache, a counter of generated data keys (each with its number as key id) and a log
    /// of which data key every message got, with its size and when.
    struct Harness {
        cache: DataKeyCache,
        generated: AtomicU64,
        uses: Mutex<Vec<(String, u64, Instant)>>,
        created: Mutex<HashMap<String, Instant>>,
    }

    impl Harness {
        fn new(limits: CacheLimits) -> Arc<Self> {
            Arc::new(Self {
                cache: DataKeyCache::new(limits),
                generated: AtomicU64::new(0),
                uses: Mutex::new(Vec::new()),
                created: Mutex::new(HashMap::new()),
            })
        }

        async fn message(&self, key: &str, bytes: u64) {
            let context = BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]);
            let data_key = self
                .cache
                .data_key(key, &context, bytes, || async {
                    // A network round trip's worth of yielding, so tasks interleave.
                    tokio::task::yield_now().await;
                    let n = self.generated.fetch_add(1, Ordering::SeqCst);
                    let id = format!("{key}/{n}");
                    self.created
                        .lock()
                        .unwrap()
                        .insert(id.clone(), Instant::now());
                    DataKey::new(Zeroizing::new(vec![0; 32]), vec![1], id).map_err(|_| "bad key")
                })
                .await
                .unwrap();
            self.uses
                .lock()
                .unwrap()
                .push((data_key.key_id().to_owned(), bytes, Instant::now()));
            tokio::task::yield_now().await;
        }

        /// Messages and bytes per data key.
        fn per_key(&self) -> HashMap<String, (u64, u64)> {
            let mut totals: HashMap<String, (u64, u64)> = HashMap::new();
            for (id, bytes, _) in self.uses.lock().unwrap().iter() {
                let entry = totals.entry(id.clone()).or_default();
                entry.0 += 1;
                entry.1 += bytes;
            }
            totals
        }
    }

    async fn run(harness: &Arc<Harness>, per_task: u64, bytes: u64) {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let harness = Arc::clone(harness);
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        harness.message("k", bytes).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }

    fn limits(max_messages: u64, max_bytes: u64, max_age: Duration) -> CacheLimits {
        CacheLimits {
            max_messages,
            max_bytes,
            max_age,
            max_entries: 10,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_message_bound_holds_exactly_under_16_tasks() {
        let harness = Harness::new(limits(10, u64::MAX, Duration::from_secs(3600)));
        run(&harness, 25, 1).await;
        let per_key = harness.per_key();
        // 400 messages, 10 per data key: exactly 40 GenerateDataKey calls, each key used
        // exactly 10 times.
        assert_eq!(harness.generated.load(Ordering::SeqCst), 40);
        assert!(
            per_key.values().all(|(messages, _)| *messages == 10),
            "{per_key:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_byte_bound_holds_exactly_under_16_tasks() {
        let harness = Harness::new(limits(u64::MAX, 1000, Duration::from_secs(3600)));
        run(&harness, 20, 300).await;
        let per_key = harness.per_key();
        // 320 messages of 300 bytes, at most 1000 bytes (3 messages) per data key.
        assert_eq!(harness.generated.load(Ordering::SeqCst), 107);
        assert!(
            per_key.values().all(|(_, bytes)| *bytes <= 1000),
            "{per_key:?}"
        );
        assert_eq!(per_key.values().filter(|(m, _)| *m == 3).count(), 106);
        // A message larger than the bound never shares a data key.
        harness.message("k", 1001).await;
        harness.message("k", 1001).await;
        assert_eq!(harness.generated.load(Ordering::SeqCst), 109);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_age_bound_holds_exactly_under_16_tasks() {
        let max_age = Duration::from_millis(1000);
        let harness = Harness::new(limits(u64::MAX, u64::MAX, max_age));
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let harness = Arc::clone(&harness);
                tokio::spawn(async move {
                    for _ in 0..50 {
                        harness.message("k", 1).await;
                        tokio::time::sleep(Duration::from_millis(37 + i)).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let created = harness.created.lock().unwrap().clone();
        for (id, _, at) in harness.uses.lock().unwrap().iter() {
            let age = at.duration_since(created[id]);
            assert!(age < max_age, "{id} used at age {age:?}");
        }
        // 50 messages 37..52 ms apart span about 2.6 s: the key was replaced at least twice,
        // and never while still young (the cache did not turn into no cache).
        let generated = harness.generated.load(Ordering::SeqCst);
        assert!((3..=4).contains(&generated), "{generated} data keys");
    }

    #[tokio::test]
    async fn keys_and_contexts_have_their_own_data_keys_and_entries_stay_bounded() {
        let harness = Harness::new(limits(100, u64::MAX, Duration::from_secs(60)));
        harness.message("a", 1).await;
        harness.message("b", 1).await;
        harness.message("a", 1).await;
        assert_eq!(harness.generated.load(Ordering::SeqCst), 2);
        for i in 0..50 {
            harness.message(&format!("key-{i}"), 1).await;
        }
        let held = harness.cache.slots.lock().unwrap().len();
        assert!(held <= 10, "{held} entries held");
        harness.cache.clear();
        harness.message("a", 1).await;
        assert_eq!(harness.generated.load(Ordering::SeqCst), 53);
    }
}
