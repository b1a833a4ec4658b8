//! Arguments of the signature and MAC commands. Their `--key` names a Tessera key, so the
//! client key is given as `--client-key` (or `TESSERA_CLIENT_KEY`).

use clap::{Args, ValueEnum};
use tessera_state::KeyVersion;

use super::Connect;

/// The key and message of `sign` and `verify`.
#[derive(Debug, Args)]
pub struct SignedMessage {
    /// The asymmetric key: id, name or alias/NAME.
    #[arg(long)]
    pub key: String,
    /// ED25519, ECDSA_SHA_256 or ECDSA_SHA_384 (default: the key's).
    #[arg(long)]
    pub algorithm: Option<String>,
    /// The input is the message's digest (hex, base64 or raw), not the message.
    #[arg(long)]
    pub digest: bool,
    /// Input file with the message, or - for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: String,
}

/// `tessera sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub message: SignedMessage,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera verify`: exit status 1 when the signature is not valid.
#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub message: SignedMessage,
    /// The signature, base64.
    #[arg(long)]
    pub signature: String,
    /// The version that signed (default: the primary).
    #[arg(long)]
    pub version: Option<KeyVersion>,
    #[command(flatten)]
    pub connect: Connect,
}

/// How `public-key` prints the key in text mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PublicKeyFormat {
    /// PEM (`PUBLIC KEY`).
    Pem,
    /// Raw SubjectPublicKeyInfo DER bytes.
    Der,
}

/// `tessera public-key`.
#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct PublicKeyArgs {
    /// The asymmetric key: id, name or alias/NAME.
    pub key: String,
    /// The version (default: the primary).
    #[arg(long)]
    pub version: Option<KeyVersion>,
    /// Text output: PEM, or raw DER bytes (ignored with -o json).
    #[arg(long = "format", value_enum, default_value = "pem")]
    pub key_format: PublicKeyFormat,
    #[command(flatten)]
    pub connect: Connect,
}

/// The key and message of `mac` and `verify-mac`.
#[derive(Debug, Args)]
pub struct MacMessage {
    /// The HMAC key: id, name or alias/NAME.
    #[arg(long)]
    pub key: String,
    /// HMAC_SHA_256 or HMAC_SHA_512 (default: the key's).
    #[arg(long)]
    pub algorithm: Option<String>,
    /// Input file with the message, or - for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: String,
}

/// `tessera mac`.
#[derive(Debug, Args)]
pub struct MacArgs {
    #[command(flatten)]
    pub message: MacMessage,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera verify-mac`: exit status 1 when the MAC is not valid.
#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct VerifyMacArgs {
    #[command(flatten)]
    pub message: MacMessage,
    /// The MAC, base64.
    #[arg(long)]
    pub mac: String,
    /// The version that made the MAC (default: the primary).
    #[arg(long)]
    pub version: Option<KeyVersion>,
    #[command(flatten)]
    pub connect: Connect,
}
