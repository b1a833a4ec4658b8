//! `tessera sign|verify|public-key|mac|verify-mac`.
//!
//! `verify` and `verify-mac` print their result document, then exit with status 1 when the
//! signature or MAC is not valid, so that scripts can test them with `if`.

use base64::Engine;
use serde_json::json;
use tessera_client::proto as pb;
use tessera_client::PRIMARY_VERSION;
use tessera_state::KeyVersion;

use crate::args::{
    MacArgs, OutputFormat, PublicKeyArgs, PublicKeyFormat, SignArgs, SignedMessage, VerifyArgs,
    VerifyMacArgs,
};
use crate::commands::client;
use crate::commands::crypto::write_stdout;
use crate::output::{print_json, print_made, Failure};
use crate::parse::{self, B64};

/// The message to sign or verify: the input itself, or with `--digest` the digest it holds
/// (hex, base64 or raw).
fn signed_message(args: &SignedMessage) -> Result<Vec<u8>, Failure> {
    let bytes = parse::read_input(&args.input)?;
    Ok(if args.digest {
        parse::digest(&bytes)
    } else {
        bytes.to_vec()
    })
}

/// Prints what `sign` or `mac` made (`made`, base64, under `field`) with the key version and
/// algorithm that made it.
fn print_made_by(
    format: OutputFormat,
    field: &str,
    made: &[u8],
    (key_id, version, algorithm): (&str, u32, &str),
) {
    let document = json!({
        "key_id": key_id,
        "version": version,
        "algorithm": algorithm,
    });
    print_made(format, field, made, document);
}

/// Runs `tessera sign`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn sign(args: SignArgs) -> Result<(), Failure> {
    let message = signed_message(&args.message)?;
    let reply = client(&args.connect)?
        .sign(
            &args.message.key,
            &message,
            args.message.digest,
            args.message.algorithm.as_deref().unwrap_or_default(),
        )
        .await?;
    print_made_by(
        args.connect.output.format,
        "signature",
        &reply.signature,
        (&reply.key_id, reply.version, &reply.algorithm),
    );
    Ok(())
}

/// The answer of a verification call.
trait Verification {
    /// How messages name what was checked.
    const CHECKED: &'static str;
    /// The stable code of a check that failed.
    const INVALID_CODE: &'static str;
    /// Whether it held, and for which key and version.
    fn outcome(&self) -> (bool, &str, u32);
}

impl Verification for pb::VerifyResponse {
    const CHECKED: &'static str = "signature";
    const INVALID_CODE: &'static str = "INVALID_SIGNATURE";
    fn outcome(&self) -> (bool, &str, u32) {
        (self.valid, &self.key_id, self.version)
    }
}

impl Verification for pb::VerifyMacResponse {
    const CHECKED: &'static str = "MAC";
    const INVALID_CODE: &'static str = "INVALID_MAC";
    fn outcome(&self) -> (bool, &str, u32) {
        (self.valid, &self.key_id, self.version)
    }
}

/// Prints a verification result `{"valid","key_id","version"}`; an invalid one then becomes
/// [`Failure::Invalid`] (exit status 1).
fn verdict<V: Verification>(reply: &V, format: OutputFormat) -> Result<(), Failure> {
    let (valid, key_id, version) = reply.outcome();
    let what = V::CHECKED;
    match format {
        OutputFormat::Json => print_json(&json!({
            "valid": valid,
            "key_id": key_id,
            "version": version,
        })),
        OutputFormat::Text if valid => {
            println!("The {what} is valid (key {key_id}, version {version}).");
        }
        OutputFormat::Text => {}
    }
    if valid {
        Ok(())
    } else {
        Err(Failure::Invalid {
            tessera_code: V::INVALID_CODE,
            message: format!("the {what} is not valid for key {key_id} version {version}"),
        })
    }
}

/// Runs `tessera verify`; exit status 1 when the signature is not valid.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let signature = parse::base64("--signature", args.signature.as_bytes())?;
    let message = signed_message(&args.message)?;
    let reply = client(&args.connect)?
        .verify(
            &args.message.key,
            &message,
            args.message.digest,
            &signature,
            args.message.algorithm.as_deref().unwrap_or_default(),
            args.version.map_or(PRIMARY_VERSION, KeyVersion::get),
        )
        .await?;
    verdict(&reply, args.connect.output.format)
}

/// Runs `tessera public-key`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn public_key(args: PublicKeyArgs) -> Result<(), Failure> {
    let reply = client(&args.connect)?
        .get_public_key(
            &args.key,
            args.version.map_or(PRIMARY_VERSION, KeyVersion::get),
        )
        .await?;
    match (args.connect.output.format, args.key_format) {
        (OutputFormat::Json, _) => print_json(&json!({
            "key_id": reply.key_id,
            "version": reply.version,
            "spec": reply.spec,
            "public_key": B64.encode(&reply.public_key),
            "public_key_pem": reply.public_key_pem,
            "signing_algorithms": reply.signing_algorithms,
        })),
        (OutputFormat::Text, PublicKeyFormat::Pem) => print!("{}", reply.public_key_pem),
        (OutputFormat::Text, PublicKeyFormat::Der) => {
            write_stdout(&reply.public_key, "the public key")?;
        }
    }
    Ok(())
}

/// Runs `tessera mac`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn mac(args: MacArgs) -> Result<(), Failure> {
    let message = parse::read_input(&args.message.input)?;
    let reply = client(&args.connect)?
        .generate_mac(
            &args.message.key,
            &message,
            args.message.algorithm.as_deref().unwrap_or_default(),
        )
        .await?;
    print_made_by(
        args.connect.output.format,
        "mac",
        &reply.mac,
        (&reply.key_id, reply.version, &reply.algorithm),
    );
    Ok(())
}

/// Runs `tessera verify-mac`; exit status 1 when the MAC is not valid.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn verify_mac(args: VerifyMacArgs) -> Result<(), Failure> {
    let mac = parse::base64("--mac", args.mac.as_bytes())?;
    let message = parse::read_input(&args.message.input)?;
    let reply = client(&args.connect)?
        .verify_mac(
            &args.message.key,
            &message,
            &mac,
            args.message.algorithm.as_deref().unwrap_or_default(),
            args.version.map_or(PRIMARY_VERSION, KeyVersion::get),
        )
        .await?;
    verdict(&reply, args.connect.output.format)
}
