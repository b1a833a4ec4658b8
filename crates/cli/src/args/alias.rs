//! `tessera alias …`. NAME may be given with or without the `alias/` prefix.

use clap::Subcommand;

use super::Connect;

/// `tessera alias …`.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Create alias NAME for KEY.
    Create {
        /// The alias: NAME or alias/NAME.
        name: String,
        /// The key: id, name or alias/NAME.
        key: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Point the existing alias NAME at KEY (a key of the same usage).
    Update {
        /// The alias: NAME or alias/NAME.
        name: String,
        /// The key: id, name or alias/NAME.
        key: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Delete alias NAME; the key is untouched.
    Delete {
        /// The alias: NAME or alias/NAME.
        name: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// List aliases (all, or those of --key KEY); the client key is --client-key here.
    List {
        /// Only the aliases of this key.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        connect: Connect,
    },
}
