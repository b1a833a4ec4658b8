//! `tessera key …`: the key lifecycle.

mod material;

use std::time::Duration;

use serde_json::json;
use tessera_client::proto as pb;
use tessera_client::CreateKeyOptions;

use crate::args::{KeyCommand, Origin, OutputFormat};
use crate::commands::client;
use crate::output::{key_json, print_json, print_key, Failure};
use crate::parse;

/// Seconds in a day, for `--days`.
const DAY_SECONDS: u64 = 86_400;

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
            rotation_period,
            exportable,
            origin,
            tags,
            connect,
        } => {
            let options = CreateKeyOptions {
                spec,
                description,
                rotation_period,
                exportable,
                origin_external: origin == Origin::External,
                tags: parse::pairs("--tag", &tags)?,
            };
            let key = client(&connect)?
                .create_key_with_options(&name, &options)
                .await?;
            (key, connect.output.format)
        }
        KeyCommand::Describe { key, connect } => (
            client(&connect)?.describe_key(&key).await?,
            connect.output.format,
        ),
        KeyCommand::List {
            state,
            spec,
            tag,
            page_size,
            page_token,
            all,
            connect,
        } => {
            let (tag_key, tag_value) = tag.as_deref().map(parse::tag_filter).unwrap_or_default();
            let request = pb::ListKeysRequest {
                page_size: page_size.unwrap_or_default(),
                page_token: page_token.unwrap_or_default(),
                state: state.unwrap_or_default(),
                spec: spec.unwrap_or_default(),
                tag_key,
                tag_value,
            };
            let client = client(&connect)?;
            let page = if all {
                pb::ListKeysResponse {
                    keys: client.list_keys_matching(request).await?,
                    next_page_token: String::new(),
                }
            } else {
                client.list_keys_page(request).await?
            };
            print_key_list(&page, connect.output.format);
            return Ok(());
        }
        KeyCommand::Rotate { key, connect } => (
            client(&connect)?.rotate_key(&key).await?,
            connect.output.format,
        ),
        KeyCommand::Enable { key, connect } => (
            client(&connect)?.enable_key(&key).await?,
            connect.output.format,
        ),
        KeyCommand::Disable { key, connect } => (
            client(&connect)?.disable_key(&key).await?,
            connect.output.format,
        ),
        KeyCommand::ScheduleDeletion {
            key,
            days,
            window,
            connect,
        } => {
            let window =
                window.or_else(|| days.map(|d| Duration::from_secs(d.saturating_mul(DAY_SECONDS))));
            (
                client(&connect)?
                    .schedule_key_deletion(&key, window)
                    .await?,
                connect.output.format,
            )
        }
        KeyCommand::CancelDeletion { key, connect } => (
            client(&connect)?.cancel_key_deletion(&key).await?,
            connect.output.format,
        ),
        KeyCommand::SetMinDecryptionVersion {
            key,
            version,
            connect,
        } => (
            client(&connect)?
                .set_min_decryption_version(&key, version.get())
                .await?,
            connect.output.format,
        ),
        KeyCommand::DestroyVersion {
            key,
            version,
            connect,
        } => (
            client(&connect)?
                .destroy_key_version(&key, version.get())
                .await?,
            connect.output.format,
        ),
        KeyCommand::EnableVersion {
            key,
            version,
            connect,
        } => (
            client(&connect)?
                .enable_key_version(&key, version.get())
                .await?,
            connect.output.format,
        ),
        KeyCommand::DisableVersion {
            key,
            version,
            connect,
        } => (
            client(&connect)?
                .disable_key_version(&key, version.get())
                .await?,
            connect.output.format,
        ),
        KeyCommand::SetDescription {
            key,
            description,
            connect,
        } => (
            client(&connect)?
                .update_key_description(&key, &description)
                .await?,
            connect.output.format,
        ),
        KeyCommand::Tag { key, tags, connect } => {
            let tags = parse::pairs("tag", &tags)?;
            (
                client(&connect)?.tag_key(&key, &tags).await?,
                connect.output.format,
            )
        }
        KeyCommand::Untag {
            key,
            tag_keys,
            connect,
        } => (
            client(&connect)?.untag_key(&key, &tag_keys).await?,
            connect.output.format,
        ),
        KeyCommand::SetRotationPeriod {
            key,
            period,
            connect,
        } => (
            client(&connect)?
                .set_rotation_period(&key, period.0)
                .await?,
            connect.output.format,
        ),
        KeyCommand::ImportParams { key, connect } => {
            return material::import_params(&key, &connect).await
        }
        KeyCommand::Import {
            key,
            token,
            input,
            connect,
        } => return material::import(&key, &token, &input, &connect).await,
        KeyCommand::Export {
            key,
            version,
            wrapping_key,
            connect,
        } => return material::export(&key, version, &wrapping_key, &connect).await,
    };
    print_key(&key, format);
    Ok(())
}

/// Prints one page of keys: `{"keys":[…],"next_page_token":…}` (null on the last page), or
/// one line per key.
fn print_key_list(page: &pb::ListKeysResponse, format: OutputFormat) {
    let next = (!page.next_page_token.is_empty()).then_some(page.next_page_token.as_str());
    match format {
        OutputFormat::Json => print_json(&json!({
            "keys": page.keys.iter().map(key_json).collect::<Vec<_>>(),
            "next_page_token": next,
        })),
        OutputFormat::Text => {
            for k in &page.keys {
                println!(
                    "{}  {:<16} v{:<4} {}",
                    k.key_id, k.state, k.primary_version, k.name
                );
            }
            if let Some(token) = next {
                eprintln!(
                    "more keys: continue with --page-token {token} (or list them all with --all)"
                );
            }
        }
    }
}
