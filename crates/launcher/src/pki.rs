//! A throw-away PKI for development and tests: a node CA, a client CA, node certificates and
//! client certificates.
//!
//! Two CAs keep the ports apart: the cluster port trusts only the node CA, so a client
//! certificate is refused there at the handshake; the API port trusts only the client CA, so a
//! node certificate is refused there (a node refuses to start if the two CA files share a
//! certificate or a key). Node certificates carry the subject CN `node-<id>`, which the
//! cluster checks when a node joins. Private keys are written with mode 0600.
//!
//! Usages: node certificates carry server auth (they serve both ports) and client auth (a node
//! presents its node certificate when it dials a peer's cluster port, whose mutual TLS demands
//! that usage); client certificates carry client auth only.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// Why a PKI could not be created or a certificate issued.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A PKI needs at least one node certificate.
    #[error("--nodes must be at least 1")]
    NoNodes,
    /// The directory already holds a CA; overwriting it would orphan every certificate.
    #[error("{} already holds a PKI; refusing to overwrite it", dir.display())]
    Exists {
        /// The directory.
        dir: PathBuf,
    },
    /// A file or directory could not be created, written or read.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Key generation, signing or parsing of CA material failed.
    #[error("certificate operation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A client identity that is not a safe file name.
    #[error("--name must be 1..=64 of A-Z a-z 0-9 . _ - (and not start with '.')")]
    InvalidIdentity,
    /// A client identity whose files would clash with the CA or node files.
    #[error("--name {identity:?} would clash with the CA or node files")]
    ClashingIdentity {
        /// The identity asked for.
        identity: String,
    },
}

type Result<T, E = PkiError> = std::result::Result<T, E>;

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PkiError {
    let path = path.to_owned();
    move |source| PkiError::Io {
        action,
        path,
        source,
    }
}

/// Node CA certificate file name.
pub const NODE_CA: &str = "ca.pem";
/// Node CA key file name.
pub const NODE_CA_KEY: &str = "ca-key.pem";
/// Client CA certificate file name.
pub const CLIENT_CA: &str = "client-ca.pem";
/// Client CA key file name.
pub const CLIENT_CA_KEY: &str = "client-ca-key.pem";
/// Identity of the client certificate `pki init` issues to the operator (it runs `operator
/// init`, which makes it the cluster's administrator).
pub const ADMIN_IDENTITY: &str = "admin";
/// Identity of the second, unprivileged client certificate `pki init` issues, to show (and
/// test) policies and grants.
pub const APP_IDENTITY: &str = "app";

/// Paths of one issued certificate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    /// The identity (subject CN) in the certificate.
    pub identity: String,
    /// Certificate file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
}

/// What `pki init` created.
#[derive(Debug, serde::Serialize)]
pub struct Pki {
    /// Node CA certificate (what clients use as `--ca-cert`).
    pub ca_cert: PathBuf,
    /// Client CA certificate (what nodes use as `tls.client_ca`).
    pub client_ca_cert: PathBuf,
    /// Node certificates, node 1 first.
    pub nodes: Vec<Issued>,
    /// The admin client certificate.
    pub admin: Issued,
    /// The unprivileged `app` client certificate (no policy names it until one is written).
    pub app: Issued,
}

/// CA parameters. The common name carries a random tag so two PKIs never share an issuer
/// name (a peer then reports "unknown CA" instead of a signature mismatch).
fn ca_params(common_name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut tag = [0u8; 4];
    tessera_crypto::rand_core::Rng::fill_bytes(&mut tessera_crypto::os_rng(), &mut tag);
    params.distinguished_name = name(&format!("{common_name} {}", hex::encode(tag)));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Tessera");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn write_file(path: &Path, contents: &str, secret: bool) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(io_error("create", path))?;
    file.write_all(contents.as_bytes())
        .map_err(io_error("write", path))
}

fn issue(
    dir: &Path,
    file_stem: &str,
    identity: &str,
    sans: &[String],
    server: bool,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<Issued> {
    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name = name(identity);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // A node is also a TLS client: it dials its peers' cluster ports with this certificate.
    params.extended_key_usages = if server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    let issued = Issued {
        identity: identity.to_owned(),
        cert: dir.join(format!("{file_stem}.pem")),
        key: dir.join(format!("{file_stem}-key.pem")),
    };
    write_file(&issued.key, &key.serialize_pem(), true)?;
    write_file(&issued.cert, &cert.pem(), false)?;
    Ok(issued)
}

/// Creates the CAs, `nodes` node certificates (SANs: localhost, 127.0.0.1, ::1 and `extra_sans`)
/// and the `admin` and `app` client certificates in `dir`. Refuses to overwrite an existing PKI.
///
/// # Errors
/// If `dir` already holds a CA, or a file cannot be written.
pub fn init(dir: &Path, nodes: u64, extra_sans: &[String]) -> Result<Pki> {
    if nodes == 0 {
        return Err(PkiError::NoNodes);
    }
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    if dir.join(NODE_CA).exists() || dir.join(CLIENT_CA).exists() {
        return Err(PkiError::Exists {
            dir: dir.to_owned(),
        });
    }
    let node_ca_params = ca_params("Tessera node CA")?;
    let node_ca_key = KeyPair::generate()?;
    let node_ca = node_ca_params.self_signed(&node_ca_key)?;
    write_file(&dir.join(NODE_CA_KEY), &node_ca_key.serialize_pem(), true)?;
    write_file(&dir.join(NODE_CA), &node_ca.pem(), false)?;

    let client_ca_params = ca_params("Tessera client CA")?;
    let client_ca_key = KeyPair::generate()?;
    let client_ca = client_ca_params.self_signed(&client_ca_key)?;
    write_file(
        &dir.join(CLIENT_CA_KEY),
        &client_ca_key.serialize_pem(),
        true,
    )?;
    write_file(&dir.join(CLIENT_CA), &client_ca.pem(), false)?;

    let node_issuer = Issuer::new(node_ca_params, node_ca_key);
    let client_issuer = Issuer::new(client_ca_params, client_ca_key);
    let sans = node_sans(extra_sans);
    let nodes = (1..=nodes)
        .map(|id| {
            issue(
                dir,
                &format!("node{id}"),
                &format!("node-{id}"),
                &sans,
                true,
                &node_issuer,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let admin = issue(
        dir,
        ADMIN_IDENTITY,
        ADMIN_IDENTITY,
        &[],
        false,
        &client_issuer,
    )?;
    let app = issue(dir, APP_IDENTITY, APP_IDENTITY, &[], false, &client_issuer)?;
    Ok(Pki {
        ca_cert: dir.join(NODE_CA),
        client_ca_cert: dir.join(CLIENT_CA),
        nodes,
        admin,
        app,
    })
}

/// The CA stored in `dir` as `cert_file` and `key_file`, to sign with.
fn stored_issuer(dir: &Path, cert_file: &str, key_file: &str) -> Result<Issuer<'static, KeyPair>> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(io_error("read", &path))
    };
    let key = KeyPair::from_pem(&read(key_file)?)?;
    Ok(Issuer::from_ca_cert_pem(&read(cert_file)?, key)?)
}

/// The SANs of a node certificate: localhost, 127.0.0.1, ::1 and `extra_sans`.
fn node_sans(extra_sans: &[String]) -> Vec<String> {
    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    sans.extend(extra_sans.iter().cloned());
    sans
}

/// Issues a new certificate and key for node `id` (identity `node-<id>`, SANs as [`init`]),
/// signed by the node CA in `dir`, as `<file_stem>.pem` and `<file_stem>-key.pem`: what a
/// certificate rotation installs over the node's files (see the runbook in
/// `docs/operations.md`).
///
/// # Errors
/// If the node CA cannot be read or the files exist.
pub fn issue_node(dir: &Path, id: u64, file_stem: &str, extra_sans: &[String]) -> Result<Issued> {
    let issuer = stored_issuer(dir, NODE_CA, NODE_CA_KEY)?;
    issue(
        dir,
        file_stem,
        &format!("node-{id}"),
        &node_sans(extra_sans),
        true,
        &issuer,
    )
}

/// Issues a client certificate for `identity`, signed by the client CA in `dir`.
///
/// # Errors
/// If the identity is not a safe file name, the CA cannot be read, or the files exist.
pub fn issue_client(dir: &Path, identity: &str) -> Result<Issued> {
    let valid = !identity.is_empty()
        && identity.len() <= 64
        && identity
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !identity.starts_with('.');
    if !valid {
        return Err(PkiError::InvalidIdentity);
    }
    if identity == "ca" || identity == "client-ca" || identity.starts_with("node") {
        return Err(PkiError::ClashingIdentity {
            identity: identity.to_owned(),
        });
    }
    let issuer = stored_issuer(dir, CLIENT_CA, CLIENT_CA_KEY)?;
    issue(dir, identity, identity, &[], false, &issuer)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;
    use rustls::RootCertStore;

    use super::*;

    fn certificate(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).unwrap()
    }

    /// (server auth, client auth) in the certificate's extended key usage.
    fn usages(der: &CertificateDer<'_>) -> (bool, bool) {
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        (eku.server_auth, eku.client_auth)
    }

    fn roots(ca: &CertificateDer<'static>) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        Arc::new(roots)
    }

    /// Whether a port trusting `ca` accepts `cert` as a client certificate (as the servers'
    /// TLS setup verifies them).
    fn accepted_as_client(ca: &CertificateDer<'static>, cert: &CertificateDer<'_>) -> bool {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        WebPkiClientVerifier::builder_with_provider(roots(ca), provider)
            .build()
            .unwrap()
            .verify_client_cert(cert, &[], UnixTime::now())
            .is_ok()
    }

    /// Whether a client trusting `ca` accepts `cert` as the server `localhost`.
    fn accepted_as_server(ca: &CertificateDer<'static>, cert: &CertificateDer<'_>) -> bool {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let name = ServerName::try_from("localhost").unwrap();
        WebPkiServerVerifier::builder_with_provider(roots(ca), provider)
            .build()
            .unwrap()
            .verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn each_certificate_gets_the_usages_its_ports_need_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let pki = init(dir.path(), 2, &[]).unwrap();
        let node_ca = certificate(&pki.ca_cert);
        let client_ca = certificate(&pki.client_ca_cert);

        for node in &pki.nodes {
            let cert = certificate(&node.cert);
            assert_eq!(usages(&cert), (true, true), "{}", node.identity);
            // Clients and peers verify it as a server.
            assert!(accepted_as_server(&node_ca, &cert));
            // A peer's cluster port accepts it when this node dials.
            assert!(accepted_as_client(&node_ca, &cert));
            // The API port, which trusts only the client CA, refuses it.
            assert!(!accepted_as_client(&client_ca, &cert));
        }

        assert!(pki.app.cert.ends_with("app.pem"), "{:?}", pki.app.cert);
        assert!(pki.app.key.ends_with("app-key.pem"), "{:?}", pki.app.key);
        let mut clients = vec![pki.admin.clone(), pki.app.clone()];
        clients.push(issue_client(dir.path(), "app-1").unwrap());
        for client in &clients {
            let cert = certificate(&client.cert);
            assert_eq!(usages(&cert), (false, true), "{}", client.identity);
            assert!(accepted_as_client(&client_ca, &cert));
            // Refused on the cluster port, and never good as a server.
            assert!(!accepted_as_client(&node_ca, &cert));
            assert!(!accepted_as_server(&client_ca, &cert));
        }

        // The two CAs pass the check every node runs at start.
        let node = pki.nodes.first().unwrap();
        tessera_server::config::TlsSection {
            node_ca: pki.ca_cert.clone(),
            node_cert: node.cert.clone(),
            node_key: node.key.clone(),
            client_ca: pki.client_ca_cert.clone(),
            reload_poll_ms: tessera_server::config::DEFAULT_RELOAD_POLL_MS,
        }
        .check_ca_separation()
        .unwrap();
    }
}
