//! Certificate reload without a restart.
//!
//! The node certificate, its key and both CA bundles (`[tls]`) are read again on SIGHUP and
//! whenever their contents change (checked every `tls.reload_poll_ms`). A new set is used only
//! if all of it is valid together: every file reads and parses, the key matches the
//! certificate, the certificate chains to the node CA and is valid now, and the two CA bundles
//! still share nothing. Then both ports take it for the connections they accept from then on,
//! and peers are dialled with it; connections already open keep the session they negotiated,
//! so requests in flight are never cut. Anything else is refused with one log line naming the
//! file and the reason, and the files in use stay in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest, Sha256};
use tessera_raft::tls::{self, ServerTlsSender, TlsError, TlsFiles};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::{ConfigError, TlsSection};
use crate::node::Node;
use crate::ops::metrics::Metrics;

/// Why a new set of TLS files was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CA bundle is unusable, or the two bundles share a CA.
    #[error(transparent)]
    Ca(#[from] ConfigError),
    /// A file does not make a TLS configuration (PEM, key mismatch, trust anchor).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The new node certificate names another identity than the one in use: peers admit a
    /// node's cluster RPCs only under its own identity (`node-<id>`), so the node would be
    /// cut off from the cluster.
    #[error("{path} names {found:?}, the certificate in use names {expected:?}")]
    IdentityChanged {
        /// The node certificate.
        path: PathBuf,
        /// The identity of the certificate in use.
        expected: Option<String>,
        /// The identity of the new certificate.
        found: Option<String>,
    },
    /// The node certificate does not chain to the node CA, or is not valid now.
    #[error("{path} is not a valid node certificate under {node_ca}: {source}")]
    Untrusted {
        /// The node certificate.
        path: PathBuf,
        /// The node CA bundle.
        node_ca: PathBuf,
        /// rustls's verdict.
        #[source]
        source: rustls::Error,
    },
}

/// What one reload attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The files hold what is in use already (or what was refused already).
    Unchanged,
    /// The new files are in use for new connections.
    Reloaded,
    /// The new files were refused; the old ones stay in use.
    Refused,
}

impl Outcome {
    /// The metric label of the outcome.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unchanged => "unchanged",
            Self::Reloaded => "reloaded",
            Self::Refused => "refused",
        }
    }
}

/// Watches the `[tls]` files and swaps the configurations of both ports.
pub struct TlsReloader {
    tls: TlsSection,
    api: ServerTlsSender,
    node: Option<Arc<Node>>,
    metrics: Option<Arc<Metrics>>,
    /// Digest of the files in use.
    applied: Option<[u8; 32]>,
    /// Identity (URI SAN, else CN) of the node certificate in use.
    identity: Option<String>,
    /// The files last refused (not tried again, or logged again, until they change or a
    /// SIGHUP asks for it).
    refused: Option<Seen>,
}

/// What a look at the files found, other than the files in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Files with this digest.
    Files([u8; 32]),
    /// A file that cannot be read (missing, mid-rename, unreadable).
    Unreadable,
}

impl TlsReloader {
    /// A reloader of `tls` for the API port's `api` configuration and, with `node`, the
    /// cluster port and peer connections. The files as they are now are taken to be in use.
    pub fn new(
        tls: TlsSection,
        api: ServerTlsSender,
        node: Option<Arc<Node>>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let applied = digest(&tls).ok();
        let identity = leaf_identity(&tls.node_cert);
        Self {
            tls,
            api,
            node,
            metrics,
            applied,
            identity,
            refused: None,
        }
    }

    /// Reloads if the files changed since they were last used or refused; with `forced` (a
    /// SIGHUP), also tries again files refused before, and logs the outcome either way.
    pub fn reload(&mut self, forced: bool) -> Outcome {
        let outcome = self.attempt(forced);
        if let Some(metrics) = &self.metrics {
            if outcome != Outcome::Unchanged {
                metrics.tls_reload(outcome);
            }
        }
        if forced && outcome == Outcome::Unchanged {
            tracing::info!("SIGHUP: TLS files unchanged; nothing reloaded");
        }
        outcome
    }

    fn attempt(&mut self, forced: bool) -> Outcome {
        let current = match digest(&self.tls) {
            Ok(current) if Some(current) == self.applied => return Outcome::Unchanged,
            Ok(current) => current,
            Err(e) => return self.refuse(Seen::Unreadable, forced, &e),
        };
        if !forced && self.refused == Some(Seen::Files(current)) {
            return Outcome::Unchanged;
        }
        match self.apply() {
            Ok(identity) => {
                self.applied = Some(current);
                self.identity = identity;
                self.refused = None;
                tracing::info!(
                    cert = %self.tls.node_cert.display(),
                    "TLS files reloaded: new connections on both ports use them"
                );
                Outcome::Reloaded
            }
            Err(e) => self.refuse(Seen::Files(current), forced, &e),
        }
    }

    /// Records and logs a refusal of `seen`, unless it was refused already and this is not a
    /// SIGHUP.
    fn refuse(&mut self, seen: Seen, forced: bool, e: &ReloadError) -> Outcome {
        if !forced && self.refused == Some(seen) {
            return Outcome::Unchanged;
        }
        tracing::error!(error = %e, "new TLS files refused; the ones in use stay in use");
        self.refused = Some(seen);
        Outcome::Refused
    }

    /// Validates the files together and, only if all of them are good, swaps both ports.
    /// Returns the identity of the new node certificate.
    fn apply(&self) -> Result<Option<String>, ReloadError> {
        self.tls.check_ca_separation()?;
        check_node_certificate(&self.tls.node_cert, &self.tls.node_ca)?;
        let identity = leaf_identity(&self.tls.node_cert);
        if identity != self.identity {
            return Err(ReloadError::IdentityChanged {
                path: self.tls.node_cert.clone(),
                expected: self.identity.clone(),
                found: identity,
            });
        }
        let api = tls::server_config(&api_files(&self.tls))?;
        if let Some(node) = &self.node {
            node.raft().reload_tls(&cluster_files(&self.tls))?;
        }
        self.api.send_replace(api);
        Ok(identity)
    }

    /// Reloads on every SIGHUP received on `hangups` (see [`hangups`]) and whenever the files
    /// change, until the task is dropped.
    pub async fn run(mut self, mut hangups: Signal) {
        let mut poll = tokio::time::interval(Duration::from_millis(self.tls.reload_poll_ms));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = hangups.recv() => true,
                _ = poll.tick() => false,
            };
            self.reload(forced);
        }
    }
}

/// Starts receiving SIGHUP. From then on the signal no longer terminates the process (its
/// default action); call it before the node announces that it runs.
///
/// # Errors
/// The I/O error if the handler cannot be installed.
pub fn hangups() -> std::io::Result<Signal> {
    signal(SignalKind::hangup())
}

/// The API port's files: the node certificate and key, trusting the client CA.
pub fn api_files(tls: &TlsSection) -> TlsFiles {
    TlsFiles {
        trusted_ca: tls.client_ca.clone(),
        cert: tls.node_cert.clone(),
        key: tls.node_key.clone(),
    }
}

/// The cluster port's files: the node certificate and key, trusting the node CA.
pub fn cluster_files(tls: &TlsSection) -> TlsFiles {
    TlsFiles {
        trusted_ca: tls.node_ca.clone(),
        cert: tls.node_cert.clone(),
        key: tls.node_key.clone(),
    }
}

/// The identity the first certificate in the PEM file at `path` names (`None` if it cannot be
/// read or names none).
fn leaf_identity(path: &Path) -> Option<String> {
    let pem = std::fs::read(path).ok()?;
    let leaf = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
    tls::identity_of(leaf.as_ref())
}

/// SHA-256 over the four files' contents, each with its length.
fn digest(tls: &TlsSection) -> Result<[u8; 32], ReloadError> {
    let mut hasher = Sha256::new();
    for path in [&tls.node_ca, &tls.node_cert, &tls.node_key, &tls.client_ca] {
        let bytes = read(path)?;
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher.finalize().into())
}

fn read(path: &Path) -> Result<Vec<u8>, ReloadError> {
    std::fs::read(path).map_err(|source| ReloadError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Fails unless the certificate chain in `cert` chains to a CA of `node_ca` and is valid now
/// (peers check exactly this when the node dials them or answers them).
fn check_node_certificate(cert: &Path, node_ca: &Path) -> Result<(), ReloadError> {
    let roots = tls::trust_anchors(node_ca)?;
    let pem = read(cert)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| {
            ReloadError::Tls(TlsError::Pem {
                path: cert.to_owned(),
                source,
            })
        })?;
    let untrusted = |source| ReloadError::Untrusted {
        path: cert.to_owned(),
        node_ca: node_ca.to_owned(),
        source,
    };
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(ReloadError::Tls(TlsError::NoCertificate {
            path: cert.to_owned(),
        }));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| ReloadError::Tls(TlsError::Verifier(e)))?;
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map_err(untrusted)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    use super::*;

    /// A CA: its certificate (PEM) and what signs with it.
    fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    }

    /// A certificate and key (PEM) for `node-1` signed by `issuer`.
    fn node_cert(issuer: &Issuer<'_, KeyPair>) -> (String, String) {
        named_cert(issuer, "node-1")
    }

    /// A node certificate and key (PEM) naming `identity`, signed by `issuer`.
    fn named_cert(issuer: &Issuer<'_, KeyPair>, identity: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, identity);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        tls: TlsSection,
        node_ca: Issuer<'static, KeyPair>,
    }

    impl Fixture {
        fn new() -> Self {
            tls::install_crypto_provider();
            let dir = tempfile::tempdir().unwrap();
            let (node_ca_pem, node_ca) = ca("node CA");
            let (client_ca_pem, _) = ca("client CA");
            let tls = TlsSection {
                node_ca: dir.path().join("ca.pem"),
                node_cert: dir.path().join("node.pem"),
                node_key: dir.path().join("node-key.pem"),
                client_ca: dir.path().join("client-ca.pem"),
                reload_poll_ms: 1_000,
            };
            std::fs::write(&tls.node_ca, node_ca_pem).unwrap();
            std::fs::write(&tls.client_ca, client_ca_pem).unwrap();
            let fixture = Self {
                _dir: dir,
                tls,
                node_ca,
            };
            fixture.install(&node_cert(&fixture.node_ca));
            fixture
        }

        fn install(&self, (cert, key): &(String, String)) {
            std::fs::write(&self.tls.node_cert, cert).unwrap();
            std::fs::write(&self.tls.node_key, key).unwrap();
        }

        /// A reloader of the API port only, and a receiver of its configuration.
        fn reloader(&self) -> (TlsReloader, tls::ServerTls) {
            let config = tls::server_config(&api_files(&self.tls)).unwrap();
            let (sender, source) = tls::ServerTls::reloadable(config);
            (
                TlsReloader::new(self.tls.clone(), sender, None, None),
                source,
            )
        }
    }

    #[test]
    fn a_valid_new_certificate_is_used_for_new_connections() {
        let fixture = Fixture::new();
        let (mut reloader, source) = fixture.reloader();
        let before = source.current();
        assert_eq!(reloader.reload(false), Outcome::Unchanged);
        assert!(Arc::ptr_eq(&before, &source.current()));
        fixture.install(&node_cert(&fixture.node_ca));
        assert_eq!(reloader.reload(false), Outcome::Reloaded);
        assert!(!Arc::ptr_eq(&before, &source.current()));
        assert_eq!(reloader.reload(false), Outcome::Unchanged);
    }

    #[test]
    fn bad_new_files_are_refused_and_the_old_configuration_stays() {
        let fixture = Fixture::new();
        let (mut reloader, source) = fixture.reloader();
        let in_use = source.current();
        let good = node_cert(&fixture.node_ca);
        let (_, other_ca) = ca("another CA");
        let foreign = node_cert(&other_ca);
        let mismatched = (good.0.clone(), node_cert(&fixture.node_ca).1);
        let garbage = ("not a certificate\n".to_owned(), good.1.clone());
        let truncated = (good.0[..good.0.len() / 2].to_owned(), good.1.clone());
        let another_node = named_cert(&fixture.node_ca, "node-2");
        for (what, files) in [
            ("a certificate of another node", another_node),
            ("a certificate of another CA", foreign),
            ("a key that does not match", mismatched),
            ("a file without a certificate", garbage),
            ("a truncated certificate", truncated),
        ] {
            fixture.install(&files);
            assert_eq!(reloader.reload(false), Outcome::Refused, "{what}");
            assert!(Arc::ptr_eq(&in_use, &source.current()), "{what}");
            // Polling again does not retry (or log) the same refused files; SIGHUP does.
            assert_eq!(reloader.reload(false), Outcome::Unchanged, "{what}");
            assert_eq!(reloader.reload(true), Outcome::Refused, "{what}");
        }
        std::fs::remove_file(&fixture.tls.node_key).unwrap();
        assert_eq!(reloader.reload(false), Outcome::Refused, "a missing key");
        assert_eq!(reloader.reload(false), Outcome::Unchanged, "a missing key");
        assert_eq!(reloader.reload(true), Outcome::Refused, "a missing key");
        assert!(Arc::ptr_eq(&in_use, &source.current()));
        fixture.install(&good);
        assert_eq!(reloader.reload(false), Outcome::Reloaded);
    }

    #[test]
    fn a_client_ca_that_repeats_the_node_ca_is_refused() {
        let fixture = Fixture::new();
        let (mut reloader, source) = fixture.reloader();
        let in_use = source.current();
        std::fs::copy(&fixture.tls.node_ca, &fixture.tls.client_ca).unwrap();
        assert_eq!(reloader.reload(false), Outcome::Refused);
        assert!(Arc::ptr_eq(&in_use, &source.current()));
    }
}
