//! `tessera policy …`, `tessera grant …` and `tessera cert …`: who may do what.
//!
//! The commands whose `--key` names a Tessera key (`policy check`, `grant create`,
//! `grant list`) take the client key as `--client-key`, like the crypto commands.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::Connect;
use crate::parse;

/// `tessera policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create or replace policy NAME from FILE (JSON or TOML: from the extension .json or
    /// .toml, otherwise whichever parses).
    Put {
        /// The policy's name.
        name: String,
        /// The document file (`-`: stdin, format detected).
        file: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Show policy NAME and its document.
    Get {
        /// The policy's name.
        name: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// List the policies.
    List {
        #[command(flatten)]
        connect: Connect,
    },
    /// Delete policy NAME.
    Delete {
        /// The policy's name.
        name: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Explain how the policies and grants decide a request (the client key is --client-key).
    Check(PolicyCheckArgs),
    /// Per-identity request budgets, replicated cluster-wide.
    #[command(subcommand)]
    RateLimit(RateLimitCommand),
}

/// `tessera policy rate-limit …`.
#[derive(Debug, Subcommand)]
pub enum RateLimitCommand {
    /// Set the budgets of the identities IDENTITY (a glob) matches; classes not given keep
    /// each node's configured budget. The most specific matching rule wins.
    Put {
        /// Identity glob, e.g. `app` or `spiffe://prod/batch-*`.
        identity: String,
        /// Crypto operations: RATE[/BURST] per second (0 refuses).
        #[arg(long, value_parser = parse::budget, value_name = "RATE[/BURST]")]
        crypto: Option<tessera_client::Budget>,
        /// Key management: RATE[/BURST] per second.
        #[arg(long, value_parser = parse::budget, value_name = "RATE[/BURST]")]
        keys: Option<tessera_client::Budget>,
        /// Operator and access administration: RATE[/BURST] per second.
        #[arg(long, value_parser = parse::budget, value_name = "RATE[/BURST]")]
        operator: Option<tessera_client::Budget>,
        #[command(flatten)]
        connect: Connect,
    },
    /// List the rules.
    List {
        #[command(flatten)]
        connect: Connect,
    },
    /// Delete the rule whose pattern is exactly IDENTITY.
    Delete {
        /// The rule's identity pattern.
        identity: String,
        #[command(flatten)]
        connect: Connect,
    },
}

/// `tessera policy check`.
#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// The identity asking, e.g. `app` or `spiffe://prod/billing`.
    #[arg(long)]
    pub identity: String,
    /// The action, e.g. `kms:Encrypt`.
    #[arg(long)]
    pub action: String,
    /// The key: id, name or alias/NAME (omit for actions that name no key).
    #[arg(long)]
    pub key: Option<String>,
    /// Encryption context k=v of the request (repeatable).
    #[arg(long = "context", value_name = "K=V")]
    pub context: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera grant …`.
#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Allow IDENTITY some operations on one key (the client key is --client-key).
    Create(GrantCreateArgs),
    /// List grants, all or those of --key KEY (the client key is --client-key).
    List {
        /// Only the grants on this key.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Revoke grant ID at once.
    Revoke {
        /// The grant's id.
        id: String,
        #[command(flatten)]
        connect: Connect,
    },
}

/// `tessera grant create`.
#[derive(Debug, Args)]
pub struct GrantCreateArgs {
    /// The key: id, name or alias/NAME.
    #[arg(long)]
    pub key: String,
    /// The identity that may use the grant (exact, not a glob).
    #[arg(long)]
    pub grantee: String,
    /// The operations, comma-separated, e.g. kms:Decrypt,kms:Encrypt.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub operations: Vec<String>,
    /// The grant stops allowing anything after this long, e.g. 1h or 30d.
    #[arg(long, value_parser = parse::duration)]
    pub expires: Option<Duration>,
    /// The request's encryption context must be exactly these k=v pairs (repeatable).
    #[arg(long = "context", value_name = "K=V")]
    pub context: Vec<String>,
    /// The context must contain the --context pairs and may hold more.
    #[arg(long, requires = "context")]
    pub context_subset: bool,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera cert …`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Refuse a client certificate on every node, by serial or SHA-256 fingerprint.
    Revoke(CertRevokeArgs),
    /// List the revoked certificates.
    ListRevoked {
        #[command(flatten)]
        connect: Connect,
    },
}

/// `tessera cert revoke`: exactly one of `--serial` and `--fingerprint`.
#[derive(Debug, Args)]
#[group(id = "certificate", required = true, multiple = false, args = ["serial", "fingerprint"])]
pub struct CertRevokeArgs {
    /// The certificate's serial number in hex (colons allowed).
    #[arg(long)]
    pub serial: Option<String>,
    /// The SHA-256 fingerprint of the certificate's DER, in hex (colons allowed).
    #[arg(long)]
    pub fingerprint: Option<String>,
    #[command(flatten)]
    pub connect: Connect,
}
