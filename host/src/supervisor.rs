//! Starting and stopping a host: load every component, connect, start one consumer per
//! (handler, stream), and on shutdown stop reading, let in-flight batches commit and return.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::ConnectionManager;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use watchtower_events::{kv_key, stream_key};

use crate::admin::AdminState;
use crate::config::{Config, HandlerConfig, StartFrom};
use crate::consumer::{Consumer, ConsumerSettings, supervise};
use crate::dispatch::{Dispatcher, StreamSource};
use crate::redis::dlq::redrive_key;
use crate::registry::{HandlerEntry, HandlerRegistry};
use crate::reload::Reloader;
use crate::wasm::{HandlerContext, LoadedHandler, WasmRuntime};

/// Runs the host described by `config` until `shutdown` resolves.
///
/// Every component is compiled and type-checked before anything connects, so a broken one
/// stops the start with its file and reason. Each handler consumes the stream of each of
/// its event types and its own re-drive stream (dead letters sent back to it). When
/// `shutdown` resolves, reading stops, batches in flight get `shutdown_timeout` to finish
/// and commit, and the function returns; whatever did not finish stays pending.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
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

    let Some(writer) = connect_until(&config.redis.url, None, &cancel).await else {
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

    let mut registry = HandlerRegistry::default();
    for (handler, loaded) in config.handlers.iter().zip(loaded) {
        let context = Arc::new(HandlerContext {
            name: handler.name.clone(),
            namespace: config.redis.namespace.clone(),
            kv_key: kv_key(&config.redis.namespace, &handler.name),
            config: handler.config.clone(),
            redis: writer.clone(),
            sandbox: handler.sandbox.clone(),
        });
        tracing::info!(
            handler = %handler.name,
            version = loaded.version(),
            component = %handler.component.display(),
            events = ?handler.events,
            "handler loaded"
        );
        registry.insert(HandlerEntry::new(handler.clone(), context, loaded));
    }

    // A component that compiles but cannot be instantiated (a trapping start function, a
    // memory larger than its limit) is refused now, with its reason, not on every event.
    // The instance made to find out is the handler's first warm one.
    for handler in registry.iter() {
        let instance = runtime
            .instantiate(
                &handler.current(),
                handler.context.clone(),
                handler.limits(),
            )
            .await
            .map_err(|failure| {
                anyhow::anyhow!(
                    "handler \"{}\": {}: cannot be instantiated: {failure:?}",
                    handler.name(),
                    handler.config.component.display()
                )
            })?;
        handler.return_instance(instance);
    }

    let registry = Arc::new(registry);
    let reloader = Arc::new(Reloader::new(
        runtime.clone(),
        registry.clone(),
        writer.clone(),
        config.redis.namespace.clone(),
    ));
    let admin = Arc::new(AdminState {
        reloader: reloader.clone(),
        ready: AtomicBool::new(false),
    });
    tracing::info!(listen = %listener.local_addr().map_or_else(|_| config.admin.listen.to_string(), |a| a.to_string()), "admin listener");
    tokio::spawn({
        let admin = admin.clone();
        let cancel = cancel.clone();
        async move {
            if let Err(error) = crate::admin::serve(listener, admin, cancel).await {
                tracing::error!("admin listener failed: {error}");
            }
        }
    });
    if config.reload.watch {
        crate::reload::watch(reloader.clone(), config.reload.debounce, cancel.clone())?;
    }

    let mut consumers = JoinSet::new();
    for handler in registry.iter() {
        let streams = handler
            .config
            .events
            .iter()
            .map(|t| {
                (
                    stream_key(&config.redis.namespace, t),
                    StreamSource::Events(t.clone()),
                )
            })
            .chain([(
                redrive_key(&config.redis.namespace, handler.name()),
                StreamSource::Redrive,
            )]);
        for (stream, source) in streams {
            let settings = ConsumerSettings {
                stream: stream.clone(),
                group: handler.config.group.clone(),
                name: config.consumer.name.clone(),
                // Re-driven entries are always wanted, whenever the group is created.
                start_from: match source {
                    StreamSource::Redrive => StartFrom::Oldest,
                    StreamSource::Events(_) => handler.config.start_from,
                },
                batch_size: config.consumer.batch_size.get(),
                block: config.consumer.block,
                claim_idle: config.consumer.claim_idle,
                claim_interval: config.consumer.claim_interval,
                consumer_grace: config.consumer.consumer_grace,
            };
            let Some(reader) =
                connect_until(&config.redis.url, Some(config.consumer.block), &cancel).await
            else {
                break;
            };
            let dispatcher = Dispatcher::new(
                runtime.clone(),
                handler.clone(),
                &stream,
                source,
                config.consumer.max_entry_bytes,
            );
            let consumer = Consumer::new(settings, dispatcher, reader, writer.clone());
            consumers.spawn(supervise(consumer, cancel.clone()));
        }
    }
    admin.ready.store(true, Ordering::Relaxed);
    tracing::info!(
        consumer = %config.consumer.name,
        handlers = config.handlers.len(),
        "host running"
    );

    cancel.cancelled().await;
    let timeout = config.consumer.shutdown_timeout;
    tracing::info!(
        in_flight = consumers.len(),
        "shutting down: finishing batches in flight (up to {} ms)",
        timeout.as_millis()
    );
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
    tracing::info!("host stopped");
    Ok(())
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
/// (`None`). An outage is logged once when it starts and once when it ends.
async fn connect_until(
    url: &str,
    blocking: Option<Duration>,
    cancel: &CancellationToken,
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
