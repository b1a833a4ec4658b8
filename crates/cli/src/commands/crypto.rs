//! `tessera encrypt|decrypt`.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::{anyhow, Context};
use base64::Engine;
use serde_json::json;

use crate::cli::{DecryptArgs, EncryptArgs, OutputFormat};
use crate::commands::client;
use crate::output::{print_json, Failure};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Most bytes read from `--in` (the server's limits are lower; this only bounds memory).
const MAX_INPUT: u64 = 16 * 1024 * 1024;

fn read_input(input: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    let result = if input == "-" {
        std::io::stdin().take(MAX_INPUT).read_to_end(&mut buf)
    } else {
        std::fs::File::open(input).and_then(|f| f.take(MAX_INPUT).read_to_end(&mut buf))
    };
    result
        .with_context(|| format!("cannot read input {input}"))
        .map_err(Failure::Usage)?;
    Ok(buf)
}

/// Parses repeated `--context k=v` flags.
///
/// # Errors
/// [`Failure::Usage`] for a pair without `=` or a repeated key.
pub fn parse_context(pairs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut context = BTreeMap::new();
    for pair in pairs {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            Failure::Usage(anyhow!("--context {pair:?} is not of the form key=value"))
        })?;
        if context.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(Failure::Usage(anyhow!(
                "--context key {k:?} is given twice"
            )));
        }
    }
    Ok(context)
}

/// Runs `tessera encrypt`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn encrypt(args: EncryptArgs) -> Result<(), Failure> {
    let context = parse_context(&args.context)?;
    let plaintext = read_input(&args.input)?;
    let connect = args.connect.into();
    let reply = client(&connect)?
        .encrypt(&args.key, &plaintext, &context)
        .await?;
    let ciphertext = B64.encode(&reply.ciphertext);
    match connect.output.format {
        OutputFormat::Json => print_json(&json!({
            "ciphertext": ciphertext,
            "key_id": reply.key_id,
            "version": reply.version,
        })),
        OutputFormat::Text => println!("{ciphertext}"),
    }
    Ok(())
}

/// Runs `tessera decrypt`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn decrypt(args: DecryptArgs) -> Result<(), Failure> {
    let context = parse_context(&args.context)?;
    let input = read_input(&args.input)?;
    let text: String = String::from_utf8_lossy(&input)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let ciphertext = B64
        .decode(text.as_bytes())
        .map_err(|e| Failure::Usage(anyhow!("the input is not base64: {e}")))?;
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
        OutputFormat::Text => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&plaintext)
                .and_then(|()| stdout.flush())
                .context("cannot write the plaintext to stdout")
                .map_err(Failure::Local)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_pairs_parse() {
        let c = parse_context(&["a=1".into(), "b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(c["a"], "1");
        assert_eq!(c["b"], "x=y");
        assert_eq!(c["c"], "");
    }

    #[test]
    fn bad_context_pairs_are_usage_errors() {
        for bad in [
            vec!["novalue".to_string()],
            vec!["a=1".into(), "a=2".into()],
        ] {
            match parse_context(&bad) {
                Err(Failure::Usage(_)) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
