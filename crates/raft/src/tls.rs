//! Mutual TLS for both of a node's ports (API and cluster).
//!
//! Servers use rustls directly, so the policy is explicit: TLS 1.3 only, ring provider, and a
//! client certificate chaining to the configured CA is required at the handshake. Each
//! accepted connection completes its handshake in its own task, within the port's
//! [`AcceptLimits`] (handshake timeout, handshakes at once per port and per source address,
//! connection budget), so slow or hostile peers can neither stall the accept loop nor exhaust
//! the node. Accepted sockets get `TCP_NODELAY` ([`prepare_accepted`]).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;

use crate::accept::SourceCounts;
pub use crate::accept::{AcceptLimits, LimitedStream};
use crate::retry::{self, LogLimiter};

/// A TLS setup failure, naming the file at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A certificate file is not valid PEM.
    #[error("{path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The PEM parser's error.
        #[source]
        source: pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{path}: no certificate found")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no usable private key.
    #[error("{path}: no usable private key: {source}")]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// The PEM parser's error.
        #[source]
        source: pem::Error,
    },
    /// A CA file holds a certificate that cannot be a trust anchor.
    #[error("{path}: {source}")]
    TrustAnchor {
        /// The file.
        path: PathBuf,
        /// rustls's error.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier cannot be built from the CA certificates.
    #[error("invalid TLS configuration: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// rustls refused the configuration (e.g. key does not match certificate).
    #[error("invalid TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// PEM material of one TLS identity and the CA it trusts for peers.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// CA certificate(s) that peers' certificates must chain to.
    pub trusted_ca: PathBuf,
    /// This side's certificate chain.
    pub cert: PathBuf,
    /// This side's private key.
    pub key: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| TlsError::PrivateKey {
        path: path.to_owned(),
        source,
    })
}

/// The CA certificates in the PEM bundle at `path`, as trust anchors.
///
/// # Errors
/// [`TlsError`] naming the file if it cannot be read or holds no usable CA certificate.
pub fn trust_anchors(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store.add(cert).map_err(|source| TlsError::TrustAnchor {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(Arc::new(store))
}

/// Installs the ring crypto provider as the process default (idempotent).
pub fn install_crypto_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A TLS 1.3 server configuration that requires a client certificate chaining to
/// `files.trusted_ca`, and offers HTTP/2 (gRPC) via ALPN.
///
/// # Errors
/// [`TlsError`] naming the file that cannot be read or used.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(
        trust_anchors(&files.trusted_ca)?,
        provider.clone(),
    )
    .build()
    .map_err(TlsError::Verifier)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(&files.cert)?, private_key(&files.key)?)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Client-side TLS for tonic channels: trust `files.trusted_ca`, present `files.cert`.
///
/// # Errors
/// [`TlsError`] if a file cannot be read.
pub fn client_config(files: &TlsFiles) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
    let ca = read(&files.trusted_ca)?;
    let cert = read(&files.cert)?;
    let key = read(&files.key)?;
    Ok(tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca))
        .identity(tonic::transport::Identity::from_pem(cert, key)))
}

/// The server TLS configuration a port uses for the connections it accepts next.
///
/// Each accepted connection takes the configuration current at its accept, so a configuration
/// swapped in by [`ServerTlsSender`] (a reloaded certificate, key or CA bundle) applies to new
/// connections while established ones keep the session they negotiated: in-flight requests are
/// never cut.
#[derive(Clone, Debug)]
pub struct ServerTls(watch::Receiver<Arc<ServerConfig>>);

/// Swaps the configuration of the [`ServerTls`] it was made with.
pub type ServerTlsSender = watch::Sender<Arc<ServerConfig>>;

impl ServerTls {
    /// A source starting with `config`, and the sender that replaces it.
    pub fn reloadable(config: Arc<ServerConfig>) -> (ServerTlsSender, Self) {
        let (tx, rx) = watch::channel(config);
        (tx, Self(rx))
    }

    /// The configuration for a connection accepted now.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.0.borrow())
    }
}

impl From<Arc<ServerConfig>> for ServerTls {
    /// A fixed configuration (nothing can replace it).
    fn from(config: Arc<ServerConfig>) -> Self {
        Self(watch::channel(config).1)
    }
}

/// A stream of authenticated TLS connections for `Server::serve_with_incoming`.
///
/// Dropping it stops the accept loop.
pub struct TlsIncoming {
    rx: mpsc::Receiver<Result<LimitedStream, io::Error>>,
    accept_loop: AbortHandle,
}

impl TlsIncoming {
    /// Starts accepting on `listener` within `limits`, each connection with the configuration
    /// `config` holds when it is accepted; handshakes that fail are logged and dropped.
    pub fn new(
        listener: TcpListener,
        config: impl Into<ServerTls>,
        port_name: &'static str,
        limits: AcceptLimits,
    ) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let config = config.into();
        let handshakes = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
        let connections = limits
            .max_connections
            .map(|n| Arc::new(Semaphore::new(n.max(1))));
        let sources = SourceCounts::new(limits.max_handshakes_per_source);
        let turned_away = Arc::new(LogLimiter::new(retry::LOG_INTERVAL));
        let timeout = limits.handshake_timeout;
        let accept_loop = tokio::spawn(async move {
            loop {
                // At either limit the loop waits here: new connections stay in the kernel's
                // backlog and cost this process nothing.
                let connection = match &connections {
                    Some(budget) => match Arc::clone(budget).acquire_owned().await {
                        Ok(slot) => Some(slot),
                        Err(_) => return,
                    },
                    None => None,
                };
                let Ok(handshake) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(port = port_name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(source) = sources.admit(peer.ip()) else {
                    if let Some(count) = turned_away.admit(std::time::Instant::now()) {
                        tracing::info!(port = port_name, %peer, count, "too many handshakes from one address; connections closed");
                    }
                    continue;
                };
                prepare_accepted(&tcp, port_name);
                let acceptor = TlsAcceptor::from(config.current());
                let tx = tx.clone();
                let turned_away = Arc::clone(&turned_away);
                tokio::spawn(async move {
                    let outcome = tokio::time::timeout(timeout, acceptor.accept(tcp)).await;
                    drop((handshake, source));
                    match outcome {
                        Ok(Ok(stream)) => {
                            // The server is gone if the receiver is closed; nothing to do.
                            let _ = tx.send(Ok(LimitedStream::new(stream, connection))).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(port = port_name, %peer, error = %e, "TLS handshake refused");
                        }
                        Err(_) => {
                            if let Some(count) = turned_away.admit(std::time::Instant::now()) {
                                tracing::info!(port = port_name, %peer, count, "TLS handshake timed out");
                            }
                        }
                    }
                });
            }
        })
        .abort_handle();
        Self { rx, accept_loop }
    }
}

/// Turns Nagle's algorithm off on an accepted socket.
///
/// gRPC writes a response as several small TLS records (headers, data, trailers). With
/// Nagle's algorithm on, a record that follows an unacknowledged one waits for the peer's
/// delayed ACK (up to 40 ms on Linux), so a call whose response spans more than one segment
/// took ~44 ms instead of a fraction of a millisecond. `Server::tcp_nodelay` does not apply
/// to a custom incoming stream, so the accept loop sets it on every socket it accepts.
/// Failing to set it only costs latency: it is logged and the connection kept.
pub fn prepare_accepted(tcp: &TcpStream, port_name: &'static str) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!(port = port_name, error = %e, "cannot set TCP_NODELAY");
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl Stream for TlsIncoming {
    type Item = Result<LimitedStream, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The identity a verified peer certificate names: its first URI SAN, else its subject CN.
///
/// Returns `None` when the request did not arrive over mutual TLS or the certificate names
/// nothing.
pub fn peer_identity<T>(request: &tonic::Request<T>) -> Option<String> {
    #[cfg(feature = "testing")]
    if let Some(InProcessPeer(identity)) = request.extensions().get() {
        return Some(identity.clone());
    }
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    identity_of(leaf.as_ref())
}

/// The identity the in-process router of the test fixture (`crate::testing`) vouches for on a
/// request it delivers: the `node-<id>` a mutual-TLS handshake would have proven. Request
/// extensions are filled in this process only (tonic puts nothing from the wire there), so no
/// peer can claim one over the network; and the type exists only with feature `testing`.
#[cfg(feature = "testing")]
#[derive(Clone, Debug)]
pub struct InProcessPeer(pub String);

/// The identity a DER certificate names: its first URI SAN, else its subject CN.
pub fn identity_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                return Some((*uri).to_owned());
            }
        }
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    common_name
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        TlsFiles {
            trusted_ca: write("ca.pem", cert),
            cert: write("cert.pem", cert),
            key: write("key.pem", key),
        }
    }

    #[test]
    fn malformed_pem_keeps_the_parser_error() {
        let dir = tempfile::tempdir().unwrap();
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let e = server_config(&files(dir.path(), bad, "")).unwrap_err();
        assert!(
            matches!(&e, TlsError::Pem { path, .. } if path.ends_with("ca.pem")),
            "{e:?}"
        );
        let source = e.source().expect("a source");
        assert!(source.downcast_ref::<pem::Error>().is_some(), "{source:?}");
    }

    #[test]
    fn a_file_without_certificates_or_keys_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = server_config(&files(dir.path(), "no pem here\n", "")).unwrap_err();
        assert!(
            matches!(&e, TlsError::NoCertificate { path } if path.ends_with("ca.pem")),
            "{e:?}"
        );
        let e = private_key(&dir.path().join("key.pem")).unwrap_err();
        assert!(
            matches!(&e, TlsError::PrivateKey { path, source: pem::Error::NoItemsFound }
                if path.ends_with("key.pem")),
            "{e:?}"
        );
    }
}
