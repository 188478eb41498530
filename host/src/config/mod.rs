//! The host's configuration: `watchtower.toml` (see [`file`]), overridden by `WATCHTOWER_*`
//! environment variables (see [`env`]), validated into the domain types below.
//!
//! Everything that can be checked without touching Redis is checked here, before anything
//! connects, and every error names the file, the key and what is wrong.

mod env;
pub mod file;
mod ingest;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use watchtower_events::{DEFAULT_NAMESPACE, validate_event_type};

pub use crate::error::ConfigError;
pub use env::{OVERRIDES, apply_env_overrides};
use file::{FileConfig, HandlerSection};
pub use ingest::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_SIGNATURE_HEADER, IngestConfig, Secret, WebhookSource,
    is_source_name,
};

/// Redis URL used when neither the file nor the environment names one.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Consumer group used when a handler does not name one.
pub const DEFAULT_GROUP: &str = "watch_tower_consumers";
/// Admin listener address used when the file does not name one.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";

/// A validated configuration: every value has its final type and passed its checks.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (errors and logs name it).
    pub source: PathBuf,
    /// Redis connection and key namespace.
    pub redis: RedisConfig,
    /// This host's identity and read settings.
    pub consumer: ConsumerConfig,
    /// The admin HTTP listener.
    pub admin: AdminConfig,
    /// Hot swap settings.
    pub reload: ReloadConfig,
    /// Compiled-component cache folder, when enabled.
    pub cache_dir: Option<PathBuf>,
    /// Threads of the host's async runtime (`[runtime] worker_threads`).
    pub worker_threads: NonZeroUsize,
    /// The handlers, in file order.
    pub handlers: Vec<HandlerConfig>,
    /// The ingest HTTP listener, when `[ingest] listen` is set.
    pub ingest: Option<IngestConfig>,
}

/// `[reload]`, validated.
#[derive(Debug, Clone)]
pub struct ReloadConfig {
    /// Watch component files.
    pub watch: bool,
    /// Quiet time before a changed file is reloaded.
    pub debounce: Duration,
}

/// `[redis]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    /// Connection URL.
    pub url: String,
    /// Prefix of every key.
    pub namespace: String,
}

/// `[consumer]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerConfig {
    /// This host's consumer name in every group.
    pub name: String,
    /// Idle time after which another consumer's pending entries are taken over.
    pub claim_idle: Duration,
    /// How long one read waits for new entries.
    pub block: Duration,
    /// Entries per read at most.
    pub batch_size: NonZeroUsize,
    /// How often to look for other consumers' idle entries.
    pub claim_interval: Duration,
    /// Idle time after which a consumer owning nothing is removed from its group.
    pub consumer_grace: Duration,
    /// Time batches in flight get to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// Largest entry handled; larger ones are dead-lettered.
    pub max_entry_bytes: usize,
}

/// `[admin]`, validated.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Listener address.
    pub listen: SocketAddr,
    /// Bearer token required by mutating requests, when set.
    pub token: Option<Secret>,
    /// How often the stream figures of `GET /metrics` are read from Redis.
    pub metrics_interval: Duration,
}

/// Where a consumer group that this host creates starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// At the first entry of the stream: the handler sees the whole history.
    Oldest,
    /// After the last entry present when the group is created: new entries only.
    Latest,
}

/// When a freshly swapped-in version is swapped back out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollback {
    /// Failure share that triggers the rollback.
    pub max_error_rate: f64,
    /// Calls of the new version judged.
    pub window: u64,
}

/// How long a handler's instances live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// An instance serves calls until it traps, its version is swapped out, or it has served
    /// `recycle_after` calls. Guest memory survives between events: a cache, never state.
    Reuse {
        /// Calls after which the instance is replaced.
        recycle_after: u64,
    },
    /// Every event gets a fresh instance (~35 µs more per event).
    PerEvent,
}

/// What a handler's sandbox may reach. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxGrants {
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Command-line arguments.
    pub args: Vec<String>,
    /// Read-only directories: (path in the guest, path on the host).
    pub dirs: Vec<(String, PathBuf)>,
    /// Outgoing network access.
    pub network: bool,
}

/// One `[[handler]]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerConfig {
    /// Unique name.
    pub name: String,
    /// Absolute (or config-relative, resolved) path of the component.
    pub component: PathBuf,
    /// Event types consumed, one stream each, without duplicates.
    pub events: Vec<String>,
    /// Consumer group.
    pub group: String,
    /// Start position of a group this host creates.
    pub start_from: StartFrom,
    /// Calls in flight at once per stream.
    pub concurrency: NonZeroUsize,
    /// `data` field whose equal values keep their order when `concurrency > 1`.
    pub ordering_key: Option<String>,
    /// Deliveries of one entry before it is given up on.
    pub max_attempts: NonZeroU32,
    /// Wall-clock limit of one call.
    pub timeout: Duration,
    /// Linear-memory limit of one instance, in bytes.
    pub memory_limit_bytes: usize,
    /// First retry delay.
    pub retry_backoff: Duration,
    /// Longest retry delay.
    pub retry_backoff_max: Duration,
    /// Instance lifetime.
    pub isolation: Isolation,
    /// Entries per stream a new version must handle in a dry run before a swap (0: none).
    pub canary: usize,
    /// Automatic swap back after a bad start of a new version.
    pub rollback: Option<Rollback>,
    /// Fuel per call, when metered.
    pub fuel: Option<u64>,
    /// What the sandbox grants beyond pure computation.
    pub sandbox: SandboxGrants,
    /// The `[handler.config]` table, values as strings.
    pub config: BTreeMap<String, String>,
}

impl Config {
    /// Parses and validates `text` as if read from `source` (used for relative paths and in
    /// error messages). Environment overrides are not applied.
    pub fn from_toml_str(text: &str, source: &Path) -> Result<Config, ConfigError> {
        let raw: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: source.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        validate(raw, source)
    }
}

/// Reads `path`, applies `WATCHTOWER_*` environment overrides and validates the result.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let mut raw: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        file: path.to_path_buf(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    apply_env_overrides(&mut raw, |name| std::env::var(name).ok());
    validate(raw, path)
}

/// The default consumer name: `<hostname>-<pid>`, unique per live process.
pub fn default_consumer_name() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "watchtower".to_owned());
    format!("{host}-{}", std::process::id())
}

fn validate(raw: FileConfig, source: &Path) -> Result<Config, ConfigError> {
    let v = Validator { file: source };
    let base_dir = source.parent().unwrap_or(Path::new("."));

    let url = raw
        .redis
        .url
        .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        return Err(v.invalid(
            "[redis] `url`",
            format!("`{url}` is not a redis:// or rediss:// URL"),
        ));
    }
    let namespace = raw
        .redis
        .namespace
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    v.key_part("[redis] `namespace`", &namespace)?;

    let name = raw.consumer.name.unwrap_or_else(default_consumer_name);
    v.key_part("[consumer] `name`", &name)?;
    let claim_idle_ms = v.positive(
        "[consumer] `claim_idle_ms`",
        raw.consumer.claim_idle_ms.unwrap_or(30_000),
    )?;
    let max_entry_bytes = usize::try_from(v.positive(
        "[consumer] `max_entry_bytes`",
        raw.consumer.max_entry_bytes.unwrap_or(1 << 20),
    )?)
    .map_err(|_| v.invalid("[consumer] `max_entry_bytes`", "too large for this machine"))?;
    let consumer = ConsumerConfig {
        claim_interval: Duration::from_millis(
            v.positive(
                "[consumer] `claim_interval_ms`",
                raw.consumer
                    .claim_interval_ms
                    .unwrap_or((claim_idle_ms / 2).max(1)),
            )?,
        ),
        consumer_grace: Duration::from_millis(v.positive(
            "[consumer] `consumer_grace_ms`",
            raw.consumer.consumer_grace_ms.unwrap_or(3_600_000),
        )?),
        shutdown_timeout: Duration::from_millis(raw.consumer.shutdown_timeout_ms.unwrap_or(10_000)),
        max_entry_bytes,
        name,
        claim_idle: Duration::from_millis(claim_idle_ms),
        block: Duration::from_millis(v.positive(
            "[consumer] `block_ms`",
            raw.consumer.block_ms.unwrap_or(2_000),
        )?),
        batch_size: v.non_zero_usize(
            "[consumer] `batch_size`",
            raw.consumer.batch_size.unwrap_or(100),
        )?,
    };

    let listen_text = raw
        .admin
        .listen
        .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_owned());
    let listen = listen_text.parse().map_err(|_| {
        v.invalid(
            "[admin] `listen`",
            format!("`{listen_text}` is not an address like 127.0.0.1:9464"),
        )
    })?;

    let metrics_interval = Duration::from_millis(v.positive(
        "[admin] `metrics_interval_ms`",
        raw.admin.metrics_interval_ms.unwrap_or(5_000),
    )?);

    let env = |name: &str| std::env::var(name).ok();
    let token = v.secret(
        ("[admin] `token`", raw.admin.token),
        ("[admin] `token_env`", raw.admin.token_env),
        &env,
    )?;
    let ingest = v.ingest(raw.ingest, raw.webhooks, &env)?;
    if let Some(ingest) = &ingest
        && ingest.listen == listen
        && listen.port() != 0
    {
        return Err(v.invalid(
            "[ingest] `listen`",
            format!("{listen} is the admin listener's address; give ingest its own"),
        ));
    }

    let reload = ReloadConfig {
        watch: raw.reload.watch.unwrap_or(true),
        debounce: Duration::from_millis(raw.reload.debounce_ms.unwrap_or(200)),
    };
    let cache_dir = if raw.cache.enabled.unwrap_or(true) {
        Some(match raw.cache.dir {
            Some(dir) => base_dir.join(dir),
            None => default_cache_dir(),
        })
    } else {
        None
    };

    let worker_threads = match raw.runtime.worker_threads {
        Some(threads) => v.non_zero_usize("[runtime] `worker_threads`", threads)?,
        None => default_worker_threads(),
    };

    let mut handlers = Vec::with_capacity(raw.handlers.len());
    let mut names = BTreeSet::new();
    let mut group_streams: BTreeMap<(String, String), String> = BTreeMap::new();
    for (index, section) in raw.handlers.into_iter().enumerate() {
        let handler = v.handler(index, section, base_dir)?;
        if handler.retry_backoff_max >= consumer.claim_idle {
            return Err(v.invalid(
                &format!("[[handler]] \"{}\": `retry_backoff_max_ms`", handler.name),
                format!(
                    "must be below [consumer] `claim_idle_ms` ({} ms), or an entry waiting for \
                     its retry would be taken over by another consumer",
                    consumer.claim_idle.as_millis()
                ),
            ));
        }
        if !names.insert(handler.name.clone()) {
            return Err(v.invalid(
                &format!("[[handler]] \"{}\": `name`", handler.name),
                "another handler has the same name",
            ));
        }
        for event in &handler.events {
            let slot = (handler.group.clone(), event.clone());
            if let Some(other) = group_streams.insert(slot, handler.name.clone()) {
                return Err(v.invalid(
                    &format!("[[handler]] \"{}\": `events`", handler.name),
                    format!(
                        "handler \"{other}\" already consumes `{event}` in group `{}`; one group \
                         serves one handler per stream (give one of them another `group`)",
                        handler.group
                    ),
                ));
            }
        }
        handlers.push(handler);
    }

    Ok(Config {
        source: source.to_path_buf(),
        redis: RedisConfig { url, namespace },
        consumer,
        admin: AdminConfig {
            listen,
            metrics_interval,
            token,
        },
        reload,
        cache_dir,
        worker_threads,
        handlers,
        ingest,
    })
}

/// Half the CPUs this process may use, at least one.
///
/// Redis usually runs on the same machine and needs a core of its own, and a host's work
/// per event is small next to what handing tasks between threads costs: on two cores one
/// thread handles about a third more events per second than two (BENCHMARKS.md).
pub fn default_worker_threads() -> NonZeroUsize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(cpus / 2).unwrap_or(NonZeroUsize::MIN)
}

/// `$XDG_CACHE_HOME/watchtower`, `~/.cache/watchtower`, or a folder in the temp dir.
pub fn default_cache_dir() -> PathBuf {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_CACHE_HOME")
        .or_else(|| env("HOME").map(|home| home.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("watchtower")
}

/// Builds errors that name the file and the key.
struct Validator<'a> {
    file: &'a Path,
}

impl Validator<'_> {
    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn positive(&self, key: &str, value: u64) -> Result<u64, ConfigError> {
        if value == 0 {
            return Err(self.invalid(key, "must be > 0"));
        }
        Ok(value)
    }

    fn non_zero_usize(&self, key: &str, value: u64) -> Result<NonZeroUsize, ConfigError> {
        usize::try_from(value)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| self.invalid(key, "must be > 0"))
    }

    /// Names that become part of Redis keys: no spaces, colons or braces.
    fn key_part(&self, key: &str, value: &str) -> Result<(), ConfigError> {
        let ok = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                format!("`{value}` must be non-empty and use only letters, digits, `_`, `-`, `.`"),
            ))
        }
    }

    fn handler(
        &self,
        index: usize,
        raw: HandlerSection,
        base_dir: &Path,
    ) -> Result<HandlerConfig, ConfigError> {
        let name = raw.name.ok_or_else(|| {
            self.invalid(&format!("[[handler]] #{}: `name`", index + 1), "is missing")
        })?;
        let at = |field: &str| format!("[[handler]] \"{name}\": `{field}`");
        let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !name_ok {
            return Err(self.invalid(
                &at("name"),
                format!("`{name}` must match [a-z0-9][a-z0-9_-]*"),
            ));
        }

        let component = raw
            .component
            .ok_or_else(|| self.invalid(&at("component"), "is missing"))?;
        let component = base_dir.join(component);
        if !component.is_file() {
            return Err(self.invalid(
                &at("component"),
                format!("{} does not exist or is not a file", component.display()),
            ));
        }

        let events = raw
            .events
            .ok_or_else(|| self.invalid(&at("events"), "is missing"))?;
        if events.is_empty() {
            return Err(self.invalid(&at("events"), "must name at least one event type"));
        }
        let mut seen = BTreeSet::new();
        for event in &events {
            validate_event_type(event).map_err(|e| self.invalid(&at("events"), e.to_string()))?;
            if !seen.insert(event) {
                return Err(self.invalid(&at("events"), format!("`{event}` is listed twice")));
            }
        }

        let group = raw.group.unwrap_or_else(|| DEFAULT_GROUP.to_owned());
        self.key_part(&at("group"), &group)?;
        let start_from = match raw.start_from.as_deref() {
            None | Some("oldest") => StartFrom::Oldest,
            Some("latest") => StartFrom::Latest,
            Some(other) => {
                return Err(self.invalid(
                    &at("start_from"),
                    format!("`{other}` must be \"oldest\" or \"latest\""),
                ));
            }
        };
        let concurrency = self.non_zero_usize(&at("concurrency"), raw.concurrency.unwrap_or(1))?;
        if let Some(key) = &raw.ordering_key
            && key.is_empty()
        {
            return Err(self.invalid(&at("ordering_key"), "must not be empty"));
        }
        let max_attempts = u32::try_from(raw.max_attempts.unwrap_or(5))
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| self.invalid(&at("max_attempts"), "must be between 1 and 2^32-1"))?;
        let timeout = Duration::from_millis(
            self.positive(&at("timeout_ms"), raw.timeout_ms.unwrap_or(1000))?,
        );
        let memory_mb = self.positive(&at("memory_limit_mb"), raw.memory_limit_mb.unwrap_or(64))?;
        if memory_mb > 4096 {
            return Err(self.invalid(
                &at("memory_limit_mb"),
                "must be at most 4096 (a 32-bit guest cannot address more)",
            ));
        }
        let memory_limit_bytes = usize::try_from(memory_mb << 20)
            .map_err(|_| self.invalid(&at("memory_limit_mb"), "too large for this machine"))?;

        let retry_backoff = Duration::from_millis(
            self.positive(&at("retry_backoff_ms"), raw.retry_backoff_ms.unwrap_or(200))?,
        );
        let retry_backoff_max = Duration::from_millis(self.positive(
            &at("retry_backoff_max_ms"),
            raw.retry_backoff_max_ms.unwrap_or(10_000),
        )?);
        if retry_backoff_max < retry_backoff {
            return Err(self.invalid(
                &at("retry_backoff_max_ms"),
                "must be at least `retry_backoff_ms`",
            ));
        }
        let isolation = match raw.isolation.as_deref() {
            None | Some("reuse") => Isolation::Reuse {
                recycle_after: self
                    .positive(&at("recycle_after"), raw.recycle_after.unwrap_or(10_000))?,
            },
            Some("per-event") => Isolation::PerEvent,
            Some(other) => {
                return Err(self.invalid(
                    &at("isolation"),
                    format!("`{other}` must be \"reuse\" or \"per-event\""),
                ));
            }
        };
        let canary = usize::try_from(raw.canary.unwrap_or(0))
            .map_err(|_| self.invalid(&at("canary"), "too large"))?;
        let rollback = match raw.rollback_on_error_rate {
            None => None,
            Some(rate) if rate > 0.0 && rate <= 1.0 => Some(Rollback {
                max_error_rate: rate,
                window: self.positive(&at("rollback_window"), raw.rollback_window.unwrap_or(20))?,
            }),
            Some(rate) => {
                return Err(self.invalid(
                    &at("rollback_on_error_rate"),
                    format!("{rate} must be in (0, 1]"),
                ));
            }
        };
        let fuel = match raw.fuel {
            Some(fuel) => Some(self.positive(&at("fuel"), fuel)?),
            None => None,
        };
        let mut dirs = Vec::with_capacity(raw.dirs.len());
        for (guest, host) in raw.dirs {
            let host = base_dir.join(host);
            if !host.is_dir() {
                return Err(self.invalid(
                    &at("dirs"),
                    format!(
                        "`{guest}` maps to {}, which is not a directory",
                        host.display()
                    ),
                ));
            }
            dirs.push((guest, host));
        }
        let sandbox = SandboxGrants {
            env: raw.env,
            args: raw.args,
            dirs,
            network: raw.network.unwrap_or(false),
        };

        let mut config = BTreeMap::new();
        for (key, value) in raw.config {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(self.invalid(
                        &format!("[handler.config] of \"{name}\": `{key}`"),
                        format!(
                            "must be a string, number or boolean, not a {}",
                            other.type_str()
                        ),
                    ));
                }
            };
            config.insert(key, text);
        }

        Ok(HandlerConfig {
            name,
            component,
            events,
            group,
            start_from,
            concurrency,
            ordering_key: raw.ordering_key,
            max_attempts,
            timeout,
            memory_limit_bytes,
            retry_backoff,
            retry_backoff_max,
            isolation,
            canary,
            rollback,
            fuel,
            sandbox,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_component(body: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("h.wasm"), b"\0asm").unwrap();
        let path = dir.path().join("watchtower.toml");
        let result = Config::from_toml_str(body, &path);
        (dir, result)
    }

    fn err(body: &str) -> String {
        with_component(body).1.unwrap_err().to_string()
    }

    const MINIMAL: &str = r#"
[[handler]]
name = "speed-alert"
component = "h.wasm"
events = ["position.updated"]
"#;

    #[test]
    fn metrics_interval_defaults_to_five_seconds_and_must_be_positive() {
        let cfg = with_component(MINIMAL).1.unwrap();
        assert_eq!(cfg.admin.metrics_interval, Duration::from_secs(5));
        let set = format!("[admin]\nmetrics_interval_ms = 250\n{MINIMAL}");
        let cfg = with_component(&set).1.unwrap();
        assert_eq!(cfg.admin.metrics_interval, Duration::from_millis(250));
        let msg = err(&format!("[admin]\nmetrics_interval_ms = 0\n{MINIMAL}"));
        assert!(
            msg.contains("[admin] `metrics_interval_ms`: must be > 0"),
            "{msg}"
        );
    }

    #[test]
    fn worker_threads_default_to_half_the_cpus_and_must_be_positive() {
        let cfg = with_component(MINIMAL).1.unwrap();
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(cfg.worker_threads.get(), (cpus / 2).max(1));
        let set = format!("[runtime]\nworker_threads = 3\n{MINIMAL}");
        assert_eq!(with_component(&set).1.unwrap().worker_threads.get(), 3);
        let msg = err(&format!("[runtime]\nworker_threads = 0\n{MINIMAL}"));
        assert!(
            msg.contains("[runtime] `worker_threads`: must be > 0"),
            "{msg}"
        );
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let (dir, cfg) = with_component(MINIMAL);
        let cfg = cfg.unwrap();
        assert_eq!(cfg.redis.url, DEFAULT_REDIS_URL);
        assert_eq!(cfg.redis.namespace, "watch_tower");
        assert_eq!(cfg.consumer.claim_idle, Duration::from_secs(30));
        let h = &cfg.handlers[0];
        assert_eq!(h.group, DEFAULT_GROUP);
        assert_eq!(h.component, dir.path().join("h.wasm"));
        assert_eq!(h.start_from, StartFrom::Oldest);
        assert_eq!(h.concurrency.get(), 1);
        assert_eq!(h.max_attempts.get(), 5);
        assert_eq!(h.timeout, Duration::from_secs(1));
        assert_eq!(h.memory_limit_bytes, 64 << 20);
    }

    #[test]
    fn the_spec_example_parses() {
        let text = r#"
[redis]
url = "redis://127.0.0.1:6379"
namespace = "watch_tower"
[consumer]
name = "host-1"
claim_idle_ms = 30000
[admin]
listen = "127.0.0.1:9464"
[[handler]]
name = "speed-alert"
component = "h.wasm"
events = ["position.updated"]
group = "watch_tower_consumers"
concurrency = 4
ordering_key = "truck_id"
max_attempts = 5
timeout_ms = 1000
memory_limit_mb = 64
[handler.config]
speed_limit_kmh = "90"
"#;
        let (_dir, cfg) = with_component(text);
        let cfg = cfg.unwrap();
        let h = &cfg.handlers[0];
        assert_eq!(h.concurrency.get(), 4);
        assert_eq!(h.ordering_key.as_deref(), Some("truck_id"));
        assert_eq!(
            h.config.get("speed_limit_kmh").map(String::as_str),
            Some("90")
        );
    }

    #[test]
    fn zero_timeout_names_file_handler_and_key() {
        let msg = err(&format!("{MINIMAL}timeout_ms = 0\n"));
        assert!(msg.contains("watchtower.toml"), "{msg}");
        assert!(msg.contains("\"speed-alert\""), "{msg}");
        assert!(msg.contains("`timeout_ms`: must be > 0"), "{msg}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let msg = err(&format!("{MINIMAL}timeout = 5\n"));
        assert!(msg.contains("watchtower.toml"), "{msg}");
        assert!(msg.contains("unknown field `timeout`"), "{msg}");
    }

    #[test]
    fn missing_component_file_is_refused() {
        let msg = err(r#"
[[handler]]
name = "a"
component = "nope.wasm"
events = ["position.updated"]
"#);
        assert!(msg.contains("`component`"), "{msg}");
        assert!(msg.contains("nope.wasm does not exist"), "{msg}");
    }

    #[test]
    fn bad_event_type_is_refused() {
        let msg = err(r#"
[[handler]]
name = "a"
component = "h.wasm"
events = ["Position"]
"#);
        assert!(msg.contains("`events`"), "{msg}");
    }

    #[test]
    fn two_handlers_on_one_stream_in_one_group_are_refused() {
        let msg = err(&format!(
            "{MINIMAL}\n[[handler]]\nname = \"other\"\ncomponent = \"h.wasm\"\nevents = [\"position.updated\"]\n"
        ));
        assert!(msg.contains("already consumes `position.updated`"), "{msg}");
    }

    #[test]
    fn two_handlers_on_one_stream_in_two_groups_are_fine() {
        let text = format!(
            "{MINIMAL}\n[[handler]]\nname = \"other\"\ncomponent = \"h.wasm\"\nevents = [\"position.updated\"]\ngroup = \"g2\"\n"
        );
        assert_eq!(with_component(&text).1.unwrap().handlers.len(), 2);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = format!("{MINIMAL}\n{}group = \"g2\"\n", MINIMAL.trim_start());
        let msg = err(&text);
        assert!(msg.contains("same name"), "{msg}");
    }

    #[test]
    fn bad_start_from_is_refused() {
        let msg = err(&format!("{MINIMAL}start_from = \"middle\"\n"));
        assert!(msg.contains("`start_from`"), "{msg}");
    }

    #[test]
    fn retry_backoff_must_stay_below_claim_idle() {
        let msg = err(&format!(
            "[consumer]\nclaim_idle_ms = 5000\n{MINIMAL}retry_backoff_max_ms = 5000\n"
        ));
        assert!(msg.contains("`retry_backoff_max_ms`"), "{msg}");
        assert!(msg.contains("claim_idle_ms"), "{msg}");
    }

    #[test]
    fn instances_are_reused_by_default_and_per_event_on_request() {
        let cfg = with_component(MINIMAL).1.unwrap();
        assert_eq!(
            cfg.handlers[0].isolation,
            Isolation::Reuse {
                recycle_after: 10_000
            }
        );
        let text = format!("{MINIMAL}isolation = \"per-event\"\n");
        let cfg = with_component(&text).1.unwrap();
        assert_eq!(cfg.handlers[0].isolation, Isolation::PerEvent);
        let msg = err(&format!("{MINIMAL}isolation = \"shared\"\n"));
        assert!(msg.contains("`isolation`"), "{msg}");
    }

    #[test]
    fn sandbox_grants_nothing_by_default() {
        let cfg = with_component(MINIMAL).1.unwrap();
        assert_eq!(cfg.handlers[0].sandbox, SandboxGrants::default());
    }

    #[test]
    fn granted_dirs_must_exist() {
        let msg = err(&format!("{MINIMAL}dirs = {{ \"/data\" = \"missing\" }}\n"));
        assert!(msg.contains("`dirs`"), "{msg}");
    }

    #[test]
    fn config_table_values_become_strings() {
        let text = format!("{MINIMAL}[handler.config]\nlimit = 90\nstrict = true\n");
        let cfg = with_component(&text).1.unwrap();
        assert_eq!(cfg.handlers[0].config["limit"], "90");
        assert_eq!(cfg.handlers[0].config["strict"], "true");
    }
}
