//! Hot swap: loading a handler's new component off the hot path, checking it (compile,
//! type-check, instantiate, optional canary), and swapping it in atomically — or refusing it
//! with its reason while the old version keeps serving. Triggered by a change of the file on
//! disk ([`watch`]), by `watchtower reload NAME` and by `POST /admin/handlers/{name}/reload`.

mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::ConnectionManager;
use redis::{RedisResult, Value};
use serde::Serialize;
use watchtower_events::{stream_key, wire};

pub use watch::watch;

use crate::dispatch::event_for;
use crate::metrics::{Metrics, ReloadResult};
use crate::redis::StreamEntry;
use crate::redis::reader::parse_entries;
use crate::registry::{HandlerEntry, HandlerRegistry};
use crate::wasm::{Failure, KvOverlay, LoadedHandler, WasmRuntime};

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// No handler has that name.
    #[error("no handler is called \"{0}\"")]
    UnknownHandler(String),
    /// The new component was refused; the old version keeps serving.
    #[error("handler \"{handler}\": new version refused: {reason}")]
    Refused {
        /// The handler.
        handler: String,
        /// Why.
        reason: String,
    },
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct Swapped {
    /// The handler.
    pub handler: String,
    /// The version serving now.
    pub version: String,
    /// The version before the reload.
    pub previous: String,
    /// False when the file had not changed (same digest): nothing was swapped.
    pub swapped: bool,
}

/// Counts of reloads since start.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Swaps done.
    pub swapped: AtomicU64,
    /// New versions refused.
    pub refused: AtomicU64,
}

/// Reloads handlers of one host; one reload at a time.
pub struct Reloader {
    runtime: WasmRuntime,
    registry: Arc<HandlerRegistry>,
    redis: ConnectionManager,
    namespace: String,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// Counts of swaps and refusals.
    pub stats: ReloadStats,
    metrics: Option<Arc<Metrics>>,
}

impl Reloader {
    /// A reloader for the handlers of `registry`; `redis` serves canary reads.
    pub fn new(
        runtime: WasmRuntime,
        registry: Arc<HandlerRegistry>,
        redis: ConnectionManager,
        namespace: String,
    ) -> Self {
        Reloader {
            runtime,
            registry,
            redis,
            namespace,
            one_at_a_time: tokio::sync::Mutex::new(()),
            stats: ReloadStats::default(),
            metrics: None,
        }
    }

    /// Counts swaps and refusals in `metrics` too.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The handlers.
    pub fn registry(&self) -> &Arc<HandlerRegistry> {
        &self.registry
    }

    /// Loads the handler's component file again and, if it changed and passes every check,
    /// swaps it in. `trigger` says what asked (for the log).
    pub async fn reload(&self, name: &str, trigger: &str) -> Result<Swapped, ReloadError> {
        let entry = self
            .registry
            .get(name)
            .ok_or_else(|| ReloadError::UnknownHandler(name.to_owned()))?;
        let _one = self.one_at_a_time.lock().await;
        let result = self.try_reload(&entry).await;
        match &result {
            Ok(s) if s.swapped => {
                self.stats.swapped.fetch_add(1, Ordering::Relaxed);
                self.count(name, ReloadResult::Swapped);
                tracing::info!(
                    handler = %s.handler,
                    version = %s.version,
                    previous = %s.previous,
                    trigger,
                    "swapped to a new version"
                );
            }
            Ok(s) => tracing::debug!(handler = %s.handler, trigger, "component unchanged"),
            Err(error) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                self.count(name, ReloadResult::Refused);
                tracing::warn!(handler = name, trigger, "reload refused: {error}");
            }
        }
        result
    }

    fn count(&self, handler: &str, result: ReloadResult) {
        if let Some(metrics) = &self.metrics {
            metrics.reload(handler, result);
        }
    }

    async fn try_reload(&self, entry: &Arc<HandlerEntry>) -> Result<Swapped, ReloadError> {
        let refused = |reason: String| ReloadError::Refused {
            handler: entry.name().to_owned(),
            reason,
        };
        let current = entry.current();
        // Reading, hashing and compiling take ~100 ms of CPU: not on the async workers.
        let runtime = self.runtime.clone();
        let path = entry.config.component.clone();
        let loaded = tokio::task::spawn_blocking(move || runtime.load_file(&path))
            .await
            .map_err(|e| refused(format!("loading task failed: {e}")))?
            .map_err(|e| refused(e.to_string()))?;
        if loaded.digest == current.digest {
            return Ok(Swapped {
                handler: entry.name().to_owned(),
                version: current.version().to_owned(),
                previous: current.version().to_owned(),
                swapped: false,
            });
        }
        let loaded = Arc::new(loaded);
        let instance = self
            .runtime
            .instantiate(&loaded, entry.context.clone(), entry.limits())
            .await
            .map_err(|f| refused(format!("cannot be instantiated: {}", describe(&f))))?;
        if entry.config.canary > 0 {
            self.canary(entry, &loaded)
                .await
                .map_err(|reason| refused(format!("canary: {reason}")))?;
        }
        let previous = entry.swap(loaded.clone());
        entry.return_instance(instance);
        Ok(Swapped {
            handler: entry.name().to_owned(),
            version: loaded.version().to_owned(),
            previous: previous.version().to_owned(),
            swapped: true,
        })
    }

    /// Dry-runs `candidate` on the last `canary` entries of each of the handler's streams:
    /// effects are discarded and nothing is acknowledged. A trap, timeout or memory-limit
    /// breach fails it; the handler's own `retry`/`reject` answers do not.
    async fn canary(
        &self,
        entry: &Arc<HandlerEntry>,
        candidate: &Arc<LoadedHandler>,
    ) -> Result<(), String> {
        let limits = entry.limits();
        let mut instance = None;
        let mut tried = 0;
        for event_type in &entry.config.events {
            let stream = stream_key(&self.namespace, event_type);
            let recent = self
                .recent(&stream, entry.config.canary)
                .await
                .map_err(|e| format!("reading the last entries of `{stream}`: {e}"))?;
            for recent_entry in &recent {
                let Some(fields) = &recent_entry.fields else {
                    continue;
                };
                let Ok(envelope) = wire::decode(fields, Some(event_type)) else {
                    continue;
                };
                let (source, event) = event_for(&stream, recent_entry, &envelope);
                let mut live = match instance.take() {
                    Some(live) => live,
                    None => self
                        .runtime
                        .instantiate(candidate, entry.context.clone(), limits)
                        .await
                        .map_err(|f| describe(&f))?,
                };
                tried += 1;
                let result = self
                    .runtime
                    .call(&mut live, source, KvOverlay::default(), &event, limits)
                    .await;
                match result {
                    Ok(_) => instance = Some(live),
                    Err(f) if f.instance_survives() => instance = Some(live),
                    Err(f) => {
                        return Err(format!(
                            "entry {} of `{stream}`: {}",
                            recent_entry.id,
                            describe(&f)
                        ));
                    }
                }
            }
        }
        tracing::info!(
            handler = %entry.name(),
            version = candidate.version(),
            entries = tried,
            "canary passed"
        );
        Ok(())
    }

    /// The last `count` entries of `stream`, oldest first.
    async fn recent(&self, stream: &str, count: usize) -> RedisResult<Vec<StreamEntry>> {
        let mut conn = self.redis.clone();
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await?;
        let mut entries = Vec::new();
        parse_entries(reply, &mut entries);
        entries.reverse();
        Ok(entries)
    }
}

/// A failure as one readable phrase.
fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Retry(reason) => format!("asked for a retry: {reason}"),
        Failure::Reject(reason) => format!("rejected: {reason}"),
        Failure::Timeout(limit) => format!("timed out after {} ms", limit.as_millis()),
        Failure::MemoryLimit(detail) => format!("memory limit: {detail}"),
        Failure::Trap(detail) => format!("trapped: {detail}"),
        Failure::HostUnavailable(detail) => format!("host service unavailable: {detail}"),
        Failure::OutOfFuel => "ran out of fuel".to_owned(),
        Failure::Instantiate(detail) => detail.clone(),
    }
}
