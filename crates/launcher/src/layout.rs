//! Where a node's files sit in its directory, for every launcher (`tessera dev`, the test kit,
//! the chaos harness): `config.toml`, `server.log` (the process's output) and `data/` (the
//! configuration's `data_dir`, relative to the configuration file).

use std::path::{Path, PathBuf};

/// The configuration file's name.
pub const CONFIG_FILE: &str = "config.toml";

/// The log file's name: the node's stdout and stderr, appended across restarts.
pub const LOG_FILE: &str = "server.log";

/// The data directory's name.
pub const DATA_DIR: &str = "data";

/// The files of a node laid out in [`NodeFiles::dir`]. Implemented by every launcher's node
/// handle (and by [`Path`], for a node's directory itself), so the layout is written once.
pub trait NodeFiles {
    /// The node's directory.
    fn dir(&self) -> &Path;

    /// Its configuration file.
    fn config(&self) -> PathBuf {
        self.dir().join(CONFIG_FILE)
    }

    /// Its log file.
    fn log(&self) -> PathBuf {
        self.dir().join(LOG_FILE)
    }

    /// Its data directory.
    fn data_dir(&self) -> PathBuf {
        self.dir().join(DATA_DIR)
    }
}

impl NodeFiles for Path {
    fn dir(&self) -> &Path {
        self
    }
}
