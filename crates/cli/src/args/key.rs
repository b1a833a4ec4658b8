//! `tessera key …`: the key lifecycle.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use tessera_state::KeyVersion;

use super::Connect;
use crate::parse::{self, RotationPeriod};

/// Where a new key's material comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Origin {
    /// Tessera generates it.
    Tessera,
    /// It is imported later (`key import-params`, then `key import`).
    External,
}

/// `tessera key …`. KEY is a key id, a key name or alias/NAME.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key.
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Key spec: AES256_GCM, HMAC_SHA256, HMAC_SHA512, ED25519, ECDSA_P256 or ECDSA_P384.
        #[arg(long, default_value = "AES256_GCM")]
        spec: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Rotate automatically this often, e.g. 90d (default: only on request).
        #[arg(long, value_parser = parse::duration)]
        rotation_period: Option<Duration>,
        /// Allow the material to be exported later, wrapped to a caller's public key.
        #[arg(long)]
        exportable: bool,
        /// Where the material comes from: external means imported later.
        #[arg(long, value_enum, default_value = "tessera")]
        origin: Origin,
        /// Tag k=v (repeatable).
        #[arg(long = "tag", value_name = "K=V")]
        tags: Vec<String>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Show a key.
    Describe {
        /// The key.
        key: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// List keys, one page at a time unless --all.
    List {
        /// Only keys in this state (ENABLED, DISABLED, PENDING_DELETION, PENDING_IMPORT).
        #[arg(long)]
        state: Option<String>,
        /// Only keys of this spec.
        #[arg(long)]
        spec: Option<String>,
        /// Only keys carrying this tag (k), or this tag with this value (k=v).
        #[arg(long, value_name = "K[=V]")]
        tag: Option<String>,
        /// At most this many keys per page (server default 100, maximum 1000).
        #[arg(long)]
        page_size: Option<u32>,
        /// Continue after a previous page (its next_page_token).
        #[arg(long)]
        page_token: Option<String>,
        /// Follow the pages and list every matching key.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// Add a new primary version; older versions still decrypt and verify.
    Rotate {
        /// The key.
        key: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Enable a disabled key.
    Enable {
        /// The key.
        key: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Disable a key: it refuses every cryptographic operation until enabled.
    Disable {
        /// The key.
        key: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Schedule the key's destruction after a waiting window (server default: 30 days).
    ScheduleDeletion {
        /// The key.
        key: String,
        /// Waiting window in days.
        #[arg(long, conflicts_with = "window")]
        days: Option<u64>,
        /// Waiting window as a duration, e.g. 7d or 36h.
        #[arg(long, value_parser = parse::duration)]
        window: Option<Duration>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Cancel a scheduled deletion; the key comes back disabled.
    CancelDeletion {
        /// The key.
        key: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Refuse decryption with versions older than N.
    #[command(disable_version_flag = true)]
    SetMinDecryptionVersion {
        /// The key.
        key: String,
        /// The oldest version that may still decrypt.
        version: KeyVersion,
        #[command(flatten)]
        connect: Connect,
    },
    /// Destroy version N's material for good (crypto-shredding).
    #[command(disable_version_flag = true)]
    DestroyVersion {
        /// The key.
        key: String,
        /// The version.
        version: KeyVersion,
        #[command(flatten)]
        connect: Connect,
    },
    /// Enable version N again.
    #[command(disable_version_flag = true)]
    EnableVersion {
        /// The key.
        key: String,
        /// The version.
        version: KeyVersion,
        #[command(flatten)]
        connect: Connect,
    },
    /// Disable version N: it no longer decrypts, signs or verifies.
    #[command(disable_version_flag = true)]
    DisableVersion {
        /// The key.
        key: String,
        /// The version.
        version: KeyVersion,
        #[command(flatten)]
        connect: Connect,
    },
    /// Replace the key's description.
    SetDescription {
        /// The key.
        key: String,
        /// The new description.
        description: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Add tags (k=v…), replacing the values of tags the key already has.
    Tag {
        /// The key.
        key: String,
        /// Tags k=v.
        #[arg(required = true, value_name = "K=V")]
        tags: Vec<String>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Remove tags by tag key.
    Untag {
        /// The key.
        key: String,
        /// Tag keys.
        #[arg(required = true, value_name = "K")]
        tag_keys: Vec<String>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Set the automatic rotation period (e.g. 90d), or turn it off with `off`.
    SetRotationPeriod {
        /// The key.
        key: String,
        /// A duration such as 90d, or off.
        #[arg(value_parser = parse::rotation_period, value_name = "DURATION|off")]
        period: RotationPeriod,
        #[command(flatten)]
        connect: Connect,
    },
    /// A wrapping public key (X25519) and a single-use import token, for a key created with
    /// --origin external.
    ImportParams {
        /// The key.
        key: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Import key material, wrapped to the public key of `key import-params`, as the key's
    /// next version.
    Import {
        /// The key.
        key: String,
        /// The import token of `key import-params`.
        #[arg(long)]
        token: String,
        /// File with the wrapped material, raw or base64 (- for stdin).
        #[arg(long = "in")]
        input: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Export an exportable key's material, wrapped to an X25519 public key.
    #[command(disable_version_flag = true)]
    Export {
        /// The key.
        key: String,
        /// The version (default: the primary).
        #[arg(long)]
        version: Option<KeyVersion>,
        /// The recipient's X25519 public key: PEM, DER, or 32 raw bytes (or their base64).
        #[arg(long)]
        wrapping_key: PathBuf,
        #[command(flatten)]
        connect: Connect,
    },
}
