//! The implementation of each command.

pub mod access;
pub mod alias;
pub mod audit;
pub mod barrier;
pub mod batch;
pub mod bench;
pub mod crypto;
pub mod datakey;
pub mod dev;
pub mod envelope;
pub mod key;
pub mod members;
pub mod operator;
pub mod pki;
pub mod policy;
pub mod recover;
pub mod server;
pub mod signing;
pub mod snapshot;
pub mod storage;

use anyhow::anyhow;
use tessera_client::{Client, ClientConfig};

use crate::args::{Connect, OutputFormat};
use crate::output::{print_json, Failure};

/// Builds a client from the connection flags.
///
/// # Errors
/// [`Failure::Usage`] if a flag is missing or a file cannot be read.
pub fn client(connect: &Connect) -> Result<Client, Failure> {
    client_with(connect, |_| ())
}

/// Builds a client from the connection flags, with `adjust` applied to its configuration.
///
/// # Errors
/// [`Failure::Usage`] if a flag is missing or a file cannot be read.
pub fn client_with(
    connect: &Connect,
    adjust: impl FnOnce(&mut ClientConfig),
) -> Result<Client, Failure> {
    let missing = |flag: &str, env: &str| Failure::Usage(anyhow!("{flag} (or {env}) is required"));
    if connect.addr.is_empty() {
        return Err(missing("--addr", "TESSERA_ADDR"));
    }
    let ca = connect
        .ca_cert
        .as_deref()
        .ok_or_else(|| missing("--ca-cert", "TESSERA_CA_CERT"))?;
    let cert = connect
        .cert
        .as_deref()
        .ok_or_else(|| missing("--cert", "TESSERA_CLIENT_CERT"))?;
    let key = connect
        .client_key
        .as_deref()
        .ok_or_else(|| missing("--client-key", "TESSERA_CLIENT_KEY"))?;
    let mut config = ClientConfig::from_files(connect.addr.clone(), ca, cert, key)
        .map_err(|e| Failure::Usage(e.into()))?;
    config.region.clone_from(&connect.client_region);
    adjust(&mut config);
    Client::new(config).map_err(|e| Failure::Usage(e.into()))
}

/// Prints what a command removed, named by `name`: `{"<field>": name}` in JSON, `<done> <name>`
/// in text, so that every removal answers the same way.
pub fn print_removed(format: OutputFormat, field: &str, name: &str, done: &str) {
    match format {
        OutputFormat::Json => print_json(&serde_json::Value::Object(
            [(field.to_owned(), name.into())].into_iter().collect(),
        )),
        OutputFormat::Text => println!("{done} {name}"),
    }
}
