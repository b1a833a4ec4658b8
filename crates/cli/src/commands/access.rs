//! `tessera whoami`, `tessera grant create|list|revoke` and `tessera cert revoke|list-revoked`.

use serde_json::{json, Value};
use tessera_client::proto as pb;
use tessera_client::CreateGrantOptions;

use crate::args::{CertCommand, CertRevokeArgs, Connect, GrantCommand, OutputFormat};
use crate::commands::{client, print_removed};
use crate::output::{print_json, print_list, rfc3339, rfc3339_or_null, Failure};
use crate::parse;

/// Runs `tessera whoami`.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn whoami(connect: Connect) -> Result<(), Failure> {
    let me = client(&connect)?.whoami().await?;
    match connect.output.format {
        OutputFormat::Json => print_json(&json!({
            "identity": me.identity,
            "fingerprint_sha256": me.certificate_fingerprint_sha256,
            "serial": me.certificate_serial,
            "admin": me.admin,
            "policies": me.policies,
        })),
        OutputFormat::Text => {
            println!("identity:    {}", me.identity);
            println!("fingerprint: {}", me.certificate_fingerprint_sha256);
            println!("serial:      {}", me.certificate_serial);
            println!("admin:       {}", me.admin);
            println!("policies:    {}", me.policies.join(", "));
        }
    }
    Ok(())
}

/// The JSON form of a grant (see `docs/operations.md`).
fn grant_json(grant: &pb::Grant) -> Value {
    json!({
        "grant_id": grant.grant_id,
        "key_id": grant.key_id,
        "grantee": grant.grantee,
        "operations": grant.actions,
        "context": grant.context,
        "context_subset": grant.context_subset,
        "expires_at": rfc3339_or_null(grant.expires_at_ms),
        "created_by": grant.created_by,
    })
}

/// One line per grant for people.
fn grant_text(grant: &pb::Grant) -> String {
    let mut line = format!(
        "{} key {} grantee {} operations {}",
        grant.grant_id,
        grant.key_id,
        grant.grantee,
        grant.actions.join(",")
    );
    if !grant.context.is_empty() {
        let pairs: Vec<String> = grant
            .context
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let how = if grant.context_subset {
            "includes"
        } else {
            "is"
        };
        line.push_str(&format!(" when context {how} {}", pairs.join(",")));
    }
    if grant.expires_at_ms != 0 {
        line.push_str(&format!(" until {}", rfc3339(grant.expires_at_ms)));
    }
    line
}

/// Runs a grant command.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn grant(command: GrantCommand) -> Result<(), Failure> {
    match command {
        GrantCommand::Create(args) => {
            let options = CreateGrantOptions {
                key: args.key,
                grantee: args.grantee,
                actions: args.operations,
                context: parse::context(&args.context)?,
                context_subset: args.context_subset,
                expires_in: args.expires,
            };
            let connect = args.connect;
            let grant = client(&connect)?.create_grant(options).await?;
            match connect.output.format {
                OutputFormat::Json => print_json(&grant_json(&grant)),
                OutputFormat::Text => println!("{}", grant_text(&grant)),
            }
        }
        GrantCommand::List { key, connect } => {
            let reply = client(&connect)?.list_grants(key.as_deref()).await?;
            print_list(
                connect.output.format,
                "grants",
                &reply.grants,
                grant_json,
                grant_text,
            );
        }
        GrantCommand::Revoke { id, connect } => {
            let reply = client(&connect)?.revoke_grant(&id).await?;
            print_removed(
                connect.output.format,
                "grant_id",
                &reply.grant_id,
                "Revoked grant",
            );
        }
    }
    Ok(())
}

/// Runs a cert command.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn cert(command: CertCommand) -> Result<(), Failure> {
    match command {
        CertCommand::Revoke(args) => revoke(args).await,
        CertCommand::ListRevoked { connect } => {
            let reply = client(&connect)?.list_revoked_certificates().await?;
            print_list(
                connect.output.format,
                "certificates",
                &reply.certificates,
                |c| json!({"entry": c.entry}),
                |c| c.entry.clone(),
            );
            Ok(())
        }
    }
}

async fn revoke(args: CertRevokeArgs) -> Result<(), Failure> {
    let client = client(&args.connect)?;
    // clap's argument group makes exactly one of the two present.
    let reply = match (&args.serial, &args.fingerprint) {
        (Some(serial), _) => client.revoke_certificate_by_serial(serial).await?,
        (None, Some(fingerprint)) => {
            client
                .revoke_certificate_by_fingerprint(fingerprint)
                .await?
        }
        (None, None) => {
            return Err(Failure::Usage(anyhow::anyhow!(
                "give --serial HEX or --fingerprint SHA256"
            )))
        }
    };
    let entry = reply.certificate.map(|c| c.entry).unwrap_or_default();
    print_removed(args.connect.output.format, "entry", &entry, "Revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_json_has_the_documented_fields() {
        let grant = pb::Grant {
            grant_id: "g1".into(),
            key_id: "k1".into(),
            grantee: "app".into(),
            actions: vec!["kms:Decrypt".into()],
            context: [("tenant".to_string(), "a".to_string())].into(),
            context_subset: false,
            expires_at_ms: 1_700_000_000_123,
            created_by: "admin".into(),
        };
        let v = grant_json(&grant);
        assert_eq!(v["operations"], json!(["kms:Decrypt"]));
        assert_eq!(v["context"], json!({"tenant": "a"}));
        assert_eq!(v["expires_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["created_by"], "admin");
        let text = grant_text(&grant);
        assert!(text.contains("when context is tenant=a"), "{text}");
        let forever = grant_json(&pb::Grant::default());
        assert_eq!(forever["expires_at"], Value::Null);
    }
}
