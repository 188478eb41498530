//! Running the `watchtower` binary as a user would.
//!
//! The binary is the one cargo built next to this test binary: tests run from
//! `target/{profile}/deps/`, the binary is `target/{profile}/watchtower`. Cargo does not
//! build another package's binary for a test, so `just test` builds it first; a missing
//! binary fails with the command to run.
//!
//! Every child runs with the `WATCHTOWER_*` variables of the test environment removed, so
//! only the arguments a test passes decide what the binary does, and is killed if the test
//! drops it.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// How long a one-shot command (`check`, `publish`, `status`, a refused `run`) may take.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// The `watchtower` binary; panics with how to build it when absent.
pub fn watchtower_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/{profile}/deps/e2e-… → target/{profile}/watchtower
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/{profile}/deps");
    let bin = profile_dir.join(format!("watchtower{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the watchtower binary {} is missing: run `cargo build -p watchtower`",
        bin.display()
    );
    bin
}

/// A `watchtower` command with `args`, a clean `WATCHTOWER_*` environment, no stdin and
/// piped output.
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(watchtower_bin());
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WATCHTOWER_") {
            command.env_remove(name);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `watchtower ARGS…` to completion (at most [`COMMAND_DEADLINE`]).
pub async fn watchtower<I, S>(args: I) -> CliOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    RunningProcess::spawn(args).wait(COMMAND_DEADLINE).await
}

/// What a finished command did.
#[derive(Debug)]
pub struct CliOutput {
    /// The command line, for messages.
    pub label: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl CliOutput {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout and stderr together, for checks that do not care which stream a message used.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics (showing the output) unless it exited with status 0; returns `self`.
    pub fn assert_success(self) -> CliOutput {
        assert!(self.success(), "expected success from {self}");
        self
    }

    /// Panics (showing the output) if it exited with status 0; returns `self`.
    pub fn assert_failure(self) -> CliOutput {
        assert!(!self.success(), "expected a failure from {self}");
        self
    }
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` ({})\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
            self.label, self.status, self.stdout, self.stderr
        )
    }
}

/// A `watchtower` process that keeps running until told to stop, such as `watchtower run`.
///
/// Its stdout and stderr are read while it runs, so a chatty process never blocks on a full
/// pipe, and a test can look at what it has logged so far ([`RunningProcess::stderr_so_far`]).
pub struct RunningProcess {
    label: String,
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    /// Everything read from stderr so far; the reader task appends as lines arrive.
    stderr_live: Arc<Mutex<Vec<u8>>>,
}

impl RunningProcess {
    /// Starts `watchtower ARGS…` and returns without waiting.
    pub fn spawn<I, S>(args: I) -> RunningProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let label = format!("watchtower {}", args.join(" "));
        let mut child = command(&args)
            .spawn()
            .unwrap_or_else(|err| panic!("start `{label}`: {err}"));
        let stdout = collect(child.stdout.take(), Arc::default());
        let stderr_live: Arc<Mutex<Vec<u8>>> = Arc::default();
        let stderr = collect(child.stderr.take(), Arc::clone(&stderr_live));
        RunningProcess {
            label,
            child,
            stdout,
            stderr,
            stderr_live,
        }
    }

    /// Starts `watchtower --log-format json run --config CONFIG`: a host as an operator runs
    /// it, logging one JSON object per line so tests can read levels and fields
    /// ([`log_records`]).
    pub fn run_host(config: &Path) -> RunningProcess {
        RunningProcess::spawn([
            OsStr::new("--log-format"),
            OsStr::new("json"),
            OsStr::new("run"),
            OsStr::new("--config"),
            config.as_os_str(),
        ])
    }

    /// What the process has written to stderr up to now.
    pub fn stderr_so_far(&self) -> String {
        let bytes = self.stderr_live.lock().expect("not poisoned");
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child
            .id()
            .expect("the process has not been reaped yet")
    }

    /// Whether the process has exited already.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends SIGTERM, as a container runtime or systemd does to stop a service.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    /// Sends `SIG{name}` with `kill`; panics if `kill` fails (the process is gone).
    fn signal(&self, name: &str) {
        let pid = self.pid();
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run `kill`");
        assert!(status.success(), "`kill -{name} {pid}` failed: {status}");
    }

    /// Kills the process with SIGKILL, as `kill -9` or an out-of-memory kill would: it gets
    /// no chance to finish anything. Returns what it had written.
    pub async fn kill(mut self) -> CliOutput {
        // An error means the process has exited already; `wait` reports how.
        let _ = self.child.start_kill();
        self.wait(COMMAND_DEADLINE).await
    }

    /// Waits for the process to exit and collects its output; kills it and panics if it is
    /// still running after `deadline`.
    pub async fn wait(self, deadline: Duration) -> CliOutput {
        let RunningProcess {
            label,
            mut child,
            stdout,
            stderr,
            stderr_live: _,
        } = self;
        let status = match tokio::time::timeout(deadline, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(err)) => panic!("wait for `{label}`: {err}"),
            Err(_) => {
                // Best effort: the panic below is the verdict either way.
                let _ = child.kill().await;
                let stderr = stderr.await.unwrap_or_default();
                panic!("`{label}` was still running after {deadline:?}\n--- stderr ---\n{stderr}")
            }
        };
        CliOutput {
            label,
            status,
            stdout: stdout.await.expect("the stdout reader does not panic"),
            stderr: stderr.await.expect("the stderr reader does not panic"),
        }
    }
}

/// Reads a child's pipe to the end in a task, appending to `live` as bytes arrive.
fn collect<R>(pipe: Option<R>, live: Arc<Mutex<Vec<u8>>>) -> JoinHandle<String>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Some(mut pipe) = pipe {
            let mut buf = [0_u8; 8192];
            // A read error ends the capture; what was read so far is still worth showing.
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                live.lock()
                    .expect("not poisoned")
                    .extend_from_slice(&buf[..n]);
            }
        }
        let bytes = live.lock().expect("not poisoned");
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// One line of a host's JSON log (`--log-format json`).
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// `TRACE` … `ERROR`.
    pub level: String,
    /// The message.
    pub message: String,
    /// The whole line, for messages.
    pub line: String,
}

impl LogRecord {
    /// Whether this is a `WARN` or `ERROR` line.
    pub fn is_warning(&self) -> bool {
        matches!(self.level.as_str(), "WARN" | "ERROR")
    }

    /// The field `name` of the line (fields sit next to `message`), as text: a string as
    /// it is, any other value in JSON; `None` when the line has no such field.
    pub fn field(&self, name: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.line).ok()?;
        match value.get(name)? {
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// The JSON lines of `log` (other lines, such as a final `error: …`, are skipped).
pub fn log_records(log: &str) -> Vec<LogRecord> {
    log.lines()
        .filter_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            let text = |key: &str| value.get(key)?.as_str().map(str::to_owned);
            Some(LogRecord {
                level: text("level")?,
                message: text("message").unwrap_or_default(),
                line: line.to_owned(),
            })
        })
        .collect()
}

/// Runs `watchtower run --config CONFIG` and waits for it to exit (at most `deadline`), for
/// configurations the host must refuse.
pub async fn run_until_exit(config: &Path, deadline: Duration) -> CliOutput {
    RunningProcess::spawn([
        OsStr::new("run"),
        OsStr::new("--config"),
        config.as_os_str(),
    ])
    .wait(deadline)
    .await
}
