//! Connection and request limits of a node (the `[limits]` section of its configuration):
//! what one client, or many, can make a node hold at once.
//!
//! - Both ports bound their TLS handshakes: a timeout, a number at once per port and per
//!   source address ([`tessera_raft::tls::AcceptLimits`]).
//! - At start the process raises its open-file limit to the hard limit where allowed, and the
//!   API port gets a connection budget of that limit less [`LimitsSection::fd_reserve`]: when
//!   clients hold that many connections the API port stops accepting, and the reserve stays
//!   for the cluster port, the database and logs.
//! - The API port bounds HTTP/2 streams per connection, requests in flight per connection and
//!   in all, and how long a request may run, and probes idle connections with keep-alive
//!   pings.

use std::time::Duration;

use serde::Deserialize;
use tessera_raft::tls::AcceptLimits;
use tonic::transport::Server;
use tower::layer::util::{Identity, Stack};
use tower::limit::GlobalConcurrencyLimitLayer;

/// The `[limits]` section; every key has a default.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Upper bound on one TLS handshake, both ports (default 3 s).
    pub handshake_timeout_ms: u64,
    /// TLS handshakes at once per port; at the limit the port stops accepting (default 256).
    pub max_handshakes: usize,
    /// TLS handshakes at once from one source address per port; further connections from it
    /// are closed at once (default 32).
    pub max_handshakes_per_source: usize,
    /// Open files kept back from API connections for the cluster port, storage and logs
    /// (default 512).
    pub fd_reserve: u64,
    /// HTTP/2 streams one API connection may open at once (default 128).
    pub max_concurrent_streams: u32,
    /// Requests one API connection may have in flight; more wait (default 64).
    pub max_requests_per_connection: usize,
    /// Requests in flight on the API port in all; more wait (default 1024).
    pub max_requests: usize,
    /// How long one API request may run before it fails with `CANCELLED` (default 30 s; must
    /// exceed `raft.write_timeout_ms`).
    pub request_timeout_ms: u64,
    /// Interval of HTTP/2 keep-alive pings on API connections (default 30 s).
    pub keepalive_interval_ms: u64,
    /// How long a keep-alive ping may go unanswered before the connection is closed
    /// (default 10 s).
    pub keepalive_timeout_ms: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            handshake_timeout_ms: 3_000,
            max_handshakes: 256,
            max_handshakes_per_source: 32,
            fd_reserve: 512,
            max_concurrent_streams: 128,
            max_requests_per_connection: 64,
            max_requests: 1024,
            request_timeout_ms: 30_000,
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 10_000,
        }
    }
}

/// Fewest API connections a node allows, whatever its open-file limit and reserve.
const MIN_API_CONNECTIONS: u64 = 64;

impl LimitsSection {
    /// Checks that every limit is positive and that a request may outlast a replicated write.
    ///
    /// # Errors
    /// The name of the offending key and why.
    pub fn validate(&self, write_timeout_ms: u64) -> Result<(), String> {
        let positive = [
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("max_handshakes", to_u64(self.max_handshakes)),
            (
                "max_handshakes_per_source",
                to_u64(self.max_handshakes_per_source),
            ),
            (
                "max_concurrent_streams",
                u64::from(self.max_concurrent_streams),
            ),
            (
                "max_requests_per_connection",
                to_u64(self.max_requests_per_connection),
            ),
            ("max_requests", to_u64(self.max_requests)),
            ("keepalive_interval_ms", self.keepalive_interval_ms),
            ("keepalive_timeout_ms", self.keepalive_timeout_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("limits.{name} must be positive"));
        }
        if self.request_timeout_ms <= write_timeout_ms {
            return Err("limits.request_timeout_ms must exceed raft.write_timeout_ms".into());
        }
        Ok(())
    }

    /// Upper bound on one TLS handshake.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// The accept limits of the cluster port: handshakes bounded, no connection budget.
    pub fn cluster_accept(&self) -> AcceptLimits {
        AcceptLimits {
            handshake_timeout: self.handshake_timeout(),
            max_handshakes: self.max_handshakes,
            max_handshakes_per_source: self.max_handshakes_per_source,
            max_connections: None,
        }
    }

    /// The accept limits of the API port, whose connections may use the process's open-file
    /// limit `open_files` less the reserve (at least `MIN_API_CONNECTIONS`); with the limit
    /// unknown, only the handshakes are bounded.
    pub fn api_accept(&self, open_files: Option<u64>) -> AcceptLimits {
        let budget = open_files.map(|limit| {
            let budget = limit
                .saturating_sub(self.fd_reserve)
                .max(MIN_API_CONNECTIONS);
            usize::try_from(budget).unwrap_or(usize::MAX)
        });
        AcceptLimits {
            max_connections: budget,
            ..self.cluster_accept()
        }
    }

    /// A gRPC server builder for the API port with these stream, in-flight, timeout and
    /// keep-alive limits. `outer` wraps the global in-flight limit: the audit layer goes there,
    /// so that a refusal it holds back (see `crate::audit::layer`) never takes a slot that
    /// other callers' requests need.
    pub fn api_server<L>(
        &self,
        outer: L,
    ) -> Server<Stack<GlobalConcurrencyLimitLayer, Stack<L, Identity>>> {
        Server::builder()
            .max_concurrent_streams(self.max_concurrent_streams)
            .concurrency_limit_per_connection(self.max_requests_per_connection)
            .timeout(Duration::from_millis(self.request_timeout_ms))
            .http2_keepalive_interval(Some(Duration::from_millis(self.keepalive_interval_ms)))
            .http2_keepalive_timeout(Some(Duration::from_millis(self.keepalive_timeout_ms)))
            .layer(outer)
            .layer(GlobalConcurrencyLimitLayer::new(self.max_requests))
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Raises the process's soft open-file limit to its hard limit where allowed, and returns the
/// soft limit in force afterwards (`None` if it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit");
            return None;
        }
    };
    if soft >= hard {
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open-file limit");
            Some(hard)
        }
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit");
            Some(soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_port_leaves_the_reserve_to_the_cluster_port() {
        let limits = LimitsSection::default();
        assert_eq!(
            limits.api_accept(Some(20_000)).max_connections,
            Some(19_488)
        );
        assert_eq!(limits.api_accept(None).max_connections, None);
        assert_eq!(
            limits.api_accept(Some(256)).max_connections,
            Some(64),
            "a tiny limit still admits some clients"
        );
        assert_eq!(limits.cluster_accept().max_connections, None);
        assert_eq!(
            limits.cluster_accept().handshake_timeout,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn zero_limits_and_short_request_timeouts_are_refused() {
        assert_eq!(LimitsSection::default().validate(10_000), Ok(()));
        let zero = LimitsSection {
            max_handshakes_per_source: 0,
            ..LimitsSection::default()
        };
        assert_eq!(
            zero.validate(10_000),
            Err("limits.max_handshakes_per_source must be positive".into())
        );
        let short = LimitsSection {
            request_timeout_ms: 5_000,
            ..LimitsSection::default()
        };
        assert!(short
            .validate(10_000)
            .unwrap_err()
            .contains("request_timeout_ms"));
    }

    #[test]
    fn the_open_file_limit_ends_at_the_hard_limit() {
        let soft = raise_open_file_limit().unwrap();
        let (now, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((soft, now), (hard, hard));
    }
}
