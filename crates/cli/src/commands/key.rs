//! `tessera key create|describe|list|rotate`.

use serde_json::json;

use crate::cli::{KeyCommand, OutputFormat};
use crate::commands::client;
use crate::output::{key_json, key_text, print_json, Failure};

/// Runs a key command.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn run(command: KeyCommand) -> Result<(), Failure> {
    let (key, format) = match command {
        KeyCommand::Create {
            name,
            spec,
            description,
            connect,
        } => (
            client(&connect)?
                .create_key(&name, &spec, &description)
                .await?,
            connect.output.format,
        ),
        KeyCommand::Describe { key, connect } => (
            client(&connect)?.describe_key(&key).await?,
            connect.output.format,
        ),
        KeyCommand::Rotate { key, connect } => (
            client(&connect)?.rotate_key(&key).await?,
            connect.output.format,
        ),
        KeyCommand::List { connect } => {
            let keys = client(&connect)?.list_keys().await?;
            match connect.output.format {
                OutputFormat::Json => print_json(&json!({
                    "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
                })),
                OutputFormat::Text => {
                    for k in &keys {
                        println!(
                            "{}  {:<10} v{:<4} {}",
                            k.key_id, k.state, k.primary_version, k.name
                        );
                    }
                }
            }
            return Ok(());
        }
    };
    match format {
        OutputFormat::Json => print_json(&key_json(&key)),
        OutputFormat::Text => print!("{}", key_text(&key)),
    }
    Ok(())
}
