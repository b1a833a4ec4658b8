//! `tessera encrypt|decrypt|reencrypt|random`.

use std::io::Write;

use anyhow::Context;
use base64::Engine;
use serde_json::json;

use crate::args::{DecryptArgs, EncryptArgs, OutputFormat, RandomArgs, ReEncryptArgs};
use crate::commands::client;
use crate::output::{print_json, print_made, Failure};
use crate::parse::{self, B64};

/// Runs `tessera encrypt`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn encrypt(args: EncryptArgs) -> Result<(), Failure> {
    let context = parse::context(&args.context)?;
    let plaintext = parse::read_input(&args.input)?;
    let reply = client(&args.connect)?
        .encrypt(&args.key, &plaintext, &context)
        .await?;
    let document = json!({"key_id": reply.key_id, "version": reply.version});
    print_made(
        args.connect.output.format,
        "ciphertext",
        &reply.ciphertext,
        document,
    );
    Ok(())
}

/// Runs `tessera decrypt`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn decrypt(args: DecryptArgs) -> Result<(), Failure> {
    let context = parse::context(&args.context)?;
    let input = parse::read_input(&args.input)?;
    let ciphertext = parse::base64("the input", &input)?;
    let reply = client(&args.connect)?
        .decrypt(&ciphertext, &context)
        .await?;
    let plaintext = zeroize::Zeroizing::new(reply.plaintext);
    match args.connect.output.format {
        OutputFormat::Json => print_json(&json!({
            "plaintext": B64.encode(plaintext.as_slice()),
            "key_id": reply.key_id,
            "version": reply.version,
        })),
        OutputFormat::Text => write_stdout(&plaintext, "the plaintext")?,
    }
    Ok(())
}

/// Writes raw bytes to stdout.
///
/// # Errors
/// [`Failure::Local`] if stdout is closed.
pub fn write_stdout(bytes: &[u8], what: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .with_context(|| format!("cannot write {what} to stdout"))
        .map_err(Failure::Local)
}

/// Runs `tessera reencrypt`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn reencrypt(args: ReEncryptArgs) -> Result<(), Failure> {
    let context = parse::context(&args.context)?;
    let source_context = parse::pairs("--source-context", &args.source_context)?;
    let input = parse::read_input(&args.input)?;
    let ciphertext = parse::base64("the input", &input)?;
    let connect = args.connect;
    let reply = client(&connect)?
        .re_encrypt(
            &ciphertext,
            &source_context,
            args.key.as_deref().unwrap_or_default(),
            &context,
        )
        .await?;
    let document = json!({
        "key_id": reply.key_id,
        "version": reply.version,
        "source_key_id": reply.source_key_id,
        "source_version": reply.source_version,
    });
    print_made(
        connect.output.format,
        "ciphertext",
        &reply.ciphertext,
        document,
    );
    Ok(())
}

/// Runs `tessera random`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn random(args: RandomArgs) -> Result<(), Failure> {
    let reply = client(&args.connect)?.generate_random(args.bytes).await?;
    let random = zeroize::Zeroizing::new(B64.encode(&reply.random));
    match args.connect.output.format {
        OutputFormat::Json => print_json(&json!({ "random": random.as_str() })),
        OutputFormat::Text => println!("{}", random.as_str()),
    }
    Ok(())
}
