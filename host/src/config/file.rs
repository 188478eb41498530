//! The serde mirror of `watchtower.toml`: what the file may say, field by field.
//!
//! Nothing here is validated beyond TOML types; [`super::Config`] turns this into domain types.
//! Unknown keys are refused so that a typo never silently falls back to a default.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where Redis is and which key namespace to use.
    #[serde(default)]
    pub redis: RedisSection,
    /// How this host identifies itself in consumer groups and reads entries.
    #[serde(default)]
    pub consumer: ConsumerSection,
    /// The admin HTTP listener.
    #[serde(default)]
    pub admin: AdminSection,
    /// Hot swap of handler components.
    #[serde(default)]
    pub reload: ReloadSection,
    /// The on-disk cache of compiled components.
    #[serde(default)]
    pub cache: CacheSection,
    /// The threads the host runs on.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// The handlers this host runs.
    #[serde(default, rename = "handler")]
    pub handlers: Vec<HandlerSection>,
    /// The HTTP listener that publishes events (`POST /events/{type}`, `/webhooks/{source}`).
    #[serde(default)]
    pub ingest: IngestSection,
    /// Webhook senders, by the `{source}` of their URL: `[webhooks.github]`.
    #[serde(default)]
    pub webhooks: BTreeMap<String, WebhookSection>,
}

/// `[reload]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadSection {
    /// Reload a handler when its `.wasm` changes on disk (default true).
    pub watch: Option<bool>,
    /// Quiet time after the last change before reloading (default 200).
    pub debounce_ms: Option<u64>,
}

/// `[cache]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Where compiled components are kept (default `$XDG_CACHE_HOME/watchtower` or
    /// `~/.cache/watchtower`); relative to the config file.
    pub dir: Option<String>,
    /// Set to false to compile every component at every load (default true).
    pub enabled: Option<bool>,
}

/// `[runtime]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Threads that read, call handlers and commit (default: half the CPUs, at least one).
    pub worker_threads: Option<u64>,
}

/// `[redis]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSection {
    /// Connection URL, `redis://host:port/db` (default `redis://127.0.0.1:6379`).
    pub url: Option<String>,
    /// Prefix of every key Watchtower touches (default `watch_tower`).
    pub namespace: Option<String>,
}

/// `[consumer]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSection {
    /// Consumer name inside every group (default `<hostname>-<pid>`). Two live hosts must not
    /// share a name; a restarted host that keeps its name finishes its own pending entries.
    pub name: Option<String>,
    /// Entries idle this long in another consumer are taken over (default 30000).
    pub claim_idle_ms: Option<u64>,
    /// How long one `XREADGROUP` waits for new entries (default 2000).
    pub block_ms: Option<u64>,
    /// How many entries one `XREADGROUP` returns at most (default 100).
    pub batch_size: Option<u64>,
    /// How often to look for other consumers' idle entries to take over (default
    /// `claim_idle_ms / 2`).
    pub claim_interval_ms: Option<u64>,
    /// Consumers of a group that own no pending entries and were idle this long are removed
    /// from the group (default 3600000, one hour).
    pub consumer_grace_ms: Option<u64>,
    /// On SIGTERM/SIGINT, how long batches in flight may take to finish (default 10000).
    pub shutdown_timeout_ms: Option<u64>,
    /// Entries larger than this (all field names and values) are dead-lettered unread
    /// (default 1048576).
    pub max_entry_bytes: Option<u64>,
}

/// `[admin]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Address of the admin HTTP listener (default `127.0.0.1:9464`).
    pub listen: Option<String>,
    /// Bearer token that mutating admin requests (POST, PUT, DELETE) must carry; unset:
    /// none needed.
    pub token: Option<String>,
    /// Name of an environment variable holding the token, instead of `token`.
    pub token_env: Option<String>,
    /// How often stream figures (length, pending, lag, dead letters) are read from Redis for
    /// `GET /metrics` (default 5000).
    pub metrics_interval_ms: Option<u64>,
}

/// One `[[handler]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSection {
    /// Unique handler name: `[a-z0-9][a-z0-9_-]*`. Names its kv hash and dead-letter stream.
    pub name: Option<String>,
    /// Path of the `.wasm` component, relative to the config file.
    pub component: Option<String>,
    /// Event types to consume; one stream each.
    pub events: Option<Vec<String>>,
    /// Consumer group (default `watch_tower_consumers`).
    pub group: Option<String>,
    /// Where a group this host creates starts: `oldest` (default) or `latest`.
    pub start_from: Option<String>,
    /// Calls in flight at once per stream (default 1: strictly in order).
    pub concurrency: Option<u64>,
    /// Top-level `data` field whose equal values keep their order when `concurrency > 1`.
    pub ordering_key: Option<String>,
    /// Deliveries of one entry before it is dead-lettered (default 5).
    pub max_attempts: Option<u64>,
    /// Wall-clock limit of one call (default 1000).
    pub timeout_ms: Option<u64>,
    /// Linear-memory limit of one instance (default 64).
    pub memory_limit_mb: Option<u64>,
    /// First retry delay; doubles per attempt, with jitter (default 200).
    pub retry_backoff_ms: Option<u64>,
    /// Longest retry delay (default 10000); must stay below `claim_idle_ms`.
    pub retry_backoff_max_ms: Option<u64>,
    /// Before a swap, dry-run the new version on the last N entries of each stream (default
    /// 0: no canary); a trap or timeout refuses the swap.
    pub canary: Option<u64>,
    /// After a swap, if more than this share of the new version's first
    /// `rollback_window` calls fail, swap back (unset: never).
    pub rollback_on_error_rate: Option<f64>,
    /// Calls judged for `rollback_on_error_rate` (default 20).
    pub rollback_window: Option<u64>,
    /// `reuse` (default): an instance serves many events (guest memory is a cache, state
    /// belongs in kv); `per-event`: a fresh instance for every event.
    pub isolation: Option<String>,
    /// With `reuse`, replace an instance after this many calls (default 10000).
    pub recycle_after: Option<u64>,
    /// Fuel (roughly, wasm instructions) one call may use; unset = unlimited. Setting it on
    /// any handler turns fuel metering on for all, which costs ~25% of call throughput.
    pub fuel: Option<u64>,
    /// Environment variables the guest sees (none by default).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Arguments the guest sees (none by default).
    #[serde(default)]
    pub args: Vec<String>,
    /// Host directories the guest may read, by the path it sees them under:
    /// `{ "/data" = "fixtures" }` (none by default; read-only).
    #[serde(default)]
    pub dirs: BTreeMap<String, String>,
    /// Whether the guest may open network connections (default false).
    pub network: Option<bool>,
    /// The handler's own settings, read by the guest with `config-get`.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
}

/// `[ingest]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Address of the ingest HTTP listener, e.g. `127.0.0.1:9465` (unset: ingest is off).
    pub listen: Option<String>,
    /// Largest request body accepted (default 1048576); larger ones get 413.
    pub max_body_bytes: Option<u64>,
    /// Accept only the eight built-in event types on `POST /events/{type}` (default true);
    /// false also accepts any valid custom type with a JSON object payload.
    pub strict: Option<bool>,
    /// Accept webhooks from sources without a `[webhooks.SOURCE]` table, and tables
    /// without a secret, unchecked (default false: unknown sources get 404).
    pub allow_unsigned_webhooks: Option<bool>,
}

/// One `[webhooks.SOURCE]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Key of the HMAC-SHA256 signature of the request body.
    pub secret: Option<String>,
    /// Name of an environment variable holding the key, instead of `secret`.
    pub secret_env: Option<String>,
    /// Header carrying the signature, `sha256=<hex>` or bare hex (default
    /// `X-Signature-256`).
    pub signature_header: Option<String>,
    /// Request headers copied into the event, besides `content-type` and `user-agent`.
    #[serde(default)]
    pub forward_headers: Vec<String>,
}
