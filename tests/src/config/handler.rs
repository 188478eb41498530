//! One `[[handler]]` table of a test's `watchtower.toml`.

use std::path::PathBuf;

use super::{inline_table, line, opt_line, quote};

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
    canary: Option<u32>,
    rollback_on_error_rate: Option<f64>,
    rollback_window: Option<u32>,
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
            canary: None,
            rollback_on_error_rate: None,
            rollback_window: None,
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

    /// `canary`: before swapping in a new version, run it on the last `entries` entries of
    /// each of the handler's streams without committing anything; a trap or a timeout
    /// refuses the swap.
    pub fn canary(mut self, entries: u32) -> Self {
        self.canary = Some(entries);
        self
    }

    /// `rollback_on_error_rate`: swap back to the previous version when more than this share
    /// of the new version's first `rollback_window` calls fail.
    pub fn rollback_on_error_rate(mut self, rate: f64) -> Self {
        self.rollback_on_error_rate = Some(rate);
        self
    }

    /// `rollback_window`: how many first calls of a new version `rollback_on_error_rate`
    /// judges (the host's default is 20).
    pub fn rollback_window(mut self, calls: u32) -> Self {
        self.rollback_window = Some(calls);
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

    pub(super) fn write_toml(&self, out: &mut String) {
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
        opt_line(out, "canary", self.canary);
        // `{:?}` keeps the decimal point (`1.0`, not `1`), so TOML reads a float.
        opt_line(
            out,
            "rollback_on_error_rate",
            self.rollback_on_error_rate.map(|rate| format!("{rate:?}")),
        );
        opt_line(out, "rollback_window", self.rollback_window);
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
