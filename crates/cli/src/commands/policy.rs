//! `tessera policy put|get|list|delete|check|rate-limit`.

use std::path::Path;

use anyhow::anyhow;
use serde_json::{json, Value};
use tessera_client::{Budget, PolicyFormat, RateLimit};

use crate::args::{Connect, OutputFormat, PolicyCheckArgs, PolicyCommand, RateLimitCommand};
use crate::commands::{client, print_removed};
use crate::output::{print_json, print_list, Failure};
use crate::parse;

/// The format of a policy file from its extension (`.json`, `.toml`, any case); any other
/// name, and stdin (`-`), leave it to the server to detect.
pub fn format_of(file: &str) -> PolicyFormat {
    let extension = Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("json") => PolicyFormat::Json,
        Some("toml") => PolicyFormat::Toml,
        _ => PolicyFormat::Detect,
    }
}

/// The stored document (canonical JSON text) as a JSON value, so that `-o json` nests it; text
/// that is not JSON stays a string.
fn document_value(document: &str) -> Value {
    serde_json::from_str(document).unwrap_or_else(|_| Value::String(document.to_owned()))
}

/// Runs a policy command.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn run(command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Put {
            name,
            file,
            connect,
        } => put(&name, &file, &connect).await,
        PolicyCommand::Get { name, connect } => {
            let policy = client(&connect)?.get_policy(&name).await?;
            let document = document_value(&policy.document);
            match connect.output.format {
                OutputFormat::Json => print_json(&json!({
                    "name": policy.name,
                    "version": policy.version,
                    "document": document,
                })),
                // The document alone, so that `policy get` output can be `policy put` again.
                OutputFormat::Text => println!(
                    "{}",
                    serde_json::to_string_pretty(&document).unwrap_or(policy.document)
                ),
            }
            Ok(())
        }
        PolicyCommand::List { connect } => {
            let reply = client(&connect)?.list_policies().await?;
            print_list(
                connect.output.format,
                "policies",
                &reply.policies,
                |p| json!({"name": p.name, "version": p.version, "statements": p.statements}),
                |p| {
                    format!(
                        "{} (version {}, {} statements)",
                        p.name, p.version, p.statements
                    )
                },
            );
            Ok(())
        }
        PolicyCommand::Delete { name, connect } => {
            let reply = client(&connect)?.delete_policy(&name).await?;
            print_removed(connect.output.format, "name", &reply.name, "Deleted policy");
            Ok(())
        }
        PolicyCommand::Check(args) => check(args).await,
        PolicyCommand::RateLimit(command) => rate_limit(command).await,
    }
}

/// A rule as JSON: unset classes are `null`.
fn rule_value(rule: &RateLimit) -> Value {
    let budget =
        |b: Option<Budget>| b.map(|b| json!({"per_second": b.per_second, "burst": b.burst}));
    json!({
        "identity": rule.identity,
        "crypto": budget(rule.crypto),
        "keys": budget(rule.keys),
        "operator": budget(rule.operator),
    })
}

/// A rule as one line: `IDENTITY crypto=R/B keys=- operator=-`.
fn rule_line(rule: &RateLimit) -> String {
    let budget = |b: Option<Budget>| {
        b.map_or_else(
            || "-".to_owned(),
            |b| format!("{}/{}", b.per_second, b.burst),
        )
    };
    format!(
        "{} crypto={} keys={} operator={}",
        rule.identity,
        budget(rule.crypto),
        budget(rule.keys),
        budget(rule.operator)
    )
}

async fn rate_limit(command: RateLimitCommand) -> Result<(), Failure> {
    match command {
        RateLimitCommand::Put {
            identity,
            crypto,
            keys,
            operator,
            connect,
        } => {
            let rule = client(&connect)?
                .put_rate_limit(RateLimit {
                    identity,
                    crypto,
                    keys,
                    operator,
                })
                .await?;
            match connect.output.format {
                OutputFormat::Json => print_json(&rule_value(&rule)),
                OutputFormat::Text => println!("Rate limit set: {}", rule_line(&rule)),
            }
        }
        RateLimitCommand::List { connect } => {
            let rules = client(&connect)?.list_rate_limits().await?;
            print_list(
                connect.output.format,
                "rate_limits",
                &rules,
                rule_value,
                rule_line,
            );
        }
        RateLimitCommand::Delete { identity, connect } => {
            client(&connect)?.delete_rate_limit(&identity).await?;
            print_removed(
                connect.output.format,
                "identity",
                &identity,
                "Deleted the rate limit for",
            );
        }
    }
    Ok(())
}

async fn put(name: &str, file: &str, connect: &Connect) -> Result<(), Failure> {
    let bytes = parse::read_input(file)?;
    let document = std::str::from_utf8(&bytes)
        .map_err(|e| Failure::Usage(anyhow!("policy file {file} is not UTF-8 text: {e}")))?;
    let reply = client(connect)?
        .put_policy(name, document, format_of(file))
        .await?;
    match connect.output.format {
        OutputFormat::Json => print_json(&json!({"name": reply.name, "version": reply.version})),
        OutputFormat::Text => println!("Policy {} is at version {}", reply.name, reply.version),
    }
    Ok(())
}

async fn check(args: PolicyCheckArgs) -> Result<(), Failure> {
    let context = parse::context(&args.context)?;
    let connect = args.connect;
    let reply = client(&connect)?
        .check_policy(&args.identity, &args.action, args.key.as_deref(), context)
        .await?;
    match connect.output.format {
        OutputFormat::Json => print_json(&json!({
            "allowed": reply.allowed,
            "decided_by": reply.decided_by,
            "identity": args.identity,
            "action": args.action,
            "key": args.key,
        })),
        OutputFormat::Text => println!(
            "{}: {}",
            if reply.allowed { "allowed" } else { "denied" },
            reply.decided_by
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_names_the_format() {
        assert_eq!(format_of("p.json"), PolicyFormat::Json);
        assert_eq!(format_of("dir/p.TOML"), PolicyFormat::Toml);
        assert_eq!(format_of("policy"), PolicyFormat::Detect);
        assert_eq!(format_of("p.txt"), PolicyFormat::Detect);
        assert_eq!(format_of("-"), PolicyFormat::Detect);
    }

    #[test]
    fn stored_documents_nest_as_json() {
        assert_eq!(
            document_value(r#"{"statements":[]}"#),
            json!({"statements": []})
        );
        assert_eq!(document_value("not json"), json!("not json"));
    }
}
