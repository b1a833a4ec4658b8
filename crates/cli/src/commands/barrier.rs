//! `tessera operator rotate` and `tessera operator rekey`, and the barrier part of
//! `operator status`.

use serde_json::json;
use tessera_client::proto::{RekeyRequest, RekeyResponse, StatusResponse};

use crate::args::{Connect, OutputFormat, RekeyArgs};
use crate::commands::client;
use crate::commands::operator::read_share;
use crate::output::{print_json, Failure};

/// `operator rotate [--retire-old]`.
///
/// # Errors
/// [`Failure`] from the node (`BARRIER_TERMS_IN_USE` while the re-seal job is not done).
pub async fn rotate(retire_old: bool, connect: &Connect) -> Result<(), Failure> {
    let reply = client(connect)?.rotate_barrier(retire_old).await?;
    match connect.output.format {
        OutputFormat::Json => print_json(&json!({
            "active_term": reply.active_term,
            "oldest_term": reply.oldest_term,
            "retired_terms": reply.retired_terms,
        })),
        OutputFormat::Text if retire_old => println!(
            "Barrier terms {:?} retired; the keyring holds term {} only",
            reply.retired_terms, reply.active_term
        ),
        OutputFormat::Text => println!(
            "Barrier rotated: new material is sealed under term {}; the leader re-seals older \
             blobs in the background (see `reseal_left` in `tessera operator status`), then \
             retire the old terms with `tessera operator rotate --retire-old`",
            reply.active_term
        ),
    }
    Ok(())
}

/// `operator rekey`: one step, then the attempt's progress or, once done, the new shares.
///
/// # Errors
/// [`Failure`] from the node or reading stdin.
pub async fn rekey(args: RekeyArgs) -> Result<(), Failure> {
    let connect = &args.connect;
    let share = args
        .share
        .as_deref()
        .map(|s| read_share(Some(s)))
        .transpose()?;
    let step = RekeyRequest {
        init: args.init,
        shares: args.shares.unwrap_or_default(),
        threshold: args.threshold.unwrap_or_default(),
        share: share
            .as_ref()
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        nonce: args.nonce,
        cancel: args.cancel,
    };
    let reply = client(connect)?.rekey(step).await?;
    match connect.output.format {
        OutputFormat::Json => print_json(&json!({
            "in_progress": reply.in_progress,
            "nonce": reply.nonce,
            "progress": reply.progress,
            "required": reply.required,
            "new_shares": reply.new_shares,
            "new_threshold": reply.new_threshold,
            "complete": reply.complete,
            "shares": reply.shares,
        })),
        OutputFormat::Text => print_rekey(&reply),
    }
    Ok(())
}

fn print_rekey(reply: &RekeyResponse) {
    if reply.complete {
        for (i, share) in reply.shares.iter().enumerate() {
            println!("Unseal share {}: {share}", i + 1);
        }
        println!(
            "\nThe unseal key was replaced. Any {} of these {} shares unseal a node; the old \
             shares no longer do.\nThey are shown once and stored nowhere: hand them to \
             separate people now.",
            reply.new_threshold,
            reply.shares.len()
        );
    } else if reply.in_progress {
        println!(
            "Rekey {} in progress: {}/{} current shares submitted, towards {} of {} new shares",
            reply.nonce, reply.progress, reply.required, reply.new_threshold, reply.new_shares
        );
    } else {
        println!("No rekey in progress");
    }
}

/// The barrier fields of `operator status` as JSON.
pub fn status_document(s: &StatusResponse) -> serde_json::Value {
    json!({
        "active_term": s.barrier_active_term,
        "oldest_term": s.barrier_oldest_term,
        "reseal_left": s
            .reseal_left
            .iter()
            .map(|(term, left)| (term.to_string(), json!(left)))
            .collect::<serde_json::Map<_, _>>(),
    })
}

/// The barrier lines of `operator status` as text.
pub fn print_status(s: &StatusResponse) {
    println!(
        "barrier:       term {} (oldest held {})",
        s.barrier_active_term, s.barrier_oldest_term
    );
    if s.reseal_left.is_empty() {
        println!("reseal_left:   none");
    } else {
        let left: Vec<String> = s
            .reseal_left
            .iter()
            .map(|(term, left)| format!("term {term}: {left}"))
            .collect();
        println!("reseal_left:   {}", left.join(", "));
    }
}
