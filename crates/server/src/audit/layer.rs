//! The tower layer on the API port that audits and rate-limits every request.
//!
//! For each request it reads the caller from the verified client certificate, maps the gRPC
//! method to its policy action, takes a token from the caller's bucket (refusing with
//! `RESOURCE_EXHAUSTED` and a `retry-after` hint when empty), runs the handler inside a notes
//! scope, reads the outcome from the response headers, and waits until the record is written
//! before it releases the response. If the record cannot be written the response is replaced
//! by `UNAVAILABLE` / `AUDIT_UNAVAILABLE`: no request succeeds unrecorded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response};
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Code;
use tower::{Layer, Service};

use super::notes::{self, Notes};
use super::record::{Record, SCHEMA_VERSION};
use super::Auditor;
use crate::authz::{Caller, VerifiedCaller};
use crate::error::{ApiError, ERROR_CODE_METADATA};
use crate::node::Node;
use crate::ops::metrics::Metrics;
use crate::ratelimit::{ActionClass, RateLimiter};
use tessera_state::policy::Action;

/// Metadata key of the rate-limit hint: whole seconds to wait before retrying.
pub const RETRY_AFTER_METADATA: &str = "retry-after";

/// Shortest time a refusal by a rate limit is held back before it is sent. The hold only
/// occupies the refused caller's own streams (the layer sits outside the node's global
/// in-flight limit), so it bounds how fast one connection can make the node refuse: at most
/// `max_requests_per_connection` refusals per hold.
pub const REFUSAL_HOLD_MIN: Duration = Duration::from_millis(100);
/// Longest a refusal is held back: it is answered when the bucket would next hold a token,
/// within [`REFUSAL_HOLD_MIN`]..=[`REFUSAL_HOLD_MAX`].
pub const REFUSAL_HOLD_MAX: Duration = Duration::from_secs(1);

/// What the layer needs from the node.
pub struct Shared {
    /// The record writer.
    pub auditor: Auditor,
    /// The token buckets.
    pub limiter: RateLimiter,
    /// The node (for the audit key, which exists only while it is unsealed).
    pub node: Arc<Node>,
    /// Request counters and latency histograms.
    pub metrics: Arc<Metrics>,
}

/// Audits and rate-limits every request of the services it wraps.
#[derive(Clone)]
pub struct AuditLayer {
    shared: Arc<Shared>,
}

impl AuditLayer {
    /// A layer over `shared`.
    pub fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`AuditLayer`] makes.
#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<Request<Body>> for AuditService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was made ready is the one that serves (tower's usual swap).
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(serve(ready, shared, request))
    }
}

async fn serve<S>(
    mut inner: S,
    shared: Arc<Shared>,
    mut request: Request<Body>,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let started = Instant::now();
    let time_ms = shared.node.now_ms();
    let method = request.uri().path().to_owned();
    let action = super::action_of(&method);
    let caller = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
        .and_then(|certs| {
            certs
                .first()
                .and_then(|leaf| Caller::of_leaf(leaf.as_ref()))
        });
    if let Some(caller) = &caller {
        // The handler reads it from here instead of deriving it again.
        request
            .extensions_mut()
            .insert(VerifiedCaller(caller.clone()));
    }
    let refused = match (&caller, action) {
        (Some(caller), Some(action)) if shared.limiter.is_enabled() => {
            let applied = shared.node.raft().shared().read();
            shared
                .limiter
                .take(caller.name(), action, started, applied.state.access())
                .err()
                .map(|wait| (action, wait))
        }
        _ => None,
    };
    let (response, notes) = match refused {
        Some((action, wait)) => {
            // Answered when the bucket would next hold a token (within the hold bounds):
            // a caller hammering in a loop is paced to its limit instead of making the node
            // refuse as fast as it can read, which costs every other caller CPU.
            tokio::time::sleep(wait.clamp(REFUSAL_HOLD_MIN, REFUSAL_HOLD_MAX)).await;
            (rate_limited(action, wait), Notes::default())
        }
        None => {
            let (response, notes) = notes::scope(inner.call(request)).await;
            (response?, notes)
        }
    };
    let (grpc_code, tessera_code) = outcome(response.headers());
    if !shared.auditor.is_enabled() {
        shared
            .metrics
            .observe_request(action, grpc_code, started.elapsed());
        return Ok(response);
    }
    let audit_key = if notes.has_values() {
        shared.node.audit_key()
    } else {
        None
    };
    let (hmac, hmac_omitted) = notes.hashed(audit_key.as_ref());
    let record = Record {
        v: SCHEMA_VERSION,
        seq: 0,
        time_ms,
        node: shared.auditor.node_id(),
        region: shared.auditor.region().to_owned(),
        request_id: notes.request_id,
        identity: caller.as_ref().map(|c| c.name().to_owned()),
        cert_sha256: caller.as_ref().map(|c| c.fingerprint_hex().to_owned()),
        method,
        action: action.map(Action::name),
        key_id: notes.key_id,
        key_version: notes.key_version,
        grpc_code: tessera_proto::code_name(grpc_code),
        tessera_code,
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        hmac,
        hmac_omitted,
    };
    match shared.auditor.record(record).await {
        Ok(()) => {
            shared
                .metrics
                .observe_request(action, grpc_code, started.elapsed());
            Ok(response)
        }
        Err(e) => {
            tracing::error!(error = %e, "audit record not written; the request fails");
            shared.metrics.audit_failure();
            let refused = ApiError::AuditUnavailable;
            shared
                .metrics
                .observe_request(action, refused.codes().0, started.elapsed());
            Ok(tonic::Status::from(refused).into_http())
        }
    }
}

/// The response of a request refused by its bucket: whole seconds to wait, rounded up.
fn rate_limited(action: Action, wait: Duration) -> Response<Body> {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut status = tonic::Status::from(ApiError::Throttled {
        class: ActionClass::of(action).name(),
        retry_after_s: seconds,
    });
    if let Ok(value) = seconds.to_string().parse() {
        status.metadata_mut().insert(RETRY_AFTER_METADATA, value);
    }
    status.into_http()
}

/// The gRPC code and Tessera code of a response: an error is sent "trailers-only", its status
/// in the headers; a unary response without `grpc-status` in its headers carries a message and
/// ends `OK`.
fn outcome(headers: &HeaderMap) -> (Code, Option<String>) {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32);
    let tessera = headers
        .get(ERROR_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (code, tessera)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn outcomes_are_read_from_error_and_success_headers() {
        let denied: Response<Body> = tonic::Status::from(ApiError::PermissionDenied {
            action: Action::Decrypt,
            key: None,
        })
        .into_http();
        assert_eq!(
            outcome(denied.headers()),
            (Code::PermissionDenied, Some("ACCESS_DENIED".to_owned()))
        );
        assert_eq!(outcome(&HeaderMap::new()), (Code::Ok, None));
    }

    #[test]
    fn a_refusal_says_when_to_retry_in_whole_seconds() {
        let refused = rate_limited(Action::Encrypt, Duration::from_millis(1200));
        assert_eq!(refused.headers().get(RETRY_AFTER_METADATA).unwrap(), "2");
        assert_eq!(
            outcome(refused.headers()),
            (Code::ResourceExhausted, Some("RATE_LIMITED".to_owned()))
        );
        let soon = rate_limited(Action::Encrypt, Duration::from_millis(3));
        assert_eq!(soon.headers().get(RETRY_AFTER_METADATA).unwrap(), "1");
    }
}
