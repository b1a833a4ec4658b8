//! Client and server TLS settings built from a local cluster's PKI, so every reference is
//! reached with the same certificates as Tessera itself.

use std::path::Path;

use tessera_launcher::pki;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};

use crate::Error;

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|source| tessera_launcher::Error::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    Ok(bytes)
}

/// Mutual TLS as a node's API port does it: node 1's certificate, client certificates
/// verified against the client CA.
pub fn server(pki_dir: &Path) -> Result<ServerTlsConfig, Error> {
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(
            read(&pki_dir.join("node1.pem"))?,
            read(&pki_dir.join("node1-key.pem"))?,
        ))
        .client_ca_root(Certificate::from_pem(read(&pki_dir.join(pki::CLIENT_CA))?)))
}

/// One lazily connected channel (one HTTP/2 connection) to `https://addr`, presenting the
/// admin certificate and trusting the node CA, with `TCP_NODELAY` as the Tessera SDK sets it.
pub fn channel(pki_dir: &Path, addr: &str) -> Result<Channel, Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&pki_dir.join(pki::NODE_CA))?))
        .identity(Identity::from_pem(
            read(&pki_dir.join(format!("{}.pem", pki::ADMIN_IDENTITY)))?,
            read(&pki_dir.join(format!("{}-key.pem", pki::ADMIN_IDENTITY)))?,
        ));
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .and_then(|e| e.tls_config(tls))
        .map_err(|source| Error::Endpoint {
            addr: addr.to_owned(),
            source,
        })?;
    Ok(endpoint.tcp_nodelay(true).connect_lazy())
}

/// `k` (at least one) connections to `addr`, each a channel of its own wrapped by `client`
/// (a generated gRPC client's `new`).
pub fn connections<C>(
    pki_dir: &Path,
    addr: &str,
    k: usize,
    client: fn(Channel) -> C,
) -> Result<Vec<C>, Error> {
    (0..k.max(1))
        .map(|_| channel(pki_dir, addr).map(client))
        .collect()
}
