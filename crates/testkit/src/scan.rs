//! Searching files for secret bytes.

use std::path::{Path, PathBuf};

/// Every regular file under `root`, recursively.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out
}

/// For each needle (with its label), the files under `root` that contain it.
pub fn find_needles(root: &Path, needles: &[(String, Vec<u8>)]) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for file in files_under(root) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for (label, needle) in needles {
            if !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                found.push((label.clone(), file.clone()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles_in_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), b"xxSECRETyy").unwrap();
        std::fs::write(dir.path().join("g"), b"nothing").unwrap();
        let found = find_needles(
            dir.path(),
            &[
                ("s".into(), b"SECRET".to_vec()),
                ("t".into(), b"ABSENT".to_vec()),
            ],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "s");
    }
}
