//! Offline maintenance of a stopped node's storage.

pub use tessera_raft::compact::{CompactError, CompactReport};

use crate::config::ServerConfig;

/// Compacts the database of the (stopped) node configured by `config`: only live data is
/// kept, so purged log entries, overwritten rows and destroyed key versions leave the disk.
///
/// # Errors
/// [`CompactError`]; a running node's database is refused.
pub fn compact(config: &ServerConfig) -> Result<CompactReport, CompactError> {
    tessera_raft::compact::compact(&config.data_dir)
}
