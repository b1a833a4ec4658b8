//! `tessera key import-params|import|export`: key material in and out, always wrapped.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use serde_json::json;
use tessera_client::PRIMARY_VERSION;
use tessera_state::KeyVersion;

use crate::args::{Connect, OutputFormat};
use crate::commands::client;
use crate::output::{print_fields, print_json, print_key, rfc3339, Failure};
use crate::parse::{self, B64};

/// Runs `tessera key import-params`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn import_params(key: &str, connect: &Connect) -> Result<(), Failure> {
    let params = client(connect)?.get_import_parameters(key).await?;
    let expires_at = rfc3339(params.expires_at_ms);
    match connect.output.format {
        OutputFormat::Json => print_json(&json!({
            "key_id": params.key_id,
            "import_token": params.import_token,
            "public_key": B64.encode(&params.public_key),
            "public_key_pem": params.public_key_pem,
            "wrapping_algorithm": params.wrapping_algorithm,
            "expires_at": expires_at,
        })),
        OutputFormat::Text => {
            println!("key_id:             {}", params.key_id);
            println!("import_token:       {}", params.import_token);
            println!("wrapping_algorithm: {}", params.wrapping_algorithm);
            println!("expires_at:         {expires_at}");
            print!("{}", params.public_key_pem);
        }
    }
    Ok(())
}

/// Runs `tessera key import`: the wrapped material is read from `input`, raw or base64.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn import(key: &str, token: &str, input: &str, connect: &Connect) -> Result<(), Failure> {
    let wrapped = parse::base64_or_raw(&parse::read_input(input)?);
    let key = client(connect)?
        .import_key_material(key, token, &wrapped)
        .await?;
    print_key(&key, connect.output.format);
    Ok(())
}

/// Length of a raw X25519 public key.
const X25519_KEY_LEN: usize = 32;

/// The recipient's public key from `--wrapping-key`: PEM as is (the server reads it), 32 raw
/// bytes as is, else DER, or the base64 text of the raw key or the DER.
fn wrapping_key(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the wrapping key {}", path.display()))
        .map_err(Failure::Usage)?;
    if bytes.len() == X25519_KEY_LEN || bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        Ok(bytes)
    } else {
        Ok(parse::base64_or_raw(&bytes).to_vec())
    }
}

/// Runs `tessera key export`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn export(
    key: &str,
    version: Option<KeyVersion>,
    wrapping_key_path: &Path,
    connect: &Connect,
) -> Result<(), Failure> {
    let wrapping = wrapping_key(wrapping_key_path)?;
    let reply = client(connect)?
        .export_key(
            key,
            version.map_or(PRIMARY_VERSION, KeyVersion::get),
            &wrapping,
        )
        .await?;
    print_fields(
        connect.output.format,
        &[
            ("key_id", json!(reply.key_id)),
            ("version", json!(reply.version)),
            ("spec", json!(reply.spec)),
            ("wrapping_algorithm", json!(reply.wrapping_algorithm)),
            (
                "wrapped_material",
                json!(B64.encode(&reply.wrapped_material)),
            ),
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keys_may_be_pem_der_raw_or_base64() {
        let dir = tempfile::tempdir().unwrap();
        let pem = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n-----END PUBLIC KEY-----\n";
        // All base64 characters, yet 32 bytes: a raw key.
        let raw = [b'B'; 32];
        for (name, contents, expected) in [
            ("pem", pem.to_vec(), pem.to_vec()),
            ("raw", raw.to_vec(), raw.to_vec()),
            ("b64", B64.encode(raw).into_bytes(), raw.to_vec()),
            (
                "der",
                vec![0x30, 0x2a, 0x30, 0x05],
                vec![0x30, 0x2a, 0x30, 0x05],
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            assert_eq!(wrapping_key(&path).unwrap(), expected, "{name}");
        }
        assert!(matches!(
            wrapping_key(&dir.path().join("missing")),
            Err(Failure::Usage(_))
        ));
    }
}
