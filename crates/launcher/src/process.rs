//! One node process: spawning `tessera server`, its PID file, signals by PID, and a guard
//! that kills every node it holds when dropped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use tessera_server::{Addresses, ADDRESSES_FILE};
use tokio::process::{Child, Command};

use crate::layout::{NodeFiles, LOG_FILE};
use crate::Error;

/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A node of a local cluster and, while it runs, its process.
#[derive(Debug)]
pub struct NodeProcess {
    /// Node id (1-based).
    pub id: u64,
    /// `https://` address of its API port.
    pub api_addr: String,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its data directory (from the configuration).
    pub data_dir: PathBuf,
    /// Where its standard output and error go.
    pub log: PathBuf,
    /// The file holding its PID while it runs.
    pub pid_file: PathBuf,
    child: Option<Child>,
}

impl NodeProcess {
    /// A node described by its configuration file; not started.
    ///
    /// # Errors
    /// [`Error::Config`] if the file is not a valid node configuration.
    pub fn from_config(id: u64, config: PathBuf, pid_file: PathBuf) -> Result<Self, Error> {
        let parsed =
            tessera_server::ServerConfig::load(&config).map_err(|source| Error::Config {
                path: config.clone(),
                source: Box::new(source),
            })?;
        let log = config
            .parent()
            .map_or_else(|| PathBuf::from(LOG_FILE), NodeFiles::log);
        Ok(Self {
            id,
            api_addr: format!("https://{}", parsed.api.listen),
            data_dir: parsed.data_dir,
            config,
            log,
            pid_file,
            child: None,
        })
    }

    /// Starts `exe server --config …`, appending its output to the log and writing the PID
    /// file. The node stops when its standard input closes, so it follows its launcher down
    /// even if the launcher is killed outright.
    ///
    /// # Errors
    /// [`Error::Io`] if the log cannot be opened, [`Error::Spawn`] if the process cannot start.
    pub fn spawn(&mut self, exe: &Path) -> Result<(), Error> {
        let child = Command::from(server_command(exe, &self.config, &self.log)?)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Spawn {
                id: self.id,
                source,
            })?;
        let pid = child.id().ok_or(Error::ExitedAtOnce { id: self.id })?;
        std::fs::write(&self.pid_file, format!("{pid}\n"))
            .map_err(Error::io("write", &self.pid_file))?;
        self.child = Some(child);
        Ok(())
    }

    /// The PID of the running process.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether the process was started and has not been reaped.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends `signal` to the process by PID; false if there is none (or it is gone).
    pub fn signal(&self, signal: Signal) -> bool {
        let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) else {
            return false;
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).is_ok()
    }

    /// SIGKILLs the process and reaps it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already gone is fine: there is nothing left to kill.
            let _ = child.kill().await;
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }

    /// Stops the process as an operator would: SIGTERM, then a kill after the grace period.
    pub async fn stop(&mut self) {
        self.signal(Signal::SIGTERM);
        self.reap().await;
    }

    /// Waits up to the grace period for an exit started by [`Self::signal`], then kills.
    async fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            if tokio::time::timeout(STOP_GRACE, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }

    /// The exit status if the process ended on its own since the last call (then it is
    /// forgotten and its PID file removed).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        let _ = std::fs::remove_file(&self.pid_file);
        Some(status)
    }

    /// The addresses the running node published once its ports were bound (none before).
    #[must_use]
    pub fn addresses(&self) -> Option<Addresses> {
        published_addresses(&self.data_dir).ok()
    }
}

/// The command that runs `exe server --config config`, appending its standard output and
/// error to `log`. The node stops when its standard input (piped, held by the launcher) closes,
/// so it follows its launcher down even if the launcher is killed outright. Every launcher
/// (sync or async) starts its nodes with this command.
///
/// # Errors
/// [`Error::Io`] if the log cannot be opened.
pub fn server_command(
    exe: &Path,
    config: &Path,
    log: &Path,
) -> Result<std::process::Command, Error> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io("open", log))?;
    let err = out.try_clone().map_err(Error::io("open", log))?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("server")
        .arg("--config")
        .arg(config)
        .arg("--stop-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err);
    Ok(command)
}

/// Why a node's published addresses could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AddressesError {
    /// The file is not there (yet) or cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not (yet completely) written.
    #[error("{} is not valid: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The addresses a node with data directory `data_dir` published once it bound its ports
/// ([`ADDRESSES_FILE`]): the way to learn the ports a node given port 0 was assigned.
///
/// # Errors
/// [`AddressesError`] while the node has not published them.
pub fn published_addresses(data_dir: &Path) -> Result<Addresses, AddressesError> {
    let path = data_dir.join(ADDRESSES_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|source| AddressesError::Invalid { path, source }),
        Err(source) => Err(AddressesError::Read { path, source }),
    }
}

/// The node processes of a cluster; dropping it kills any still running.
#[derive(Debug, Default)]
pub struct Nodes(pub Vec<NodeProcess>);

impl Nodes {
    /// Stops every node: SIGTERM to all, then waits for each (killing it after a grace
    /// period).
    pub async fn stop(&mut self) {
        for node in &self.0 {
            node.signal(Signal::SIGTERM);
        }
        for node in &mut self.0 {
            node.reap().await;
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &mut self.0 {
            if let Some(child) = node.child.as_mut() {
                let _ = child.start_kill();
            }
            let _ = std::fs::remove_file(&node.pid_file);
        }
    }
}
