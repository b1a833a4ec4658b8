//! The public gRPC services of the API port.

/// Implements a generated gRPC service trait, one line per RPC: the one layer between gRPC and
/// the handlers. Each method first runs the node check named in brackets, if any (e.g.
/// `[require_serving]`: the node may answer from its applied state), then takes the caller and
/// the message out of the request, runs its handler (an inherent method of the service taking
/// the message, the arguments the table gives, if any, and the caller, which owns its own checks) and answers with its message or its
/// error as a status. Methods that do not fit that shape follow the table, written out.
macro_rules! rpcs {
    (
        impl $service:ident for $ty:ident, first $check:tt;
        $($rpc:ident($request:ident) -> $response:ident = $handler:ident$(($($arg:expr),*))?;)*
        $({ $($other:tt)* })?
    ) => {
        #[tonic::async_trait]
        impl $service for $ty {
            $(
                async fn $rpc(
                    &self,
                    request: GrpcRequest<pb::$request>,
                ) -> Result<GrpcResponse<pb::$response>, Status> {
                    rpcs!(@check self $check);
                    let (caller, req) = split(request)?;
                    Ok(GrpcResponse::new(
                        self.$handler(req, $($($arg,)*)? &caller).await?,
                    ))
                }
            )*
            $($($other)*)?
        }
    };
    (@check $this:ident []) => {};
    (@check $this:ident [$check:ident]) => {
        $this.node.$check().await?;
    };
}

pub mod access;
pub mod crypto;
pub mod keys;
pub mod snapshot;
pub mod system;

use tessera_proto::v1 as pb;
use tessera_state::{KeyMetadata, KeyVersion};

/// The key version a request's `version` field names. Protobuf carries a plain `u32`, and its
/// default, 0, asks for the key's primary version: that is `None` here.
pub(crate) fn named_version(field: u32) -> Option<KeyVersion> {
    let version = KeyVersion::new(field);
    (!version.is_none()).then_some(version)
}

/// The API view of a key.
pub(crate) fn key_to_proto(meta: &KeyMetadata) -> pb::Key {
    pb::Key {
        key_id: meta.key_id.to_string(),
        name: meta.name.to_string(),
        spec: meta.spec.name().into(),
        usage: meta.usage.name().into(),
        state: meta.state.name().into(),
        primary_version: meta.primary_version.get(),
        versions: meta
            .versions
            .iter()
            .map(|v| pb::KeyVersion {
                version: v.version.get(),
                state: v.state.name().into(),
                created_at_ms: v.created_at_ms,
                destroyed_at_ms: v.destroyed_at_ms.unwrap_or_default(),
            })
            .collect(),
        aliases: meta.aliases.iter().map(ToString::to_string).collect(),
        description: meta.description.clone(),
        created_at_ms: meta.created_at_ms,
        created_by: meta.created_by.clone(),
        origin: meta.origin.name().into(),
        min_decryption_version: meta.min_decryption_version.get(),
        rotation_period_ms: meta.rotation_period_ms.unwrap_or_default(),
        next_rotation_ms: meta.next_rotation_ms.unwrap_or_default(),
        exportable: meta.exportable,
        tags: meta.tags.clone(),
        deletion_date_ms: meta.deletion_date_ms.unwrap_or_default(),
    }
}
