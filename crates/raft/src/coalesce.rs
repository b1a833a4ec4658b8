//! Merging concurrent read barriers.
//!
//! A read barrier costs a round trip to the leader. Without merging, every request for a key
//! id this node does not know pays one, so a burst of unknown ids (or a `BatchDecrypt` of 256
//! of them) queues that many round trips. A barrier answers every caller that arrived before
//! it *started*: the read index it obtains covers everything committed before then. So callers
//! that arrive while a barrier is in flight wait for it to end and then share the next one;
//! callers that arrived before the last completed barrier started take its result at once.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

/// Runs at most one barrier at a time and shares each result with every caller it covers.
#[derive(Debug, Default)]
pub(crate) struct Coalescer<E> {
    /// Rounds started so far (a round's number is its position, counting from 1).
    started: AtomicU64,
    /// Held while a round runs; holds the last completed round and its result.
    last: Mutex<Option<(u64, Result<(), E>)>>,
}

impl<E: Clone> Coalescer<E> {
    /// A coalescer that has run no barrier yet.
    pub(crate) fn new() -> Self {
        Self {
            started: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// The result of a barrier that started after this call: a completed one if there is, or
    /// one this caller runs with `barrier` (callers queued meanwhile share it).
    pub(crate) async fn run<F, Fut>(&self, barrier: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        // Every round numbered above `seen` starts after this point.
        let seen = self.started.load(Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if let Some((round, result)) = last.as_ref() {
            if *round > seen {
                return result.clone();
            }
        }
        let round = self
            .started
            .fetch_add(1, Ordering::SeqCst)
            .saturating_add(1);
        let result = barrier().await;
        *last = Some((round, result.clone()));
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;

    /// A barrier that counts its runs and, if `gate` is given, waits for it to open.
    async fn counted(runs: &AtomicUsize, gate: Option<&Notify>) -> Result<(), ()> {
        runs.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = gate {
            gate.notified().await;
        }
        Ok(())
    }

    #[tokio::test]
    async fn callers_that_arrive_during_a_barrier_share_the_next_one() {
        let coalescer = Arc::new(Coalescer::<()>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let first = tokio::spawn({
            let (coalescer, runs, gate) = (coalescer.clone(), runs.clone(), gate.clone());
            async move { coalescer.run(|| counted(&runs, Some(&gate))).await }
        });
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // 256 reads of unknown keys arrive while the first barrier is in flight.
        let waiting: Vec<_> = (0..256)
            .map(|_| {
                let (coalescer, runs) = (coalescer.clone(), runs.clone());
                tokio::spawn(async move { coalescer.run(|| counted(&runs, None)).await })
            })
            .collect();
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        first.await.unwrap().unwrap();
        for read in waiting {
            read.await.unwrap().unwrap();
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "the in-flight barrier and one shared by all 256 later callers"
        );
    }

    #[tokio::test]
    async fn a_barrier_that_started_before_a_call_does_not_answer_it() {
        let coalescer = Coalescer::<()>::new();
        let runs = AtomicUsize::new(0);
        coalescer.run(|| counted(&runs, None)).await.unwrap();
        coalescer.run(|| counted(&runs, None)).await.unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "sequential calls each need a barrier"
        );
    }

    #[tokio::test]
    async fn a_failed_barrier_is_shared_and_the_next_call_tries_again() {
        let coalescer = Arc::new(Coalescer::<&'static str>::new());
        let gate = Arc::new(Notify::new());
        let failing = tokio::spawn({
            let (coalescer, gate) = (coalescer.clone(), gate.clone());
            async move {
                coalescer
                    .run(|| async move {
                        gate.notified().await;
                        Err("no leader")
                    })
                    .await
            }
        });
        tokio::task::yield_now().await;
        let shared = tokio::spawn({
            let coalescer = coalescer.clone();
            async move { coalescer.run(|| async { Err("no leader either") }).await }
        });
        tokio::task::yield_now().await;
        gate.notify_one();
        assert_eq!(failing.await.unwrap(), Err("no leader"));
        assert_eq!(shared.await.unwrap(), Err("no leader either"));
        assert_eq!(coalescer.run(|| async { Ok(()) }).await, Ok(()));
    }
}
