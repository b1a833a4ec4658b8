//! One audit record (schema version 1) and its JSON body.
//!
//! Fields are written in declaration order by `serde_json`, so the body bytes are a function
//! of the record: the hash chain ([`super::chain`]) hashes exactly these bytes.

use serde::{Deserialize, Serialize};
use tessera_state::{KeyVersion, NodeId};

/// Version of the record schema, the `"v"` field.
pub const SCHEMA_VERSION: u32 = 1;

/// A value a caller supplied, recorded only as the HMAC-SHA256 of its bytes under the audit
/// key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashedValue {
    /// What the value was: `context_key`, `context_value`, `key_ref` (a key reference that
    /// did not resolve), `key_name`, `tag_key`, `tag_value`, `alias`, `audit_value`.
    pub field: &'static str,
    /// Lowercase hex HMAC-SHA256.
    pub hmac: String,
}

/// What a node records about one API request, before the chain fields are added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Schema version, [`SCHEMA_VERSION`].
    pub v: u32,
    /// Position in this node's chain, from 1, continuous across files and restarts.
    pub seq: u64,
    /// Wall-clock time the request arrived, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The node that served the request.
    pub node: NodeId,
    /// That node's region.
    pub region: String,
    /// The client's request id for writes that carry one, else `null`.
    pub request_id: Option<String>,
    /// The caller's identity (URI SAN, else CN of its certificate); `null` without one.
    pub identity: Option<String>,
    /// Lowercase hex SHA-256 of the caller's DER certificate.
    pub cert_sha256: Option<String>,
    /// The gRPC method, e.g. `/tessera.v1.Crypto/Encrypt`.
    pub method: String,
    /// The policy action of the method (e.g. `kms:Encrypt`), `null` for an unknown method.
    pub action: Option<&'static str>,
    /// The key the request acted on (the first one, for batches).
    pub key_id: Option<String>,
    /// The key version used, when one was opened.
    pub key_version: Option<KeyVersion>,
    /// The gRPC status code name (`OK`, `PERMISSION_DENIED`, …).
    pub grpc_code: &'static str,
    /// The Tessera error code (`tessera-error` metadata), `null` on success.
    pub tessera_code: Option<String>,
    /// Time from the request's arrival to its outcome, microseconds (the audit write itself
    /// not included).
    pub latency_us: u64,
    /// Caller-supplied values, as HMACs.
    pub hmac: Vec<HashedValue>,
    /// Caller-supplied values not recorded because the node was sealed (no audit key).
    pub hmac_omitted: u32,
}

impl Record {
    /// The JSON body of the record with `prev` (the hash of the previous record) as the last
    /// field: `{"v":1,…,"prev":"<64 hex>"}`.
    pub fn body(&self, prev: &str) -> Result<String, serde_json::Error> {
        #[derive(Serialize)]
        struct Chained<'a> {
            #[serde(flatten)]
            record: &'a Record,
            prev: &'a str,
        }
        serde_json::to_string(&Chained { record: self, prev })
    }
}
