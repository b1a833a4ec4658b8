//! `tessera encrypt-batch|decrypt-batch`: many items in few calls, one result per input line.

use anyhow::anyhow;
use base64::Engine;
use serde_json::{json, Value};
use tessera_client::proto as pb;
use zeroize::Zeroizing;

use crate::args::{DecryptBatchArgs, EncryptBatchArgs, OutputFormat};
use crate::commands::client;
use crate::output::{print_json, Failure};
use crate::parse::{self, B64};

/// Most items the server takes in one batch call.
const MAX_BATCH: usize = 256;

/// The base64 items of the input, one per non-empty line, decoded.
///
/// # Errors
/// [`Failure::Usage`] naming the first line that is not base64.
fn lines(input: &[u8]) -> Result<Vec<Zeroizing<Vec<u8>>>, Failure> {
    input
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.trim_ascii().is_empty())
        .map(|(index, line)| {
            B64.decode(line.trim_ascii())
                .map(Zeroizing::new)
                .map_err(|e| Failure::Usage(anyhow!("line {} is not base64: {e}", index + 1)))
        })
        .collect()
}

/// The JSON form of one failed item.
fn item_error(error: &pb::ItemError) -> Value {
    json!({"error": {
        "code": error.code,
        "message": error.message,
        "tessera_code": error.tessera_code,
    }})
}

fn print_results(results: &[Value], format: OutputFormat) {
    match format {
        OutputFormat::Json => print_json(&json!({ "results": results })),
        OutputFormat::Text => {
            for result in results {
                if let Some(error) = result.get("error") {
                    println!(
                        "error: {} {}",
                        error
                            .get("code")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                        error
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    );
                } else if let Some(text) = result
                    .get("ciphertext")
                    .or_else(|| result.get("plaintext"))
                    .and_then(Value::as_str)
                {
                    println!("{text}");
                }
            }
        }
    }
}

/// The result of an item the server answered without a result.
fn missing_result() -> Value {
    json!({"error": {
        "code": "INTERNAL",
        "message": "the server answered without a result for this item",
        "tessera_code": "",
    }})
}

/// Runs `tessera encrypt-batch`. The exit status is 0 when the calls succeed, even if some
/// items failed: each failure is in its item's result.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn encrypt(args: EncryptBatchArgs) -> Result<(), Failure> {
    let context = parse::context(&args.context)?;
    let items = lines(&parse::read_input(&args.input)?)?;
    let connect = args.connect;
    let client = client(&connect)?;
    let mut results = Vec::with_capacity(items.len());
    for chunk in items.chunks(MAX_BATCH) {
        let requests = chunk
            .iter()
            .map(|plaintext| pb::EncryptRequest {
                key: args.key.clone(),
                plaintext: plaintext.to_vec(),
                context: context.clone(),
            })
            .collect();
        let reply = client.batch_encrypt(requests).await?;
        results.extend(reply.results.iter().map(|item| match &item.result {
            Some(pb::batch_encrypt_result::Result::Ok(ok)) => json!({
                "ciphertext": B64.encode(&ok.ciphertext),
                "key_id": ok.key_id,
                "version": ok.version,
            }),
            Some(pb::batch_encrypt_result::Result::Error(error)) => item_error(error),
            None => missing_result(),
        }));
    }
    print_results(&results, connect.output.format);
    Ok(())
}

/// Runs `tessera decrypt-batch`. The exit status is 0 when the calls succeed, even if some
/// items failed: each failure is in its item's result. Plaintexts are printed in base64.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn decrypt(args: DecryptBatchArgs) -> Result<(), Failure> {
    let context = parse::context(&args.context)?;
    let items = lines(&parse::read_input(&args.input)?)?;
    let client = client(&args.connect)?;
    let mut results = Vec::with_capacity(items.len());
    for chunk in items.chunks(MAX_BATCH) {
        let requests = chunk
            .iter()
            .map(|ciphertext| pb::DecryptRequest {
                ciphertext: ciphertext.to_vec(),
                context: context.clone(),
            })
            .collect();
        let reply = client.batch_decrypt(requests).await?;
        results.extend(reply.results.into_iter().map(|item| match item.result {
            Some(pb::batch_decrypt_result::Result::Ok(ok)) => {
                let plaintext = Zeroizing::new(ok.plaintext);
                json!({
                    "plaintext": B64.encode(plaintext.as_slice()),
                    "key_id": ok.key_id,
                    "version": ok.version,
                })
            }
            Some(pb::batch_decrypt_result::Result::Error(error)) => item_error(&error),
            None => missing_result(),
        }));
    }
    print_results(&results, args.connect.output.format);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_the_non_empty_lines() {
        let items = lines(b"aGVsbG8=\n\n  d29ybGQ=  \r\n").unwrap();
        let items: Vec<&[u8]> = items.iter().map(|i| i.as_slice()).collect();
        assert_eq!(items, [b"hello".as_slice(), b"world".as_slice()]);
        assert!(lines(b"").unwrap().is_empty());
    }

    #[test]
    fn a_line_that_is_not_base64_is_bad_usage() {
        match lines(b"aGVsbG8=\n%%%\n") {
            Err(Failure::Usage(e)) => assert!(e.to_string().contains("line 2"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
