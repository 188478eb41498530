//! The memory of a host that has nothing to do: the three example handlers of the demo
//! (`speed-alert`, `trip-tracker`, `chaos`) loaded, every consumer joined, no events.

use std::path::Path;
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use serde::Serialize;
use watchtower_events::naming;

use crate::host_process::{HandlerSpec, Isolation};
use crate::host_run::{HostEnv, Hosts, component};

/// An idle host's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    /// Resident set after settling, MB (MiB).
    pub rss_mb: f64,
    /// Highest resident set since the start (compilation included), MB.
    pub peak_rss_mb: f64,
    /// From spawning the process to every consumer having joined its group, s.
    pub ready_secs: f64,
}

/// Starts the host in the empty `namespace`, waits until every consumer has joined and then
/// `settle`, and reads its memory.
pub async fn measure(
    env: &HostEnv<'_>,
    components: &Path,
    namespace: &str,
    settle: Duration,
) -> anyhow::Result<Idle> {
    let group = "bench-idle".to_owned();
    let handler = |name: &str, events: &[&str]| -> anyhow::Result<HandlerSpec> {
        Ok(HandlerSpec {
            name: name.to_owned(),
            component: component(components, name)?,
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            group: group.clone(),
            isolation: Isolation::HostDefault,
            concurrency: 1,
            ordering_key: None,
            config: Vec::new(),
        })
    };
    let handlers = [
        handler("speed-alert", &[watchtower_events::POSITION_UPDATED])?,
        handler(
            "trip-tracker",
            &[
                watchtower_events::TRIP_CREATED,
                watchtower_events::TRIP_STATUS_CHANGED,
            ],
        )?,
        handler("chaos", &[watchtower_events::TRUCK_STATUS_CHANGED])?,
    ];

    let mut conn = env.redis.connect().await?;
    let spawned = Instant::now();
    let mut hosts = Hosts::start(env, namespace, "idle", &handlers, 1)?;
    for handler in &handlers {
        for event_type in &handler.events {
            let stream = naming::stream_key(namespace, event_type);
            hosts.wait_joined(&mut conn, &stream, &group, 1).await?;
        }
    }
    let ready_secs = spawned.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    hosts.check_running()?;
    let rss = hosts.rss()?;
    let peak = hosts.peak_rss()?;
    hosts.stop().await?;

    let mut keys: Vec<String> = Vec::new();
    let mut scan = conn
        .scan_match::<_, String>(format!("{namespace}:*"))
        .await?;
    while let Some(key) = scan.next_item().await {
        keys.push(key?);
    }
    drop(scan);
    if !keys.is_empty() {
        let () = conn.del(&keys).await?;
    }
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    Ok(Idle {
        rss_mb: mb(rss),
        peak_rss_mb: mb(peak),
        ready_secs,
    })
}
