//! `tessera operator members|add-learner|promote|demote|remove`.

use serde_json::{json, Map, Value};
use tessera_client::proto as pb;
use tessera_client::NewLearner;

use crate::args::{MemberChange, OutputFormat};
use crate::commands::client;
use crate::output::{print_json, Failure};

/// Which change to a member.
#[derive(Clone, Copy, Debug)]
pub enum ChangeKind {
    /// Learner → voter.
    Promote,
    /// Voter → learner.
    Demote,
    /// Out of the cluster.
    Remove,
}

/// Lists the members.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn list(connect: &crate::args::Connect) -> Result<(), Failure> {
    let reply = client(connect)?.members().await?;
    print_members(&reply, connect.output.format);
    Ok(())
}

/// Adds a learner.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn add_learner(
    learner: &NewLearner,
    connect: &crate::args::Connect,
) -> Result<(), Failure> {
    let reply = client(connect)?.add_learner(learner).await?;
    print_members(&reply, connect.output.format);
    Ok(())
}

/// Promotes, demotes or removes a member.
///
/// # Errors
/// [`Failure`] with the exit status to use.
pub async fn change(kind: ChangeKind, args: &MemberChange) -> Result<(), Failure> {
    let client = client(&args.connect)?;
    let reply = match kind {
        ChangeKind::Promote => client.promote(args.id, args.force).await?,
        ChangeKind::Demote => client.demote(args.id, args.force).await?,
        ChangeKind::Remove => client.remove_member(args.id, args.force).await?,
    };
    print_members(&reply, args.connect.output.format);
    Ok(())
}

/// The fields that say which member a node is and where it runs: the same in `operator
/// members` and in the member list of `operator status`, whose proto messages differ.
pub fn identity_json(
    node_id: u64,
    api_addr: &str,
    cluster_addr: &str,
    region: &str,
    zone: &str,
    role: &str,
) -> Map<String, Value> {
    [
        ("node_id", json!(node_id)),
        ("api_addr", json!(api_addr)),
        ("cluster_addr", json!(cluster_addr)),
        ("region", json!(region)),
        ("zone", json!(zone)),
        ("role", json!(role)),
    ]
    .into_iter()
    .map(|(field, value)| (field.to_owned(), value))
    .collect()
}

fn member_json(m: &pb::MemberStatus) -> Value {
    let mut document = identity_json(
        m.node_id,
        &m.api_addr,
        &m.cluster_addr,
        &m.region,
        &m.zone,
        &m.role,
    );
    for (field, value) in [
        ("match_index", json!(m.match_index)),
        ("lag", json!(m.lag)),
        ("last_contact_ms", json!(m.last_contact_ms)),
        ("lease", json!(m.lease)),
        ("sealed", json!(m.sealed)),
    ] {
        document.insert(field.to_owned(), value);
    }
    Value::Object(document)
}

fn or_dash(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn print_members(reply: &pb::MembersResponse, format: OutputFormat) {
    match format {
        OutputFormat::Json => print_json(&json!({
            "leader_id": reply.leader_id,
            "members": reply.members.iter().map(member_json).collect::<Vec<_>>(),
        })),
        OutputFormat::Text => {
            println!(
                "{:<6} {:<8} {:<12} {:<10} {:>8} {:>6} {:>9} {:<12} {:<22} {:<22}",
                "ID",
                "ROLE",
                "REGION",
                "ZONE",
                "MATCH",
                "LAG",
                "CONTACT",
                "LEASE",
                "API",
                "CLUSTER"
            );
            for m in &reply.members {
                let role = if m.node_id == reply.leader_id {
                    format!("{}*", m.role)
                } else {
                    m.role.clone()
                };
                let contact = m
                    .last_contact_ms
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms}ms"));
                let lease = match m.sealed {
                    Some(true) => format!("{} sealed", m.lease),
                    _ => m.lease.clone(),
                };
                println!(
                    "{:<6} {:<8} {:<12} {:<10} {:>8} {:>6} {:>9} {:<12} {:<22} {:<22}",
                    m.node_id,
                    role,
                    m.region,
                    m.zone,
                    or_dash(m.match_index),
                    or_dash(m.lag),
                    contact,
                    lease,
                    m.api_addr,
                    m.cluster_addr
                );
            }
            println!("(* the leader that answered)");
        }
    }
}
