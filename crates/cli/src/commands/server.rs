//! `tessera server --config FILE`: run one node until SIGINT or SIGTERM (or, with
//! `--stop-on-stdin-eof`, until its standard input closes).

use std::path::Path;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use crate::output::Failure;

/// Runs a node.
///
/// # Errors
/// [`Failure::Usage`] for an invalid configuration, [`Failure::Local`] if the node fails.
pub async fn run(config: &Path, stop_on_stdin_eof: bool) -> Result<(), Failure> {
    let config =
        tessera_server::ServerConfig::load(config).map_err(|e| Failure::Usage(e.into()))?;
    let mut terminate = signal(SignalKind::terminate())
        .context("cannot install the SIGTERM handler")
        .map_err(Failure::Local)?;
    let stdin_closed = async move {
        if stop_on_stdin_eof {
            // Reads (and discards) until end of file or a read error: either way the
            // supervisor on the other end is gone.
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
            tracing::info!("standard input closed; shutting down");
        } else {
            std::future::pending::<()>().await;
        }
    };
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            _ = stdin_closed => {}
        }
    };
    tessera_server::run(config, shutdown)
        .await
        .map_err(|e| Failure::Local(e.into()))
}
