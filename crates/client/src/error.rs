//! The SDK's error type.

use std::path::PathBuf;

use crate::code::Code;

/// Metadata key in which the server sends its stable error code.
pub const ERROR_CODE_METADATA: &str = "tessera-error";

/// A failed SDK call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration is unusable.
    #[error("invalid client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A required setting is not given (builder or environment).
    #[error("no {setting} given (set {env})")]
    Missing {
        /// The setting.
        setting: &'static str,
        /// The environment variable that gives it.
        env: &'static str,
    },
    /// A call did not finish within the client's overall deadline.
    #[error("the call did not finish within {after:?}")]
    DeadlineExceeded {
        /// The deadline.
        after: std::time::Duration,
    },
    /// A certificate or key file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No endpoint could be reached (connection refused, TLS handshake refused, timeout).
    #[error("cannot reach {endpoint}: {detail}")]
    Connect {
        /// The last endpoint tried.
        endpoint: String,
        /// What the transport reported.
        detail: String,
    },
    /// The server answered with an error status.
    #[error("{message}")]
    Status {
        /// The status code.
        code: Code,
        /// The server's message.
        message: String,
        /// The server's stable error code (e.g. `SEALED`), if it sent one.
        tessera_code: Option<String>,
    },
    /// An envelope message could not be written or read: it does not authenticate, is
    /// truncated or malformed, or the stream failed (see [`crate::envelope`]).
    #[error("{source}")]
    Envelope {
        /// What went wrong.
        #[from]
        source: crate::envelope::EnvelopeError,
    },
    /// A local cryptographic check could not run: an unknown key spec or algorithm, a
    /// malformed public key or signature (see [`crate::verify_offline`]).
    #[error("{source}")]
    Crypto {
        /// What the crypto crate reported.
        #[from]
        source: tessera_crypto::Error,
    },
}

impl Error {
    /// The status code; connection failures count as `UNAVAILABLE`.
    pub fn code(&self) -> Code {
        match self {
            Self::Status { code, .. } => *code,
            Self::Connect { .. } => Code::Unavailable,
            Self::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            Self::Config { .. }
            | Self::Missing { .. }
            | Self::Io { .. }
            | Self::Crypto { .. }
            | Self::Envelope { .. } => Code::InvalidArgument,
        }
    }

    /// The status name, e.g. `INVALID_ARGUMENT`, as scripts see it.
    pub fn code_name(&self) -> &'static str {
        self.code().name()
    }

    /// The server's stable error code, e.g. `SEALED`.
    pub fn tessera_code(&self) -> Option<&str> {
        match self {
            Self::Status { tessera_code, .. } => tessera_code.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn from_status(endpoint: &str, status: tonic::Status) -> Self {
        let transport = is_transport_failure(&status);
        if transport {
            return Self::Connect {
                endpoint: endpoint.to_owned(),
                detail: describe_transport(&status),
            };
        }
        let tessera_code = status
            .metadata()
            .get(ERROR_CODE_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Self::Status {
            code: Code::of(status.code()),
            message: status.message().to_owned(),
            tessera_code,
        }
    }

    /// Whether another node might succeed where this one failed.
    pub(crate) fn is_failover(&self) -> bool {
        matches!(self, Self::Connect { .. })
            || matches!(
                self,
                Self::Status {
                    code: Code::Unavailable,
                    ..
                }
            )
    }
}

/// A status produced by the transport rather than by a server handler.
fn is_transport_failure(status: &tonic::Status) -> bool {
    status.metadata().get(ERROR_CODE_METADATA).is_none()
        && matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        )
        && std::error::Error::source(status).is_some()
}

fn describe_transport(status: &tonic::Status) -> String {
    let mut parts = vec![status.message().to_owned()];
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = err.source();
    }
    let joined = parts.join(": ");
    let lower = joined.to_lowercase();
    if lower.contains("certificaterequired") || lower.contains("certificate required") {
        format!("{joined} (the server requires a client certificate: pass --cert/--key)")
    } else if lower.contains("unknownca")
        || lower.contains("unknown ca")
        || lower.contains("unknownissuer")
    {
        format!("{joined} (the certificate is not signed by a CA the other side trusts)")
    } else if lower.contains("connection closed") || lower.contains("broken pipe") {
        format!(
            "{joined} (the server closed the connection: it may have refused the client certificate)"
        )
    } else {
        joined
    }
}
