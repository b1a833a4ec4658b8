//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed, and writes the
//! file descriptor set of the public API for the server reflection service.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with `env!`: a build-script binary cached in a shared
    // target directory may have been compiled for a checkout at another path.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let public = [
        "tessera/v1/system.proto",
        "tessera/v1/keys.proto",
        "tessera/v1/crypto.proto",
        "tessera/v1/access.proto",
    ];
    let cluster = "tessera/cluster/v1/cluster.proto";
    for file in public.iter().chain([&cluster]) {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    // Only the public API is described to reflection clients; the cluster protocol is not.
    let descriptors = protox::compile(public, [&root])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join(DESCRIPTOR_SET_FILE), descriptors.encode_to_vec())?;
    let fds = protox::compile(public.iter().chain([&cluster]), [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Ordered maps make encodings deterministic (request fingerprints hash them).
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}

/// The file under `OUT_DIR` holding the public API's encoded `FileDescriptorSet`.
const DESCRIPTOR_SET_FILE: &str = "tessera_v1_descriptor.bin";
