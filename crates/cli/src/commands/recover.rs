//! `tessera operator recover`: quorum-loss recovery on a stopped node's data directory.

use std::path::Path;

use serde_json::json;

use crate::args::OutputFormat;
use crate::output::{print_json, Failure};

/// Shows (or, with `force`, performs) the recovery of the node configured in `config` into a
/// one-node cluster.
///
/// # Errors
/// [`Failure::Usage`] for an invalid configuration, [`Failure::Local`] if the data directory
/// cannot be recovered (the node is running, never joined a cluster, or was removed).
pub async fn run(config: &Path, force: bool, format: OutputFormat) -> Result<(), Failure> {
    let config =
        tessera_server::ServerConfig::load(config).map_err(|e| Failure::Usage(e.into()))?;
    let plan = tessera_server::recover::recover(&config.data_dir, config.node_id, !force)
        .await
        .map_err(|e| Failure::Local(e.into()))?;
    match format {
        OutputFormat::Json => print_json(&json!({
            "recovered": force,
            "node_id": plan.node_id,
            "data_dir": config.data_dir,
            "applied_index": plan.applied_index,
            "committed_index": plan.committed_index,
            "last_log_index": plan.last_log_index,
            "recovered_index": plan.recovered_index,
            "voters_before": plan.voters_before,
            "learners_before": plan.learners_before,
            "voters_after": [plan.node_id],
        })),
        OutputFormat::Text => {
            let dropped: Vec<String> = plan
                .voters_before
                .iter()
                .chain(&plan.learners_before)
                .filter(|id| **id != plan.node_id)
                .map(ToString::to_string)
                .collect();
            println!(
                "node {} (data in {}): applied {}, committed {}, last log entry {}",
                plan.node_id,
                config.data_dir.display(),
                plan.applied_index,
                plan.committed_index,
                plan.last_log_index
            );
            if force {
                println!(
                    "recovered: node {} is now the only voter; its state holds every entry up to {}; members dropped: {}",
                    plan.node_id,
                    plan.recovered_index,
                    dropped.join(", ")
                );
                println!("start the node, unseal it, then add fresh nodes with `operator add-learner` and `operator promote`; never start the dropped members on their old data");
            } else {
                println!(
                    "would make node {} the only voter, holding every entry up to {}, and drop members: {}",
                    plan.node_id,
                    plan.last_log_index,
                    dropped.join(", ")
                );
                println!("nothing changed; run again with --force to recover");
            }
        }
    }
    Ok(())
}
