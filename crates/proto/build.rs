//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "tessera/v1/system.proto",
        "tessera/v1/keys.proto",
        "tessera/v1/crypto.proto",
        "tessera/cluster/v1/cluster.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Ordered maps make encodings deterministic (request fingerprints hash them).
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
