//! Starting and stopping a node process: bind both ports, start Raft, serve the API, enter
//! the cluster (bootstrap or join), publish the bound addresses, and shut down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tessera_proto::v1::access_server::AccessServer;
use tessera_proto::v1::crypto_server::CryptoServer;
use tessera_proto::v1::keys_server::KeysServer;
use tessera_proto::v1::system_server::SystemServer;
use tessera_raft::tls::{self, ServerTls, TlsIncoming};
use tessera_raft::{CoreStopped, NodeConfig, NodeInfo, RaftNode, StartError};
use tokio::net::TcpListener;

use crate::api::access::AccessService;
use crate::api::crypto::CryptoService;
use crate::api::keys::KeysService;
use crate::api::system::SystemService;
use crate::audit::layer::{AuditLayer, Shared};
use crate::audit::Auditor;
use crate::config::{ConfigError, ServerConfig};
use crate::node::Node;
use crate::ops::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::tls_reload::{api_files, cluster_files, TlsReloader};

/// Name of the file, in the data directory, where a running node publishes its addresses.
pub const ADDRESSES_FILE: &str = "addresses.json";

/// How long shutdown waits for client connections to drain, and then for Raft to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Failure to start a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The configuration cannot be used (checks that need the files it names).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory cannot be created or written.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A port cannot be bound.
    #[error("cannot listen on {addr} ({port} port): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Which port.
        port: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The SIGHUP handler (certificate reload) cannot be installed.
    #[error("cannot install the SIGHUP handler: {0}")]
    Signal(#[source] std::io::Error),
    /// The reflection service cannot be built (a build defect).
    #[error(transparent)]
    Reflection(#[from] crate::ops::grpc::ReflectionError),
    /// The audit trail cannot be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::sink::OpenError),
    /// Raft could not start.
    #[error(transparent)]
    Raft(#[from] StartError),
    /// The Raft core stopped while the node ran (for example a full disk made a log write
    /// fail). The node exits; restarting it on its data directory recovers the durable log.
    #[error("the Raft core stopped ({0}); restart the node once the cause is fixed")]
    RaftStopped(#[source] CoreStopped),
}

/// The addresses a running node publishes in [`ADDRESSES_FILE`].
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Addresses {
    /// Bound API address.
    pub api: SocketAddr,
    /// Bound cluster address.
    pub cluster: SocketAddr,
    /// Bound ops address, if the node has an ops port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<SocketAddr>,
    /// Process id.
    pub pid: u32,
}

/// Binds `addr` for `port`; returns the listener and the address it is bound to (the port
/// the kernel chose, for port 0).
async fn bind(
    addr: SocketAddr,
    port: &'static str,
) -> Result<(TcpListener, SocketAddr), LaunchError> {
    let error = |source| LaunchError::Bind { addr, port, source };
    let listener = TcpListener::bind(addr).await.map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    Ok((listener, bound))
}

fn create_data_dir(path: &Path) -> Result<(), LaunchError> {
    let err = |source| LaunchError::DataDir {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

fn write_addresses(data_dir: &Path, addresses: &Addresses) -> Result<(), LaunchError> {
    let err = |source| LaunchError::DataDir {
        path: data_dir.to_owned(),
        source,
    };
    let json = serde_json::to_vec_pretty(addresses).map_err(|e| err(std::io::Error::other(e)))?;
    let tmp = data_dir.join(format!("{ADDRESSES_FILE}.tmp"));
    std::fs::write(&tmp, json).map_err(err)?;
    std::fs::rename(&tmp, data_dir.join(ADDRESSES_FILE)).map_err(err)
}

/// Runs a node until `shutdown` resolves or its Raft core stops.
///
/// Refuses to start when the node CA and client CA bundles share a certificate or a public
/// key ([`crate::config::TlsSection::check_ca_separation`]).
///
/// # Errors
/// [`LaunchError`] if the node cannot start, or [`LaunchError::RaftStopped`] if its Raft core
/// stopped while it ran.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), LaunchError> {
    config.tls.check_ca_separation()?;
    tls::install_crypto_provider();
    let open_files = crate::limits::raise_open_file_limit();
    create_data_dir(&config.data_dir)?;
    let stale = config.data_dir.join(ADDRESSES_FILE);
    if stale.exists() {
        std::fs::remove_file(&stale).map_err(|source| LaunchError::DataDir {
            path: stale.clone(),
            source,
        })?;
    }
    // Opened before anything serves, so a node whose audit trail cannot continue never starts.
    let auditor = Auditor::start(
        &config.audit,
        &config.data_dir,
        config.node_id,
        &config.region,
    )?;
    let (api_listener, api_addr) = bind(config.api.listen, "api").await?;
    let (cluster_listener, cluster_addr) = bind(config.cluster.listen, "cluster").await?;
    let (ops_listener, ops_addr) = match &config.ops {
        Some(ops) => {
            let (listener, addr) = bind(ops.listen, "ops").await?;
            (Some(listener), Some(addr))
        }
        None => (None, None),
    };
    let hangups = crate::tls_reload::hangups().map_err(LaunchError::Signal)?;
    let (reflection_v1, reflection_v1alpha) = crate::ops::grpc::reflection()?;
    let info = NodeInfo {
        api_addr: config
            .api
            .advertise
            .clone()
            .unwrap_or_else(|| api_addr.to_string()),
        cluster_addr: config
            .cluster
            .advertise
            .clone()
            .unwrap_or_else(|| cluster_addr.to_string()),
        region: config.region.clone(),
        zone: config.zone.clone(),
    };
    let raft = RaftNode::start(
        NodeConfig {
            id: config.node_id,
            info,
            data_dir: config.data_dir.clone(),
            tls: cluster_files(&config.tls),
            settings: config.raft.settings(),
            dial: config.cluster.dial.clone(),
            accept: config.limits.cluster_accept(),
        },
        cluster_listener,
    )
    .await?;
    let init_identities = config.init_identities();
    if init_identities.is_empty() {
        tracing::warn!(
            "init_identities is empty: any holder of a client certificate may initialise an uninitialised cluster and become its administrator"
        );
    }
    let node = Node::new(raft, config.lifecycle.clone()).with_init_identities(init_identities);
    #[cfg(feature = "fault-injection")]
    let node = node.with_faults(config.faults.clone());
    let node = Arc::new(node);
    let jobs = tokio::spawn(crate::jobs::run(
        Arc::clone(&node),
        Duration::from_millis(config.lifecycle.job_interval_ms),
    ));

    let restores = tokio::spawn(crate::api::snapshot::seal_after_restores(Arc::clone(&node)));
    let metrics = Arc::new(Metrics::new(&config.data_dir));
    let leader_changes = tokio::spawn(crate::ops::metrics::count_leader_changes(
        Arc::clone(&node),
        Arc::clone(&metrics),
    ));
    let audit = AuditLayer::new(Shared {
        auditor,
        limiter: RateLimiter::new(&config.rate_limits),
        node: Arc::clone(&node),
        metrics: Arc::clone(&metrics),
    });
    let (api_tls_sender, api_tls) =
        ServerTls::reloadable(tls::server_config(&api_files(&config.tls))?);
    let reloader = tokio::spawn(
        TlsReloader::new(
            config.tls.clone(),
            api_tls_sender,
            Some(Arc::clone(&node)),
            Some(Arc::clone(&metrics)),
        )
        .run(hangups),
    );
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let health = tokio::spawn(crate::ops::grpc::follow_readiness(
        Arc::clone(&node),
        health_reporter,
    ));
    let api_accept = config.limits.api_accept(open_files);
    tracing::info!(
        max_connections = ?api_accept.max_connections,
        reserve = config.limits.fd_reserve,
        "API port connection budget"
    );
    let mut api_server = config.limits.api_server(audit);
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn({
        let node = Arc::clone(&node);
        async move {
            let result = api_server
                .add_service(SystemServer::new(SystemService::new(Arc::clone(&node))))
                .add_service(KeysServer::new(KeysService::new(Arc::clone(&node))))
                .add_service(AccessServer::new(AccessService::new(Arc::clone(&node))))
                .add_service(CryptoServer::new(CryptoService::new(node)))
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .serve_with_incoming_shutdown(
                    TlsIncoming::new(api_listener, api_tls, "api", api_accept),
                    async {
                        // Either an explicit stop or the sender being dropped ends serving.
                        let _ = api_stopped.await;
                    },
                )
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "API port stopped");
            }
        }
    });

    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops = ops_listener.map(|listener| {
        if ops_addr.is_some_and(|addr| !addr.ip().is_loopback()) {
            tracing::warn!(
                ?ops_addr,
                "the ops port (plain HTTP, no authentication) listens beyond loopback"
            );
        }
        tokio::spawn(crate::ops::http::serve(
            listener,
            Arc::clone(&node),
            Arc::clone(&metrics),
            async {
                let _ = ops_stopped.await;
            },
        ))
    });

    write_addresses(
        &config.data_dir,
        &Addresses {
            api: api_addr,
            cluster: cluster_addr,
            ops: ops_addr,
            pid: std::process::id(),
        },
    )?;
    tracing::info!(node_id = config.node_id.get(), %api_addr, %cluster_addr, ?ops_addr, region = %config.region, "node started (sealed)");

    let enter = {
        let node = Arc::clone(&node);
        let bootstrap = config.cluster.bootstrap;
        let seeds = config.cluster.join.clone();
        tokio::spawn(async move {
            let result = if bootstrap {
                node.raft().bootstrap().await
            } else if !seeds.is_empty() {
                node.raft().join(&seeds).await
            } else {
                Ok(())
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "could not enter the cluster");
            }
        })
    };

    let raft_stopped = tokio::select! {
        () = shutdown => None,
        reason = node.raft().stopped() => Some(reason),
    };
    match &raft_stopped {
        None => tracing::info!("shutting down"),
        Some(reason) => tracing::error!(
            %reason,
            "the Raft core stopped; shutting down so that the node can be restarted on its data directory"
        ),
    }
    enter.abort();
    for task in [jobs, reloader, health, leader_changes, restores] {
        task.abort();
        let _ = task.await;
    }
    let _ = stop_ops.send(());
    if let Some(ops) = ops {
        let ops_abort = ops.abort_handle();
        match tokio::time::timeout(SHUTDOWN_GRACE, ops).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "ops port stopped with an error"),
            Err(_) => ops_abort.abort(),
            Ok(_) => {}
        }
    }
    // Graceful shutdown waits for open client connections; clients with idle keep-alive
    // connections must not hold the process forever.
    let _ = stop_api.send(());
    let api_abort = api.abort_handle();
    if tokio::time::timeout(SHUTDOWN_GRACE, api).await.is_err() {
        tracing::info!("closing client connections that did not drain in time");
        api_abort.abort();
    }
    match Arc::try_unwrap(node) {
        Ok(node) => {
            if tokio::time::timeout(SHUTDOWN_GRACE, node.into_raft().shutdown())
                .await
                .is_err()
            {
                tracing::warn!("Raft did not shut down in time; exiting anyway");
            }
        }
        Err(_) => tracing::warn!("API handlers still hold the node; exiting without Raft shutdown"),
    }
    raft_stopped.map_or(Ok(()), |reason| Err(LaunchError::RaftStopped(reason)))
}
