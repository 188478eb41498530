//! A Watchtower host running inside the test process.
//!
//! [`Host::start`] writes a [`HostConfig`] to a temporary directory, loads it with the host's
//! own `config::load` (so the file format is tested too) and runs `watchtower::run` on the
//! test's runtime with a shutdown signal the test holds. [`Host::stop`] sends the signal and
//! returns what `run` returned, so every test that stops its host also checks that shutdown
//! is clean.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::HostConfig;

/// How long a host may take to finish in-flight work and return after the shutdown signal.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// A host running on the test's runtime. Dropping it without [`Host::stop`] signals
/// shutdown and abandons the task.
pub struct Host {
    label: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    config_path: PathBuf,
    /// Holds `watchtower.toml` for as long as the host runs.
    _dir: TempDir,
}

impl Host {
    /// Writes `config` to a temporary `watchtower.toml`, loads it with
    /// `watchtower::config::load` and starts `watchtower::run` in a task.
    ///
    /// Returns at once: the host connects and creates its groups in the background, so a
    /// test waits for the effect it needs (a handled event, a group in `XINFO GROUPS`).
    /// Panics with the file's text if the configuration is refused.
    pub async fn start(config: &HostConfig) -> Host {
        let dir = tempfile::Builder::new()
            .prefix("watchtower-host-")
            .tempdir()
            .expect("create a temporary directory for watchtower.toml");
        let config_path = config.write_to(dir.path());
        let loaded = match watchtower::config::load(&config_path) {
            Ok(loaded) => loaded,
            Err(err) => panic!(
                "the host refused {}: {err}\n{}",
                config_path.display(),
                config.to_toml()
            ),
        };
        let label = config.label().to_owned();
        let (signal, on_signal) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender means the same as a sent signal: stop.
            let _ = on_signal.await;
        };
        let task_label = label.clone();
        let task = tokio::spawn(async move {
            let result = watchtower::run(loaded, shutdown).await;
            if let Err(err) = &result {
                // Shown with the test's output if the test fails later, e.g. on a timeout.
                eprintln!("host {task_label} stopped with an error: {err:#}");
            }
            result
        });
        Host {
            label,
            shutdown: Some(signal),
            task: Some(task),
            config_path,
            _dir: dir,
        }
    }

    /// The `watchtower.toml` this host was started from.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Whether `run` is still going (it returns early only on a fatal error).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }

    /// Signals shutdown and waits for `run` to return, at most 30 s; returns its result.
    ///
    /// Panics if the host does not stop in time or its task panicked.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(signal) = self.shutdown.take() {
            // The host may have returned already and dropped the receiver; that is fine.
            let _ = signal.send(());
        }
        let task = self.task.take().expect("a host is stopped once");
        match tokio::time::timeout(STOP_DEADLINE, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => panic!("host {} panicked: {join_error}", self.label),
            Err(_) => panic!(
                "host {} did not stop within {STOP_DEADLINE:?} of the signal",
                self.label
            ),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
