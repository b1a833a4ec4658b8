//! [`Client`]: typed calls to a Tessera cluster with failover across its nodes.
//!
//! The calls are grouped by what they touch: [`keys`] (key lifecycle), [`aliases`],
//! [`material`] (import and export of key material), [`crypto`] (encryption, data keys,
//! randomness), [`signing`] (signatures and MACs), [`access`] (identity, policies, grants
//! and the certificate deny-list) and [`members`] (cluster membership).

/// Defines [`Client`] methods that each make one RPC: after the method's docs and signature
/// (its answer type without the `Result`) comes the helper that sends it (`call` with
/// failover, `key_call` with failover answering the key, `first_call` to the first endpoint),
/// the service client and its RPC, and the request message built from the arguments. The
/// message is built once per method call, so every attempt of a write carries one request id.
macro_rules! rpc_methods {
    ($(
        $(#[$attr:meta])*
        $vis:vis async fn $name:ident(&self $(, $arg:ident: $arg_ty:ty)* $(,)?) -> $answer:ty
            = $helper:ident($service:ident::$rpc:ident, $message:expr);
    )*) => {$(
        $(#[$attr])*
        $vis async fn $name(&self $(, $arg: $arg_ty)*) -> Result<$answer, Error> {
            self.$helper($message, |channel, request| async move {
                $service::new(channel).$rpc(request).await
            })
            .await
        }
    )*};
}

pub mod access;
pub mod aliases;
pub mod builder;
pub mod crypto;
pub mod envelope;
pub mod keys;
pub mod material;
pub mod members;
pub mod rate_limits;
mod routing;
pub mod signing;
pub mod snapshot;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1 as pb;
use tessera_proto::v1::system_client::SystemClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

use crate::envelope::{CacheLimits, DataKeyCache};
use crate::error::Error;
use builder::{ClientBuilder, RetryPolicy};
use routing::Routing;

/// Where and how to connect.
#[derive(Clone)]
pub struct ClientConfig {
    /// Node API endpoints, e.g. `https://127.0.0.1:7401`, in order of preference; each may
    /// name its region, `eu=https://10.0.0.1:7401`.
    pub endpoints: Vec<String>,
    /// The client's own region: cluster-wide calls go to endpoints of this region first and
    /// to the others only when those fail (see `client::routing`). `None`: configured order.
    pub region: Option<String>,
    /// PEM of the CA that signed the servers' certificates.
    pub ca_cert_pem: Vec<u8>,
    /// PEM of the client certificate.
    pub cert_pem: Vec<u8>,
    /// PEM of the client's private key.
    pub key_pem: Zeroizing<Vec<u8>>,
    /// Bound on establishing a connection to one node.
    pub connect_timeout: Duration,
    /// Bound on one call to one node.
    pub request_timeout: Duration,
    /// How long a cluster-wide call keeps retrying, with backoff, while every node answers
    /// `UNAVAILABLE` (an election, a node without its lease). Zero: one pass over the
    /// endpoints.
    pub retry_for: Duration,
    /// Upper end of the first (full-jitter) pause between passes over the endpoints.
    pub first_backoff: Duration,
    /// Upper end of any pause between passes. A leader failover takes about 1.5 s with the
    /// server's defaults: with pauses up to 1 s a client noticed a new leader up to a second
    /// late; with 250 ms (the default) at most a quarter of a second.
    pub max_backoff: Duration,
    /// Bound on a whole call, retries included; `None`: no bound beyond `retry_for`.
    pub deadline: Option<Duration>,
    /// Plaintext bytes per frame of the envelope messages the client writes.
    pub frame_size: u32,
    /// Bounds of the data-key cache of [`Client::encrypt_envelope`]; `None`: no cache.
    pub data_key_cache: Option<CacheLimits>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoints", &self.endpoints)
            .field("region", &self.region)
            .field("key_pem", &"REDACTED")
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration reading the CA, certificate and key from PEM files.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be read, [`Error::Config`] if no endpoint is given.
    pub fn from_files(
        endpoints: Vec<String>,
        ca_cert: &Path,
        cert: &Path,
        key: &Path,
    ) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })
        };
        if endpoints.is_empty() {
            return Err(Error::Config {
                reason: "no endpoint given (set --addr or TESSERA_ADDR)".into(),
            });
        }
        let retry = RetryPolicy::default();
        Ok(Self {
            endpoints,
            region: None,
            ca_cert_pem: read(ca_cert)?,
            cert_pem: read(cert)?,
            key_pem: Zeroizing::new(read(key)?),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retry_for: retry.retry_for,
            first_backoff: retry.first_backoff,
            max_backoff: retry.max_backoff,
            deadline: None,
            frame_size: crate::envelope::DEFAULT_FRAME_SIZE,
            data_key_cache: None,
        })
    }
}

struct Node {
    endpoint: String,
    channel: Channel,
}

/// What one endpoint answered to `Status` (see [`Client::status_of_every_endpoint`]).
#[derive(Debug)]
pub struct EndpointStatus {
    /// The endpoint as configured, without its region.
    pub endpoint: String,
    /// Its region, if the configuration names one.
    pub region: Option<String>,
    /// The node's status, or why it did not answer.
    pub status: Result<pb::StatusResponse, Error>,
}

/// A connection to a Tessera cluster.
///
/// Cluster-wide calls (keys, crypto) fail over to the next endpoint when a node is
/// unreachable or cannot serve (`UNAVAILABLE`); writes carry a request id, so a retried write
/// is applied once. Node-scoped calls (seal, unseal, status) go to the first endpoint only.
pub struct Client {
    nodes: Vec<Node>,
    routing: Routing,
    request_timeout: Duration,
    retry: RetryPolicy,
    deadline: Option<Duration>,
    frame_size: u32,
    cache: Option<Arc<DataKeyCache>>,
}

impl Client {
    /// A builder: endpoints, certificates from files or PEM, timeouts, retry policy.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured by `TESSERA_ADDR`, `TESSERA_CA_CERT`, `TESSERA_CLIENT_CERT` and
    /// `TESSERA_CLIENT_KEY`, as the `tessera` command reads them (e.g. from the `env.sh` of
    /// `tessera dev`).
    ///
    /// # Errors
    /// [`Error::Missing`] naming an unset variable, [`Error::Io`] for an unreadable file.
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::from_env().build()
    }

    /// Prepares channels to every endpoint; connections are made on first use.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed endpoint.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&config.ca_cert_pem))
            .identity(Identity::from_pem(
                &config.cert_pem,
                config.key_pem.as_slice(),
            ));
        let mut nodes = Vec::with_capacity(config.endpoints.len());
        let mut regions = Vec::with_capacity(config.endpoints.len());
        for spec in &config.endpoints {
            let (region, endpoint) = routing::parse_endpoint(spec);
            regions.push(region);
            let endpoint = &endpoint;
            let uri = if endpoint.contains("://") {
                endpoint.clone()
            } else {
                format!("https://{endpoint}")
            };
            let bad = |e: tonic::transport::Error| Error::Config {
                reason: format!("endpoint {endpoint:?}: {e}"),
            };
            let channel = Endpoint::from_shared(uri)
                .map_err(bad)?
                .tls_config(tls.clone())
                .map_err(bad)?
                .connect_timeout(config.connect_timeout)
                .tcp_nodelay(true)
                .connect_lazy();
            nodes.push(Node {
                endpoint: endpoint.clone(),
                channel,
            });
        }
        if nodes.is_empty() {
            return Err(Error::Config {
                reason: "no endpoint given".into(),
            });
        }
        crate::envelope::check_frame_size(u64::from(config.frame_size))?;
        Ok(Self {
            nodes,
            routing: Routing::new(config.region.clone(), regions),
            request_timeout: config.request_timeout,
            retry: RetryPolicy {
                first_backoff: config.first_backoff,
                max_backoff: config.max_backoff,
                retry_for: config.retry_for,
            },
            deadline: config.deadline,
            frame_size: config.frame_size,
            cache: config
                .data_key_cache
                .map(|limits| Arc::new(DataKeyCache::new(limits))),
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.request_timeout);
        request
    }

    /// Calls the first endpoint only.
    async fn on_first<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let node = self.nodes.first().ok_or_else(|| Error::Config {
            reason: "no endpoint given".into(),
        })?;
        call(node.channel.clone())
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| Error::from_status(&node.endpoint, s))
    }

    /// Calls the preferred endpoint, failing over through the others once.
    ///
    /// `call` runs once per attempt: a write must build its message (with its request id)
    /// before, and clone it per attempt, so that every attempt carries the same request id and
    /// the cluster applies the write at most once.
    async fn with_failover<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let retrying = async {
            let stop = std::time::Instant::now() + self.retry.retry_for;
            let mut ceiling = self.retry.first_backoff;
            loop {
                match self.failover_pass(&call).await {
                    Err(error) if error.is_failover() && std::time::Instant::now() < stop => {
                        // Every node refused for now (no leader, no lease, unreachable): writes
                        // carry their request id, so trying again is safe.
                        tokio::time::sleep(full_jitter(ceiling)).await;
                        ceiling = ceiling.saturating_mul(2).min(self.retry.max_backoff);
                    }
                    other => return other,
                }
            }
        };
        match self.deadline {
            Some(after) => tokio::time::timeout(after, retrying)
                .await
                .unwrap_or(Err(Error::DeadlineExceeded { after })),
            None => retrying.await,
        }
    }

    /// One pass over the endpoints, in the order [`Routing::order`] gives: the client's region
    /// first, the node that answered last first in its group, failed nodes last.
    async fn failover_pass<T, F, Fut>(&self, call: &F) -> Result<T, Error>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut last = None;
        for index in self.routing.order(std::time::Instant::now()) {
            let Some(node) = self.nodes.get(index) else {
                continue;
            };
            match call(node.channel.clone()).await {
                Ok(response) => {
                    self.routing.succeeded(index);
                    return Ok(response.into_inner());
                }
                Err(status) => {
                    let error = Error::from_status(&node.endpoint, status);
                    if !error.is_failover() {
                        return Err(error);
                    }
                    self.routing.failed(index, std::time::Instant::now());
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Config {
            reason: "no endpoint given".into(),
        }))
    }

    /// A call with failover: `call` makes the RPC on a channel to one node. `message` is built
    /// once and cloned for each attempt, so every attempt of a write carries its request id.
    async fn call<M, T, F, Fut>(&self, message: M, call: F) -> Result<T, Error>
    where
        M: Clone,
        F: Fn(Channel, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.with_failover(|channel| call(channel, self.request(message.clone())))
            .await
    }

    /// A call answered with a [`pb::KeyResponse`], with failover: the key it carries.
    async fn key_call<M, F, Fut>(&self, message: M, call: F) -> Result<pb::Key, Error>
    where
        M: Clone,
        F: Fn(Channel, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<pb::KeyResponse>, tonic::Status>>,
    {
        self.call(message, call).await?.key.ok_or_else(missing_key)
    }

    /// A call to the first endpoint only (the node-scoped calls: status, seal, unseal, ...).
    async fn first_call<M, T, F, Fut>(&self, message: M, call: F) -> Result<T, Error>
    where
        F: FnOnce(Channel, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.on_first(|channel| call(channel, self.request(message)))
            .await
    }

    /// This node's status.
    ///
    /// # Errors
    /// [`Error`] from the first endpoint.
    pub async fn status(&self) -> Result<pb::StatusResponse, Error> {
        self.status_request(false).await
    }

    /// This node's status including the digest of its applied state (a full encoding of the
    /// state on the node: for comparing replicas, not for polling).
    ///
    /// # Errors
    /// [`Error`] from the first endpoint.
    pub async fn status_with_digest(&self) -> Result<pb::StatusResponse, Error> {
        self.status_request(true).await
    }

    /// Every configured endpoint's own status, asked of all at once, so that one dead node
    /// hides none of the others (what `tessera operator status` shows with several
    /// endpoints).
    pub async fn status_of_every_endpoint(&self) -> Vec<EndpointStatus> {
        let asks = self.nodes.iter().enumerate().map(|(index, node)| {
            let req = self.request(pb::StatusRequest {
                with_state_digest: false,
            });
            async move {
                let status = SystemClient::new(node.channel.clone())
                    .status(req)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| Error::from_status(&node.endpoint, s));
                EndpointStatus {
                    endpoint: node.endpoint.clone(),
                    region: self.routing.region(index).map(str::to_owned),
                    status,
                }
            }
        });
        futures::future::join_all(asks).await
    }

    /// The audit HMAC of `value` (hex), to search audit records for it. Needs `audit:Hash`.
    ///
    /// # Errors
    /// [`Error`]; `PERMISSION_DENIED` without the action, `FAILED_PRECONDITION` on a sealed
    /// node.
    pub async fn audit_hash(&self, value: &str) -> Result<String, Error> {
        let message = pb::AuditHashRequest {
            value: value.to_owned(),
        };
        self.first_call(message, |c, r| async move {
            SystemClient::new(c).audit_hash(r).await
        })
        .await
        .map(|r| r.hmac)
    }

    rpc_methods! {
        async fn status_request(&self, with_state_digest: bool) -> pb::StatusResponse
            = first_call(SystemClient::status, pb::StatusRequest { with_state_digest });

        /// Initialises the cluster; returns the unseal shares (shown once).
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` if already initialised.
        pub async fn init(&self, shares: u32, threshold: u32) -> pb::InitResponse
            = first_call(SystemClient::init, pb::InitRequest {
                shares,
                threshold,
                request_id: new_request_id(),
            });

        /// Submits one unseal share to the first endpoint's node.
        ///
        /// # Errors
        /// [`Error`]; a wrong share combination resets progress.
        pub async fn unseal(&self, share: &str) -> pb::UnsealResponse
            = first_call(SystemClient::unseal, pb::UnsealRequest {
                share: share.to_owned(),
                reset: false,
            });

        /// Discards the unseal progress of the first endpoint's node.
        ///
        /// # Errors
        /// [`Error`] from the node.
        pub async fn unseal_reset(&self) -> pb::UnsealResponse
            = first_call(SystemClient::unseal, pb::UnsealRequest {
                share: String::new(),
                reset: true,
            });

        /// Rotates the barrier keyring through the first endpoint's node (which must be
        /// unsealed), or with `retire_old` drops the terms older than the active one.
        ///
        /// # Errors
        /// [`Error`] from the node; `BARRIER_TERMS_IN_USE` while blobs still use old terms.
        pub async fn rotate_barrier(&self, retire_old: bool) -> pb::RotateBarrierResponse
            = first_call(SystemClient::rotate_barrier, pb::RotateBarrierRequest { retire_old });

        /// One rekey step on the first endpoint's node (start, submit an old share, cancel, or
        /// progress; see `System/Rekey`). Every step of one rekey must reach the same node.
        ///
        /// # Errors
        /// [`Error`] from the node.
        pub async fn rekey(&self, step: pb::RekeyRequest) -> pb::RekeyResponse
            = first_call(SystemClient::rekey, step);

        /// Seals the first endpoint's node.
        ///
        /// # Errors
        /// [`Error`] from the node.
        pub async fn seal(&self) -> pb::SealResponse
            = first_call(SystemClient::seal, pb::SealRequest {});
    }
}

fn missing_key() -> Error {
    Error::Status {
        code: crate::Code::Internal,
        message: "the server answered without a key".into(),
        tessera_code: None,
    }
}

/// A pause drawn uniformly from zero to `ceiling` ("full jitter"): clients that failed
/// together do not retry together.
fn full_jitter(ceiling: Duration) -> Duration {
    use tessera_crypto::rand_core::Rng;
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(tessera_crypto::os_rng().next_u64() % nanos.saturating_add(1))
}

/// A fresh random request id (a UUID-shaped hex string).
pub fn new_request_id() -> String {
    use tessera_crypto::rand_core::Rng;
    let mut bytes = [0u8; 16];
    tessera_crypto::os_rng().fill_bytes(&mut bytes);
    format!("req-{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// A client of one endpoint nothing listens on (port 9, discard), with a throw-away
    /// self-signed certificate as CA and identity.
    fn unreachable(retry_for: Duration) -> ClientBuilder {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        Client::builder()
            .endpoint("https://127.0.0.1:9")
            .ca_cert_pem(cert.cert.pem())
            .identity_pem(
                cert.cert.pem(),
                Zeroizing::new(cert.signing_key.serialize_pem().into_bytes()),
            )
            .retry(RetryPolicy {
                first_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(5),
                retry_for,
            })
    }

    #[tokio::test]
    async fn the_overall_deadline_cuts_retries_short() {
        let client = unreachable(Duration::from_secs(5))
            .deadline(Duration::from_millis(200))
            .build()
            .unwrap();
        let error = client.generate_random(8).await.unwrap_err();
        assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error}");
        assert_eq!(error.code_name(), "DEADLINE_EXCEEDED");
    }

    #[tokio::test]
    async fn without_retries_an_unreachable_node_fails_after_one_pass() {
        let client = unreachable(Duration::ZERO).build().unwrap();
        let error = client.generate_random(8).await.unwrap_err();
        assert!(matches!(error, Error::Connect { .. }), "{error}");
    }

    #[test]
    fn full_jitter_pauses_stay_within_their_ceiling() {
        let ceiling = Duration::from_millis(10);
        let pauses: Vec<_> = (0..200).map(|_| full_jitter(ceiling)).collect();
        assert!(pauses.iter().all(|p| *p <= ceiling));
        // Drawn, not fixed: 200 draws from 10^7 values are not all equal.
        assert!(pauses.iter().any(|p| *p != pauses[0]));
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }
}
