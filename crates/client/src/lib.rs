//! The Rust client SDK for Tessera.
//!
//! [`Client`] talks mutual-TLS gRPC to the nodes of a cluster. Calls about keys and crypto
//! fail over across the configured endpoints when a node is unreachable or cannot serve, and
//! every write carries a request id so that a retry is applied at most once. Calls about one
//! node's seal (status, unseal, seal) go to the first endpoint only. Access control (identity,
//! policies, grants, the certificate deny-list) is in [`Client`]'s access methods (with [`CreateGrantOptions`] and [`PolicyFormat`]).
//!
//! Signatures can also be checked without the cluster: [`verify_offline`] takes a public key
//! fetched once with [`Client::get_public_key`].
//!
//! Data of any size: [`Client::encrypt_stream`]/[`Client::decrypt_stream`] over
//! `AsyncRead`/`AsyncWrite` and [`Client::encrypt_envelope`]/[`Client::decrypt_envelope`] for
//! byte slices use envelope encryption ([`envelope`]; format in `docs/envelope.md`). Build a
//! client with [`Client::builder`] or from the `TESSERA_*` variables with [`Client::from_env`].
//!
//! What it is not: no server logic, no Raft; it depends only on the protocol definitions and
//! the crypto crate.

mod client;
mod code;
pub mod envelope;
pub mod error;
mod verify;

pub use client::access::{CreateGrantOptions, PolicyFormat};
pub use client::aliases::{alias_name, ALIAS_PREFIX};
pub use client::builder::{
    ClientBuilder, RetryPolicy, ENV_ADDR, ENV_CA_CERT, ENV_CLIENT_CERT, ENV_CLIENT_KEY, ENV_REGION,
};
pub use client::keys::{CreateKeyOptions, ORIGIN_EXTERNAL, ORIGIN_TESSERA, PRIMARY_VERSION};
pub use client::members::NewLearner;
pub use client::rate_limits::{Budget, RateLimit};
pub use client::snapshot::RESTORE_CHUNK_BYTES;
pub use client::{new_request_id, Client, ClientConfig, EndpointStatus};
pub use code::Code;
pub use error::Error;
pub use tessera_proto::code_name;
pub use tessera_proto::v1 as proto;
pub use verify::verify_offline;

/// The README's SDK quick start, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeQuickStart;
