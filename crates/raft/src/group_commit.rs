//! Group commit on the leader: concurrent writes share one Raft entry, so they share one log
//! flush.
//!
//! openraft 0.9's leader appends and flushes every `client_write` on its own, one entry and one
//! flush per call, so under concurrency the leader flushed once per write
//! (`docs/performance.md`, "Raft write path"). [`GroupCommit`] stands in front of
//! `client_write` for every write this node proposes as leader, its own callers' and those
//! that followers forward, and one task proposes them:
//!
//! - when no entry of its is in flight, a write goes at once and alone, as the bare request:
//!   the same entry as without group commit, with no added latency;
//! - while an entry is in flight, arrivals queue; the next entry carries all of them as one
//!   [`tessera_state::Command::Batch`] (at most `max_requests` requests, and at most
//!   [`MAX_ENTRY_BYTES`] for the whole entry, so a batch obeys the bound every entry obeys and
//!   the cluster port's message cap still holds; a request that does not fit waits for the
//!   next entry).
//!
//! Every caller gets its own request's result with the entry's index. If the entry fails or is
//! not confirmed in time, every caller in it gets that outcome. With `max_requests` 1 (needed
//! while older nodes that cannot decode a batch are still in the cluster) writes go straight to
//! `client_write`, as before group commit.

use std::time::Duration;

use openraft::error::RaftError;
use tessera_state::{Request, Response};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::codec;
use crate::limits::MAX_ENTRY_BYTES;
use crate::typ::{ClientWriteError, NodeId, Raft};

/// What an entry holds beyond its requests' encodings: the entry's log id and payload tag,
/// the batch envelope's own fields (`Request::batch`, about 75 bytes) and the length prefix.
const ENVELOPE_BYTES: usize = 1024;

/// The most the requests of one batch may take, encoded.
pub const MAX_BATCH_REQUEST_BYTES: usize = MAX_ENTRY_BYTES - ENVELOPE_BYTES;

/// A write committed and applied on this node (the leader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The index of the entry that carried it.
    pub index: u64,
    /// Its own replicated result.
    pub response: Response,
}

/// Why a write handed to [`GroupCommit`] has no result.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteFailure {
    /// openraft refused or failed the entry: this node is not the leader, or its core stopped.
    /// (Boxed: openraft's errors are hundreds of bytes.)
    #[error(transparent)]
    Raft(Box<RaftError<NodeId, ClientWriteError>>),
    /// The entry was proposed but not confirmed within the write timeout; it may still commit.
    #[error("the leader did not commit the write in time")]
    TimedOut,
    /// The entry was applied but its result does not hold one result per request (a state
    /// machine of another build); the write's result is unknown.
    #[error("the result of the write's batch does not match the batch")]
    Mismatched,
    /// The proposing task ended (the node is shutting down); the write may have been proposed.
    #[error("the node stopped proposing writes")]
    Stopped,
}

/// A write waiting to be proposed.
struct Pending {
    request: Request,
    /// Its encoded size.
    bytes: usize,
    reply: oneshot::Sender<Result<Written, WriteFailure>>,
}

/// How large an entry the proposing task builds.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_requests: usize,
    max_bytes: usize,
    timeout: Duration,
}

/// The leader's write queue (cheap to clone; every clone feeds the same task).
#[derive(Clone)]
pub struct GroupCommit {
    raft: Raft,
    queue: mpsc::UnboundedSender<Pending>,
    max_requests: usize,
    timeout: Duration,
}

impl GroupCommit {
    /// Starts the proposing task for `raft`: entries of at most `max_requests` requests, each
    /// waited for at most `timeout`.
    pub fn start(raft: Raft, max_requests: usize, timeout: Duration) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let limits = Limits {
            max_requests: max_requests.max(1),
            max_bytes: MAX_BATCH_REQUEST_BYTES,
            timeout,
        };
        let task = tokio::spawn(run(raft.clone(), receiver, limits));
        let this = Self {
            raft,
            queue,
            max_requests: limits.max_requests,
            timeout,
        };
        (this, task)
    }

    /// Proposes `request` on this node as leader, in the next entry this node proposes, and
    /// returns its result once the entry is applied here.
    ///
    /// # Errors
    /// [`WriteFailure`]. `ForwardToLeader` asks the caller to try the current leader; after
    /// any failure the write may have been committed, and a retry under the same request id
    /// applies it at most once.
    pub async fn write(&self, request: Request) -> Result<Written, WriteFailure> {
        if self.max_requests == 1 {
            return alone(&self.raft, request, self.timeout).await;
        }
        // The encoding cannot fail for these types; an unknown size makes the write go alone.
        let bytes = codec::encoded_len(&request).unwrap_or(usize::MAX);
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending {
                request,
                bytes,
                reply,
            })
            .map_err(|_| WriteFailure::Stopped)?;
        answer.await.unwrap_or(Err(WriteFailure::Stopped))
    }
}

/// The proposing task: one entry in flight at a time; whatever queued meanwhile goes in the
/// next one.
async fn run(raft: Raft, mut queue: mpsc::UnboundedReceiver<Pending>, limits: Limits) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match queue.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(pending) = next.take() {
            if pending.reply.is_closed() {
                // Its caller gave up (timed out or went away) before it was proposed.
            } else if !batch.is_empty()
                && (batch.len() >= limits.max_requests
                    || bytes.saturating_add(pending.bytes) > limits.max_bytes)
            {
                carried = Some(pending);
                break;
            } else {
                bytes = bytes.saturating_add(pending.bytes);
                batch.push(pending);
            }
            next = queue.try_recv().ok();
        }
        propose(&raft, batch, limits.timeout).await;
    }
}

/// Proposes one entry: the request itself if it is alone, else a batch of them; answers every
/// caller.
async fn propose(raft: &Raft, mut batch: Vec<Pending>, timeout: Duration) {
    if batch.len() <= 1 {
        if let Some(pending) = batch.pop() {
            let outcome = alone(raft, pending.request, timeout).await;
            // The caller may have stopped waiting; the outcome is then nobody's.
            let _ = pending.reply.send(outcome);
        }
        return;
    }
    let count = batch.len();
    let (requests, replies): (Vec<Request>, Vec<_>) = batch
        .into_iter()
        .map(|pending| (pending.request, pending.reply))
        .unzip();
    let outcome = tokio::time::timeout(timeout, raft.client_write(Request::batch(requests))).await;
    let failure = match outcome {
        Ok(Ok(written)) => match written.data {
            Response::Batch(responses) if responses.len() == count => {
                let index = written.log_id.index;
                for (reply, response) in replies.into_iter().zip(responses) {
                    let _ = reply.send(Ok(Written { index, response }));
                }
                return;
            }
            _ => WriteFailure::Mismatched,
        },
        Ok(Err(e)) => WriteFailure::Raft(Box::new(e)),
        Err(_) => WriteFailure::TimedOut,
    };
    for reply in replies {
        let _ = reply.send(Err(failure.clone()));
    }
}

/// Proposes `request` as an entry of its own.
async fn alone(raft: &Raft, request: Request, timeout: Duration) -> Result<Written, WriteFailure> {
    match tokio::time::timeout(timeout, raft.client_write(request)).await {
        Ok(Ok(written)) => Ok(Written {
            index: written.log_id.index,
            response: written.data,
        }),
        Ok(Err(e)) => Err(WriteFailure::Raft(Box::new(e))),
        Err(_) => Err(WriteFailure::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId};
    use tessera_state::{CallerId, Command, KeyId, RequestId};

    use super::*;
    use crate::typ::Entry;

    fn update(n: usize, description_bytes: usize) -> Request {
        Request {
            request_id: RequestId::parse(&format!("{n:0>128}")).unwrap(),
            caller: CallerId::of("app"),
            fingerprint: [0xff; 32],
            bindings: Vec::new(),
            command: Command::UpdateDescription {
                key_id: KeyId::from_random_bytes([0xff; 16]),
                description: "d".repeat(description_bytes),
            },
        }
    }

    /// A batch filled up to the byte budget, with the largest log id, is still an entry within
    /// `MAX_ENTRY_BYTES`, the bound the cluster port's message cap is sized for.
    #[test]
    fn a_full_batch_stays_within_the_entry_bound() {
        for description_bytes in [0, 300, 8 * 1024] {
            let mut requests = Vec::new();
            let mut bytes = 0;
            for n in 0.. {
                let request = update(n, description_bytes);
                let size = codec::encoded_len(&request).unwrap();
                if bytes + size > MAX_BATCH_REQUEST_BYTES {
                    break;
                }
                bytes += size;
                requests.push(request);
            }
            assert!(requests.len() > 1);
            let entry = Entry {
                log_id: LogId::new(
                    CommittedLeaderId::new(u64::MAX, NodeId::new(u64::MAX)),
                    u64::MAX,
                ),
                payload: EntryPayload::Normal(Request::batch(requests)),
            };
            let encoded = codec::encode("entry", &entry).unwrap();
            assert!(
                encoded.len() <= MAX_ENTRY_BYTES,
                "{} bytes with descriptions of {description_bytes}",
                encoded.len()
            );
        }
    }
}
