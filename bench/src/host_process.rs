//! `watchtower run` as a child process: its config file, its log, how it is stopped.
//!
//! A child process (rather than the host library inside this program) keeps the figures
//! honest: its CPU time and memory are its own in `/proc`, it is the release binary users
//! run, and nothing of this program's work is mixed into it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};

use crate::redis_server::free_port;

/// How a handler gets its instances (the host's `isolation` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// `isolation = "reuse"`: warm instances, reused across events.
    Reuse,
    /// `isolation = "per-event"`: a fresh instance for every event.
    PerEvent,
    /// No `isolation` key: whatever the host does by default.
    HostDefault,
}

impl Isolation {
    /// The word used in scenario names and the table.
    pub fn label(self) -> &'static str {
        match self {
            Isolation::Reuse => "warm",
            Isolation::PerEvent => "fresh",
            Isolation::HostDefault => "default",
        }
    }

    fn toml_value(self) -> Option<&'static str> {
        match self {
            Isolation::Reuse => Some("reuse"),
            Isolation::PerEvent => Some("per-event"),
            Isolation::HostDefault => None,
        }
    }
}

/// One `[[handler]]` of a host's config.
#[derive(Debug, Clone)]
pub struct HandlerSpec {
    /// Handler name (names its kv hash and dead-letter stream).
    pub name: String,
    /// The `.wasm` component.
    pub component: PathBuf,
    /// Event types it consumes.
    pub events: Vec<String>,
    /// Consumer group.
    pub group: String,
    /// Instance reuse.
    pub isolation: Isolation,
    /// Calls in flight per stream.
    pub concurrency: u32,
    /// `ordering_key`, with `concurrency > 1`.
    pub ordering_key: Option<String>,
    /// The `[handler.config]` table.
    pub config: Vec<(String, String)>,
}

/// Everything a host's config file says.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// `redis://…` of the private server.
    pub redis_url: String,
    /// Key namespace.
    pub namespace: String,
    /// `[consumer] name`, unique per process of one group.
    pub consumer_name: String,
    /// The handlers.
    pub handlers: Vec<HandlerSpec>,
}

/// `[consumer]` settings shared by every benchmark host: the batch of the ceiling, and a short
/// block so an idle read never holds up a shutdown.
const BATCH_SIZE: u32 = 500;
const BLOCK_MS: u32 = 100;

impl HostSpec {
    /// The text of `watchtower.toml`, with an admin listener on `admin_port`.
    pub fn to_toml(&self, admin_port: u16) -> String {
        let mut toml = String::new();
        let q = quote;
        let _ = writeln!(toml, "[redis]");
        let _ = writeln!(toml, "url = {}", q(&self.redis_url));
        let _ = writeln!(toml, "namespace = {}", q(&self.namespace));
        let _ = writeln!(toml, "\n[consumer]");
        let _ = writeln!(toml, "name = {}", q(&self.consumer_name));
        let _ = writeln!(toml, "batch_size = {BATCH_SIZE}");
        let _ = writeln!(toml, "block_ms = {BLOCK_MS}");
        let _ = writeln!(toml, "\n[admin]");
        let _ = writeln!(toml, "listen = {}", q(&format!("127.0.0.1:{admin_port}")));
        for handler in &self.handlers {
            let _ = writeln!(toml, "\n[[handler]]");
            let _ = writeln!(toml, "name = {}", q(&handler.name));
            let component = handler.component.to_string_lossy();
            let _ = writeln!(toml, "component = {}", q(&component));
            let events: Vec<String> = handler.events.iter().map(|e| q(e)).collect();
            let _ = writeln!(toml, "events = [{}]", events.join(", "));
            let _ = writeln!(toml, "group = {}", q(&handler.group));
            let _ = writeln!(toml, "start_from = \"oldest\"");
            let _ = writeln!(toml, "concurrency = {}", handler.concurrency);
            if let Some(key) = &handler.ordering_key {
                let _ = writeln!(toml, "ordering_key = {}", q(key));
            }
            if let Some(isolation) = handler.isolation.toml_value() {
                let _ = writeln!(toml, "isolation = {}", q(isolation));
            }
            if !handler.config.is_empty() {
                let _ = writeln!(toml, "[handler.config]");
                for (key, value) in &handler.config {
                    let _ = writeln!(toml, "{key} = {}", q(value));
                }
            }
        }
        toml
    }
}

/// A TOML basic string. JSON string escapes are a subset of TOML's.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A running `watchtower run`.
pub struct HostProcess {
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl HostProcess {
    /// Writes `spec` as a config file into `dir` and starts `binary run --config` on it, its
    /// log (stderr) going to a file next to the config.
    pub fn start(binary: &Path, dir: &Path, spec: &HostSpec) -> anyhow::Result<Self> {
        let config = dir.join(format!("{}.toml", spec.consumer_name));
        std::fs::write(&config, spec.to_toml(free_port()?))
            .with_context(|| format!("writing {}", config.display()))?;
        let log = dir.join(format!("{}.log", spec.consumer_name));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        // The figures are for the file as written: no overrides from this shell.
        for var in [
            "RUST_LOG",
            "WATCHTOWER_CONFIG",
            "WATCHTOWER_REDIS_URL",
            "WATCHTOWER_NAMESPACE",
            "WATCHTOWER_CONSUMER_NAME",
            "WATCHTOWER_ADMIN_LISTEN",
        ] {
            command.env_remove(var);
        }
        let child = command.spawn().with_context(|| {
            format!(
                "starting {} (build it: cargo build --release -p watchtower)",
                binary.display()
            )
        })?;
        let pid = child.id().context("the host exited before it got a pid")?;
        Ok(HostProcess { child, pid, log })
    }

    /// Its process id, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of its log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Asks it to stop (SIGTERM) and waits up to `grace`, then kills it. Returns the exit
    /// status and how long the graceful stop took, or `None` if it had to be killed.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<(ExitStatus, Option<Duration>)> {
        if let Some(status) = self.child.try_wait()? {
            return Ok((status, Some(Duration::ZERO)));
        }
        let asked = std::time::Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => Ok((status?, Some(asked.elapsed()))),
            Err(_) => {
                self.child.kill().await?;
                Ok((self.child.wait().await?, None))
            }
        }
    }
}
