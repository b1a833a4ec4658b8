//! Closed-loop load: C tasks each keep one request in flight; after a warm-up, every
//! completion inside the measured window is counted and its latency recorded in an HDR
//! histogram. Repetitions run the same window again and their histograms are merged.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// One request of a workload.
pub type OpFuture = Pin<Box<dyn Future<Output = Result<(), OpError>> + Send>>;
/// A workload: issues request number `seq` (unique within a run of the workload).
pub type Op = Arc<dyn Fn(u64) -> OpFuture + Send + Sync>;

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A Tessera call failed.
    #[error(transparent)]
    Tessera(#[from] tessera_client::Error),
    /// An echo or etcd call failed.
    #[error("call failed: {0}")]
    Rpc(#[from] tonic::Status),
    /// The workload has no connection to send on.
    #[error("no connection")]
    NoConnection,
}

/// An [`Op`] that sends request `seq` with `call` on client `seq % k` of the `k` clients: the
/// one way every workload spreads its requests over its connections.
pub fn over<C, F, Fut>(clients: Vec<C>, call: F) -> Op
where
    C: Clone + Send + Sync + 'static,
    F: Fn(C, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), OpError>> + Send + 'static,
{
    Arc::new(move |seq| match crate::pick(&clients, seq) {
        Some(client) => Box::pin(call(client.clone(), seq)),
        None => Box::pin(async { Err(OpError::NoConnection) }),
    })
}

/// Latencies are recorded in microseconds up to one minute, with three significant digits.
const MAX_MICROS: u64 = 60_000_000;

/// How a workload is driven.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    /// Requests in flight.
    pub concurrency: usize,
    /// Run before each measured window, not counted.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// How many windows.
    pub reps: u32,
}

/// What a workload measured over all repetitions.
#[derive(Debug)]
pub struct Measured {
    /// Completed requests in the measured windows.
    pub ops: u64,
    /// Failed requests in the measured windows.
    pub errors: u64,
    /// Requests sent in all, priming and warm-ups included (each completed, successfully or
    /// not).
    pub issued: u64,
    /// The first failure, to tell the reader why.
    pub first_error: Option<String>,
    /// Completed requests per second, one per repetition.
    pub ops_per_s_reps: Vec<f64>,
    /// Latencies of completed requests, in microseconds.
    pub histogram: Histogram<u64>,
    /// CPU time this process used while the workload ran (warm-ups included).
    pub load_cpu: Duration,
    /// Wall time of the workload (warm-ups included).
    pub wall: Duration,
}

/// One task's share of a window.
struct TaskResult {
    histogram: Histogram<u64>,
    ops: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn task(
    op: Op,
    seq: Arc<AtomicU64>,
    histogram: Histogram<u64>,
    measure_from: Instant,
    stop: Instant,
) -> TaskResult {
    let mut result = TaskResult {
        histogram,
        ops: 0,
        errors: 0,
        first_error: None,
    };
    while Instant::now() < stop {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let outcome = op(n).await;
        let end = Instant::now();
        if end < measure_from || end > stop {
            continue;
        }
        match outcome {
            Ok(()) => {
                let micros = u64::try_from((end - start).as_micros()).unwrap_or(MAX_MICROS);
                result
                    .histogram
                    .saturating_record(micros.clamp(1, MAX_MICROS));
                result.ops += 1;
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    result
}

/// Bound on a workload's priming requests.
const PRIME_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `count` requests at once and waits for them (bounded), outcomes unrecorded: whatever
/// a workload's first calls cost once (connections, a lease's first renewal on a node that just
/// started) then falls in no window, however short the warm-up (`--quick` has 50 ms). A
/// workload that fails keeps failing in its windows, where its errors are counted.
async fn prime(op: &Op, seq: &AtomicU64, count: usize) {
    let calls = (0..count).map(|_| op(seq.fetch_add(1, Ordering::Relaxed)));
    let _ = tokio::time::timeout(PRIME_TIMEOUT, futures::future::join_all(calls)).await;
}

/// Drives `op` as `spec` says: first one untimed request per task (see `prime`), then `reps`
/// windows, each after its warm-up.
///
/// # Errors
/// [`hdrhistogram::CreationError`] only if the histogram bounds were invalid.
pub async fn closed_loop(
    op: &Op,
    spec: &LoadSpec,
) -> Result<Measured, hdrhistogram::CreationError> {
    let template = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3)?;
    let cpu_before = crate::machine::own_cpu_time();
    let wall_start = Instant::now();
    let seq = Arc::new(AtomicU64::new(0));
    let mut measured = Measured {
        ops: 0,
        errors: 0,
        issued: 0,
        first_error: None,
        ops_per_s_reps: Vec::new(),
        histogram: Histogram::new_from(&template),
        load_cpu: Duration::ZERO,
        wall: Duration::ZERO,
    };
    prime(op, &seq, spec.concurrency.max(1)).await;
    for _ in 0..spec.reps.max(1) {
        let measure_from = Instant::now() + spec.warmup;
        let stop = measure_from + spec.duration;
        let tasks: Vec<_> = (0..spec.concurrency.max(1))
            .map(|_| {
                let histogram = Histogram::new_from(&template);
                tokio::spawn(task(op.clone(), seq.clone(), histogram, measure_from, stop))
            })
            .collect();
        let mut rep_ops = 0;
        for joined in futures::future::join_all(tasks).await {
            let Ok(result) = joined else {
                measured.errors += 1;
                continue;
            };
            rep_ops += result.ops;
            measured.errors += result.errors;
            if measured.first_error.is_none() {
                measured.first_error = result.first_error;
            }
            // Both histograms have the same bounds, so adding cannot fail.
            let _ = measured.histogram.add(&result.histogram);
        }
        measured.ops += rep_ops;
        measured
            .ops_per_s_reps
            .push(rep_ops as f64 / spec.duration.as_secs_f64().max(f64::EPSILON));
    }
    measured.issued = seq.load(Ordering::Relaxed);
    measured.load_cpu = crate::machine::own_cpu_time().saturating_sub(cpu_before);
    measured.wall = wall_start.elapsed();
    Ok(measured)
}

/// What [`fixed_count`] did.
#[derive(Debug)]
pub struct Counted {
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Sends requests `0..count` with `concurrency` in flight (for loading data, not measuring
/// latency).
pub async fn fixed_count(op: &Op, count: u64, concurrency: usize) -> Counted {
    let start = Instant::now();
    let seq = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (op, seq) = (op.clone(), seq.clone());
            tokio::spawn(async move {
                let (mut ok, mut errors, mut first_error) = (0, 0, None);
                loop {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    match op(n).await {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                (ok, errors, first_error)
            })
        })
        .collect();
    let mut counted = Counted {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    for (ok, errors, first_error) in futures::future::join_all(tasks).await.into_iter().flatten() {
        counted.ok += ok;
        counted.errors += errors;
        if counted.first_error.is_none() {
            counted.first_error = first_error;
        }
    }
    counted.elapsed = start.elapsed();
    counted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_completions_and_failures_in_the_window() {
        let op: Op = Arc::new(|seq| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                if seq % 10 == 0 {
                    Err(OpError::NoConnection)
                } else {
                    Ok(())
                }
            })
        });
        let spec = LoadSpec {
            concurrency: 4,
            warmup: Duration::from_millis(20),
            duration: Duration::from_millis(200),
            reps: 2,
        };
        let measured = closed_loop(&op, &spec).await.unwrap();
        assert_eq!(measured.ops_per_s_reps.len(), 2);
        assert!(measured.ops > 0 && measured.errors > 0);
        assert_eq!(measured.histogram.len(), measured.ops);
        assert!(measured.histogram.value_at_quantile(0.5) >= 2000);
        assert_eq!(measured.first_error.as_deref(), Some("no connection"));
        assert!(measured.issued >= measured.ops + measured.errors);
        let counted = fixed_count(&op, 25, 4).await;
        assert_eq!((counted.ok, counted.errors), (22, 3));
    }
}
