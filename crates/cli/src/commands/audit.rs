//! `tessera audit verify` and `tessera audit hash`.

use std::path::PathBuf;

use serde_json::json;
use tessera_server::audit::chain::{verify_files, VerifyError};

use crate::args::{Connect, OutputFormat};
use crate::commands::client;
use crate::output::{print_json, Failure};

/// Stable code of a broken chain.
const CHAIN_BROKEN: &str = "AUDIT_CHAIN_BROKEN";

/// Verifies `files` (oldest first) as one hash chain.
///
/// # Errors
/// [`Failure::Invalid`] naming the first broken record (after printing the result document),
/// [`Failure::Usage`] for a file that cannot be read.
pub fn verify(files: &[PathBuf], format: OutputFormat) -> Result<(), Failure> {
    match verify_files(files) {
        Ok(verified) => {
            match format {
                OutputFormat::Json => print_json(&json!({
                    "valid": true,
                    "files": verified.files,
                    "records": verified.records,
                    "first_seq": verified.first_seq,
                    "anchor": verified.anchor,
                    "last_hash": verified.last_hash,
                })),
                OutputFormat::Text => println!(
                    "valid: {} records in {} files, one chain (first seq {}, last hash {})",
                    verified.records,
                    verified.files,
                    verified
                        .first_seq
                        .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    verified.last_hash.as_deref().unwrap_or("-"),
                ),
            }
            Ok(())
        }
        Err(e @ VerifyError::Read { .. }) => Err(Failure::Usage(e.into())),
        Err(VerifyError::Broken { file, line, reason }) => {
            let message = format!("{}:{line}: {reason}", file.display());
            match format {
                OutputFormat::Json => print_json(&json!({
                    "valid": false,
                    "file": file,
                    "line": line,
                    "reason": reason,
                })),
                OutputFormat::Text => println!("broken: {message}"),
            }
            Err(Failure::Invalid {
                tessera_code: CHAIN_BROKEN,
                message: format!("the audit chain is broken at {message}"),
            })
        }
    }
}

/// Prints the audit HMAC of `value`, computed by a node.
///
/// # Errors
/// [`Failure::Refused`] if the node refuses (no `audit:Hash`, sealed).
pub async fn hash(value: &str, connect: Connect) -> Result<(), Failure> {
    let hmac = client(&connect)?.audit_hash(value).await?;
    match connect.output.format {
        OutputFormat::Json => print_json(&json!({ "hmac": hmac })),
        OutputFormat::Text => println!("{hmac}"),
    }
    Ok(())
}
