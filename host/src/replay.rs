//! Replay: running a window of a stream's history through a handler again, for debugging a
//! new version against real traffic or for rebuilding state after a fix.
//!
//! A replay reads its window with `XRANGE` only: the live consumer group's position, pending
//! entries and consumers are never touched, and hosts keep consuming while it runs. The
//! window is fixed when the replay starts (an open end is pinned to the newest entry), so
//! entries published meanwhile are not part of it.
//!
//! By default it is a dry run: every call sees the kv state in Redis plus the writes of the
//! replay's earlier calls, as if they had been committed, and all effects are discarded.
//! With [`ReplayOptions::commit`] the effects of each successful call are applied, batch by
//! batch, guarded by a per-entry marker and with deterministic event ids (see [`marker`]),
//! so repeating or resuming a replay never applies an entry's effects twice. Failed calls
//! are counted by kind ([`summary`]), never retried or dead-lettered.

pub mod marker;
mod options;
pub mod range;
pub mod summary;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use redis::aio::ConnectionManager;
use watchtower_events::{kv_key, stream_key, validate_payload, wire};

pub use marker::{META_REPLAY_OF, marker_field, replay_event_id, replayed_key};
pub use options::{ReplayError, ReplayOptions};
pub use range::{BadBound, End, parse_bound};
pub use summary::{FailedEntry, ReplaySummary, failure_kind};

use crate::config::{Config, HandlerConfig, Isolation};
use crate::dispatch::event_for;
use crate::error::LoadError;
use crate::redis::StreamEntry;
use crate::wasm::{
    CallLimits, Effects, Failure, HandlerContext, Instance, KvOverlay, LoadedHandler, WasmRuntime,
};
use marker::{Marked, MarkerCommitter};
use options::redis_error;
use summary::{failed_entry, reason_of};

/// Entries read, called and committed per step.
const BATCH: usize = 100;

/// A replay ready to run: component loaded and instantiated, window resolved.
pub struct Replay {
    runtime: WasmRuntime,
    loaded: Arc<LoadedHandler>,
    context: Arc<HandlerContext>,
    handler: HandlerConfig,
    event_type: String,
    stream: String,
    start: String,
    /// `None` when the stream is empty: there is nothing to replay.
    stop: Option<String>,
    max_entry_bytes: usize,
    commit: bool,
    redis: ConnectionManager,
    instance: Option<Instance>,
}

impl Replay {
    /// Loads the component (the handler's, or the one in `options`), connects to the
    /// config's Redis and resolves the window.
    pub async fn prepare(config: &Config, options: ReplayOptions) -> Result<Replay, ReplayError> {
        let handler = options.handler_in(config)?;
        let event_type = options.event_type_of(&handler)?;
        let start =
            parse_bound(&options.from, End::Start).map_err(|reason| ReplayError::Bound {
                flag: "from",
                reason,
            })?;
        let stop = parse_bound(&options.to, End::Stop)
            .map_err(|reason| ReplayError::Bound { flag: "to", reason })?;
        let runtime_error = |reason: String| ReplayError::Runtime {
            handler: handler.name.clone(),
            reason,
        };

        let runtime = WasmRuntime::new(handler.fuel.is_some(), config.cache_dir.clone())
            .map_err(|e| runtime_error(format!("starting the WebAssembly engine: {e:#}")))?;
        let path = options
            .component
            .clone()
            .unwrap_or_else(|| handler.component.clone());
        let loaded = load(&runtime, path)
            .await
            .map_err(|e| runtime_error(format!("loading task failed: {e}")))??;
        let url = &config.redis.url;
        let redis = crate::redis::connect(url)
            .await
            .map_err(redis_error(&crate::supervisor::redact(url)))?;

        let namespace = &config.redis.namespace;
        let stream = stream_key(namespace, &event_type);
        let stop = if stop == "+" {
            let mut conn = redis.clone();
            range::last_id(&mut conn, &stream)
                .await
                .map_err(redis_error(&stream))?
        } else {
            Some(stop)
        };
        let context = Arc::new(HandlerContext {
            name: handler.name.clone(),
            namespace: namespace.clone(),
            kv_key: kv_key(namespace, &handler.name),
            config: handler.config.clone(),
            redis: redis.clone(),
            sandbox: handler.sandbox.clone(),
        });
        let loaded = Arc::new(loaded);
        let limits = limits(&handler);
        let instance = runtime
            .instantiate(&loaded, context.clone(), limits)
            .await
            .map_err(|f| runtime_error(format!("cannot be instantiated: {}", reason_of(&f))))?;
        Ok(Replay {
            runtime,
            loaded,
            context,
            event_type,
            stream,
            start,
            stop,
            max_entry_bytes: config.consumer.max_entry_bytes,
            commit: options.commit,
            redis,
            instance: Some(instance),
            handler,
        })
    }

    /// The stream key being replayed.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The component version that runs.
    pub fn version(&self) -> &str {
        self.loaded.version()
    }

    /// How many entries the window holds.
    pub async fn count(&self) -> Result<u64, ReplayError> {
        let Some(stop) = &self.stop else {
            return Ok(0);
        };
        let mut conn = self.redis.clone();
        range::count(&mut conn, &self.stream, &self.start, stop)
            .await
            .map_err(redis_error(&self.stream))
    }

    /// Runs every entry of the window through the component, oldest first, calling
    /// `progress` with the number of entries done so far after each one.
    ///
    /// With commit, each batch is committed before the next is read, so an interrupted
    /// replay has applied whole batches only, and running it again skips them.
    pub async fn run(
        &mut self,
        mut progress: impl FnMut(u64),
    ) -> Result<ReplaySummary, ReplayError> {
        let started = Instant::now();
        let mut summary = self.empty_summary();
        let Some(stop) = self.stop.clone() else {
            return Ok(summary);
        };
        tracing::info!(
            handler = %self.handler.name,
            version = self.version(),
            stream = %self.stream,
            from = %self.start,
            to = %stop,
            commit = self.commit,
            "replay started"
        );
        let mut conn = self.redis.clone();
        let markers = replayed_key(&self.context.namespace, &self.handler.name);
        let committer = self.commit.then(|| {
            MarkerCommitter::new(
                markers.clone(),
                self.context.kv_key.clone(),
                self.version().to_owned(),
            )
        });
        // A dry run keeps every write it would have made, so later calls see them.
        let dry_run_writes = KvOverlay::default();
        let mut from = self.start.clone();
        loop {
            let batch = range::read(&mut conn, &self.stream, &from, &stop, BATCH)
                .await
                .map_err(redis_error(&self.stream))?;
            let Some(last) = batch.last() else { break };
            from = format!("({}", last.id);

            let fields: Vec<String> = batch
                .iter()
                .map(|e| marker_field(&self.event_type, &e.id))
                .collect();
            let done_before = match committer {
                Some(_) => marker::already_replayed(&mut conn, &markers, &fields)
                    .await
                    .map_err(redis_error(&markers))?,
                None => vec![false; batch.len()],
            };
            let overlay = match committer {
                Some(_) => KvOverlay::default(),
                None => dry_run_writes.clone(),
            };
            let mut to_commit = Vec::new();
            for ((entry, field), done) in batch.iter().zip(fields).zip(done_before) {
                summary.entries += 1;
                if done {
                    summary.skipped += 1;
                } else {
                    match self.handle(entry, &overlay).await {
                        Ok(effects) => {
                            summary.handled += 1;
                            summary.published += effects.publishes.len() as u64;
                            summary.kv_writes += effects.kv.len() as u64;
                            overlay.absorb(&effects.kv);
                            if committer.is_some() {
                                let effects = marker::with_replay_ids(
                                    effects,
                                    &self.context.namespace,
                                    &self.handler.name,
                                    &self.stream,
                                    &entry.id,
                                );
                                to_commit.push(Marked { field, effects });
                            }
                        }
                        Err(failed) => summary.record_failure(failed),
                    }
                }
                progress(summary.entries);
            }
            if let Some(committer) = &committer {
                let applied = committer
                    .commit(&mut conn, &to_commit)
                    .await
                    .map_err(redis_error(&markers))?;
                for fresh in applied {
                    // Not fresh: another replay of the same entry committed it meanwhile.
                    if fresh {
                        summary.committed += 1;
                    } else {
                        summary.skipped += 1;
                    }
                }
            }
            if batch.len() < BATCH {
                break;
            }
        }
        summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            handler = %self.handler.name,
            entries = summary.entries,
            handled = summary.handled,
            failed = summary.failed,
            committed = summary.committed,
            skipped = summary.skipped,
            "replay finished"
        );
        Ok(summary)
    }

    fn empty_summary(&self) -> ReplaySummary {
        let stop = self.stop.as_deref().unwrap_or("+");
        ReplaySummary::new(
            &self.handler.name,
            self.version(),
            &self.stream,
            &self.start,
            stop,
            !self.commit,
        )
    }

    /// Decodes and checks one entry as a consumer would, then calls the component once.
    async fn handle(
        &mut self,
        entry: &StreamEntry,
        overlay: &KvOverlay,
    ) -> Result<Effects, FailedEntry> {
        let malformed = |reason: String| FailedEntry {
            entry_id: entry.id.clone(),
            kind: "malformed",
            reason,
        };
        let Some(fields) = &entry.fields else {
            return Err(malformed("malformed:deleted".to_owned()));
        };
        if entry.size() > self.max_entry_bytes {
            return Err(malformed(format!(
                "malformed:too_large: {} bytes, more than max_entry_bytes = {}",
                entry.size(),
                self.max_entry_bytes
            )));
        }
        let envelope = wire::decode(fields, Some(&self.event_type))
            .map_err(|error| malformed(error.reason_code()))?;
        validate_payload(&envelope.event_type, &envelope.data)
            .map_err(|error| malformed(format!("malformed:payload: {error}")))?;
        let (source, event) = event_for(&self.stream, entry, &envelope);
        let limits = limits(&self.handler);
        let mut instance = match self.instance.take() {
            Some(instance) => instance,
            None => self
                .runtime
                .instantiate(&self.loaded, self.context.clone(), limits)
                .await
                .map_err(|f| failed_entry(&entry.id, &f))?,
        };
        let result = self
            .runtime
            .call(&mut instance, source, overlay.clone(), &event, limits)
            .await;
        let keep = match self.handler.isolation {
            Isolation::Reuse { recycle_after } => instance.calls < recycle_after,
            Isolation::PerEvent => false,
        };
        if keep && result.as_ref().err().is_none_or(Failure::instance_survives) {
            self.instance = Some(instance);
        }
        result.map_err(|f| failed_entry(&entry.id, &f))
    }
}

/// Compiles the component at `path` off the async workers (it takes ~100 ms of CPU).
async fn load(
    runtime: &WasmRuntime,
    path: PathBuf,
) -> Result<Result<LoadedHandler, LoadError>, tokio::task::JoinError> {
    let runtime = runtime.clone();
    tokio::task::spawn_blocking(move || runtime.load_file(&path)).await
}

fn limits(handler: &HandlerConfig) -> CallLimits {
    CallLimits {
        timeout: handler.timeout,
        memory_limit_bytes: handler.memory_limit_bytes,
        fuel: handler.fuel,
    }
}
