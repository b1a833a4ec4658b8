//! `tessera alias create|update|delete|list`.

use serde_json::json;
use tessera_client::proto as pb;

use crate::args::{AliasCommand, OutputFormat};
use crate::commands::{client, print_removed};
use crate::output::{print_json, print_list, Failure};

fn alias_json(alias: &pb::AliasResponse) -> serde_json::Value {
    json!({"alias": alias.alias, "key_id": alias.key_id})
}

fn print_alias(alias: &pb::AliasResponse, format: OutputFormat) {
    match format {
        OutputFormat::Json => print_json(&alias_json(alias)),
        OutputFormat::Text => println!("{} -> {}", alias.alias, alias.key_id),
    }
}

/// Runs an alias command.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn run(command: AliasCommand) -> Result<(), Failure> {
    match command {
        AliasCommand::Create { name, key, connect } => {
            let alias = client(&connect)?.create_alias(&name, &key).await?;
            print_alias(&alias, connect.output.format);
        }
        AliasCommand::Update { name, key, connect } => {
            let alias = client(&connect)?.update_alias(&name, &key).await?;
            print_alias(&alias, connect.output.format);
        }
        AliasCommand::Delete { name, connect } => {
            let reply = client(&connect)?.delete_alias(&name).await?;
            print_removed(connect.output.format, "alias", &reply.alias, "Deleted");
        }
        AliasCommand::List { key, connect } => {
            let reply = client(&connect)?.list_aliases(key.as_deref()).await?;
            print_list(
                connect.output.format,
                "aliases",
                &reply.aliases,
                alias_json,
                |alias| format!("{} -> {}", alias.alias, alias.key_id),
            );
        }
    }
    Ok(())
}
