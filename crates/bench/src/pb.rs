//! Generated code of the bench's own protos.

/// The echo reference service.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod echo {
    tonic::include_proto!("tessera.bench.v1");
}

/// The subset of etcd's API the bench uses.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod etcd {
    tonic::include_proto!("etcdserverpb");
}
