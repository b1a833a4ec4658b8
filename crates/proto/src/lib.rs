//! Generated protobuf messages and gRPC stubs for Tessera.
//!
//! `v1` is the public API served on a node's API port (clients, the CLI and the SDK use it).
//! `cluster` is the node-to-node protocol on the cluster port; nothing outside a cluster speaks
//! it. The `.proto` sources live in the workspace's `proto/` directory and are compiled by
//! `build.rs` with protox, so building needs no system `protoc`.

/// A module of generated code for one protobuf package. Generated code carries no doc
/// comments of its own and is not held to the workspace lints; its comments come from the
/// `.proto` files, where `<placeholder>` is prose, not HTML.
macro_rules! generated_package {
    ($(#[$doc:meta])* $module:ident = $package:literal) => {
        $(#[$doc])*
        #[allow(
            missing_docs,
            clippy::all,
            clippy::pedantic,
            rustdoc::invalid_html_tags
        )]
        pub mod $module {
            tonic::include_proto!($package);
        }
    };
}

generated_package!(
    /// The public API, package `tessera.v1`.
    v1 = "tessera.v1"
);

/// The encoded `FileDescriptorSet` of the public API (`tessera.v1`, every file and its
/// imports), for the gRPC server reflection service, so that tools such as `grpcurl` can list
/// and call the API without the `.proto` files. The cluster protocol is not in it.
pub const V1_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tessera_v1_descriptor.bin"));

/// The node-to-node protocol, package `tessera.cluster.v1`.
pub mod cluster {
    generated_package!(
        /// Version 1 of the cluster protocol.
        v1 = "tessera.cluster.v1"
    );
}

/// The canonical upper-case name of a gRPC status code (`INVALID_ARGUMENT`, …), as scripts and
/// batch results show it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
