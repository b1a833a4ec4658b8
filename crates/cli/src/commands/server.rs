//! `tessera server --config FILE`: run one node until SIGINT or SIGTERM.

use std::path::Path;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use crate::output::Failure;

/// Runs a node.
///
/// # Errors
/// [`Failure::Usage`] for an invalid configuration, [`Failure::Local`] if the node fails.
pub async fn run(config: &Path) -> Result<(), Failure> {
    let config =
        tessera_server::ServerConfig::load(config).map_err(|e| Failure::Usage(e.into()))?;
    let mut terminate = signal(SignalKind::terminate())
        .context("cannot install the SIGTERM handler")
        .map_err(Failure::Local)?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    tessera_server::run(config, shutdown)
        .await
        .map_err(|e| Failure::Local(e.into()))
}
