//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with `env!`: a build-script binary cached in a shared
    // target directory may have been compiled for a checkout at another path.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "tessera/v1/system.proto",
        "tessera/v1/keys.proto",
        "tessera/v1/crypto.proto",
        "tessera/v1/access.proto",
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
