//! Writes the valid seed inputs of every fuzz target into `fuzz/corpus/<target>/`:
//! `cargo run -p tessera-fuzzing --example write_seeds -- fuzz/corpus`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    for (index, (name, seed)) in tessera_fuzzing::seeds().into_iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{index}")), seed)?;
    }
    Ok(())
}
