//! Arguments of `encrypt-file` and `decrypt-file`: envelope encryption of any size (see
//! `docs/envelope.md`).

use clap::Args;

use super::Connect;

/// `tessera encrypt-file`.
#[derive(Debug, Args)]
pub struct EncryptFileArgs {
    /// The key that wraps the message's data key: id, name or alias/NAME.
    #[arg(long)]
    pub key: String,
    /// Encryption context pair k=v (repeatable); decrypt-file needs the same pairs.
    #[arg(long = "context")]
    pub context: Vec<String>,
    /// Plaintext bytes per frame (memory use is a small multiple of it).
    #[arg(long, default_value_t = tessera_client::envelope::DEFAULT_FRAME_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(tessera_client::envelope::MAX_FRAME_SIZE)))]
    pub frame_size: u32,
    #[command(flatten)]
    pub files: Files,
    #[command(flatten)]
    pub connect: Connect,
}

/// `tessera decrypt-file`.
#[derive(Debug, Args)]
pub struct DecryptFileArgs {
    /// Encryption context pair k=v (repeatable): the pairs the file was encrypted with.
    #[arg(long = "context")]
    pub context: Vec<String>,
    #[command(flatten)]
    pub files: Files,
    #[command(flatten)]
    pub connect: Connect,
}

/// Where the data comes from and goes.
#[derive(Debug, Args)]
pub struct Files {
    /// Input file, or - for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: String,
    /// Output file, or - for stdout. A file is written under a temporary name in the same
    /// directory and renamed only once the whole message is done (decryption: authenticated);
    /// on error it is removed.
    #[arg(long = "out", default_value = "-")]
    pub output: String,
}
