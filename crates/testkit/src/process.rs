//! A `tessera server` child process that is killed when its guard drops.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A running node process.
///
/// The node runs with `--stop-on-stdin-eof` and this guard holds its standard input, so the
/// node exits if the test process dies without running destructors.
pub struct NodeProcess {
    child: Child,
}

impl NodeProcess {
    /// Starts `tessera server --config CONFIG`, appending its output to `log`.
    pub fn spawn(binary: &Path, config: &Path, log: &Path) -> Self {
        let child = tessera_launcher::process::server_command(binary, config, log)
            .unwrap_or_else(|e| panic!("{e}"))
            .env("TESSERA_LOG", "info,openraft=warn,sled=warn")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Self { child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: Signal) {
        // The process may have exited already; then there is nothing to signal.
        let _ = kill(Pid::from_raw(self.child.id() as i32), signal);
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, wait up to `grace` for a clean exit, then SIGKILL. Returns whether it exited
    /// on its own.
    pub fn stop(mut self, grace: Duration) -> bool {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
        false
    }

    /// Pauses the process (SIGSTOP).
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// Resumes a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.exit_status().is_some()
    }

    /// How the process exited, if it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(Signal::SIGCONT);
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Whether a process with this id exists (signal 0 reaches it), to check that nothing a test
/// started outlives it.
pub fn alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|pid| kill(Pid::from_raw(pid), None).is_ok())
}

/// Waits until no process `pid` exists, for at most `timeout`.
///
/// # Panics
/// If it still exists after `timeout`.
pub async fn wait_gone(pid: u32, timeout: Duration) {
    crate::wait_for(&format!("process {pid} to exit"), timeout, || async move {
        if alive(pid) {
            Err("alive")
        } else {
            Ok(())
        }
    })
    .await;
}

/// The last `lines` lines of a file, for failure reports.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
