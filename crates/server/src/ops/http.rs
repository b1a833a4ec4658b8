//! The ops port's HTTP endpoints.
//!
//! - `GET /metrics`: every metric in the Prometheus text exposition format.
//! - `GET /health`: `200 ok` while the process runs and serves this port (liveness).
//! - `GET /ready`: `200 ready` while the node serves crypto, else `503` and a one-line reason
//!   (`sealed`, no lease, catching up), for load balancers.
//!
//! Nothing here reads a secret; the port needs no authentication (see `docs/security.md`).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::metrics::Metrics;
use crate::node::Node;

/// Content type of the text exposition format `prometheus-client` writes (OpenMetrics 1.0,
/// which Prometheus scrapes natively).
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the handlers read.
#[derive(Clone)]
struct Ops {
    node: Arc<Node>,
    metrics: Arc<Metrics>,
}

/// The ops endpoints over `node` and `metrics`.
fn router(node: Arc<Node>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(Ops { node, metrics })
}

/// Serves the ops endpoints on `listener` until `shutdown` resolves.
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(node, metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(ops): State<Ops>) -> Response {
    match ops.metrics.render(&ops.node) {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(ops): State<Ops>) -> Response {
    match super::readiness(&ops.node) {
        Ok(()) => "ready\n".into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}
