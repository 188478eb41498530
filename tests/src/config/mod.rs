//! `watchtower.toml` for tests, built key by key: [`HostConfig`] and its [`HandlerConfig`]s.
//!
//! The builders write the file the way an operator does. Only the keys a test sets are
//! written; everything else keeps the host's default, except `block_ms`, which is 100 here so
//! hosts notice new entries and shutdown quickly, and `[admin] listen`, which is an ephemeral
//! port so parallel tests never share one (a test that talks to the admin listener picks a
//! free port with [`HostConfig::admin_on_free_port`]).

mod handler;
mod ingest;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use handler::HandlerConfig;
pub use ingest::{IngestConfig, WebhookConfig};

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
    metrics_interval_ms: Option<u64>,
    reload_watch: Option<bool>,
    reload_debounce_ms: Option<u64>,
    cache_dir: Option<PathBuf>,
    cache_enabled: Option<bool>,
    handlers: Vec<HandlerConfig>,
    admin_token: Option<String>,
    ingest: Option<IngestConfig>,
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
            metrics_interval_ms: None,
            reload_watch: None,
            reload_debounce_ms: None,
            cache_dir: None,
            cache_enabled: None,
            handlers: Vec::new(),
            admin_token: None,
            ingest: None,
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

    /// `[admin] listen` on a loopback port that is free at the moment of asking, for tests
    /// that talk to the admin listener ([`HostConfig::admin_addr`] tells where).
    pub fn admin_on_free_port(self) -> Self {
        let port = crate::redis_server::free_port();
        self.admin_listen(Some(format!("127.0.0.1:{port}")))
    }

    /// `[admin] metrics_interval_ms`: how often the host reads stream figures from Redis
    /// for `GET /metrics`.
    pub fn metrics_interval_ms(mut self, ms: u64) -> Self {
        self.metrics_interval_ms = Some(ms);
        self
    }

    /// The `[admin] listen` address written to the file, if any.
    pub fn admin_addr(&self) -> Option<&str> {
        self.admin_listen.as_deref()
    }

    /// `[reload] watch`: whether the host reloads a handler when its `.wasm` changes on disk
    /// (the host's default is on). Tests that reload only on request turn it off, so that
    /// writing the new file and asking for the reload cannot race.
    pub fn reload_watch(mut self, watch: bool) -> Self {
        self.reload_watch = Some(watch);
        self
    }

    /// `[reload] debounce_ms`: the quiet time after the last change of a file before the
    /// host reloads it.
    pub fn reload_debounce_ms(mut self, ms: u64) -> Self {
        self.reload_debounce_ms = Some(ms);
        self
    }

    /// `[cache] dir`: where compiled components are kept. Tests point it at a temporary
    /// directory of their own, never at the user's cache.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// `[cache] enabled`: `false` compiles every component at every load.
    pub fn cache_enabled(mut self, enabled: bool) -> Self {
        self.cache_enabled = Some(enabled);
        self
    }

    /// A short name for this host in messages: its consumer name, else its namespace.
    pub fn label(&self) -> &str {
        self.consumer_name.as_deref().unwrap_or(&self.namespace)
    }

    /// `[admin] token`: the bearer token mutating admin requests must carry.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// `[ingest]` and its `[webhooks.*]` tables.
    pub fn ingest(mut self, ingest: IngestConfig) -> Self {
        self.ingest = Some(ingest);
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

        let mut admin = String::new();
        if let Some(listen) = &self.admin_listen {
            line(&mut admin, "listen", &quote(listen));
        }
        opt_line(&mut admin, "metrics_interval_ms", self.metrics_interval_ms);
        if let Some(token) = &self.admin_token {
            line(&mut admin, "token", &quote(token));
        }
        if !admin.is_empty() {
            out.push_str("\n[admin]\n");
            out.push_str(&admin);
        }

        let mut reload = String::new();
        opt_line(&mut reload, "watch", self.reload_watch);
        opt_line(&mut reload, "debounce_ms", self.reload_debounce_ms);
        if !reload.is_empty() {
            out.push_str("\n[reload]\n");
            out.push_str(&reload);
        }

        let mut cache = String::new();
        if let Some(dir) = &self.cache_dir {
            line(&mut cache, "dir", &quote(&dir.to_string_lossy()));
        }
        opt_line(&mut cache, "enabled", self.cache_enabled);
        if !cache.is_empty() {
            out.push_str("\n[cache]\n");
            out.push_str(&cache);
        }

        if let Some(ingest) = &self.ingest {
            ingest.write_toml(&mut out);
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

/// Appends `key = value` (`value` already in TOML syntax).
fn line(out: &mut String, key: &str, value: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{key} = {value}");
}

/// Appends `key = value` when there is a value.
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
