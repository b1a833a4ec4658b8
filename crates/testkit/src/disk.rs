//! Full disks on demand: a node's data directory on a size-limited tmpfs of its own, filled
//! with a ballast file until writes fail with "no space left on device", then freed, like an
//! operator clearing a full disk.
//!
//! Mounting needs `CAP_SYS_ADMIN` (root). The mount belongs to the test or harness, not to a
//! node, so the data outlives node kills and restarts; it is unmounted when the [`Tmpfs`] is
//! dropped, which owners do after stopping the node.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Name of the file that fills the filesystem during a fault.
const BALLAST: &str = "chaos-ballast";

/// Size of each write while filling.
const CHUNK: usize = 1 << 20;

/// Whether this process may mount a tmpfs (it runs as root). Tests of full disks return
/// early, saying so, where it may not; CI runs as root.
pub fn mounting_allowed() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A mounted, size-limited tmpfs. Dropping it unmounts it.
#[derive(Debug)]
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_mib` MiB at `path` (created if missing), readable by its owner
    /// only.
    ///
    /// # Errors
    /// If the directory cannot be made or the mount is refused (usually: not root).
    pub fn mount(path: &Path, size_mib: u64) -> Result<Self> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0700")])
            .arg("tessera-chaos")
            .arg(path)
            .output()
            .context("cannot run mount")?;
        if !out.status.success() {
            bail!(
                "the disk fault puts each node's data on its own size-limited tmpfs, and mounting \
                 one at {} was refused ({}); it needs root",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a ballast file into `dir` until its filesystem is full; returns the bytes written.
///
/// # Errors
/// If the ballast file cannot be created at all.
pub fn fill(dir: &Path) -> Result<u64> {
    let path = dir.join(BALLAST);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // Whole chunks first, then smaller writes take the last partial pages.
    for size in [CHUNK, 4096, 1] {
        let chunk = vec![0xA5_u8; size];
        while file.write_all(&chunk).is_ok() {}
    }
    Ok(file.metadata().map(|m| m.len()).unwrap_or(0))
}

/// Removes the ballast file from `dir`, if there is one.
///
/// # Errors
/// If it exists and cannot be removed.
pub fn free(dir: &Path) -> Result<()> {
    match std::fs::remove_file(dir.join(BALLAST)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot free {}", dir.display()))
        }
        _ => Ok(()),
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds it open: detach it now, the kernel frees it when released.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_to_the_quota_frees_and_unmounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let mounted = Tmpfs::mount(&path, 4);
        if !mounting_allowed() {
            let message = format!("{:#}", mounted.unwrap_err());
            assert!(message.contains("needs root"), "{message}");
            return;
        }
        let fs = mounted.unwrap();
        std::fs::write(path.join("before"), b"x").unwrap();
        let written = fill(fs.path()).unwrap();
        assert!(
            written > (4 << 20) - 3 * 4096 && written <= 4 << 20,
            "{written}"
        );
        let full = std::fs::write(path.join("after"), vec![0_u8; 8192]).unwrap_err();
        assert_eq!(full.raw_os_error(), Some(28), "ENOSPC expected: {full}");
        free(fs.path()).unwrap();
        std::fs::write(path.join("after"), vec![0_u8; 8192]).unwrap();
        free(fs.path()).unwrap();
        drop(fs);
        assert!(
            !path.join("before").exists(),
            "the tmpfs is unmounted, its files gone with it"
        );
    }
}
