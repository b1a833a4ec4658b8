//! `tessera pki init|issue-client`.

use serde_json::json;

use crate::args::{OutputFormat, PkiCommand};
use crate::output::{print_json, Failure};
use tessera_launcher::pki;

/// Runs a PKI command.
///
/// # Errors
/// [`Failure::Local`] if files cannot be written; [`Failure::Usage`] for invalid names.
pub fn run(command: PkiCommand) -> Result<(), Failure> {
    match command {
        PkiCommand::Init {
            dir,
            nodes,
            san,
            output,
        } => {
            let created = pki::init(&dir, nodes, &san).map_err(|e| Failure::Local(e.into()))?;
            match output.format {
                OutputFormat::Json => print_json(&json!(created)),
                OutputFormat::Text => {
                    println!("node CA:      {}", created.ca_cert.display());
                    println!("client CA:    {}", created.client_ca_cert.display());
                    for node in &created.nodes {
                        println!(
                            "{:<13} {}",
                            format!("{}:", node.identity),
                            node.cert.display()
                        );
                    }
                    println!("admin client: {}", created.admin.cert.display());
                    println!("app client:   {}", created.app.cert.display());
                }
            }
        }
        PkiCommand::IssueClient { dir, name, output } => {
            let issued = pki::issue_client(&dir, &name).map_err(|e| Failure::Usage(e.into()))?;
            match output.format {
                OutputFormat::Json => print_json(&json!(issued)),
                OutputFormat::Text => {
                    println!("identity:    {}", issued.identity);
                    println!("certificate: {}", issued.cert.display());
                    println!("key:         {}", issued.key.display());
                }
            }
        }
    }
    Ok(())
}
