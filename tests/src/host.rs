//! A Watchtower host running inside the test process.
//!
//! [`HostConfig`] builds a `watchtower.toml` the way an operator writes one; [`Host::start`]
//! writes it to a temporary directory, loads it with the host's own `config::load` (so the
//! file format is tested too) and runs `watchtower::run` on the test's runtime with a shutdown
//! signal the test holds. [`Host::stop`] sends the signal and returns what `run` returned, so
//! every test that stops its host also checks that shutdown is clean.
//!
//! Only the keys a test sets are written; everything else keeps the host's default, except
//! `block_ms`, which is 100 here so hosts notice new entries and shutdown quickly, and
//! `[admin] listen`, which is an ephemeral port so parallel tests never share one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a host may take to finish in-flight work and return after the shutdown signal.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// The `XREADGROUP BLOCK` the tests use unless they say otherwise.
const TEST_BLOCK_MS: u64 = 100;

/// The admin listener unless a test says otherwise: an ephemeral port, so hosts of tests
/// running in parallel never compete for the default 9464.
const TEST_ADMIN_LISTEN: &str = "127.0.0.1:0";

/// A `watchtower.toml`, built key by key.
#[derive(Debug, Clone)]
pub struct HostConfig {
    redis_url: String,
    namespace: String,
    consumer_name: Option<String>,
    claim_idle_ms: Option<u64>,
    claim_interval_ms: Option<u64>,
    consumer_grace_ms: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
    max_entry_bytes: Option<u64>,
    block_ms: Option<u64>,
    batch_size: Option<u64>,
    admin_listen: Option<String>,
    handlers: Vec<HandlerConfig>,
}

impl HostConfig {
    /// A host on `redis_url` using `namespace`, with no handlers yet.
    pub fn new(redis_url: impl Into<String>, namespace: impl Into<String>) -> HostConfig {
        HostConfig {
            redis_url: redis_url.into(),
            namespace: namespace.into(),
            consumer_name: None,
            claim_idle_ms: None,
            claim_interval_ms: None,
            consumer_grace_ms: None,
            shutdown_timeout_ms: None,
            max_entry_bytes: None,
            block_ms: Some(TEST_BLOCK_MS),
            batch_size: None,
            admin_listen: Some(TEST_ADMIN_LISTEN.to_owned()),
            handlers: Vec::new(),
        }
    }

    /// `[consumer] name`: the consumer name in every group (hosts sharing a group need
    /// different names; a restarted host keeps its name to find its own pending entries).
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer_name = Some(name.into());
        self
    }

    /// `[consumer] claim_idle_ms`: how long an entry must have been idle in another
    /// consumer before this host takes it over. Each handler's `retry_backoff_max_ms` must
    /// stay below it.
    pub fn claim_idle_ms(mut self, ms: u64) -> Self {
        self.claim_idle_ms = Some(ms);
        self
    }

    /// `[consumer] claim_interval_ms`: how often the host looks for entries to take over.
    pub fn claim_interval_ms(mut self, ms: u64) -> Self {
        self.claim_interval_ms = Some(ms);
        self
    }

    /// `[consumer] consumer_grace_ms`: how long a consumer that owns nothing may stay idle
    /// before the host removes it from the group.
    pub fn consumer_grace_ms(mut self, ms: u64) -> Self {
        self.consumer_grace_ms = Some(ms);
        self
    }

    /// `[consumer] shutdown_timeout_ms`: how long calls in flight get to finish on shutdown.
    pub fn shutdown_timeout_ms(mut self, ms: u64) -> Self {
        self.shutdown_timeout_ms = Some(ms);
        self
    }

    /// `[consumer] max_entry_bytes`: entries larger than this are dead-lettered unread.
    pub fn max_entry_bytes(mut self, bytes: u64) -> Self {
        self.max_entry_bytes = Some(bytes);
        self
    }

    /// `[consumer] block_ms`; `None` leaves the host's default.
    pub fn block_ms(mut self, ms: Option<u64>) -> Self {
        self.block_ms = ms;
        self
    }

    /// `[consumer] batch_size`.
    pub fn batch_size(mut self, count: u64) -> Self {
        self.batch_size = Some(count);
        self
    }

    /// `[admin] listen` (default here: `127.0.0.1:0`); `None` leaves the host's default.
    pub fn admin_listen(mut self, addr: Option<String>) -> Self {
        self.admin_listen = addr;
        self
    }

    /// Adds a `[[handler]]`.
    pub fn handler(mut self, handler: HandlerConfig) -> Self {
        self.handlers.push(handler);
        self
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str("[redis]\n");
        line(&mut out, "url", &quote(&self.redis_url));
        line(&mut out, "namespace", &quote(&self.namespace));

        let mut consumer = String::new();
        if let Some(name) = &self.consumer_name {
            line(&mut consumer, "name", &quote(name));
        }
        opt_line(&mut consumer, "claim_idle_ms", self.claim_idle_ms);
        opt_line(&mut consumer, "claim_interval_ms", self.claim_interval_ms);
        opt_line(&mut consumer, "consumer_grace_ms", self.consumer_grace_ms);
        opt_line(
            &mut consumer,
            "shutdown_timeout_ms",
            self.shutdown_timeout_ms,
        );
        opt_line(&mut consumer, "max_entry_bytes", self.max_entry_bytes);
        opt_line(&mut consumer, "block_ms", self.block_ms);
        opt_line(&mut consumer, "batch_size", self.batch_size);
        if !consumer.is_empty() {
            out.push_str("\n[consumer]\n");
            out.push_str(&consumer);
        }

        if let Some(listen) = &self.admin_listen {
            out.push_str("\n[admin]\n");
            line(&mut out, "listen", &quote(listen));
        }

        for handler in &self.handlers {
            out.push('\n');
            handler.write_toml(&mut out);
        }
        out
    }

    /// Writes the file as `dir/watchtower.toml` and returns its path.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        let path = dir.join("watchtower.toml");
        std::fs::write(&path, self.to_toml())
            .unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
        path
    }
}

/// One `[[handler]]` table.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    name: String,
    component: PathBuf,
    events: Vec<String>,
    group: Option<String>,
    start_from: Option<String>,
    concurrency: Option<u32>,
    ordering_key: Option<String>,
    max_attempts: Option<u32>,
    retry_backoff_ms: Option<u64>,
    retry_backoff_max_ms: Option<u64>,
    timeout_ms: Option<u64>,
    memory_limit_mb: Option<u64>,
    fuel: Option<u64>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    dirs: Vec<(String, PathBuf)>,
    network: Option<bool>,
    config: Vec<(String, String)>,
}

impl HandlerConfig {
    /// A handler `name` running `component` on the streams of `events`.
    pub fn new<E: Into<String>>(
        name: impl Into<String>,
        component: impl Into<PathBuf>,
        events: impl IntoIterator<Item = E>,
    ) -> HandlerConfig {
        HandlerConfig {
            name: name.into(),
            component: component.into(),
            events: events.into_iter().map(Into::into).collect(),
            group: None,
            start_from: None,
            concurrency: None,
            ordering_key: None,
            max_attempts: None,
            retry_backoff_ms: None,
            retry_backoff_max_ms: None,
            timeout_ms: None,
            memory_limit_mb: None,
            fuel: None,
            env: Vec::new(),
            args: Vec::new(),
            dirs: Vec::new(),
            network: None,
            config: Vec::new(),
        }
    }

    /// `group`: the consumer group (default `watch_tower_consumers`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// `start_from`: `"oldest"` or `"latest"`, used when the host creates the group.
    pub fn start_from(mut self, start_from: impl Into<String>) -> Self {
        self.start_from = Some(start_from.into());
        self
    }

    /// `concurrency`.
    pub fn concurrency(mut self, concurrency: u32) -> Self {
        self.concurrency = Some(concurrency);
        self
    }

    /// `ordering_key`: a top-level `data` field that keeps order within a key.
    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// `max_attempts`: deliveries of an entry before a transient failure dead-letters it.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// `retry_backoff_ms`: the delay before the first retry (it doubles per attempt).
    pub fn retry_backoff_ms(mut self, ms: u64) -> Self {
        self.retry_backoff_ms = Some(ms);
        self
    }

    /// `retry_backoff_max_ms`: the longest delay between two attempts.
    pub fn retry_backoff_max_ms(mut self, ms: u64) -> Self {
        self.retry_backoff_max_ms = Some(ms);
        self
    }

    /// Retries after 20 ms, then 40 ms, … at most 200 ms: failing entries reach their
    /// verdict fast, and any `claim_idle_ms` of a second or more stays valid.
    pub fn quick_retries(self) -> Self {
        self.retry_backoff_ms(20).retry_backoff_max_ms(200)
    }

    /// `timeout_ms`: the wall-clock budget of one `handle` call.
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// `memory_limit_mb`: the cap on one instance's memory.
    pub fn memory_limit_mb(mut self, mb: u64) -> Self {
        self.memory_limit_mb = Some(mb);
        self
    }

    /// `fuel`: how much fuel (roughly, wasm instructions) one call may burn.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// Sets the environment variable `name` in the `env` table (what the guest may see).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Appends to `args` (the guest's command-line arguments).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Maps the host directory `host` to `guest` in the `dirs` table (read-only).
    pub fn dir(mut self, guest: impl Into<String>, host: impl Into<PathBuf>) -> Self {
        self.dirs.push((guest.into(), host.into()));
        self
    }

    /// `network`: whether the guest may open connections.
    pub fn network(mut self, allowed: bool) -> Self {
        self.network = Some(allowed);
        self
    }

    /// Sets `key` in `[handler.config]`.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    fn write_toml(&self, out: &mut String) {
        out.push_str("[[handler]]\n");
        line(out, "name", &quote(&self.name));
        line(out, "component", &quote(&self.component.to_string_lossy()));
        let events: Vec<String> = self.events.iter().map(|e| quote(e)).collect();
        line(out, "events", &format!("[{}]", events.join(", ")));
        if let Some(group) = &self.group {
            line(out, "group", &quote(group));
        }
        if let Some(start_from) = &self.start_from {
            line(out, "start_from", &quote(start_from));
        }
        opt_line(out, "concurrency", self.concurrency);
        if let Some(key) = &self.ordering_key {
            line(out, "ordering_key", &quote(key));
        }
        opt_line(out, "max_attempts", self.max_attempts);
        opt_line(out, "retry_backoff_ms", self.retry_backoff_ms);
        opt_line(out, "retry_backoff_max_ms", self.retry_backoff_max_ms);
        opt_line(out, "timeout_ms", self.timeout_ms);
        opt_line(out, "memory_limit_mb", self.memory_limit_mb);
        opt_line(out, "fuel", self.fuel);
        opt_line(out, "network", self.network);
        if !self.env.is_empty() {
            line(out, "env", &inline_table(&self.env));
        }
        if !self.args.is_empty() {
            let args: Vec<String> = self.args.iter().map(|a| quote(a)).collect();
            line(out, "args", &format!("[{}]", args.join(", ")));
        }
        if !self.dirs.is_empty() {
            let dirs: Vec<(String, String)> = self
                .dirs
                .iter()
                .map(|(guest, host)| (guest.clone(), host.to_string_lossy().into_owned()))
                .collect();
            line(out, "dirs", &inline_table(&dirs));
        }
        // Sub-tables come last: every key after `[handler.config]` would land in it.
        if !self.config.is_empty() {
            out.push_str("[handler.config]\n");
            for (key, value) in &self.config {
                line(out, &quote(key), &quote(value));
            }
        }
    }
}

fn line(out: &mut String, key: &str, value: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{key} = {value}");
}

fn opt_line(out: &mut String, key: &str, value: Option<impl std::fmt::Display>) {
    if let Some(value) = value {
        line(out, key, &value.to_string());
    }
}

/// A TOML inline table of strings: `{ "k" = "v", … }`.
fn inline_table(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{} = {}", quote(key), quote(value)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

/// A TOML basic string. JSON string escapes are valid TOML escapes for everything a test
/// writes (paths, names, URLs).
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

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
        let label = config
            .consumer_name
            .clone()
            .unwrap_or_else(|| config.namespace.clone());
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
