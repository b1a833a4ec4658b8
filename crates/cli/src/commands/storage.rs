//! `tessera storage compact`: offline compaction of a stopped node's database.

use std::path::Path;

use serde_json::json;

use crate::args::OutputFormat;
use crate::output::{print_json, Failure};

/// Compacts the database of the node configured in `config`.
///
/// # Errors
/// [`Failure::Usage`] for an invalid configuration, [`Failure::Local`] if compaction fails
/// (for example because the node is still running).
pub fn compact(config: &Path, format: OutputFormat) -> Result<(), Failure> {
    let config =
        tessera_server::ServerConfig::load(config).map_err(|e| Failure::Usage(e.into()))?;
    let report =
        tessera_server::compact::compact(&config.data_dir).map_err(|e| Failure::Local(e.into()))?;
    match format {
        OutputFormat::Json => print_json(&json!({
            "data_dir": config.data_dir,
            "bytes_before": report.bytes_before,
            "bytes_after": report.bytes_after,
        })),
        OutputFormat::Text => println!(
            "compacted {}: {} bytes before, {} after",
            config.data_dir.display(),
            report.bytes_before,
            report.bytes_after
        ),
    }
    Ok(())
}
