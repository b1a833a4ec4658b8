//! [`ClientBuilder`]: a [`Client`] from endpoints, certificates (files or in-memory PEM),
//! timeouts, a retry policy and the envelope settings; or from the `TESSERA_*` environment
//! variables the `tessera` command reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use super::{Client, ClientConfig};
use crate::envelope::{CacheLimits, DEFAULT_FRAME_SIZE};
use crate::error::Error;

/// Environment variable listing the node endpoints, comma-separated.
pub const ENV_ADDR: &str = "TESSERA_ADDR";
/// Environment variable naming the CA certificate file.
pub const ENV_CA_CERT: &str = "TESSERA_CA_CERT";
/// Environment variable naming the client certificate file.
pub const ENV_CLIENT_CERT: &str = "TESSERA_CLIENT_CERT";
/// Environment variable naming the client private key file.
pub const ENV_CLIENT_KEY: &str = "TESSERA_CLIENT_KEY";
/// Environment variable of the client's own region (see [`ClientBuilder::region`]).
pub const ENV_REGION: &str = "TESSERA_REGION";

/// How a call is retried while every node refuses for now (no leader, no lease,
/// unreachable): passes over the endpoints separated by full-jitter exponential backoff
/// (a pause drawn uniformly from zero to `min(max_backoff, first_backoff × 2^pass)`), for at
/// most `retry_for`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper end of the first pause.
    pub first_backoff: Duration,
    /// Upper end of any pause.
    pub max_backoff: Duration,
    /// How long to keep retrying; zero: one pass over the endpoints.
    pub retry_for: Duration,
}

impl Default for RetryPolicy {
    /// 25 ms doubling up to 250 ms, for 5 s: a leader failover takes about 1.5 s with the
    /// server's defaults, and a pause cap of 250 ms notices the new leader soon after.
    fn default() -> Self {
        Self {
            first_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(250),
            retry_for: Duration::from_secs(5),
        }
    }
}

/// Where a PEM document comes from.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Bytes(Zeroizing<Vec<u8>>),
}

impl Pem {
    fn load(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        match self {
            Self::File(path) => {
                std::fs::read(path)
                    .map(Zeroizing::new)
                    .map_err(|source| Error::Io {
                        path: path.clone(),
                        source,
                    })
            }
            Self::Bytes(bytes) => Ok(bytes.clone()),
        }
    }
}

/// Builds a [`Client`]; start with [`Client::builder`] or [`ClientBuilder::from_env`].
#[derive(Clone)]
#[must_use]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    ca_cert: Option<Pem>,
    client_cert: Option<Pem>,
    client_key: Option<Pem>,
    connect_timeout: Duration,
    request_timeout: Duration,
    deadline: Option<Duration>,
    retry: RetryPolicy,
    frame_size: u32,
    data_key_cache: Option<CacheLimits>,
    region: Option<String>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("region", &self.region)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            ca_cert: None,
            client_cert: None,
            client_key: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            deadline: None,
            retry: RetryPolicy::default(),
            frame_size: DEFAULT_FRAME_SIZE,
            data_key_cache: None,
            region: None,
        }
    }
}

impl ClientBuilder {
    /// A builder from `TESSERA_ADDR` (comma-separated endpoints), `TESSERA_CA_CERT`,
    /// `TESSERA_CLIENT_CERT` and `TESSERA_CLIENT_KEY` (file paths), as the `tessera` command
    /// reads them; unset variables leave the setting unset.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// [`ClientBuilder::from_env`] over any source of variables.
    fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Self {
        let mut builder = Self::default();
        if let Some(addr) = var(ENV_ADDR) {
            builder = builder.endpoints(
                addr.to_string_lossy()
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty()),
            );
        }
        let file = |name| var(name).map(|path| Pem::File(PathBuf::from(path)));
        builder.ca_cert = file(ENV_CA_CERT);
        builder.client_cert = file(ENV_CLIENT_CERT);
        builder.client_key = file(ENV_CLIENT_KEY);
        builder.region = var(ENV_REGION)
            .map(|r| r.to_string_lossy().trim().to_owned())
            .filter(|r| !r.is_empty());
        builder
    }

    /// Adds one node API endpoint, e.g. `https://127.0.0.1:7401`; calls prefer the endpoints
    /// in the order added and fail over to the others.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.push(endpoint.into());
        self
    }

    /// Replaces the endpoints.
    pub fn endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// The CA that signed the servers' certificates, from a PEM file.
    pub fn ca_cert_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca_cert = Some(Pem::File(path.as_ref().to_owned()));
        self
    }

    /// The CA that signed the servers' certificates, as PEM.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_cert = Some(Pem::Bytes(Zeroizing::new(pem.into())));
        self
    }

    /// The client certificate and its private key, from PEM files.
    pub fn identity_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.client_cert = Some(Pem::File(cert.as_ref().to_owned()));
        self.client_key = Some(Pem::File(key.as_ref().to_owned()));
        self
    }

    /// The client certificate and its private key, as PEM (the key is zeroized when the
    /// builder and the client are dropped).
    pub fn identity_pem(mut self, cert: impl Into<Vec<u8>>, key: Zeroizing<Vec<u8>>) -> Self {
        self.client_cert = Some(Pem::Bytes(Zeroizing::new(cert.into())));
        self.client_key = Some(Pem::Bytes(key));
        self
    }

    /// The client's own region: cluster-wide calls go to the endpoints that name this region
    /// (`eu=https://…`) first, and to the others when those fail (`TESSERA_REGION`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Bound on establishing a connection to one node (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on one call to one node (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Bound on a whole call, failover and retries included (default: none beyond the retry
    /// policy and the per-call timeout). A call past it fails with
    /// [`Error::DeadlineExceeded`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// How calls are retried while no node can serve (see [`RetryPolicy`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Plaintext bytes per frame of the envelope messages this client writes (default
    /// 64 KiB); memory use of envelope encryption is a small multiple of it.
    pub fn frame_size(mut self, frame_size: u32) -> Self {
        self.frame_size = frame_size;
        self
    }

    /// Reuse data keys for [`Client::encrypt_envelope`] within `limits` (off by default).
    pub fn data_key_cache(mut self, limits: CacheLimits) -> Self {
        self.data_key_cache = Some(limits);
        self
    }

    /// The configuration this builder describes, certificates loaded.
    ///
    /// # Errors
    /// [`Error::Missing`] for an unset endpoint, CA, certificate or key; [`Error::Io`] if a
    /// file cannot be read; [`Error::Envelope`] for a frame size out of range.
    pub fn config(&self) -> Result<ClientConfig, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::Missing {
                setting: "endpoint",
                env: ENV_ADDR,
            });
        }
        let load = |pem: &Option<Pem>, setting, env| {
            pem.as_ref()
                .ok_or(Error::Missing { setting, env })
                .and_then(Pem::load)
        };
        crate::envelope::check_frame_size(u64::from(self.frame_size))?;
        Ok(ClientConfig {
            endpoints: self.endpoints.clone(),
            region: self.region.clone(),
            ca_cert_pem: load(&self.ca_cert, "CA certificate", ENV_CA_CERT)?.to_vec(),
            cert_pem: load(&self.client_cert, "client certificate", ENV_CLIENT_CERT)?.to_vec(),
            key_pem: load(&self.client_key, "client key", ENV_CLIENT_KEY)?,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            retry_for: self.retry.retry_for,
            first_backoff: self.retry.first_backoff,
            max_backoff: self.retry.max_backoff,
            deadline: self.deadline,
            frame_size: self.frame_size,
            data_key_cache: self.data_key_cache,
        })
    }

    /// The client.
    ///
    /// # Errors
    /// As [`ClientBuilder::config`], and [`Error::Config`] for a malformed endpoint.
    pub fn build(&self) -> Result<Client, Error> {
        Client::new(self.config()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashMap;
    use std::ffi::OsString;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(*v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_environment_gives_endpoints_and_files_like_the_cli() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.pem", "c.pem", "k.pem"] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        let path = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
        let builder = ClientBuilder::from_vars(vars(&[
            (ENV_ADDR, "https://a:1, https://b:2,"),
            (ENV_CA_CERT, &path("ca.pem")),
            (ENV_CLIENT_CERT, &path("c.pem")),
            (ENV_CLIENT_KEY, &path("k.pem")),
            (ENV_REGION, " eu "),
        ]));
        let config = builder.config().unwrap();
        assert_eq!(config.endpoints, ["https://a:1", "https://b:2"]);
        assert_eq!(config.region.as_deref(), Some("eu"));
        assert_eq!(config.ca_cert_pem, b"ca.pem");
        assert_eq!(config.cert_pem, b"c.pem");
        assert_eq!(config.key_pem.as_slice(), b"k.pem");
        assert!(
            config.data_key_cache.is_none(),
            "the cache is off by default"
        );
    }

    #[test]
    fn a_missing_setting_names_its_variable() {
        let error = ClientBuilder::from_vars(vars(&[])).config().unwrap_err();
        assert!(
            matches!(error, Error::Missing { env: ENV_ADDR, .. }),
            "{error}"
        );
        let error = ClientBuilder::from_vars(vars(&[(ENV_ADDR, "https://a:1")]))
            .config()
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::Missing {
                    env: ENV_CA_CERT,
                    ..
                }
            ),
            "{error}"
        );
        let error = Client::builder()
            .endpoint("https://a:1")
            .ca_cert_pem("ca")
            .identity_files("/nonexistent/c.pem", "/nonexistent/k.pem")
            .config()
            .unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error}");
    }

    #[test]
    fn in_memory_pem_and_settings_reach_the_config() {
        let retry = RetryPolicy {
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(8),
            retry_for: Duration::from_secs(2),
        };
        let config = Client::builder()
            .endpoint("https://a:1")
            .ca_cert_pem("ca")
            .identity_pem("cert", Zeroizing::new(b"key".to_vec()))
            .connect_timeout(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(3))
            .deadline(Duration::from_secs(9))
            .retry(retry)
            .frame_size(4096)
            .data_key_cache(CacheLimits::default())
            .config()
            .unwrap();
        assert_eq!(config.key_pem.as_slice(), b"key");
        assert_eq!(config.retry_for, Duration::from_secs(2));
        assert_eq!(config.max_backoff, Duration::from_millis(8));
        assert_eq!(config.deadline, Some(Duration::from_secs(9)));
        assert_eq!(config.frame_size, 4096);
        assert!(config.data_key_cache.is_some());
        assert!(!format!("{config:?}").contains("key\""));
        let error = Client::builder()
            .endpoint("https://a:1")
            .ca_cert_pem("ca")
            .identity_pem("cert", Zeroizing::new(Vec::new()))
            .frame_size(0)
            .config()
            .unwrap_err();
        assert!(matches!(error, Error::Envelope { .. }), "{error}");
    }
}
