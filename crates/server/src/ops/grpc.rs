//! The standard gRPC health (`grpc.health.v1.Health`) and server reflection
//! (`grpc.reflection.v1.ServerReflection`, and `v1alpha` for older tools) services of the API
//! port, so that `grpcurl` and gRPC load balancers work against any node.
//!
//! Both sit behind the API port's mutual TLS like every call, and behind the audit layer (they
//! are audited and counted under the action `other`), but no policy decides them: any holder of
//! a valid client certificate may ask whether the node serves and what the public API looks
//! like, as it may read `docs/api.md`. Reflection describes only `tessera.v1` (and the health
//! service), never the cluster protocol, and no data.

use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1::{access_server, crypto_server, keys_server, system_server};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::node::Node;

/// How often the health statuses are compared with readiness.
const HEALTH_POLL: Duration = Duration::from_millis(250);

/// The services whose health follows readiness; `""` is the whole server.
const FOLLOW_READINESS: [&str; 4] = [
    "",
    keys_server::SERVICE_NAME,
    crypto_server::SERVICE_NAME,
    access_server::SERVICE_NAME,
];

/// Failure to build the reflection service from the embedded descriptors.
#[derive(Debug, thiserror::Error)]
#[error("the embedded protobuf descriptors are unusable: {0:?}")]
pub struct ReflectionError(tonic_reflection::server::Error);

/// The reflection services (v1 and v1alpha) describing the public API and the health service.
///
/// # Errors
/// [`ReflectionError`] if the descriptors compiled into the binary do not decode (a build
/// defect).
pub fn reflection() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    ReflectionError,
> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tessera_proto::V1_FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = builder().build_v1().map_err(ReflectionError)?;
    let v1alpha = builder().build_v1alpha().map_err(ReflectionError)?;
    Ok((v1, v1alpha))
}

/// Keeps the health statuses in step with readiness, until the task is dropped: the server as
/// a whole (`""`), `Keys`, `Crypto` and `Access` are `SERVING` exactly while the node is ready;
/// `System` is always `SERVING`, since it is what unseals a sealed node.
pub async fn follow_readiness(node: Arc<Node>, reporter: HealthReporter) {
    reporter
        .set_service_status(system_server::SERVICE_NAME, ServingStatus::Serving)
        .await;
    let mut reported = None;
    loop {
        let status = if super::readiness(&node).is_ok() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if reported != Some(status) {
            for service in FOLLOW_READINESS {
                reporter.set_service_status(service, status).await;
            }
            reported = Some(status);
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
}
