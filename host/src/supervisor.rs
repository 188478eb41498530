//! Starting and stopping a host: load every component, connect, start one consumer per
//! (handler, stream), and on shutdown stop reading, let in-flight batches commit and return.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use watchtower_events::{kv_key, stream_key};

use crate::admin::AdminState;
use crate::config::{Config, HandlerConfig, StartFrom};
use crate::consumer::{Consumer, ConsumerSettings, supervise};
use crate::dispatch::{Dispatcher, StreamSource};
use crate::metrics::Metrics;
use crate::redis::dlq::redrive_key;
use crate::registry::{HandlerEntry, HandlerRegistry};
use crate::reload::Reloader;
use crate::wasm::{HandlerContext, LoadedHandler, WasmRuntime};

/// Runs the host described by `config` until `shutdown` resolves (see [`run_with_reloads`];
/// this one never reloads its configuration).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (_keep, reloads) = mpsc::channel(1);
    run_with_reloads(config, shutdown, reloads).await
}

/// Runs the host described by `config` until `shutdown` resolves, applying every new
/// configuration received on `reloads` (the CLI sends one per SIGHUP).
///
/// Every component is compiled and type-checked before anything connects, so a broken one
/// stops the start with its file and reason. Each handler consumes the stream of each of
/// its event types and its own re-drive stream (dead letters sent back to it). When
/// `shutdown` resolves, reading stops, batches in flight get `shutdown_timeout` to finish
/// and commit, and the function returns; whatever did not finish stays pending.
pub async fn run_with_reloads(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut reloads: mpsc::Receiver<Config>,
) -> anyhow::Result<()> {
    let fuel = config.handlers.iter().any(|h| h.fuel.is_some());
    let runtime = WasmRuntime::new(fuel, config.cache_dir.clone())
        .context("starting the WebAssembly engine")?;
    let loaded = load_components(&runtime, &config.handlers).await?;

    let cancel = CancellationToken::new();
    let on_shutdown = cancel.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_shutdown.cancel();
    });

    let metrics = Arc::new(Metrics::new());
    let Some(writer) = connect_until(&config.redis.url, None, &cancel, &metrics).await else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| {
            format!(
                "{}: [admin] `listen`: cannot listen on {}",
                config.source.display(),
                config.admin.listen
            )
        })?;

    let registry = Arc::new(HandlerRegistry::default());
    let reloader = Arc::new(
        Reloader::new(
            runtime.clone(),
            registry.clone(),
            writer.clone(),
            config.redis.namespace.clone(),
        )
        .with_metrics(metrics.clone()),
    );
    let admin = Arc::new(AdminState {
        reloader: reloader.clone(),
        ready: AtomicBool::new(false),
        redis: writer.clone(),
        namespace: config.redis.namespace.clone(),
        metrics: metrics.clone(),
        token: config.admin.token.clone(),
    });
    let local = listener
        .local_addr()
        .map_or_else(|_| config.admin.listen.to_string(), |a| a.to_string());
    tracing::info!(listen = %local, "admin listener");
    tokio::spawn({
        let admin = admin.clone();
        let cancel = cancel.clone();
        async move {
            if let Err(error) = crate::admin::serve(listener, admin, cancel).await {
                tracing::error!("admin listener failed: {error}");
            }
        }
    });

    let ingest = crate::ingest::start(&config, writer.clone(), cancel.clone()).await?;

    let mut host = Host {
        config,
        runtime,
        writer,
        registry,
        reloader,
        metrics: metrics.clone(),
        cancel: cancel.clone(),
        running: HashMap::new(),
        watcher: None,
    };
    for (handler, loaded) in host.config.handlers.clone().into_iter().zip(loaded) {
        host.start_handler(handler, loaded).await?;
    }
    host.restart_watcher()?;
    tokio::spawn(crate::metrics::poll_redis(
        metrics,
        host.registry.clone(),
        host.writer.clone(),
        host.config.admin.metrics_interval,
        cancel.clone(),
    ));
    admin.ready.store(true, Ordering::Relaxed);
    tracing::info!(
        consumer = %host.config.consumer.name,
        handlers = host.config.handlers.len(),
        "host running"
    );

    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            next = reloads.recv() => match next {
                Some(next) => host.apply(next).await,
                None => {
                    cancel.cancelled().await;
                    break;
                }
            },
        }
    }
    host.shutdown().await;
    if let Some(ingest) = ingest {
        // Requests in flight get their answer (within the listener's grace) before `run`
        // returns.
        let _ = ingest.await;
    }
    Ok(())
}

/// The running parts of a host that a configuration reload changes.
struct Host {
    config: Config,
    runtime: WasmRuntime,
    writer: ConnectionManager,
    registry: Arc<HandlerRegistry>,
    reloader: Arc<Reloader>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    /// Per handler: the token that stops its consumers, and the consumers.
    running: HashMap<String, (CancellationToken, JoinSet<()>)>,
    watcher: Option<CancellationToken>,
}

impl Host {
    /// Registers a handler served by `loaded` and starts its consumers: one per event
    /// stream and one for its re-drive stream. A component that cannot be instantiated
    /// (a trapping start function, a memory over its limit) is refused here, with its
    /// reason, not on every event; the instance made to find out is its first warm one.
    async fn start_handler(
        &mut self,
        handler: HandlerConfig,
        loaded: LoadedHandler,
    ) -> anyhow::Result<()> {
        let namespace = self.config.redis.namespace.clone();
        let context = Arc::new(HandlerContext {
            name: handler.name.clone(),
            namespace: namespace.clone(),
            kv_key: kv_key(&namespace, &handler.name),
            config: handler.config.clone(),
            redis: self.writer.clone(),
            sandbox: handler.sandbox.clone(),
        });
        let entry = Arc::new(HandlerEntry::new(handler.clone(), context, loaded));
        let instance = self
            .runtime
            .instantiate(&entry.current(), entry.context.clone(), entry.limits())
            .await
            .map_err(|failure| {
                anyhow::anyhow!(
                    "handler \"{}\": {}: cannot be instantiated: {failure:?}",
                    handler.name,
                    handler.component.display()
                )
            })?;
        entry.return_instance(instance);
        tracing::info!(
            handler = %handler.name,
            version = entry.current().version(),
            component = %handler.component.display(),
            events = ?handler.events,
            "handler loaded"
        );
        self.registry.insert(entry.clone());

        let stop = self.cancel.child_token();
        let mut consumers = JoinSet::new();
        let consumer = &self.config.consumer;
        let streams = handler
            .events
            .iter()
            .map(|t| (stream_key(&namespace, t), StreamSource::Events(t.clone())))
            .chain([(
                redrive_key(&namespace, &handler.name),
                StreamSource::Redrive,
            )]);
        for (stream, source) in streams {
            let settings = ConsumerSettings {
                stream: stream.clone(),
                group: handler.group.clone(),
                name: consumer.name.clone(),
                // Re-driven entries are always wanted, whenever the group is created.
                start_from: match source {
                    StreamSource::Redrive => StartFrom::Oldest,
                    StreamSource::Events(_) => handler.start_from,
                },
                batch_size: consumer.batch_size.get(),
                block: consumer.block,
                claim_idle: consumer.claim_idle,
                claim_interval: consumer.claim_interval,
                consumer_grace: consumer.consumer_grace,
            };
            let Some(reader) = connect_until(
                &self.config.redis.url,
                Some(consumer.block),
                &stop,
                &self.metrics,
            )
            .await
            else {
                break;
            };
            let dispatcher = Dispatcher::new(
                self.runtime.clone(),
                entry.clone(),
                &stream,
                source,
                consumer.max_entry_bytes,
            )
            .with_metrics(&self.metrics);
            let consumer = Consumer::new(settings, dispatcher, reader, self.writer.clone());
            consumers.spawn(supervise(consumer, stop.clone()));
        }
        self.running.insert(handler.name, (stop, consumers));
        Ok(())
    }

    /// Stops a handler's consumers (their batches in flight finish and commit, within the
    /// shutdown timeout) and unregisters it.
    async fn stop_handler(&mut self, name: &str) {
        if let Some((stop, consumers)) = self.running.remove(name) {
            stop.cancel();
            drain(consumers, self.config.consumer.shutdown_timeout).await;
        }
        self.registry.remove(name);
    }

    /// Watches the component files of the current handlers (again).
    fn restart_watcher(&mut self) -> anyhow::Result<()> {
        if let Some(old) = self.watcher.take() {
            old.cancel();
        }
        if self.config.reload.watch {
            let token = self.cancel.child_token();
            crate::reload::watch(
                self.reloader.clone(),
                self.config.reload.debounce,
                token.clone(),
            )?;
            self.watcher = Some(token);
        }
        Ok(())
    }

    /// Applies a reloaded configuration: handlers that were removed stop, new ones start,
    /// changed ones restart with their new settings (their pending entries are picked up
    /// again by the new consumers). Sections that need a restart are reported, not applied.
    /// A handler whose new component does not load keeps running as it was.
    async fn apply(&mut self, next: Config) {
        for section in restart_only_changes(&self.config, &next) {
            tracing::warn!(
                "config reload: changes to {section} take effect only after a restart; ignored"
            );
        }
        let fuel_now = self.runtime.fuel_metered();
        let mut kept: Vec<HandlerConfig> = Vec::new();
        let mut changes = 0usize;
        for old in self.config.handlers.clone() {
            if !next.handlers.iter().any(|h| h.name == old.name) {
                tracing::info!(handler = %old.name, "config reload: handler removed");
                self.stop_handler(&old.name).await;
                changes += 1;
            }
        }
        for new in next.handlers.clone() {
            let old = self
                .config
                .handlers
                .iter()
                .find(|h| h.name == new.name)
                .cloned();
            if new.fuel.is_some() && !fuel_now {
                tracing::warn!(handler = %new.name, "config reload: `fuel` needs a restart (metering is engine-wide); ignored");
            }
            if old.as_ref() == Some(&new) {
                kept.extend(old);
                continue;
            }
            let runtime = self.runtime.clone();
            let path = new.component.clone();
            let loaded = match tokio::task::spawn_blocking(move || runtime.load_file(&path)).await {
                Ok(Ok(loaded)) => loaded,
                Ok(Err(error)) => {
                    tracing::warn!(handler = %new.name, "config reload: handler not changed: {error}");
                    kept.extend(old);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(handler = %new.name, "config reload: loading failed: {error}");
                    kept.extend(old);
                    continue;
                }
            };
            if old.is_some() {
                tracing::info!(handler = %new.name, "config reload: handler changed, restarting its consumers");
                self.stop_handler(&new.name).await;
            } else {
                tracing::info!(handler = %new.name, "config reload: handler added");
            }
            match self.start_handler(new.clone(), loaded).await {
                Ok(()) => {
                    kept.push(new);
                    changes += 1;
                }
                Err(error) => {
                    tracing::error!(handler = %new.name, "config reload: cannot start the handler: {error:#}");
                }
            }
        }
        self.config.handlers = kept;
        if let Err(error) = self.restart_watcher() {
            tracing::warn!("config reload: cannot watch the component files: {error:#}");
        }
        tracing::info!(
            changes,
            handlers = self.config.handlers.len(),
            "config reloaded"
        );
    }

    /// Stops every consumer: batches in flight get the shutdown timeout to commit.
    async fn shutdown(mut self) {
        let timeout = self.config.consumer.shutdown_timeout;
        tracing::info!(
            "shutting down: finishing batches in flight (up to {} ms)",
            timeout.as_millis()
        );
        let mut all = JoinSet::new();
        for (_, (stop, consumers)) in self.running.drain() {
            stop.cancel();
            all.spawn(drain(consumers, timeout));
        }
        while all.join_next().await.is_some() {}
        tracing::info!("host stopped");
    }
}

/// Waits for `consumers` to finish, abandoning them after `timeout`: their entries stay
/// pending and are handled again.
async fn drain(mut consumers: JoinSet<()>, timeout: Duration) {
    let drained = tokio::time::timeout(timeout, async {
        while consumers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "batches still running after {} ms were abandoned; their entries stay pending \
             and will be handled again",
            timeout.as_millis()
        );
        consumers.shutdown().await;
    }
}

/// The sections of `next` that differ from `current` and cannot change while running.
fn restart_only_changes(current: &Config, next: &Config) -> Vec<&'static str> {
    let mut sections = Vec::new();
    if current.redis != next.redis {
        sections.push("[redis]");
    }
    if current.consumer != next.consumer {
        sections.push("[consumer]");
    }
    if current.admin.listen != next.admin.listen
        || current.admin.metrics_interval != next.admin.metrics_interval
        || current.admin.token != next.admin.token
    {
        sections.push("[admin]");
    }
    if current.cache_dir != next.cache_dir {
        sections.push("[cache]");
    }
    if current.worker_threads != next.worker_threads {
        sections.push("[runtime]");
    }
    if current.ingest != next.ingest {
        sections.push("[ingest] and [webhooks]");
    }
    sections
}

/// Compiles every handler's component on blocking threads (compilation takes ~100 ms of CPU
/// per component), failing on the first that does not load.
async fn load_components(
    runtime: &WasmRuntime,
    handlers: &[HandlerConfig],
) -> anyhow::Result<Vec<LoadedHandler>> {
    let jobs = handlers.iter().map(|handler| {
        let runtime = runtime.clone();
        let path = handler.component.clone();
        tokio::task::spawn_blocking(move || runtime.load_file(&path))
    });
    let mut loaded = Vec::with_capacity(handlers.len());
    for (handler, job) in handlers.iter().zip(futures::future::join_all(jobs).await) {
        let component = job
            .context("component loading task failed")?
            .with_context(|| format!("handler \"{}\"", handler.name))?;
        loaded.push(component);
    }
    Ok(loaded)
}

/// Connects to Redis, retrying with a growing pause until it works or `cancel` fires
/// (`None`). An outage is logged once when it starts and once when it ends, and counted
/// once in `metrics` when it ends.
async fn connect_until(
    url: &str,
    blocking: Option<Duration>,
    cancel: &CancellationToken,
    metrics: &Metrics,
) -> Option<ConnectionManager> {
    let mut failures: u32 = 0;
    loop {
        let attempt = match blocking {
            Some(block) => crate::redis::connect_blocking(url, block).await,
            None => crate::redis::connect(url).await,
        };
        match attempt {
            Ok(conn) => {
                if failures > 0 {
                    metrics.redis_reconnected();
                    tracing::info!(url = %redact(url), failures, "connected to Redis");
                }
                return Some(conn);
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(url = %redact(url), "cannot reach Redis, will keep trying: {error}");
                }
                failures += 1;
            }
        }
        let pause = Duration::from_millis(100u64 << failures.min(5)).min(Duration::from_secs(3));
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// The URL without a password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Loads and checks one component file without running anything (the `check` command).
pub fn check_component(path: &Path) -> anyhow::Result<LoadedHandler> {
    let runtime = WasmRuntime::new(false, None).context("starting the WebAssembly engine")?;
    Ok(runtime.load_file(path)?)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(redact("redis://:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
