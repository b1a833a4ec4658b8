//! Arguments of the encryption, data key and randomness commands. Their `--key` names a
//! Tessera key, so the client key is given as `--client-key` (or `TESSERA_CLIENT_KEY`).

use clap::Args;

use super::Connect;

/// `tessera encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The key: id, name or alias/NAME.
    #[arg(long)]
    pub key: String,
    /// Encryption context pair k=v (repeatable); decrypt needs the same pairs.
    #[arg(long = "context")]
    pub context: Vec<String>,
    /// Input file, or - for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: String,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Encryption context pair k=v (repeatable).
    #[arg(long = "context")]
    pub context: Vec<String>,
    /// Input file with the base64 ciphertext, or - for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: String,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera reencrypt`.
#[derive(Debug, Args)]
pub struct ReEncryptArgs {
    /// Key for the new ciphertext (default: the ciphertext's own key, its primary version).
    #[arg(long)]
    pub key: Option<String>,
    /// Encryption context pair k=v for the new ciphertext (repeatable).
    #[arg(long = "context")]
    pub context: Vec<String>,
    /// Encryption context pair k=v the ciphertext was encrypted with (repeatable).
    #[arg(long = "source-context")]
    pub source_context: Vec<String>,
    /// Input file with the base64 ciphertext, or - for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: String,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera encrypt-batch`.
#[derive(Debug, Args)]
pub struct EncryptBatchArgs {
    /// The key: id, name or alias/NAME.
    #[arg(long)]
    pub key: String,
    /// Encryption context pair k=v for every item (repeatable).
    #[arg(long = "context")]
    pub context: Vec<String>,
    /// Input file with one base64 plaintext per line, or - for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: String,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera decrypt-batch`.
#[derive(Debug, Args)]
pub struct DecryptBatchArgs {
    /// Encryption context pair k=v for every item (repeatable).
    #[arg(long = "context")]
    pub context: Vec<String>,
    /// Input file with one base64 ciphertext per line, or - for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: String,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera datakey`.
#[derive(Debug, Args)]
pub struct DataKeyArgs {
    /// The key that encrypts the data key: id, name or alias/NAME.
    #[arg(long)]
    pub key: String,
    /// Data key spec.
    #[arg(long, default_value = "AES_256", value_parser = ["AES_256", "AES_128"])]
    pub spec: String,
    /// Return only the encrypted data key.
    #[arg(long)]
    pub no_plaintext: bool,
    /// Encryption context pair k=v (repeatable); decrypting the data key needs the same.
    #[arg(long = "context")]
    pub context: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera datakey-pair`.
#[derive(Debug, Args)]
pub struct DataKeyPairArgs {
    /// The key that encrypts the private key: id, name or alias/NAME.
    #[arg(long)]
    pub key: String,
    /// Key pair spec.
    #[arg(long, value_parser = ["ECC_NIST_P256", "ECC_NIST_P384", "ED25519"])]
    pub spec: String,
    /// Return only the encrypted private key.
    #[arg(long)]
    pub no_plaintext: bool,
    /// Encryption context pair k=v (repeatable); decrypting the private key needs the same.
    #[arg(long = "context")]
    pub context: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera random`.
#[derive(Debug, Args)]
pub struct RandomArgs {
    /// How many bytes (1..=1024).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub bytes: u32,
    #[command(flatten)]
    pub connect: Connect,
}
