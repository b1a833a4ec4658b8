//! `tessera operator init|unseal|seal|status`, the barrier commands (see
//! [`crate::commands::barrier`]), and the membership commands (see
//! [`crate::commands::members`]).

use std::io::Read;

use anyhow::anyhow;
use serde_json::json;

use crate::args::{OperatorCommand, OutputFormat};
use crate::commands::members::{self, ChangeKind};
use crate::commands::recover;
use crate::commands::snapshot;
use crate::commands::{barrier, client};
use crate::output::{print_json, Failure};
use tessera_client::Client;

/// Runs an operator command.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn run(command: OperatorCommand) -> Result<(), Failure> {
    match command {
        OperatorCommand::Members { connect } => members::list(&connect).await?,
        OperatorCommand::AddLearner {
            id,
            api_addr,
            cluster_addr,
            region,
            zone,
            connect,
        } => {
            let learner = tessera_client::NewLearner {
                node_id: id,
                api_addr,
                cluster_addr,
                region,
                zone,
            };
            members::add_learner(&learner, &connect).await?;
        }
        OperatorCommand::Rotate {
            retire_old,
            connect,
        } => barrier::rotate(retire_old, &connect).await?,
        OperatorCommand::Rekey(args) => barrier::rekey(args).await?,
        OperatorCommand::Promote(args) => members::change(ChangeKind::Promote, &args).await?,
        OperatorCommand::Demote(args) => members::change(ChangeKind::Demote, &args).await?,
        OperatorCommand::Remove(args) => members::change(ChangeKind::Remove, &args).await?,
        OperatorCommand::Recover {
            config,
            force,
            output,
        } => recover::run(&config, force, output.format).await?,
        OperatorCommand::Snapshot(command) => snapshot::run(command).await?,
        OperatorCommand::Init {
            shares,
            threshold,
            connect,
        } => {
            let reply = client(&connect)?.init(shares, threshold).await?;
            match connect.output.format {
                OutputFormat::Json => print_json(&json!({
                    "shares": reply.shares,
                    "threshold": reply.threshold,
                })),
                OutputFormat::Text => {
                    for (i, share) in reply.shares.iter().enumerate() {
                        println!("Unseal share {}: {share}", i + 1);
                    }
                    println!(
                        "\nThe cluster is initialized. Any {} of these {} shares unseal a node.\n\
                         They are shown once and stored nowhere: hand them to separate people now.",
                        reply.threshold,
                        reply.shares.len()
                    );
                }
            }
        }
        OperatorCommand::Unseal {
            share,
            reset,
            connect,
        } => {
            let client = client(&connect)?;
            let reply = if reset {
                client.unseal_reset().await?
            } else {
                let share = read_share(share.as_deref())?;
                client.unseal(share.trim()).await?
            };
            match connect.output.format {
                OutputFormat::Json => print_json(&json!({
                    "sealed": reply.sealed,
                    "progress": reply.progress,
                    "threshold": reply.threshold,
                })),
                OutputFormat::Text if reply.sealed => println!(
                    "Sealed: unseal progress {}/{}",
                    reply.progress, reply.threshold
                ),
                OutputFormat::Text => println!("Unsealed"),
            }
        }
        OperatorCommand::Seal { connect } => {
            let reply = client(&connect)?.seal().await?;
            match connect.output.format {
                OutputFormat::Json => print_json(&json!({"sealed": reply.sealed})),
                OutputFormat::Text => println!("Sealed"),
            }
        }
        OperatorCommand::Status { connect } => {
            let client = client(&connect)?;
            if connect.addr.len() > 1 {
                return every_endpoint_status(&client, connect.output.format).await;
            }
            let s = client.status().await?;
            match connect.output.format {
                OutputFormat::Json => print_json(&status_document(&s)),
                OutputFormat::Text => print_status(&s),
            }
        }
    }
    Ok(())
}

/// An unseal share from the command line, or from stdin when omitted or "-".
///
/// # Errors
/// [`Failure::Usage`] if stdin cannot be read.
pub fn read_share(share: Option<&str>) -> Result<zeroize::Zeroizing<String>, Failure> {
    match share {
        Some(s) if s != "-" => Ok(zeroize::Zeroizing::new(s.to_owned())),
        _ => {
            let mut text = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::Usage(anyhow!("cannot read the share from stdin: {e}")))?;
            Ok(text)
        }
    }
}

/// One node's `Status` as the `operator status` JSON document.
fn status_document(s: &tessera_client::proto::StatusResponse) -> serde_json::Value {
    json!({
        "node_id": s.node_id,
        "initialized": s.initialized,
        "sealed": s.sealed,
        "role": s.role,
        "leader_id": s.leader_id,
        "term": s.term,
        "applied_index": s.applied_index,
        "region": s.region,
        "zone": s.zone,
        "unseal_progress": s.unseal_progress,
        "unseal_threshold": s.unseal_threshold,
        "snapshot_index": s.snapshot_index,
        "purged_index": s.purged_index,
        "barrier": barrier::status_document(s),
        "members": s.members.iter().map(|m| members::identity_json(
            m.node_id, &m.api_addr, &m.cluster_addr, &m.region, &m.zone, &m.role,
        )).collect::<Vec<_>>(),
    })
}

fn print_status(s: &tessera_client::proto::StatusResponse) {
    println!("node_id:       {}", s.node_id);
    println!("initialized:   {}", s.initialized);
    if s.sealed && s.initialized {
        println!(
            "sealed:        true (unseal progress {}/{})",
            s.unseal_progress, s.unseal_threshold
        );
    } else {
        println!("sealed:        {}", s.sealed);
    }
    println!("role:          {}", s.role);
    println!(
        "leader_id:     {}",
        s.leader_id.map_or_else(|| "none".into(), |l| l.to_string())
    );
    println!("term:          {}", s.term);
    println!("applied_index: {}", s.applied_index);
    println!("region:        {}", s.region);
    println!("zone:          {}", s.zone);
    barrier::print_status(s);
    println!("members:");
    for m in &s.members {
        println!(
            "  {:<4} {:<8} api={} cluster={} region={} zone={}",
            m.node_id, m.role, m.api_addr, m.cluster_addr, m.region, m.zone
        );
    }
}

/// `operator status` with several endpoints: every endpoint's own answer, so one dead node
/// hides none of the others. JSON: the first answering node's document (the one-endpoint
/// shape) with an `endpoints` list added; exit 1 only when no endpoint answers.
async fn every_endpoint_status(client: &Client, format: OutputFormat) -> Result<(), Failure> {
    let answers = client.status_of_every_endpoint().await;
    let row = |a: &tessera_client::EndpointStatus| match &a.status {
        Ok(s) => json!({
            "endpoint": a.endpoint,
            "region": a.region,
            "reachable": true,
            "node_id": s.node_id,
            "role": s.role,
            "sealed": s.sealed,
            "leader_id": s.leader_id,
            "term": s.term,
            "applied_index": s.applied_index,
            "node_region": s.region,
            "zone": s.zone,
        }),
        Err(e) => json!({
            "endpoint": a.endpoint,
            "region": a.region,
            "reachable": false,
            "error": {"code": e.code_name(), "message": e.to_string()},
        }),
    };
    let first = answers.iter().find_map(|a| a.status.as_ref().ok());
    match format {
        OutputFormat::Json => {
            let mut document = first.map_or_else(|| json!({}), status_document);
            if let Some(fields) = document.as_object_mut() {
                fields.insert("endpoints".into(), answers.iter().map(row).collect());
            }
            print_json(&document);
        }
        OutputFormat::Text => {
            println!(
                "{:<32} {:<10} {:>4} {:<9} {:<6} {:>6} {:>8} {:<10}",
                "ENDPOINT", "REGION", "NODE", "ROLE", "SEALED", "TERM", "APPLIED", "ZONE"
            );
            for a in &answers {
                let region = a.region.as_deref().unwrap_or("-");
                match &a.status {
                    Ok(s) => println!(
                        "{:<32} {:<10} {:>4} {:<9} {:<6} {:>6} {:>8} {:<10}",
                        a.endpoint,
                        if region == "-" {
                            s.region.as_str()
                        } else {
                            region
                        },
                        s.node_id,
                        s.role,
                        s.sealed,
                        s.term,
                        s.applied_index,
                        s.zone
                    ),
                    Err(e) => println!("{:<32} {:<10} unreachable: {e}", a.endpoint, region),
                }
            }
        }
    }
    match first {
        Some(_) => Ok(()),
        None => Err(answers
            .into_iter()
            .find_map(|a| a.status.err())
            .map_or_else(
                || Failure::Usage(anyhow!("no endpoint given")),
                Failure::from,
            )),
    }
}
